"""`hicra tag`: show which tokens of a text are planning tokens."""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from importlib import resources
from pathlib import Path

from hicra.errors import HicraError

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


def _read_text(args: argparse.Namespace) -> str:
    if args.sample:
        return sample_trace()
    if args.file is not None:
        if not args.file.is_file():
            raise HicraError(f"file not found: {args.file}")
        try:
            return args.file.read_text(encoding="utf-8")
        except UnicodeDecodeError as err:
            raise HicraError(f"{args.file}: not UTF-8 text (byte {err.start})") from None
    if args.text is not None:
        return args.text
    if sys.stdin.isatty():
        raise HicraError("give a text, --file FILE, --sample, or pipe text on stdin")
    return sys.stdin.read()


def run(args: argparse.Namespace) -> int:
    from hicra.grams import StrategicGrams
    from hicra.models import load_tokenizer
    from hicra.tagging import PlanningTagger

    text = _read_text(args)
    grams = StrategicGrams.resolve(args.grams)
    tokenizer = load_tokenizer(args.tokenizer)
    tagger = PlanningTagger(grams, tokenizer)
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    mask = tagger.token_mask([ids])[0] if ids else None
    n_plan = int(mask.sum()) if mask is not None else 0
    spans = tagger.spans(text)
    counts = Counter(span.gram for span in spans)
    fmt = args.format
    if fmt == "auto":
        fmt = "ansi" if sys.stdout.isatty() else "brackets"
    if fmt == "json":
        tokens = [tokenizer.decode([i]) for i in ids]
        print(
            json.dumps(
                {
                    "tokens": tokens,
                    "planning": [bool(x) for x in (mask.tolist() if mask is not None else [])],
                    "spans": [list(s) for s in spans],
                    "planning_tokens": n_plan,
                    "tokens_total": len(ids),
                    "planning_ratio": n_plan / len(ids) if ids else None,
                    "grams": grams.name,
                },
                ensure_ascii=False,
            )
        )
        return 0
    on, off = (_ANSI_ON, _ANSI_OFF) if fmt == "ansi" else ("[[", "]]")
    out = [f"{on}{piece}{off}" if planning else piece for piece, planning in tagger.segments(ids)]
    print("".join(out))
    print()
    ratio = f"{100 * n_plan / len(ids):.2f}%" if ids else "n/a"
    print(f"planning tokens: {n_plan} / {len(ids)} ({ratio}); grams: {grams.name} ({len(grams)})")
    if counts:
        top = ", ".join(f"{g!r} x{c}" for g, c in counts.most_common(8))
        print(f"matched: {sum(counts.values())} occurrences of {len(counts)} grams: {top}")
    return 0
