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

from hicra.experiment.checks import horizon_note, occurrence_note
from hicra.experiment.comparisons import adjust, compare, run_values
from hicra.experiment.loading import Loaded, arm_with_credit, load_experiment
from hicra.experiment.metrics import LABELS, METRICS
from hicra.experiment.stats import ALPHA, summarize
from hicra.experiment.verdicts import control_verdict, power_note, verdict

__all__ = ["Loaded", "analyze", "load_experiment"]


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
    comparisons = compare(loaded.runs, loaded.contrasts, loaded.primary, loaded.threshold)
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
