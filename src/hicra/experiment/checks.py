"""What a reader must know before trusting an experiment's numbers, found in its runs: accuracy
that stops early, runs without hierarchy metrics, a placebo that does not match the planning
ratio, plug-in-only semantic entropy, unequal gram occurrences, and a horizon cut short."""

from __future__ import annotations

from typing import Any

from hicra.experiment.controls import CONTROL_CREDITS, run_long_ratio
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
        if item.run.config.get("credit") in CONTROL_CREDITS:
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
    """A control run's marked-token share against the real planning ratio over the run
    (`controls.run_long_ratio`): beyond the 10% tolerance, or no token marked, is flagged."""
    found = run_long_ratio(item)
    if found is None:
        return [f"{item.label}: control run without hicra/placebo_ratio: its match is unchecked"]
    marked, real, how = found
    if real == 0:
        return []
    if marked == 0:
        return [f"{item.label}: the placebo marked no token (no set was drawn): it ran as GRPO"]
    off = marked / real - 1
    if abs(off) <= TOLERANCE:
        return []
    return [
        f"{item.label}: the placebo marked {marked:.3f} of the tokens against a planning ratio of "
        f"{real:.3f} over the run, {how} ({off:+.0%}, beyond the {TOLERANCE:.0%} match): it "
        f"upweights {'fewer' if off < 0 else 'more'} tokens than HICRA does"
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
