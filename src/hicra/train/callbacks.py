"""Trainer callbacks that write the run folder's metrics and keep the console short."""

from __future__ import annotations

import math

from transformers import TrainerCallback
from transformers.trainer_callback import ProgressCallback

from hicra.run_folder import Metric, RunLog, parse_heldout_key


class MetricsCallback(TrainerCallback):
    """Writes every training log to metrics.jsonl; evaluation logs as `eval/...` keys."""

    def __init__(self, run_log: RunLog) -> None:
        self.run_log = run_log

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs:
            return
        logs = dict(logs)
        logs.pop("total_flos", None)
        if "train_runtime" in logs:  # the end-of-training summary is not a step
            self.run_log.write_summary({"step": state.global_step, **logs})
            return
        self.run_log.log_metrics(state.global_step, as_run_keys(logs))


def as_trainer_logs(logs: dict) -> dict:
    """`eval/x` keys as `eval_x`: the form transformers' loggers (wandb, tensorboard, ...) file
    under "eval/" (other keys they file under "train/")."""
    return {f"eval_{k[5:]}" if k.startswith("eval/") else k: v for k, v in logs.items()}


def as_run_keys(logs: dict) -> dict:
    """Trainer logs as metrics.jsonl keys: the `eval_` prefix written `eval/`."""
    return {f"eval/{k[5:]}" if k.startswith("eval_") else k: v for k, v in logs.items()}


SUMMARY_KEYS = (
    (Metric.REWARD, "reward"),
    (Metric.ACCURACY, "acc"),
    (Metric.PLANNING_RATIO, "plan"),
    (Metric.EXECUTION_ENTROPY, "H_exec"),
    (Metric.SEMANTIC_ENTROPY, "H_sem"),
    (Metric.LENGTH, "len"),
)


class CompactProgressCallback(ProgressCallback):
    """The usual progress bar, with one short line per logged step instead of a metrics dict."""

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or self.training_bar is None or not logs:
            return
        if "train_runtime" in logs:
            self.training_bar.write(f"done: {logs['train_runtime']:.0f} s")
            return
        logs = as_run_keys(logs)
        if Metric.EVAL_ACCURACY in logs and Metric.EVAL_SECONDS in logs:  # a held-out evaluation
            scores = [
                f"{bench} {value:.3g}"
                for key, value in logs.items()
                if (parsed := parse_heldout_key(key)) and parsed[1] == "accuracy"
                for bench in [parsed[0]]
            ]
            self.training_bar.write(
                f"step {state.global_step:>4}  held-out accuracy: {', '.join(scores)} "
                f"({logs[Metric.EVAL_SECONDS]:.0f} s)"
            )
            return
        parts = [f"step {state.global_step:>4}"]
        for key, label in SUMMARY_KEYS:
            value = logs.get(key)
            if isinstance(value, (int, float)) and math.isfinite(value):
                parts.append(f"{label} {value:.3g}")
        self.training_bar.write("  ".join(parts))
