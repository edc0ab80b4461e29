"""The `hicra` command line: one subcommand a module under `hicra.commands`."""

from __future__ import annotations

import argparse
import importlib
import sys

from hicra.errors import HicraError

# Each module defines `register(subparsers)`, which adds its parser and sets `func`. A module with
# RAW_ARGS = True gets its raw argument list instead (train: every GRPOConfig field is a flag).
COMMANDS = ("train", "tag", "eval", "mine", "report", "experiment")


def version_line() -> str:
    """hicra's version and the versions of the libraries that decide how it trains (read from the
    installed packages' metadata, without importing them)."""
    from importlib.metadata import PackageNotFoundError, version

    from hicra import __version__

    parts = []
    for name in ("trl", "transformers", "torch"):
        try:
            parts.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            parts.append(f"{name} not installed")
    return f"hicra {__version__} ({', '.join(parts)})"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hicra",
        description="Hierarchy-aware credit assignment (HICRA) for RL training of reasoning LLMs.",
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(f"hicra.commands.{name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] in (["--version"], ["-V"]):
        print(version_line())
        return 0
    command = argv[0] if argv else None
    if command in COMMANDS:
        module = importlib.import_module(f"hicra.commands.{command}")
        if getattr(module, "RAW_ARGS", False):
            return _guarded(command, lambda: module.run(argv[1:]))
    args = build_parser().parse_args(argv)
    return _guarded(args.command, lambda: args.func(args))


def _guarded(command: str, call) -> int:
    """Run a command; bad input (HicraError) is one clear line on stderr, never a traceback."""
    try:
        return int(call() or 0)
    except HicraError as err:
        print(f"hicra {command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"hicra {command}: interrupted", file=sys.stderr)
        return 130
    except OSError as err:  # a full disk where no command says which folder: the file at least
        from hicra.output_folder import DISK_FULL_ERRNOS

        if err.errno not in DISK_FULL_ERRNOS:
            raise
        where = f" writing {err.filename}" if err.filename else ""
        print(f"hicra {command}: error: no space left on device{where}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
