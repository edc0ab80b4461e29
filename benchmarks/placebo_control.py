"""Cost of the controls per generation batch, against the planning mask every step computes anyway.

Workload: 64 completions of 256 SmolLM2 tokens of real math reasoning text (MATH test solutions
bundled with hicra), the paper's 249-gram preset, one CPU thread. Timed (median of the repeats):
the baseline `PlanningTagger.token_mask` on the batch; a placebo step without a re-match
(`PlaceboControl.mask`: its own mask plus the run counts and the saved file); a draw (the first
one, or a re-match: `draw_placebo` over every candidate n-gram of the batch); a random-tokens step
(`random_token_mask`). Printed as times and ratios to the baseline.

    python benchmarks/placebo_control.py [--rows 64] [--tokens 256] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch
from accelerate import Accelerator

from hicra import PlanningTagger, StrategicGrams
from hicra.advantages import random_token_mask
from hicra.eval.registry import bundled_file, get_benchmark
from hicra.jsonl import read_jsonl
from hicra.models import load_tokenizer
from hicra.train.placebo import PlaceboControl, draw_placebo, random_generator


def build_batch(tokenizer, rows: int, tokens: int) -> torch.Tensor:
    solutions = [row["solution"] for _, row in read_jsonl(bundled_file(get_benchmark("math")))]
    out = []
    for text in solutions:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        if len(ids) >= tokens:
            out.append(ids[:tokens])
        if len(out) == rows:
            break
    return torch.tensor(out)


def timed(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=64)
    parser.add_argument("--tokens", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    tokenizer = load_tokenizer("smollm2-135m")
    grams = StrategicGrams.preset("paper")
    tagger = PlanningTagger(grams, tokenizer)
    ids = build_batch(tokenizer, args.rows, args.tokens)
    real = torch.ones_like(ids, dtype=torch.bool)
    planning = tagger.token_mask(ids, real).bool()
    rows = [row.numpy() for row in ids]
    texts = [tagger.decode_with_spans(row)[0] for row in rows]

    baseline = timed(lambda: tagger.token_mask(ids, real), args.repeats)
    draw = timed(lambda: draw_placebo(texts, rows, grams, tagger, 1), args.repeats)
    with tempfile.TemporaryDirectory() as folder:
        control = PlaceboControl(grams, tagger, 1, folder, Accelerator(cpu=True))
        control.mask(ids, real, planning, step=0)  # the first draw
        step = [0]

        def placebo_step() -> None:
            step[0] += 1
            control.mask(ids, real, planning, step=step[0])

        steady = timed(placebo_step, args.repeats)
        rematches = control.rematches
    rand = timed(lambda: random_token_mask(planning, real, random_generator(1, 0, 0)), args.repeats)
    print(f"batch: {args.rows} completions x {args.tokens} tokens, planning ratio "
          f"{float(planning.float().mean()):.3f}")  # fmt: skip
    print(f"planning mask (baseline)     {baseline * 1e3:8.1f} ms")
    for name, value in (
        ("placebo step, no re-match", steady),
        ("placebo draw / re-match", draw),
        ("random-tokens mask", rand),
    ):
        print(f"{name:28s} {value * 1e3:8.1f} ms  {value / baseline:6.2f}x the baseline")
    print(f"re-matches during the steady steps: {rematches} (the same batch again: none expected)")


if __name__ == "__main__":
    main()
