"""Step time of HICRA vs GRPO: the same config, seed and data, in the same run.

The baseline is TRL's own GRPOTrainer; HICRA is HICRATrainer with credit=hicra and the hierarchy
metrics on, as `hicra train` runs it. They run alternately (GRPO, HICRA, GRPO, HICRA, ...) so that a
noisy machine slows both alike. Printed: the median step time of each (TRL's `step_time`: generation,
scoring, loss and optimizer step; each run's first step is warm-up and left out), their ratio, and
the time HICRA's own code takes per step, timed inside the step (tagging, credit, metrics, logs).

    python benchmarks/train_step.py [--models tiny,smollm2-135m] [--rounds 2] [--device auto]

The device is the GPU when one is present (`--device auto`), else the CPU; it is printed.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import datasets
from transformers import TrainerCallback
from transformers.trainer_callback import PrinterCallback
from trl import GRPOTrainer

from hicra.run_folder import RunLog
from hicra.testing.tiny import build_tiny_model, punctuation_reward
from hicra.trainer import HICRAConfig, HICRATrainer


class StepLog(TrainerCallback):
    """metrics.jsonl for the plain TRL baseline, so both runs are read the same way."""

    def __init__(self, folder: Path) -> None:
        self.log = RunLog(folder)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "step_time" in logs:
            self.log.log_metrics(state.global_step, logs)


SETTINGS = {
    "tiny": {"steps": 12, "batch": 16, "generations": 8, "length": 64},
    "smollm2-135m": {"steps": 6, "batch": 8, "generations": 4, "length": 32},
}


class TimedHICRATrainer(HICRATrainer):
    """Accumulates the wall time spent in HICRA's own code (everything outside TRL's methods)."""

    own_seconds = 0.0

    def _generate_and_score_completions(self, inputs):
        start = time.perf_counter()
        inner = GRPOTrainer._generate_and_score_completions
        trl_time = [0.0]

        def timed_trl(trainer, batch):
            t0 = time.perf_counter()
            out = inner(trainer, batch)
            trl_time[0] += time.perf_counter() - t0
            return out

        GRPOTrainer._generate_and_score_completions = timed_trl
        try:
            out = super()._generate_and_score_completions(inputs)
        finally:
            GRPOTrainer._generate_and_score_completions = inner
        TimedHICRATrainer.own_seconds += time.perf_counter() - start - trl_time[0]
        return out

    def _accumulate_entropy_metrics(self, inputs, entropies):
        start = time.perf_counter()
        super()._accumulate_entropy_metrics(inputs, entropies)
        TimedHICRATrainer.own_seconds += time.perf_counter() - start


def timed_steps(trainer, folder: Path) -> list[float]:
    """Train, then TRL's step times from metrics.jsonl (the first step is warm-up, left out)."""
    trainer.remove_callback(PrinterCallback)
    trainer.train()
    metrics = [json.loads(x) for x in (folder / "metrics.jsonl").read_text().splitlines()]
    return [m["step_time"] for m in metrics[1:] if m.get("step_time")]


def timing_config(folder: Path, credit: str, settings: dict, use_cpu: bool = True) -> HICRAConfig:
    """The config both trainers of a timing run share (benchmarks/vision.py uses it too)."""
    return HICRAConfig(
        output_dir=str(folder),
        credit=credit,
        max_steps=settings["steps"],
        per_device_train_batch_size=settings["batch"],
        num_generations=settings["generations"],
        max_completion_length=settings["length"],
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        use_cpu=use_cpu,
        bf16=not use_cpu,
        gradient_checkpointing=False,
        learning_rate=1e-6,
        seed=1,
        disable_tqdm=True,
        # every completion runs to the same length: step times then differ only by the code
        generation_kwargs={"min_new_tokens": settings["length"]},
    )


def step_times(model: str, credit: str, folder: Path, settings: dict, use_cpu: bool) -> list[float]:
    rows = [
        {"prompt": [{"role": "user", "content": f"What is {i} + {i}? Think step by step."}]}
        for i in range(256)
    ]
    args = timing_config(folder, credit, settings, use_cpu)
    data = datasets.Dataset.from_list(rows)
    if credit == "grpo":  # the baseline: TRL alone
        trainer = GRPOTrainer(
            model=model, reward_funcs=[punctuation_reward], args=args, train_dataset=data
        )
        trainer.add_callback(StepLog(folder))
    else:
        trainer = TimedHICRATrainer(
            model=model,
            reward_funcs=[punctuation_reward],
            args=args,
            train_dataset=data,
            strategic_grams="paper",
        )
    return timed_steps(trainer, folder)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="tiny,smollm2-135m")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    options = parser.parse_args()
    import torch

    device = options.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA GPU here")
    where = (
        torch.cuda.get_device_name(0)
        if device == "cuda"
        else f"CPU ({torch.get_num_threads()} threads)"
    )
    print(f"device timed: {where}")
    with tempfile.TemporaryDirectory() as tmp:
        for name in options.models.split(","):
            settings = SETTINGS[name]
            model = str(build_tiny_model(Path(tmp) / "tiny")) if name == "tiny" else name
            if name != "tiny":
                from hicra.models import resolve_model_path

                model = resolve_model_path(name)
            times: dict[str, list[float]] = {"grpo": [], "hicra": []}
            TimedHICRATrainer.own_seconds = 0.0
            start = time.perf_counter()
            for round_index in range(options.rounds):
                for credit in ("grpo", "hicra"):
                    folder = Path(tmp) / f"{name}-{credit}-{round_index}"
                    times[credit] += step_times(model, credit, folder, settings, device == "cpu")
            grpo, hicra = statistics.median(times["grpo"]), statistics.median(times["hicra"])
            print(
                f"{name}: {settings['batch']} completions x {settings['length']} tokens, "
                f"{len(times['grpo'])}+{len(times['hicra'])} timed steps "
                f"({time.perf_counter() - start:.0f} s)"
            )
            print(f"  GRPO  median step {grpo * 1e3:9.1f} ms")
            print(f"  HICRA median step {hicra * 1e3:9.1f} ms")
            print(f"  HICRA / GRPO      {hicra / grpo:9.3f}x  (target: at most 1.02x)")
            per_step = TimedHICRATrainer.own_seconds / (options.rounds * settings["steps"])
            print(
                f"  HICRA's own code  {per_step * 1e3:9.2f} ms a step = "
                f"{100 * per_step / grpo:.2f}% of a GRPO step (timed inside the step)"
            )


if __name__ == "__main__":
    main()
