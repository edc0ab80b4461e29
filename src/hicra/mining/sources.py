"""Reading reasoning traces for mining: JSONL or Parquet files, streamed, successful traces only.

One reader serves every input the miner accepts: trace files with a text field, a training run's
`rollouts.jsonl` (`completion`, `correct`, `reward`), and datasets whose solution field is the
reasoning (MATH `solution`, GSM8K `answer`). Bad rows never stop a run: they are skipped and
counted by reason with their line (or row) numbers. What cannot be guessed (no text field, an
unreadable file) is a `SourceError` naming the file and line.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hicra.errors import HicraError
from hicra.jsonl import DEFAULT_MAX_LINE_BYTES, ReadStats, read_jsonl
from hicra.run_folder import RolloutField

# Tried in this order when --field is not given: a rollout's completion before its gold `answer`,
# a dataset's `solution` before its `answer` (MATH has both in some copies; GSM8K only `answer`).
TEXT_FIELDS = (RolloutField.COMPLETION, "response", "output", "text", "solution", "answer")
# An explicit outcome beats a numeric reward: rollouts carry both.
REWARD_FIELDS = (RolloutField.CORRECT, RolloutField.REWARD)
NO_FIELD = "none"
PARQUET_BATCH_ROWS = 1024


class SourceError(HicraError):
    """An input file cannot be mined; the message names the file and the line or row."""


@dataclass(frozen=True)
class TraceSpec:
    """Which fields hold the text and the outcome, and what counts as a success.

    `text_field`/`reward_field` None: detected per file from its first row. `reward_field` "none":
    every trace counts. A boolean outcome succeeds when true; a number when >= `min_reward`.
    """

    text_field: str | None = None
    reward_field: str | None = None
    min_reward: float = 1.0


@dataclass
class FileReport:
    """What was read from one file: the fields used and every row that did not count."""

    path: str
    text_field: str | None = None
    reward_field: str | None = None
    read: int = 0
    used: int = 0
    failed: int = 0
    unknown_outcome: int = 0
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
                }
                for f in self.files
            ],
        }


def trace_text(value: Any) -> str | None:
    """The text of a field value: a string, or the contents of a chat-message list; else None."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and value and all(isinstance(m, dict) for m in value):
        parts = [m.get("content") for m in value]
        if all(isinstance(p, str) for p in parts):
            return "\n".join(parts)
    return None


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


def _jsonl_traces(
    path: Path, spec: TraceSpec, report: FileReport, max_line_bytes: int
) -> Iterator[str]:
    for number, row in read_jsonl(
        path,
        on_error="skip",
        stats=report.rows,
        max_line_bytes=max_line_bytes,
        allow_truncated_last_line=True,
    ):
        if report.text_field is None:
            report.text_field, report.reward_field = _resolve_fields(
                spec, set(row), f"{path}, line {number}"
            )
        text = _judge(row, number, spec, report)
        if text is not None:
            yield text


def _parquet_traces(path: Path, spec: TraceSpec, report: FileReport) -> Iterator[str]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        handle = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as err:
        raise SourceError(f"{path}: not a readable Parquet file ({err})") from None
    names = set(handle.schema_arrow.names)
    report.text_field, report.reward_field = _resolve_fields(spec, names, f"{path} (schema)")
    columns = [report.text_field] + ([report.reward_field] if report.reward_field else [])
    number = 0
    try:
        for batch in handle.iter_batches(batch_size=PARQUET_BATCH_ROWS, columns=columns):
            for row in batch.to_pylist():
                number += 1
                report.rows.lines = number
                report.rows.rows += 1
                text = _judge(row, number, spec, report)
                if text is not None:
                    yield text
    except (pa.ArrowException, OSError) as err:
        raise SourceError(f"{path}, after row {number}: cannot read Parquet data ({err})") from None


def iter_traces(
    paths: Sequence[str | Path],
    spec: TraceSpec,
    report: CorpusReport | None = None,
    *,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
) -> Iterator[str]:
    """Stream the texts of the successful traces of every file, in file and line order.

    `.parquet` files are read in batches of rows; anything else as JSONL. Per-file counts go to
    `report` (a fresh one each call: the miner reads its input more than once).
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
                yield from _parquet_traces(path, spec, file_report)
            else:
                yield from _jsonl_traces(path, spec, file_report, max_line_bytes)
        except OSError as err:
            raise SourceError(f"{path}: cannot read ({err.strerror or err})") from None
