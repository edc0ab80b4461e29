"""The mining pipeline of the paper (PAPER.md section 2), streamed over the input files.

    pass 1   document frequency of every word n-gram (bounded memory, `counting.py`)
             -> candidates: n-grams in at least `min_df` traces, at most `max_candidates`
             (exact frequencies from an extra pass when pass 1 had to prune)
    cluster  embeddings + leader clustering, or exact duplicates only (`clustering.py`)
    pass 2   cluster document frequency (and per-trace counts for the sparsity option)
    select   the top `top_fraction` of clusters; the strategic grams are all their n-grams

Only the candidates are embedded, so the cost is set by `max_candidates`, not by the corpus.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from hicra.errors import HicraError
from hicra.grams import StrategicGrams
from hicra.jsonl import DEFAULT_MAX_LINE_BYTES
from hicra.mining.clustering import (
    DEFAULT_THRESHOLD,
    MINILM,
    NONE,
    embed,
    exact_clusters,
    leader_clusters,
    load_embedder,
)
from hicra.mining.counting import (
    DEFAULT_MAX_ENTRIES,
    BoundedDocFrequency,
    cluster_statistics,
    exact_doc_frequency,
    select_candidates,
)
from hicra.mining.ngrams import doc_ngrams
from hicra.mining.selection import cluster_scores, rank_clusters, top_count
from hicra.mining.sources import CorpusReport, TraceSpec, iter_traces

AUTO_MIN_DF_FRACTION = 0.002  # --min-df default: 0.2% of the traces used, at least 2
MAX_NGRAM = 10


class MiningError(HicraError):
    """Mining cannot produce a gram set from this input or with these parameters."""


@dataclass(frozen=True)
class MiningConfig:
    """Parameters of `mine`; the defaults are the CLI's."""

    ngram_min: int = 3
    ngram_max: int = 5
    top_fraction: float = 0.2
    min_df: int | None = None  # None: max(2, ceil(0.2% of the traces used))
    max_candidates: int = 2000
    embedder: str = "minilm"  # "minilm", "none" (exact duplicates only) or a model folder
    threshold: float = DEFAULT_THRESHOLD
    sparsity: bool = False
    max_table: int = DEFAULT_MAX_ENTRIES
    batch_size: int = 64  # embedding batch: short phrases encode fastest in small batches on CPU
    # torch threads while embedding; None: torch's default. One is robust: 2,000 short phrases
    # take seconds, while spinning workers on cores that other processes keep busy are 10x slower.
    threads: int | None = 1

    def validate(self) -> None:
        if not 1 <= self.ngram_min <= self.ngram_max <= MAX_NGRAM:
            raise MiningError(
                f"n-gram sizes must satisfy 1 <= --ngram-min <= --ngram-max <= {MAX_NGRAM}, "
                f"got {self.ngram_min} and {self.ngram_max}"
            )
        if not 0.0 < self.top_fraction <= 1.0:
            raise MiningError(f"--top-fraction must be in (0, 1], got {self.top_fraction}")
        if self.min_df is not None and self.min_df < 1:
            raise MiningError(f"--min-df must be at least 1, got {self.min_df}")
        if self.max_candidates < 1:
            raise MiningError(f"--max-candidates must be at least 1, got {self.max_candidates}")
        if not -1.0 <= self.threshold <= 1.0:
            raise MiningError(
                f"--threshold is a cosine similarity in [-1, 1], got {self.threshold}"
            )
        if self.embedder not in (MINILM, NONE) and not Path(self.embedder).is_dir():
            raise MiningError(
                f"--embedder {self.embedder}: not 'minilm', 'none' or a sentence-transformers folder"
            )
        if self.threads is not None and self.threads < 1:
            raise MiningError(
                f"--threads must be at least 1 (0 on the CLI: all cores), got {self.threads}"
            )
        if self.max_table < 1000:
            raise MiningError(f"--max-table must be at least 1000, got {self.max_table}")


@dataclass(frozen=True)
class Cluster:
    """A cluster of candidate n-grams, most frequent first; `rank` 0 is the best."""

    rank: int
    grams: tuple[str, ...]
    df: int
    count: int  # sum over the traces that contain it of its count there
    score: float
    kept: bool

    @property
    def mean_count(self) -> float:
        """Mean count of the cluster in a trace that uses it (the sparsity heuristic's divisor)."""
        return self.count / self.df if self.df else 0.0


@dataclass
class MiningResult:
    grams: StrategicGrams
    clusters: list[Cluster]  # all clusters, ranked
    candidates: int
    min_df: int
    corpus: CorpusReport
    passes: int
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def kept(self) -> list[Cluster]:
        return [c for c in self.clusters if c.kept]


def auto_min_df(traces: int) -> int:
    return max(2, math.ceil(AUTO_MIN_DF_FRACTION * traces - 1e-9))


def _check_corpus(report: CorpusReport, paths: Sequence[str | Path]) -> None:
    """Empty corpus or no successful trace: say what was read and why nothing counts."""
    names = ", ".join(str(p) for p in paths)
    if report.read == 0:
        skipped = "; ".join(f"{f.path}: {f.rows.summary()}" for f in report.files if f.skipped)
        raise MiningError(
            f"empty corpus: no traces in {names}" + (f" (skipped {skipped})" if skipped else "")
        )
    if report.used == 0:
        why = "; ".join(f.summary() for f in report.files)
        raise MiningError(
            f"no successful trace to mine: {why}. Use --reward-field none to mine every trace, "
            "or --min-reward to change what counts as a success"
        )


def _cluster(
    candidates: list[str], config: MiningConfig, model: Any, timings: dict[str, float]
) -> tuple[np.ndarray, str | None]:
    """Cluster labels of the candidates, and the embedder used (None: exact duplicates only)."""
    if config.embedder == NONE and model is None:
        return exact_clusters(candidates), None
    label = config.embedder
    if model is None:
        start = time.perf_counter()
        model = load_embedder(config.embedder)
        timings["load_embedder"] = time.perf_counter() - start
    else:
        label = f"{type(model).__name__} passed to mine()"
    start = time.perf_counter()
    vectors = embed(model, candidates, config.batch_size, config.threads)
    timings["embed"] = time.perf_counter() - start
    start = time.perf_counter()
    labels = leader_clusters(vectors, config.threshold)
    timings["cluster"] = time.perf_counter() - start
    return labels, label


def mine(
    paths: Sequence[str | Path] | str | Path,
    config: MiningConfig | None = None,
    spec: TraceSpec | None = None,
    *,
    name: str = "mined",
    model: Any = None,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
) -> MiningResult:
    """Mine a strategic-gram set from the successful traces in `paths` (JSONL or Parquet).

    `model`: an already loaded sentence-transformers model (overrides `config.embedder`).
    """
    config = config or MiningConfig()
    spec = spec or TraceSpec()
    config.validate()
    if isinstance(paths, (str, Path)):
        paths = [paths]
    if not paths:
        raise MiningError("no input files")
    ngrams = partial(doc_ngrams, n_min=config.ngram_min, n_max=config.ngram_max)

    def traces(report: CorpusReport | None = None):
        return iter_traces(paths, spec, report, max_line_bytes=max_line_bytes)

    timings: dict[str, float] = {}
    start = time.perf_counter()
    corpus = CorpusReport()
    table = BoundedDocFrequency(config.max_table)
    for text in traces(corpus):
        table.add(ngrams(text))
    _check_corpus(corpus, paths)
    min_df = config.min_df if config.min_df is not None else auto_min_df(corpus.used)
    pool = table.at_least(min_df)
    exact = table.exact
    del table
    passes = 1
    if not exact:  # pass 1 pruned: its counts are upper bounds, count the survivors exactly
        pool = exact_doc_frequency(traces(), ngrams, pool)
        passes += 1
    candidates = select_candidates(pool, min_df, config.max_candidates)
    del pool
    timings["count"] = time.perf_counter() - start
    if not candidates:
        raise MiningError(
            f"no {config.ngram_min}-{config.ngram_max}-gram occurs in {min_df} or more of the "
            f"{corpus.used} traces used; lower --min-df or --ngram-min, or add traces"
        )

    start = time.perf_counter()
    labels, embedder = _cluster(candidates, config, model, timings)
    timings.setdefault("cluster", time.perf_counter() - start)

    start = time.perf_counter()
    stats = cluster_statistics(traces(), ngrams, candidates, labels.tolist())
    passes += 1
    if stats.docs != corpus.used:
        raise MiningError(
            f"the input changed while it was read ({corpus.used} traces, then {stats.docs})"
        )
    timings["cluster_df"] = time.perf_counter() - start

    clusters = _ranked_clusters(candidates, labels, stats, config)
    kept = [c for c in clusters if c.kept]
    index = {g: i for i, g in enumerate(candidates)}
    gram_stats = {
        g: {
            "df": int(stats.gram_df[index[g]]),
            "occurrences": int(stats.gram_occurrences[index[g]]),
            "cluster": c.rank,
            "cluster_df": c.df,
        }
        for c in kept
        for g in c.grams
    }
    provenance = {
        "tool": "hicra mine",
        "method": "arXiv 2509.03646 section 2: n-gram document frequency, clustering, "
        "top clusters by cluster document frequency",
        "inputs": [str(p) for p in paths],
        "parameters": _parameters(config, spec, embedder, min_df),
        "corpus": corpus.to_dict(),
        "candidates": len(candidates),
        "clusters": len(clusters),
        "clusters_kept": len(kept),
        "passes": passes,
        "top_clusters": [
            {"rank": c.rank, "df": c.df, "score": round(c.score, 4), "grams": list(c.grams[:5])}
            for c in kept[:50]
        ],
    }
    grams = StrategicGrams(
        [g for c in kept for g in c.grams], name=name, provenance=provenance, stats=gram_stats
    )
    return MiningResult(grams, clusters, len(candidates), min_df, corpus, passes, timings)


def _parameters(
    config: MiningConfig, spec: TraceSpec, embedder: str | None, min_df: int
) -> dict[str, Any]:
    """Every parameter that shaped the set, as resolved (what a rerun needs)."""
    parameters = {
        **asdict(config),
        "embedder": embedder or NONE,
        "threshold": config.threshold if embedder else None,
        "min_df": min_df,
        "min_df_requested": config.min_df,
        "text_field": spec.text_field,
        "reward_field": spec.reward_field,
        "min_reward": spec.min_reward,
    }
    for speed_only in ("batch_size", "threads"):
        parameters.pop(speed_only)
    return parameters


def _ranked_clusters(
    candidates: list[str], labels: np.ndarray, stats: Any, config: MiningConfig
) -> list[Cluster]:
    """Clusters in rank order, members by document frequency, the top fraction marked kept."""
    n_clusters = int(labels.max()) + 1
    members: list[list[int]] = [[] for _ in range(n_clusters)]
    for i, label in enumerate(labels.tolist()):
        members[label].append(i)
    for m in members:
        m.sort(key=lambda i: (-int(stats.gram_df[i]), candidates[i]))
    leaders = [candidates[m[0]] for m in members]
    scores = cluster_scores(stats.cluster_df, stats.cluster_count, config.sparsity)
    order = rank_clusters(scores, stats.cluster_df, leaders)
    keep = top_count(n_clusters, config.top_fraction)
    return [
        Cluster(
            rank=rank,
            grams=tuple(candidates[i] for i in members[c]),
            df=int(stats.cluster_df[c]),
            count=int(stats.cluster_count[c]),
            score=float(scores[c]),
            kept=rank < keep,
        )
        for rank, c in enumerate(order)
    ]
