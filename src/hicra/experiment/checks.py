"""Checks of an experiment's runs that the analysis prints as notes: the controls' run-long match
and their grams, runs that never marked a planning token, runs whose held-out lines are gone, and
runs without the primary metric.

Each is a small pure function over the loaded runs (`ExperimentRun`), returning note lines (empty
when all is well), so that the analysis decides where to print them. Control arms are runs whose
credit is `placebo` or `random_tokens`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np

from hicra.experiment.metrics import COMPARED, LABELS, METRICS
from hicra.experiment.runs import ExperimentRun
from hicra.experiment.status import State
from hicra.run_folder import Metric

CONTROL_CREDITS = ("placebo", "random_tokens")


def is_control(item: ExperimentRun) -> bool:
    return item.run.config.get("credit") in CONTROL_CREDITS


def run_long_ratio(item: ExperimentRun) -> float | None:
    """A control run's marked tokens over its planning tokens over the whole run: its last
    `hicra/placebo_run_ratio` (cumulative counts), else, for runs that did not log it, the mean
    `hicra/placebo_ratio` over the mean `hicra/planning_ratio` (steps with both). None when the run
    logged neither or never marked a planning token."""
    logged = item.run.series(Metric.PLACEBO_RUN_RATIO)
    if logged is not None:
        finite = logged[np.isfinite(logged)]
        return float(finite[-1])
    placebo = item.run.series(Metric.PLACEBO_RATIO)
    planning = item.run.series(Metric.PLANNING_RATIO)
    if placebo is None or planning is None:
        return None
    both = np.isfinite(placebo) & np.isfinite(planning)
    real = float(np.mean(planning[both])) if both.any() else 0.0
    return float(np.mean(placebo[both])) / real if real else None


def answer_or_format_grams(item: ExperimentRun) -> list[str] | None:
    """The placebo grams of a run that touch a final-answer statement or the format instruction
    (`placebo_grams.json`'s "answer_or_format"); None when the run has no such file or key."""
    from hicra.train.placebo import ANSWER_OR_FORMAT, PLACEBO_FILE  # torch: only when asked

    path = item.run.path / PLACEBO_FILE
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    value = data.get(ANSWER_OR_FORMAT) if isinstance(data, dict) else None
    return [str(g) for g in value] if isinstance(value, list) else None


def _marked_planning(item: ExperimentRun) -> bool:
    planning = item.run.series(Metric.PLANNING_RATIO)
    return planning is not None and bool(np.nanmax(planning) > 0)


def no_planning_notes(runs: Sequence[ExperimentRun]) -> list[str]:
    """Runs that never marked a planning token: hicra and the controls then ran as GRPO. When no
    run of the experiment marked one, one loud note says the comparison is empty."""
    from hicra.train.outcome import USES_PLANNING

    logged = [item for item in runs if item.run.series(Metric.PLANNING_RATIO) is not None]
    if logged and not any(_marked_planning(item) for item in logged):
        return [
            "NO RUN MARKED A SINGLE PLANNING TOKEN: hicra and the controls ran as GRPO, so every "
            "comparison between them is empty (check strategic_grams against what the model says)"
        ]
    return [
        f"{item.label}: no planning token in any step: credit {item.run.config.get('credit')!r} "
        "ran as GRPO"
        for item in logged
        if item.run.config.get("credit") in USES_PLANNING and not _marked_planning(item)
    ]


def heldout_gone_notes(runs: Sequence[ExperimentRun], has_eval: bool) -> list[str]:
    """Finished runs whose held-out results are missing: with `eval:`, no `eval/results.json`
    score; trained with `eval_benchmarks`, no `eval/accuracy` line in metrics.jsonl. Each shrinks
    the paired seeds of every held-out contrast with its arm, so each is named."""
    notes = []
    for item in runs:
        if item.state is not State.FINISHED:
            continue
        if has_eval and item.heldout is None:
            notes.append(
                f"{item.label}: finished, but its held-out evaluation (eval/results.json) is gone "
                "or unreadable: its seed drops out of every held-out contrast"
            )
        if item.run.config.get("eval_benchmarks") and item.run.series(Metric.EVAL_ACCURACY) is None:
            notes.append(
                f"{item.label}: trained with eval_benchmarks, but metrics.jsonl holds no "
                "eval/accuracy line: its seed drops out of the in-training held-out contrasts"
            )
    return notes


def missing_primary_notes(
    runs: Sequence[ExperimentRun], primary: str, horizon: int, threshold: float
) -> list[str]:
    """Finished runs that lack the primary metric, named as such (not blamed on anything else)."""
    read = METRICS[primary].read
    return [
        f"{item.label}: the primary metric ({LABELS[primary]}) is missing from this run"
        for item in runs
        if item.state is State.FINISHED and read(item, horizon, threshold) is None
    ]


def compared_metrics(primary: str) -> tuple[str, ...]:
    """The metrics arms are tested on: the compared ones, plus the primary when the experiment
    file names a readout (planning_ratio_end, say) as its primary metric."""
    return COMPARED if primary in COMPARED else (primary, *COMPARED)
