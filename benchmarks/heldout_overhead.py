"""What held-out evaluation while training costs, as a share of training time.

The same `hicra train` run twice, alternately over rounds (so a noisy machine slows both alike):
without held-out evaluation (the baseline) and with `--eval-benchmarks FILE --eval-limit N
--eval-steps E` at the default evaluation settings (one greedy completion per problem, as long as
the training completions). Printed: each run's median training time (transformers'
`train_runtime`), their ratio, and the evaluations' own seconds (`eval/seconds`) as a share of the
evaluated run's training time.

    python benchmarks/heldout_overhead.py [--model tiny|smollm2-135m] [--rounds 2]

The tiny model (default) takes seconds; `--model smollm2-135m` times the built-in default run
(its data and prompt) with a 20-problem held-out set, which takes minutes on a CPU.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from hicra.cli import main as hicra


def held_out_file(path: Path, count: int) -> Path:
    """Two-term sums like the training task's, with two-digit numbers (not in the training set)."""
    rows = [
        {
            "question": "State the final answer to the following arithmetic problem: "
            f"{10 + 3 * i} + {20 + 7 * i} =",
            "answer": str(30 + 10 * i),
        }
        for i in range(count)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def train_args(options: argparse.Namespace, root: Path) -> list[str]:
    if options.model == "tiny":
        from hicra.testing.tiny import build_tiny_model

        model = build_tiny_model(root / "model")
        data = root / "train.jsonl"
        rows = [{"question": f"What is {i} + {i}?", "answer": str(2 * i)} for i in range(64)]
        data.write_text("".join(json.dumps(r) + "\n" for r in rows))
        return [
            "--model",
            str(model),
            "--dataset",
            str(data),
            "--num-generations",
            "4",
            "--per-device-train-batch-size",
            "8",
            "--max-completion-length",
            "32",
            "--use-cpu",
            "--verify-workers",
            "1",
            "--max-steps",
            str(options.steps),
        ]
    return ["--max-steps", str(options.steps)]  # the built-in default run


def timed_run(args: list[str], folder: Path) -> tuple[float, float, float]:
    """(train_runtime, summed eval/seconds, wall seconds) of one `hicra train`."""
    start = time.perf_counter()
    status = hicra(["train", *args, "--output-dir", str(folder), "--save-strategy", "no"])
    wall = time.perf_counter() - start
    if status:
        raise SystemExit(f"hicra train failed ({status})")
    summary = json.loads((folder / "summary.json").read_text())
    rows = [json.loads(x) for x in (folder / "metrics.jsonl").read_text().splitlines()]
    eval_seconds = sum(r.get("eval/seconds") or 0.0 for r in rows)
    return float(summary["train_runtime"]), eval_seconds, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=["tiny", "smollm2-135m"], default="tiny")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--eval-steps", type=int, default=4)
    parser.add_argument("--eval-limit", type=int, default=20)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        base = train_args(options, root)
        heldout = held_out_file(root / "heldout.jsonl", options.eval_limit)
        with_eval = [
            *base,
            "--eval-benchmarks",
            str(heldout),
            "--eval-limit",
            str(options.eval_limit),
            "--eval-steps",
            str(options.eval_steps),
        ]
        plain, evaluated, shares = [], [], []
        for round_ in range(options.rounds):
            plain.append(timed_run(base, root / f"plain-{round_}")[0])
            runtime, eval_seconds, _ = timed_run(with_eval, root / f"eval-{round_}")
            evaluated.append(runtime)
            shares.append(eval_seconds / runtime)
    evaluations = len(range(options.eval_steps, options.steps + 1, options.eval_steps))
    evaluations += options.steps % options.eval_steps != 0  # and one at the end
    without, with_ = statistics.median(plain), statistics.median(evaluated)
    print(
        f"model {options.model}: {options.steps} steps, {evaluations} held-out evaluations of "
        f"{options.eval_limit} problems (greedy), {options.rounds} rounds"
    )
    print(f"training time without held-out evaluation: {without:.1f} s (median)")
    print(f"training time with held-out evaluation:    {with_:.1f} s (median)")
    print(f"ratio with / without: {with_ / without:.2f}")
    print(
        f"evaluation's own time: {100 * statistics.median(shares):.1f}% of the evaluated run's "
        "training time (median)"
    )


if __name__ == "__main__":
    main()
