"""Training-dynamics plots as PNG bytes: the paper's 2x2 grid and the hierarchy panels.

Each run gets one colour; its raw curve is drawn faint and its smoothed curve solid, so smoothing
never hides how noisy the data is. The detected start of phase two is a dashed vertical line in
the run's colour on every panel where the run has data (dotted when its confidence is low). Uses
matplotlib's object API (no pyplot): no global state, no display needed.
"""

from __future__ import annotations

import io
import textwrap
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter

from hicra.report import curves
from hicra.report.curves import Curve
from hicra.report.phases import PhaseResult, smooth
from hicra.report.runs import Run

COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf")


@dataclass(frozen=True)
class Trace:
    """One line of a panel: a curve, its line style and what that style means in the legend."""

    curve: Curve
    style: str = "-"
    meaning: str = ""
    markers: bool = False


@dataclass(frozen=True)
class Panel:
    title: str
    ylabel: str
    traces: Callable[[Run], list[Trace]]
    keys: tuple[str, ...] = ()  # the metrics drawn: an empty panel says why a run lacks them
    yscale: str = "linear"


def _one(getter: Callable[[Run], Curve | None]) -> Callable[[Run], list[Trace]]:
    return lambda run: [Trace(c)] if (c := getter(run)) is not None else []


def _metric(key: str) -> Callable[[Run], list[Trace]]:
    return _one(lambda run: curves.metric(run, key))


def _accuracy(run: Run) -> list[Trace]:
    traces = [Trace(c)] if (c := curves.accuracy(run)) is not None else []
    if (e := curves.eval_accuracy(run)) is not None:
        traces.append(Trace(e, ":", "held-out (dotted)", markers=True))
    return traces


def _fork(run: Run) -> list[Trace]:
    out = []
    if (c := curves.metric(run, curves.FORK_PLANNING_HIGH)) is not None:
        out.append(Trace(c, "-", "planning tokens that are high-entropy (solid)"))
    if (c := curves.metric(run, curves.FORK_HIGH_PLANNING)) is not None:
        out.append(Trace(c, "--", "high-entropy tokens that are planning (dashed)"))
    return out


def _semantic(run: Run) -> list[Trace]:
    """Miller-Madow corrected semantic entropy (solid) beside the plug-in estimate (dashed)."""
    out = []
    if (c := curves.metric(run, curves.SEMANTIC_ENTROPY_MM)) is not None:
        out.append(Trace(c, "-", "Miller-Madow (solid)"))
    if (c := curves.metric(run, curves.SEMANTIC_ENTROPY)) is not None:
        out.append(Trace(c, "--", "plug-in (dashed)"))
    return out


def _grams(run: Run) -> list[Trace]:
    """Gram occurrences N (solid) and distinct grams K (dashed): what the entropies rest on."""
    out = []
    if (c := curves.metric(run, curves.GRAM_OCCURRENCES)) is not None:
        out.append(Trace(c, "-", "occurrences N (solid)"))
    if (c := curves.metric(run, curves.DISTINCT_GRAMS)) is not None:
        out.append(Trace(c, "--", "distinct grams K (dashed)"))
    return out


DYNAMICS = (
    Panel(
        "Execution-token entropy",
        "entropy (nats)",
        _metric(curves.EXECUTION_ENTROPY),
        (curves.EXECUTION_ENTROPY,),
    ),
    Panel(
        "Semantic entropy (relative to first value)",
        "ratio",
        _one(curves.semantic_entropy_ratio),
        (curves.SEMANTIC_ENTROPY,),
    ),
    Panel("Accuracy", "accuracy", _accuracy, (curves.ACCURACY, curves.REWARD)),
    Panel("Mean response length", "tokens", _metric(curves.LENGTH), (curves.LENGTH,)),
)
STYLES = ("-", "--", ":", "-.")


def _heldout_accuracy(run: Run) -> list[Trace]:
    """Held-out accuracy of each benchmark (line style by benchmark), at the evaluated steps."""
    traces = []
    for i, (bench, stats) in enumerate(curves.heldout(run).items()):
        if "accuracy" in stats:
            style = STYLES[i % len(STYLES)]
            traces.append(Trace(stats["accuracy"], style, f"{bench} ({style})", markers=True))
    return traces


def _k_traces(by_k: dict[int, Curve], markers: bool) -> list[Trace]:
    ks = list(by_k)
    return [
        Trace(by_k[k], STYLES[i % len(STYLES)], f"pass@{k} ({STYLES[i % len(STYLES)]})", markers)
        for i, k in enumerate(ks)
    ]


HELDOUT = (
    Panel("Held-out accuracy (in training)", "accuracy", _heldout_accuracy),
    Panel(
        "Held-out pass@k (mean over benchmarks)",
        "pass@k",
        lambda run: _k_traces(curves.heldout_pass_at_k(run), markers=True),
    ),
    Panel(
        "Group pass@k of training batches",
        "pass@k",
        lambda run: _k_traces(curves.group_pass_at_k(run), markers=False),
    ),
)

HIERARCHY = (
    Panel(
        "Planning-token entropy",
        "entropy (nats)",
        _metric(curves.PLANNING_ENTROPY),
        (curves.PLANNING_ENTROPY,),
    ),
    Panel(
        "Planning-token ratio",
        "share of tokens",
        _metric(curves.PLANNING_RATIO),
        (curves.PLANNING_RATIO,),
    ),
    Panel("Reward", "mean reward", _metric(curves.REWARD), (curves.REWARD,)),
    Panel(
        "Fork-token overlap (top 30% entropy)",
        "share",
        _fork,
        (curves.FORK_PLANNING_HIGH, curves.FORK_HIGH_PLANNING),
    ),
    Panel(
        "Semantic entropy",
        "entropy (nats)",
        _semantic,
        (curves.SEMANTIC_ENTROPY_MM, curves.SEMANTIC_ENTROPY),
    ),
    Panel(
        "Strategic grams per step",
        "count",
        _grams,
        (curves.GRAM_OCCURRENCES, curves.DISTINCT_GRAMS),
        yscale="log",
    ),
)


def draw_panel(ax, panel: Panel, runs: list[Run], phases: list[PhaseResult], window: int) -> None:
    """One panel: every run's traces, and its detected phase step where it has data here."""
    notes, meanings, drawn, positive = [], {}, False, False
    for i, (run, phase) in enumerate(zip(runs, phases, strict=True)):
        color = COLORS[i % len(COLORS)]
        run_drawn = False
        for trace in panel.traces(run):
            x, y = trace.curve.steps, trace.curve.values
            keep = np.isfinite(y)
            if not keep.any():
                continue
            run_drawn = True
            positive = positive or bool(np.any(y[keep] > 0))
            if trace.markers:
                ax.plot(x[keep], y[keep], trace.style, color=color, marker="o", ms=3, lw=1)
            else:
                ax.plot(x[keep], y[keep], trace.style, color=color, alpha=0.25, lw=1)
                ax.plot(x[keep], smooth(y[keep], window), trace.style, color=color, lw=2)
            if trace.curve.note:
                notes.append(
                    f"{run.label}: {trace.curve.note}" if len(runs) > 1 else trace.curve.note
                )
            if trace.meaning:
                meanings[trace.meaning] = trace.style
        if phase.step is not None and run_drawn:
            style = ":" if phase.confidence == "low" else "--"
            ax.axvline(phase.step, color=color, ls=style, lw=1.2, alpha=0.8)
        drawn = drawn or run_drawn
    title = panel.title + (f"\n({'; '.join(dict.fromkeys(notes))})" if notes else "")
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("step")
    ax.set_ylabel(panel.ylabel)
    ax.grid(alpha=0.3)
    if drawn and panel.yscale != "linear" and positive:  # no positive value: no log scale
        ax.set_yscale(panel.yscale)
        plain = FuncFormatter(lambda value, _: f"{value:g}")
        ax.yaxis.set_major_formatter(plain)
        ax.yaxis.set_minor_formatter(plain)
    if not drawn:
        ax.set_xticks([])
        ax.set_yticks([])
        ax.text(
            0.5,
            0.5,
            empty_reason(panel, runs),
            transform=ax.transAxes,
            ha="center",
            va="center",
            color="0.45",
            fontsize=12,
        )
    elif meanings:
        handles = [Line2D([], [], color="0.3", ls=style) for style in meanings.values()]
        ax.legend(handles, [m.rsplit(" (", 1)[0] for m in meanings], fontsize=7, loc="best")


def empty_reason(panel: Panel, runs: list[Run]) -> str:
    """What an empty panel says: a run's own reason for lacking its metrics, else "not logged"."""
    reasons = [run.why_empty[k] for run in runs for k in panel.keys if k in run.why_empty]
    if not reasons:
        return "not logged"
    return textwrap.fill(reasons[0], 38)


def render(
    panels: tuple[Panel, ...],
    runs: list[Run],
    phases: list[PhaseResult],
    window: int,
    title: str,
    grid: tuple[int, int] = (2, 2),
) -> bytes:
    """A figure of `panels` (2x2 unless `grid` says) for all runs, with a shared legend, as PNG."""
    rows, cols = grid
    fig = Figure(figsize=(5.5 * cols, 4 * rows + 0.8 * (rows == 1)), dpi=100, layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, cols)).ravel()
    for ax, panel in zip(axes, panels, strict=True):
        draw_panel(ax, panel, runs, phases, window)
    handles = [Line2D([], [], color=COLORS[i % len(COLORS)], lw=2) for i in range(len(runs))]
    labels = [run.label for run in runs]
    found = [p for p in phases if p.step is not None]
    if any(p.confidence != "low" for p in found):
        handles.append(Line2D([], [], color="0.3", ls="--", lw=1.2))
        labels.append("detected start of phase two")
    if any(p.confidence == "low" for p in found):
        handles.append(Line2D([], [], color="0.3", ls=":", lw=1.2))
        labels.append("phase two, low confidence")
    fig.legend(handles, labels, loc="outside lower center", ncols=min(len(labels), 4))
    fig.suptitle(f"{title} (faint: raw; solid: moving average over {window} points)", fontsize=11)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def dynamics_png(runs: list[Run], phases: list[PhaseResult], window: int) -> bytes:
    """The paper's 2x2 figure: execution entropy, semantic entropy ratio, accuracy, length."""
    return render(DYNAMICS, runs, phases, window, "Training dynamics")


def has_heldout(runs: list[Run]) -> bool:
    """Whether any run logged held-out scores or group pass@k (else there is no figure)."""
    return any(curves.heldout(r) or curves.group_pass_at_k(r) for r in runs)


def heldout_png(runs: list[Run], phases: list[PhaseResult], window: int) -> bytes:
    """Held-out accuracy and pass@k while training, and the training batches' group pass@k."""
    return render(HELDOUT, runs, phases, window, "Held-out evaluation and exploration", (1, 3))


def hierarchy_png(runs: list[Run], phases: list[PhaseResult], window: int) -> bytes:
    """Planning-token entropy and ratio, reward, fork-token overlap, semantic entropy (Miller-
    Madow beside plug-in) and the gram occurrences and distinct grams behind it."""
    return render(HIERARCHY, runs, phases, window, "Planning tokens", (2, 3))
