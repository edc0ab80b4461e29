"""Rollouts logged by other trainers: find them, read their fields, check every row.

`hicra report PATH` reads a hicra run folder, or one of these (`find_dump`):

- a verl `trainer.rollout_data_dir`: one `STEP.jsonl` per training step whose lines hold `input`,
  `output`, `gts`, `score`, `step` and the reward function's extras (`acc`, `pred`, ...),
  as verl 0.9.1's `RayPPOTrainer._write_generations` writes them
  (verl/trainer/ppo/ray_trainer.py, lines 454-477; the v1 trainer's copy in
  verl/trainer/ppo/v1/trainer_base.py, lines 1226-1260, adds `uid`);
- one JSONL (or .jsonl.gz) or Parquet file of rollouts with a step each: `{step, prompt,
  completion, reward}`, fields found as `hicra mine` finds them (`hicra.trace_fields`).

A bad row (no step, a step in another step's file, a score that is not a number, a completion
that is not text) or an empty file is a `DumpError` naming the file, line and field. Reading is
light (no torch): `hicra.report.convert` turns the checked rows into a run.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hicra.errors import HicraError
from hicra.jsonl import JsonlError, read_jsonl, read_parquet
from hicra.run_folder import METRICS_FILE, RUN_MARKER, RolloutField
from hicra.trace_fields import PROBLEM_FIELDS, REWARD_FIELDS, TEXT_FIELDS, trace_text

DEFAULT_TOKENIZER = "smollm2-135m"  # bundled, so a report works offline; --tokenizer overrides
VERL_STEP_FILE = re.compile(r"^(\d+)\.jsonl$")
ROLLOUT_SUFFIXES = (".jsonl", ".jsonl.gz", ".parquet")

# verl's dump (ray_trainer.py:460-466): the fixed fields; the rest are the reward's extras.
VERL_FIELDS = {"prompt": "input", "completion": "output", "answer": "gts", "score": "score"}
# An exact outcome per rollout: hicra's and TRL-style `correct`, verl's math reward's `acc`.
ACCURACY_FIELDS = (RolloutField.CORRECT, "acc", "accuracy", "is_correct")
SCORE_FIELDS = (*REWARD_FIELDS[1:], "score")  # `reward` (hicra, TRL), `score` (verl, OpenRLHF)
ANSWER_FIELDS = (RolloutField.ANSWER, "gts", "ground_truth", "label")
# Per-token entropies of the completion's tokens, when a trainer or reward function logged them.
# verl 0.9.1 dumps none by itself: a reward function's extra of one value per rollout is dumped
# (ray_trainer.py:468-470), so a list of entropies per rollout can travel that way.
ENTROPY_FIELDS = ("token_entropies", "entropies")


class DumpError(HicraError):
    """A rollout dump cannot be reported on; the message names the file, line and field."""


@dataclass(frozen=True)
class DumpOptions:
    """How to read a dump: grams, tokenizer, and a model for per-token entropies (optional)."""

    grams: str = "paper"
    tokenizer: str | None = None
    model: str | None = None
    batch_size: int = 8
    device: str | None = None


@dataclass(frozen=True)
class Dump:
    """A rollout dump on disk: a verl folder of STEP.jsonl files, or one rollout file."""

    path: Path
    kind: str  # "verl" or "file"
    files: tuple[tuple[Path, int | None], ...]  # each file and the step its name says (verl)

    @property
    def label(self) -> str:
        name = self.path.name
        for suffix in ROLLOUT_SUFFIXES:
            if name.endswith(suffix):
                return name[: -len(suffix)]
        return name


def _rollout_file(path: Path) -> bool:
    return path.name.lower().endswith(ROLLOUT_SUFFIXES)


def find_dump(path: str | Path) -> Dump | None:
    """The dump at `path`, or None when it is none (then it may be a hicra run folder)."""
    path = Path(path)
    if path.is_file():
        return Dump(path, "file", ((path, None),)) if _rollout_file(path) else None
    if not path.is_dir() or (path / METRICS_FILE).exists() or (path / RUN_MARKER).exists():
        return None
    steps = []
    for child in path.iterdir():
        match = VERL_STEP_FILE.match(child.name)
        if match and child.is_file():
            steps.append((child, int(match[1])))
    if not steps:
        return None
    return Dump(path, "verl", tuple(sorted(steps, key=lambda f: f[1])))


def default_output(path: Path) -> Path:
    """Where a report goes without --output: RUN/report for a run; beside a dump, never in it
    (a verl dump folder keeps only verl's own STEP.jsonl files)."""
    dump = find_dump(path)
    if dump is None:
        return path / "report"
    return dump.path.parent / f"{dump.label}-report"


# --------------------------------------------------------------------------- fields
@dataclass(frozen=True)
class Fields:
    """Which field of a row holds what; None: the dump has no such field."""

    completion: str
    prompt: str | None
    score: str | None
    accuracy: str | None
    answer: str | None
    entropies: str | None
    group: str | None

    def describe(self) -> dict[str, str | None]:
        return {
            "completion": self.completion,
            "prompt": self.prompt,
            "score": self.score,
            "accuracy": self.accuracy,
            "answer": self.answer,
            "token_entropies": self.entropies,
        }


def _first(names: tuple[str, ...], available: set[str], taken: str | None = None) -> str | None:
    return next((n for n in names if n in available and n != taken), None)


def resolve_fields(dump: Dump, names: set[str], where: str) -> Fields:
    """The fields of a dump whose first row (or Parquet schema) has `names`."""
    available = ", ".join(sorted(names)) or "none"
    if RolloutField.STEP not in names:
        raise DumpError(
            f"{where}: no 'step' field (fields: {available}); a rollout dump needs the training "
            "step of each rollout"
        )
    if dump.kind == "verl":
        missing = [f for f in VERL_FIELDS.values() if f not in names]
        if missing:
            raise DumpError(
                f"{where}: no {', '.join(map(repr, missing))} field (fields: {available}); "
                "verl's rollout dump has input, output, gts, score and step"
            )
        completion, prompt = VERL_FIELDS["completion"], VERL_FIELDS["prompt"]
        score, answer = VERL_FIELDS["score"], VERL_FIELDS["answer"]
    else:
        completion = _first(TEXT_FIELDS[:-2], names)  # never a dataset's `solution` or `answer`
        if completion is None:
            raise DumpError(
                f"{where}: no completion field (tried {', '.join(TEXT_FIELDS[:-2])}; "
                f"fields: {available})"
            )
        prompt = _first((*PROBLEM_FIELDS, "input"), names, completion)
        score = _first(SCORE_FIELDS, names, completion)
        answer = _first(ANSWER_FIELDS, names, completion)
    return Fields(
        completion=completion,
        prompt=prompt,
        score=score,
        accuracy=_first(ACCURACY_FIELDS, names),
        answer=answer,
        entropies=_first(ENTROPY_FIELDS, names),
        group=_first((RolloutField.GROUP, "uid", "request_id"), names),
    )


# --------------------------------------------------------------------------- rows
@dataclass
class Row:
    """One rollout, checked: what the report uses of it."""

    step: int
    line: int
    prompt: Any
    completion: str
    score: float | None
    correct: bool | None
    answer: Any
    entropies: list[float] | None
    group: Any


def _where(path: Path, line: int, parquet: bool) -> str:
    return f"{path}, {'row' if parquet else 'line'} {line}"


def _number(value: Any, name: str, where: str) -> float | None:
    """A score as a float; None when null or NaN; an error for text, lists and the like."""
    if value is None:
        return None
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)):
        return float(value) if math.isfinite(value) else None
    raise DumpError(f"{where}: '{name}' is not a number ({type(value).__name__} {value!r:.40})")


def _correct(value: Any, name: str, where: str) -> bool | None:
    """Exactly right: true, or a score >= 1 (hicra/accuracy's rule); None when null."""
    number = _number(value, name, where)
    return None if number is None else number >= 1.0


def _step(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise DumpError(f"{where}: 'step' is not a number ({value!r:.40})")
    if value != int(value):
        raise DumpError(f"{where}: 'step' is not a whole number ({value!r})")
    return int(value)


def _entropies(value: Any, name: str, where: str) -> list[float] | None:
    if value is None:
        return None
    if isinstance(value, list) and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in value
    ):
        return [float(v) for v in value]
    raise DumpError(f"{where}: '{name}' is not a list of numbers (one entropy per token)")


def _raw_rows(path: Path) -> Iterator[tuple[int, dict[str, Any], bool]]:
    parquet = path.name.lower().endswith(".parquet")
    try:
        if parquet:
            for number, row in read_parquet(path):
                yield number, row, True
        else:
            for number, row in read_jsonl(path, allow_truncated_last_line=True):
                yield number, row, False
    except OSError as err:
        raise DumpError(f"{path}: cannot read ({err.strerror or err})") from None
    except JsonlError:
        raise
    except Exception as err:  # pyarrow reports damaged data in many exception types
        if not parquet:
            raise
        raise DumpError(f"{path}: cannot read Parquet data ({err})") from None


def _parquet_names(path: Path) -> set[str] | None:
    if not path.name.lower().endswith(".parquet"):
        return None
    import pyarrow.parquet as pq

    try:
        return set(pq.ParquetFile(path).schema_arrow.names)
    except Exception as err:  # pyarrow reports a bad file in many exception types
        raise DumpError(f"{path}: not a readable Parquet file ({err})") from None


class DumpReader:
    """Reads and checks the rows of a dump; the fields are found on its first row."""

    def __init__(self, dump: Dump) -> None:
        self.dump = dump
        self.fields: Fields | None = None

    def rows(self) -> Iterator[Row]:
        for path, file_step in self.dump.files:
            names = _parquet_names(path)
            if names is not None and self.fields is None:
                self.fields = resolve_fields(self.dump, names, f"{path} (schema)")
            count = 0
            for number, raw, parquet in _raw_rows(path):
                where = _where(path, number, parquet)
                if self.fields is None:
                    self.fields = resolve_fields(self.dump, set(raw), where)
                row = self._check(raw, where, number)
                if file_step is not None and row.step != file_step:
                    raise DumpError(
                        f"{where}: step {row.step} in {path.name}, the file of step {file_step} "
                        "(mixed steps: verl writes one file per step)"
                    )
                count += 1
                yield row
            if not count:
                raise DumpError(f"{path}: empty (no rollouts in it)")

    def _check(self, raw: dict[str, Any], where: str, number: int) -> Row:
        f = self.fields
        assert f is not None
        if RolloutField.STEP not in raw:
            raise DumpError(f"{where}: no 'step' field")
        step = _step(raw[RolloutField.STEP], where)
        if f.completion not in raw:
            raise DumpError(f"{where}: no '{f.completion}' field (the completion)")
        completion = trace_text(raw[f.completion])
        if completion is None:
            kind = type(raw[f.completion]).__name__
            raise DumpError(f"{where}: '{f.completion}' is {kind}, not text")
        return Row(
            step=step,
            line=number,
            prompt=raw.get(f.prompt) if f.prompt else None,
            completion=completion,
            score=_number(raw.get(f.score), f.score, where) if f.score else None,
            correct=_correct(raw.get(f.accuracy), f.accuracy, where) if f.accuracy else None,
            answer=raw.get(f.answer) if f.answer else None,
            entropies=_entropies(raw.get(f.entropies), f.entropies, where) if f.entropies else None,
            group=raw.get(f.group) if f.group else None,
        )
