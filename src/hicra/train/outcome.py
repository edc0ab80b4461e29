"""What every run logs whatever `hierarchy_metrics` says, and the warning for a run that marks no
planning token.

`hierarchy_metrics: false` turns off the lens (entropies, semantic entropy, forks), not what an
experiment compares arms on: `hicra/accuracy` (its primary metric), the completions behind it, the
checker's time-outs and errors, and `hicra/planning_ratio` (the controls are matched against it)
are logged in every run. A credit that acts on planning tokens (hicra, the controls) acts as GRPO on
a batch without any: `PlanningWatch` says so on stderr, at the first such batch and again after 10
and 100 of them, so that an experiment whose runs never mark one is not read as a comparison.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import torch

from hicra.run_folder import Metric

# credits whose advantages depend on the planning mask (the controls are matched to it)
USES_PLANNING = frozenset({"hicra", "hicra_entropy_length", "placebo", "random_tokens"})

Reduce = Callable[[list[float], str], list[float]]


def outcome_metrics(
    accuracy: Any, planning: torch.Tensor, real: torch.Tensor, reduce: Reduce
) -> dict[str, float]:
    """Accuracy (exactly correct answers), completions scored, time-outs, scorer errors and the
    planning ratio of one generation batch, summed over processes by `reduce`."""
    scores = accuracy.last_scores if accuracy is not None else []
    counts = accuracy.pop_counts() if accuracy is not None else {}
    n_plan, n_real, correct, scored, timeouts, errors = reduce(
        [
            float((planning & real).sum()),
            float(real.sum()),
            float(sum(score >= 1.0 for score in scores)),
            float(len(scores)),
            float(counts.get("verify_timeouts", 0)),
            float(counts.get("scorer_errors", 0)),
        ],
        "generation",
    )
    out = {Metric.PLANNING_RATIO: n_plan / n_real if n_real else float("nan")}
    if accuracy is not None:
        out[Metric.ACCURACY] = correct / scored if scored else float("nan")
        out[Metric.COMPLETIONS] = scored
        out[Metric.VERIFY_TIMEOUTS] = timeouts
        out[Metric.SCORER_ERRORS] = errors
    return out


class PlanningWatch:
    """Warns, on the main process, when training batches mark no planning token."""

    MILESTONES = (1, 10, 100)

    def __init__(self, credit: str, grams: str, is_main: bool) -> None:
        self.credit, self.grams, self.is_main = credit, grams, is_main
        self.batches = 0
        self.empty = 0

    def see(self, step: int, planning: torch.Tensor, real: torch.Tensor, reduce: Reduce) -> None:
        """Count one training batch (every process calls this: the count is summed)."""
        (marked,) = reduce([float((planning & real).sum())], "planning_watch")
        self.batches += 1
        if marked:
            return
        self.empty += 1
        if self.credit in USES_PLANNING and self.empty in self.MILESTONES and self.is_main:
            print(
                f"hicra train: WARNING: step {step}: no completion of this batch holds a "
                f"strategic gram ({self.grams}): credit {self.credit!r} acted as GRPO on it "
                f"({self.empty} of {self.batches} batches so far without a planning token; an "
                "experiment whose runs mark none compares nothing)",
                file=sys.stderr,
            )
