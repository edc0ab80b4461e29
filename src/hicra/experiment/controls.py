"""Whether a control arm is a valid control, read from its runs.

A control arm's runs use a control credit (`placebo`: HICRA's rule on random frequent n-grams;
`random_tokens`: random tokens at the planning ratio) and log the share of tokens they marked
(`hicra/placebo_ratio`) beside the real planning ratio. A control says something about
specificity only when it upweights as many tokens as HICRA does (within the placebo's 10%
tolerance over the whole run) and, for the placebo, when none of its grams is answer or format text
(upweighting "the answer is" is not a neutral control). A control that fails either is not valid,
and the control verdict says so instead of claiming specificity.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np

from hicra.experiment.runs import ExperimentRun
from hicra.run_folder import Metric
from hicra.train.placebo import PLACEBO_FILE, TOLERANCE

CONTROL_CREDITS = ("placebo", "random_tokens")
GRAMS_KEY = "answer_or_format"  # placebo_grams.json: drawn grams overlapping the answer or format
TOKEN_WEIGHTED = "token-weighted sum over steps"
MEAN_OF_STEPS = "mean of per-step ratios (no token counts logged)"
CUMULATIVE = "cumulative token counts over the run (hicra/placebo_run_ratio)"


@dataclass
class RunControl:
    """One control run's match to the planning ratio and its grams' check."""

    label: str
    ratio: float | None  # marked tokens / planning tokens over the run; None: not measurable
    how: str  # TOKEN_WEIGHTED or MEAN_OF_STEPS
    marked: float | None = None  # the control's token share over the run
    planning: float | None = None  # the planning ratio over the run
    bad_grams: list[str] | None = None  # answer/format grams; None: unknown or not a placebo
    grams_known: bool = True  # False: a placebo whose placebo_grams.json lacks the check
    problems: list[str] = field(default_factory=list)  # what makes it not valid

    @property
    def valid(self) -> bool:
        return not self.problems


def run_long_ratio(item: ExperimentRun) -> tuple[float, float, str] | None:
    """(control's share, planning ratio, how) over the run: the per-step ratios weighted by the
    step's tokens (completions x mean length) when both are logged, else their plain mean."""
    marked = item.run.series(Metric.PLACEBO_RATIO)
    planning = item.run.series(Metric.PLANNING_RATIO)
    if marked is None or planning is None:
        return None
    both = np.isfinite(marked) & np.isfinite(planning)
    count, length = item.run.series(Metric.COMPLETIONS), item.run.series(Metric.LENGTH)
    if count is not None and length is not None:
        weights = count * length
        weighted = both & np.isfinite(weights) & (weights > 0)
        if weighted.any() and weighted.sum() == both.sum():
            w = weights[weighted]
            return (
                float(np.sum(marked[weighted] * w) / np.sum(w)),
                float(np.sum(planning[weighted] * w) / np.sum(w)),
                TOKEN_WEIGHTED,
            )
    if not both.any():
        return None
    return float(np.mean(marked[both])), float(np.mean(planning[both])), MEAN_OF_STEPS


def check_run(item: ExperimentRun) -> RunControl:
    """A control run's match over the run and, for a placebo, its grams."""
    credit = item.run.config.get("credit")
    found = run_long_ratio(item)
    if found is None:
        check = RunControl(item.label, None, MEAN_OF_STEPS)
        check.problems.append("it logged no hicra/placebo_ratio beside the planning ratio")
    else:
        marked, planning, how = found
        check = RunControl(item.label, None, how, marked, planning)
        if planning > 0:
            check.ratio = marked / planning
        if marked == 0:
            check.problems.append("it marked no token (it ran as GRPO)")
        elif check.ratio is not None and abs(check.ratio - 1) > TOLERANCE:
            check.problems.append(
                f"it marked {check.ratio:.2f}x the planning tokens ({how}), beyond the "
                f"+-{TOLERANCE:.0%} match"
            )
    if found is not None:
        logged = item.run.series(Metric.PLACEBO_RUN_RATIO)
        finite = logged[np.isfinite(logged)] if logged is not None else np.array([])
        if finite.size and check.marked != 0:
            # the trainer's cumulative counts: exact, where the per-step shares are estimates
            check.ratio, check.how = float(finite[-1]), CUMULATIVE
            check.problems = [p for p in check.problems if "beyond the" not in p]
            if abs(check.ratio - 1) > TOLERANCE:
                check.problems.append(
                    f"it marked {check.ratio:.2f}x the planning tokens ({CUMULATIVE}), beyond "
                    f"the +-{TOLERANCE:.0%} match"
                )
    if credit == "placebo":
        path = item.run.path / PLACEBO_FILE
        try:
            saved = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            saved = {}
        grams = saved.get(GRAMS_KEY) if isinstance(saved, dict) else None
        if not isinstance(grams, list):
            check.grams_known = False
        else:
            check.bad_grams = [str(g) for g in grams]
            if check.bad_grams:
                listed = ", ".join(repr(g) for g in check.bad_grams[:3])
                check.problems.append(f"its grams include answer or format text ({listed})")
    return check


def arm_checks(runs: list[ExperimentRun], arm: str) -> list[RunControl]:
    """The checks of every run of a control arm."""
    return [check_run(item) for item in runs if item.arm == arm]


def control_arms(runs: list[ExperimentRun], arms: list[str]) -> list[str]:
    """The arms whose runs use a control credit (or that are named after one), in arm order."""
    credits = {item.arm: item.run.config.get("credit") for item in runs}
    return [arm for arm in arms if arm in CONTROL_CREDITS or credits.get(arm) in CONTROL_CREDITS]


def control_kind(runs: list[ExperimentRun], arm: str) -> str:
    """'placebo' or 'random-token' (the words a verdict uses for the arm's control)."""
    credit = next((i.run.config.get("credit") for i in runs if i.arm == arm), arm)
    return "random-token" if credit == "random_tokens" else "placebo"
