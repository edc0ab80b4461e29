"""Held-out results problem by problem: what each run scored on each held-out problem.

A held-out accuracy is a mean over problems that every seed of every arm answers, so its noise has
two sources, the seeds and the problems drawn (a set of 40 problems is one draw of many). Reading
the per-problem records lets the analysis judge a difference against both (`stats.crossed`). The
records are the evaluation's own samples: RUN/eval/samples.jsonl (`hicra experiment`'s eval of
the final model, for `heldout_accuracy`) and RUN/heldout/step-N/samples.jsonl (the in-training
evaluation, for `training_heldout_final`: the last one at or before the horizon). A problem's score
is its mean correctness over the first k samples, k being what its results.json counted, so the
mean over problems is the results file's avg@k.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path

from hicra.jsonl import read_jsonl
from hicra.run_folder import HELDOUT_DIR

SAMPLES_FILE = "samples.jsonl"
RESULTS_FILE = "results.json"
PROBLEM_LEVEL = ("heldout_accuracy", "training_heldout_final")  # metrics with per-problem records

Scores = dict[tuple[str, str], float]  # (benchmark, problem id) -> mean correctness


def read_problem_scores(folder: Path) -> Scores | None:
    """Per-problem scores of one evaluation folder (samples.jsonl beside its results.json), None
    when either is missing or unreadable, or a problem lacks one of its k samples."""
    try:
        results = json.loads((folder / RESULTS_FILE).read_text(encoding="utf-8"))
        counted = {name: int(b["samples"]) for name, b in results["benchmarks"].items()}
        expected = {name: int(b["problems"]) for name, b in results["benchmarks"].items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    if not (folder / SAMPLES_FILE).is_file():
        return None
    correct: dict[tuple[str, str], dict[int, bool]] = defaultdict(dict)
    try:
        for _, row in read_jsonl(folder / SAMPLES_FILE, on_error="skip"):
            bench, sample = str(row["benchmark"]), int(row["sample"])
            if bench in counted and sample < counted[bench]:
                correct[bench, str(row["id"])][sample] = bool(row["correct"])
    except (OSError, KeyError, TypeError, ValueError):
        return None
    scores: Scores = {}
    for key, samples in correct.items():
        if len(samples) < counted[key[0]]:
            return None
        scores[key] = sum(samples.values()) / len(samples)
    found = defaultdict(int)
    for bench, _ in scores:
        found[bench] += 1
    if any(found[name] != count for name, count in expected.items()):
        return None
    return scores


_STEP = re.compile(r"step-(\d+)")


def last_training_eval(run: Path, horizon: int) -> Path | None:
    """The run's last in-training held-out evaluation folder at or before `horizon`."""
    steps = []
    for child in (run / HELDOUT_DIR).glob("step-*"):
        match = _STEP.fullmatch(child.name)
        if match and int(match.group(1)) <= horizon and (child / RESULTS_FILE).is_file():
            steps.append((int(match.group(1)), child))
    return max(steps)[1] if steps else None


def problem_scores(run: Path, metric: str, horizon: int) -> Scores | None:
    """A run's per-problem scores behind `metric` (one of PROBLEM_LEVEL), or None."""
    if metric == "heldout_accuracy":
        return read_problem_scores(run / "eval")
    if metric == "training_heldout_final":
        folder = last_training_eval(run, horizon)
        return None if folder is None else read_problem_scores(folder)
    return None
