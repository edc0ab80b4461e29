"""The `hicra` command line: one subcommand a module under `hicra.commands`."""

from __future__ import annotations

import argparse
import importlib
import sys

from hicra.errors import HicraError

# Each module defines `register(subparsers)`, which adds its parser and sets `func`.
COMMANDS = ("tag",)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hicra",
        description="Hierarchy-aware credit assignment (HICRA) for RL training of reasoning LLMs.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(f"hicra.commands.{name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except HicraError as err:
        print(f"hicra {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"hicra {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
