"""`hicra report`: phase-detection error on synthetic runs, and the time to report on a long run.

1. Phase detection: synthetic GRPO and HICRA curves (tests/report_fixtures.py: execution entropy
   falls linearly then stays flat; semantic entropy, accuracy and length flat then rising) over 80
   steps, change step drawn uniformly in [15, 50], at noise 1x (the test fixture's), 4x and 8x.
   Reports the absolute error of the detected step (over runs where one was found) and how often
   each confidence is given.
2. Build time: two runs of 500 steps with 16 rollouts logged per step (16,000 rollouts of about
   1,600 characters with planning spans), default options (--max-rollouts 200 per run).
3. Rollout dumps: the first of those runs as a verl rollout dump (500 STEP.jsonl files, the same
   8,000 completions, no planning spans), reported with the bundled SmolLM2 tokenizer: every
   completion tokenized and tagged. Printed as a ratio to the same run's report from its hicra run
   folder (its rollouts already tagged), measured in the same process, with tokens per second.
   Then `--model smollm2-135m` on the first --model-rollouts completions (CPU, one forward pass a
   batch of 8): its ratio to the same rollouts without --model.

    python benchmarks/report.py [--seeds 40] [--only phases|build|dumps] [--model-rollouts 8]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from hicra.report.build import build_report
from hicra.report.dumps import DumpOptions
from hicra.report.phases import detect_phases
from tests.dump_fixtures import write_jsonl, write_verl_step
from tests.report_fixtures import curves, make_run


def phase_errors(seeds: int) -> None:
    rng = np.random.default_rng(0)
    print("noise | runs | median |err| | 90th pct |err| | found | high / medium / low")
    for noise in (1.0, 4.0, 8.0):
        errors, confidence, found, total = [], Counter(), 0, 0
        for seed in range(seeds):
            for credit in ("grpo", "hicra"):
                change = int(rng.integers(15, 51))
                v = curves(80, change, credit, seed, noise)
                result = detect_phases(
                    np.arange(1, 81),
                    v["hicra/execution_entropy"],
                    v["hicra/semantic_entropy"] / v["hicra/semantic_entropy"][0],
                    v["hicra/accuracy"],
                )
                total += 1
                confidence[result.confidence] += 1
                if result.step is not None:
                    found += 1
                    errors.append(abs(result.step - change))
        e = np.array(errors)
        print(
            f"{noise:>5g} | {total:>4} | {np.median(e):>12.1f} | {np.percentile(e, 90):>14.1f} "
            f"| {found / total:>5.0%} | {confidence['high']} / {confidence['medium']} / "
            f"{confidence['low']}"
        )


def build_time() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        runs = [
            make_run(
                base / "hicra", steps=500, change=150, seed=1, rollouts_per_step=16, rollout_every=1
            ),
            make_run(
                base / "grpo",
                credit="grpo",
                steps=500,
                change=220,
                seed=2,
                rollouts_per_step=16,
                rollout_every=1,
            ),
        ]
        for run in runs:  # make completions a realistic length (about 1,500 characters)
            path = run / "rollouts.jsonl"
            lines = path.read_text().splitlines()
            rows = [json.loads(line) for line in lines]
            for row in rows:
                filler = " Then 3 * 4 = 12 and 12 + 5 = 17, which we substitute back." * 24
                row["completion"] += filler
            path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        size = sum((r / "rollouts.jsonl").stat().st_size for r in runs)
        start = time.perf_counter()
        result = build_report(runs, base / "out")
        seconds = time.perf_counter() - start
        html = result.files["html"].stat().st_size
        print(
            f"2 runs x 500 steps x 16 rollouts ({size / 1e6:.0f} MB of rollouts.jsonl): "
            f"{seconds:.1f} s, report.html {html / 1e6:.1f} MB"
        )


FILLER = " Then 3 * 4 = 12 and 12 + 5 = 17, which we substitute back." * 24


def _timed(paths: list[Path], out: Path, options: DumpOptions | None = None) -> tuple[float, float]:
    """Seconds to build the report, and the completion tokens of its (first) run."""
    start = time.perf_counter()
    report = build_report(paths, out, dump_options=options).reports[0]
    seconds = time.perf_counter() - start
    lengths = report.run.metrics["completions/mean_length"]
    counts = np.array([report.rollouts.per_step[int(s)] for s in report.run.steps])
    return seconds, float(np.nansum(lengths * counts))


def dump_time(model_rollouts: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        run = make_run(
            base / "hicra", steps=500, change=150, seed=1, rollouts_per_step=16, rollout_every=1
        )
        path = run / "rollouts.jsonl"
        rows = [json.loads(line) for line in path.read_text().splitlines()]
        rows = [r for r in rows if isinstance(r.get("step"), int)]
        for row in rows:
            row["completion"] += FILLER
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        by_step: dict[int, list[dict]] = {}
        for row in rows:
            by_step.setdefault(row["step"], []).append(row)
        dump = base / "rollout_data"
        for step, group in by_step.items():
            write_verl_step(
                dump,
                step,
                [r["prompt"] for r in group],
                [r["completion"] for r in group],
                [r["answer"] for r in group],
                [float(r["reward"]) for r in group],
                {"acc": [r["correct"] for r in group]},
            )
        tokenizer = DumpOptions(tokenizer="smollm2-135m")
        one = write_jsonl(base / "one.jsonl", rows[:1])
        _timed([one], base / "warm", tokenizer)  # the bundled tokenizer is converted once
        folder_s, _ = _timed([run], base / "from-run")
        dump_s, tokens = _timed([dump], base / "from-dump", tokenizer)
        print(
            f"verl dump, {len(rows):,} rollouts ({tokens / 1e6:.1f} M tokens): {dump_s:.1f} s vs "
            f"{folder_s:.1f} s from the run folder = {dump_s / folder_s:.1f}x; "
            f"{tokens / dump_s / 1e6:.2f} M tokens/s tokenized and tagged"
        )
        few = write_jsonl(base / "few.jsonl", rows[:model_rollouts])
        plain_s, _ = _timed([few], base / "few-plain", tokenizer)
        model = DumpOptions(model="smollm2-135m", device="cpu", batch_size=8)
        _timed([one], base / "warm-model", model)
        model_s, few_tokens = _timed([few], base / "few-model", model)
        print(
            f"--model smollm2-135m on {model_rollouts} rollouts ({few_tokens:,.0f} tokens, CPU): "
            f"{model_s:.1f} s vs {plain_s:.1f} s without = {model_s / plain_s:.0f}x; "
            f"{few_tokens / model_s:,.0f} tokens/s"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=40)
    parser.add_argument("--only", choices=("phases", "build", "dumps"))
    parser.add_argument("--model-rollouts", type=int, default=8)
    args = parser.parse_args()
    if args.only in (None, "phases"):
        phase_errors(args.seeds)
    if args.only in (None, "build"):
        build_time()
    if args.only in (None, "dumps"):
        dump_time(args.model_rollouts)


if __name__ == "__main__":
    main()
