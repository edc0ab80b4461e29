"""Scoring and ranking clusters: which ones become strategic grams.

The paper keeps the clusters in the top 20% by *cluster document frequency* (traces that contain at
least one n-gram of the cluster). Its stated heuristic, "frequent across solutions but sparse within
one", is offered as an option; hicra reads it as: divide the cluster document frequency by the mean
count of the cluster in a trace that uses it,

    score = df / (count / df) = df**2 / count,

where `count` sums, over the traces containing the cluster, its count there. A planning phrase used
once in 30% of traces scores 0.30 N; an execution phrase repeated 10 times in 70% of traces scores
0.07 N and drops below it, although its document frequency is higher.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def cluster_scores(cluster_df: np.ndarray, cluster_count: np.ndarray, sparsity: bool) -> np.ndarray:
    """Cluster document frequency, or with `sparsity` df**2 / count (0 for an unused cluster)."""
    df = np.asarray(cluster_df, dtype=np.float64)
    if not sparsity:
        return df
    count = np.asarray(cluster_count, dtype=np.float64)
    return np.divide(df * df, count, out=np.zeros_like(df), where=count > 0)


def rank_clusters(scores: np.ndarray, cluster_df: np.ndarray, leaders: Sequence[str]) -> list[int]:
    """Cluster indices best first: by score, then document frequency, then leader gram (A-Z)."""
    return sorted(
        range(len(leaders)), key=lambda c: (-float(scores[c]), -int(cluster_df[c]), leaders[c])
    )


def top_count(n_clusters: int, fraction: float) -> int:
    """How many clusters the top `fraction` is: ceil(fraction x n), at least 1 when n > 0."""
    if n_clusters <= 0:
        return 0
    return max(1, math.ceil(fraction * n_clusters - 1e-9))
