"""`hicra train` wiring: check the numbers, resolve the configuration (`train.config`), build the
dataset and rewards, claim the run folder, build the trainer, run, save the final model.

Order matters for users: everything that needs no model (numbers, flags, data, the output folder)
is checked first, so bad input fails in seconds, and a start that fails leaves no run folder.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hicra.errors import HicraError
from hicra.folder_lock import FolderLock
from hicra.grams import StrategicGrams
from hicra.prompts import PromptStyle
from hicra.run_folder import (
    CONFIG_FILE,
    FINAL_MODEL_DIR,
    check_run_folder,
    create_run_folder,
    finished_step,
    read_run_config,
    remove_failed_start,
)
from hicra.train.data import DataError, DataSpec, build_dataset
from hicra.train.layers import check_numbers_early
from hicra.train.resume import GRAMS_HASH_KEY, HELDOUT_HASH_KEY

if TYPE_CHECKING:  # the config module imports TRL: slow, so only when a run really starts
    from hicra.train.config import TrainArgs


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
    return PromptStyle.from_fields(args.system_prompt, args.instruction, args.few_shot)


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
        keep_columns=own_rewards(args),
        answer_required=not own_rewards(args) or "accuracy" in (args.reward_funcs or []),
    )


def own_rewards(args: TrainArgs) -> bool:
    """The user's rewards (`reward_funcs`, `reward_model`) replace hicra's accuracy and format."""
    return args.reward_funcs is not None or bool(args.reward_model)


@dataclass
class Prepared:
    """What a run needs besides the model weights: checked and built before any model loads."""

    model_path: str
    processing_class: Any  # the tokenizer, or a vision-language model's processor
    dataset: Any
    rewards: list[Any]
    peft_config: Any
    run_config: dict[str, Any]
    verifier: Any  # the accuracy reward's MathVerifier: the runner closes it when the run ends
    heldout: Any = None  # the held-out evaluation set (train.heldout_eval.HeldoutSet), if asked
    grams: StrategicGrams | None = (
        None  # read once: the set the trainer tags with is the one hashed
    )


def prepare_run(config: Any, args: TrainArgs) -> Prepared:
    """Tokenizer (or processor), dataset, rewards and LoRA: every data or model-name error surfaces
    here, in seconds, before a model is loaded or a run folder is created."""
    from hicra.answers import MathVerifier
    from hicra.context import ContextFit, context_length
    from hicra.models import model_kind, resolve_model_path
    from hicra.train.images import check_modality, load_processing

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
    fit = ContextFit(  # a prompt too long for the model would hang generation: refused here
        processing.tokenizer,
        context_length(model_path),
        config.max_completion_length,
        "--max-completion-length",
        processing.chat_template,
        processing.vision,
    )
    dataset, stats = build_dataset(spec, prompt_style(args), fit)
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
    rewards, config.reward_weights = run_rewards(config, args, verifier, dataset[0])
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
    # what the grams file held, not only its name: a resume with an edited file is refused
    grams = StrategicGrams.resolve(config.strategic_grams)
    run_config[GRAMS_HASH_KEY] = grams.content_hash
    heldout = None
    if config.eval_benchmarks:  # read now: a bad benchmark name or file fails before the model
        from hicra.train.heldout_eval import HeldoutSet

        if processing.vision:
            raise HicraError(
                "eval_benchmarks: held-out evaluation while training supports text models; "
                f"evaluate the checkpoints of {args.model!r} with hicra eval"
            )

        heldout = HeldoutSet.load(config.eval_benchmarks, config.eval_limit, prompt_style(args))
        heldout.check_context(processing.tokenizer, context_length(model_path), config)
        run_config[HELDOUT_HASH_KEY] = heldout.hashes  # config.yaml: what the curve measures
    return Prepared(
        model_path,
        processing.processing_class,
        dataset,
        rewards,
        peft_config,
        run_config,
        verifier,
        heldout,
        grams,
    )


def run_rewards(
    config: Any, args: TrainArgs, verifier: Any, first_row: dict[str, Any]
) -> tuple[list[Any], list[float]]:
    """The run's rewards and weights: `reward_funcs` (and `reward_model`), each loaded and
    dry-called on the first row (`train.reward_funcs`), else hicra's accuracy (and format)."""
    from hicra.train.reward_funcs import RewardError, build_reward_set
    from hicra.train.rewards import AccuracyReward, CorruptedAccuracy, FormatReward

    def accuracy() -> AccuracyReward:
        if args.reward_corruption:  # the graded positive control
            return CorruptedAccuracy(
                verifier,
                args.partial_credit,
                fraction=args.reward_corruption,
                seed=config.seed,
                group_size=config.num_generations,
            )
        return AccuracyReward(verifier, partial_credit=args.partial_credit)

    hicra = {"accuracy": accuracy, "format": FormatReward}
    if own_rewards(args):
        rewards = build_reward_set(
            args.reward_funcs,
            args.reward_model,
            config.reward_weights,
            hicra,
            config.max_completion_length,
            first_row,
        )
        return rewards.funcs, rewards.weights
    funcs, weights = [hicra["accuracy"]()], [args.accuracy_weight]
    if args.format_weight:
        funcs.append(FormatReward())
        weights.append(args.format_weight)
    if config.reward_weights is not None and list(config.reward_weights) != weights:
        raise RewardError(  # a resumed run's config.yaml records the weights it computed
            f"reward_weights {list(config.reward_weights)} needs reward_funcs; hicra's default "
            "rewards are weighted by accuracy_weight and format_weight"
        )
    return funcs, weights


def build_trainer(config: Any, args: TrainArgs, prepared: Prepared | None = None) -> Any:
    """Everything `hicra train` runs: model path, dataset, rewards, LoRA, the trainer."""
    from hicra.train.hicra_trainer import HICRATrainer

    prepared = prepared or prepare_run(config, args)
    try:
        return HICRATrainer(
            model=prepared.model_path,
            reward_funcs=prepared.rewards,
            args=config,
            train_dataset=prepared.dataset,
            processing_class=prepared.processing_class,
            peft_config=prepared.peft_config,
            run_config=prepared.run_config,
            heldout=prepared.heldout,
            strategic_grams=prepared.grams,
        )
    except HicraError:
        raise
    except Exception as err:  # the user's model meets the libraries here: say which, in one line
        if os.environ.get("HICRA_DEBUG"):  # the full traceback, for bug reports
            raise
        detail = str(err).splitlines()[0][:300] if str(err) else ""
        raise HicraError(
            f"cannot start training with model {prepared.model_path!r}: "
            f"{type(err).__name__}: {detail} (HICRA_DEBUG=1 shows the traceback)"
        ) from None


def already_finished(folder: Path, config: Any) -> int | None:
    """The final step of a run in `folder` that finished with these step settings, else None.

    Resuming a finished run with the same max_steps (and epochs) has nothing to do; a larger
    max_steps continues it from its last checkpoint.
    """
    step = finished_step(folder)
    if step is None:
        return None
    if config.max_steps > 0:
        return step if step >= config.max_steps else None
    try:  # trained by epochs: finished with the same epochs (and step setting) as now
        saved = read_run_config(folder)
    except HicraError:
        return None
    same = all(saved.get(k) == getattr(config, k) for k in ("max_steps", "num_train_epochs"))
    return step if same else None


def is_main_process() -> bool:
    """Rank 0 (or a single process): the one that creates, locks and writes the run folder."""
    return int(os.environ.get("RANK", "0")) == 0


def run(argv: list[str]) -> int:
    """`hicra train ARGS`: returns the exit status."""
    if any(a in ("-h", "--help", "--help-all") for a in argv):
        from hicra.train.config import make_parser
        from hicra.train.help import help_text

        print(help_text(make_parser(), everything="--help-all" in argv), end="")
        return 0
    checked = check_numbers_early(argv)  # bad numbers fail here, before TRL is imported
    from hicra.train.config import resolve_config
    from hicra.train.heldout_eval import check_heldout_flags

    resolved = resolve_config(argv, checked)  # the YAML file read once, its numbers checked once
    config, args = resolved.config, resolved.args
    check_heldout_flags(config)
    if args.print_config:
        from hicra.train.config import config_yaml

        print(config_yaml(resolved))
        return 0
    folder = Path(config.output_dir)
    main = is_main_process()
    if args.resume and (step := already_finished(folder, config)) is not None:
        if main:
            print(
                f"hicra train: {folder} already finished at step {step} "
                f"(max_steps {config.max_steps}): nothing to resume; give a larger --max-steps "
                "to train on"
            )
        return 0
    if main and not resolved.auto_output_dir:  # a made-up name is claimed atomically below
        check_run_folder(folder, args.resume)
    prepared = prepare_run(config, args)
    if args.resume:
        _check_resume(folder, config, prepared)
    with prepared.verifier:
        if not main:
            return _train(config, args, prepared, folder)
        created = not folder.exists()
        folder = create_run_folder(folder, numbered=resolved.auto_output_dir)
        created = created or folder != Path(config.output_dir)
        config.output_dir = str(folder)
        with FolderLock(folder, "run folder"):
            try:
                return _train(config, args, prepared, folder)
            except BaseException:
                remove_failed_start(folder, created)
                raise


def _full_or(err: Exception, folder: Path) -> Exception:
    """A full disk while training or saving: one line naming the run folder; the run stays
    resumable (a checkpoint cut short is removed by --resume, which starts from the newest
    complete one). Any other error is returned as it was."""
    from hicra.output_folder import disk_full, disk_full_error

    if isinstance(err, HicraError) or not disk_full(err, folder):
        return err
    return disk_full_error(
        err, folder, "run folder", "continue the run with the same command and --resume"
    )


def _check_resume(folder: Path, config: Any, prepared: Prepared) -> None:
    """Every setting against the run's config.yaml, and the held-out problems against their
    recorded hashes (`train.resume`); the verifier is closed when the resume is refused."""
    from hicra.train.resume import check_heldout_hashes, check_resume_settings

    if not (folder / CONFIG_FILE).is_file():
        return  # killed before it wrote its config: nothing recorded to compare with
    try:
        saved = read_run_config(folder)
        check_resume_settings(folder, saved, config, prepared.run_config)
        check_heldout_hashes(folder, saved, prepared.heldout.hashes if prepared.heldout else {})
    except BaseException:
        prepared.verifier.close()
        raise


def _train(config: Any, args: TrainArgs, prepared: Prepared, folder: Path) -> int:
    trainer = build_trainer(config, args, prepared)
    if trainer.accelerator.is_main_process:
        from hicra.train.success import describe

        signal = describe(trainer.success_signal)
        print(f"hicra train: success signal (hicra/accuracy): {signal}", file=sys.stderr)
    final = folder / FINAL_MODEL_DIR
    try:
        trainer.train(resume_from_checkpoint=True if args.resume else None)
        trainer.save_model(str(final))
    except Exception as err:  # safetensors' SafetensorError is neither OSError nor RuntimeError
        full = _full_or(err, folder)
        if full is err:
            raise
        raise full from None
    if trainer.accelerator.is_main_process:
        trainer.processing_class.save_pretrained(str(final))
        print(f"hicra train: run folder {folder} (final model in {final})")
    trainer.accelerator.wait_for_everyone()  # several processes: leave the group together
    trainer.accelerator.end_training()
    return 0
