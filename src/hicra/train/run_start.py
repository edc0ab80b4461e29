"""The run folder when training starts: resume or set old logs aside, then write config.yaml.

A resume cuts metrics.jsonl and rollouts.jsonl back to the checkpoint's step (`resume=True` finds
the last complete checkpoint, removing an incomplete one on the main process); a fresh run in a
folder that holds logs moves them aside. config.yaml records what defines the run.
"""

from __future__ import annotations

from typing import Any

from hicra import __version__
from hicra.errors import HicraError
from hicra.run_folder import checkpoint_step, last_complete_checkpoint
from hicra.train.success import describe as describe_success


def start_run_folder(trainer: Any, resume_from_checkpoint: str | bool | None) -> str | bool | None:
    """Prepare the logs and config.yaml; returns what TRL resumes from (`True` resolved to a path)."""
    checkpoint = resume_from_checkpoint
    output_dir = trainer.args.output_dir
    if checkpoint is True:
        main = trainer.accelerator.is_main_process
        found = last_complete_checkpoint(output_dir, remove_incomplete=main)
        checkpoint = str(found) if found is not None else None
        if checkpoint is None:
            raise HicraError(f"nothing to resume: no complete checkpoint in {output_dir}")
    if checkpoint:
        step = checkpoint_step(str(checkpoint).rstrip("/"))
        if step is None:
            raise HicraError(f"{checkpoint} is not a checkpoint-N folder of a run")
        trainer.run_log.truncate_after(step)
    elif trainer.run_log.has_logs():
        trainer.run_log.set_aside()
    trainer.run_log.write_config(config_record(trainer))
    return checkpoint


def config_record(trainer: Any) -> dict[str, Any]:
    """config.yaml: hicra's version, the model, the run's own fields, every replayable argument
    and the resolved strategic-gram set."""
    model_id = getattr(getattr(trainer.model, "config", None), "_name_or_path", None)
    record = {"hicra_version": __version__, "model_name_or_path": model_id}
    record.update(trainer._run_config)
    args = trainer.args.to_replayable_dict()
    record.update({k: v for k, v in args.items() if k not in record})
    record["success_signal"] = describe_success(trainer._accuracy)
    record["strategic_grams_resolved"] = {"name": trainer.grams.name, "count": len(trainer.grams)}
    return record
