"""`hicra mine`: build a strategic-gram set from successful reasoning traces; evaluate gram sets."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from hicra.commands import positive_int
from hicra.errors import HicraError
from hicra.mining.names import (
    CONTRASTIVE,
    EPISODE_EXECUTION_LABELS,
    EPISODE_PLANNING_LABELS,
    EXECUTION_LABELS,
    PAPER,
    PLANNING_LABELS,
)

if TYPE_CHECKING:
    from hicra.grams import StrategicGrams
    from hicra.mining import MiningResult, SelectionRules


def _labels(text: str) -> tuple[str, ...]:
    return tuple(x.strip() for x in text.split(",") if x.strip())


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "mine",
        help="build a strategic-gram set from successful reasoning traces, or evaluate gram sets",
        description="Mine strategic grams from the successful traces of JSONL or Parquet files (a "
        "run's rollouts.jsonl, trace files, a dataset's solution field). Default: contrastive "
        "selection, the word n-grams that solvers say more than the problems do, away from math, "
        "across topics, ranked by document frequency. --selection paper: the paper's pipeline "
        "(n-grams, document-frequency prefilter, clustering by meaning, the top fraction of "
        "clusters by cluster document frequency). --evaluate: how often gram sets fire on "
        "sentences labeled planning vs execution.",
    )
    _selection_flags(parser)
    _contrastive_flags(parser.add_argument_group("contrastive selection"))
    _paper_flags(parser.add_argument_group("the paper's pipeline (--selection paper)"))
    _reading_flags(parser.add_argument_group("reading traces"))
    parser.add_argument("--name", default=None, help="name of the set (default: output stem)")
    parser.add_argument("--show", type=int, default=10, help="top grams or clusters to print")
    _evaluate_flags(parser.add_argument_group("evaluating gram sets"))
    parser.set_defaults(func=run)


def _selection_flags(parser: argparse.ArgumentParser) -> None:
    """Inputs, output and what both selections share: n-gram lengths, the document-frequency floor."""
    parser.add_argument(
        "inputs", nargs="*", type=Path, metavar="INPUT", help="JSONL or Parquet traces"
    )
    parser.add_argument("--output", "-o", type=Path, help="grams JSON to write (when mining)")
    parser.add_argument(
        "--selection",
        choices=(CONTRASTIVE, PAPER),
        default=None,
        help="contrastive (default) or paper (implied by --embedder, --threshold, --top-fraction, "
        "--max-candidates, --sparsity)",
    )
    parser.add_argument(
        "--ngram-min", type=positive_int, default=None, help="default 1 (contrastive), 3 (paper)"
    )
    parser.add_argument("--ngram-max", type=positive_int, default=5, help="default 5")
    parser.add_argument(
        "--min-df",
        type=positive_int,
        default=None,
        help="n-grams must occur in at least N traces (default: 1%% of the traces used for "
        "contrastive, 0.2%% for paper; at least 2)",
    )


def _contrastive_flags(group: argparse._ActionsContainer) -> None:
    """The contrastive selection's contrast sources, fields and rules."""
    group.add_argument(
        "--contrast",
        action="append",
        default=None,
        metavar="SOURCE",
        help="what solvers are contrasted with, each source on its own: 'problems' (the traces' "
        "own problem statements), 'solutions' (reference solutions bundled with hicra) or a file "
        "(JSONL/Parquet text field, or .txt lines); repeat to combine (default: problems and "
        "solutions)",
    )
    group.add_argument(
        "--problem-field",
        default=None,
        help="field of the traces with the problem (default: problem, question, prompt, query, "
        "instruction)",
    )
    group.add_argument(
        "--contrast-field", default=None, help="text field of --contrast files (default: detected)"
    )
    group.add_argument(
        "--group-field",
        default=None,
        help="field whose values are topics, for topic evenness (default: subject, type, "
        "dataset, else the problem; none: no evenness test)",
    )
    group.add_argument(
        "--max-grams", type=positive_int, default=None, help="grams kept (default 110)"
    )
    group.add_argument(
        "--min-evenness",
        type=float,
        default=None,
        help="normalized entropy of a gram's per-group rates (default 0.5)",
    )
    group.add_argument(
        "--max-math-log-odds",
        type=float,
        default=None,
        help="how much more a gram may occur in sentences with math (log-odds, default 0.5)",
    )


def _paper_flags(paper: argparse._ActionsContainer) -> None:
    """The paper's pipeline: clusters kept, embedder, threshold, candidates, threads."""
    paper.add_argument(
        "--top-fraction",
        type=float,
        default=None,
        help="share of clusters kept, best first (default 0.2, as the paper)",
    )
    paper.add_argument(
        "--embedder",
        default=None,
        help="minilm (offline all-MiniLM-L6-v2, default), none (merge only n-grams that differ "
        "in punctuation), or a sentence-transformers folder",
    )
    paper.add_argument(
        "--threshold",
        type=float,
        default=None,
        help="cosine similarity for joining a cluster's leader (default 0.75)",
    )
    paper.add_argument(
        "--max-candidates",
        type=positive_int,
        default=None,
        help="embed at most this many most frequent candidates (default 2000)",
    )
    paper.add_argument(
        "--sparsity",
        action="store_true",
        help="rank clusters by df / mean count per trace: favour phrases used once per trace",
    )
    paper.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads for embedding (default 1: robust on a busy shared CPU; 0: torch's "
        "default, all cores)",
    )


def _reading_flags(inputs: argparse._ActionsContainer) -> None:
    """Which field of a trace is read, and which traces count as successful."""
    inputs.add_argument(
        "--field",
        default=None,
        help="text field (default: first of completion, response, output, text, solution, answer)",
    )
    inputs.add_argument(
        "--reward-field",
        default=None,
        help="outcome field, or none to use every trace (default: correct, else reward, if present)",
    )
    inputs.add_argument(
        "--min-reward",
        type=float,
        default=1.0,
        help="a numeric outcome counts as success at or above this (default 1.0)",
    )
    inputs.add_argument(
        "--max-table",
        type=positive_int,
        default=None,
        help="distinct n-grams held in memory while counting (default 2,000,000)",
    )


def _evaluate_flags(evaluate: argparse._ActionsContainer) -> None:
    """`--evaluate`: the annotations, the sets judged, their reference and labels."""
    evaluate.add_argument(
        "--evaluate",
        type=Path,
        default=None,
        metavar="ANNOTATIONS",
        help="JSONL of traces with sentence units labeled by function, or a folder of JSON files "
        "labelled with Schoenfeld's episodes (Schoenfeld_Reasoning/responses_labeled); prints, per "
        "gram set, the share of planning and of execution units containing a gram, and their gap",
    )
    evaluate.add_argument(
        "--grams",
        nargs="+",
        default=[],
        metavar="SET",
        help="gram sets to evaluate besides the one mined: presets (paper) or files",
    )
    evaluate.add_argument(
        "--reference",
        default="paper",
        help="set that precision and recall are measured against (default: paper)",
    )
    evaluate.add_argument(
        "--planning-labels",
        type=_labels,
        default=None,
        help=f"comma-separated (default: {','.join(PLANNING_LABELS)}; for a folder of "
        f"episodes: {','.join(EPISODE_PLANNING_LABELS)})",
    )
    evaluate.add_argument(
        "--execution-labels",
        type=_labels,
        default=None,
        help=f"comma-separated (default: {','.join(EXECUTION_LABELS)}; for a folder of "
        f"episodes: {','.join(EPISODE_EXECUTION_LABELS)})",
    )


def summary(result: MiningResult, output: Path, show: int) -> str:
    """The console report: corpus, selection, kept grams, and the top grams or clusters."""
    corpus = result.corpus
    lines = [
        f"traces: {corpus.read:,} read, {corpus.used:,} used, {corpus.skipped:,} skipped",
        *(f"  {f.summary()}" for f in corpus.files),
    ]
    if result.selection == CONTRASTIVE:
        lines += _contrastive_lines(result, output, show)
    else:
        lines += _paper_lines(result, output, show)
    timing = ", ".join(f"{k} {v:.1f}s" for k, v in result.timings.items())
    lines.append(f"time: {timing}")
    return "\n".join(lines)


def _contrastive_lines(result: MiningResult, output: Path, show: int) -> list[str]:
    from hicra.mining.contrastive.scoring import KEPT

    prov = result.grams.provenance
    contrast = result.contrast
    assert contrast is not None
    texts = ", ".join(f"{source} {n:,}" for source, n in contrast.texts.items())
    groups = prov["groups"]
    reasons = prov["reasons"]
    rejected = ", ".join(f"{n:,} {r}" for r, n in reasons.items() if r != KEPT and n)
    lines = [
        f"contrast: {texts} distinct texts ({contrast.duplicates:,} repeats skipped); "
        f"{contrast.ngrams:,} n-grams, {contrast.shared:,} of them pool n-grams",
        f"groups: {groups['groups']:,} ({groups['traces_in_a_group']:,} traces have one); "
        f"evenness {groups['evenness']}",
        f"pool: {result.candidates:,} n-grams in >= {result.min_df} traces; kept "
        f"{len(result.grams):,} grams, written to {output}",
        f"not kept: {rejected}",
    ]
    looping = prov.get("looping_traces", {})
    if looping.get("traces"):
        named = ", ".join(looping["first"][:3]) + (", ..." if looping["traces"] > 3 else "")
        lines.append(
            f"looping traces: {looping['traces']:,} ({named}); "
            f"{looping['repeated_sentences_not_counted']:,} repeated sentences not counted"
        )
    if show > 0:
        lines.append(
            "top grams (traces with it; lowest log-odds vs a contrast source, z, that source; "
            "log-odds in math sentences):"
        )
        for rank, c in enumerate(result.kept_choices[:show]):
            s = c.scores
            share = 100 * c.df / result.corpus.used
            lines.append(
                f"  #{rank + 1:<3} {c.gram!r:<28} {c.df:>7,} ({share:4.1f}%)  "
                f"{s['contrast_log_odds']:+.2f} z {s['contrast_z']:+.1f} {s['contrast_source']:<9}  "
                f"{s['math_log_odds']:+.2f}"
            )
    return lines


def _paper_lines(result: MiningResult, output: Path, show: int) -> list[str]:
    corpus = result.corpus
    lines = [
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
    return lines


def _rules(args: argparse.Namespace) -> SelectionRules | None:
    """The contrastive rules the flags change, or None when they change none."""
    from hicra.mining import SelectionRules

    changed = {
        name: value
        for name, value in (
            ("max_grams", args.max_grams),
            ("min_evenness", args.min_evenness),
            ("max_math_log_odds", args.max_math_log_odds),
        )
        if value is not None
    }
    return SelectionRules(**changed) if changed else None


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


def _mine(args: argparse.Namespace) -> tuple[str, StrategicGrams]:
    from hicra.mining import MiningConfig, TraceSpec, mine
    from hicra.mining.counting import DEFAULT_MAX_ENTRIES

    if args.output is None:
        raise HicraError("--output is needed to mine (or give only --evaluate and --grams)")
    if args.output.exists() and args.output.is_dir():
        raise HicraError(f"--output {args.output} is a folder; give a file name")
    refuse_overwriting_inputs(args.output, args.inputs)
    config = MiningConfig(
        selection=args.selection,
        ngram_min=args.ngram_min,
        ngram_max=args.ngram_max,
        min_df=args.min_df,
        top_fraction=args.top_fraction,
        max_candidates=args.max_candidates,
        embedder=args.embedder,
        threshold=args.threshold,
        sparsity=args.sparsity,
        contrast=tuple(args.contrast) if args.contrast else None,
        contrast_field=args.contrast_field,
        rules=_rules(args),
        max_table=args.max_table or DEFAULT_MAX_ENTRIES,
        threads=args.threads or None,
    )
    spec = TraceSpec(
        args.field,
        args.reward_field,
        args.min_reward,
        problem_field=args.problem_field,
        group_field=args.group_field,
    )
    result = mine(args.inputs, config, spec, name=args.name or args.output.stem)
    try:
        result.grams.save(args.output)
    except OSError as err:
        raise HicraError(f"cannot write {args.output}: {err.strerror or err}") from None
    print(summary(result, args.output, args.show))
    return str(args.output), result.grams


def _evaluate(args: argparse.Namespace, mined: tuple[str, StrategicGrams] | None) -> None:
    from hicra.grams import StrategicGrams
    from hicra.mining.evaluation.labels import evaluate_sets, format_evaluations, read_annotations

    annotations = read_annotations(args.evaluate, args.planning_labels, args.execution_labels)
    reference = StrategicGrams.resolve(args.reference)
    sets = [(args.reference, reference)]
    sets += [(spec, StrategicGrams.resolve(spec)) for spec in args.grams if spec != args.reference]
    if mined is not None:
        sets.append(mined)
    evaluations = evaluate_sets(sets, annotations, reference)
    print(format_evaluations(evaluations, annotations, args.reference))


def run(args: argparse.Namespace) -> int:
    if not args.inputs and args.evaluate is None:
        raise HicraError("give INPUT files to mine, or --evaluate ANNOTATIONS (with --grams)")
    mined = _mine(args) if args.inputs else None
    if args.evaluate is not None:
        if mined is not None:
            print()
        _evaluate(args, mined)
    return 0
