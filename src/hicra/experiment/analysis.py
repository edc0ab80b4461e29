"""The analysis of an experiment folder: per-arm means with bootstrap CIs, paired comparisons with
exact sign-flip p-values, and verdicts that never overclaim.

Reads only what runs wrote (each run's metrics.jsonl and config.yaml, and RUN/eval/results.json
when present), so it works on a partial experiment and says what is missing. Accuracy is
`hicra/accuracy`, the share of completions exactly right, over the steps that every run of the
comparison has reached (the horizon): a run still training shortens it, and the results say so.
Statistics come from scipy.stats: `bootstrap` (percentile, 9,999 resamples, seeded) for the 95%
CIs of means and of paired differences, `permutation_test` with paired samples for p-values
(exact over all 2^n sign flips for n <= 16 seeds).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.stats

from hicra.experiment import EXPERIMENT_FILE, SEED_PREFIX
from hicra.experiment.spec import DEFAULT_THRESHOLD, ExperimentError
from hicra.experiment.status import State, discover, eval_score, run_status
from hicra.report.curves import final_window, heldout_summary
from hicra.report.phases import smooth
from hicra.report.runs import Run, load_run
from hicra.run_folder import Metric
from hicra.train.layers import load_yaml

LABELS = {
    "final_accuracy": "final accuracy",
    "mean_accuracy": "mean accuracy",
    "steps_to_threshold": "steps to threshold",
    "heldout_accuracy": "held-out accuracy",
    "training_heldout_final": "held-out accuracy in training (final)",
    "training_heldout_auc": "held-out accuracy in training (area)",
    "planning_ratio_end": "planning ratio (end)",
    "execution_entropy_end": "execution entropy (end)",
    "semantic_entropy_end": "semantic entropy (end)",
}
COMPARED = (
    "mean_accuracy",
    "final_accuracy",
    "heldout_accuracy",
    "training_heldout_final",
    "training_heldout_auc",
)
END_KEYS = {
    "planning_ratio_end": Metric.PLANNING_RATIO,
    "execution_entropy_end": Metric.EXECUTION_ENTROPY,
    "semantic_entropy_end": Metric.SEMANTIC_ENTROPY,
}
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
SMOOTH = 5  # steps-to-threshold reads a centered moving average over 5 logged steps
RESAMPLES = 9_999
EXACT_UP_TO = 16  # seeds: all 2^n sign flips; more: 9,999 random ones


@dataclass
class ExperimentRun:
    """One arm x seed run as the analysis sees it."""

    arm: str
    seed: int
    run: Run
    state: State
    heldout: float | None = None
    heldout_problems: int = 0

    @property
    def label(self) -> str:
        return f"{self.arm}/{SEED_PREFIX}{self.seed}"

    @property
    def last_step(self) -> int:
        acc = self.run.series(Metric.ACCURACY)
        steps = self.run.steps if acc is None else self.run.steps[np.isfinite(acc)]
        return int(steps[-1]) if steps.size else 0


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
    runs, missing = [], []
    present = {(arm, seed) for arm, seed, _ in found}
    for arm in arms:
        for seed in seeds:
            if (arm, seed) not in present:
                missing.append(f"{arm}/{SEED_PREFIX}{seed}: not started")
    for arm, seed, path in found:
        try:
            run = load_run(path, f"{arm}/{SEED_PREFIX}{seed}")
        except Exception as err:  # a run that has not logged a step yet
            missing.append(f"{arm}/{SEED_PREFIX}{seed}: no metrics yet ({err})")
            continue
        state = run_status(arm, seed, path, run.config.get("max_steps")).state
        if state is not State.FINISHED:
            missing.append(f"{arm}/{SEED_PREFIX}{seed}: {state.value} at step {int(run.steps[-1])}")
            if finished_only:
                continue
        score, problems = eval_score(path)
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
    loaded = Loaded(folder, runs, arms, seeds, chosen, float(threshold), arm_keys, missing)
    check_configs(loaded)
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
    allowed = SEED_KEYS | (loaded.arm_keys or set())
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


# --------------------------------------------------------------------------- per-run values
def accuracy_curve(run: Run, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    values = run.series(Metric.ACCURACY)
    if values is None:
        return np.array([], dtype=np.int64), np.array([])
    keep = np.isfinite(values) & (run.steps <= horizon)
    return run.steps[keep], values[keep]


def run_values(item: ExperimentRun, horizon: int, threshold: float) -> dict[str, float | None]:
    """One run's numbers over its steps up to `horizon`."""
    steps, acc = accuracy_curve(item.run, horizon)
    out: dict[str, float | None] = dict.fromkeys(LABELS)
    if acc.size:
        out["final_accuracy"] = float(np.mean(acc[-final_window(acc.size) :]))
        out["mean_accuracy"] = float(np.mean(acc))
        reached = np.flatnonzero(smooth(acc, SMOOTH) >= threshold)
        out["steps_to_threshold"] = float(steps[reached[0]]) if reached.size else None
    for name, key in END_KEYS.items():
        values = item.run.series(key)
        if values is None:
            continue
        finite = values[np.isfinite(values) & (item.run.steps <= horizon)]
        if finite.size:
            out[name] = float(np.mean(finite[-final_window(finite.size) :]))
    out["heldout_accuracy"] = item.heldout
    # `hicra train --eval-benchmarks`: the last in-training evaluation and the area under the
    # held-out curve (its mean over training), over the evaluations up to the horizon
    if (heldout := heldout_summary(item.run, horizon)) is not None:
        out["training_heldout_final"], out["training_heldout_auc"] = heldout
    return out


# --------------------------------------------------------------------------- statistics
def _bootstrap_ci(values: np.ndarray) -> tuple[float | None, float | None]:
    if values.size < 2:
        return None, None
    if np.ptp(values) == 0:
        return float(values[0]), float(values[0])
    result = scipy.stats.bootstrap(
        (values,),
        np.mean,
        confidence_level=0.95,
        n_resamples=RESAMPLES,
        method="percentile",
        random_state=np.random.default_rng(0),
    )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def summarize(values: list[float]) -> dict[str, Any]:
    """Mean and 95% bootstrap CI of a metric over seeds (CI needs 2 or more)."""
    array = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    if array.size == 0:
        return {"mean": None, "ci_low": None, "ci_high": None, "n": 0}
    low, high = _bootstrap_ci(array)
    return {"mean": float(array.mean()), "ci_low": low, "ci_high": high, "n": int(array.size)}


def paired(arm: dict[int, float], baseline: dict[int, float]) -> dict[str, Any]:
    """Arm minus baseline over the seeds both have: mean, paired bootstrap 95% CI, and the
    two-sided sign-flip permutation p-value (exact for n <= 16)."""
    seeds = sorted(s for s in arm if s in baseline)
    x = np.asarray([arm[s] for s in seeds], dtype=float)
    y = np.asarray([baseline[s] for s in seeds], dtype=float)
    out: dict[str, Any] = {"n": len(seeds), "seeds": seeds}
    if not seeds:
        return {**out, "mean_diff": None, "ci_low": None, "ci_high": None, "p_value": None}
    diff = x - y
    low, high = _bootstrap_ci(diff)
    p_value = None
    if len(seeds) >= 2:
        if np.all(diff == 0):
            p_value = 1.0
        else:
            test = scipy.stats.permutation_test(
                (x, y),
                lambda a, b, axis: np.mean(a - b, axis=axis),
                permutation_type="samples",
                vectorized=True,
                n_resamples=np.inf if len(seeds) <= EXACT_UP_TO else RESAMPLES,
                alternative="two-sided",
                random_state=np.random.default_rng(0),
            )
            p_value = float(test.pvalue)
    return {
        **out,
        "mean_diff": float(diff.mean()),
        "ci_low": low,
        "ci_high": high,
        "p_value": p_value,
    }


def verdict(arm: str, baseline: str, metric: str, comparison: dict[str, Any]) -> str:
    """One plain line that never claims more than the numbers carry."""
    n, diff = comparison["n"], comparison["mean_diff"]
    label = LABELS[metric]
    if diff is None:
        return f"{arm} vs {baseline}: no paired seeds with {label}"
    head = f"{arm} vs {baseline}: {diff:+.3f} {label}"
    if n < 2:
        return f"{head} from {n} paired seed: too few seeds to compare"
    low, high, p = comparison["ci_low"], comparison["ci_high"], comparison["p_value"]
    text = f"{head}, 95% CI [{low:+.3f}, {high:+.3f}], p = {p:.2g} over {n} seeds: "
    if p < 0.05 and (low > 0 or high < 0):
        text += f"{arm} {'higher' if diff > 0 else 'lower'} at this budget"
    else:
        text += "no difference detected at this budget"
    smallest = 2 / 2**n
    if smallest >= 0.05 and n <= EXACT_UP_TO:
        text += f" (with {n} seeds the smallest possible p is {smallest:.3g})"
    return text


# --------------------------------------------------------------------------- the whole analysis
def analyze(loaded: Loaded) -> dict[str, Any]:
    """results.json's content: runs, arms (metric -> mean, CI, n), comparisons and verdicts."""
    horizon = min(item.last_step for item in loaded.runs)
    per_run = {
        (item.arm, item.seed): run_values(item, horizon, loaded.threshold) for item in loaded.runs
    }
    arms: dict[str, dict[str, Any]] = {}
    for arm in loaded.arms:
        rows = [v for (a, _), v in per_run.items() if a == arm]
        if rows:
            arms[arm] = {metric: summarize([r[metric] for r in rows]) for metric in LABELS}
    comparisons, verdicts = [], []
    for arm in loaded.arms:
        if arm == loaded.baseline or arm not in arms or loaded.baseline not in arms:
            continue
        pair = [i for i in loaded.runs if i.arm in (arm, loaded.baseline)]
        pair_horizon = min(i.last_step for i in pair)
        values = {(i.arm, i.seed): run_values(i, pair_horizon, loaded.threshold) for i in pair}
        for metric in COMPARED:
            mine = _by_seed(values, arm, metric)
            theirs = _by_seed(values, loaded.baseline, metric)
            if not mine and not theirs:
                continue
            comparison = {
                "arm": arm,
                "baseline": loaded.baseline,
                "metric": metric,
                "horizon": pair_horizon,
                **paired(mine, theirs),
            }
            comparisons.append(comparison)
            verdicts.append(verdict(arm, loaded.baseline, metric, comparison))
    return {
        "experiment": str(loaded.folder),
        "baseline": loaded.baseline,
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
        "missing": loaded.missing,
        "notes": loaded.notes,
    }


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


def markdown(results: dict[str, Any]) -> str:
    """results.md: the same numbers as tables, then the verdicts and what is missing."""
    lines = [
        f"# hicra experiment: {results['experiment']}",
        "",
        f"Baseline **{results['baseline']}**. Training accuracy is the share of completions "
        f"exactly right, over steps 1-{results['horizon']} (the steps every run has reached); "
        "final = mean of the last 10% of those steps, mean = over all of them. 95% CIs are "
        "bootstrap CIs over seeds; p-values are exact sign-flip permutation tests on the paired "
        "seeds.",
        "",
        "| arm | " + " | ".join(LABELS[m] for m in LABELS) + " |",
        "|---|" + "---:|" * len(LABELS),
    ]
    for arm, metrics in results["arms"].items():
        cells = []
        for metric in LABELS:
            s = metrics[metric]
            digits = 0 if metric == "steps_to_threshold" else 3
            if s["mean"] is None:
                cells.append("–")
            elif s["ci_low"] is None:
                cells.append(f"{_fmt(s['mean'], digits)} (n={s['n']})")
            else:
                cells.append(
                    f"{_fmt(s['mean'], digits)} [{_fmt(s['ci_low'], digits)}, "
                    f"{_fmt(s['ci_high'], digits)}] (n={s['n']})"
                )
        lines.append(f"| {arm} | " + " | ".join(cells) + " |")
    if results["comparisons"]:
        lines += [
            "",
            "| arm | baseline | metric | steps | n | mean diff | 95% CI | p |",
            "|---|---|---|---:|---:|---:|---|---:|",
        ]
        for c in results["comparisons"]:
            ci = "–" if c["ci_low"] is None else f"[{c['ci_low']:+.3f}, {c['ci_high']:+.3f}]"
            diff = "–" if c["mean_diff"] is None else f"{c['mean_diff']:+.3f}"
            p = "–" if c["p_value"] is None else f"{c['p_value']:.3g}"
            lines.append(
                f"| {c['arm']} | {c['baseline']} | {LABELS[c['metric']]} | 1-{c['horizon']} "
                f"| {c['n']} | {diff} | {ci} | {p} |"
            )
    lines += ["", "## Verdicts", "", *(f"- {v}" for v in results["verdicts"])]
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
