"""The placebo control: HICRA's rule on random frequent n-grams instead of strategic grams.

It separates "what these phrases mean" from "upweighting a few percent of the tokens" (the paper's
camera-ready "Placebo HICRA" ablation: AIME24/25 14.6/9.3 against HICRA's 18.8/14.8 on
Qwen2.5-7B-Base). The placebo set is drawn once, reproducibly from the run's seed, from the
frequent word n-grams (1-3 words) of the run's first batch of completions with planning tokens (or
of a given corpus, `placebo_corpus`) that neither are nor overlap a strategic gram (rarer ones only
when the frequent ones do not suffice), so that on those completions it
marks as many tokens as the real grams do (within 10%). Overlap is judged on the tokens marked: a
candidate that covers any real planning token ("me check:" inside "let me check:") is never drawn.
A draw that misses the 10% band is retried with another seeded order, and refused when no order
fits (`PlaceboUnmatched`). It is saved in the run folder (`placebo_grams.json`) and reused on
resume. Inside a run, `PlaceboMarker` holds the set (loaded, drawn from the corpus at start, or
drawn on the first batch with planning tokens) and marks its tokens for the `placebo` credit.
"""

from __future__ import annotations

import random
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from hicra.errors import HicraError
from hicra.grams import StrategicGrams
from hicra.mining.ngrams import doc_ngrams
from hicra.tagging import GramMatcher, PlanningTagger, lowercase_bytes

if TYPE_CHECKING:  # the train extra's; this module is also read without it
    from accelerate import Accelerator

PLACEBO_FILE = "placebo_grams.json"
TOLERANCE = 0.1  # the placebo's planning-token ratio is within 10% of the real grams'
NGRAM_RANGE = (1, 3)
ATTEMPTS = 32  # seeded candidate orders tried before a draw is refused


class PlaceboUnmatched(HicraError):
    """No placebo set drawn from these completions marks the real grams' token count within 10%."""


@dataclass(frozen=True)
class PlaceboDraw:
    """A drawn placebo set and how well it matches the real grams on the calibration tokens."""

    grams: StrategicGrams
    real_ratio: float
    placebo_ratio: float
    candidates: int


def _overlaps_a_gram(candidate: str, grams: StrategicGrams, matcher: GramMatcher) -> bool:
    """True when a strategic gram occurs inside the candidate or the candidate inside a gram."""
    if candidate in grams or matcher.find(lowercase_bytes(candidate.encode())):
        return True
    padded = f" {candidate} "
    return any(padded in f" {gram} " for gram in grams)


def candidate_ngrams(
    texts: Sequence[str], grams: StrategicGrams, min_docs: int = 2
) -> tuple[list[str], list[str]]:
    """Word n-grams (1-3 words) of the texts that are not strategic grams and overlap none: those
    in at least `min_docs` texts (frequent), and the rest (rare; used only when the frequent ones
    cannot mark enough tokens). Each list most frequent first, ties alphabetical."""
    docs: Counter[str] = Counter()
    for text in texts:
        docs.update(set(doc_ngrams(text, *NGRAM_RANGE)))
    matcher = GramMatcher(grams)
    ranked = sorted(docs, key=lambda g: (-docs[g], g))
    kept = [g for g in ranked if not _overlaps_a_gram(g, grams, matcher)]
    return [g for g in kept if docs[g] >= min_docs], [g for g in kept if docs[g] < min_docs]


def token_coverage(
    candidates: Sequence[str], tagger: PlanningTagger, rows: Sequence[np.ndarray]
) -> list[set[int]]:
    """For each candidate, the (global) indices of the tokens its occurrences overlap."""
    matcher = GramMatcher(StrategicGrams(candidates, name="candidates"))
    table, lengths = tagger._table, tagger._lengths
    coverage: list[set[int]] = [set() for _ in candidates]
    offset = 0
    for ids in rows:
        data = b"".join(map(table.__getitem__, ids.tolist()))
        token_lengths = lengths[ids]
        ends = np.cumsum(token_lengths)
        starts = ends - token_lengths
        for start, end, index in matcher.find(lowercase_bytes(data)):
            first = int(np.searchsorted(ends, start, side="right"))
            stop = int(np.searchsorted(starts, end, side="left"))
            coverage[index].update(offset + t for t in range(first, stop) if token_lengths[t] > 0)
        offset += len(ids)
    return coverage


def draw_placebo(
    texts: Sequence[str],
    rows: Sequence[np.ndarray],
    grams: StrategicGrams,
    tagger: PlanningTagger,
    seed: int,
) -> PlaceboDraw | None:
    """Draw the placebo set on calibration completions (`texts` and their real token ids `rows`).

    Candidates that cover a real planning token are dropped. The rest are visited in a seeded
    random order; one is kept when the tokens covered so far stay within (1 + 10%) of the real
    grams' count, until at least (1 - 10%) of it is covered. An order that ends outside the band
    is retried with the next seeded order (up to `ATTEMPTS`); when none fits, `PlaceboUnmatched`.
    None when the real grams mark no token (nothing to match yet) or no candidate exists.
    """
    real_tokens = sum(len(r) for r in rows)
    masks = [tagger.token_mask([r])[0].numpy() if len(r) else np.zeros(0, bool) for r in rows]
    planning = set(np.flatnonzero(np.concatenate(masks)).tolist()) if masks else set()
    real_planning = len(planning)
    if real_tokens == 0 or real_planning == 0:
        return None
    frequent, rare = candidate_ngrams(texts, grams)
    coverage = token_coverage(frequent + rare, tagger, rows)
    usable = [i for i, covered in enumerate(coverage) if covered and not covered & planning]
    first = [i for i in usable if i < len(frequent)]
    then = [i for i in usable if i >= len(frequent)]
    if not usable:
        return None
    candidates = frequent + rare
    low, high = real_planning * (1 - TOLERANCE), real_planning * (1 + TOLERANCE)
    best = 0
    for attempt in range(ATTEMPTS):
        rng = random.Random(seed if attempt == 0 else f"{seed}/{attempt}")
        order = rng.sample(first, len(first)) + rng.sample(then, len(then))
        covered: set[int] = set()
        chosen: list[str] = []
        for index in order:
            union = covered | coverage[index]
            if len(union) <= high:
                covered, chosen = union, [*chosen, candidates[index]]
            if len(covered) >= low:
                break
        if chosen and low <= len(covered) <= high:
            break
        if abs(len(covered) - real_planning) < abs(best - real_planning):
            best = len(covered)
    else:
        raise PlaceboUnmatched(
            f"no placebo set matches the real planning-token ratio "
            f"{real_planning / real_tokens:.3f} within {TOLERANCE:.0%} on these "
            f"{len(rows)} completions ({ATTEMPTS} seeded draws; the closest marks "
            f"{best / real_tokens:.3f} of the tokens)"
        )
    provenance = {
        "kind": "placebo",
        "seed": seed,
        "attempt": attempt,
        "ngram_range": list(NGRAM_RANGE),
        "calibration_completions": len(rows),
        "calibration_tokens": real_tokens,
        "strategic_grams": grams.name,
        "real_planning_ratio": real_planning / real_tokens,
        "placebo_planning_ratio": len(covered) / real_tokens,
        "candidates": len(usable),
    }
    placebo = StrategicGrams(chosen, name=f"placebo-seed{seed}", provenance=provenance)
    return PlaceboDraw(
        placebo, real_planning / real_tokens, len(covered) / real_tokens, len(usable)
    )


def load_or_none(folder: str | Path) -> StrategicGrams | None:
    """The placebo set saved in a run folder, if any (a resumed run keeps its set)."""
    path = Path(folder) / PLACEBO_FILE
    return StrategicGrams.load(path) if path.is_file() else None


def corpus_texts(path: str | Path, limit: int = 2000) -> list[str]:
    """Texts of a placebo corpus: a JSONL file's `completion` (or `text`, `response`) fields, or a
    plain text file's non-empty lines; at most `limit` of them."""
    from hicra.errors import HicraError
    from hicra.jsonl import read_jsonl

    path = Path(path)
    if not path.is_file():
        raise HicraError(f"placebo_corpus: file not found: {path}")
    texts: list[str] = []
    if path.name.endswith((".jsonl", ".jsonl.gz")):
        for number, row in read_jsonl(path):
            text = next((row[k] for k in ("completion", "text", "response") if k in row), None)
            if not isinstance(text, str):
                raise HicraError(f"{path}, line {number}: no completion, text or response field")
            texts.append(text)
            if len(texts) >= limit:
                break
    else:
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except UnicodeDecodeError as err:
            raise HicraError(f"{path}: not UTF-8 text (byte {err.start})") from None
        texts = [line for line in lines if line.strip()][:limit]
    if not texts:
        raise HicraError(f"placebo_corpus: {path} holds no text")
    return texts


class PlaceboMarker:
    """The placebo set of one run and its tagger: loaded from the run folder (a resumed run), else
    drawn from `corpus` at start when given, else drawn on the first batch with planning tokens.
    A drawn set is saved in the run folder by the main process."""

    def __init__(
        self,
        folder: str | Path,
        real: PlanningTagger,
        seed: int,
        accelerator: Accelerator,
        corpus: str | Path | None = None,
    ) -> None:
        self.folder = Path(folder)
        self.real = real
        self.seed = seed
        self.accelerator = accelerator
        self.grams = load_or_none(folder)
        self.tagger = PlanningTagger(self.grams, real.tokenizer) if self.grams else None
        self._warned = False
        if self.grams is None and corpus:
            self._keep(self._draw_from_corpus(corpus))

    def _draw_from_corpus(self, corpus: str | Path) -> StrategicGrams:
        """The set drawn from the corpus's texts (the same on every process)."""
        texts = corpus_texts(corpus)
        tokenizer = self.real.tokenizer
        rows = [np.asarray(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts]
        grams = self.real.grams
        draw = draw_placebo(texts, rows, grams, self.real, self.seed)
        if draw is None:
            raise HicraError(
                f"placebo_corpus {corpus}: no strategic gram ({grams.name}) "
                "occurs in it, so there is no planning-token ratio to match"
            )
        return draw.grams

    def _keep(self, grams: StrategicGrams) -> None:
        self.grams = grams
        self.tagger = PlanningTagger(grams, self.real.tokenizer)
        if self.accelerator.is_main_process:
            grams.save(self.folder / PLACEBO_FILE)

    def mask(self, completion_ids: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        """Tokens of the placebo n-grams; the set is drawn on the first batch with planning tokens
        (the same on every process: drawn from the gathered batch), then saved and kept."""
        if self.tagger is None:
            grams = self._draw_from_batch(completion_ids, real)
            if grams is None:  # no strategic gram yet: nothing to match, nothing to upweight
                return torch.zeros_like(real)
            self._keep(grams)
        return self.tagger.token_mask(completion_ids, real, strict=False).to(real.device)

    def _draw_from_batch(
        self, completion_ids: torch.Tensor, real: torch.Tensor
    ) -> StrategicGrams | None:
        acc = self.accelerator
        ids = acc.pad_across_processes(completion_ids, dim=1, pad_index=0)
        keep = acc.pad_across_processes(real.long(), dim=1, pad_index=0)
        ids, keep = acc.gather(ids).cpu(), acc.gather(keep).cpu()
        rows = [row[mask.bool()].numpy() for row, mask in zip(ids, keep, strict=True)]
        texts = [self.real.decode_with_spans(row)[0] for row in rows]
        try:
            draw = draw_placebo(texts, rows, self.real.grams, self.real, self.seed)
        except PlaceboUnmatched as err:  # this batch cannot be matched: try the next one
            if not self._warned and acc.is_main_process:
                print(
                    f"hicra train: placebo: {err}; drawing again on the next batch", file=sys.stderr
                )
            self._warned = True
            return None
        return None if draw is None else draw.grams
