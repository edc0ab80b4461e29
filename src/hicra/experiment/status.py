"""What each arm x seed run folder of an experiment holds: missing, running, killed or finished."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from hicra.experiment import SEED_PREFIX
from hicra.folder_lock import FolderBusy, FolderLock
from hicra.jsonl import read_jsonl
from hicra.run_folder import (
    METRICS_FILE,
    finished_step,
    is_run_folder,
    last_complete_checkpoint,
)


class State(str, Enum):
    MISSING = "missing"  # not started (or started and failed before training)
    RUNNING = "running"  # another process holds the run folder's lock
    KILLED = "killed"  # stopped before the end, with a checkpoint to resume from
    BROKEN = "broken"  # stopped before its first checkpoint: nothing to resume, start again
    FINISHED = "finished"


@dataclass(frozen=True)
class RunStatus:
    arm: str
    seed: int
    path: Path
    state: State
    last_step: int  # the last step in metrics.jsonl (0 when none)

    @property
    def label(self) -> str:
        return f"{self.arm}/{SEED_PREFIX}{self.seed}"


def last_logged_step(folder: Path) -> int:
    path = folder / METRICS_FILE
    if not path.is_file():
        return 0
    steps = [
        int(row["step"])
        for _, row in read_jsonl(path, on_error="skip", allow_truncated_last_line=True)
        if isinstance(row.get("step"), int) and not any(k.startswith("eval/") for k in row)
    ]
    return max(steps, default=0)


def is_locked(folder: Path) -> bool:
    """Whether another process writes to the folder now (it holds the folder's lock)."""
    if not (folder / ".lock").exists():
        return False
    try:
        FolderLock(folder).acquire().release()
    except FolderBusy:
        return True
    return False


def run_status(arm: str, seed: int, folder: Path, max_steps: int | None) -> RunStatus:
    """The state of one run folder (`max_steps`: the run's target, None when set by epochs)."""
    last = last_logged_step(folder)
    if not folder.is_dir() or not is_run_folder(folder):
        return RunStatus(arm, seed, folder, State.MISSING, last)
    if is_locked(folder):
        return RunStatus(arm, seed, folder, State.RUNNING, last)
    done = finished_step(folder)
    if done is not None and (max_steps is None or max_steps < 0 or done >= max_steps):
        return RunStatus(arm, seed, folder, State.FINISHED, max(last, done))
    if last_complete_checkpoint(folder) is not None:
        return RunStatus(arm, seed, folder, State.KILLED, last)
    return RunStatus(arm, seed, folder, State.BROKEN, last)


_SEED_DIR = re.compile(rf"{re.escape(SEED_PREFIX)}(-?\d+)")


def discover(folder: Path) -> list[tuple[str, int, Path]]:
    """(arm, seed, run folder) for every ARM/seed-S run folder under an experiment folder."""
    found = []
    for arm_dir in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for run in sorted(arm_dir.iterdir()):
            match = _SEED_DIR.fullmatch(run.name)
            if match and run.is_dir() and is_run_folder(run):
                found.append((arm_dir.name, int(match.group(1)), run))
    return sorted(found, key=lambda item: (item[0], item[1]))


def eval_score(run: Path) -> tuple[float | None, int]:
    """The run's held-out score: the avg@k over the benchmarks of RUN/eval/results.json pooled by
    problem count (every problem weighs the same: AIME's 30 problems do not weigh as much as
    MATH-500's 500), and the number of problems behind it (None, 0 when it was not evaluated).
    Benchmarks that do not say how many problems they hold are averaged with equal weights."""
    path = run / "eval" / "results.json"
    try:
        results = json.loads(path.read_text(encoding="utf-8"))
        benches = results["benchmarks"]
        scores = [float(b["avg@k"]) for b in benches.values()]
        counts = [int(b.get("problems", 0)) for b in benches.values()]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None, 0
    if not scores:
        return None, 0
    if all(count > 0 for count in counts):
        pooled = sum(s * c for s, c in zip(scores, counts, strict=True)) / sum(counts)
        return pooled, sum(counts)
    return sum(scores) / len(scores), sum(counts)
