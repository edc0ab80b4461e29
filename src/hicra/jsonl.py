"""Streaming JSONL reading and appending with errors that name the file and line.

Every reader of user files (datasets, traces, benchmarks, run logs) goes through `read_jsonl` (and
`read_parquet` for Parquet files, row by row in batches), so
bad input always reads the same way: "data.jsonl, line 17: invalid JSON (...)", or is skipped and
counted when the caller asks for that. Memory stays bounded: one line at a time, and a line longer
than `max_line_bytes` is an error (or skipped) without being held whole in memory. A file whose
name ends in `.gz` is decompressed as it streams (the bundled benchmarks ship as `.jsonl.gz`), with
the same line numbers and errors; damaged compressed data is an error naming the line it reached.
"""

from __future__ import annotations

import gzip
import json
import os
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from hicra.errors import HicraError

DEFAULT_MAX_LINE_BYTES = 16 * 1024 * 1024
_CHUNK = 1 << 20


class JsonlError(HicraError):
    """A JSONL file cannot be read; the message names the file and the line."""


@dataclass
class ReadStats:
    """What a tolerant read skipped, by reason, with the first few line numbers of each."""

    lines: int = 0
    rows: int = 0
    skipped: dict[str, list[int]] = field(default_factory=dict)

    def skip(self, reason: str, line: int) -> None:
        self.skipped.setdefault(reason, []).append(line)

    @property
    def skipped_count(self) -> int:
        return sum(len(v) for v in self.skipped.values())

    def summary(self) -> str:
        parts = [
            f"{len(lines)} {reason} (line {', '.join(map(str, lines[:5]))}"
            f"{', ...' if len(lines) > 5 else ''})"
            for reason, lines in self.skipped.items()
        ]
        return "; ".join(parts) if parts else "none skipped"


class _Unreadable(Exception):
    """The bytes of a file cannot be read (damaged compressed data, an I/O error)."""


def is_gzip(path: str | os.PathLike[str]) -> bool:
    """Whether `read_jsonl` decompresses this file: its name ends in `.gz`."""
    return str(path).lower().endswith(".gz")


def _chunks(path: Path) -> Iterator[bytes]:
    """The file's bytes, decompressed when it is gzip, in pieces of at most 1 MiB.

    gzip data comes as it is decompressed (`read1`), so everything before damaged data is
    yielded first and the error names the line where the damage begins.
    """
    compressed = is_gzip(path)
    with gzip.open(path, "rb") if compressed else open(path, "rb") as handle:
        read = handle.read1 if compressed else handle.read
        while True:
            try:
                chunk = read(_CHUNK)
            except (OSError, EOFError, zlib.error) as err:
                kind = "damaged gzip data" if compressed else "read error"
                raise _Unreadable(f"{kind}: {str(err) or type(err).__name__}") from None
            if not chunk:
                return
            yield chunk


def _raw_lines(path: Path, max_line_bytes: int) -> Iterator[tuple[int, bytes | None]]:
    """(line number, bytes) for each line; bytes is None for a line over the size limit."""
    number, buffer, oversized = 0, b"", False
    try:
        for chunk in _chunks(path):
            pieces = chunk.split(b"\n")
            for k, piece in enumerate(pieces):
                last = k == len(pieces) - 1
                if not oversized:
                    buffer += piece
                    if len(buffer) > max_line_bytes:
                        oversized, buffer = True, b""
                if last:
                    break
                number += 1
                yield number, (None if oversized else buffer)
                buffer, oversized = b"", False
    except _Unreadable as err:
        raise JsonlError(f"{path}, line {number + 1}: {err}") from None
    if buffer or oversized:
        yield number + 1, (None if oversized else buffer)


def read_jsonl(
    path: str | os.PathLike[str],
    *,
    on_error: Literal["raise", "skip"] = "raise",
    stats: ReadStats | None = None,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
    allow_truncated_last_line: bool = False,
) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (line number, object) for each JSON object line; blank lines are ignored.

    A `.gz` file is decompressed as it streams; its damaged data is always an error.

    on_error="skip" skips bad lines (invalid JSON, non-UTF-8, not an object, over the size limit)
    and records them in `stats`; "raise" raises JsonlError naming the file and line.
    `allow_truncated_last_line` silently ignores an unparsable final line without a newline, as
    left by a process killed mid-write.
    """
    path = Path(path)
    if not path.is_file():
        raise JsonlError(f"file not found: {path}")
    stats = stats if stats is not None else ReadStats()
    # the number of a final line without a newline, when that may be tolerated
    partial_last = _unterminated_last_line(path) if allow_truncated_last_line else None

    def fail(reason: str, number: int, detail: str) -> None:
        if on_error == "skip":
            stats.skip(reason, number)
            return
        raise JsonlError(f"{path}, line {number}: {detail}")

    for number, raw in _raw_lines(path, max_line_bytes):
        stats.lines = number
        if raw is None:
            fail("too long", number, f"line longer than {max_line_bytes:,} bytes")
            continue
        if not raw.strip():
            continue
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as err:
            fail("not UTF-8", number, f"not UTF-8 (byte {err.start} of the line)")
            continue
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as err:
            if number == partial_last:
                stats.skip("truncated last line", number)
                continue
            fail("invalid JSON", number, f"invalid JSON at column {err.colno}: {err.msg}")
            continue
        if not isinstance(obj, dict):
            fail("not an object", number, f"expected a JSON object, got {type(obj).__name__}")
            continue
        stats.rows += 1
        yield number, obj


def _unterminated_last_line(path: Path) -> int | None:
    """The number of the final line when it has no newline; None when the file ends with one."""
    if not is_gzip(path):  # the common case costs one seek
        with open(path, "rb") as handle:
            if handle.seek(0, os.SEEK_END) == 0:
                return None
            handle.seek(-1, os.SEEK_END)
            if handle.read(1) == b"\n":
                return None
    count, last = 0, b"\n"
    try:
        for chunk in _chunks(path):
            count += chunk.count(b"\n")
            last = chunk[-1:]
    except _Unreadable:
        return None  # the reading pass reports it, with the line it reached
    return None if last == b"\n" else count + 1


def append_jsonl(path: str | os.PathLike[str], rows: list[dict[str, Any]]) -> None:
    """Append rows as one write, flushed to the OS: a killed process loses nothing it wrote (an OS
    crash may lose the last lines: no fsync, which would cost milliseconds a training step)."""
    if not rows:
        return
    data = "".join(json.dumps(row, ensure_ascii=False, default=_jsonable) + "\n" for row in rows)
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(data)


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, (set, tuple)):
        return list(value)
    if isinstance(value, Path):
        return str(value)
    return str(value)


def read_parquet(path: str | os.PathLike[str], batch_rows: int = 1024) -> Iterator[tuple[int, Any]]:
    """(row number from 1, row as a dict) of a Parquet file, read in batches of rows."""
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except Exception as err:  # pyarrow reports a bad file in many exception types
        raise JsonlError(f"{path}: not a readable Parquet file ({err})") from None
    number = 0
    for batch in parquet.iter_batches(batch_size=batch_rows):
        for row in batch.to_pylist():
            number += 1
            yield number, row
