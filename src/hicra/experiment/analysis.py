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

The jobs are in their own modules: `loading` (the folder's runs), `checks` (notes on the runs),
`comparisons` (paired contrasts, Holm), `verdicts` (the words), `markdown` (results.md); this module
wires them into results.json's content.
"""

from __future__ import annotations

from typing import Any

from hicra.experiment.checks import (
    dose_notes,
    horizon_note,
    missing_primary_notes,
    occurrence_note,
    undiverged_seed_notes,
)
from hicra.experiment.comparisons import adjust, compare, run_values
from hicra.experiment.controls import arm_checks, control_arms, control_kind
from hicra.experiment.loading import Loaded, arm_with_credit, load_experiment
from hicra.experiment.metrics import LABELS, METRICS
from hicra.experiment.preregistration import (
    PREREGISTRATION_FILE,
    deviations,
    load_preregistration,
)
from hicra.experiment.stats import ALPHA, summarize
from hicra.experiment.status import State
from hicra.experiment.verdicts import Framing, control_verdict, detectable, power_note, verdict

__all__ = ["Loaded", "analyze", "load_experiment"]


def analyze(loaded: Loaded) -> dict[str, Any]:
    """results.json's content: runs, arms (metric -> mean, CI, n), comparisons with families and
    adjusted p-values, verdicts, the power note, and what is missing."""
    horizon = min(item.last_step for item in loaded.runs)
    notes = list(loaded.notes)
    if note := horizon_note(loaded.runs, horizon, "the per-arm table and the curves"):
        notes.append(note)
    notes += missing_primary_notes(loaded.runs, loaded.primary, horizon, loaded.threshold)
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
    comparisons = compare(loaded.runs, loaded.contrasts, loaded.primary, loaded.threshold)
    notes += dose_notes(loaded.runs) + undiverged_seed_notes(loaded.runs, loaded.contrasts)
    if comparisons and not any(c["metric"] == loaded.primary and c["n"] for c in comparisons):
        notes.append(
            f"no paired runs have the primary metric ({LABELS[loaded.primary]}) yet: every "
            "verdict below is secondary"
        )
    sizes = adjust(comparisons)
    record = load_preregistration(loaded.folder)
    framing = Framing(primary_tests=max(1, sizes["primary"]), interim=interim(loaded))
    notes += [
        f"{c['arm']} vs {c['baseline']}: {LABELS[c['metric']]} judged over seeds only, not "
        f"over seeds x problems ({c['seeds_only']})"
        for c in comparisons
        if c.get("seeds_only")
    ]
    if record is None and (loaded.folder / PREREGISTRATION_FILE).exists():
        framing.planned_seeds = len(loaded.seeds)
        notes.append(
            f"{loaded.folder / PREREGISTRATION_FILE} is unreadable (not a JSON object): what "
            "changed after the pre-registration cannot be said"
        )
    elif record is None:
        framing.planned_seeds = len(loaded.seeds)
        notes.append(
            f"not pre-registered (no {PREREGISTRATION_FILE}: its runs started before hicra kept "
            "one): the primary metric, contrasts and seeds may have been chosen after results"
        )
    else:
        framing.planned_seeds = len(record.get("seeds") or [])
        used = sorted({item.seed for item in loaded.runs})
        framing.changed = deviations(record, loaded.primary, loaded.contrasts, ALPHA, used)
    for c in comparisons:
        if c["family"] == "primary" and c["n"] >= 2 and c["mean_diff"] is not None:
            c["detectable"] = detectable(c, framing)
    verdicts = [verdict(c, sizes[c["family"]], framing) for c in comparisons]
    verdicts[:0] = control_lines(loaded, comparisons, framing)
    power = [
        note for c in comparisons if c["family"] == "primary" and (note := power_note(c, framing))
    ]
    notes += [
        f"{row['arm']} vs {row['baseline']}: the same {LABELS[row['metric']]} difference in "
        f"every seed (no spread): the seeds measured no noise, so no seed count at a given "
        f"difference is estimated (a sign-flip test needs {row['sign_flip_seeds']} seeds to reach "
        f"alpha {row['alpha']:.3g} at all); a difference of exactly 0 means the paired runs did "
        "not diverge at this budget (a change too small to alter what the seeded sampler draws)"
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
        "interim": framing.interim is not None,
        "preregistration": record,
        "changed_after_preregistration": framing.changed,
        "controls": {
            arm: [vars(check) for check in arm_checks(loaded.runs, arm)]
            for arm in control_arms(loaded.runs, loaded.arms)
        },
        "missing": loaded.missing,
        "notes": notes,
    }


def interim(loaded: Loaded) -> str | None:
    """'INTERIM: k of N runs finished' while any planned arm x seed run is not finished (and
    evaluated, when the experiment evaluates), else None."""
    planned = len(loaded.arms) * len(loaded.seeds)
    done = sum(
        1
        for item in loaded.runs
        if item.arm in loaded.arms
        and item.seed in loaded.seeds
        and item.state is State.FINISHED
        and (not loaded.has_eval or item.heldout is not None)
    )
    if done >= planned:
        return None
    what = "finished and evaluated" if loaded.has_eval else "finished"
    return f"INTERIM ({done} of {planned} runs {what})"


def control_lines(loaded: Loaded, comparisons: list[dict[str, Any]], framing: Framing) -> list[str]:
    """The control verdicts, first: hicra against the baseline and each control arm, read with
    the control's validity (`controls`)."""
    hicra = arm_with_credit(loaded, "hicra")
    if not hicra:
        return []
    lines = []
    for control in control_arms(loaded.runs, loaded.arms):
        if control == hicra:
            continue
        line = control_verdict(
            comparisons,
            hicra,
            loaded.baseline,
            control,
            loaded.primary,
            arm_checks(loaded.runs, control),
            control_kind(loaded.runs, control),
        )
        if line:
            lines.append(framing.frame(line))
    return lines
