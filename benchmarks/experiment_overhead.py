"""What `hicra experiment` adds to its runs: two 3-step trainings on the tiny model (seeds 1 and 2),
run as two `hicra train` commands and as one 1-arm x 2-seed `hicra experiment run` (which also
validates every arm's config, checks and locks the folder, and analyses), alternated over rounds.
Printed: the median wall time of each, their ratio, and the harness's own seconds, measured in
the same run. The harness's cost is a constant (validation and analysis), not a cost per step.

    python benchmarks/experiment_overhead.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from hicra.testing.tiny import build_tiny_model

SETTINGS = {
    "max_steps": 3,
    "num_generations": 4,
    "per_device_train_batch_size": 8,
    "max_completion_length": 16,
    "save_steps": 3,
    "use_cpu": True,
    "verify_workers": 1,
    "logging_steps": 1,
    "credit": "hicra",
    "seed": 1,
    "data_seed": 1,
}


def timed(argv: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "hicra.cli", *argv], cwd=cwd, check=True, capture_output=True
    )
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        model = build_tiny_model(root / "model")
        data = root / "train.jsonl"
        rows = [{"question": f"What is {i} + {i}?", "answer": str(2 * i)} for i in range(64)]
        data.write_text("".join(json.dumps(r) + "\n" for r in rows))
        base = {"model": str(model), "dataset": str(data), **SETTINGS}
        config = root / "train.yaml"
        config.write_text(yaml.safe_dump(base))
        spec = {
            "base": {k: v for k, v in base.items() if k not in ("seed", "data_seed", "credit")},
            "arms": {"hicra": {"credit": "hicra"}},
            "seeds": [1],
        }
        spec["seeds"] = [1, 2]
        times: dict[str, list[float]] = {"train": [], "experiment": []}
        for round_index in range(options.rounds):
            total = 0.0
            for seed in (1, 2):
                run = root / f"train-{round_index}-{seed}"
                argv = ["train", "--config", str(config), "--output-dir", str(run)]
                total += timed([*argv, "--seed", str(seed), "--data-seed", str(seed)], root)
            times["train"].append(total)
            exp = root / f"exp-{round_index}.yaml"
            exp.write_text(yaml.safe_dump({**spec, "output_dir": str(root / f"exp-{round_index}")}))
            times["experiment"].append(timed(["experiment", "run", str(exp)], root))
        train = statistics.median(times["train"])
        experiment = statistics.median(times["experiment"])
        shown = {k: [round(x, 1) for x in v] for k, v in times.items()}
        print(f"tiny model, 2 runs of 3 steps, {options.rounds} rounds alternated")
        print(f"  2 x hicra train               median {train:6.1f} s  {shown['train']}")
        print(f"  hicra experiment run (1 x 2)  median {experiment:6.1f} s  {shown['experiment']}")
        print(f"  experiment / train            {experiment / train:6.3f}x")
        print(f"  the harness's own time        {experiment - train:6.1f} s per experiment")


if __name__ == "__main__":
    main()
