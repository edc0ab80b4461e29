"""An experiment's held-out curves: each arm's mean over seeds with a 95% band, per step.

Held-out accuracy is measured only at the evaluated steps, so it is not smoothed: at each step
where at least one seed of the arm was evaluated, the mean over those seeds and its t-interval
(`experiment.report.mean_band`: the method of the other curves and of the tables), cut to [0, 1].
The training batches' group pass@k (logged every step) is smoothed per run first, as the
experiment report's other curves.
Written next to the experiment report as heldout.png, only when some run has held-out scores.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from hicra.experiment.report import mean_band
from hicra.report import curves
from hicra.report.phases import smooth
from hicra.report.plots import COLORS
from hicra.report.runs import Run


def points(series: Sequence[tuple[np.ndarray, np.ndarray]]) -> list[dict[int, float]]:
    """(steps, values) pairs as step -> value curves for `mean_band`, leaving out runs with no
    finite value (they are not seeds of this curve)."""
    return [
        dict(zip(s.tolist(), v.tolist(), strict=True)) for s, v in series if np.isfinite(v).any()
    ]


def heldout_series(run: Run) -> tuple[np.ndarray, np.ndarray] | None:
    """(steps, values) of a run's held-out accuracy (`eval/accuracy`) at its evaluated steps."""
    curve = curves.eval_accuracy(run)
    if curve is None:
        return None
    keep = np.isfinite(curve.values)
    return curve.steps[keep], curve.values[keep]


def widest_group_pass(run: Run, window: int) -> tuple[int, np.ndarray, np.ndarray] | None:
    """(k, steps, smoothed values) of the run's group pass@k for its largest k."""
    by_k = curves.group_pass_at_k(run)
    if not by_k:
        return None
    k = max(by_k)
    values = by_k[k].values
    keep = np.isfinite(values)
    return k, run.steps[keep], smooth(values[keep], window)


def experiment_heldout_png(arms: dict[str, list[Run]], window: int) -> bytes | None:
    """Held-out accuracy and the widest group pass@k, each arm's mean with its band; None when no
    run has either."""
    held = {arm: [s for r in runs if (s := heldout_series(r))] for arm, runs in arms.items()}
    group = {
        arm: [g for r in runs if (g := widest_group_pass(r, window))] for arm, runs in arms.items()
    }
    if not any(held.values()) and not any(group.values()):
        return None
    figure = Figure(figsize=(11, 4.2), dpi=110, layout="constrained")
    left, right = figure.subplots(1, 2)
    for index, arm in enumerate(arms):
        color = COLORS[index % len(COLORS)]
        band = mean_band(points(held[arm]))
        if band is not None:
            left.plot(
                band.steps, band.mean, "o-", color=color, ms=3, label=f"{arm} (n={band.seeds})"
            )
            low, high = np.clip(band.low, 0, 1), np.clip(band.high, 0, 1)
            left.fill_between(band.steps, low, high, color=color, alpha=0.2, linewidth=0)
        ks = {k for k, _, _ in group[arm]}
        band = mean_band(points([(s, v) for _, s, v in group[arm]]))
        if band is not None:
            label = f"{arm}: pass@{'/'.join(map(str, sorted(ks)))} (n={band.seeds})"
            right.plot(band.steps, band.mean, color=color, label=label)
            low, high = np.clip(band.low, 0, 1), np.clip(band.high, 0, 1)
            right.fill_between(band.steps, low, high, color=color, alpha=0.2, linewidth=0)
    for ax, title in (
        (left, "held-out accuracy (in training)"),
        (right, "group pass@k of training batches (largest k)"),
    ):
        ax.set_title(title, fontsize=11)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=8)
        else:
            ax.text(0.5, 0.5, "not logged", ha="center", va="center", transform=ax.transAxes)
    figure.suptitle("Mean over seeds, 95% band (t-interval over seeds)", fontsize=12)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
