"""`hicra train`: RL-train a model with HICRA (or GRPO and the other credit variants) on TRL."""

from __future__ import annotations

import argparse

# The train command takes every GRPOConfig field as a flag: its arguments go to its own parser.
RAW_ARGS = True


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help="RL-train a model with HICRA or GRPO (any GRPOConfig field is a flag; see --help)",
        add_help=False,
    )
    parser.set_defaults(func=run)


def run(argv: list[str]) -> int:
    from hicra.extras import require_extra

    require_extra("train", "hicra train")  # before TRL loads: also for --help (TRL's fields)
    from hicra.train.runner import run as run_training

    return run_training(argv)
