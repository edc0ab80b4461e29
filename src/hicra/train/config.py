"""What defines a training run: `HICRAConfig` (TRL's GRPOConfig plus HICRA) and `TrainArgs` (data,
rewards, model), and how `hicra train` resolves them from layers.

Configuration layers, later wins: HICRAConfig's defaults (TRL's GRPO defaults plus HICRA's), then
one YAML file (`--config FILE`, or the built-in `default` run when no file is given), then
command-line flags. `--resume` re-reads the run folder's own config.yaml, so a killed run continues
with the same settings.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import time
import warnings
from dataclasses import dataclass, field
from typing import Any

import torch
from trl import GRPOConfig

from hicra.advantages import CREDITS, get_credit
from hicra.errors import HicraError
from hicra.limits import TRAIN, check_limits
from hicra.prompts import BOXED_INSTRUCTION
from hicra.run_folder import CONFIG_FILE
from hicra.train.layers import (
    check_numbers_early,
    is_resume,
    output_dir_flag,
    without_flag,
)

# TRL's configs still set transformers' deprecated `gradient_checkpointing` alias; users cannot act
# on these warnings, so they are not shown.
warnings.filterwarnings(
    "ignore", message=r".*gradient_checkpointing.*` is deprecated", category=FutureWarning
)


def _has_accelerator() -> bool:
    """Whether torch sees a device to pin memory for (torch's own test; CUDA before torch 2.6)."""
    accelerator = getattr(torch, "accelerator", None)
    return accelerator.is_available() if accelerator else torch.cuda.is_available()


def _resolve_checkpointing_alias(config: Any) -> None:
    """Take TRL's `gradient_checkpointing` (a field it still declares, default True) as
    transformers' `activation_checkpointing` when that is unset, as transformers itself does, but
    without its FutureWarning on every config: the user did not use the old name, TRL did."""
    for old, new in (
        ("gradient_checkpointing", "activation_checkpointing"),
        ("gradient_checkpointing_kwargs", "activation_checkpointing_kwargs"),
    ):
        if hasattr(config, new) and getattr(config, new) is None:
            setattr(config, new, getattr(config, old))


def _credit_help() -> str:
    """The --credit help, from the registry (argparse formats help: % is escaped)."""
    lines = "; ".join(f"'{c.name}': {c.description}" for c in CREDITS.values())
    return f"Credit assignment. {lines}.".replace("%", "%%")


@dataclass
class HICRAConfig(GRPOConfig):
    """TRL's GRPOConfig plus hierarchy-aware credit assignment (arXiv 2509.03646)."""

    credit: str = field(
        default="hicra",
        metadata={"help": _credit_help(), "choices": list(CREDITS)},
    )
    hicra_alpha: float = field(
        default=0.2,
        metadata={
            "help": "HICRA's alpha in [0, 1); 0.2 in every experiment of the paper.",
            "aliases": ["--alpha"],
        },
    )
    strategic_grams: str = field(
        default="paper",
        metadata={
            "help": "Strategic grams that define planning tokens: a preset ('paper') or a grams file.",
            "aliases": ["--grams"],
        },
    )
    hierarchy_metrics: bool = field(
        default=True,
        metadata={"help": "Log planning/execution entropies, semantic entropy and fork overlap."},
    )
    gram_counting: str = field(
        default="longest",
        metadata={
            "help": "How semantic entropy counts strategic grams: 'longest' (each phrase once: "
            "leftmost-longest, non-overlapping matches; 'but wait, let me verify' is 2 grams) or "
            "'all' (every match, nested ones too: 5). Planning tokens always use every match.",
            "choices": ["longest", "all"],
        },
    )
    fork_quantile: float = field(
        default=0.7,
        metadata={
            "help": "High entropy = at or above this quantile of token entropy, taken over the "
            "whole batch of every process (0.7: the top 30%%): the fork metrics use an optimizer "
            "step's tokens, credit='high_entropy' the generation batch; 'hicra_entropy_length' uses "
            "it per response, as the official code does."
        },
    )
    placebo_corpus: str | None = field(
        default=None,
        metadata={
            "help": "credit='placebo': draw the placebo n-grams from this corpus (JSONL with a "
            "completion/text field, or a text file, one text a line) instead of the run's first "
            "completions with planning tokens."
        },
    )
    rollouts_per_step: int = field(
        default=2,
        metadata={"help": "Prompt groups per generation written to rollouts.jsonl (0: none)."},
    )
    logging_steps: float = field(
        default=1,
        metadata={
            "help": "Log every X update steps (hicra's default 1, not TRL's 10: every step's "
            "accuracy and hierarchy metrics reach metrics.jsonl, even in a short run)."
        },
    )
    eval_benchmarks: str | None = field(
        default=None,
        metadata={
            "help": "Held-out evaluation while training: comma-separated benchmark names "
            "(math500, gsm8k, aime24, ...) or .jsonl files, scored every --eval-steps steps and "
            "at the end with the run's own prompt (off when unset)."
        },
    )
    eval_steps: float | None = field(
        default=None,
        metadata={
            "help": "Held-out evaluation (--eval-benchmarks): every N steps, or a fraction < 1 of "
            "the run's steps; unset: only at the last step. Refused without --eval-benchmarks."
        },
    )
    save_total_limit: int | None = field(
        default=1,
        metadata={
            "help": "Checkpoints kept: the newest N complete ones (hicra's default 1, what "
            "--resume needs; None: all, TRL's default). The final model is always kept."
        },
    )
    eval_limit: int | None = field(
        default=None,
        metadata={"help": "Held-out evaluation: the first N problems of each benchmark."},
    )
    eval_samples: int = field(
        default=1,
        metadata={
            "help": "Held-out evaluation: completions per problem. 1: greedy accuracy; k > 1: "
            "sampled at --eval-temperature, accuracy as avg@k, plus pass@k and maj@k."
        },
    )
    eval_temperature: float | None = field(
        default=None,
        metadata={
            "help": "Held-out sampling temperature (default: 0, greedy, for 1 sample; 0.6 "
            "for more)."
        },
    )
    eval_max_new_tokens: int | None = field(
        default=None,
        metadata={"help": "Held-out completion length (default: max_completion_length)."},
    )
    success_reward: str | None = field(
        default=None,
        metadata={
            "metavar": "NAME",
            "help": "The success signal: the reward function (by its logged name, "
            "rewards/NAME) whose score >= --success-threshold marks a completion correct, for "
            "hicra/accuracy, the groups' pass@k and the rollouts' correct/incorrect. Default: "
            "hicra's accuracy reward when used, else the first reward function listed; the rule "
            "used is written to config.yaml (success_signal) and shown by hicra report.",
        },
    )
    success_threshold: float = field(
        default=1.0,
        metadata={"help": "A completion is correct when its success reward is >= this."},
    )
    epsilon_high: float | None = field(
        default=0.28,
        metadata={"help": "Upper clip bound (DAPO's clip-higher, as the paper's baseline)."},
    )

    def __post_init__(self) -> None:
        check_limits(vars(self), TRAIN)  # before TRL reinterprets (max_steps -5: 3 epochs)
        if not math.isfinite(self.success_threshold):
            raise HicraError(
                f"success_threshold must be a finite number, not {self.success_threshold}"
            )
        if self.bf16 is None and not torch.cuda.is_available():
            self.bf16 = False  # TRL defaults to bf16, which a CPU-only machine rejects
        if not _has_accelerator():
            self.dataloader_pin_memory = False  # nothing to pin for; torch warns every run
        _resolve_checkpointing_alias(self)
        super().__post_init__()
        credit = get_credit(self.credit)
        if credit.token_level and self.importance_sampling_level == "sequence":
            raise HicraError(
                f"credit={self.credit!r} gives tokens of one response different advantages, but "
                "importance_sampling_level='sequence' (GSPO, LUSPO) weights every token of a "
                "response by one sequence ratio and the mean advantage, which voids token-level "
                "credit; use importance_sampling_level='token', or credit='grpo'"
            )
        if self.placebo_corpus is not None and "placebo_mask" not in credit.needs:
            raise HicraError(
                f"placebo_corpus is used only by credit='placebo' (this run: credit="
                f"{self.credit!r}): remove placebo_corpus, or set credit: placebo"
            )
        if "whole_groups" in credit.needs:
            check_whole_groups(
                self.credit,
                self.per_device_train_batch_size,
                self.steps_per_generation,
                self.num_generations,
            )

    def to_replayable_dict(self) -> dict[str, Any]:
        """`to_dict()` without the values __post_init__ derives, so HICRAConfig(**d) rebuilds it."""
        data = self.to_dict()
        data.pop("generation_batch_size", None)  # derived from steps_per_generation
        data.pop("hub_token", None)
        return data


def check_whole_groups(
    credit: str, per_device_batch: int, steps_per_generation: int, group: int
) -> None:
    """A credit that compares the completions of a prompt group needs whole groups on each
    process (TRL lets a group straddle two processes otherwise)."""
    local = per_device_batch * steps_per_generation
    if local % group:
        raise HicraError(
            f"credit={credit!r} compares completions within a prompt group on each process: "
            f"per_device_train_batch_size x steps_per_generation ({local}) must be a multiple "
            f"of num_generations ({group})"
        )


@dataclass
class TrainArgs:
    """What to train on and how to score it (the parts of a run that GRPOConfig does not cover)."""

    model: str = field(
        default="smollm2-135m",
        metadata={"help": "Model: 'smollm2-135m' (bundled, offline), a local folder or a hub id."},
    )
    dataset: str = field(
        default="rg:chain_sum",
        metadata={"help": "Local .jsonl/.json/.parquet/.csv file or folder, 'rg:TASK', or hub id."},
    )
    dataset_kwargs: str | None = field(
        default=None, metadata={"help": "JSON options for an rg: task, e.g. '{\"min_digits\": 1}'."}
    )
    dataset_size: int = field(default=1000, metadata={"help": "Examples generated for rg: tasks."})
    dataset_split: str = field(default="train", metadata={"help": "Split (hub datasets, folders)."})
    dataset_config_name: str | None = field(default=None, metadata={"help": "Hub dataset config."})
    question_field: str | None = field(default=None, metadata={"help": "Question column name."})
    answer_field: str | None = field(default=None, metadata={"help": "Gold answer column name."})
    image_field: str | None = field(
        default=None,
        metadata={
            "help": "Image column of a vision-language dataset (default: 'images' for a list, "
            "'image' for one): file paths relative to the data file, bytes, or hub images."
        },
    )
    max_image_pixels: int | None = field(
        default=None,
        metadata={
            "help": "Refuse images with more pixels (width x height) than this before training "
            "(default: PIL's decompression-bomb limit, 89,478,485)."
        },
    )
    skip_bad_rows: bool = field(
        default=False, metadata={"help": "Skip malformed rows (and count them) instead of failing."}
    )
    dataset_limit: int | None = field(default=None, metadata={"help": "Use at most N rows."})
    system_prompt: str | None = field(default=None, metadata={"help": "System message."})
    instruction: str = field(
        default=BOXED_INSTRUCTION, metadata={"help": "Appended to every question."}
    )
    few_shot: str | None = field(
        default=None, metadata={"help": "JSON list of [question, answer] example turns."}
    )
    reward_funcs: list[str] | None = field(
        default=None,
        metadata={
            "help": "Reward functions, as TRL's `trl grpo --reward_funcs` takes them: TRL's "
            "built-ins (accuracy_reward, reasoning_accuracy_reward, think_format_reward, "
            "get_soft_overlong_punishment), hicra's (accuracy, format), a dotted import path "
            "(my_module.my_reward, importable from the working folder) or path/to/file.py:"
            "function. Signature: f(prompts, completions, **dataset_columns) -> list[float | "
            "None]. Weights: --reward-weights. Unset: hicra's accuracy (and format) rewards, "
            "weighted by --accuracy-weight and --format-weight.",
            "nargs": "+",
            "metavar": "SPEC",
        },
    )
    reward_model: str | None = field(
        default=None,
        metadata={
            "help": "A sequence-classification reward model (local folder or hub id), as TRL's "
            "reward_model_name_or_path; it comes first among the rewards (and their weights).",
            "aliases": ["--reward-model-name-or-path", "--reward_model_name_or_path"],
            "metavar": "PATH",
        },
    )
    accuracy_weight: float = field(default=1.0, metadata={"help": "Weight of the accuracy reward."})
    partial_credit: bool = field(
        default=False,
        metadata={
            "help": "Keep a reasoning-gym scorer's partial credit (e.g. 0.5 for a wrong sign) as "
            "the accuracy reward; off: 1 for exactly correct, else 0. hicra/accuracy always "
            "counts exactly correct answers only."
        },
    )
    format_weight: float = field(
        default=0.0, metadata={"help": "Weight of the \\boxed{} format reward (0: not used)."}
    )
    reward_corruption: float = field(
        default=0.0,
        metadata={
            "help": "Positive control: the share of prompt groups (0-1) whose accuracy reward is "
            "inverted (1 - r), spread evenly over the run by a schedule drawn from the seed "
            "(hicra/accuracy still counts the real correct answers). 0: off."
        },
    )
    lora_r: int = field(default=0, metadata={"help": "LoRA rank (0: full fine-tuning)."})
    lora_alpha: int = field(default=32, metadata={"help": "LoRA alpha."})
    lora_dropout: float = field(default=0.05, metadata={"help": "LoRA dropout."})
    lora_target_modules: str = field(
        default="all-linear", metadata={"help": "LoRA target modules (comma list or all-linear)."}
    )
    resume: bool = field(
        default=False,
        metadata={
            "help": "Continue the run in --output-dir from its last checkpoint, with its "
            "config.yaml; a changed setting that the checkpoint would ignore is refused (only "
            "max_steps and logging, saving, evaluation-schedule, reporting and answer-checking "
            "settings may change)."
        },
    )
    verify_timeout: float = field(
        default=5.0, metadata={"help": "Hard time limit per answer check (s)."}
    )
    verify_workers: int = field(default=2, metadata={"help": "Answer-checking worker processes."})
    print_config: bool = field(
        default=False, metadata={"help": "Print the resolved configuration as YAML and exit."}
    )

    def __post_init__(self) -> None:
        check_limits(vars(self), TRAIN)


def make_parser() -> Any:
    from trl import TrlParser

    class Parser(TrlParser):
        def error(self, message: str) -> None:  # one clear line, not 200 lines of usage
            raise HicraError(f"{message} (see hicra train --help)")

    # no abbreviations: a mistyped flag must be an error, not silently another field
    return Parser((HICRAConfig, TrainArgs), prog="hicra train", allow_abbrev=False)


def _check_keys(config: dict[str, Any], known: set[str], source: str) -> None:
    for key in config:
        if key in known:
            continue
        close = difflib.get_close_matches(key, sorted(known), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise HicraError(f"{source}: unknown config key {key!r}{hint}")


@dataclass(frozen=True)
class ResolvedConfig:
    """A resolved `hicra train` command line."""

    config: HICRAConfig
    args: TrainArgs
    layer: dict[str, Any]  # the YAML layer used
    auto_output_dir: bool  # the run folder name was made up (runs/hicra-DATE-TIME): may be suffixed
    origins: dict[str, str] = field(default_factory=dict)  # field -> the layer that set it
    source: str = ""  # where the YAML layer came from


def auto_run_folder() -> str:
    """`runs/hicra-DATE-TIME`: runs started in the same second share the name, so the runner
    claims it with `create_run_folder(numbered=True)` ("-2", "-3"...), never by checking first."""
    return f"runs/hicra-{time.strftime('%Y%m%d-%H%M%S')}"


def resolve_config(
    argv: list[str], checked: tuple[dict[str, Any], str] | None = None
) -> ResolvedConfig:
    """HICRAConfig and TrainArgs from a command line (YAML layer, then flags).

    `checked`: what `check_numbers_early(argv)` returned, when the caller ran it already (the
    YAML file is then not read or checked a second time)."""
    layer, source = checked or check_numbers_early(argv)
    layer = dict(layer)  # filled in below; the caller's copy stays as it was read
    parser = make_parser()
    known = {a.dest for a in parser._actions}
    argv = without_flag(argv, "--config")
    resume = is_resume(argv)
    if source.endswith(CONFIG_FILE) and resume:  # a run's own config.yaml: keep what still exists
        layer = {k: v for k, v in layer.items() if k in known}
    _check_keys(layer, known, source)
    auto = not (output_dir_flag(argv) or layer.get("output_dir")) and not resume
    if auto:
        layer["output_dir"] = auto_run_folder()
    parser.set_defaults_with_config(**{k: _cli_value(k, v) for k, v in layer.items()})
    try:
        config, train_args, unknown = parser.parse_args_into_dataclasses(
            args=argv, return_remaining_strings=True
        )
    except HicraError:
        raise
    except (ValueError, TypeError) as err:  # TRL's and transformers' own config checks
        raise HicraError(f"invalid configuration ({source} and flags): {err}") from None
    if unknown:
        flags = [a for a in unknown if a.startswith("-")] or unknown
        options = sorted(o for a in parser._actions for o in a.option_strings)
        close = difflib.get_close_matches(flags[0].split("=")[0], options, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise HicraError(f"unknown option {flags[0]!r}{hint} (see hicra train --help)")
    origins = value_origins(parser, argv, layer, source, auto)
    check_reward_fields(train_args, origins)
    return ResolvedConfig(config, train_args, layer, auto, origins, source)


DEFAULTS_ORIGIN = "defaults (HICRAConfig: TRL's GRPOConfig and HICRA's)"
FLAGS_ORIGIN = "command-line flags"


def value_origins(
    parser: Any, argv: list[str], layer: dict[str, Any], source: str, auto: bool
) -> dict[str, str]:
    """Which layer set each field: the flags, the YAML layer (its source), or the defaults."""
    given = set()
    for arg in argv:
        action = parser._option_string_actions.get(arg.split("=", 1)[0])
        if action is not None:
            given.add(action.dest)
    origins = {}
    for action in parser._actions:
        dest = action.dest
        if dest in given:
            origins[dest] = FLAGS_ORIGIN
        elif dest == "output_dir" and auto:
            origins[dest] = "hicra (a new runs/hicra-DATE-TIME)"
        elif dest in layer:
            origins[dest] = source
        else:
            origins[dest] = DEFAULTS_ORIGIN
    return origins


def check_reward_fields(args: TrainArgs, origins: dict[str, str]) -> None:
    """accuracy_weight and format_weight weigh the default rewards only: set beside reward_funcs
    (by the user, not a built-in run) they would be ignored, so they are refused."""
    if args.reward_funcs is None and not args.reward_model:
        return
    for name in ("accuracy_weight", "format_weight"):
        origin = origins.get(name, DEFAULTS_ORIGIN)
        if origin == DEFAULTS_ORIGIN or origin.startswith("built-in config"):
            continue
        raise HicraError(
            f"{name} (from {origin}) weighs hicra's default rewards, which reward_funcs "
            "replaces: give the weights as reward_weights, one per reward function "
            f"(add 'accuracy' or 'format' to reward_funcs to keep them)"
        )


def config_yaml(resolved: ResolvedConfig) -> str:
    """`--print-config`: the resolved configuration as YAML, grouped by the layer that set each
    value (flags, the YAML file or built-in run, the defaults), each group under a comment."""
    import yaml

    config, args = resolved.config, resolved.args
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(args)}
    values.update({k: v for k, v in config.to_dict().items() if k != "hub_token"})
    groups: dict[str, dict[str, Any]] = {}
    for key, value in values.items():
        groups.setdefault(resolved.origins.get(key, DEFAULTS_ORIGIN), {})[key] = value
    order = sorted(groups, key=lambda o: (o != FLAGS_ORIGIN, o == DEFAULTS_ORIGIN))
    source = resolved.source or "none"
    parts = [f"# YAML layer: {source}"]
    for origin in order:
        body = yaml.safe_dump(groups[origin], sort_keys=False, allow_unicode=True)
        parts.append(f"# set by {origin}\n{body}")
    return "\n".join(parts)


_JSON_TEXT_FIELDS = ("dataset_kwargs", "few_shot")


def _cli_value(key: str, value: Any) -> Any:
    """YAML lists/dicts for the JSON-text fields (dataset_kwargs, few_shot) are kept as JSON."""
    return (
        json.dumps(value) if key in _JSON_TEXT_FIELDS and isinstance(value, (dict, list)) else value
    )
