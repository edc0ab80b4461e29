"""verl's advantage step with HICRA vs verl's own GRPO step, on one batch in TransferQueue.

Baseline: verl's `PPOTrainerSync._compute_advantage` with adv_estimator=grpo. HICRA: the
`hicra_sync` trainer (verl's step, then reading the responses back, tagging planning tokens with
the paper's 249 grams, the credit rule, the hierarchy metrics with entropies, writing back).
Rollouts are reasoning text (the bundled sample trace, repeated) written as verl's agent loop
writes them, tiny locally built tokenizer, local Ray; no GPU. Needs the verl environment.

    .venv-verl/bin/python benchmarks/verl_advantage.py [--prompts 32] [--n 8] [--tokens 1024]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from importlib import resources
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from hicra.testing.tiny import build_tiny_model
from tests.verl_fixtures import (
    build_trainer,
    local_transfer_queue,
    put_entropies,
    put_rollouts,
    sample,
)


def rollouts(tokenizer, prompts: int, n: int, tokens: int):
    trace = resources.files("hicra").joinpath("assets/sample_trace.txt").read_text("utf-8")
    ids = tokenizer.encode(trace)
    text = tokenizer.decode((ids * (tokens // len(ids) + 1))[:tokens])
    return {
        f"p{p:04d}": [(text, float((p + s) % 3 == 0), None) for s in range(n)]
        for p in range(prompts)
    }


def timed_step(trainer, step, prompts: int, repeats: int) -> float:
    seconds = []
    for _ in range(repeats):
        partition = put_rollouts(trainer.tokenizer, step)
        batch = sample(trainer, partition, prompts)
        put_entropies(batch)
        start = time.perf_counter()
        trainer._compute_advantage(batch, {})
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)  # as in verl's driver actor (Ray sets OMP_NUM_THREADS=1)
    with tempfile.TemporaryDirectory() as folder, local_transfer_queue():
        model = build_tiny_model(folder)
        grpo = build_trainer(
            model, "algorithm.adv_estimator=grpo", "trainer.v1.trainer_mode=sync", group=args.n
        )
        hicra = build_trainer(model, group=args.n)
        step = rollouts(hicra.tokenizer, args.prompts, args.n, args.tokens)
        base = timed_step(grpo, step, args.prompts, args.repeats)
        ours = timed_step(hicra, step, args.prompts, args.repeats)
    rows = args.prompts * args.n
    print(f"batch: {rows} responses x {args.tokens} tokens ({rows * args.tokens:,} tokens)")
    print(f"verl GRPO _compute_advantage:  {base:.3f} s")
    print(f"HICRA _compute_advantage:      {ours:.3f} s")
    print(f"ratio HICRA / GRPO:            {ours / base:.2f}x")
    print(f"HICRA's added work:            {rows * args.tokens / (ours - base):,.0f} tokens/s")


if __name__ == "__main__":
    main()
