"""What a reader must know before trusting an experiment's numbers, found in its runs: accuracy
that stops early, runs without hierarchy metrics, a placebo that does not match the planning
ratio, plug-in-only semantic entropy, unequal gram occurrences, and a horizon cut short."""

from __future__ import annotations

from typing import Any

import numpy as np

from hicra.experiment.runs import ExperimentRun
from hicra.run_folder import Metric
from hicra.train.placebo import TOLERANCE


def run_checks(runs: list[ExperimentRun]) -> list[str]:
    """What a reader must know before trusting the numbers: accuracy that stops early (NaN tail),
    runs that logged no hierarchy metrics, and placebo sets that do not match the real grams."""
    notes = []
    for item in runs:
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
