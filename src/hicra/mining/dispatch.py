"""The two mining pipelines, streamed over the input files.

`mine` checks the config and dispatches; pass 1 and the result types are shared (`pool.py`).

`contrastive` (the default; `contrastive/pipeline.py` wires it, `contrastive/scoring.py` says why
a gram is kept):

    pass 1   document frequency of every word n-gram, 1-5 words (bounded memory, `counting.py`)
             -> the pool: n-grams in at least `min_df` traces
    pass 2   per pool gram: exact document frequency, occurrences, occurrences in sentences with
             math, sentence openings, traces per group; the distinct problem statements counted
             as the contrast corpus (and any contrast files, `contrastive/corpus.py`)
    select   scores and tests, the first `max_grams` by document frequency

`paper` (the paper's strategic-gram pipeline; `paper/pipeline.py`):

    pass 1   document frequency of every word n-gram, 3-5 words
             -> candidates: n-grams in at least `min_df` traces, at most `max_candidates`
             (exact frequencies from an extra pass when pass 1 had to prune)
    cluster  embeddings + leader clustering, or exact duplicates only (`paper/clustering.py`)
    pass 2   cluster document frequency (and per-trace counts for the sparsity option)
    select   the top `top_fraction` of clusters; the strategic grams are all their n-grams

Only the paper's candidates are embedded, so its cost is set by `max_candidates`, not the corpus.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hicra.jsonl import DEFAULT_MAX_LINE_BYTES
from hicra.mining.config import CONTRASTIVE, MiningConfig, MiningError
from hicra.mining.paper.pipeline import mine_paper
from hicra.mining.pool import MiningResult
from hicra.mining.sources import TraceSpec


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
        from hicra.mining.contrastive.pipeline import mine_contrastive

        return mine_contrastive(paths, config, spec, name=name, max_line_bytes=max_line_bytes)
    return mine_paper(paths, config, spec, name=name, model=model, max_line_bytes=max_line_bytes)
