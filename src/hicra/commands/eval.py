"""`hicra eval`: evaluate a model on math benchmarks, or compare two evaluations."""

from __future__ import annotations

import argparse
import sys

from hicra.commands import positive_int
from hicra.errors import HicraError
from hicra.prompts import PromptStyle


def register(subparsers: argparse._SubParsersAction) -> None:
    from hicra.eval.backends import BACKENDS
    from hicra.eval.checkers import CHECKERS
    from hicra.eval.registry import BENCHMARKS, PAPER_BENCHMARKS
    from hicra.eval.runner import DEFAULT_MAX_NEW_TOKENS

    parser = subparsers.add_parser(
        "eval",
        help="evaluate a model on math benchmarks (pass@1 as avg@k, pass@k, maj@k)",
        description="Sample completions for math benchmarks, check their final answers, and "
        "write samples.jsonl, results.json and a paper-style results.md table. An interrupted "
        "evaluation resumes where it stopped when rerun with the same arguments. "
        "With --compare, print two evaluations side by side instead.",
    )
    parser.add_argument(
        "--model",
        help="hub id, local folder, hicra run folder (final model, else latest checkpoint), "
        "RUN/checkpoint-N, or the bundled offline alias smollm2-135m; a vision-language model "
        "also takes the image benchmarks (mathvista, mathvision, mathverse, emma)",
    )
    parser.add_argument(
        "--benchmarks",
        default=",".join(PAPER_BENCHMARKS),
        help=f"comma-separated, from: {', '.join(BENCHMARKS)}, or local .jsonl files of your own "
        "problems (question and answer fields; each a benchmark named after its file) "
        f"(default: the paper's table, {','.join(PAPER_BENCHMARKS)})",
    )
    parser.add_argument(
        "--data-dir",
        help="local benchmark folder holding <name>/test.jsonl, test.jsonl.gz or test.parquet "
        "(image paths relative to it; default: the copies bundled with hicra, else the hub)",
    )
    parser.add_argument(
        "--samples",
        type=positive_int,
        help="samples per problem for every benchmark (default: 32 AIME24/25, 4 AMC23, else 1)",
    )
    parser.add_argument("--temperature", type=float, default=0.6, help="0 = greedy (default 0.6)")
    parser.add_argument("--top-p", type=float, default=0.95, help="nucleus sampling (default 0.95)")
    parser.add_argument(
        "--max-new-tokens",
        type=positive_int,
        help=f"completion length limit (default {DEFAULT_MAX_NEW_TOKENS:,}, or what the model's "
        "context leaves after the longest prompt when that is less)",
    )
    parser.add_argument("--limit", type=positive_int, help="only the first N problems of each")
    parser.add_argument(
        "--checker",
        default="math-verify",
        metavar="CHECKER",
        help=f"{' or '.join(CHECKERS)} (default math-verify: symbolic, boxed or anchored answers, "
        "hard time limits; strict-boxed: the paper's protocol), or your own verifier as "
        "hicra train's --reward-funcs takes it: my_module.check or path/to/file.py:check, "
        "called as check(completion, row) -> True/False with the benchmark file's row",
    )
    parser.add_argument(
        "--output-dir",
        help="where results go (default: RUN/eval for a run folder, else ./eval-MODEL)",
    )
    parser.add_argument(
        "--backend",
        choices=BACKENDS,
        default="auto",
        help="auto: vLLM when installed and a GPU is present, else Hugging Face (default auto)",
    )
    parser.add_argument(
        "--batch-size",
        type=positive_int,
        help="HF backend: completions per generate call (default 16 on CPU, 64 on a GPU)",
    )
    parser.add_argument(
        "--dtype",
        choices=("auto", "float32", "bfloat16", "float16"),
        default="auto",
        help="auto: the checkpoint's dtype on a GPU, float32 on CPU",
    )
    parser.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    parser.add_argument(
        "--no-progress", action="store_true", help="no progress bar (shown on terminals only)"
    )
    prompt = parser.add_argument_group(
        "prompt",
        "how questions are asked (default: the paper's, one user turn ending in the boxed "
        "instruction)",
    )
    prompt.add_argument(
        "--prompt-of",
        metavar="RUN",
        help="ask as the hicra run in RUN was trained: its system prompt, few-shot turns and "
        "instruction (from RUN/config.yaml)",
    )
    prompt.add_argument("--system-prompt", help="a system message before the question")
    prompt.add_argument("--instruction", help="text after the question (default: the boxed one)")
    prompt.add_argument("--few-shot", help="JSON list of [question, answer] example turns")
    parser.add_argument(
        "--compare",
        nargs=2,
        metavar=("A", "B"),
        help="print two evaluations (output folders or results.json files) side by side",
    )
    parser.set_defaults(func=run)


def prompt_style(args: argparse.Namespace) -> PromptStyle:
    """--prompt-of RUN, then the explicit prompt flags on top."""
    from hicra.run_folder import read_run_config

    base = PromptStyle()
    if args.prompt_of:
        base = PromptStyle.of_run(read_run_config(args.prompt_of))
    few_shot = args.few_shot if args.few_shot is not None else [list(p) for p in base.few_shot]
    return PromptStyle.from_fields(
        args.system_prompt if args.system_prompt is not None else base.system_prompt,
        args.instruction if args.instruction is not None else base.instruction,
        few_shot,
    )


def run(args: argparse.Namespace) -> int:
    if args.compare:
        from hicra.eval.results import compare_table, load_results

        a, b = (load_results(path) for path in args.compare)
        print(compare_table(a, b, args.compare[0], args.compare[1]), end="")
        return 0
    if not args.model:
        raise HicraError("give --model MODEL (or --compare A B)")
    from hicra.eval.results import markdown_table
    from hicra.eval.runner import EvalConfig, default_output_dir, evaluate

    config = EvalConfig(
        model=args.model,
        benchmarks=args.benchmarks.split(","),
        output_dir=args.output_dir or default_output_dir(args.model),
        data_dir=args.data_dir,
        samples=args.samples,
        temperature=args.temperature,
        top_p=args.top_p,
        max_new_tokens=args.max_new_tokens,
        limit=args.limit,
        checker=args.checker,
        backend=args.backend,
        batch_size=args.batch_size,
        dtype=args.dtype,
        seed=args.seed,
        progress=not args.no_progress,
        prompt=prompt_style(args),
    )
    try:
        results = evaluate(config)
    except KeyboardInterrupt:
        print(
            f"hicra eval: interrupted; finished problems are kept in {config.output_dir}: "
            "rerun the same command to resume",
            file=sys.stderr,
        )
        return 130
    print(markdown_table(results), end="")
    timing = results["timing"]
    if timing["tokens_per_second"]:
        print(
            f"\n{timing['generated_tokens']:,} tokens in {timing['generation_seconds']:.1f} s "
            f"({timing['tokens_per_second']:,.0f} tokens/s); {timing['resumed_problems']} "
            "problems resumed from earlier runs"
        )
    print(f"\nwrote {config.output_dir}/results.json, results.md, samples.jsonl")
    return 0
