"""`hicra experiment`: run arm x seed comparisons of credit assignment, and analyse them."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from hicra.commands import positive_int
from hicra.errors import HicraError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "experiment",
        help="controlled multi-seed comparisons (arms x seeds), with CIs and verdicts",
        description="Run every arm x seed of an experiment file as a hicra run folder "
        "(DIR/ARM/seed-S/), evaluate the final models if the file asks for it, and analyse: "
        "per-arm means with t-intervals, paired contrasts (every arm vs the baseline, and hicra "
        "vs placebo) with paired t-tests, a primary metric judged at alpha and the others "
        "Holm-adjusted as secondary, and one plain verdict per comparison (results.json, "
        "results.md).",
    )
    commands = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    run = commands.add_parser("run", help="run (or continue) an experiment, then analyse it")
    run.add_argument("file", type=Path, metavar="EXP.yaml", help="the experiment file")
    run.add_argument("--output-dir", help="experiment folder (default: the file's output_dir)")
    run.add_argument(
        "--parallel",
        type=positive_int,
        default=1,
        metavar="N",
        help="training processes at once; CPU threads are split between them (default 1)",
    )
    run.add_argument(
        "--gpus",
        metavar="0,1,...",
        help="GPU ids to assign runs to, round-robin (sets CUDA_VISIBLE_DEVICES per run)",
    )
    analyze = commands.add_parser("analyze", help="(re)compute results from the run folders")
    analyze.add_argument("folder", type=Path, metavar="DIR", help="an experiment folder")
    analyze.add_argument("--baseline", help="the arm to compare against (default: the file's)")
    analyze.add_argument(
        "--finished-only",
        action="store_true",
        help="leave out runs that have not finished (by default they count up to the steps "
        "every run has reached)",
    )
    parser.set_defaults(func=run_command)


def run_command(args: argparse.Namespace) -> int:
    if args.action == "analyze":
        return _analyze(args.folder, args.baseline, args.finished_only)
    return _run(args)


def _analyze(folder: Path, baseline: str | None, finished_only: bool) -> int:
    from hicra.experiment import MARKDOWN_FILE, RESULTS_FILE
    from hicra.experiment.analysis import analyze, load_experiment
    from hicra.experiment.markdown import markdown

    loaded = load_experiment(folder, baseline, finished_only)
    results = analyze(loaded)
    try:
        (folder / RESULTS_FILE).write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
        (folder / MARKDOWN_FILE).write_text(markdown(results), encoding="utf-8")
    except OSError as err:
        raise HicraError(f"cannot write the results into {folder}: {err.strerror}") from None
    print(
        f"hicra experiment: {len(loaded.runs)} runs, steps 1-{results['horizon']}, primary metric "
        f"{results['primary_metric']}"
    )
    for line in results["verdicts"]:
        print(f"  {line}")
    for line in results["missing"]:
        print(f"  missing: {line}", file=sys.stderr)
    for line in results["notes"]:
        print(f"  note: {line}", file=sys.stderr)
    print(f"wrote {folder / RESULTS_FILE} and {folder / MARKDOWN_FILE}")
    return 0


def _run(args: argparse.Namespace) -> int:
    from hicra.extras import require_extra

    require_extra("train", "hicra experiment run")
    from hicra.experiment.execute import eval_plan, execute, training_plan
    from hicra.experiment.heldout import build_heldout
    from hicra.experiment.spec import check_folder, load_spec, save_spec, saved_eval_fingerprint
    from hicra.folder_lock import FolderLock
    from hicra.output_folder import make_output_folder, refuse_file

    if not args.file.is_file():
        raise HicraError(f"experiment file not found: {args.file}")
    gpus = [g.strip() for g in args.gpus.split(",") if g.strip()] if args.gpus else None
    spec = load_spec(args.file, args.output_dir)
    folder = Path(spec.output_dir)
    refuse_file(folder, "experiment folder")
    check_folder(spec, folder)
    previous_eval = saved_eval_fingerprint(folder)
    make_output_folder(folder, "experiment folder")
    with FolderLock(folder, "experiment folder"):
        save_spec(spec, folder)
        if spec.eval.get("heldout"):
            heldout = build_heldout(spec, folder)
            print(f"hicra experiment: held-out set {heldout}")
        plan = training_plan(spec, folder)
        for line in plan.skipped:
            print(f"hicra experiment: skip {line}")
        print(
            f"hicra experiment: {len(plan.jobs)} of {len(plan.statuses)} runs to train, "
            f"{args.parallel} at a time ({os.cpu_count()} CPUs"
            + (f", GPUs {','.join(gpus)})" if gpus else ")")
        )
        trained = execute(plan.jobs, args.parallel, gpus)
        evaluated = execute(eval_plan(spec, folder, previous_eval), args.parallel, gpus)
        failed = [job for job in trained + evaluated if job.returncode != 0]
        _analyze(folder, None, finished_only=False)
    for job in failed:
        print(f"hicra experiment: FAILED {job.label}: see {job.log}", file=sys.stderr)
    return 1 if failed else 0
