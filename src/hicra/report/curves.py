"""The curves the report plots, derived from a run's logged metrics, each with its caveat.

One place decides what "accuracy" or "semantic entropy relative to its first value" means, so the
plots, the phase detection and the summary table cannot disagree.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from hicra.report.runs import Run
from hicra.run_folder import GROUP_PASS_KEY, Metric, parse_heldout_key

EXECUTION_ENTROPY = Metric.EXECUTION_ENTROPY
PLANNING_ENTROPY = Metric.PLANNING_ENTROPY
SEMANTIC_ENTROPY = Metric.SEMANTIC_ENTROPY
SEMANTIC_ENTROPY_MM = Metric.SEMANTIC_ENTROPY_MM
GRAM_OCCURRENCES = Metric.GRAM_OCCURRENCES
DISTINCT_GRAMS = Metric.DISTINCT_GRAMS
PLANNING_RATIO = Metric.PLANNING_RATIO
ACCURACY = Metric.ACCURACY
EVAL_ACCURACY = Metric.EVAL_ACCURACY
EVAL_ACCURACY_KEYS = (EVAL_ACCURACY, Metric.EVAL_HICRA_ACCURACY)
REWARD = Metric.REWARD
LENGTH = Metric.LENGTH
FORK_PLANNING_HIGH = Metric.FORK_PLANNING_HIGH
FORK_HIGH_PLANNING = Metric.FORK_HIGH_PLANNING
COMPLETIONS = Metric.COMPLETIONS

HIERARCHY_KEYS = (EXECUTION_ENTROPY, PLANNING_ENTROPY, SEMANTIC_ENTROPY, PLANNING_RATIO)


FINAL_FRACTION = 0.1  # "final" accuracy: the mean over the last 10% of logged steps


def final_window(points: int, fraction: float = FINAL_FRACTION) -> int:
    """How many of the last logged points make up "final" values: 10% of them, at least one.

    One step is one prompt group in the default run: its accuracy swings from 0 to 1, so a final
    value is a mean over a window, never the last step alone.
    """
    return max(1, math.ceil(fraction * points)) if points > 0 else 0


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
    """`hicra/accuracy`, else the mean reward (said in the note: reward is not accuracy; a
    rollout dump's note names its score field)."""
    values = run.series(ACCURACY)
    if values is not None:
        return Curve(run.steps, values)
    values = run.series(REWARD)
    if values is not None:
        return Curve(run.steps, values, run.accuracy_note)
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


def heldout(run: Run) -> dict[str, dict[str, Curve]]:
    """In-training held-out scores by benchmark, then by stat ("accuracy", "pass@4", "maj@4"),
    each on the steps where an evaluation ran (NaN elsewhere)."""
    found: dict[str, dict[str, Curve]] = {}
    for key in sorted(run.metrics):
        parsed = parse_heldout_key(key)
        if parsed is not None and (values := run.series(key)) is not None:
            found.setdefault(parsed[0], {})[parsed[1]] = Curve(run.steps, values)
    return found


def pass_ks(stats: dict[str, Curve]) -> list[int]:
    """The k of the `pass@k` curves of one benchmark, ascending."""
    return sorted(int(s[5:]) for s in stats if s.startswith("pass@"))


def heldout_pass_at_k(run: Run) -> dict[int, Curve]:
    """Held-out pass@k averaged over the benchmarks that logged that k (pass@1 is accuracy)."""
    by_k: dict[int, list[np.ndarray]] = {}
    for stats in heldout(run).values():
        if "accuracy" in stats:
            by_k.setdefault(1, []).append(stats["accuracy"].values)
        for k in pass_ks(stats):
            if k > 1:
                by_k.setdefault(k, []).append(stats[f"pass@{k}"].values)
    # a step where one benchmark lacks a value is NaN in the mean: never a mean of fewer benchmarks
    return {k: Curve(run.steps, np.mean(v, axis=0)) for k, v in sorted(by_k.items())}


def group_pass_at_k(run: Run) -> dict[int, Curve]:
    """Training-time group pass@k (`hicra/pass@k`) by k."""
    found = {}
    for key in run.metrics:
        if (match := GROUP_PASS_KEY.match(key)) and (values := run.series(key)) is not None:
            found[int(match["k"])] = Curve(run.steps, values)
    return dict(sorted(found.items()))


def heldout_summary(run: Run, horizon: int | None = None) -> tuple[float, float] | None:
    """(final, area under the curve) of the run's in-training held-out accuracy (`eval/accuracy`)
    over the evaluations at or before `horizon`; None without any.

    Final is the last evaluation's accuracy. The area is the trapezoidal integral over the
    evaluated steps divided by their span: the held-out accuracy averaged over training, in
    accuracy units (one evaluation: its value), so runs of different lengths compare.
    """
    curve = eval_accuracy(run)
    if curve is None:
        return None
    keep = np.isfinite(curve.values)
    if horizon is not None:
        keep &= curve.steps <= horizon
    steps, values = curve.steps[keep].astype(float), curve.values[keep]
    if not values.size:
        return None
    if values.size == 1:
        return float(values[0]), float(values[0])
    area = float(np.trapezoid(values, steps)) / float(steps[-1] - steps[0])
    return float(values[-1]), area


def missing_hierarchy_metrics(run: Run) -> list[str]:
    """Hierarchy keys the run never logged (all of them when trained with the metrics off)."""
    return [key for key in HIERARCHY_KEYS if run.series(key) is None]
