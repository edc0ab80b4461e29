"""The analysis of an experiment folder: per-arm means with t-intervals, paired contrasts with
t-tests adjusted for multiplicity, the placebo contrast, and verdicts that never overclaim.

Reads only what runs wrote (each run's metrics.jsonl and config.yaml, and RUN/eval/results.json
when present), so it works on a partial experiment and says what is missing and what it left out.
Accuracy is `hicra/accuracy`, the share of completions exactly right, over the steps that every run
of the comparison has reached (the horizon): a run still training shortens it, and the results say
which run did. The metrics are a table (`hicra.experiment.metrics`); the statistics are pure
functions (`hicra.experiment.stats`). One metric is primary (held-out accuracy when an eval is
configured, else mean training accuracy, or the file's `primary_metric`); its contrasts form the
primary family, every other compared metric the secondary family, each Holm-adjusted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hicra.experiment import EXPERIMENT_FILE, SEED_PREFIX
from hicra.experiment.metrics import COMPARED, LABELS, METRICS, primary_metric
from hicra.experiment.runs import ExperimentRun
from hicra.experiment.spec import DEFAULT_THRESHOLD, ExperimentError
from hicra.experiment.stats import ALPHA, holm, paired, seeds_needed, summarize
from hicra.experiment.status import State, discover, eval_score, run_status
from hicra.report.runs import load_run
from hicra.run_folder import Metric
from hicra.train.layers import load_yaml
from hicra.train.placebo import TOLERANCE

__all__ = ["LABELS", "Loaded", "analyze", "load_experiment", "markdown", "paired", "summarize"]

# Keys that differ between the runs of one arm by design (the pairing, paths, versions).
SEED_KEYS = {
    "seed",
    "data_seed",
    "output_dir",
    "logging_dir",
    "run_name",
    "hicra_version",
    "resume",
    "strategic_grams_resolved",
}
# Keys a run computes from others: they may differ between arms when one of their sources does.
DERIVED_KEYS = {"reward_weights": {"accuracy_weight", "format_weight"}}
POWER_EFFECTS = (0.01, 0.02, 0.05, 0.10)  # differences (accuracy points) for the power note
HIERARCHY_KEYS = (Metric.PLANNING_RATIO, Metric.EXECUTION_ENTROPY, Metric.SEMANTIC_ENTROPY_MM)


@dataclass
class Loaded:
    """Everything found in an experiment folder."""

    folder: Path
    runs: list[ExperimentRun]
    arms: list[str]
    seeds: list[int]
    baseline: str
    threshold: float
    arm_keys: set[str] | None  # from experiment.yaml; None when the folder has none
    missing: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    primary: str = "mean_accuracy"
    contrasts: list[tuple[str, str]] = field(default_factory=list)
    has_eval: bool = False


def load_experiment(
    folder: str | Path, baseline: str | None = None, finished_only: bool = False
) -> Loaded:
    """The runs of an experiment folder (ARM/seed-S run folders), checked for consistency."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ExperimentError(f"experiment folder not found: {folder}")
    saved = load_yaml(folder / EXPERIMENT_FILE) if (folder / EXPERIMENT_FILE).is_file() else {}
    found = discover(folder)
    if not found:
        raise ExperimentError(
            f"{folder}: no runs (expected ARM/{SEED_PREFIX}S/ run folders with metrics.jsonl)"
        )
    arms = list(saved.get("arms") or {}) or sorted({arm for arm, _, _ in found})
    seeds = list(saved.get("seeds") or []) or sorted({seed for _, seed, _ in found})
    has_eval = bool(saved.get("eval"))
    runs, missing, notes = [], [], []
    present = {(arm, seed) for arm, seed, _ in found}
    for arm in arms:
        for seed in seeds:
            if (arm, seed) not in present:
                missing.append(f"{arm}/{SEED_PREFIX}{seed}: not started")
    for arm, seed, path in found:
        label = f"{arm}/{SEED_PREFIX}{seed}"
        try:
            run = load_run(path, label)
        except Exception as err:  # a run that has not logged a step yet
            missing.append(f"{label}: no metrics yet ({err})")
            continue
        notes.extend(f"{label}: {warning}" for warning in run.warnings)
        state = run_status(arm, seed, path, run.config.get("max_steps")).state
        if state is not State.FINISHED:
            missing.append(f"{label}: {state.value} at step {int(run.steps[-1])}")
            if finished_only:
                continue
        score, problems = eval_score(path)
        if has_eval and score is None and state is State.FINISHED:
            results = path / "eval" / "results.json"
            why = "unreadable" if results.is_file() else "missing"
            missing.append(
                f"{label}: no held-out eval ({results} {why}): held-out accuracy leaves it out"
            )
        runs.append(ExperimentRun(arm, seed, run, state, score, problems))
    if not runs:
        raise ExperimentError(f"{folder}: no run has logged a step yet ({'; '.join(missing)})")
    chosen = baseline or saved.get("baseline") or ("grpo" if "grpo" in arms else arms[0])
    if chosen not in arms:
        raise ExperimentError(f"baseline {chosen!r} is not an arm ({', '.join(arms)})")
    threshold = (saved.get("analysis") or {}).get("threshold", DEFAULT_THRESHOLD)
    arm_keys = (
        {k for overrides in saved["arms"].values() for k in (overrides or {})}
        if saved.get("arms")
        else None
    )
    loaded = Loaded(folder, runs, arms, seeds, chosen, float(threshold), arm_keys, missing, notes)
    loaded.has_eval = has_eval
    loaded.primary = primary_metric(saved)
    if loaded.primary not in METRICS or not METRICS[loaded.primary].compared:
        raise ExperimentError(
            f"{folder / EXPERIMENT_FILE}: unknown primary_metric {loaded.primary!r}"
        )
    check_configs(loaded)
    saved_contrasts = saved.get("contrasts")
    loaded.contrasts = (
        [tuple(pair) for pair in saved_contrasts]
        if saved_contrasts and baseline is None
        else default_contrasts(loaded)
    )
    loaded.notes.extend(run_checks(loaded))
    return loaded


def check_configs(loaded: Loaded) -> None:
    """Runs may differ only in their arm's keys and the seed: anything else is named, as an error."""
    by_arm: dict[str, list[ExperimentRun]] = {}
    for item in loaded.runs:
        by_arm.setdefault(item.arm, []).append(item)
    reference: dict[str, dict[str, Any]] = {}
    for arm, items in by_arm.items():
        first = items[0]
        for other in items[1:]:
            key = _differing_key(first.run.config, other.run.config, SEED_KEYS)
            if key is not None:
                raise ExperimentError(
                    f"runs {first.label} and {other.label} of one arm differ in {key!r} "
                    f"({first.run.config.get(key)!r} vs {other.run.config.get(key)!r}): an "
                    "analysis never mixes them"
                )
        reference[arm] = first.run.config
    arms = list(reference)
    arm_keys = loaded.arm_keys or set()
    derived = {key for key, sources in DERIVED_KEYS.items() if sources & arm_keys}
    allowed = SEED_KEYS | arm_keys | derived
    for arm in arms[1:]:
        key = _differing_key(reference[arms[0]], reference[arm], allowed)
        if key is None:
            continue
        if loaded.arm_keys is None:  # no experiment.yaml: report what the arms differ in
            loaded.notes.append(f"arms {arms[0]} and {arm} differ in {key!r}")
            continue
        raise ExperimentError(
            f"arms {arms[0]} and {arm} differ in {key!r} ({reference[arms[0]].get(key)!r} vs "
            f"{reference[arm].get(key)!r}), which no arm sets: the runs do not belong together"
        )


def _differing_key(a: dict[str, Any], b: dict[str, Any], ignore: set[str]) -> str | None:
    for key in sorted(set(a) | set(b)):
        if key not in ignore and a.get(key) != b.get(key):
            return key
    return None


# --------------------------------------------------------------------------- roles and contrasts
def arm_with_credit(loaded: Loaded, credit: str) -> str | None:
    """The arm named after a credit rule, else the one arm whose runs use it (None: none or many)."""
    if credit in loaded.arms:
        return credit
    using = sorted({i.arm for i in loaded.runs if i.run.config.get("credit") == credit})
    return using[0] if len(using) == 1 else None


def default_contrasts(loaded: Loaded) -> list[tuple[str, str]]:
    """Every arm against the baseline, and hicra against the placebo when both arms exist."""
    pairs = [(arm, loaded.baseline) for arm in loaded.arms if arm != loaded.baseline]
    hicra, placebo = arm_with_credit(loaded, "hicra"), arm_with_credit(loaded, "placebo")
    if hicra and placebo and hicra != placebo:
        pair = (hicra, placebo)
        if pair not in pairs and pair[::-1] not in pairs:
            pairs.append(pair)
    return pairs


# --------------------------------------------------------------------------- checks on the runs
def run_checks(loaded: Loaded) -> list[str]:
    """What a reader must know before trusting the numbers: accuracy that stops early (NaN tail),
    runs that logged no hierarchy metrics, and placebo sets that do not match the real grams."""
    notes = []
    for item in loaded.runs:
        if item.last_step < item.logged_step:
            notes.append(
                f"{item.label}: hicra/accuracy is not a number after step {item.last_step} "
                f"(logged to step {item.logged_step}): every comparison with it stops there"
            )
        if item.run.config.get("hierarchy_metrics") is False:
            notes.append(
                f"{item.label}: hierarchy_metrics is false, so its planning ratio and entropies "
                "were not logged (shown as –)"
            )
        if item.run.config.get("credit") == "placebo":
            notes.extend(placebo_check(item))
        if (
            item.run.series(Metric.SEMANTIC_ENTROPY) is not None
            and item.run.series(Metric.SEMANTIC_ENTROPY_MM) is None
        ):
            notes.append(
                f"{item.label}: only the plug-in semantic entropy was logged, which rises with "
                "the number of gram occurrences: left out of the semantic entropy readout"
            )
    return notes


def occurrence_note(arms: dict[str, dict[str, Any]]) -> str | None:
    """Semantic entropy read at unequal numbers of gram occurrences is not comparable as it is:
    said when the arms' mean occurrences per step differ by more than half."""
    counts = {
        arm: m["gram_occurrences_end"]["mean"]
        for arm, m in arms.items()
        if m["gram_occurrences_end"]["mean"] is not None
    }
    if len(counts) < 2 or min(counts.values()) <= 0:
        return None
    if max(counts.values()) <= 1.5 * min(counts.values()):
        return None
    listed = ", ".join(f"{arm} {value:.0f}" for arm, value in counts.items())
    return (
        f"gram occurrences per step differ between arms ({listed}): semantic entropy, even "
        "bias-corrected, still rises with them, so compare it with care"
    )


def placebo_check(item: ExperimentRun) -> list[str]:
    """The placebo's marked-token share against the real planning ratio, over the run: a mean
    beyond the 10% tolerance, or a placebo that never marked a token, is flagged."""
    placebo = item.run.series(Metric.PLACEBO_RATIO)
    planning = item.run.series(Metric.PLANNING_RATIO)
    if placebo is None or planning is None:
        return [f"{item.label}: placebo run without hicra/placebo_ratio: its match is unchecked"]
    both = np.isfinite(placebo) & np.isfinite(planning)
    if not both.any() or float(np.mean(planning[both])) == 0:
        return []
    marked, real = float(np.mean(placebo[both])), float(np.mean(planning[both]))
    if marked == 0:
        return [f"{item.label}: the placebo marked no token (no set was drawn): it ran as GRPO"]
    off = marked / real - 1
    if abs(off) <= TOLERANCE:
        return []
    return [
        f"{item.label}: the placebo marked {marked:.3f} of the tokens against a planning ratio of "
        f"{real:.3f} over the run ({off:+.0%}, beyond the {TOLERANCE:.0%} match): it upweights "
        f"{'fewer' if off < 0 else 'more'} tokens than HICRA does"
    ]


# --------------------------------------------------------------------------- per-run values
def run_values(item: ExperimentRun, horizon: int, threshold: float) -> dict[str, float | None]:
    """One run's numbers over its steps up to `horizon`."""
    out = {}
    for name, metric in METRICS.items():
        value = metric.read(item, horizon, threshold)
        out[name] = value if value is None or math.isfinite(value) else None
    return out


def horizon_note(runs: list[ExperimentRun], horizon: int, what: str) -> str | None:
    """Which run sets the horizon, when it cuts others short."""
    longest = max(i.last_step for i in runs)
    if horizon >= longest:
        return None
    cutting = [i.label for i in runs if i.last_step == horizon]
    return (
        f"{what} use steps 1-{horizon}: {', '.join(cutting)} reached only step {horizon} "
        f"(others up to {longest})"
    )


# --------------------------------------------------------------------------- verdicts
def verdict(comparison: dict[str, Any], family_size: int) -> str:
    """One plain line that never claims more than the numbers carry."""
    arm, other, metric = comparison["arm"], comparison["baseline"], comparison["metric"]
    n, diff = comparison["n"], comparison["mean_diff"]
    label = f"{LABELS[metric]} ({comparison['family']})"
    if diff is None:
        return f"{arm} vs {other}: no paired seeds with {LABELS[metric]}"
    head = f"{arm} vs {other}: {diff:+.3f} {label}"
    if n < 2:
        return f"{head} from {n} paired seed: too few seeds to compare"
    low, high, p = comparison["ci_low"], comparison["ci_high"], comparison["p_value"]
    adjusted = comparison["adjusted_p"]
    text = f"{head}, 95% CI [{low:+.3f}, {high:+.3f}], p = {p:.2g}"
    if family_size > 1:
        text += f", Holm-adjusted p = {adjusted:.2g} ({family_size} tests)"
    text += f" over {n} seeds: "
    if adjusted < ALPHA:
        text += f"{arm} {'higher' if diff > 0 else 'lower'} at this budget"
    else:
        text += "no difference detected at this budget"
    if n == 2:
        text += " (2 seeds: a t-interval is 12.7 standard errors wide)"
    return text


def control_verdict(
    comparisons: list[dict[str, Any]], hicra: str, baseline: str, placebo: str, metric: str
) -> str | None:
    """What the hicra-vs-baseline and hicra-vs-placebo pair means, on the primary metric."""

    def outcome(a: str, b: str) -> int | None:
        for c in comparisons:
            if c["metric"] != metric or {c["arm"], c["baseline"]} != {a, b}:
                continue
            if c["adjusted_p"] is None:
                return None
            sign = 1 if c["arm"] == a else -1
            return int(np.sign(c["mean_diff"])) * sign if c["adjusted_p"] < ALPHA else 0
        return None

    vs_base, vs_placebo = outcome(hicra, baseline), outcome(hicra, placebo)
    if vs_base is None or vs_placebo is None:
        return None
    on = f"on {LABELS[metric]}"
    if vs_base > 0 and vs_placebo > 0:
        tail = "the gain is specific to planning tokens at this budget"
        return f"{hicra} beats {baseline} and the placebo ({placebo}) {on}: {tail}"
    if vs_base > 0:
        return (
            f"{hicra} beats {baseline} but not the placebo ({placebo}) {on}: the gain is not "
            "shown to be specific to planning tokens (upweighting random tokens may do as well)"
        )
    if vs_base < 0:
        return f"{hicra} is worse than {baseline} {on} at this budget"
    if vs_placebo > 0:
        return (
            f"{hicra} beats the placebo ({placebo}) but not {baseline} {on}: no gain over "
            f"{baseline} is shown"
        )
    return f"{hicra} beats neither {baseline} nor the placebo ({placebo}) {on} at this budget"


def power_note(comparison: dict[str, Any]) -> dict[str, Any] | None:
    """Seeds needed to detect a difference d with power 0.8 at alpha, at the spread of this
    comparison's paired differences (its own between-seed standard deviation)."""
    sd = comparison.get("sd_diff")
    if sd is None or comparison["n"] < 2:
        return None
    # No spread at all (every seed's difference the same, often 0: the arms sampled the very same
    # completions and never diverged) measures no noise: any n would look enough, so none is given.
    no_spread = sd == 0
    return {
        "arm": comparison["arm"],
        "baseline": comparison["baseline"],
        "metric": comparison["metric"],
        "n": comparison["n"],
        "sd_diff": sd,
        "alpha": ALPHA,
        "power": 0.8,
        "seeds_needed": {
            f"{d:g}": None if no_spread else seeds_needed(d, sd) for d in POWER_EFFECTS
        },
        "no_spread": no_spread,
    }


# --------------------------------------------------------------------------- the whole analysis
def analyze(loaded: Loaded) -> dict[str, Any]:
    """results.json's content: runs, arms (metric -> mean, CI, n), comparisons with families and
    adjusted p-values, verdicts, the power note, and what is missing."""
    horizon = min(item.last_step for item in loaded.runs)
    notes = list(loaded.notes)
    if note := horizon_note(loaded.runs, horizon, "the per-arm table and the curves"):
        notes.append(note)
    per_run = {
        (item.arm, item.seed): run_values(item, horizon, loaded.threshold) for item in loaded.runs
    }
    arms: dict[str, dict[str, Any]] = {}
    for arm in loaded.arms:
        rows = [v for (a, _), v in per_run.items() if a == arm]
        if rows:
            arms[arm] = {
                name: summarize([r[name] for r in rows], metric.bounds)
                for name, metric in METRICS.items()
            }
    if note := occurrence_note(arms):
        notes.append(note)
    comparisons = []
    for arm, other in loaded.contrasts:
        if arm not in arms or other not in arms:
            continue
        pair = [i for i in loaded.runs if i.arm in (arm, other)]
        pair_horizon = min(i.last_step for i in pair)
        values = {(i.arm, i.seed): run_values(i, pair_horizon, loaded.threshold) for i in pair}
        for metric in COMPARED:
            mine, theirs = _by_seed(values, arm, metric), _by_seed(values, other, metric)
            if not mine and not theirs:
                continue
            comparisons.append(
                {
                    "arm": arm,
                    "baseline": other,
                    "metric": metric,
                    "family": "primary" if metric == loaded.primary else "secondary",
                    "horizon": pair_horizon,
                    **paired(mine, theirs),
                }
            )
    if comparisons and not any(c["metric"] == loaded.primary and c["n"] for c in comparisons):
        notes.append(
            f"no paired runs have the primary metric ({LABELS[loaded.primary]}) yet: every "
            "verdict below is secondary"
        )
    sizes = adjust(comparisons)
    verdicts = [verdict(c, sizes[c["family"]]) for c in comparisons]
    hicra, placebo = arm_with_credit(loaded, "hicra"), arm_with_credit(loaded, "placebo")
    if hicra and placebo and hicra != loaded.baseline:
        line = control_verdict(comparisons, hicra, loaded.baseline, placebo, loaded.primary)
        if line:
            verdicts.insert(0, line)
    power = [note for c in comparisons if c["family"] == "primary" and (note := power_note(c))]
    notes += [
        f"{row['arm']} vs {row['baseline']}: the same {LABELS[row['metric']]} difference in "
        f"every seed (no spread): the seeds measured no noise, so no power is estimated; a "
        "difference of exactly 0 means the paired runs did not diverge at this budget (a change "
        "too small to alter what the seeded sampler draws)"
        for row in power
        if row["no_spread"]
    ]
    return {
        "experiment": str(loaded.folder),
        "baseline": loaded.baseline,
        "primary_metric": loaded.primary,
        "alpha": ALPHA,
        "contrasts": [list(pair) for pair in loaded.contrasts],
        "horizon": horizon,
        "threshold": loaded.threshold,
        "runs": [
            {
                "arm": i.arm,
                "seed": i.seed,
                "state": i.state.value,
                "last_step": i.last_step,
                "heldout_problems": i.heldout_problems,
                **per_run[(i.arm, i.seed)],
            }
            for i in loaded.runs
        ],
        "arms": arms,
        "comparisons": comparisons,
        "verdicts": verdicts,
        "power": power,
        "missing": loaded.missing,
        "notes": notes,
    }


def adjust(comparisons: list[dict[str, Any]]) -> dict[str, int]:
    """Holm-adjust each family's p-values in place (`adjusted_p`); returns each family's size."""
    sizes = {}
    for family in ("primary", "secondary"):
        members = [c for c in comparisons if c["family"] == family and c["p_value"] is not None]
        adjusted = holm(np.asarray([c["p_value"] for c in members], dtype=float))
        for comparison, value in zip(members, adjusted, strict=True):
            comparison["adjusted_p"] = float(value)
        sizes[family] = len(members)
    for comparison in comparisons:
        comparison.setdefault("adjusted_p", None)
    return sizes


def _by_seed(
    values: dict[tuple[str, int], dict[str, Any]], arm: str, metric: str
) -> dict[int, float]:
    return {
        seed: v[metric]
        for (a, seed), v in values.items()
        if a == arm and v[metric] is not None and math.isfinite(v[metric])
    }


def _fmt(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _p(value: float | None) -> str:
    return "–" if value is None else f"{value:.3g}"


def markdown(results: dict[str, Any]) -> str:
    """results.md: the same numbers as tables, then the verdicts and what is missing."""
    primary = LABELS[results["primary_metric"]]
    lines = [
        f"# hicra experiment: {results['experiment']}",
        "",
        f"Baseline **{results['baseline']}**; primary metric **{primary}** (its contrasts are "
        f"judged at alpha = {results['alpha']}, Holm-adjusted among themselves; every other "
        "metric is secondary, Holm-adjusted across its family). Training accuracy is the share of "
        f"completions exactly right, over steps 1-{results['horizon']} (the steps every run has "
        "reached); final = mean of the last 10% of those steps, mean = over all of them. 95% CIs "
        "are t-intervals over seeds (of the paired differences for contrasts); p-values are "
        "paired t-tests, with the exact sign-flip p beside them.",
        "",
        "| arm | " + " | ".join(LABELS.values()) + " |",
        "|---|" + "---:|" * len(LABELS),
    ]
    for arm, metrics in results["arms"].items():
        cells = []
        for name, spec in METRICS.items():
            s = metrics[name]
            if s["mean"] is None:
                cells.append("–")
            elif s["ci_low"] is None:
                cells.append(f"{_fmt(s['mean'], spec.digits)} (n={s['n']})")
            else:
                cells.append(
                    f"{_fmt(s['mean'], spec.digits)} [{_fmt(s['ci_low'], spec.digits)}, "
                    f"{_fmt(s['ci_high'], spec.digits)}] (n={s['n']})"
                )
        lines.append(f"| {arm} | " + " | ".join(cells) + " |")
    if results["comparisons"]:
        lines += [
            "",
            "| arm | vs | metric | family | steps | n | mean diff | 95% CI | p | Holm p "
            "| sign-flip p |",
            "|---|---|---|---|---:|---:|---:|---|---:|---:|---:|",
        ]
        for c in results["comparisons"]:
            ci = "–" if c["ci_low"] is None else f"[{c['ci_low']:+.3f}, {c['ci_high']:+.3f}]"
            diff = "–" if c["mean_diff"] is None else f"{c['mean_diff']:+.3f}"
            lines.append(
                f"| {c['arm']} | {c['baseline']} | {LABELS[c['metric']]} | {c['family']} "
                f"| 1-{c['horizon']} | {c['n']} | {diff} | {ci} | {_p(c['p_value'])} "
                f"| {_p(c['adjusted_p'])} | {_p(c['p_sign_flip'])} |"
            )
    lines += ["", "## Verdicts", "", *(f"- {v}" for v in results["verdicts"])]
    if results["power"]:
        effects = list(results["power"][0]["seeds_needed"])
        lines += [
            "",
            "## Power",
            "",
            f"Paired seeds needed to detect a difference d in {primary} with power 0.8 at alpha "
            f"= {results['alpha']} (two-sided paired t-test), at the standard deviation of each "
            "contrast's seed differences measured here:",
            "",
            "| arm | vs | n | sd of differences | "
            + " | ".join(f"d = {d}" for d in effects)
            + " |",
            "|---|---|---:|---:|" + "---:|" * len(effects),
        ]
        for row in results["power"]:
            if row.get("no_spread"):
                lines.append(
                    f"| {row['arm']} | {row['baseline']} | {row['n']} | 0 | "
                    + " | ".join("–" for _ in effects)
                    + " |"
                )
                continue
            needed = ["> 10000" if v is None else str(v) for v in row["seeds_needed"].values()]
            lines.append(
                f"| {row['arm']} | {row['baseline']} | {row['n']} | {row['sd_diff']:.4f} | "
                + " | ".join(needed)
                + " |"
            )
    if results["missing"]:
        lines += ["", "## Missing or unfinished", "", *(f"- {m}" for m in results["missing"])]
    if results["notes"]:
        lines += ["", "## Notes", "", *(f"- {n}" for n in results["notes"])]
    lines += ["", "## Runs", "", "| run | state | last step | mean accuracy | held-out |"]
    lines.append("|---|---|---:|---:|---:|")
    for r in results["runs"]:
        lines.append(
            f"| {r['arm']}/{SEED_PREFIX}{r['seed']} | {r['state']} | {r['last_step']} "
            f"| {_fmt(r['mean_accuracy'])} | {_fmt(r['heldout_accuracy'])} |"
        )
    return "\n".join(lines) + "\n"
