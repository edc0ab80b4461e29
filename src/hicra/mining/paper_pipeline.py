"""The two mining pipelines, streamed over the input files.

`contrastive` (the default; `contrastive.py` wires it, `scoring.py` says why a gram is kept):

    pass 1   document frequency of every word n-gram, 1-5 words (bounded memory, `counting.py`)
             -> the pool: n-grams in at least `min_df` traces
    pass 2   per pool gram: exact document frequency, occurrences, occurrences in sentences with
             math, sentence openings, traces per group; the distinct problem statements counted
             as the contrast corpus (and any contrast files, `contrast.py`)
    select   scores and tests, the first `max_grams` by document frequency

`paper` (the paper's section 2, PAPER.md):

    pass 1   document frequency of every word n-gram, 3-5 words
             -> candidates: n-grams in at least `min_df` traces, at most `max_candidates`
             (exact frequencies from an extra pass when pass 1 had to prune)
    cluster  embeddings + leader clustering, or exact duplicates only (`clustering.py`)
    pass 2   cluster document frequency (and per-trace counts for the sparsity option)
    select   the top `top_fraction` of clusters; the strategic grams are all their n-grams

Only the paper's candidates are embedded, so its cost is set by `max_candidates`, not the corpus.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from hicra.grams import StrategicGrams
from hicra.jsonl import DEFAULT_MAX_LINE_BYTES
from hicra.mining.clustering import NONE, embed, exact_clusters, leader_clusters, load_embedder
from hicra.mining.config import CONTRASTIVE, MiningConfig, MiningError, auto_min_df
from hicra.mining.contrast import ContrastReport
from hicra.mining.counting import (
    BoundedDocFrequency,
    NgramFn,
    cluster_statistics,
    exact_doc_frequency,
    select_candidates,
)
from hicra.mining.ngrams import doc_ngrams
from hicra.mining.selection import cluster_scores, rank_clusters, top_count
from hicra.mining.sources import CorpusReport, TraceSpec, iter_traces


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


@dataclass(frozen=True)
class GramChoice:
    """A pool n-gram of contrastive selection: why it is kept or not, and its scores."""

    gram: str
    reason: str  # scoring.KEPT or the first test it failed
    df: int
    scores: dict[str, float | None]


@dataclass
class MiningResult:
    grams: StrategicGrams
    clusters: list[Cluster]  # paper: all clusters, ranked; contrastive: none
    candidates: int  # paper: n-grams embedded; contrastive: the pool
    min_df: int
    corpus: CorpusReport
    passes: int
    timings: dict[str, float] = field(default_factory=dict)
    selection: str = "paper"
    choices: list[GramChoice] = field(default_factory=list)  # contrastive: the pool, ranked
    contrast: ContrastReport | None = None

    @property
    def kept(self) -> list[Cluster]:
        return [c for c in self.clusters if c.kept]

    @property
    def kept_choices(self) -> list[GramChoice]:
        return [c for c in self.choices if c.reason == "kept"]


def no_ngram_error(config: MiningConfig, min_df: int, used: int) -> MiningError:
    return MiningError(
        f"no {config.ngram_min}-{config.ngram_max}-gram occurs in {min_df} or more of the "
        f"{used} traces used; lower --min-df or --ngram-min, or add traces"
    )


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


@dataclass
class Pool:
    """Pass 1: the n-grams in at least `min_df` traces (exact document frequency when `exact`)."""

    df: dict[str, int]
    exact: bool
    min_df: int
    corpus: CorpusReport


def count_pool(
    texts: Callable[[CorpusReport], Iterable[str]],
    ngrams: NgramFn,
    config: MiningConfig,
    paths: Sequence[str | Path],
) -> Pool:
    """Pass 1 over the trace texts (`texts(corpus)` fills `corpus` as it is read)."""
    corpus = CorpusReport()
    table = BoundedDocFrequency(config.max_table)
    for text in texts(corpus):
        table.add(ngrams(text))
    _check_corpus(corpus, paths)
    assert config.selection is not None
    min_df = (
        config.min_df if config.min_df is not None else auto_min_df(corpus.used, config.selection)
    )
    return Pool(table.at_least(min_df), table.exact, min_df, corpus)


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

    `model`: an already loaded sentence-transformers model (implies the paper's pipeline and
    overrides `config.embedder`).
    """
    config = (config or MiningConfig()).resolved(model_given=model is not None)
    spec = spec or TraceSpec()
    config.validate()
    if isinstance(paths, (str, Path)):
        paths = [paths]
    if not paths:
        raise MiningError("no input files")
    if config.selection == CONTRASTIVE:
        from hicra.mining.contrastive import mine_contrastive

        return mine_contrastive(paths, config, spec, name=name, max_line_bytes=max_line_bytes)
    return _mine_paper(paths, config, spec, name=name, model=model, max_line_bytes=max_line_bytes)


def _mine_paper(
    paths: Sequence[str | Path],
    config: MiningConfig,
    spec: TraceSpec,
    *,
    name: str,
    model: Any,
    max_line_bytes: int,
) -> MiningResult:
    """The paper's pipeline (module doc)."""
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


def parameters(
    config: MiningConfig, spec: TraceSpec, min_df: int, **resolved: Any
) -> dict[str, Any]:
    """Every parameter that shaped the set, as resolved (what a rerun needs)."""
    values = {
        **asdict(config),
        "min_df": min_df,
        "min_df_requested": config.min_df,
        "text_field": spec.text_field,
        "reward_field": spec.reward_field,
        "min_reward": spec.min_reward,
        **resolved,
    }
    for speed_only in ("batch_size", "threads"):
        values.pop(speed_only)
    if config.selection == CONTRASTIVE:  # the paper's options are unset, and the reverse
        for name in ("top_fraction", "max_candidates", "embedder", "threshold", "sparsity"):
            values.pop(name)
    else:
        for name in ("contrast", "contrast_field", "rules"):
            values.pop(name)
    return values


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
