"""verl's advantage step with HICRA vs verl's own GRPO step, on one batch in TransferQueue, and
HICRA's added driver work on a simulated 16 M-token step, in its two paths.

Baseline: verl's `PPOTrainerSync._compute_advantage` with adv_estimator=grpo. HICRA: the
`hicra_sync` trainer (verl's step, then reading the responses back, tagging planning tokens with
the paper's 249 grams, the credit rule, the hierarchy metrics with entropies, the run folder's
bookkeeping, writing back), either tagging on the driver (a user who names verl's own agent-loop
manager) or, by default, reading the planning masks and gram counts HICRA's agent-loop workers
stored as the responses were produced (`workers.py`; here stored by `put_worker_tags`, the same
tagging, since no LLM runs) and applying only the credit. Rollouts are reasoning text (the bundled sample trace, repeated)
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
from dataclasses import replace
from importlib import resources
from pathlib import Path

import numpy as np
import torch
import transfer_queue as tq
from verl.trainer.ppo import core_algos

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from hicra.advantages import get_credit
from hicra.integrations.verl.credit import (
    StepResponses,
    assign_step_credit,
    hierarchy_metrics,
    tag_response,
)
from hicra.integrations.verl.settings import VerlHicraSettings
from hicra.testing.tiny import build_tiny_model
from tests.verl_fixtures import (
    build_trainer,
    local_transfer_queue,
    put_entropies,
    put_rollouts,
    put_worker_tags,
    sample,
)

TARGET_SECONDS = 1.0  # issue 30: at most 1 s of added driver time for a 16 M-token step
# the agent-loop manager of a user who names verl's own: the driver tags the responses itself
DRIVER_TAGS = "+actor_rollout_ref.rollout.agent.agent_loop_manager_class=" + (
    "verl.trainer.ppo.v1.AgentLoopManagerTQ"
)


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


def timed_step(trainer, step, prompts: int, repeats: int, tagged: bool = False) -> float:
    """The fastest of `repeats` advantage steps: on a shared machine the rest measure the load.
    `tagged`: the step carries the tags HICRA's agent-loop workers add."""
    seconds = []
    for _ in range(repeats):
        partition = put_rollouts(trainer.tokenizer, step)
        batch = sample(trainer, partition, prompts)
        put_entropies(batch)
        if tagged:
            put_worker_tags(trainer.hicra_tagger, batch)
        start = time.perf_counter()
        trainer._compute_advantage(batch, {})
        seconds.append(time.perf_counter() - start)
    return min(seconds)


def timed_reads(trainers, step, prompts: int, repeats: int) -> list[float]:
    """For each trainer, the fastest of `repeats` reads of the fields it reads besides verl's own
    read, from one step that carries the workers' tags."""
    first = trainers[0]
    batch = sample(first, put_rollouts(first.tokenizer, step), prompts)
    put_entropies(batch)
    put_worker_tags(first.hicra_tagger, batch)
    return [best_of(repeats, reader(batch, trainer._hicra_fields())) for trainer in trainers]


def reader(batch, fields: list[str]):
    """One extra read as the trainer makes it: the fields, padded."""
    return lambda: tq.kv_batch_get(
        keys=batch.keys, partition_id=batch.partition_id, select_fields=fields
    ).to_padded_tensor()


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
        driver = build_trainer(
            model, f"+algorithm.output_dir={folder}/a", DRIVER_TAGS, group=args.n
        )
        workers = build_trainer(model, f"+algorithm.output_dir={folder}/b", group=args.n)
        tagger = workers.hicra_tagger
        step = rollouts(workers.tokenizer, args.prompts, args.n, args.tokens)
        base = timed_step(grpo, step, args.prompts, args.repeats)
        ours = timed_step(driver, step, args.prompts, args.repeats)
        ready = timed_step(workers, step, args.prompts, args.repeats, tagged=True)
        # the extra reads alone, at a short and at the big step's response length (reads are
        # short and noisy: more repeats)
        short, long = args.tokens // 4, args.big_tokens
        reads = {
            length: timed_reads(
                [driver, workers],
                rollouts(workers.tokenizer, args.prompts, args.n, length),
                args.prompts,
                max(args.repeats, 7),
            )
            for length in (short, long)
        }
        paths = {"driver": driver._hicra_fields(), "workers": workers._hicra_fields()}
    rows = args.prompts * args.n
    tokens = rows * args.tokens
    print(f"batch: {rows} responses x {args.tokens} tokens ({tokens:,} tokens) in TransferQueue")
    print(f"verl GRPO _compute_advantage:                 {base:.3f} s")
    for name, seconds in (("tagging on the driver", ours), ("tagged in the workers", ready)):
        added = seconds - base
        print(
            f"HICRA _compute_advantage, {name}: {seconds:.3f} s ({seconds / base:.2f}x GRPO; "
            f"added {added:.3f} s, {tokens / max(added, 1e-9) / 1e6:.2f} M tokens/s)"
        )
    # each read's cost per row and per token, from its two timings, for the big step
    per_row, per_token = {}, {}
    for index, (name, fields) in enumerate(paths.items()):
        at_short, at_long = reads[short][index], reads[long][index]
        per_token[name] = max(at_long - at_short, 0.0) / (rows * (long - short))
        per_row[name] = max(at_short - per_token[name] * rows * short, 0.0) / rows
        print(
            f"extra TransferQueue read ({name} tags) of {', '.join(fields)}, {rows} responses: "
            f"{at_short:.3f} s at {short:,} tokens a response, {at_long:.3f} s at {long:,} "
            f"({per_row[name] * 1e6:.0f} us a row + {per_token[name] * 1e9:.1f} ns a token)"
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
    # the same step with the workers' tags: every row is the same trace, so one row's tags
    row = tag_response(tagger, big.responses[0].tolist(), big.response_mask[0].tolist(), "longest")
    tagged = replace(big, responses=None, worker_tags=row.repeat(big_rows, 1))
    credit_only = best_of(2, lambda: hicra_compute(tagged, tagger, args.n))
    print(
        f"simulated step: {args.big_prompts} prompts x {args.n} responses x "
        f"{args.big_tokens:,} tokens ({big_tokens:,} tokens), in memory"
    )
    print(f"verl's GRPO advantage function: {grpo_seconds:.3f} s")
    print(
        f"HICRA's added computation, tagging on the driver: {compute:.3f} s "
        f"({big_tokens / compute / 1e6:.2f} M tokens/s: tagging, credit, hierarchy metrics)"
    )
    print(f"  of which tagging: {tagging:.3f} s ({big_tokens / tagging / 1e6:.2f} M tokens/s)")
    print(
        f"HICRA's added computation, tagged in the workers: {credit_only:.3f} s "
        f"({big_tokens / credit_only / 1e6:.2f} M tokens/s: credit, hierarchy metrics)"
    )
    for name, seconds in (("driver", compute), ("workers", credit_only)):
        io = per_row[name] * big_rows + per_token[name] * big_tokens
        total = seconds + io
        verdict = "met" if total <= TARGET_SECONDS else "NOT met"
        print(
            f"HICRA's added driver time at {big_tokens / 1e6:.1f} M tokens, tagged in the "
            f"{name}: {total:.2f} s = {seconds:.2f} s computation + {io:.2f} s extra read "
            f"(extrapolated to {big_rows:,} rows; target <= {TARGET_SECONDS:.0f} s: {verdict} "
            "on this machine at this load)"
        )
    print(f"load average (1 min) {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
