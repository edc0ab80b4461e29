"""Reading reasoning traces for mining: JSONL or Parquet files, streamed, successful traces only.

One reader serves every input the miner accepts: trace files with a text field, a training run's
`rollouts.jsonl` (`completion`, `correct`, `reward`), and datasets whose solution field is the
reasoning (MATH `solution`, GSM8K `answer`). Contrastive selection also reads, per trace, its
problem statement (the default contrast corpus) and a group (dataset, subject or problem) for
topic independence: `iter_trace_rows`. Bad rows never stop a run: they are skipped and
counted by reason with their line (or row) numbers. What cannot be guessed (no text field, an
unreadable file) is a `SourceError` naming the file and line.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from hicra.errors import HicraError
from hicra.jsonl import DEFAULT_MAX_LINE_BYTES, ReadStats, read_jsonl
from hicra.trace_fields import PROBLEM_FIELDS, REWARD_FIELDS, TEXT_FIELDS, trace_text

# What a trace is about, coarsest first; without one, traces of the same problem form a group.
GROUP_FIELDS = ("subject", "type", "dataset")
NO_FIELD = "none"
PARQUET_BATCH_ROWS = 1024


class SourceError(HicraError):
    """An input file cannot be mined; the message names the file and the line or row."""


@dataclass(frozen=True)
class TraceSpec:
    """Which fields hold the text and the outcome, and what counts as a success.

    `text_field`/`reward_field` None: detected per file from its first row. `reward_field` "none":
    every trace counts. A boolean outcome succeeds when true; a number when >= `min_reward`.
    `problem_field`/`group_field` are read by `iter_trace_rows` only: None detects them (the
    group: a subject, type or dataset field, else the problem), "none" reads no such field.
    """

    text_field: str | None = None
    reward_field: str | None = None
    min_reward: float = 1.0
    problem_field: str | None = None
    group_field: str | None = None


class TraceRow(NamedTuple):
    """A successful trace with its problem statement and group, when the file has them."""

    text: str
    problem: str | None
    group: str | None


@dataclass
class FileReport:
    """What was read from one file: the fields used and every row that did not count."""

    path: str
    text_field: str | None = None
    reward_field: str | None = None
    problem_field: str | None = None
    group_field: str | None = None
    read: int = 0
    used: int = 0
    failed: int = 0
    unknown_outcome: int = 0
    no_problem: int = 0  # used traces without a problem text (when one was asked for)
    rows: ReadStats = field(default_factory=ReadStats)

    @property
    def skipped(self) -> int:
        return self.rows.skipped_count

    def summary(self) -> str:
        outcome = f"outcome '{self.reward_field}'" if self.reward_field else "no outcome field"
        parts = [
            f"{self.path}: {self.read:,} traces read, {self.used:,} used "
            f"(text '{self.text_field}', {outcome})"
        ]
        if self.failed:
            parts.append(f"{self.failed:,} unsuccessful")
        if self.unknown_outcome:
            parts.append(f"{self.unknown_outcome:,} with unknown outcome")
        if self.problem_field or self.group_field:
            parts.append(f"problem '{self.problem_field}', group '{self.group_field}'")
        if self.no_problem:
            parts.append(f"{self.no_problem:,} used without a problem text")
        if self.skipped:
            parts.append(f"skipped {self.rows.summary()}")
        return "; ".join(parts)


@dataclass
class CorpusReport:
    """Totals over all input files; `files` keeps the per-file detail."""

    files: list[FileReport] = field(default_factory=list)

    @property
    def read(self) -> int:
        return sum(f.read for f in self.files)

    @property
    def used(self) -> int:
        return sum(f.used for f in self.files)

    @property
    def skipped(self) -> int:
        return sum(f.skipped for f in self.files)

    def to_dict(self) -> dict[str, Any]:
        return {
            "traces_read": self.read,
            "traces_used": self.used,
            "traces_skipped": self.skipped,
            "files": [
                {
                    "path": f.path,
                    "text_field": f.text_field,
                    "reward_field": f.reward_field,
                    "read": f.read,
                    "used": f.used,
                    "unsuccessful": f.failed,
                    "unknown_outcome": f.unknown_outcome,
                    "skipped": {k: len(v) for k, v in f.rows.skipped.items()},
                    **(
                        {
                            "problem_field": f.problem_field,
                            "group_field": f.group_field,
                            "without_problem": f.no_problem,
                        }
                        if f.problem_field or f.group_field
                        else {}
                    ),
                }
                for f in self.files
            ],
        }


def outcome(value: Any, min_reward: float) -> bool | None:
    """True/False for a usable outcome, None when unknown (null). Raises ValueError when invalid."""
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and not math.isnan(value):
        return value >= min_reward
    raise ValueError(f"{type(value).__name__} {value!r}")


def _pick(fields: Sequence[str], row: dict[str, Any] | set[str]) -> str | None:
    return next((name for name in fields if name in row), None)


def _resolve_fields(spec: TraceSpec, names: set[str], where: str) -> tuple[str, str | None]:
    """The text and outcome fields of a file whose first row (or schema) has `names`."""
    available = ", ".join(sorted(names)) or "none"
    if spec.text_field is not None:
        if spec.text_field not in names:
            raise SourceError(
                f"{where}: no field {spec.text_field!r} (fields: {available}); "
                "choose the text field with --field"
            )
        text_field = spec.text_field
    else:
        text_field = _pick(TEXT_FIELDS, names)
        if text_field is None:
            raise SourceError(
                f"{where}: no text field found (tried {', '.join(TEXT_FIELDS)}; "
                f"fields: {available}); choose one with --field"
            )
    if spec.reward_field == NO_FIELD:
        return text_field, None
    if spec.reward_field is not None:
        if spec.reward_field not in names:
            raise SourceError(
                f"{where}: no field {spec.reward_field!r} (fields: {available}); "
                "choose the outcome field with --reward-field, or --reward-field none"
            )
        return text_field, spec.reward_field
    return text_field, _pick(REWARD_FIELDS, names)


def _resolve_extras(
    spec: TraceSpec, names: set[str], text_field: str, where: str
) -> tuple[str | None, str | None]:
    """The problem and group fields of a file whose first row (or schema) has `names`."""
    available = ", ".join(sorted(names)) or "none"

    def named(value: str, option: str) -> str:
        if value not in names:
            raise SourceError(
                f"{where}: no field {value!r} (fields: {available}); choose it with {option}, "
                "or none"
            )
        return value

    if spec.problem_field == NO_FIELD:
        problem = None
    elif spec.problem_field is not None:
        problem = named(spec.problem_field, "--problem-field")
    else:
        problem = _pick([f for f in PROBLEM_FIELDS if f != text_field], names)
    if spec.group_field == NO_FIELD:
        group = None
    elif spec.group_field is not None:
        group = named(spec.group_field, "--group-field")
    else:
        group = _pick(GROUP_FIELDS, names) or problem
    return problem, group


def _judge(row: dict[str, Any], number: int, spec: TraceSpec, report: FileReport) -> str | None:
    """The text of a row when it counts; otherwise record why not and return None."""
    report.read += 1
    assert report.text_field is not None
    if report.text_field not in row:
        report.rows.skip(f"no field '{report.text_field}'", number)
        return None
    text = trace_text(row[report.text_field])
    if text is None:
        kind = type(row[report.text_field]).__name__
        report.rows.skip(f"'{report.text_field}' is {kind}, not text", number)
        return None
    if report.reward_field is not None:
        try:
            success = outcome(row.get(report.reward_field), spec.min_reward)
        except ValueError:
            report.rows.skip(f"'{report.reward_field}' not a bool or number", number)
            return None
        if success is None:
            report.unknown_outcome += 1
            return None
        if not success:
            report.failed += 1
            return None
    report.used += 1
    return text


def _resolve(
    spec: TraceSpec, names: set[str], where: str, report: FileReport, extras: bool
) -> None:
    report.text_field, report.reward_field = _resolve_fields(spec, names, where)
    if extras:
        report.problem_field, report.group_field = _resolve_extras(
            spec, names, report.text_field, where
        )


def _row(text: str, row: dict[str, Any], report: FileReport, extras: bool) -> TraceRow:
    if not extras:
        return TraceRow(text, None, None)
    problem = trace_text(row.get(report.problem_field)) if report.problem_field else None
    if report.problem_field and problem is None:
        report.no_problem += 1
    group = None
    if report.group_field:
        value = row.get(report.group_field)
        group = None if value is None else trace_text(value) or str(value)
    return TraceRow(text, problem, group)


def _jsonl_traces(
    path: Path, spec: TraceSpec, report: FileReport, max_line_bytes: int, extras: bool
) -> Iterator[TraceRow]:
    for number, row in read_jsonl(
        path,
        on_error="skip",
        stats=report.rows,
        max_line_bytes=max_line_bytes,
        allow_truncated_last_line=True,
    ):
        if report.text_field is None:
            _resolve(spec, set(row), f"{path}, line {number}", report, extras)
        text = _judge(row, number, spec, report)
        if text is not None:
            yield _row(text, row, report, extras)


def _parquet_traces(
    path: Path, spec: TraceSpec, report: FileReport, extras: bool
) -> Iterator[TraceRow]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        handle = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as err:
        raise SourceError(f"{path}: not a readable Parquet file ({err})") from None
    names = set(handle.schema_arrow.names)
    _resolve(spec, names, f"{path} (schema)", report, extras)
    wanted = [report.text_field, report.reward_field, report.problem_field, report.group_field]
    columns = list(dict.fromkeys(c for c in wanted if c))
    number = 0
    try:
        for batch in handle.iter_batches(batch_size=PARQUET_BATCH_ROWS, columns=columns):
            for row in batch.to_pylist():
                number += 1
                report.rows.lines = number
                report.rows.rows += 1
                text = _judge(row, number, spec, report)
                if text is not None:
                    yield _row(text, row, report, extras)
    except (pa.ArrowException, OSError) as err:
        raise SourceError(f"{path}, after row {number}: cannot read Parquet data ({err})") from None


def iter_trace_rows(
    paths: Sequence[str | Path],
    spec: TraceSpec,
    report: CorpusReport | None = None,
    *,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
    extras: bool = True,
) -> Iterator[TraceRow]:
    """Stream the successful traces of every file, in file and line order, as `TraceRow`s.

    `.parquet` files are read in batches of rows; anything else as JSONL. Per-file counts go to
    `report` (a fresh one each call: the miner reads its input more than once). `extras` False:
    no problem or group is read (both None).
    """
    report = report if report is not None else CorpusReport()
    for raw in paths:
        path = Path(raw)
        if not path.is_file():
            what = "is a folder" if path.is_dir() else "is not a regular file"
            raise SourceError(
                f"input {path} {what}" if path.exists() else f"input not found: {path}"
            )
        file_report = FileReport(str(path))
        report.files.append(file_report)
        try:
            if path.suffix.lower() == ".parquet":
                yield from _parquet_traces(path, spec, file_report, extras)
            else:
                yield from _jsonl_traces(path, spec, file_report, max_line_bytes, extras)
        except OSError as err:
            raise SourceError(f"{path}: cannot read ({err.strerror or err})") from None


def iter_traces(
    paths: Sequence[str | Path],
    spec: TraceSpec,
    report: CorpusReport | None = None,
    *,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
) -> Iterator[str]:
    """Stream the texts of the successful traces of every file (`iter_trace_rows` without extras)."""
    for row in iter_trace_rows(paths, spec, report, max_line_bytes=max_line_bytes, extras=False):
        yield row.text
