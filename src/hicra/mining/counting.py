"""Document frequencies of n-grams over a stream of traces, in bounded memory.

Pass 1 (`BoundedDocFrequency`) counts in how many traces each n-gram occurs. Most n-grams of a
large corpus occur once, so the table is capped: when it outgrows `max_entries`, the n-grams with
the lowest counts are dropped and their count is added to a global `floor` (lossy counting,
Manku & Motwani 2002). Every n-gram's true document frequency then lies in
[count, count + floor], so selecting by the upper bound never loses a frequent n-gram; exact
frequencies of the survivors come from a second pass (`exact_doc_frequency`). With no pruning
(floor 0, the usual case below a few million distinct n-grams) pass 1 is exact already.

`cluster_statistics` is the last pass of the paper's pipeline: per gram its document frequency and
occurrences, per cluster its document frequency (traces with at least one of its grams) and the sum
over those traces of the cluster's count there (the largest count of any of its grams in that
trace, so nested grams such as "let me check" / "let me check the" do not count one phrase twice).

`gram_profile` is the last pass of contrastive selection: per pool gram its exact document
frequency, occurrences, occurrences in sentences with math and at a sentence's start, traces per
group (kept as (gram, group) pairs, so memory follows the pairs seen, not the traces), and the
n-gram totals by length; `OccurrenceCounter` counts the pool in the contrast corpus.

A looping trace (RL rollouts often repeat one sentence until the length limit) must not steer the
occurrence counts: within a trace, a sentence counts at most `MAX_SENTENCE_REPEATS` times (its
text words as the n-grams see them, so "Wait, let me check x = 3." and "... x = 4." are one
sentence); later repeats count for nothing, totals included. A trace whose skipped repeats hold
`LOOP_SHARE` or more of its words is reported as looping.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from hicra.mining.ngrams import segments

DEFAULT_MAX_ENTRIES = 2_000_000
MAX_SENTENCE_REPEATS = 3  # times one sentence counts in one trace
LOOP_SHARE = 0.25  # a trace is looping when skipped repeats hold this share of its words

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


@dataclass(frozen=True)
class GramProfile:
    """What contrastive selection needs about each pool n-gram, from one pass over the traces.

    Arrays are indexed like the pool; `order_*` by n-gram length n (index 0 unused). `group_keys`
    are `gram + len(pool) * group` with `group_df` the traces of that group containing the gram.
    """

    df: np.ndarray
    occurrences: np.ndarray
    math_occurrences: np.ndarray  # occurrences in sentences that carry math
    openings: np.ndarray  # occurrences that open a sentence
    order_totals: np.ndarray  # occurrences of all n-grams, pool or not, by n
    order_math_totals: np.ndarray  # the same in sentences that carry math
    group_keys: np.ndarray
    group_df: np.ndarray
    group_names: list[str]
    group_sizes: np.ndarray  # traces per group
    docs: int
    looping: tuple[int, ...] = ()  # 0-based numbers of the looping traces, in reading order
    repeats_skipped: int = 0  # sentences not counted: repeats beyond MAX_SENTENCE_REPEATS


class _GroupCounter:
    """(gram, group) document counts in memory bounded by the distinct pairs, not the traces."""

    FLUSH = 1 << 20  # buffered keys before they are merged

    def __init__(self) -> None:
        self.keys = np.zeros(0, dtype=np.int64)
        self.counts = np.zeros(0, dtype=np.int64)
        self._buffer: list[np.ndarray] = []
        self._buffered = 0

    def add(self, keys: np.ndarray) -> None:
        self._buffer.append(keys)
        self._buffered += len(keys)
        if self._buffered >= self.FLUSH:
            self._merge()

    def _merge(self) -> None:
        if not self._buffer:
            return
        new = np.concatenate(self._buffer)
        keys = np.concatenate([self.keys, new])
        weights = np.concatenate([self.counts, np.ones(len(new), dtype=np.int64)])
        self.keys, inverse = np.unique(keys, return_inverse=True)
        self.counts = np.bincount(inverse, weights=weights).astype(np.int64)
        self._buffer, self._buffered = [], 0

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        self._merge()
        return self.keys, self.counts


def _group_index(groups: dict[str, int], sizes: list[int], group: str) -> int:
    """The index of `group`, counting one more trace in it."""
    g = groups.setdefault(group, len(groups))
    if g == len(sizes):
        sizes.append(0)
    sizes[g] += 1
    return g


def _bump(array: np.ndarray, hits: list[int]) -> None:
    if hits:
        np.add.at(array, np.asarray(hits, dtype=np.int64), 1)


def gram_profile(
    traces: Iterable[tuple[Sequence[Any], str | None]],
    grams: Sequence[str],
    n_min: int,
    n_max: int,
) -> GramProfile:
    """Count the pool `grams` over traces given as (`ngrams.sentences(text)`, group or None).

    Per gram: traces containing it, occurrences, occurrences in sentences with math, occurrences
    that open a sentence, and traces per group; per n: all n-gram occurrences (with and without
    math), the denominators of the log-odds ratios.
    """
    lookup = {g: i for i, g in enumerate(grams)}.get
    looping: list[int] = []
    repeats_skipped = 0
    size = len(grams)
    df = np.zeros(size, dtype=np.int64)
    occurrences = np.zeros(size, dtype=np.int64)
    math_occ = np.zeros(size, dtype=np.int64)
    openings = np.zeros(size, dtype=np.int64)
    totals = [0] * (n_max + 1)
    math_totals = [0] * (n_max + 1)
    groups: dict[str, int] = {}
    group_sizes: list[int] = []
    pairs = _GroupCounter()
    docs = 0
    for sentence_list, group in traces:
        docs += 1
        hits: list[int] = []
        math_hits: list[int] = []
        opening_hits: list[int] = []
        seen: Counter[tuple[tuple[str, ...], ...]] = Counter()
        words = skipped_words = 0
        for sentence in sentence_list:
            key = tuple(map(tuple, sentence.runs))
            seen[key] += 1
            length = sum(map(len, sentence.runs))
            words += length
            if seen[key] > MAX_SENTENCE_REPEATS:
                skipped_words += length
                repeats_skipped += 1
                continue
            start = len(hits)
            for run in sentence.runs:
                length = len(run)
                for n in range(n_min, min(n_max, length) + 1):
                    count = length - n + 1
                    totals[n] += count
                    if sentence.has_math:
                        math_totals[n] += count
                    for i in range(count):
                        hit = lookup(" ".join(run[i : i + n]))
                        if hit is not None:
                            hits.append(hit)
            if sentence.has_math:
                math_hits.extend(hits[start:])
            if sentence.opens and len(hits) > start:
                first = sentence.runs[0]
                for n in range(n_min, min(n_max, len(first)) + 1):
                    hit = lookup(" ".join(first[:n]))
                    if hit is not None:
                        opening_hits.append(hit)
        if skipped_words and skipped_words >= LOOP_SHARE * words:
            looping.append(docs - 1)
        group_id = None if group is None else _group_index(groups, group_sizes, group)
        if not hits:
            continue
        found = np.unique(np.asarray(hits, dtype=np.int64), return_counts=True)
        df[found[0]] += 1
        occurrences[found[0]] += found[1]
        _bump(math_occ, math_hits)
        _bump(openings, opening_hits)
        if group_id is not None:
            pairs.add(found[0] + size * group_id)
    keys, counts = pairs.result()
    return GramProfile(
        df=df,
        occurrences=occurrences,
        math_occurrences=math_occ,
        openings=openings,
        order_totals=np.asarray(totals, dtype=np.int64),
        order_math_totals=np.asarray(math_totals, dtype=np.int64),
        group_keys=keys,
        group_df=counts,
        group_names=list(groups),
        group_sizes=np.asarray(group_sizes, dtype=np.int64),
        docs=docs,
        looping=tuple(looping),
        repeats_skipped=repeats_skipped,
    )


class OccurrenceCounter:
    """Occurrences of each of `grams` over the texts added, and of all n-grams by length n.

    What a contrast corpus contributes: counts of the pool n-grams and the totals they are shares of.
    """

    def __init__(self, grams: Sequence[str], n_min: int, n_max: int) -> None:
        self._lookup = {g: i for i, g in enumerate(grams)}.get
        self._n_min, self._n_max = n_min, n_max
        self.counts = np.zeros(len(grams), dtype=np.int64)
        self._totals = [0] * (n_max + 1)

    @property
    def totals(self) -> np.ndarray:
        return np.asarray(self._totals, dtype=np.int64)

    def add(self, text: str) -> None:
        hits = []
        lookup, totals = self._lookup, self._totals
        for run in segments(text):
            length = len(run)
            for n in range(self._n_min, min(self._n_max, length) + 1):
                totals[n] += length - n + 1
                for i in range(length - n + 1):
                    hit = lookup(" ".join(run[i : i + n]))
                    if hit is not None:
                        hits.append(hit)
        _bump(self.counts, hits)
