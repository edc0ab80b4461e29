"""A checked rollout dump (`hicra.report.dumps`) as a `Run`: the metrics a hicra run logs.

Each completion is tokenized (`--tokenizer`), tagged with the core's `PlanningTagger` (the same
token masks and gram counts as in training) and summed per step into the metrics of
docs/run-format.md with the core's `hierarchy` functions: accuracy, reward, length, planning
ratio, semantic entropy (plug-in and Miller-Madow, with the occurrences N and distinct grams K),
and the planning / execution token entropies when the dump has per-token entropies or `--model`
computes them (`hicra.report.entropies`). The run comes with its rollouts counted and sampled, so
everything after loading is the report of a hicra run.

Two streaming passes keep memory bounded by one chunk of rows: the first checks every row (a bad
row is an error before a tokenizer or model is loaded, or anything written) and indexes steps and
outcomes for the rollout sample; the second tokenizes, tags and sums.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from hicra import hierarchy
from hicra.report.dumps import (
    DEFAULT_TOKENIZER,
    ENTROPY_FIELDS,
    Dump,
    DumpError,
    DumpOptions,
    DumpReader,
    Fields,
    Row,
)
from hicra.report.rollouts import Rollout, RolloutScan, merge_spans, select_lines
from hicra.report.runs import Run
from hicra.run_folder import Metric
from hicra.tagging import PlanningTagger
from hicra.trace_fields import trace_text

CHUNK_ROWS = 256  # rows tokenized and tagged together


# --------------------------------------------------------------------------- sums per step
@dataclass
class StepSums:
    """What one step's rollouts add up to; means are taken at the end (token-weighted)."""

    rollouts: int = 0
    scored: int = 0
    score_sum: float = 0.0
    judged: int = 0
    correct: int = 0
    tokens: int = 0
    planning_tokens: int = 0
    grams: Counter[str] = field(default_factory=Counter)
    planning_entropy_sum: float = 0.0
    execution_entropy_sum: float = 0.0
    entropy_planning_tokens: int = 0
    entropy_execution_tokens: int = 0

    def metrics(self) -> dict[str, float]:
        nan = math.nan

        def mean(total: float, count: int) -> float:
            return total / count if count else nan

        out = {
            Metric.REWARD: mean(self.score_sum, self.scored),
            Metric.ACCURACY: mean(self.correct, self.judged),
            Metric.COMPLETIONS: float(self.judged) if self.judged else nan,
            Metric.LENGTH: mean(self.tokens, self.rollouts),
            Metric.PLANNING_RATIO: mean(self.planning_tokens, self.tokens),
            Metric.SEMANTIC_ENTROPY: hierarchy.semantic_entropy(self.grams),
            Metric.SEMANTIC_ENTROPY_MM: hierarchy.semantic_entropy_miller_madow(self.grams),
            Metric.GRAM_OCCURRENCES: float(sum(self.grams.values())),
            Metric.DISTINCT_GRAMS: float(sum(1 for c in self.grams.values() if c > 0)),
        }
        p_n, e_n = self.entropy_planning_tokens, self.entropy_execution_tokens
        out[Metric.PLANNING_ENTROPY] = mean(self.planning_entropy_sum, p_n)
        out[Metric.EXECUTION_ENTROPY] = mean(self.execution_entropy_sum, e_n)
        out[Metric.ENTROPY] = mean(
            self.planning_entropy_sum + self.execution_entropy_sum, p_n + e_n
        )
        return out


def _outcome(row: Row) -> str:
    return "correct" if row.correct is True else "incorrect" if row.correct is False else "unknown"


@dataclass
class Index:
    """Pass one's findings: rows per step and outcome (for the sample), and row count."""

    by_step: dict[int, list[tuple[int, str]]] = field(default_factory=dict)
    rows: int = 0
    with_entropies: int = 0


def index_dump(reader: DumpReader) -> Index:
    """Check every row of the dump and index it; the first bad row is an error."""
    index = Index()
    for row in reader.rows():
        index.by_step.setdefault(row.step, []).append((index.rows, _outcome(row)))
        index.rows += 1
        index.with_entropies += row.entropies is not None
    return index


def _text(value: Any) -> str:
    if value is None:
        return ""
    return trace_text(value) or (value if isinstance(value, str) else str(value))


class Converter:
    """Pass two: tokenize, tag and sum the dump's rows per step; keep the sampled rollouts."""

    def __init__(self, tagger: PlanningTagger, entropy_model: Any = None) -> None:
        self.tagger = tagger
        self.tokenizer = tagger.tokenizer
        self.entropy_model = entropy_model
        self.sums: dict[int, StepSums] = {}
        self.samples: list[Rollout] = []
        self.entropy_mismatch = 0  # dumped entropies whose count is not the completion's tokens
        self.entropy_rows = 0

    def add(self, rows: list[tuple[int, Row]], wanted: set[int]) -> None:
        """One chunk of (row id, row): its token masks, gram counts, entropies and samples."""
        texts = [row.completion for _, row in rows]
        ids = self.tokenizer(texts, add_special_tokens=False, return_attention_mask=False)[
            "input_ids"
        ]
        entropies = self._entropies(rows, ids)
        for (gid, row), row_ids, row_entropies in zip(rows, ids, entropies, strict=True):
            sums = self.sums.setdefault(row.step, StepSums())
            mask = self.tagger.token_mask([row_ids], gram_counts=sums.grams, strict=False)[0]
            sums.rollouts += 1
            sums.tokens += len(row_ids)
            planning = int(mask.sum())
            sums.planning_tokens += planning
            if row.score is not None:
                sums.scored += 1
                sums.score_sum += row.score
            if row.correct is not None:
                sums.judged += 1
                sums.correct += row.correct
            if row_entropies is not None and len(row_ids):
                self.entropy_rows += 1
                split = hierarchy.token_entropy_by_class(
                    torch.as_tensor(row_entropies, dtype=torch.float32)[None],
                    mask[None],
                    torch.ones(1, len(row_ids), dtype=torch.bool),
                )
                sums.planning_entropy_sum += split.planning_sum
                sums.execution_entropy_sum += split.execution_sum
                sums.entropy_planning_tokens += split.planning_tokens
                sums.entropy_execution_tokens += split.execution_tokens
            if gid in wanted:
                self.samples.append(self._rollout(row, len(row_ids), planning))

    def _entropies(self, rows: list[tuple[int, Row]], ids: list[list[int]]) -> list[Any]:
        if self.entropy_model is not None:
            return self.entropy_model([row.prompt for _, row in rows], ids)
        out: list[Any] = []
        for (_, row), row_ids in zip(rows, ids, strict=True):
            if row.entropies is not None and len(row.entropies) != len(row_ids):
                self.entropy_mismatch += 1
                out.append(None)
            else:
                out.append(row.entropies)
        return out

    def _rollout(self, row: Row, length: int, planning: int) -> Rollout:
        spans = [list(s) for s in self.tagger.spans(row.completion)]
        return Rollout(
            line=row.line,
            step=row.step,
            group=row.group,
            prompt=_text(row.prompt),
            completion=row.completion,
            answer=_text(row.answer),
            reward=row.score,
            correct=row.correct,
            advantage=None,
            length=length,
            planning_tokens=planning,
            spans=merge_spans(spans, len(row.completion)),
        )


# --------------------------------------------------------------------------- the run
def _chunks(reader: DumpReader, size: int, limit: int) -> Iterator[list[tuple[int, Row]]]:
    """The first `limit` rows (those pass one checked: a live run's last file may have grown since)
    in chunks of `size`, each row with its number in the dump."""
    chunk: list[tuple[int, Row]] = []
    for gid, row in enumerate(reader.rows()):
        if gid >= limit:
            break
        chunk.append((gid, row))
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _accuracy_words(fields: Fields) -> tuple[str, str]:
    """How accuracy is read (for report.json and the summary) and the note when it is a score."""
    if fields.accuracy:
        return f"'{fields.accuracy}' (true, or >= 1: exactly right)", ""
    if fields.score:
        note = f"mean '{fields.score}' (the dump has no accuracy field)"
        return note, note
    return "none (no accuracy or score field)", ""


def load_dump(dump: Dump, options: DumpOptions, max_rollouts: int, label: str | None = None) -> Run:
    """Read a dump as a `Run`: its metrics per step, its rollouts counted and sampled."""
    from hicra.models import load_tokenizer

    reader = DumpReader(dump)
    index = index_dump(reader)
    fields = reader.fields
    assert fields is not None
    entropy_model = None
    if options.model:
        from hicra.report.entropies import TokenEntropies

        if options.tokenizer and options.tokenizer != options.model:
            raise DumpError(
                "give --tokenizer or --model, not both: --model tokenizes with its own tokenizer, "
                "so that entropies and planning marks fall on the same tokens"
            )
        entropy_model = TokenEntropies(
            options.model, options.batch_size, options.device, total=index.rows
        )
        tokenizer, tokenizer_name = entropy_model.tokenizer, options.model
    else:
        tokenizer_name = options.tokenizer or DEFAULT_TOKENIZER
        tokenizer = load_tokenizer(tokenizer_name)
    tagger = PlanningTagger(options.grams, tokenizer)
    converter = Converter(tagger, entropy_model)
    wanted = select_lines(index.by_step, max_rollouts)
    try:
        for chunk in _chunks(DumpReader(dump), CHUNK_ROWS, index.rows):
            converter.add(chunk, wanted)
    finally:
        if entropy_model is not None:
            entropy_model.close()
    steps = np.array(sorted(converter.sums), dtype=np.int64)
    per_step = [converter.sums[int(s)].metrics() for s in steps]
    metrics = {key: np.array([m[key] for m in per_step], dtype=float) for key in per_step[0]}
    accuracy_source, accuracy_note = _accuracy_words(fields)
    warnings, why_empty = _notes(dump, fields, options, tokenizer_name, index, converter)
    scan = RolloutScan(dump.path)
    scan.total = index.rows
    for step, rows in index.by_step.items():
        scan.per_step[step] = len(rows)
        scan.outcomes.update(outcome for _, outcome in rows)
    scan.grams_per_step = {step: sums.grams for step, sums in converter.sums.items()}
    scan.with_spans = index.rows
    scan.samples = sorted(converter.samples, key=lambda r: (r.step, r.line))
    if entropy_model is not None:
        entropy_source = f"computed with --model {options.model} (teacher-forced)"
    elif fields.entropies and converter.entropy_rows:
        entropy_source = f"read from the dump's '{fields.entropies}' field"
    else:
        entropy_source = None
    source = {
        "kind": "verl rollout dump" if dump.kind == "verl" else "rollout file",
        "files": len(dump.files),
        "rollouts": index.rows,
        "fields": fields.describe(),
        "accuracy": accuracy_source,
        "tokenizer": tokenizer_name,
        "grams": tagger.grams.name,
        "token_entropies": entropy_source,
    }
    run = Run(
        path=dump.path,
        label=label or dump.label,
        config={},
        steps=steps,
        metrics=metrics,
        warnings=warnings,
        rollouts=scan,
        source=source,
        why_empty=why_empty,
    )
    if accuracy_note:
        run.accuracy_note = accuracy_note
    return run


def _notes(
    dump: Dump,
    fields: Fields,
    options: DumpOptions,
    tokenizer_name: str,
    index: Index,
    converter: Converter,
) -> tuple[list[str], dict[str, str]]:
    """Warnings for the report, and why each panel a dump cannot fill stays empty."""
    warnings: list[str] = []
    why: dict[str, str] = {}
    if not options.tokenizer and not options.model:
        warnings.append(
            f"{dump.path}: tokenized with {tokenizer_name} (the dump does not name its model); "
            "lengths and planning ratios are in that tokenizer's tokens: give --tokenizer with "
            "the run's model for its own"
        )
    if converter.entropy_model is None:
        if not fields.entropies:
            reason = (
                "no per-token entropies: the dump has none "
                f"({', '.join(ENTROPY_FIELDS)}); give --model M to compute them"
            )
        elif not converter.entropy_rows:
            reason = (
                f"no usable per-token entropies: '{fields.entropies}' never has one value per "
                "token of the completion; give --model M to compute them"
            )
        else:
            reason = ""
        if reason:
            warnings.append(f"{dump.path}: {reason}")
            for key in (Metric.PLANNING_ENTROPY, Metric.EXECUTION_ENTROPY, Metric.ENTROPY):
                why[key] = reason
    too_long = getattr(converter.entropy_model, "too_long", 0)
    if too_long:
        warnings.append(
            f"{dump.path}: {too_long} of {index.rows} rollouts are longer than {options.model}'s "
            "context; left out of the entropy means"
        )
    if converter.entropy_mismatch:
        warnings.append(
            f"{dump.path}: {converter.entropy_mismatch} of {index.rows} rollouts have "
            f"'{fields.entropies}' of another length than their {tokenizer_name} tokens; "
            "left out of the entropy means"
        )
    fork = "fork-token overlap is not computed from rollout dumps"
    why[Metric.FORK_PLANNING_HIGH] = why[Metric.FORK_HIGH_PLANNING] = fork
    if not fields.score and not fields.accuracy:
        reason = "the dump has no score, reward or accuracy field"
        warnings.append(f"{dump.path}: {reason}")
        for key in (Metric.ACCURACY, Metric.REWARD):
            why[key] = reason
    elif not fields.score:
        why[Metric.REWARD] = "the dump has no score or reward field"
    return warnings, why
