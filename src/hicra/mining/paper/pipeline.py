"""The paper's strategic-gram mining pipeline, streamed over the input files.

    pass 1   document frequency of every word n-gram, 3-5 words (`pool.count_pool`)
             -> candidates: n-grams in at least `min_df` traces, at most `max_candidates`
             (exact frequencies from an extra pass when pass 1 had to prune)
    cluster  embeddings + leader clustering, or exact duplicates only (`clustering.py` here)
    pass 2   cluster document frequency (and per-trace counts for the sparsity option)
    select   the top `top_fraction` of clusters (`ranking.py` here); the strategic grams are
             all their n-grams

Only the candidates are embedded, so its cost is set by `max_candidates`, not the corpus.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from hicra.grams import StrategicGrams
from hicra.mining.config import MiningConfig, MiningError
from hicra.mining.counting import cluster_statistics, exact_doc_frequency, select_candidates
from hicra.mining.ngrams import doc_ngrams
from hicra.mining.paper.clustering import (
    NONE,
    embed,
    exact_clusters,
    leader_clusters,
    load_embedder,
)
from hicra.mining.paper.ranking import cluster_scores, rank_clusters, top_count
from hicra.mining.pool import Cluster, MiningResult, count_pool, no_ngram_error, parameters
from hicra.mining.sources import CorpusReport, TraceSpec, iter_traces


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


def mine_paper(
    paths: Sequence[str | Path],
    config: MiningConfig,
    spec: TraceSpec,
    *,
    name: str,
    model: Any,
    max_line_bytes: int,
) -> MiningResult:
    """The paper's pipeline (module doc); `mine` checks the config and dispatches here."""
    assert config.ngram_min is not None and config.max_candidates is not None
    ngrams = partial(doc_ngrams, n_min=config.ngram_min, n_max=config.ngram_max)

    def traces(report: CorpusReport | None = None):
        return iter_traces(paths, spec, report, max_line_bytes=max_line_bytes)

    timings: dict[str, float] = {}
    start = time.perf_counter()
    first = count_pool(traces, ngrams, config, paths)
    corpus, min_df, pool = first.corpus, first.min_df, first.df
    passes = 1
    if not first.exact:  # pass 1 pruned: its counts are upper bounds, count the survivors exactly
        pool = exact_doc_frequency(traces(), ngrams, pool)
        passes += 1
    candidates = select_candidates(pool, min_df, config.max_candidates)
    del pool, first
    timings["count"] = time.perf_counter() - start
    if not candidates:
        raise no_ngram_error(config, min_df, corpus.used)

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
        "selection": config.selection,
        "method": "arXiv 2509.03646 section 2: n-gram document frequency, clustering, "
        "top clusters by cluster document frequency",
        "inputs": [str(p) for p in paths],
        "parameters": parameters(
            config,
            spec,
            min_df,
            embedder=embedder or NONE,
            threshold=config.threshold if embedder else None,
        ),
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
