"""What both mining pipelines share: pass 1 (the pool of frequent n-grams) and the result types.

`count_pool` streams the traces once and keeps the n-grams in at least `min_df` of them (bounded
memory, `counting.py`); `MiningResult` holds a mined set with its clusters (the paper's pipeline,
`paper/pipeline.py`) or its per-gram choices (contrastive selection, `contrastive/pipeline.py`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hicra.grams import StrategicGrams
from hicra.mining.config import CONTRASTIVE, MiningConfig, MiningError, auto_min_df
from hicra.mining.contrastive.corpus import ContrastReport
from hicra.mining.counting import BoundedDocFrequency, NgramFn
from hicra.mining.sources import CorpusReport, TraceSpec


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
