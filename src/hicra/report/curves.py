"""The curves the report plots, derived from a run's logged metrics, each with its caveat.

One place decides what "accuracy" or "semantic entropy relative to its first value" means, so the
plots, the phase detection and the summary table cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hicra.report.runs import Run

EXECUTION_ENTROPY = "hicra/execution_entropy"
PLANNING_ENTROPY = "hicra/planning_entropy"
SEMANTIC_ENTROPY = "hicra/semantic_entropy"
PLANNING_RATIO = "hicra/planning_ratio"
ACCURACY = "hicra/accuracy"
EVAL_ACCURACY = "eval/accuracy"
EVAL_ACCURACY_KEYS = (EVAL_ACCURACY, "eval/hicra/accuracy")  # TRL prefixes every eval key
REWARD = "reward"
LENGTH = "completions/mean_length"
FORK_PLANNING_HIGH = "hicra/fork/planning_high_entropy_share"
FORK_HIGH_PLANNING = "hicra/fork/high_entropy_planning_share"

HIERARCHY_KEYS = (EXECUTION_ENTROPY, PLANNING_ENTROPY, SEMANTIC_ENTROPY, PLANNING_RATIO)


@dataclass(frozen=True)
class Curve:
    """Values aligned with the run's steps (NaN where not logged), and a note on how they were made."""

    steps: np.ndarray
    values: np.ndarray
    note: str = ""


def metric(run: Run, key: str) -> Curve | None:
    values = run.series(key)
    return None if values is None else Curve(run.steps, values)


def accuracy(run: Run) -> Curve | None:
    """`hicra/accuracy`, else the mean reward (said in the note: reward is not accuracy)."""
    values = run.series(ACCURACY)
    if values is not None:
        return Curve(run.steps, values)
    values = run.series(REWARD)
    if values is not None:
        return Curve(run.steps, values, "reward (no hicra/accuracy logged)")
    return None


def semantic_entropy_ratio(run: Run) -> Curve | None:
    """Semantic entropy divided by its first finite non-zero value (the paper plots this ratio)."""
    values = run.series(SEMANTIC_ENTROPY)
    if values is None:
        return None
    finite = values[np.isfinite(values)]
    nonzero = finite[finite != 0]
    if nonzero.size == 0:
        return Curve(run.steps, np.full_like(values, np.nan), "semantic entropy is 0 throughout")
    note = "" if finite[0] != 0 else "relative to its first non-zero value"
    return Curve(run.steps, values / nonzero[0], note)


def eval_accuracy(run: Run) -> Curve | None:
    """Validation accuracy on the steps where validation ran (`eval/accuracy`)."""
    for key in EVAL_ACCURACY_KEYS:
        if (values := run.series(key)) is not None:
            return Curve(run.steps, values)
    return None


def missing_hierarchy_metrics(run: Run) -> list[str]:
    """Hierarchy keys the run never logged (all of them when trained with the metrics off)."""
    return [key for key in HIERARCHY_KEYS if run.series(key) is None]
