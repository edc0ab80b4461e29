"""Load a run folder written by `hicra train` (docs/run-format.md) into step-aligned arrays.

Reads whatever is there: a run still training, a run killed mid-write (its files may end in a
truncated line), a run whose metrics lack the optional hierarchy keys. Only a missing folder, a
missing or empty metrics.jsonl are errors; everything else becomes a warning on the run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hicra.errors import HicraError
from hicra.jsonl import ReadStats, read_jsonl
from hicra.report.rollouts import RolloutScan
from hicra.run_folder import CONFIG_FILE, METRICS_FILE, ROLLOUTS_FILE, RUN_MARKER
from hicra.yaml_io import YamlError, load_yaml_file

REWARD_AS_ACCURACY = "reward (no hicra/accuracy logged)"


class RunError(HicraError):
    """A run folder cannot be reported on; the message names the folder or file."""


@dataclass
class Run:
    """One run's metrics as float arrays aligned with `steps` (NaN where a step lacks the key).

    A run folder's rollouts are streamed from its rollouts.jsonl when the report is built; a
    rollout dump (`hicra.report.dumps`) comes with them already counted and sampled (`rollouts`),
    says where it came from and how it was read (`source`), and why a metric is missing
    (`why_empty`, by metric key: the plots print it in the empty panel).
    """

    path: Path
    label: str
    config: dict[str, Any]
    steps: np.ndarray
    metrics: dict[str, np.ndarray]
    warnings: list[str] = field(default_factory=list)
    rollouts: RolloutScan | None = None
    source: dict[str, Any] = field(default_factory=dict)
    why_empty: dict[str, str] = field(default_factory=dict)
    accuracy_note: str = REWARD_AS_ACCURACY

    @property
    def is_dump(self) -> bool:
        """Read from another trainer's rollout dump, not from a hicra run folder."""
        return bool(self.source)

    @property
    def rollouts_path(self) -> Path | None:
        if self.is_dump:
            return None
        path = self.path / ROLLOUTS_FILE
        return path if path.is_file() else None

    def series(self, key: str) -> np.ndarray | None:
        """The metric's values, or None when the run never logged a finite value for it."""
        values = self.metrics.get(key)
        if values is None or not np.isfinite(values).any():
            return None
        return values


def _as_float(value: Any) -> float:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)):
        return float(value)
    return math.nan


def read_config(folder: Path, warnings: list[str]) -> dict[str, Any]:
    """The resolved config.yaml as a mapping; {} (with a warning) when absent or unreadable."""
    path = folder / CONFIG_FILE
    if not path.is_file():
        return {}
    try:
        data = load_yaml_file(path)
    except YamlError as err:
        detail = str(err).removeprefix(str(path)).lstrip(", :")
        warnings.append(f"{path}: unreadable ({detail}); labelled by folder name")
        return {}
    return data if isinstance(data, dict) else {}


def run_label(folder: Path, config: dict[str, Any]) -> str:
    """ "hicra α=0.2" or "grpo" from the config's credit assignment; the folder name otherwise."""
    credit = config.get("credit")
    if not isinstance(credit, str) or not credit:
        return folder.resolve().name or str(folder)
    alpha = config.get("hicra_alpha")
    if credit != "grpo" and isinstance(alpha, (int, float)) and not isinstance(alpha, bool):
        return f"{credit} α={alpha:g}"
    return credit


def load_run(folder: str | Path, label: str | None = None) -> Run:
    """Read config.yaml and metrics.jsonl of a run folder (rollouts are streamed later)."""
    folder = Path(folder)
    if not folder.exists():
        raise RunError(f"run folder not found: {folder}")
    if not folder.is_dir():
        raise RunError(
            f"{folder}: neither a run folder of hicra train nor a rollout file (.jsonl, "
            ".jsonl.gz or .parquet)"
        )
    metrics_path = folder / METRICS_FILE
    if not metrics_path.is_file():
        if (folder / RUN_MARKER).exists():
            raise RunError(f"{folder}: no {METRICS_FILE} yet (the run has not logged a step)")
        raise RunError(
            f"{folder}: neither a hicra run (no {METRICS_FILE}) nor a rollout dump (no STEP.jsonl "
            "files, as verl's trainer.rollout_data_dir holds)"
        )
    warnings: list[str] = []
    config = read_config(folder, warnings)
    stats = ReadStats()
    by_step: dict[int, dict[str, float]] = {}
    no_step: list[int] = []
    rows = read_jsonl(metrics_path, on_error="skip", stats=stats, allow_truncated_last_line=True)
    for number, row in rows:
        step = row.get("step")
        if isinstance(step, bool) or not isinstance(step, (int, float)) or not math.isfinite(step):
            no_step.append(number)
            continue
        # Lines of the same step (a training line and an eval line) merge; later values win.
        merged = by_step.setdefault(int(step), {})
        for key, value in row.items():
            number_value = _as_float(value)
            if key != "step" and (math.isfinite(number_value) or key not in merged):
                merged[key] = number_value
    bad = {k: v for k, v in stats.skipped.items() if k != "truncated last line"}
    if bad:
        summary = ReadStats(skipped=bad).summary()
        warnings.append(f"{metrics_path}: skipped unreadable lines: {summary}")
    if no_step:
        lines = ", ".join(map(str, no_step[:5])) + (", ..." if len(no_step) > 5 else "")
        warnings.append(
            f"{metrics_path}: {len(no_step)} lines without a numeric 'step' (line {lines})"
        )
    if not by_step:
        raise RunError(
            f"{metrics_path}: no metric lines with a step yet "
            f"({stats.lines} lines read; is the run still starting?)"
        )
    steps = np.array(sorted(by_step), dtype=np.int64)
    keys = sorted({key for values in by_step.values() for key in values})
    metrics = {
        key: np.array([by_step[int(s)].get(key, math.nan) for s in steps], dtype=float)
        for key in keys
    }
    return Run(folder, label or run_label(folder, config), config, steps, metrics, warnings)


def unique_labels(runs: list[Run]) -> None:
    """Make labels distinct by adding the folder name where two runs share one (in place)."""
    seen: dict[str, int] = {}
    for run in runs:
        seen[run.label] = seen.get(run.label, 0) + 1
    for run in runs:
        if seen[run.label] > 1:
            run.label = f"{run.label} ({run.path.resolve().name})"
    # Still equal (same folder name under different parents): number them.
    counts: dict[str, int] = {}
    for run in runs:
        counts[run.label] = counts.get(run.label, 0) + 1
        if counts[run.label] > 1:
            run.label = f"{run.label} #{counts[run.label]}"
