"""What vision-language support costs: reading an image dataset, and a training step.

1. Dataset: the same rows built as a text dataset (the baseline) and as an image dataset whose
   images are files beside the data file; every image is checked before training (header and PNG
   checksums, `hicra.images.check_image`). Printed: both times, their ratio, the time per image;
   and what the checks over every row cost against the text rows: finding the fields over all rows
   (`find_schema`), and counting every prompt's tokens against the model's context.
2. Training step on a tiny random Idefics3 (SmolVLM-style) model with image prompts: TRL's own
   GRPOTrainer (the baseline) against HICRATrainer (HICRA credit, hierarchy metrics, rollouts with
   thumbnails), the same config, seed and data, runs alternated, on one thread. Printed: the
   median step times, their ratio, and the time spent making thumbnails, timed inside the step.

    python benchmarks/vision.py [--rows 2000] [--size 256] [--rounds 2] [--data-only]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch
from train_step import StepLog, timed_steps, timing_config  # benchmarks/train_step.py
from trl import GRPOTrainer

import hicra.train.images as images_module
from hicra.context import ContextFit
from hicra.models import load_processor
from hicra.testing.tiny import build_tiny_tokenizer, punctuation_reward
from hicra.testing.tiny_vision import build_tiny_vlm, digit_image
from hicra.train.data import DataSpec, PromptStyle, build_dataset, find_schema
from hicra.train.hicra_trainer import HICRATrainer


def write_rows(folder: Path, rows: int, size: int) -> tuple[Path, Path]:
    """The same questions twice: with an image file each, and without."""
    (folder / "images").mkdir(parents=True)
    with_images, text_only = [], []
    for i in range(rows):
        relative = f"images/{i}.png"
        digit_image(i % 10, ("circle", "square", "triangle")[i % 3], size=size, seed=i).save(
            folder / relative
        )
        row = {"question": f"Which digit is shown? ({i})", "answer": str(i % 10)}
        with_images.append({**row, "image": relative})
        text_only.append(row)
    paths = folder / "images.jsonl", folder / "text.jsonl"
    for path, data in zip(paths, (with_images, text_only), strict=True):
        path.write_text("".join(json.dumps(r) + "\n" for r in data))
    return paths


def build_seconds(path: Path, fit: ContextFit | None = None) -> float:
    start = time.perf_counter()
    build_dataset(DataSpec(str(path)), PromptStyle(), fit)
    return time.perf_counter() - start


def schema_seconds(path: Path) -> float:
    rows = [(i + 1, json.loads(line)) for i, line in enumerate(path.read_text().splitlines())]
    start = time.perf_counter()
    find_schema(rows, DataSpec(str(path)), str(path), "line")
    return time.perf_counter() - start


def checks_over_every_row(text: Path, text_s: float, rows: int) -> None:
    """The schema scan and the context check, against building the text dataset."""
    tokenizer = build_tiny_tokenizer()
    schema_s = statistics.median(schema_seconds(text) for _ in range(3))
    print(f"checks over all {rows} rows (text rows as the baseline):")
    print(f"  fields found over every row {schema_s * 1e3:8.2f} ms = {schema_s / text_s:.3f}x")
    # 1,024 positions, 32 new tokens: the byte bound clears every prompt without tokenizing;
    # 954 new tokens leave 70 for the ~60-token prompts: every one is tokenized (the worst case)
    for new_tokens, label in ((32, "context check"), (954, "context check, all counted")):
        fit = ContextFit(tokenizer, 1024, new_tokens, "--max-completion-length")
        fit_s = statistics.median(build_seconds(text, fit) for _ in range(3))
        print(
            f"  text rows + {label:<27} {fit_s:8.3f} s   ({fit_s / text_s:.2f}x the text rows; "
            f"{(fit_s - text_s) / rows * 1e3:.3f} ms a prompt)"
        )


THUMBNAIL_SECONDS = [0.0]


def timed_rollout_images(*args, **kwargs):
    start = time.perf_counter()
    try:
        return ORIGINAL_ROLLOUT_IMAGES(*args, **kwargs)
    finally:
        THUMBNAIL_SECONDS[0] += time.perf_counter() - start


ORIGINAL_ROLLOUT_IMAGES = images_module.rollout_images
images_module.rollout_images = timed_rollout_images


def step_times(model: str, data, credit: str, folder: Path, steps: int) -> list[float]:
    settings = {"steps": steps, "batch": 16, "generations": 8, "length": 32}
    args = timing_config(folder, credit, settings)
    common = {
        "model": model,
        "reward_funcs": [punctuation_reward],
        "args": args,
        "train_dataset": data,
        "processing_class": load_processor(model),
    }
    if credit == "grpo":
        trainer = GRPOTrainer(**common)
        trainer.add_callback(StepLog(folder))
    else:
        trainer = HICRATrainer(**common, strategic_grams="paper")
    return timed_steps(trainer, folder)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--size", type=int, default=256, help="image side in pixels")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--data-only", action="store_true", help="skip the training steps")
    options = parser.parse_args()
    torch.set_num_threads(1)  # a tiny model is all overhead; one thread is steadier on a busy CPU
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        images, text = write_rows(root / "data", options.rows, options.size)
        build_seconds(text)  # warm-up: imports, the datasets cache
        text_s = statistics.median(build_seconds(text) for _ in range(3))
        image_s = statistics.median(build_seconds(images) for _ in range(3))
        print(f"dataset: {options.rows} rows, PNG images {options.size} x {options.size}")
        print(f"  text rows        {text_s:8.3f} s")
        print(f"  image rows       {image_s:8.3f} s   ({image_s / text_s:.2f}x the text rows)")
        per_image = (image_s - text_s) / options.rows
        print(f"  per image        {per_image * 1e3:8.3f} ms (check + image column)")
        checks_over_every_row(text, text_s, options.rows)
        if options.data_only:
            return

        model = str(build_tiny_vlm(root / "vlm"))
        data, _ = build_dataset(DataSpec(str(images)), PromptStyle())
        times: dict[str, list[float]] = {"grpo": [], "hicra": []}
        for round_index in range(options.rounds):
            for credit in ("grpo", "hicra"):
                folder = root / f"{credit}-{round_index}"
                times[credit] += step_times(model, data, credit, folder, options.steps)
        grpo, hicra = statistics.median(times["grpo"]), statistics.median(times["hicra"])
        print("training step: tiny Idefics3, 16 image prompts' completions x 32 tokens")
        print(f"  TRL GRPO median step {grpo * 1e3:8.1f} ms")
        print(f"  HICRA    median step {hicra * 1e3:8.1f} ms   (HICRA / GRPO {hicra / grpo:.3f}x)")
        per_step = THUMBNAIL_SECONDS[0] / (options.rounds * options.steps)
        print(
            f"  rollout images and thumbnails {per_step * 1e3:.2f} ms a step = "
            f"{100 * per_step / grpo:.2f}% of a GRPO step"
        )


if __name__ == "__main__":
    main()
