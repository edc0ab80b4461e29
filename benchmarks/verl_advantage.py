"""verl's advantage step with HICRA vs verl's own GRPO step, on one batch in TransferQueue, and
HICRA's added driver work on a simulated 16 M-token step.

Baseline: verl's `PPOTrainerSync._compute_advantage` with adv_estimator=grpo. HICRA: the
`hicra_sync` trainer (verl's step, then reading the responses back, tagging planning tokens with
the paper's 249 grams, the credit rule, the hierarchy metrics with entropies, the run folder's
bookkeeping, writing back). Rollouts are reasoning text (the bundled sample trace, repeated)
written as verl's agent loop writes them, tiny locally built tokenizer, local Ray; no GPU.

A cluster step (512 prompts x 8 responses x 4,000 tokens: 16 M tokens) does not fit a local
TransferQueue on a small machine, so the second part runs the driver's added computation
(`assign_step_credit` and `hierarchy_metrics` on padded tensors, what `_compute_advantage` adds
besides TransferQueue reads and writes) on such a batch in memory, against verl's own GRPO
advantage function on the same batch, and adds HICRA's extra TransferQueue read extrapolated from
the first part: the read is timed alone at two response lengths (the longer that of the big step),
and what does not grow with the tokens is taken to grow with the rows (TransferQueue's cost is per row and field: 4,096 rows cost
16 times 256). Needs the verl environment.

    .venv-verl/bin/python benchmarks/verl_advantage.py [--prompts 32] [--n 8] [--tokens 1024]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from importlib import resources
from pathlib import Path

import numpy as np
import torch
import transfer_queue as tq
from verl.trainer.ppo import core_algos

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from hicra.advantages import get_credit
from hicra.integrations.verl.credit import StepResponses, assign_step_credit, hierarchy_metrics
from hicra.integrations.verl.settings import VerlHicraSettings
from hicra.testing.tiny import build_tiny_model
from tests.verl_fixtures import (
    build_trainer,
    local_transfer_queue,
    put_entropies,
    put_rollouts,
    sample,
)

TARGET_SECONDS = 1.0  # issue 30: at most 1 s of added driver time for a 16 M-token step


def trace_ids(tokenizer, tokens: int) -> list[int]:
    trace = resources.files("hicra").joinpath("assets/sample_trace.txt").read_text("utf-8")
    ids = tokenizer.encode(trace)
    return (ids * (tokens // len(ids) + 1))[:tokens]


def rollouts(tokenizer, prompts: int, n: int, tokens: int):
    text = tokenizer.decode(trace_ids(tokenizer, tokens))
    return {
        f"p{p:04d}": [(text, float((p + s) % 3 == 0), None) for s in range(n)]
        for p in range(prompts)
    }


def timed_step(trainer, step, prompts: int, repeats: int) -> float:
    """The fastest of `repeats` advantage steps: on a shared machine the rest measure the load."""
    seconds = []
    for _ in range(repeats):
        partition = put_rollouts(trainer.tokenizer, step)
        batch = sample(trainer, partition, prompts)
        put_entropies(batch)
        start = time.perf_counter()
        trainer._compute_advantage(batch, {})
        seconds.append(time.perf_counter() - start)
    return min(seconds)


def timed_read(trainer, step, prompts: int, repeats: int) -> float:
    """The fastest of `repeats` reads of the fields HICRA reads besides verl's own read."""
    batch = sample(trainer, put_rollouts(trainer.tokenizer, step), prompts)
    put_entropies(batch)
    fields = trainer._hicra_fields()
    return best_of(
        repeats,
        lambda: tq.kv_batch_get(
            keys=batch.keys, partition_id=batch.partition_id, select_fields=fields
        ).to_padded_tensor(),
    )


def simulated_step(tokenizer, rows: int, n: int, tokens: int) -> tuple[StepResponses, torch.Tensor]:
    """A padded step as the driver holds it (responses of `tokens` tokens), and its token-level
    scores (verl's GRPO input)."""
    generator = torch.Generator().manual_seed(0)
    responses = torch.tensor(trace_ids(tokenizer, tokens)).repeat(rows, 1)
    lengths = torch.full((rows,), tokens)
    mask = (torch.arange(tokens)[None] < lengths[:, None]).long()
    rewards = (torch.rand(rows, generator=generator) < 0.4).float()
    scores = torch.zeros(rows, tokens)
    scores[torch.arange(rows), lengths - 1] = rewards
    uids = np.array([f"p{i // n}" for i in range(rows)], dtype=object)
    advantages, _ = core_algos.compute_grpo_outcome_advantage(scores, mask, uids)
    return StepResponses(
        responses=responses,
        response_mask=mask,
        advantages=advantages,
        uids=list(uids),
        padding=torch.zeros(rows, dtype=torch.bool),
        entropies=torch.rand(rows, tokens, generator=generator) * 3,
    ), scores


def hicra_compute(step: StepResponses, tagger, n: int) -> None:
    settings = VerlHicraSettings()
    result = assign_step_credit(step, get_credit("hicra"), tagger, settings, n)
    hierarchy_metrics(step, result, settings.fork_quantile)


def best_of(repeats: int, work) -> float:
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        seconds.append(time.perf_counter() - start)
    return min(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--big-prompts", type=int, default=512, help="the simulated step")
    parser.add_argument("--big-tokens", type=int, default=4000)
    args = parser.parse_args()
    torch.set_num_threads(1)  # as in verl's driver actor (Ray sets OMP_NUM_THREADS=1)
    print(f"load average (1 min) {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory() as folder, local_transfer_queue():
        model = build_tiny_model(folder)
        grpo = build_trainer(
            model, "algorithm.adv_estimator=grpo", "trainer.v1.trainer_mode=sync", group=args.n
        )
        hicra = build_trainer(model, f"+algorithm.output_dir={folder}/run", group=args.n)
        tagger = hicra.hicra_tagger
        fields = hicra._hicra_fields()
        step = rollouts(hicra.tokenizer, args.prompts, args.n, args.tokens)
        base = timed_step(grpo, step, args.prompts, args.repeats)
        ours = timed_step(hicra, step, args.prompts, args.repeats)
        padded, _ = simulated_step(hicra.tokenizer, args.prompts * args.n, args.n, args.tokens)
        compute = best_of(args.repeats, lambda: hicra_compute(padded, tagger, args.n))
        # HICRA's extra read alone, at a short and at the big step's response length (reads are
        # short and noisy: more repeats)
        short, long = args.tokens // 4, args.big_tokens
        reads = {
            length: timed_read(
                hicra,
                rollouts(hicra.tokenizer, args.prompts, args.n, length),
                args.prompts,
                max(args.repeats, 7),
            )
            for length in (short, long)
        }
    rows = args.prompts * args.n
    tokens = rows * args.tokens
    added = ours - base
    print(f"batch: {rows} responses x {args.tokens} tokens ({tokens:,} tokens) in TransferQueue")
    print(f"verl GRPO _compute_advantage:  {base:.3f} s")
    print(f"HICRA _compute_advantage:      {ours:.3f} s")
    print(f"ratio HICRA / GRPO:            {ours / base:.2f}x")
    print(f"HICRA's added driver time:     {added:.3f} s ({tokens / added / 1e6:.2f} M tokens/s)")
    print(f"  computation (in memory):     {compute:.3f} s (tagging, credit, metrics)")
    # the read's cost per row and per token, from its two timings, for the big step
    read_per_token = max(reads[long] - reads[short], 0.0) / (rows * (long - short))
    read_per_row = max(reads[short] - read_per_token * rows * short, 0.0) / rows
    print(
        f"HICRA's extra TransferQueue read of {', '.join(fields)}, {rows} responses: "
        f"{reads[short]:.3f} s at {short:,} tokens a response, {reads[long]:.3f} s at {long:,} "
        f"({read_per_row * 1e6:.0f} us a row + {read_per_token * 1e9:.1f} ns a token)"
    )

    big_rows = args.big_prompts * args.n
    big, scores = simulated_step(tagger.tokenizer, big_rows, args.n, args.big_tokens)
    big_tokens = int(big.response_mask.sum())
    uids = np.array(big.uids, dtype=object)
    grpo_seconds = best_of(
        2,
        lambda: core_algos.compute_grpo_outcome_advantage(scores, big.response_mask, uids),
    )
    compute = best_of(2, lambda: hicra_compute(big, tagger, args.n))
    tagging = best_of(2, lambda: tagger.token_mask(big.responses, big.response_mask.bool()))
    io = read_per_row * big_rows + read_per_token * big_tokens
    print(
        f"simulated step: {args.big_prompts} prompts x {args.n} responses x "
        f"{args.big_tokens:,} tokens ({big_tokens:,} tokens), in memory"
    )
    print(f"verl's GRPO advantage function: {grpo_seconds:.3f} s")
    print(
        f"HICRA's added computation:      {compute:.3f} s ({big_tokens / compute / 1e6:.2f} M "
        "tokens/s: tagging, credit, hierarchy metrics)"
    )
    print(
        f"  of which tagging:             {tagging:.3f} s ({big_tokens / tagging / 1e6:.2f} M "
        "tokens/s; what tagging in verl's workers would take off the driver)"
    )
    print(
        f"+ extra TransferQueue read (extrapolated to {big_rows:,} rows from the two reads "
        f"above): {io:.3f} s"
    )
    total = compute + io
    verdict = "met" if total <= TARGET_SECONDS else "NOT met"
    print(
        f"HICRA's added driver time at {big_tokens / 1e6:.1f} M tokens: {total:.2f} s "
        f"(target <= {TARGET_SECONDS:.0f} s: {verdict} on this machine at this load)"
    )


if __name__ == "__main__":
    main()
