"""`hicra report`: turn run folders into plots, detected phases and a self-contained HTML report."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hicra.errors import HicraError
from hicra.report import DEFAULT_MAX_ROLLOUTS, DEFAULT_SMOOTH

DEFAULT_TOKENIZER = "smollm2-135m"  # hicra.report.dumps.DEFAULT_TOKENIZER, without importing it


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "report",
        help="plots, phase detection and an HTML report of training runs or rollout dumps",
        description="Read the run folders written by `hicra train` (metrics.jsonl, rollouts.jsonl, "
        "config.yaml; a run still training or killed mid-write is fine), or the rollouts another "
        "trainer logged (a verl trainer.rollout_data_dir of STEP.jsonl files; a JSONL or Parquet "
        "file of {step, prompt, completion, reward}, as TRL or OpenRLHF logs reduce to: tagged "
        "here with --grams and --tokenizer), and write to --output: report.html (one "
        "self-contained file: summary, phases, plots, rollout browser with planning tokens "
        "highlighted), dynamics.png (the paper's 2x2 figure), hierarchy.png, heldout.png (when a "
        "run evaluated held-out sets, --eval-benchmarks, or logged group pass@k) and report.json "
        "(the same findings, machine-readable).",
    )
    parser.add_argument(
        "runs",
        nargs="+",
        type=Path,
        metavar="PATH",
        help="run folders or rollout dumps, or one experiment folder (hicra experiment): then "
        "each arm's mean curves with 95%% bands, the analysis and links to every run's report",
    )
    parser.add_argument(
        "--output",
        "-o",
        type=Path,
        metavar="DIR",
        help="report folder (default for one PATH: RUN_DIR/report for a run, NAME-report beside "
        "a rollout dump; required for several)",
    )
    parser.add_argument(
        "--smooth",
        type=int,
        default=DEFAULT_SMOOTH,
        metavar="N",
        help=f"centered moving average over N logged points, rounded up to odd, for the plots "
        f"and phase detection; 1 turns it off (default: {DEFAULT_SMOOTH})",
    )
    parser.add_argument(
        "--label",
        action="append",
        metavar="NAME",
        help="legend name of each run, once per PATH in order (default: from config.yaml, "
        "e.g. 'hicra α=0.2' or 'grpo', else the folder name)",
    )
    parser.add_argument(
        "--max-rollouts",
        type=int,
        default=DEFAULT_MAX_ROLLOUTS,
        metavar="N",
        help="rollouts per run in the browser, spread over the steps, correct and incorrect "
        f"mixed (default: {DEFAULT_MAX_ROLLOUTS}); gram counts always use every rollout",
    )
    dumps = parser.add_argument_group(
        "rollout dumps", "how rollouts logged by other trainers are read (ignored for hicra runs)"
    )
    dumps.add_argument(
        "--grams",
        default="paper",
        metavar="NAME|FILE",
        help="strategic grams that mark planning tokens: a preset or a grams file (default: paper)",
    )
    dumps.add_argument(
        "--tokenizer",
        metavar="MODEL",
        help="tokenizer of the run's model, for token counts and planning marks: a bundled alias, "
        f"folder or hub id (default: the bundled {DEFAULT_TOKENIZER}, works offline)",
    )
    dumps.add_argument(
        "--model",
        metavar="MODEL",
        help="compute per-token entropies with this model (a teacher-forced forward pass over "
        "the logged prompts and completions; its tokenizer is used), for the planning and "
        "execution entropy panels when the dump has none",
    )
    dumps.add_argument(
        "--batch-size",
        type=int,
        default=8,
        metavar="N",
        help="rollouts per forward pass with --model (default: 8)",
    )
    dumps.add_argument(
        "--device",
        metavar="DEVICE",
        help="device of --model: cpu, cuda, cuda:1 ... (default: cuda when available)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from hicra.experiment.report import build_experiment_report, is_experiment_folder
    from hicra.report.build import build_report
    from hicra.report.dumps import DumpOptions, default_output

    if len(args.runs) == 1 and is_experiment_folder(args.runs[0]):
        output = args.output or args.runs[0] / "report"
        results = build_experiment_report(args.runs[0], output, args.smooth)
        _experiment_heldout(args.runs[0], output, args.smooth)
        for line in results["verdicts"]:
            print(line)
        print(f"report: {output / 'report.html'}")
        return 0
    output = args.output
    if output is None:
        if len(args.runs) > 1:
            raise HicraError("give --output DIR when reporting on several runs")
        output = default_output(args.runs[0])
    options = DumpOptions(args.grams, args.tokenizer, args.model, args.batch_size, args.device)
    result = build_report(
        args.runs, output, args.smooth, args.max_rollouts, args.label, dump_options=options
    )
    for warning in result.warnings:
        print(f"hicra report: warning: {warning}", file=sys.stderr)
    for r in result.reports:
        s = r.stats
        print(
            f"{r.run.label}: {s['points']} logged steps ({s['first_step']}-{s['last_step']}); "
            f"phase two: {r.phase.describe()}"
        )
        if r.phase.notes:
            print(f"  {r.phase.notes[0]}")
    print(f"report: {result.files['html']}")
    return 0


def _experiment_heldout(folder: Path, output: Path, smooth_window: int) -> None:
    """heldout.png beside the experiment report, when its runs evaluated held-out sets."""
    from hicra.experiment.analysis import load_experiment
    from hicra.experiment.heldout_figure import experiment_heldout_png
    from hicra.report.build import odd_window

    loaded = load_experiment(folder)
    arms = {arm: [r.run for r in loaded.runs if r.arm == arm] for arm in loaded.arms}
    png = experiment_heldout_png(arms, odd_window(smooth_window))
    if png is not None:
        (output / "heldout.png").write_bytes(png)
        print(f"held-out curves: {output / 'heldout.png'}")
