"""`hicra train` wiring: resolve the configuration, build the dataset, rewards and trainer, run.

Configuration layers, later wins: HICRAConfig's defaults (TRL's GRPO defaults plus HICRA's), then
one YAML file (`--config FILE`, or the built-in `default` run when no file is given), then command-line
flags. `--resume` re-reads the run folder's own config.yaml, so a killed run continues with the same
settings.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import os
import sys
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from hicra.data import BOXED_INSTRUCTION, DataError, DataSpec, PromptStyle, build_dataset
from hicra.errors import HicraError

BUILTIN_CONFIGS = ("default",)
# Fields that the trainer adds to config.yaml or that TrainingArguments derives itself.
_RECORD_ONLY = {"hicra_version", "model_name_or_path", "strategic_grams_resolved"}


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
    accuracy_weight: float = field(default=1.0, metadata={"help": "Weight of the accuracy reward."})
    format_weight: float = field(
        default=0.0, metadata={"help": "Weight of the \\boxed{} format reward (0: not used)."}
    )
    lora_r: int = field(default=0, metadata={"help": "LoRA rank (0: full fine-tuning)."})
    lora_alpha: int = field(default=32, metadata={"help": "LoRA alpha."})
    lora_dropout: float = field(default=0.05, metadata={"help": "LoRA dropout."})
    lora_target_modules: str = field(
        default="all-linear", metadata={"help": "LoRA target modules (comma list or all-linear)."}
    )
    resume: bool = field(
        default=False,
        metadata={"help": "Continue the run in --output-dir from its last checkpoint."},
    )
    verify_timeout: float = field(
        default=5.0, metadata={"help": "Hard time limit per answer check (s)."}
    )
    verify_workers: int = field(default=2, metadata={"help": "Answer-checking worker processes."})
    print_config: bool = field(
        default=False, metadata={"help": "Print the resolved configuration as YAML and exit."}
    )


def _load_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise HicraError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f", line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or str(err)
        raise HicraError(f"{path}{where}: invalid YAML: {problem}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise HicraError(f"{path}: a config file must be a YAML mapping of field: value")
    return data


def builtin_config(name: str) -> dict[str, Any]:
    ref = resources.files("hicra").joinpath(f"configs/{name}.yaml")
    with resources.as_file(ref) as path:
        return _load_yaml(path)


def _config_arg(argv: list[str], flag: str) -> str | None:
    for i, arg in enumerate(argv):
        if arg == flag and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
    return None


def _without(argv: list[str], flag: str) -> list[str]:
    out, skip = [], False
    for i, arg in enumerate(argv):
        if skip:
            skip = False
            continue
        if arg == flag and i + 1 < len(argv):
            skip = True
            continue
        if arg.startswith(flag + "="):
            continue
        out.append(arg)
    return out


def _parser() -> Any:
    from trl import TrlParser

    from hicra.trainer import HICRAConfig

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


def resolve_config(argv: list[str]) -> tuple[Any, TrainArgs, dict[str, Any]]:
    """(HICRAConfig, TrainArgs, the YAML layer used) from command-line arguments."""
    parser = _parser()
    known = {a.dest for a in parser._actions}
    config_name = _config_arg(argv, "--config")
    argv = _without(argv, "--config")
    resume = any(a in ("--resume", "--resume=true", "--resume=True") for a in argv)
    output_dir = _config_arg(argv, "--output_dir") or _config_arg(argv, "--output-dir")
    saved = Path(output_dir) / "config.yaml" if output_dir else None
    if config_name is None and resume and saved is not None and saved.is_file():
        layer = {k: v for k, v in _load_yaml(saved).items() if k in known and k not in _RECORD_ONLY}
        source = str(saved)
    elif config_name is None or config_name in BUILTIN_CONFIGS:
        layer, source = (
            builtin_config(config_name or "default"),
            f"built-in config {config_name or 'default'!r}",
        )
    else:
        layer, source = _load_yaml(Path(config_name)), config_name
    _check_keys(layer, known, source)
    explicit_dir = output_dir or layer.get("output_dir")
    if not explicit_dir and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        # each process would pick its own timestamped folder and split the checkpoints
        raise HicraError("with several processes, give the run folder: --output-dir DIR")
    if not resume and "output_dir" not in layer:
        layer["output_dir"] = f"runs/hicra-{time.strftime('%Y%m%d-%H%M%S')}"
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
    return config, train_args, layer


_JSON_TEXT_FIELDS = ("dataset_kwargs", "few_shot")


def _cli_value(key: str, value: Any) -> Any:
    """YAML lists/dicts for the JSON-text fields (dataset_kwargs, few_shot) are kept as JSON."""
    return (
        json.dumps(value) if key in _JSON_TEXT_FIELDS and isinstance(value, (dict, list)) else value
    )


def _json_field(value: str | None, name: str) -> Any:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except json.JSONDecodeError as err:
        raise HicraError(
            f"{name} must be JSON ({err.msg} at column {err.colno}): {value!r}"
        ) from None


def prompt_style(args: TrainArgs) -> PromptStyle:
    few_shot = _json_field(args.few_shot, "few_shot") or []
    if not isinstance(few_shot, list) or not all(
        isinstance(p, (list, tuple)) and len(p) == 2 and all(isinstance(x, str) for x in p)
        for p in few_shot
    ):
        raise HicraError("few_shot must be a list of [question, answer] string pairs")
    return PromptStyle(args.system_prompt or None, args.instruction, tuple(map(tuple, few_shot)))


def data_spec(args: TrainArgs, seed: int) -> DataSpec:
    kwargs = _json_field(args.dataset_kwargs, "dataset_kwargs") or {}
    if not isinstance(kwargs, dict):
        raise HicraError("dataset_kwargs must be a JSON object")
    return DataSpec(
        source=args.dataset,
        question_field=args.question_field,
        answer_field=args.answer_field,
        split=args.dataset_split,
        config_name=args.dataset_config_name,
        kwargs=kwargs,
        size=args.dataset_size,
        seed=seed,
        skip_bad_rows=args.skip_bad_rows,
        limit=args.dataset_limit,
    )


def build_trainer(config: Any, args: TrainArgs) -> Any:
    """Everything `hicra train` runs: model path, dataset, rewards, LoRA, the trainer."""
    from hicra.models import load_tokenizer, resolve_model_path
    from hicra.reward_funcs import AccuracyReward, FormatReward
    from hicra.rewards import MathVerifier
    from hicra.trainer import HICRATrainer

    model_path = resolve_model_path(args.model)
    tokenizer = load_tokenizer(args.model)
    if tokenizer.chat_template is None:
        raise HicraError(f"model {args.model!r} has no chat template; hicra builds chat prompts")
    dataset, stats = build_dataset(data_spec(args, config.seed), prompt_style(args))
    if stats.skipped:
        print(
            f"hicra train: skipped {stats.skipped_count} bad rows: {stats.summary()}",
            file=sys.stderr,
        )
    global_batch = config.per_device_train_batch_size * config.gradient_accumulation_steps
    if len(dataset) * config.num_generations < global_batch:
        raise DataError(f"dataset has {len(dataset)} rows, fewer than one batch needs")
    rewards: list[Any] = [AccuracyReward(MathVerifier(args.verify_workers, args.verify_timeout))]
    weights = [args.accuracy_weight]
    if args.format_weight:
        rewards.append(FormatReward())
        weights.append(args.format_weight)
    config.reward_weights = weights
    peft_config = None
    if args.lora_r > 0:
        from peft import LoraConfig

        targets = args.lora_target_modules
        peft_config = LoraConfig(
            r=args.lora_r,
            lora_alpha=args.lora_alpha,
            lora_dropout=args.lora_dropout,
            target_modules=targets if targets == "all-linear" else targets.split(","),
            task_type="CAUSAL_LM",
        )
    run_config = {f.name: getattr(args, f.name) for f in dataclasses.fields(args)}
    run_config["model_name_or_path"] = model_path
    return HICRATrainer(
        model=model_path,
        reward_funcs=rewards,
        args=config,
        train_dataset=dataset,
        processing_class=tokenizer,
        peft_config=peft_config,
        run_config=run_config,
    )


def check_output_dir(config: Any, args: TrainArgs) -> None:
    folder = Path(config.output_dir)
    has_run = (folder / "metrics.jsonl").exists() or any(folder.glob("checkpoint-*"))
    if args.resume and not any(folder.glob("checkpoint-*")):
        raise HicraError(f"--resume: no checkpoint in {folder} to resume from")
    if has_run and not args.resume:
        raise HicraError(
            f"{folder} already holds a run; use --resume to continue it, or another --output-dir"
        )


def run(argv: list[str]) -> int:
    """`hicra train ARGS`: returns the exit status."""
    if any(a in ("-h", "--help") for a in argv):
        _parser().print_help()
        return 0
    config, args, _ = resolve_config(argv)
    if args.print_config:
        shown = {f.name: getattr(args, f.name) for f in dataclasses.fields(args)}
        shown.update({k: v for k, v in config.to_dict().items() if k != "hub_token"})
        print(yaml.safe_dump(shown, sort_keys=False, allow_unicode=True))
        return 0
    check_output_dir(config, args)
    trainer = build_trainer(config, args)
    trainer.train(resume_from_checkpoint=True if args.resume else None)
    final = Path(config.output_dir) / "final_model"
    trainer.save_model(str(final))
    if trainer.accelerator.is_main_process:
        trainer.processing_class.save_pretrained(str(final))
        print(f"hicra train: run folder {config.output_dir} (final model in {final})")
    trainer.accelerator.wait_for_everyone()  # several processes: leave the group together
    trainer.accelerator.end_training()
    return 0
