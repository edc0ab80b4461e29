"""Generation throughput of `hicra eval`'s HF backend: batched vs one prompt at a time.

Workload: the first 16 GSM8K test questions (bundled with hicra) in SmolLM2-135M-Instruct's chat
template with the boxed instruction, greedy decoding, 64 new tokens each, float32 on CPU, one
thread (the development machine's two cores are shared; one thread keeps the figure steady). Both
modes use the same HFBackend (left padding, KV cache) and the same weights in the same process;
only the batch size differs (16 rows per generate call vs 1). Generated tokens count each
completion up to and including its end-of-sequence token, so padding after an early stop is not
counted as work. Throughput is given per wall-clock second and per CPU second of this process (the
latter is less disturbed by other processes). Greedy outputs of both modes are compared too (left
padding must not change them).

Then what `hicra eval` checks before generating, on MATH's 5,000 bundled problems: every prompt
encoded (a resumed evaluation now encodes its finished problems too, to check them), the problems'
content hashes (the sample cache's key) and the context check; printed per problem and as a ratio
to one batched completion of the run above.

    python benchmarks/eval_throughput.py [--prompts 16] [--tokens 64] [--batch-size 16] [--threads 1]
"""

from __future__ import annotations

import argparse
import time

from hicra.context import check_prompt_lengths, context_length
from hicra.eval.registry import load_benchmark, problems_hash
from hicra.eval.sampling import HFBackend, Request, SamplingSettings, encode_prompt
from hicra.models import load_tokenizer, resolve_model_path


def timed(backend: HFBackend, requests: list[Request], settings: SamplingSettings, label: str):
    wall, cpu = time.perf_counter(), time.process_time()
    out = backend.generate(requests, settings)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    tokens = sum(c.tokens for row in out for c in row)
    print(
        f"{label:<22} {tokens} tokens in {wall:6.1f} s = {tokens / wall:7.1f} tokens/s "
        f"({tokens / cpu:7.1f} per CPU second)"
    )
    return out, tokens / wall, tokens / cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--model", default="smollm2-135m")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)

    path = resolve_model_path(args.model)
    tokenizer = load_tokenizer(path)
    problems = load_benchmark("gsm8k", limit=args.prompts)
    requests = [Request(encode_prompt(tokenizer, p.question), 1, p.id) for p in problems]
    settings = SamplingSettings(temperature=0.0, max_new_tokens=args.tokens)
    batched = HFBackend.from_path(path, tokenizer, batch_size=args.batch_size)
    single = HFBackend(batched.model, tokenizer, batch_size=1)  # the same weights
    single.generate(requests[:1], SamplingSettings(temperature=0.0, max_new_tokens=4))  # warm-up

    lengths = [len(r.prompt_ids) for r in requests]
    print(
        f"{args.model}: {len(requests)} GSM8K prompts ({min(lengths)}-{max(lengths)} tokens), "
        f"greedy, {args.tokens} new tokens, {torch.get_num_threads()} CPU threads"
    )
    out_b, wall_b, cpu_b = timed(batched, requests, settings, f"batched ({args.batch_size}/call):")
    out_s, wall_s, cpu_s = timed(single, requests, settings, "one prompt at a time:")
    same = sum(a == b for a, b in zip(out_b, out_s, strict=True))
    print(
        f"speed-up: {wall_b / wall_s:.2f}x per wall-clock second, {cpu_b / cpu_s:.2f}x per CPU "
        f"second; identical greedy completions: {same}/{len(requests)}"
    )
    tokens_each = sum(c.tokens for row in out_b for c in row) / len(requests)
    checks_before_generation(tokenizer, path, args.tokens, tokens_each / wall_b)


def checks_before_generation(
    tokenizer, path: str, new_tokens: int, seconds_per_completion: float
) -> None:
    """Encoding, hashing and the context check of MATH's problems, against generation."""
    problems = load_benchmark("math")
    start = time.perf_counter()
    prompts = [encode_prompt(tokenizer, p.question) for p in problems]
    encoded = time.perf_counter() - start
    start = time.perf_counter()
    problems_hash(problems)
    lengths = ((len(ids), p.where) for ids, p in zip(prompts, problems, strict=True))
    check_prompt_lengths(lengths, context_length(path), new_tokens, "--max-new-tokens")
    checked = time.perf_counter() - start
    per = 1e3 / len(problems)
    print(
        f"before generation, {len(problems)} MATH problems: encoding {encoded:.2f} s "
        f"({encoded * per:.3f} ms a problem = {encoded / len(problems) / seconds_per_completion:.2g}x"
        f" one batched completion of {seconds_per_completion * 1e3:.0f} ms); content hashes + "
        f"context check {checked * 1e3:.1f} ms ({checked * per:.4f} ms a problem = "
        f"{checked / len(problems) / seconds_per_completion:.2g}x)"
    )


if __name__ == "__main__":
    main()
