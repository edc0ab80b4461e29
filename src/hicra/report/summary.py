"""One run's findings in plain values: the summary-table row, phases, grams per phase.

The HTML page and report.json are both rendered from `RunReport`, so they always agree.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hicra.report import curves
from hicra.report.phases import PhaseResult, detect_phases, smooth
from hicra.report.rollouts import RolloutScan
from hicra.report.runs import Run


@dataclass(frozen=True)
class GramTable:
    """The most frequent strategic grams over a range of steps."""

    title: str
    counts: list[tuple[str, int]]
    total: int


@dataclass
class RunReport:
    """Everything the report says about one run."""

    index: int
    run: Run
    phase: PhaseResult
    rollouts: RolloutScan | None
    stats: dict[str, Any]
    grams: list[GramTable] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def phase_of(self, step: int) -> str:
        """ "1" or "2" for a step before or from the detected change, "" when none was found."""
        if self.phase.step is None:
            return ""
        return "1" if step < self.phase.step else "2"


def _last_finite(values: np.ndarray) -> float | None:
    finite = values[np.isfinite(values)]
    return float(finite[-1]) if finite.size else None


def run_stats(run: Run, window: int) -> dict[str, Any]:
    """Steps, final and whole-run accuracy with the completions behind them, planning ratio.

    "Final" accuracy is the mean over the last 10% of logged steps (`curves.final_window`), never
    one step; the best single step is not reported (the maximum of noisy steps flatters).
    """
    stats: dict[str, Any] = {
        "points": len(run.steps),
        "first_step": int(run.steps[0]),
        "last_step": int(run.steps[-1]),
    }
    acc = curves.accuracy(run)
    if acc is not None:
        finite = np.isfinite(acc.values)
        values, steps = acc.values[finite], run.steps[finite]
        tail = curves.final_window(len(values))
        stats["accuracy_source"] = "reward" if acc.note else curves.ACCURACY
        stats["accuracy_from_reward"] = bool(acc.note)
        if run.is_dump:  # the field it came from, and how it was read
            stats["accuracy_source"] = run.source["accuracy"]
        stats["final_accuracy"] = float(np.mean(values[-tail:]))
        stats["final_accuracy_steps"] = [int(steps[-tail]), int(steps[-1])]
        stats["mean_accuracy"] = float(np.mean(values))
        completions = run.series(curves.COMPLETIONS)
        if completions is not None and not acc.note:
            behind = np.nan_to_num(completions[finite])
            stats["final_accuracy_completions"] = int(behind[-tail:].sum())
            stats["mean_accuracy_completions"] = int(behind.sum())
    if (ev := curves.eval_accuracy(run)) is not None:
        stats["final_eval_accuracy"] = _last_finite(ev.values)
        finite = np.isfinite(ev.values)
        stats["final_eval_step"] = int(run.steps[finite][-1])
    if held := heldout_stats(run):
        stats["heldout"] = held
    if (summary := curves.heldout_summary(run)) is not None:
        stats["eval_accuracy_auc"] = summary[1]  # held-out accuracy averaged over training
    if (ratio := run.series(curves.PLANNING_RATIO)) is not None:
        smoothed = smooth(ratio, window)
        finite = smoothed[np.isfinite(smoothed)]
        stats["planning_ratio_first"] = float(finite[0])
        stats["planning_ratio_last"] = float(finite[-1])
    return stats


def heldout_stats(run: Run) -> dict[str, dict[str, Any]]:
    """Per benchmark: the evaluated steps and each stat's values there (accuracy, pass@k, maj@k)."""
    out: dict[str, dict[str, Any]] = {}
    for bench, stats in curves.heldout(run).items():
        accuracy = stats.get("accuracy")
        if accuracy is None:
            continue
        finite = np.isfinite(accuracy.values)
        entry: dict[str, Any] = {"steps": [int(s) for s in run.steps[finite]]}
        for name, curve in stats.items():
            entry[name] = [None if not np.isfinite(v) else float(v) for v in curve.values[finite]]
        entry["final_accuracy"] = entry["accuracy"][-1]
        out[bench] = entry
    return out


def phases_of(run: Run, window: int) -> PhaseResult:
    """Phase detection on the run's execution entropy, semantic entropy ratio and accuracy."""
    curve_values = [
        None if c is None else c.values
        for c in (
            curves.metric(run, curves.EXECUTION_ENTROPY),
            curves.semantic_entropy_ratio(run),
            curves.accuracy(run),
        )
    ]
    return detect_phases(run.steps, *curve_values, window=window)


def gram_tables(scan: RolloutScan | None, phase: PhaseResult, top: int) -> list[GramTable]:
    """Top grams in phase one and phase two (or over all steps when no phase was found)."""
    if scan is None or not scan.grams_per_step:
        return []
    steps = sorted(scan.grams_per_step)

    def table(title: str, counts: Counter[str]) -> GramTable:
        return GramTable(title, counts.most_common(top), sum(counts.values()))

    if phase.step is None:
        return [table(f"all steps ({steps[0]}-{steps[-1]})", scan.gram_counts())]
    before = [s for s in steps if s < phase.step]
    after = [s for s in steps if s >= phase.step]
    tables = []
    if before:
        tables.append(
            table(
                f"phase one (steps {before[0]}-{before[-1]})", scan.gram_counts(last=phase.step - 1)
            )
        )
    if after:
        tables.append(
            table(f"phase two (steps {after[0]}-{after[-1]})", scan.gram_counts(first=phase.step))
        )
    return tables


def per_step(run: Run) -> dict[str, list[float | None]]:
    """The run's hierarchy metrics per step (null where absent), for report.json."""
    keys = (
        curves.ACCURACY,
        curves.REWARD,
        curves.LENGTH,
        curves.PLANNING_RATIO,
        curves.SEMANTIC_ENTROPY,
        curves.SEMANTIC_ENTROPY_MM,
        curves.GRAM_OCCURRENCES,
        curves.DISTINCT_GRAMS,
        curves.PLANNING_ENTROPY,
        curves.EXECUTION_ENTROPY,
    )
    out: dict[str, list[float | None]] = {"step": [int(s) for s in run.steps]}
    for key in keys:
        if (values := run.series(key)) is not None:
            out[key] = [float(v) if np.isfinite(v) else None for v in values]
    return out


def to_json(report: RunReport) -> dict[str, Any]:
    """The run's findings for report.json (machine-readable twin of the HTML summary)."""
    scan = report.rollouts
    return {
        "label": report.run.label,
        "path": str(report.run.path),
        "credit": report.run.config.get("credit"),
        "hicra_alpha": report.run.config.get("hicra_alpha"),
        **({"source": report.run.source} if report.run.is_dump else {}),
        "success_signal": report.run.config.get("success_signal"),
        **report.stats,
        "phase": report.phase.to_dict(),
        "per_step": per_step(report.run),
        "rollouts": None
        if scan is None
        else {"total": scan.total, "shown": len(scan.samples), "outcomes": dict(scan.outcomes)},
        "grams": [
            {"title": t.title, "total": t.total, "top": [[g, c] for g, c in t.counts]}
            for t in report.grams
        ],
        "warnings": report.warnings,
    }
