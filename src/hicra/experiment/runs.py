"""One arm x seed run of an experiment as the analysis sees it: its run folder's contents, its
state, and its held-out score."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hicra.experiment import SEED_PREFIX
from hicra.experiment.status import State
from hicra.report.runs import Run
from hicra.run_folder import Metric


@dataclass
class ExperimentRun:
    """One arm x seed run as the analysis sees it."""

    arm: str
    seed: int
    run: Run
    state: State
    heldout: float | None = None
    heldout_problems: int = 0

    @property
    def label(self) -> str:
        return f"{self.arm}/{SEED_PREFIX}{self.seed}"

    @property
    def last_step(self) -> int:
        """The last step with a finite accuracy (what the run can be compared over)."""
        acc = self.run.series(Metric.ACCURACY)
        steps = self.run.steps if acc is None else self.run.steps[np.isfinite(acc)]
        return int(steps[-1]) if steps.size else 0

    @property
    def logged_step(self) -> int:
        return int(self.run.steps[-1]) if self.run.steps.size else 0
