"""What the analysis reads from each run folder: one table entry per metric.

An entry says how to read the metric from a run (up to the steps every compared run has reached),
the values it can take, and whether arms are tested on it (`compared`: an outcome, in the primary
or the secondary family) or it is only shown per arm (a readout). To add a metric (a held-out
benchmark logged in metrics.jsonl, say), add an entry to `METRICS`; the primary metric is chosen by
`primary_metric`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from hicra.report.curves import final_window, heldout_summary
from hicra.run_folder import Metric

if TYPE_CHECKING:
    from hicra.experiment.runs import ExperimentRun

SMOOTH = 5  # steps-to-threshold: a trailing mean over 5 logged steps, full windows only

Reader = Callable[["ExperimentRun", int, float], "float | None"]


@dataclass(frozen=True)
class MetricSpec:
    """One metric of the analysis."""

    name: str
    label: str
    read: Reader  # (run, horizon step, threshold) -> value, or None when the run lacks it
    bounds: tuple[float, float]  # the values it can take (curves' bands are cut to them)
    compared: bool  # arms are tested on it (primary or secondary family)
    digits: int = 3
    needs_eval: bool = False  # read from the held-out evaluation


def curve(item: ExperimentRun, key: str, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """A metric's finite values up to `horizon`, with their steps."""
    values = item.run.series(key)
    if values is None:
        return np.array([], dtype=np.int64), np.array([])
    keep = np.isfinite(values) & (item.run.steps <= horizon)
    return item.run.steps[keep], values[keep]


def _final(key: str) -> Reader:
    def read(item: ExperimentRun, horizon: int, _: float) -> float | None:
        _, values = curve(item, key, horizon)
        return float(np.mean(values[-final_window(values.size) :])) if values.size else None

    return read


def _mean_accuracy(item: ExperimentRun, horizon: int, _: float) -> float | None:
    _, values = curve(item, Metric.ACCURACY, horizon)
    return float(np.mean(values)) if values.size else None


def first_step_reaching(steps: np.ndarray, values: np.ndarray, threshold: float) -> float | None:
    """The first step whose trailing mean over `SMOOTH` logged steps (a full window: never fewer
    points, never a step ahead) reaches the threshold; None when none does."""
    if values.size < SMOOTH:
        return None
    trailing = np.convolve(values, np.ones(SMOOTH) / SMOOTH, mode="valid")
    reached = np.flatnonzero(trailing >= threshold - 1e-12)
    return float(steps[SMOOTH - 1 + reached[0]]) if reached.size else None


def _steps_to_threshold(item: ExperimentRun, horizon: int, threshold: float) -> float | None:
    steps, values = curve(item, Metric.ACCURACY, horizon)
    return first_step_reaching(steps, values, threshold)


def _heldout(item: ExperimentRun, _: int, __: float) -> float | None:
    return item.heldout


def _training_heldout(index: int) -> Reader:
    """In-training held-out accuracy (`hicra train --eval-benchmarks`, `eval/accuracy`) over the
    evaluations up to the horizon: index 0 the last one, 1 the area under the curve divided by the
    evaluated span (the held-out accuracy averaged over training)."""

    def read(item: ExperimentRun, horizon: int, _: float) -> float | None:
        summary = heldout_summary(item.run, horizon)
        return None if summary is None else summary[index]

    return read


def _semantic_entropy(item: ExperimentRun, horizon: int, threshold: float) -> float | None:
    """The bias-corrected (Miller-Madow) semantic entropy when the run logged it: the plug-in
    estimate rises with the number of gram occurrences, so an arm that says more planning phrases
    would read as more diverse. Runs that logged only the plug-in estimate give None."""
    return _final(Metric.SEMANTIC_ENTROPY_MM)(item, horizon, threshold)


ACCURACY = (0.0, 1.0)
NONNEGATIVE = (0.0, math.inf)

METRICS: dict[str, MetricSpec] = {
    spec.name: spec
    for spec in (
        MetricSpec("mean_accuracy", "mean accuracy", _mean_accuracy, ACCURACY, True),
        MetricSpec("final_accuracy", "final accuracy", _final(Metric.ACCURACY), ACCURACY, True),
        MetricSpec(
            "heldout_accuracy", "held-out accuracy", _heldout, ACCURACY, True, needs_eval=True
        ),
        MetricSpec(
            "training_heldout_final",
            "held-out accuracy in training (final)",
            _training_heldout(0),
            ACCURACY,
            True,
        ),
        MetricSpec(
            "training_heldout_auc",
            "held-out accuracy in training (area)",
            _training_heldout(1),
            ACCURACY,
            True,
        ),
        MetricSpec(
            "steps_to_threshold",
            "steps to threshold",
            _steps_to_threshold,
            (0.0, math.inf),
            False,
            digits=0,
        ),
        MetricSpec(
            "planning_ratio_end",
            "planning ratio (end)",
            _final(Metric.PLANNING_RATIO),
            ACCURACY,
            False,
        ),
        MetricSpec(
            "placebo_ratio_end",
            "placebo ratio (end)",
            _final(Metric.PLACEBO_RATIO),
            ACCURACY,
            False,
        ),
        MetricSpec(
            "execution_entropy_end",
            "execution entropy (end)",
            _final(Metric.EXECUTION_ENTROPY),
            NONNEGATIVE,
            False,
        ),
        MetricSpec(
            "semantic_entropy_end",
            "semantic entropy, bias-corrected (end)",
            _semantic_entropy,
            NONNEGATIVE,
            False,
        ),
        MetricSpec(
            "gram_occurrences_end",
            "gram occurrences per step (end)",
            _final(Metric.GRAM_OCCURRENCES),
            NONNEGATIVE,
            False,
            digits=1,
        ),
    )
}
LABELS = {name: spec.label for name, spec in METRICS.items()}
COMPARED = tuple(name for name, spec in METRICS.items() if spec.compared)


def primary_metric(saved: dict) -> str:
    """The experiment's primary metric: `primary_metric:` when the file names one, else held-out
    accuracy when an eval is configured, else mean training accuracy (the area under the curve)."""
    if saved.get("primary_metric"):
        return str(saved["primary_metric"])
    return "heldout_accuracy" if saved.get("eval") else "mean_accuracy"


def compared_metrics(primary: str) -> tuple[str, ...]:
    """The metrics arms are tested on: the compared ones, plus the primary when the experiment
    file names a readout (planning_ratio_end, say) as its primary metric."""
    return COMPARED if primary in COMPARED else (primary, *COMPARED)
