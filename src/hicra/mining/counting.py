"""Document frequencies of n-grams over a stream of traces, in bounded memory.

Pass 1 (`BoundedDocFrequency`) counts in how many traces each n-gram occurs. Most n-grams of a
large corpus occur once, so the table is capped: when it outgrows `max_entries`, the n-grams with
the lowest counts are dropped and their count is added to a global `floor` (lossy counting,
Manku & Motwani 2002). Every n-gram's true document frequency then lies in
[count, count + floor], so selecting by the upper bound never loses a frequent n-gram; exact
frequencies of the survivors come from a second pass (`exact_doc_frequency`). With no pruning
(floor 0, the usual case below a few million distinct n-grams) pass 1 is exact already.

`cluster_statistics` is the last pass: per gram its document frequency and occurrences, per
cluster its document frequency (traces with at least one of its grams) and the sum over those
traces of the cluster's count there (the largest count of any of its grams in that trace, so
nested grams such as "let me check" / "let me check the" do not count one phrase twice).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

DEFAULT_MAX_ENTRIES = 2_000_000

NgramFn = Callable[[str], list[str]]


class BoundedDocFrequency:
    """Approximate document frequency with at most `max_entries` n-grams held at any time."""

    def __init__(self, max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        if max_entries < 2:
            raise ValueError("max_entries must be at least 2")
        self.max_entries = max_entries
        self.counts: Counter[str] = Counter()
        self.floor = 0  # upper bound on the uncounted part of any n-gram's document frequency
        self.docs = 0
        self.prunes = 0

    def add(self, grams: Iterable[str]) -> None:
        """Count one trace: each distinct n-gram once."""
        self.docs += 1
        self.counts.update(set(grams))
        if len(self.counts) > self.max_entries:
            self._prune()

    def _prune(self) -> None:
        """Drop the lowest counts so that at most half the capacity stays in use."""
        values = np.fromiter(self.counts.values(), dtype=np.int64, count=len(self.counts))
        keep = self.max_entries // 2
        # the smallest cut c with #(count > c) <= keep: the (keep+1)-th largest count
        cut = int(np.partition(values, len(values) - keep - 1)[len(values) - keep - 1])
        self.counts = Counter({g: c for g, c in self.counts.items() if c > cut})
        self.floor += cut
        self.prunes += 1

    @property
    def exact(self) -> bool:
        return self.floor == 0

    def upper_bound(self, gram: str) -> int:
        return self.counts.get(gram, 0) + self.floor

    def at_least(self, min_df: int) -> dict[str, int]:
        """N-grams whose document frequency may be >= min_df, with their upper bounds."""
        floor = self.floor
        return {g: c + floor for g, c in self.counts.items() if c + floor >= min_df}


def exact_doc_frequency(
    texts: Iterable[str], ngrams: NgramFn, grams: Iterable[str]
) -> dict[str, int]:
    """Exact document frequency of the given n-grams (a second pass over the same traces)."""
    df: Counter[str] = Counter({g: 0 for g in grams})
    index = df.keys()
    for text in texts:
        df.update({g for g in ngrams(text) if g in index})
    return dict(df)


def select_candidates(df: Mapping[str, int], min_df: int, max_candidates: int) -> list[str]:
    """N-grams with df >= min_df, most frequent first (ties: alphabetical), at most max_candidates."""
    kept = [g for g, c in df.items() if c >= min_df]
    kept.sort(key=lambda g: (-df[g], g))
    return kept[:max_candidates]


@dataclass(frozen=True)
class ClusterStatistics:
    """Per-gram and per-cluster counts from one pass; arrays are indexed like the inputs."""

    gram_df: np.ndarray  # traces containing the gram
    gram_occurrences: np.ndarray  # occurrences of the gram over all traces
    cluster_df: np.ndarray  # traces containing at least one gram of the cluster
    cluster_count: np.ndarray  # sum over those traces of the cluster's count in the trace
    docs: int


def cluster_statistics(
    texts: Iterable[str], ngrams: NgramFn, grams: Sequence[str], labels: Sequence[int]
) -> ClusterStatistics:
    """Count grams and clusters over the traces; `labels[i]` is the cluster of `grams[i]`."""
    index = {g: i for i, g in enumerate(grams)}
    n_clusters = (max(labels) + 1) if len(labels) else 0
    gram_df = np.zeros(len(grams), dtype=np.int64)
    gram_occ = np.zeros(len(grams), dtype=np.int64)
    cluster_df = np.zeros(n_clusters, dtype=np.int64)
    cluster_count = np.zeros(n_clusters, dtype=np.int64)
    docs = 0
    for text in texts:
        docs += 1
        found = Counter(i for i in map(index.get, ngrams(text)) if i is not None)
        if not found:
            continue
        best: dict[int, int] = {}
        for i, count in found.items():
            gram_df[i] += 1
            gram_occ[i] += count
            label = labels[i]
            if count > best.get(label, 0):
                best[label] = count
        for label, count in best.items():
            cluster_df[label] += 1
            cluster_count[label] += count
    return ClusterStatistics(gram_df, gram_occ, cluster_df, cluster_count, docs)
