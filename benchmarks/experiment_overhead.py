"""What `hicra experiment` adds to a run: the same 3-step training on the tiny model, run once as
`hicra train` and once as a 1-arm x 1-seed `hicra experiment run` (which also plans, checks the
folder, and analyses), alternated over rounds. Printed: the median wall time of each and their
ratio, measured in the same run.

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

from hicra.tiny import build_tiny_model

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
        times: dict[str, list[float]] = {"train": [], "experiment": []}
        for round_index in range(options.rounds):
            run = root / f"train-{round_index}"
            times["train"].append(
                timed(["train", "--config", str(config), "--output-dir", str(run)], root)
            )
            exp = root / f"exp-{round_index}.yaml"
            exp.write_text(yaml.safe_dump({**spec, "output_dir": str(root / f"exp-{round_index}")}))
            times["experiment"].append(timed(["experiment", "run", str(exp)], root))
        train, experiment = (
            statistics.median(times["train"]),
            statistics.median(times["experiment"]),
        )
        print(f"tiny model, 3 steps, {options.rounds} rounds alternated")
        print(f"  hicra train            median {train:6.1f} s  {times['train']}")
        print(f"  hicra experiment run   median {experiment:6.1f} s  {times['experiment']}")
        print(f"  experiment / train     {experiment / train:6.3f}x  (the harness's own cost)")


if __name__ == "__main__":
    main()
