"""`hicra train --help`: HICRA's own options and the common ones first, TRL's hundreds later.

`hicra train` takes every GRPOConfig field (TRL's and transformers' ~200) as a flag. A flat list
buries the dozen that matter, so the help shows HICRA's options, then the common ones, then the
data/reward/LoRA options, and names how to see the rest (`--help-all`).
"""

from __future__ import annotations

import argparse
import copy
from typing import Any

# In the order shown; a name that is not a field of this version is skipped.
HICRA_OPTIONS = (
    "credit",
    "hicra_alpha",
    "strategic_grams",
    "hierarchy_metrics",
    "gram_counting",
    "fork_quantile",
    "placebo_corpus",
    "rollouts_per_step",
)
HELDOUT_OPTIONS = (
    "eval_benchmarks",
    "eval_limit",
    "eval_steps",
    "eval_samples",
    "eval_temperature",
    "eval_max_new_tokens",
    "per_device_eval_batch_size",
)
REWARD_OPTIONS = (
    "reward_funcs",
    "reward_weights",
    "reward_model",
    "success_reward",
    "success_threshold",
    "accuracy_weight",
    "format_weight",
    "partial_credit",
)
COMMON_OPTIONS = (
    "model",
    "dataset",
    "output_dir",
    "max_steps",
    "num_generations",
    "per_device_train_batch_size",
    "max_completion_length",
    "learning_rate",
    "temperature",
    "beta",
    "seed",
    "save_steps",
    "save_total_limit",
    "logging_steps",
    "report_to",
    "use_vllm",
    "resume",
    "print_config",
)


def _actions(parser: argparse.ArgumentParser, names: tuple[str, ...]) -> list[argparse.Action]:
    by_dest = {a.dest: a for a in parser._actions if a.option_strings}
    return [by_dest[n] for n in names if n in by_dest]


def _displayed(action: argparse.Action) -> argparse.Action:
    """`action` as the help shows it. transformers gives a True-default bool's `--no_X` flag the
    field's own help and `(default: False)`, which read backwards ('--no-hierarchy-metrics: Log
    planning/execution entropies'); it is shown as turning the option off, on by default."""
    negation = isinstance(action, argparse._StoreFalseAction) and any(
        o.startswith("--no_") for o in action.option_strings
    )
    if not negation or not action.help:
        return action
    shown = copy.copy(action)
    shown.help = f"Turn off (on by default): {action.help[0].lower()}{action.help[1:]}"
    shown.default = argparse.SUPPRESS  # no '(default: False)'
    return shown


def help_text(parser: argparse.ArgumentParser, everything: bool = False) -> str:
    """The grouped help of the `hicra train` parser (`everything`: TRL's options too)."""
    from hicra.train.config import TrainArgs

    shown: set[str] = set()
    formatter: Any = parser._get_formatter()
    formatter.add_usage("hicra train [--config FILE] [OPTIONS]", [], [])
    formatter.add_text(
        "RL-train a model with HICRA or GRPO on TRL. Settings come from HICRAConfig's defaults, "
        "then one YAML file (--config FILE; the built-in 'default' run when none is given), then "
        "these flags. Every GRPOConfig field is a flag, with dashes or underscores "
        "(--max-steps, --max_steps). The defaults shown are HICRAConfig's; the built-in run sets "
        "some (see them all: hicra train --print-config). With --model or --dataset and no "
        "--config, the built-in run is not used: your task starts from these defaults."
    )

    def section(title: str, actions: list[argparse.Action]) -> None:
        actions = [a for a in actions if a.dest not in shown]
        if not actions:
            return
        shown.update(a.dest for a in actions)
        formatter.start_section(title)
        formatter.add_arguments([_displayed(a) for a in actions])
        formatter.end_section()

    section("HICRA's options", _actions(parser, HICRA_OPTIONS))
    section("common options", _actions(parser, COMMON_OPTIONS))
    section(
        "rewards (your task: --reward-funcs as TRL takes them; the success signal counts a "
        "completion correct for hicra/accuracy and group pass@k)",
        _actions(parser, REWARD_OPTIONS),
    )
    section("held-out evaluation while training", _actions(parser, HELDOUT_OPTIONS))
    data_fields = tuple(f for f in TrainArgs.__dataclass_fields__ if f not in shown)
    section("data, prompt, LoRA", _actions(parser, data_fields))
    rest = [a for a in parser._actions if a.option_strings and a.dest not in shown]
    rest = [a for a in rest if a.dest != "help"]
    if everything:
        section("TRL and transformers options (GRPOConfig, TrainingArguments)", rest)
    else:
        formatter.add_text(
            f"... and {len(rest)} more TRL and transformers options (GRPOConfig, "
            "TrainingArguments): hicra train --help-all"
        )
    return formatter.format_help()
