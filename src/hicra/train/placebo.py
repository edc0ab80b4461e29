"""The controls: HICRA's rule on random frequent n-grams (placebo) or random tokens instead of
strategic grams.

They separate "what these phrases mean" from "upweighting a few percent of the tokens" (the paper's
camera-ready "Placebo HICRA" ablation: AIME24/25 14.6/9.3 against HICRA's 18.8/14.8 on
Qwen2.5-7B-Base). The placebo set is drawn reproducibly from the run's seed, from the word n-grams
(1-3 words) of the run's first batch of completions with planning tokens (or of a given corpus,
`placebo_corpus`) that are as frequent as the strategic grams (document frequency at least the
median of the strategic grams' that occur; lower floors down to 2 completions only when none
fits), neither are nor overlap a strategic gram, touch no token of a completion's final-answer
statement and share no word with the format instruction, so that on those completions it marks as
many tokens as the real grams do (within 10%). Overlap is judged on the tokens marked: a candidate
that covers any real planning token ("me check:" inside "let me check:") is never drawn. A draw
that misses the 10% band is retried with another seeded order, and refused when no order fits
(`PlaceboUnmatched`). During the run `PlaceboControl` counts planning and placebo tokens; when
the run-long ratio leaves the 10% band the set is drawn again on the current batch, aimed at
bringing the run-long ratio back to 1 (a re-match). The set, its history and the counts are saved
in the run folder (`placebo_grams.json`) and reused on resume.
"""

from __future__ import annotations

import json
import random
import re
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hicra.advantages import Credit, random_token_mask
from hicra.errors import HicraError
from hicra.grams import StrategicGrams
from hicra.mining.ngrams import doc_ngrams
from hicra.run_folder import Metric
from hicra.tagging import GramMatcher, PlanningTagger, lowercase_bytes

PLACEBO_FILE = "placebo_grams.json"
TOLERANCE = 0.1  # the placebo's planning-token ratio is within 10% of the real grams'
NGRAM_RANGE = (1, 3)
ATTEMPTS = 32  # seeded candidate orders tried before a draw is refused
MIN_DOCS = 2  # a placebo gram occurs in at least 2 calibration completions, never fewer
ANSWER_OR_FORMAT = "answer_or_format"  # placebo_grams.json: drawn grams touching answer or format
SENTENCE_BREAKS = (b". ", b"! ", b"? ", b"\n")


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


def document_counts(texts: Sequence[str]) -> Counter[str]:
    """In how many of the texts each word n-gram (1-3 words) occurs."""
    docs: Counter[str] = Counter()
    for text in texts:
        docs.update(set(doc_ngrams(text, *NGRAM_RANGE)))
    return docs


def candidate_ngrams(
    texts: Sequence[str],
    grams: StrategicGrams,
    min_docs: int = MIN_DOCS,
    docs: Counter[str] | None = None,
) -> tuple[list[str], list[str]]:
    """Word n-grams (1-3 words) of the texts that are not strategic grams and overlap none: those
    in at least `min_docs` texts (frequent), and the rest (rare: never drawn). Each list most
    frequent first, ties alphabetical. `docs`: the texts' `document_counts`, when known."""
    docs = document_counts(texts) if docs is None else docs
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


def _sentence_start(lowered: bytes, pos: int) -> int:
    starts = [i + len(sep) for sep in SENTENCE_BREAKS if (i := lowered.rfind(sep, 0, pos)) >= 0]
    return max([0, *starts])


def answer_span(data: bytes) -> tuple[int, int] | None:
    """Byte span of a completion's final-answer statement: from the start of the sentence that
    holds the last `\boxed{` to that box's closing brace, reaching back over the sentences just
    before it that already state the boxed value ("compute it: 4 + 5 = 9. So the answer is
    \boxed{9}"); without a box, the last sentence that says "answer". None when there is neither.
    Sentences break at ". ", "! ", "? " and newlines."""
    lowered = lowercase_bytes(data)
    at = lowered.rfind(b"\\boxed{")
    if at < 0:
        at = lowered.rfind(b"answer")
        if at < 0:
            return None
        ends = [i for sep in SENTENCE_BREAKS if (i := lowered.find(sep, at)) >= 0]
        return _sentence_start(lowered, at), min(ends) + 1 if ends else len(lowered)
    depth, end = 0, len(lowered)
    for pos in range(at + len(b"\\boxed"), len(lowered)):
        depth += {ord("{"): 1, ord("}"): -1}.get(lowered[pos], 0)
        if depth == 0:
            end = pos + 1
            break
    start = _sentence_start(lowered, at)
    value = lowered[at + len(b"\\boxed{") : end - 1].strip()
    if value:
        stated = re.compile(rb"(?<![0-9a-z])" + re.escape(value) + rb"(?![0-9a-z])")
        while start > 0:
            previous = _sentence_start(lowered, start - 1)
            if not stated.search(lowered, previous, start):
                break
            start = previous
    return start, end


def format_words(format_text: str) -> set[str]:
    """The words of the format instruction (system prompt and instruction), as n-grams spell them."""
    return set(doc_ngrams(format_text, 1, 1)) if format_text else set()


def answer_or_format(grams: Sequence[str], texts: Sequence[str], format_text: str) -> list[str]:
    """The grams that touch the final-answer statement of any of the texts (`answer_span`) or share
    a word with the format instruction: what a placebo must never mark (an empty list is clean)."""
    if not grams:
        return []
    matcher = GramMatcher(StrategicGrams(list(grams), name="check"))
    touched: set[int] = set()
    for text in texts:
        data = lowercase_bytes(text.encode())
        span = answer_span(data)
        if span is None:
            continue
        touched.update(
            i for start, end, i in matcher.find(data) if start < span[1] and end > span[0]
        )
    words = format_words(format_text)
    return [
        gram
        for index, gram in enumerate(matcher.grams)
        if index in touched or words & set(gram.split())
    ]


def frequency_floor(texts: Sequence[str], grams: StrategicGrams) -> int:
    """The strategic grams' document frequency on these texts: the median, over the strategic grams
    that occur, of the number of texts each occurs in (at least `MIN_DOCS`)."""
    matcher = GramMatcher(grams)
    docs: Counter[int] = Counter()
    for text in texts:
        docs.update({index for _, _, index in matcher.find(lowercase_bytes(text.encode()))})
    return max(MIN_DOCS, int(np.median(list(docs.values())))) if docs else MIN_DOCS


def answer_tokens(tagger: PlanningTagger, rows: Sequence[np.ndarray]) -> set[int]:
    """(Global) indices of the tokens that overlap each row's final-answer statement."""
    table, lengths = tagger._table, tagger._lengths
    found: set[int] = set()
    offset = 0
    for ids in rows:
        span = answer_span(b"".join(map(table.__getitem__, ids.tolist())))
        if span is not None:
            token_lengths = lengths[ids]
            ends = np.cumsum(token_lengths)
            first = int(np.searchsorted(ends, span[0], side="right"))
            stop = int(np.searchsorted(ends - token_lengths, span[1], side="left"))
            found.update(offset + t for t in range(first, stop) if token_lengths[t] > 0)
        offset += len(ids)
    return found


def draw_placebo(
    texts: Sequence[str],
    rows: Sequence[np.ndarray],
    grams: StrategicGrams,
    tagger: PlanningTagger,
    seed: int | str,
    format_text: str = "",
    target: int | None = None,
) -> PlaceboDraw | None:
    """Draw the placebo set on calibration completions (`texts` and their real token ids `rows`).

    Candidates that cover a real planning token or a token of a final-answer statement, or share a
    word with `format_text`, are dropped; so are those in fewer completions than the strategic
    grams' median (`frequency_floor`; halved down to `MIN_DOCS` only when no set fits). The rest are
    visited in a seeded random order; one is kept when the tokens covered so far stay within
    (1 + 10%) of the target (by default the real grams' token count), until at least (1 - 10%) of
    it is covered. An order that ends outside the band is retried with the next seeded order (up
    to `ATTEMPTS`); when none fits at any floor, or no candidate is left, `PlaceboUnmatched`. None
    when the real grams mark no token (nothing to match yet).
    """
    real_tokens = sum(len(r) for r in rows)
    masks = [tagger.token_mask([r])[0].numpy() if len(r) else np.zeros(0, bool) for r in rows]
    planning = set(np.flatnonzero(np.concatenate(masks)).tolist()) if masks else set()
    real_planning = len(planning)
    if real_tokens == 0 or real_planning == 0:
        return None
    goal = real_planning if target is None else max(1, int(target))
    forbidden = planning | answer_tokens(tagger, rows)
    words = format_words(format_text)
    docs = document_counts(texts)
    frequent, _ = candidate_ngrams(texts, grams, MIN_DOCS, docs)
    candidates = [gram for gram in frequent if not words & set(gram.split())]
    nothing = PlaceboUnmatched(
        f"no word n-gram of these {len(rows)} completions is in 2 or more of them outside the "
        "strategic grams, the final-answer statements and the format instruction: there is "
        "nothing neutral to draw a placebo from"
    )
    if not candidates:
        raise nothing
    coverage = token_coverage(candidates, tagger, rows)
    usable = [i for i, covered in enumerate(coverage) if covered and not covered & forbidden]
    if not usable:
        raise nothing
    floors = [frequency_floor(texts, grams)]
    while floors[-1] > MIN_DOCS:
        floors.append(max(MIN_DOCS, floors[-1] // 2))
    low, high = goal * (1 - TOLERANCE), goal * (1 + TOLERANCE)
    best = 0
    for floor in floors:
        pool = [i for i in usable if docs[candidates[i]] >= floor]
        for attempt in range(ATTEMPTS):
            rng = random.Random(f"{seed}" if attempt == 0 else f"{seed}/{attempt}")
            covered: set[int] = set()
            chosen: list[str] = []
            for index in rng.sample(pool, len(pool)):
                union = covered | coverage[index]
                if len(union) <= high:
                    covered, chosen = union, [*chosen, candidates[index]]
                if len(covered) >= low:
                    break
            if chosen and low <= len(covered) <= high:
                break
            if abs(len(covered) - goal) < abs(best - goal):
                best = len(covered)
        else:
            continue
        break
    else:
        raise PlaceboUnmatched(
            f"no placebo set matches the target of {goal / real_tokens:.3f} of the tokens "
            f"(planning ratio {real_planning / real_tokens:.3f}) within {TOLERANCE:.0%} on these "
            f"{len(rows)} completions ({ATTEMPTS} seeded draws at each document-frequency floor "
            f"{floors}; the closest marks {best / real_tokens:.3f} of the tokens)"
        )
    provenance = {
        "kind": "placebo",
        "seed": seed,
        "attempt": attempt,
        "ngram_range": list(NGRAM_RANGE),
        "min_docs": floor,
        "calibration_completions": len(rows),
        "calibration_tokens": real_tokens,
        "strategic_grams": grams.name,
        "real_planning_ratio": real_planning / real_tokens,
        "target_ratio": goal / real_tokens,
        "placebo_planning_ratio": len(covered) / real_tokens,
        "candidates": len(pool),
        ANSWER_OR_FORMAT: answer_or_format(chosen, texts, format_text),
    }
    placebo = StrategicGrams(chosen, name=f"placebo-seed{seed}", provenance=provenance)
    return PlaceboDraw(placebo, real_planning / real_tokens, len(covered) / real_tokens, len(pool))


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


# --------------------------------------------------------------------------- during a run
RUN_FIELD = "run"  # placebo_grams.json: the draws, the cumulative counts, the re-matches


def random_generator(seed: int, step: int, rank: int) -> torch.Generator:
    """The random-tokens control's generator for one batch: reproducible from the run's seed, the
    step and the process, so a resumed run draws what the uninterrupted one drew."""
    state = np.random.SeedSequence([int(seed) % 2**32, int(step), int(rank)]).generate_state(1)
    return torch.Generator().manual_seed(int(state[0]))


def run_ratio(planning: float, control: float) -> float:
    """The run-long ratio: control tokens over planning tokens so far (NaN before any planning)."""
    return control / planning if planning else float("nan")


@dataclass
class RunCounts:
    """Cumulative planning and control tokens of a run's training batches, per step (saved, so
    that a resumed run continues the counts of the step it resumes from)."""

    history: list[list[int]] = field(default_factory=list)  # [step, planning, control] cumulative

    def until(self, step: int) -> None:
        """Forget the batches generated at or after `step` (a resume from checkpoint `step`)."""
        self.history = [row for row in self.history if row[0] < step]

    @property
    def planning(self) -> int:
        return self.history[-1][1] if self.history else 0

    @property
    def control(self) -> int:
        return self.history[-1][2] if self.history else 0

    def add(self, step: int, planning: int, control: int) -> None:
        self.history.append([step, self.planning + planning, self.control + control])

    def ratio(self) -> float:
        return run_ratio(self.planning, self.control)


class PlaceboControl:
    """The placebo set of one run: drawn, counted, re-matched, saved and resumed.

    `mask` is called once per generation batch with the step, the batch's completions and their
    planning mask; it draws the set on the first batch with planning tokens (from the gathered
    batch: the same on every process), counts planning and placebo tokens of the whole batch
    (summed over processes), and re-matches when the run-long ratio leaves the 10% band.
    """

    need = "placebo_mask"

    def __init__(
        self,
        grams: StrategicGrams,
        tagger: PlanningTagger,
        seed: int,
        folder: str | Path,
        accelerator: Any,
        format_text: str = "",
    ) -> None:
        self.strategic, self.tagger, self.seed = grams, tagger, seed
        self.path = Path(folder) / PLACEBO_FILE
        self.accelerator = accelerator
        self.format_text = format_text
        self.counts = RunCounts()
        self.draws: list[dict[str, Any]] = []  # {"step", "grams", "target", "run_ratio_before"}
        self.grams: StrategicGrams | None = None
        self._tagger: PlanningTagger | None = None
        self._resumed = False
        self._warned = False
        self._load()

    # ------------------------------------------------------------------ the file
    def _load(self) -> None:
        if not self.path.is_file():
            return
        self.grams = StrategicGrams.load(self.path)
        data = json.loads(self.path.read_text(encoding="utf-8"))
        run = data.get(RUN_FIELD) or {}
        self.counts = RunCounts([list(map(int, row)) for row in run.get("counts", [])])
        self.draws = list(run.get("draws", []))
        self._tagger = PlanningTagger(self.grams, self.tagger.tokenizer)

    def _use(self, grams: StrategicGrams | None) -> None:
        self.grams = grams
        self._tagger = PlanningTagger(grams, self.tagger.tokenizer) if grams else None

    def save(self) -> None:
        """Write the set in force, its answer-or-format check, the draws and the counts."""
        if self.grams is None or not self.accelerator.is_main_process:
            return
        data = self.grams.to_dict()
        data[ANSWER_OR_FORMAT] = list(self.grams.provenance.get(ANSWER_OR_FORMAT, []))
        data[RUN_FIELD] = {
            "counts": self.counts.history,
            "draws": self.draws,
            "rematches": max(0, len(self.draws) - 1),
            "run_ratio": _finite_or_none(self.counts.ratio()),
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        tmp.replace(self.path)

    def resume_at(self, step: int) -> None:
        """A run resumed from checkpoint `step` continues with the set in force at that step."""
        self.counts.until(step)
        kept = [draw for draw in self.draws if draw["step"] < step]
        if kept != self.draws and self.grams is not None:
            self.draws = kept
            if kept:
                self._use(
                    StrategicGrams(
                        kept[-1]["grams"],
                        name=self.grams.name,
                        provenance=kept[-1].get("provenance"),
                    )
                )
            else:
                self._use(None)

    # ------------------------------------------------------------------ drawing
    def draw_from_corpus(self, corpus: str | Path) -> None:
        """The set drawn from `placebo_corpus` before training (the same on every process)."""
        texts = corpus_texts(corpus)
        tokenizer = self.tagger.tokenizer
        rows = [np.asarray(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts]
        draw = draw_placebo(texts, rows, self.strategic, self.tagger, self.seed, self.format_text)
        if draw is None:
            raise HicraError(
                f"placebo_corpus {corpus}: no strategic gram ({self.strategic.name}) occurs in "
                "it, so there is no planning-token ratio to match"
            )
        self._adopt(draw.grams, step=-1, target=None)  # before the first batch (step 0)

    def _adopt(self, grams: StrategicGrams, step: int, target: int | None) -> None:
        self.draws.append(
            {
                "step": step,
                "grams": list(grams),
                "target": target,
                "run_ratio_before": _finite_or_none(self.counts.ratio()),
                "provenance": dict(_plain(grams.provenance)),
            }
        )
        self._use(grams)
        self.save()

    def _gathered(self, completion_ids: torch.Tensor, real: torch.Tensor):
        acc = self.accelerator
        ids = acc.pad_across_processes(completion_ids, dim=1, pad_index=0)
        keep = acc.pad_across_processes(real.long(), dim=1, pad_index=0)
        ids, keep = acc.gather(ids).cpu(), acc.gather(keep).cpu()
        rows = [row[mask.bool()].numpy() for row, mask in zip(ids, keep, strict=True)]
        texts = [self.tagger.decode_with_spans(row)[0] for row in rows]
        return texts, rows

    def _try_draw(self, completion_ids, real, seed: str | int, target: int | None, step: int):
        texts, rows = self._gathered(completion_ids, real)
        try:
            return draw_placebo(
                texts, rows, self.strategic, self.tagger, seed, self.format_text, target
            )
        except PlaceboUnmatched as err:  # this batch cannot be matched: try the next one
            if not self._warned and self.accelerator.is_main_process:
                print(
                    f"hicra train: placebo (step {step}): {err}; drawing again on the next batch",
                    file=sys.stderr,
                )
            self._warned = True
            return None

    # ------------------------------------------------------------------ every batch
    def _count(self, mask: torch.Tensor) -> int:
        local = torch.tensor(
            [float(mask.sum())], dtype=torch.float64, device=self.accelerator.device
        )
        return int(self.accelerator.reduce(local, reduction="sum").item())

    def mask(
        self,
        completion_ids: torch.Tensor,
        real: torch.Tensor,
        planning: torch.Tensor,
        step: int,
        train: bool = True,
    ) -> torch.Tensor:
        """The batch's placebo mask; on training batches the counts are kept and the set is drawn
        (first batch with planning tokens) or re-matched (run-long ratio outside 10%)."""
        if train and not self._resumed:
            self._resumed = True
            self.resume_at(step)
        if self._tagger is None:
            if not train:
                return torch.zeros_like(real)
            draw = self._try_draw(completion_ids, real, self.seed, None, step)
            if draw is None:  # no strategic gram yet: nothing to match, nothing to upweight
                self.counts.add(step, self._count(planning & real), 0)
                return torch.zeros_like(real)
            self._adopt(draw.grams, step, None)
        mask = self._tagger.token_mask(completion_ids, real, strict=False).to(real.device)
        if not train:
            return mask
        planned, marked = self._count(planning & real), self._count(mask)
        total_planning = self.counts.planning + planned
        total = self.counts.control + marked
        if total_planning and abs(run_ratio(total_planning, total) - 1) > TOLERANCE:
            # aim this batch at the count that brings the run-long ratio back to 1, within reach
            wanted = total_planning - self.counts.control
            target = int(min(max(wanted, planned // 2, 1), 2 * max(planned, 1)))
            seed = f"{self.seed}/rematch{len(self.draws)}"
            draw = self._try_draw(completion_ids, real, seed, target, step)
            if draw is not None:
                self._adopt(draw.grams, step, target)
                mask = self._tagger.token_mask(completion_ids, real, strict=False).to(real.device)
                marked = self._count(mask)
        self.counts.add(step, planned, marked)
        self.save()
        return mask

    def metrics(self) -> dict[str, float]:
        """What a training step logs beside `hicra/placebo_ratio`."""
        return {
            Metric.PLACEBO_RUN_RATIO: self.counts.ratio(),
            Metric.PLACEBO_REMATCHES: float(self.rematches),
        }

    @property
    def rematches(self) -> int:
        """Draws made during the run to bring the run-long ratio back into the band."""
        return sum(draw.get("target") is not None for draw in self.draws)


RANDOM_FILE = "random_tokens.json"  # the random-tokens control's cumulative counts


class RandomTokens:
    """The random-tokens control of one run: each batch's mask (`random_token_mask`, seeded by the
    run's seed, the step and the process) and the run-long counts, saved for resume."""

    need = "random_mask"

    def __init__(self, seed: int, folder: str | Path, accelerator: Any) -> None:
        self.seed, self.accelerator = seed, accelerator
        self.path = Path(folder) / RANDOM_FILE
        self.counts = RunCounts()
        if self.path.is_file():
            rows = json.loads(self.path.read_text(encoding="utf-8")).get("counts", [])
            self.counts = RunCounts([list(map(int, row)) for row in rows])
        self._resumed = False

    def mask(
        self,
        completion_ids: torch.Tensor,
        real: torch.Tensor,
        planning: torch.Tensor,
        step: int,
        train: bool = True,
    ) -> torch.Tensor:
        generator = random_generator(self.seed, step, self.accelerator.process_index)
        mask = random_token_mask(planning, real, generator)
        if train:
            if not self._resumed:
                self._resumed = True
                self.counts.until(step)
            local = [float((planning & real).sum()), float(mask.sum())]
            tensor = torch.tensor(local, dtype=torch.float64, device=self.accelerator.device)
            planned, marked = self.accelerator.reduce(tensor, reduction="sum").tolist()
            self.counts.add(step, int(planned), int(marked))
            if self.accelerator.is_main_process:
                self.path.write_text(json.dumps({"counts": self.counts.history}) + "\n", "utf-8")
        return mask

    def metrics(self) -> dict[str, float]:
        return {Metric.PLACEBO_RUN_RATIO: self.counts.ratio()}


def control_for(
    credit: Credit,
    seed: int,
    folder: str | Path,
    grams: StrategicGrams,
    tagger: PlanningTagger,
    accelerator: Any,
    run_config: dict[str, Any] | None = None,
    corpus: str | None = None,
) -> PlaceboControl | RandomTokens | None:
    """The control a credit needs (placebo n-grams or random tokens), or None for other credits.
    The placebo's format instruction is the run's system prompt and instruction."""
    if "random_mask" in credit.needs:
        return RandomTokens(seed, folder, accelerator)
    if "placebo_mask" not in credit.needs:
        return None
    config = run_config or {}
    format_text = " ".join(
        str(config[key]) for key in ("system_prompt", "instruction") if config.get(key)
    )
    control = PlaceboControl(grams, tagger, seed, folder, accelerator, format_text)
    if control.grams is None and corpus:
        control.draw_from_corpus(corpus)
    return control


def _finite_or_none(value: float) -> float | None:
    return value if value == value else None


def _plain(value: Any) -> Any:
    """Frozen provenance (read-only mappings, tuples) as plain JSON data."""
    return json.loads(
        json.dumps(value, default=lambda v: dict(v) if hasattr(v, "items") else list(v))
    )
