"""`hicra train` wiring: resolve the configuration (`train.config`), build the dataset, rewards and
trainer, run, save the final model."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

import yaml

from hicra.errors import HicraError
from hicra.run_folder import FINAL_MODEL_DIR, METRICS_FILE
from hicra.train.config import TrainArgs, make_parser, resolve_config
from hicra.train.data import DataError, DataSpec, PromptStyle, build_dataset


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
    from hicra.answers import MathVerifier
    from hicra.models import model_kind, resolve_model_path
    from hicra.train.images import check_modality, load_processing
    from hicra.train.rewards import AccuracyReward, FormatReward
    from hicra.train.trainer import HICRATrainer

    model_path = resolve_model_path(args.model)
    processing = load_processing(args.model, args.max_image_pixels)  # a processor for a VLM
    if processing.chat_template is None:
        raise HicraError(f"model {args.model!r} has no chat template; hicra builds chat prompts")
    spec = dataclasses.replace(
        data_spec(args, config.seed),
        image_field=args.image_field,
        image_limits=processing.limits,
        text_only_model=None if processing.vision else f"{args.model} ({model_kind(args.model)})",
    )
    dataset, stats = build_dataset(spec, prompt_style(args))
    check_modality(processing, dataset, args.model, args.dataset)
    if stats.skipped:
        print(
            f"hicra train: skipped {stats.skipped_count} bad rows: {stats.summary()}",
            file=sys.stderr,
        )
    global_batch = config.per_device_train_batch_size * config.gradient_accumulation_steps
    if len(dataset) * config.num_generations < global_batch:
        raise DataError(f"dataset has {len(dataset)} rows, fewer than one batch needs")
    verifier = MathVerifier(args.verify_workers, args.verify_timeout)
    rewards: list[Any] = [AccuracyReward(verifier, partial_credit=args.partial_credit)]
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
        processing_class=processing.processing_class,
        peft_config=peft_config,
        run_config=run_config,
    )


def check_output_dir(config: Any, args: TrainArgs) -> None:
    folder = Path(config.output_dir)
    has_run = (folder / METRICS_FILE).exists() or any(folder.glob("checkpoint-*"))
    if args.resume and not any(folder.glob("checkpoint-*")):
        raise HicraError(f"--resume: no checkpoint in {folder} to resume from")
    if has_run and not args.resume:
        raise HicraError(
            f"{folder} already holds a run; use --resume to continue it, or another --output-dir"
        )


def run(argv: list[str]) -> int:
    """`hicra train ARGS`: returns the exit status."""
    if any(a in ("-h", "--help") for a in argv):
        make_parser().print_help()
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
    final = Path(config.output_dir) / FINAL_MODEL_DIR
    trainer.save_model(str(final))
    if trainer.accelerator.is_main_process:
        trainer.processing_class.save_pretrained(str(final))
        print(f"hicra train: run folder {config.output_dir} (final model in {final})")
    trainer.accelerator.wait_for_everyone()  # several processes: leave the group together
    trainer.accelerator.end_training()
    return 0
