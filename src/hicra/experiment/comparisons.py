"""The paired contrasts of an experiment: each run's metric values up to a horizon, every
(arm, other) contrast on every compared metric as paired seed differences, and Holm's adjustment
within the primary and the secondary family."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from hicra.experiment.metrics import COMPARED, METRICS
from hicra.experiment.runs import ExperimentRun
from hicra.experiment.stats import holm, paired


def run_values(item: ExperimentRun, horizon: int, threshold: float) -> dict[str, float | None]:
    """One run's numbers over its steps up to `horizon`."""
    out = {}
    for name, metric in METRICS.items():
        value = metric.read(item, horizon, threshold)
        out[name] = value if value is None or math.isfinite(value) else None
    return out


def compare(
    runs: list[ExperimentRun], contrasts: list[tuple[str, str]], primary: str, threshold: float
) -> list[dict[str, Any]]:
    """Every contrast on every compared metric, over the steps both arms' runs have reached."""
    present = {item.arm for item in runs}
    comparisons = []
    for arm, other in contrasts:
        if arm not in present or other not in present:
            continue
        pair = [i for i in runs if i.arm in (arm, other)]
        pair_horizon = min(i.last_step for i in pair)
        values = {(i.arm, i.seed): run_values(i, pair_horizon, threshold) for i in pair}
        for metric in COMPARED:
            mine, theirs = _by_seed(values, arm, metric), _by_seed(values, other, metric)
            if not mine and not theirs:
                continue
            comparisons.append(
                {
                    "arm": arm,
                    "baseline": other,
                    "metric": metric,
                    "family": "primary" if metric == primary else "secondary",
                    "horizon": pair_horizon,
                    **paired(mine, theirs),
                }
            )
    return comparisons


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
