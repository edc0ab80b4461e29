"""`hicra report`: phase-detection error on synthetic runs, and the time to report on a long run.

1. Phase detection: synthetic GRPO and HICRA curves (tests/report_fixtures.py: execution entropy
   falls linearly then stays flat; semantic entropy, accuracy and length flat then rising) over 80
   steps, change step drawn uniformly in [15, 50], at noise 1x (the test fixture's), 4x and 8x.
   Reports the absolute error of the detected step (over runs where one was found) and how often
   each confidence is given.
2. Build time: two runs of 500 steps with 16 rollouts logged per step (16,000 rollouts of about
   1,600 characters with planning spans), default options (--max-rollouts 200 per run).

    python benchmarks/report.py [--seeds 40]
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
from hicra.report.phases import detect_phases
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=40)
    args = parser.parse_args()
    phase_errors(args.seeds)
    build_time()


if __name__ == "__main__":
    main()
