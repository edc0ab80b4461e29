"""`hicra tag`: show which tokens of a text are planning tokens."""

from __future__ import annotations

import argparse
import io
import json
import shutil
import sys
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hicra.errors import HicraError

if TYPE_CHECKING:
    from hicra.grams import StrategicGrams

_ANSI_ON, _ANSI_OFF = "\033[1;30;43m", "\033[0m"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "tag",
        help="show which tokens of a text are planning tokens",
        description="Tokenize a text, mark the tokens that overlap a strategic gram, and print "
        "the text with planning tokens highlighted and the planning-token ratio.",
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument("text", nargs="?", help="text to tag (default: stdin, or --sample)")
    source.add_argument("--file", type=Path, help="read the text from this UTF-8 file")
    source.add_argument("--sample", action="store_true", help="tag a built-in reasoning trace")
    parser.add_argument(
        "--grams", default="paper", help="preset name or grams file (default: paper)"
    )
    parser.add_argument(
        "--tokenizer",
        default="smollm2-135m",
        help="bundled alias, local folder or hub id (default: smollm2-135m, offline)",
    )
    parser.add_argument(
        "--format",
        choices=("auto", "ansi", "brackets", "json"),
        default="auto",
        help="ansi colours, [[brackets]] around planning tokens, or JSON (auto: ansi on a terminal)",
    )
    parser.set_defaults(func=run)


def sample_trace() -> str:
    return resources.files("hicra").joinpath("assets/sample_trace.txt").read_text("utf-8")


CHUNK_CHARS = 1 << 18  # text is tagged in pieces of about this many characters


def _open_text(args: argparse.Namespace) -> io.TextIOBase:
    """The text to tag as a stream: a long file is never read into memory whole."""
    if args.sample:
        return io.StringIO(sample_trace())
    if args.file is not None:  # a pipe (`--file <(cmd)`) or /dev/null is read like a file
        if args.file.is_dir():
            raise HicraError(f"--file {args.file} is a folder, not a text file")
        try:
            return open(args.file, encoding="utf-8")
        except FileNotFoundError:
            raise HicraError(f"file not found: {args.file}") from None
        except OSError as err:
            raise HicraError(f"cannot read {args.file}: {err.strerror or err}") from None
    if args.text is not None:
        return io.StringIO(args.text)
    if sys.stdin.isatty():
        raise HicraError("give a text, --file FILE, --sample, or pipe text on stdin")
    return sys.stdin


def safe_cut_chars(grams: StrategicGrams) -> Callable[[str], bool]:
    """Characters after which the text can be cut without splitting any gram occurrence: not
    letters, digits or whitespace (word boundaries and whitespace runs take part in matches)
    and in no gram."""
    used = {ch for gram in grams for ch in gram} | {"'", "\u2019"}
    return lambda ch: not (ch.isalnum() or ch.isspace() or ch == "_" or ch in used)


def text_pieces(stream: io.TextIOBase, grams: StrategicGrams) -> Iterator[str]:
    """The stream in pieces of about CHUNK_CHARS, cut only right after a safe character (see
    `safe_cut_chars`), so every gram occurrence lies inside one piece. Text without such a
    character for 16 pieces' length is cut at whitespace (documented: a gram could straddle it)."""
    safe = safe_cut_chars(grams)
    buffer = ""
    where = "the input"
    try:
        while block := stream.read(CHUNK_CHARS):
            buffer += block
            while len(buffer) >= CHUNK_CHARS:
                cut = next(
                    (
                        i + 1
                        for i in range(len(buffer) - 1, CHUNK_CHARS // 2, -1)
                        if safe(buffer[i])
                    ),
                    None,
                )
                if cut is None and len(buffer) >= 16 * CHUNK_CHARS:
                    cut = max(buffer.rfind(" ", CHUNK_CHARS), CHUNK_CHARS)
                if cut is None:
                    break
                yield buffer[:cut]
                buffer = buffer[cut:]
    except UnicodeDecodeError as err:
        where = getattr(stream, "name", where)
        raise HicraError(f"{where}: not UTF-8 text (byte {err.start} of a block)") from None
    if buffer:
        yield buffer


@dataclass
class Tally:
    """What the summary lines report, added up over the pieces."""

    characters: int = 0
    tokens: int = 0
    planning: int = 0
    counts: Counter[str] = field(default_factory=Counter)

    def add(self, piece: str, ids: list[int], mask: Any, spans: list[Any]) -> None:
        """Count one tagged piece: its characters, tokens, planning tokens and gram matches."""
        self.characters += len(piece)
        self.tokens += len(ids)
        self.planning += int(mask.sum()) if mask is not None else 0
        self.counts.update(span.gram for span in spans)


def run(args: argparse.Namespace) -> int:
    from hicra.grams import StrategicGrams
    from hicra.models import load_tokenizer
    from hicra.tagging import PlanningTagger

    grams = StrategicGrams.resolve(args.grams)
    tokenizer = load_tokenizer(args.tokenizer)
    tagger = PlanningTagger(grams, tokenizer)
    fmt = args.format
    if fmt == "auto":
        fmt = "ansi" if sys.stdout.isatty() else "brackets"
    stream = _open_text(args)
    try:
        if fmt == "json":
            tally = _write_json(stream, grams, tokenizer, tagger)
        else:
            tally = _write_marked(stream, grams, tokenizer, tagger, fmt)
    finally:
        if stream is not sys.stdin:
            stream.close()
    if tally.characters == 0:
        raise HicraError("the text is empty: nothing to tag")
    if fmt == "json":
        return 0
    print()
    ratio = f"{100 * tally.planning / tally.tokens:.2f}%" if tally.tokens else "n/a"
    print(
        f"planning tokens: {tally.planning} / {tally.tokens} ({ratio}); "
        f"grams: {grams.name} ({len(grams)})"
    )
    if tally.counts:
        top = ", ".join(f"{g!r} x{c}" for g, c in tally.counts.most_common(8))
        print(
            f"matched: {sum(tally.counts.values())} occurrences of {len(tally.counts)} grams: {top}"
        )
    return 0


def _tag_piece(piece: str, tokenizer: Any, tagger: Any) -> tuple[list[int], Any]:
    ids = tokenizer(piece, add_special_tokens=False)["input_ids"]
    return ids, (tagger.token_mask([ids])[0] if ids else None)


def _write_marked(
    stream: io.TextIOBase, grams: Any, tokenizer: Any, tagger: Any, fmt: str
) -> Tally:
    """The text with planning tokens highlighted, written piece by piece."""
    on, off = (_ANSI_ON, _ANSI_OFF) if fmt == "ansi" else ("[[", "]]")
    tally = Tally()
    for piece in text_pieces(stream, grams):
        ids, mask = _tag_piece(piece, tokenizer, tagger)
        tally.add(piece, ids, mask, tagger.spans(piece))
        if ids:
            runs = tagger.segments(ids)
            sys.stdout.write("".join(f"{on}{s}{off}" if plan else s for s, plan in runs))
    sys.stdout.write("\n")
    return tally


def _write_json(stream: io.TextIOBase, grams: Any, tokenizer: Any, tagger: Any) -> Tally:
    """One JSON object, written as it is computed: tokens first, then the planning flags (one
    byte a token kept) and the spans (spooled to disk past a few MB)."""
    tally = Tally()
    flags = bytearray()
    offset = 0
    out = sys.stdout
    with tempfile.SpooledTemporaryFile(max_size=4 << 20, mode="w+", encoding="utf-8") as spans:
        out.write('{"tokens": [')
        for piece in text_pieces(stream, grams):
            ids, mask = _tag_piece(piece, tokenizer, tagger)
            for i, token_id in enumerate(ids):
                sep = "" if tally.tokens + i == 0 else ", "
                out.write(sep + json.dumps(tokenizer.decode([token_id]), ensure_ascii=False))
            flags.extend(bool(x) for x in (mask.tolist() if mask is not None else []))
            found = tagger.spans(piece)
            for k, (start, end, gram) in enumerate(found):
                sep = "" if sum(tally.counts.values()) + k == 0 else ", "
                spans.write(
                    sep + json.dumps([offset + start, offset + end, gram], ensure_ascii=False)
                )
            tally.add(piece, ids, mask, found)
            offset += len(piece)
        out.write('], "planning": [')
        for start in range(0, len(flags), 1 << 16):
            chunk = flags[start : start + (1 << 16)]
            out.write(
                ("" if start == 0 else ", ") + ", ".join("true" if f else "false" for f in chunk)
            )
        out.write('], "spans": [')
        spans.seek(0)
        shutil.copyfileobj(spans, out)
        ratio = tally.planning / tally.tokens if tally.tokens else None
        tail = {
            "planning_tokens": tally.planning,
            "tokens_total": tally.tokens,
            "planning_ratio": ratio,
            "grams": grams.name,
        }
        out.write("], " + json.dumps(tail, ensure_ascii=False)[1:] + "\n")
    return tally
