"""The paired contrasts of an experiment: each run's metric values up to a horizon, every
(arm, other) contrast on every compared metric as paired seed differences, and Holm's adjustment
within the primary and the secondary family.

A held-out metric whose per-problem records exist for every paired run (`problems`) is judged at
the (seed, problem) level (`stats.crossed`): pooled over benchmarks by problem count, and per
benchmark beside it; the seed-level numbers (sd of the seeds' differences, sign-flip p) stay."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from hicra.experiment.metrics import METRICS, compared_metrics
from hicra.experiment.problems import PROBLEM_LEVEL, Scores, problem_scores
from hicra.experiment.runs import ExperimentRun
from hicra.experiment.stats import crossed, holm, paired


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
        for metric in compared_metrics(primary):
            mine, theirs = _by_seed(values, arm, metric), _by_seed(values, other, metric)
            if not mine and not theirs:
                continue
            comparison = {
                "arm": arm,
                "baseline": other,
                "metric": metric,
                "family": "primary" if metric == primary else "secondary",
                "horizon": pair_horizon,
                "level": "seeds",
                **paired(mine, theirs),
            }
            if metric in PROBLEM_LEVEL and comparison["n"] >= 2:
                comparison.update(problem_level(pair, arm, other, comparison["seeds"], metric))
            comparisons.append(comparison)
    return comparisons


def problem_level(
    runs: list[ExperimentRun], arm: str, other: str, seeds: list[int], metric: str
) -> dict[str, Any]:
    """The contrast judged over seeds and problems (`stats.crossed`), pooled over benchmarks by
    problem count and per benchmark; {} when a paired run lacks its per-problem records."""
    by_key = {(i.arm, i.seed): i for i in runs}
    horizon = min(i.last_step for i in runs)
    scores: dict[tuple[str, int], Scores] = {}
    lacking = []
    for seed in seeds:
        for name in (arm, other):
            found = problem_scores(by_key[name, seed].run.path, metric, horizon)
            if found is None:
                lacking.append(by_key[name, seed].label)
            else:
                scores[name, seed] = found
    if lacking:
        return {"seeds_only": f"no complete per-problem records in {', '.join(lacking)}"}
    common = sorted(set.intersection(*(set(s) for s in scores.values())))
    if len(common) < 2:
        return {"seeds_only": f"{len(common)} problem(s) common to every paired run"}
    table = np.asarray(
        [[scores[arm, s][k] - scores[other, s][k] for k in common] for s in seeds], dtype=float
    )
    out = {"level": "seeds x problems", "problems": len(common), **_crossed(table)}
    benchmarks = sorted({bench for bench, _ in common})
    out["by_benchmark"] = {}
    for bench in benchmarks:
        columns = [i for i, (b, _) in enumerate(common) if b == bench]
        if len(columns) >= 2:
            out["by_benchmark"][bench] = {"problems": len(columns), **_crossed(table[:, columns])}
    return out


def _crossed(table: np.ndarray) -> dict[str, Any]:
    result = crossed(table)
    return {
        "mean_diff": float(result["mean"]),
        "ci_low": float(result["ci_low"]),
        "ci_high": float(result["ci_high"]),
        "p_value": float(result["p"]),
        "df": float(result["df"]),
        "components": {k: float(result[k]) for k in ("seed", "problem", "residual")},
    }


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
