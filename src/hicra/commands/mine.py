"""`hicra mine`: build a strategic-gram set from successful reasoning traces."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from hicra.commands import positive_int
from hicra.errors import HicraError

if TYPE_CHECKING:
    from hicra.mining import MiningResult


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "mine",
        help="build a strategic-gram set from successful reasoning traces",
        description="Mine strategic grams as in the HICRA paper: word n-grams of successful "
        "traces, prefiltered by document frequency, clustered by meaning, and the top fraction "
        "of clusters by cluster document frequency. Inputs: JSONL or Parquet (a run's "
        "rollouts.jsonl, trace files, or a dataset's solution field).",
    )
    parser.add_argument("inputs", nargs="+", type=Path, metavar="INPUT", help="JSONL or Parquet")
    parser.add_argument("--output", "-o", type=Path, required=True, help="grams JSON to write")
    parser.add_argument("--ngram-min", type=positive_int, default=3, help="default 3")
    parser.add_argument("--ngram-max", type=positive_int, default=5, help="default 5")
    parser.add_argument(
        "--top-fraction",
        type=float,
        default=0.2,
        help="share of clusters kept, best first (default 0.2, as the paper)",
    )
    parser.add_argument(
        "--embedder",
        default="minilm",
        help="minilm (offline all-MiniLM-L6-v2, default), none (merge only n-grams that differ "
        "in punctuation), or a sentence-transformers folder",
    )
    parser.add_argument(
        "--threshold",
        type=float,
        default=None,
        help="cosine similarity for joining a cluster's leader (default 0.75)",
    )
    parser.add_argument(
        "--min-df",
        type=positive_int,
        default=None,
        help="candidates must occur in at least N traces (default: 0.2%% of the traces used, "
        "at least 2)",
    )
    parser.add_argument(
        "--max-candidates",
        type=positive_int,
        default=2000,
        help="embed at most this many most frequent candidates (default 2000)",
    )
    parser.add_argument(
        "--sparsity",
        action="store_true",
        help="rank clusters by df / mean count per trace: favour phrases used once per trace",
    )
    parser.add_argument(
        "--field",
        default=None,
        help="text field (default: first of completion, response, output, text, solution, answer)",
    )
    parser.add_argument(
        "--reward-field",
        default=None,
        help="outcome field, or none to use every trace (default: correct, else reward, if present)",
    )
    parser.add_argument(
        "--min-reward",
        type=float,
        default=1.0,
        help="a numeric outcome counts as success at or above this (default 1.0)",
    )
    parser.add_argument("--name", default=None, help="name of the set (default: output stem)")
    parser.add_argument(
        "--max-table",
        type=positive_int,
        default=None,
        help="distinct n-grams held in memory while counting (default 2,000,000)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads for embedding (default 1: robust on a busy shared CPU; 0: torch's "
        "default, all cores)",
    )
    parser.add_argument("--show", type=int, default=10, help="top clusters to print (default 10)")
    parser.set_defaults(func=run)


def summary(result: MiningResult, output: Path, show: int) -> str:
    """The console report: corpus, candidates, clusters, kept grams, and the top clusters."""
    corpus = result.corpus
    lines = [
        f"traces: {corpus.read:,} read, {corpus.used:,} used, {corpus.skipped:,} skipped",
        *(f"  {f.summary()}" for f in corpus.files),
        f"candidates: {result.candidates:,} n-grams in >= {result.min_df} traces",
        f"clusters: {len(result.clusters):,}; kept {len(result.kept):,} "
        f"-> {len(result.grams):,} grams written to {output}",
    ]
    if show > 0:
        lines.append("top clusters (traces with any of its grams, mean count in such a trace):")
        for c in result.kept[:show]:
            share = 100 * c.df / corpus.used
            examples = ", ".join(repr(g) for g in c.grams[:4])
            more = f" (+{len(c.grams) - 4})" if len(c.grams) > 4 else ""
            lines.append(
                f"  #{c.rank + 1:<3} {c.df:>7,} ({share:4.1f}%) x{c.mean_count:.2f}  {examples}{more}"
            )
    timing = ", ".join(f"{k} {v:.1f}s" for k, v in result.timings.items())
    lines.append(f"time: {timing}")
    return "\n".join(lines)


def refuse_overwriting_inputs(output: Path, inputs: list[Path]) -> None:
    """`hicra mine X -o X` would replace the corpus with its grams: the output may not be an input
    (the same file after resolving links, or a file already in an input folder)."""
    target = output.resolve()
    for source in inputs:
        resolved = Path(source).resolve()
        inside = resolved.is_dir() and target.exists() and resolved in target.parents
        if target == resolved or inside:
            raise HicraError(
                f"--output {output} is the input {source}: mining would overwrite its corpus; "
                "give another output file"
            )


def run(args: argparse.Namespace) -> int:
    from hicra.mining import MiningConfig, TraceSpec, mine
    from hicra.mining.clustering import DEFAULT_THRESHOLD
    from hicra.mining.counting import DEFAULT_MAX_ENTRIES

    if args.output.exists() and args.output.is_dir():
        raise HicraError(f"--output {args.output} is a folder; give a file name")
    refuse_overwriting_inputs(args.output, args.inputs)
    config = MiningConfig(
        ngram_min=args.ngram_min,
        ngram_max=args.ngram_max,
        top_fraction=args.top_fraction,
        min_df=args.min_df,
        max_candidates=args.max_candidates,
        embedder=args.embedder,
        threshold=DEFAULT_THRESHOLD if args.threshold is None else args.threshold,
        sparsity=args.sparsity,
        max_table=args.max_table or DEFAULT_MAX_ENTRIES,
        threads=args.threads or None,
    )
    spec = TraceSpec(args.field, args.reward_field, args.min_reward)
    result = mine(args.inputs, config, spec, name=args.name or args.output.stem)
    try:
        result.grams.save(args.output)
    except OSError as err:
        raise HicraError(f"cannot write {args.output}: {err.strerror or err}") from None
    print(summary(result, args.output, args.show))
    return 0
