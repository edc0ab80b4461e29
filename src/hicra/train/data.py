"""Training prompts and gold answers from local files, the hub, or reasoning-gym.

Every source becomes the same rows: `prompt` (chat messages), `answer` (gold answer text), `task`
("math" for math-verify checking, or "rg:<name>" for reasoning-gym's scorer), `rg_entry` (the
reasoning-gym entry as JSON, for its scorer) and `id`. A malformed row is an error naming the file and
row, or is skipped and counted when the caller asks for that.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hicra.answers import gold_answer
from hicra.errors import HicraError
from hicra.jsonl import ReadStats, read_jsonl
from hicra.prompts import BOXED_INSTRUCTION, user_prompt

QUESTION_FIELDS = ("question", "problem", "prompt", "query", "input")
ANSWER_FIELDS = ("answer", "final_answer", "solution", "target", "output")
LOCAL_SUFFIXES = (".jsonl", ".jsonl.gz", ".json", ".parquet", ".csv")


class DataError(HicraError):
    """A dataset cannot be used; the message names the source and, where it applies, the row."""


@dataclass(frozen=True)
class PromptStyle:
    """How a question becomes chat messages: optional system prompt, few-shot turns, instruction."""

    system_prompt: str | None = None
    instruction: str = BOXED_INSTRUCTION
    few_shot: Sequence[tuple[str, str]] = field(default_factory=tuple)

    def messages(self, question: str) -> list[dict[str, str]]:
        messages = [{"role": "system", "content": self.system_prompt}] if self.system_prompt else []
        for user, assistant in self.few_shot:
            messages += [
                {"role": "user", "content": self._user(user)},
                {"role": "assistant", "content": assistant},
            ]
        return [*messages, {"role": "user", "content": self._user(question)}]

    def _user(self, question: str) -> str:
        return user_prompt(question, self.instruction)


@dataclass(frozen=True)
class DataSpec:
    """What to train on (see `load_prompts`)."""

    source: str
    question_field: str | None = None
    answer_field: str | None = None
    split: str = "train"
    config_name: str | None = None
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    size: int = 1000
    seed: int = 0
    skip_bad_rows: bool = False
    limit: int | None = None


def _pick(fields: Sequence[str], wanted: str | None, defaults: Sequence[str], what: str) -> str:
    if wanted is not None:
        return wanted
    for name in defaults:
        if name in fields:
            return name
    raise DataError(
        f"no {what} field: none of {', '.join(defaults)} is present (fields: {', '.join(fields)}); "
        f"name it with --{what}-field"
    )


def _suffix(path: Path) -> str:
    """The file type: one of LOCAL_SUFFIXES ("x.jsonl.gz" is ".jsonl.gz"), else the last suffix."""
    name = path.name.lower()
    return next((s for s in LOCAL_SUFFIXES if name.endswith(s)), path.suffix.lower())


def _rows_from_file(
    path: Path, stats: ReadStats, skip: bool
) -> Iterator[tuple[int, dict[str, Any]]]:
    suffix = _suffix(path)
    if suffix in (".jsonl", ".jsonl.gz"):
        yield from read_jsonl(path, on_error="skip" if skip else "raise", stats=stats)
    elif suffix == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise DataError(f"{path}: not a valid UTF-8 JSON file ({err})") from None
        rows = data.get("data", data.get("rows")) if isinstance(data, dict) else data
        if not isinstance(rows, list):
            raise DataError(f"{path}: expected a JSON list of objects (or {{'data': [...]}})")
        yield from ((i + 1, r) for i, r in enumerate(rows))
    elif suffix == ".csv":
        with open(path, newline="", encoding="utf-8") as handle:
            for i, row in enumerate(csv.DictReader(handle)):
                yield i + 2, dict(row)  # line number in the file: the header is line 1
    elif suffix == ".parquet":
        import pyarrow.parquet as pq

        try:
            parquet = pq.ParquetFile(path)
        except Exception as err:
            raise DataError(f"{path}: not a readable Parquet file ({err})") from None
        index = 0
        for batch in parquet.iter_batches(batch_size=1024):
            for row in batch.to_pylist():
                index += 1
                yield index, row
    else:
        raise DataError(
            f"{path}: unsupported file type {suffix!r}; use {', '.join(LOCAL_SUFFIXES)}"
        )


def _math_rows(
    rows: Iterator[tuple[int, Any]], spec: DataSpec, where: str, stats: ReadStats
) -> Iterator[dict[str, Any]]:
    q_field = a_field = None
    unit = "line" if where.endswith((".jsonl", ".jsonl.gz", ".csv")) else "row"
    for number, row in rows:
        if not isinstance(row, Mapping):
            raise DataError(
                f"{where}, {unit} {number}: expected an object, got {type(row).__name__}"
            )
        if q_field is None:
            q_field = _pick(list(row), spec.question_field, QUESTION_FIELDS, "question")
            a_field = _pick(list(row), spec.answer_field, ANSWER_FIELDS, "answer")
        question, answer = row.get(q_field), gold_answer(row.get(a_field))
        problem = None
        if not isinstance(question, str) or not question.strip():
            problem = f"field {q_field!r} is missing or empty"
        elif answer is None:
            problem = f"field {a_field!r} is missing or has no usable answer"
        if problem:
            if spec.skip_bad_rows:
                stats.skip(problem, number)
                continue
            raise DataError(f"{where}, {unit} {number}: {problem} (use --skip-bad-rows to skip)")
        yield {
            "question": question,
            "answer": answer,
            "task": "math",
            "rg_entry": "",
            "id": str(row.get("id", row.get("unique_id", number))),
        }


def _reasoning_gym_rows(spec: DataSpec) -> Iterator[dict[str, Any]]:
    import reasoning_gym

    task = spec.source[3:]
    if task not in reasoning_gym.factory.DATASETS:
        close = [n for n in reasoning_gym.factory.DATASETS if task[:4] in n][:5]
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise DataError(f"unknown reasoning-gym task {task!r}{hint}")
    try:
        dataset = reasoning_gym.create_dataset(task, size=spec.size, seed=spec.seed, **spec.kwargs)
    except (TypeError, ValueError, AssertionError) as err:
        raise DataError(
            f"reasoning-gym task {task!r} rejected its options {dict(spec.kwargs)}: {err}"
        ) from None
    for index, entry in enumerate(dataset):
        record = json.dumps(entry, default=str)
        if index == 0:  # the reward scores the JSON copy: its own gold answer must still score 1
            try:
                score = dataset.score_answer(str(entry["answer"]), json.loads(record))
            except Exception as err:
                score, detail = 0.0, f" ({type(err).__name__}: {err})"
            else:
                detail = ""
            if score != 1.0:
                raise DataError(
                    f"reasoning-gym task {task!r} cannot be scored after its entry is stored as "
                    f"JSON: its own gold answer scores {score}{detail}"
                )
        yield {
            "question": entry["question"],
            "answer": str(entry["answer"]),
            "task": spec.source,
            "rg_entry": record,
            "id": str(index),
        }


def _hub_rows(spec: DataSpec, stats: ReadStats) -> Iterator[dict[str, Any]]:
    import datasets

    from hicra.models import hub_online

    if not hub_online() and not os.environ.get("HF_HUB_OFFLINE"):
        raise DataError(
            f"dataset {spec.source!r} is not a local file or folder, not a reasoning-gym task "
            "(rg:NAME), and the Hugging Face hub is unreachable (set HF_HUB_OFFLINE=1 to use "
            "the local datasets cache)"
        )
    try:
        dataset = datasets.load_dataset(spec.source, spec.config_name, split=spec.split)
    except Exception as err:
        raise DataError(
            f"dataset {spec.source!r} is not a local file, a reasoning-gym task (rg:NAME), and could not "
            f"be loaded from the hub ({type(err).__name__}: {str(err)[:200]})"
        ) from None
    yield from _math_rows(((i + 1, r) for i, r in enumerate(dataset)), spec, spec.source, stats)


def load_rows(spec: DataSpec) -> tuple[list[dict[str, Any]], ReadStats]:
    """Rows {question, answer, task, rg_entry, id} for a spec, and what was skipped."""
    stats = ReadStats()
    source = spec.source
    if source.startswith("rg:"):
        rows: Iterator[dict[str, Any]] = _reasoning_gym_rows(spec)
        where = source
    else:
        path = Path(source).expanduser()
        if path.is_dir():
            candidates = [path / f"{spec.split}{s}" for s in LOCAL_SUFFIXES]
            found = [c for c in candidates if c.is_file()]
            if not found:
                raise DataError(
                    f"dataset folder {path} has no {spec.split}.jsonl/.jsonl.gz/.json/.parquet/.csv"
                )
            path = found[0]
        if _suffix(path) in LOCAL_SUFFIXES or path.exists():
            if not path.is_file():
                raise DataError(f"dataset file not found: {path}")
            where = str(path)
            rows = _math_rows(_rows_from_file(path, stats, spec.skip_bad_rows), spec, where, stats)
        else:
            where = source
            rows = _hub_rows(spec, stats)
    out = []
    for row in rows:
        out.append(row)
        if spec.limit is not None and len(out) >= spec.limit:
            break
    if not out:
        skipped = (
            f" ({stats.skipped_count} rows skipped: {stats.summary()})" if stats.skipped else ""
        )
        raise DataError(f"dataset {where} has no usable rows{skipped}")
    return out, stats


def build_dataset(spec: DataSpec, style: PromptStyle) -> tuple[Any, ReadStats]:
    """A `datasets.Dataset` with chat `prompt`s for TRL's GRPOTrainer, and the read statistics."""
    import datasets

    rows, stats = load_rows(spec)
    records = [{**row, "prompt": style.messages(row["question"])} for row in rows]
    return datasets.Dataset.from_list(records), stats
