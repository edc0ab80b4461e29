"""The run folder's format in one place: file names, metric keys, rollout fields, and the logs.

`hicra train` writes a run folder, `hicra report`, `hicra mine` and `hicra experiment` read it; all
of them take the names below from here (docs/run-format.md describes each). Lines are appended with
one flushed write per step, so a killed run loses at most a partial line. On resume the logs are
cut back to the checkpoint's step first: the steps after it are trained again and logged again,
never twice.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import time
from pathlib import Path
from typing import Any

import yaml

from hicra.errors import HicraError
from hicra.jsonl import append_jsonl, read_jsonl
from hicra.output_folder import first_free, refuse_file, set_aside
from hicra.yaml_io import YamlError, load_yaml_file

METRICS_FILE, ROLLOUTS_FILE, CONFIG_FILE, SUMMARY_FILE = (
    "metrics.jsonl",
    "rollouts.jsonl",
    "config.yaml",
    "summary.json",
)
FINAL_MODEL_DIR = "final_model"
RUN_MARKER = ".hicra-run"  # written when hicra creates a run folder: "this folder is a run"
THUMBNAILS_DIR = "thumbnails"  # small PNGs of the images of logged vision-language rollouts
HELDOUT_DIR = (
    "heldout"  # in-training held-out evaluations: heldout/step-N/{samples.jsonl,results.json}
)


class Metric:
    """Keys of metrics.jsonl that hicra writes (TRL's own keys keep TRL's names)."""

    ACCURACY = "hicra/accuracy"  # share of completions exactly correct (score >= 1)
    COMPLETIONS = "hicra/completions"  # completions scored in the step (behind ACCURACY)
    PLANNING_RATIO = "hicra/planning_ratio"
    PLACEBO_RATIO = "hicra/placebo_ratio"  # controls (placebo, random_tokens): marked / tokens
    PLACEBO_RUN_RATIO = "hicra/placebo_run_ratio"  # controls: marked / planning tokens, run-long
    PLACEBO_REMATCHES = "hicra/placebo_rematches"  # placebo: sets drawn again so far in the run
    PLANNING_ADVANTAGE = "hicra/planning_advantage"
    EXECUTION_ADVANTAGE = "hicra/execution_advantage"
    SEMANTIC_ENTROPY = "hicra/semantic_entropy"
    SEMANTIC_ENTROPY_MM = "hicra/semantic_entropy_mm"
    GRAM_OCCURRENCES = "hicra/gram_occurrences"
    DISTINCT_GRAMS = "hicra/distinct_grams"
    PLANNING_ENTROPY = "hicra/planning_entropy"
    EXECUTION_ENTROPY = "hicra/execution_entropy"
    ENTROPY = "hicra/entropy"
    FORK_PLANNING_HIGH = "hicra/fork/planning_high_entropy_share"
    FORK_HIGH_PLANNING = "hicra/fork/high_entropy_planning_share"
    VERIFY_TIMEOUTS = "hicra/verify_timeouts"
    SCORER_ERRORS = "hicra/scorer_errors"
    # reward_corruption (the graded positive control): the step's inverted prompt groups, and
    # those among them whose completions were not all right or all wrong (the others keep
    # advantages of 0: inverting them changes nothing)
    INVERTED_GROUPS = "hicra/inverted_groups"
    INVERTED_WITH_SIGNAL = "hicra/inverted_groups_with_signal"
    # TRL's keys that hicra reads
    REWARD = "reward"
    LENGTH = "completions/mean_length"
    EVAL_ACCURACY = "eval/accuracy"  # held-out accuracy, the mean over eval benchmarks
    EVAL_HICRA_ACCURACY = "eval/hicra/accuracy"  # TRL prefixes every eval key
    EVAL_SECONDS = "eval/seconds"  # wall time of one in-training held-out evaluation

    @staticmethod
    def group_pass_at(k: int) -> str:
        """Group pass@k of a training step: the unbiased estimator over each prompt's group."""
        return f"hicra/pass@{k}"

    @staticmethod
    def heldout(benchmark: str, stat: str) -> str:
        """An in-training held-out score: stat is 'accuracy', 'pass@K' or 'maj@K'."""
        return f"eval/{benchmark}/{stat}"


GROUP_PASS_KEY = re.compile(r"^hicra/pass@(?P<k>\d+)$")
# eval/<benchmark>/accuracy|pass@K|maj@K; "hicra" is TRL's own eval prefix, never a benchmark
HELDOUT_KEY = re.compile(
    r"^eval/(?P<benchmark>(?!hicra/)[^/]+)/(?P<stat>accuracy|(?:pass|maj)@\d+)$"
)


def parse_heldout_key(key: str) -> tuple[str, str] | None:
    """(benchmark, stat) of an `eval/<benchmark>/<stat>` key, None for any other key."""
    match = HELDOUT_KEY.match(key)
    return (match["benchmark"], match["stat"]) if match else None


def heldout_step_dir(folder: str | os.PathLike[str], step: int) -> Path:
    """Where the held-out evaluation at `step` keeps its samples and results."""
    return Path(folder) / HELDOUT_DIR / f"step-{step}"


class RolloutField:
    """Fields of one rollouts.jsonl line."""

    STEP = "step"
    GROUP = "group"
    PROMPT = "prompt"
    COMPLETION = "completion"
    ANSWER = "answer"
    REWARD = "reward"
    REWARDS = "rewards"
    CORRECT = "correct"
    ADVANTAGE = "advantage"
    PLANNING_SPANS = "planning_spans"
    LENGTH = "length"
    PLANNING_TOKENS = "planning_tokens"
    IMAGES = "images"  # vision-language rows: where each prompt image came from
    THUMBNAILS = "thumbnails"  # their thumbnails, relative to the run folder


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class RunLog:
    """Appends to a run folder's JSONL logs; only the main process writes."""

    def __init__(self, folder: str | os.PathLike[str], is_main: bool = True) -> None:
        self.folder = Path(folder)
        self.is_main = is_main
        if is_main:
            self.folder.mkdir(parents=True, exist_ok=True)

    @property
    def metrics_path(self) -> Path:
        return self.folder / METRICS_FILE

    @property
    def rollouts_path(self) -> Path:
        return self.folder / ROLLOUTS_FILE

    def has_logs(self) -> bool:
        return self.metrics_path.exists() or self.rollouts_path.exists()

    def write_config(self, config: dict[str, Any]) -> None:
        if self.is_main:
            text = yaml.safe_dump(config, sort_keys=False, allow_unicode=True)
            (self.folder / CONFIG_FILE).write_text(text, encoding="utf-8")

    def log_metrics(self, step: int, logs: dict[str, Any]) -> None:
        if self.is_main:
            row = {"step": step, "time": round(time.time(), 3)}
            row.update({k: _clean(v) for k, v in logs.items()})
            append_jsonl(self.metrics_path, [row])

    def log_rollouts(self, rows: list[dict[str, Any]]) -> None:
        if self.is_main and rows:
            append_jsonl(self.rollouts_path, rows)

    def save_thumbnails(self, thumbnails: dict[str, bytes]) -> None:
        """PNG thumbnails by file name into THUMBNAILS_DIR (a file already there is kept)."""
        if not self.is_main or not thumbnails:
            return
        folder = self.folder / THUMBNAILS_DIR
        folder.mkdir(exist_ok=True)
        for name, png in thumbnails.items():
            path = folder / name
            if not path.exists():
                tmp = path.with_name(f".{name}.tmp")
                tmp.write_bytes(png)
                tmp.replace(path)

    def write_summary(self, summary: dict[str, Any]) -> None:
        if self.is_main:
            data = {k: _clean(v) for k, v in summary.items()}
            (self.folder / SUMMARY_FILE).write_text(json.dumps(data, indent=1) + "\n")

    def truncate_after(self, step: int) -> dict[str, int]:
        """Drop log lines of steps after `step` (and a torn final line); return lines kept per file."""
        kept = {}
        if not self.is_main:
            return kept
        for path in (self.metrics_path, self.rollouts_path):
            if not path.exists():
                continue
            rows = [
                row
                for _, row in read_jsonl(path, on_error="skip", allow_truncated_last_line=True)
                if int(row.get("step", 0)) <= step
            ]
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_text(
                "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8"
            )
            tmp.replace(path)
            kept[path.name] = len(rows)
        for done in (self.folder / HELDOUT_DIR).glob("step-*"):  # evaluations of undone steps
            number = done.name.removeprefix("step-")
            if number.isdigit() and int(number) > step:
                shutil.rmtree(done, ignore_errors=True)
        return kept

    def set_aside(self) -> list[Path]:
        """A fresh run in a folder with old logs keeps them, renamed, instead of appending to them."""
        moved = []
        if not self.is_main:
            return moved
        for path in (self.metrics_path, self.rollouts_path):
            if path.exists():
                moved.append(set_aside(path, f"{path.stem}.", path.suffix))
        return moved


def read_run_config(folder: str | os.PathLike[str]) -> dict[str, Any]:
    """A run folder's config.yaml as a mapping; a clear error when it is missing or unreadable."""
    path = Path(folder) / CONFIG_FILE
    if not path.is_file():
        raise HicraError(f"{folder} is not a hicra run folder (no {CONFIG_FILE})")
    try:
        data = load_yaml_file(path)
    except YamlError as err:
        raise HicraError(f"unreadable run configuration: {err}") from None
    if not isinstance(data, dict):
        raise HicraError(f"{path}: not a run configuration (a YAML mapping)")
    return data


def checkpoint_step(path: str | os.PathLike[str]) -> int | None:
    """N of a checkpoint-N folder, None for any other name."""
    match = re.fullmatch(r"checkpoint-(\d+)", Path(path).name)
    return int(match.group(1)) if match else None


def checkpoints(folder: str | os.PathLike[str]) -> list[tuple[int, Path]]:
    """(step, path) of every checkpoint-N folder in a run folder, oldest first."""
    found = [(checkpoint_step(p), p) for p in Path(folder).glob("checkpoint-*") if p.is_dir()]
    return sorted((step, path) for step, path in found if step is not None)


def is_complete_checkpoint(path: Path) -> bool:
    """transformers writes trainer_state.json last: a checkpoint without it was cut short."""
    try:
        json.loads((path / "trainer_state.json").read_text())
        return True
    except (OSError, ValueError):
        return False


def last_complete_checkpoint(
    folder: str | os.PathLike[str], remove_incomplete: bool = False
) -> Path | None:
    """The newest checkpoint written to the end. With `remove_incomplete`, newer partial ones (a run
    killed while saving) are deleted: they hold nothing resumable and a later save would land in
    them, mixed with their stale files."""
    for _, path in reversed(checkpoints(folder)):
        if is_complete_checkpoint(path):
            return path
        if remove_incomplete:
            print(f"hicra: removing incomplete {path} (the run was killed while saving it)")
            shutil.rmtree(path, ignore_errors=True)
    return None


# --------------------------------------------------------------------------- claiming a folder
def is_run_folder(folder: str | os.PathLike[str]) -> bool:
    """Whether `folder` is a hicra run: it has the marker, or (runs of older versions) logs,
    checkpoints, or a config.yaml written by hicra."""
    folder = Path(folder)
    if (folder / RUN_MARKER).is_file() or (folder / METRICS_FILE).is_file():
        return True
    if checkpoints(folder):
        return True
    try:
        config = load_yaml_file(folder / CONFIG_FILE)
    except YamlError:
        return False
    return isinstance(config, dict) and "hicra_version" in config


def finished_step(folder: str | os.PathLike[str]) -> int | None:
    """The last step of a run that trained to the end (summary.json and final_model written)."""
    folder = Path(folder)
    if not (folder / FINAL_MODEL_DIR / "config.json").is_file():
        return None
    try:
        summary = json.loads((folder / SUMMARY_FILE).read_text(encoding="utf-8"))
        return int(summary["step"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def check_run_folder(folder: str | os.PathLike[str], resume: bool) -> None:
    """What `hicra train` may write into: a new or empty folder, or (with --resume) a run.

    Anything else is an error that names the folder: hicra never writes into a folder of the
    user's own files (a model card would replace their README.md, a config their config.yaml).
    """
    folder = refuse_file(folder)
    if resume:
        if not folder.is_dir() or not is_run_folder(folder):
            raise HicraError(f"--resume: {folder} is not a hicra run folder")
        if not checkpoints(folder) and finished_step(folder) is None:
            raise HicraError(f"--resume: no checkpoint in {folder} to resume from")
        return
    if not folder.is_dir() or not any(p.name != ".lock" for p in folder.iterdir()):
        return
    if is_run_folder(folder):
        raise HicraError(
            f"{folder} already holds a run; use --resume to continue it, or another --output-dir"
        )
    raise HicraError(
        f"output folder {folder} is not empty and is not a hicra run folder: hicra writes only "
        "into a new or empty folder (or continues a run with --resume)"
    )


def create_run_folder(folder: str | os.PathLike[str], numbered: bool) -> Path:
    """Create the run folder and mark it as a run; with `numbered`, a taken name gets "-2", "-3"...

    The creation is atomic (mkdir fails when the name exists), so two runs started in the same
    second never share a folder. An existing empty folder is used as it is.
    """
    base = Path(folder)
    try:
        base.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise HicraError(f"cannot create {base.parent}: {err.strerror}") from None
    try:
        if numbered:
            path = first_free(lambda tail: base.with_name(base.name + tail), Path.mkdir)
        else:  # an explicit folder that exists: check_run_folder has vetted it
            path = base
            path.mkdir(exist_ok=True)
    except OSError as err:
        raise HicraError(f"cannot create the run folder {base}: {err.strerror}") from None
    try:
        marker = path / RUN_MARKER
        if not marker.exists():
            marker.write_text(json.dumps({"created": time.time(), "pid": os.getpid()}) + "\n")
    except OSError as err:
        raise HicraError(f"cannot write to the run folder {path}: {err.strerror}") from None
    return path


def remove_failed_start(folder: str | os.PathLike[str], created: bool) -> bool:
    """Undo a start that failed before training wrote anything: a failed start leaves no empty or
    config-only run folder behind. A folder hicra created is deleted; a folder the user gave
    (empty before) gets its bookkeeping files (marker, lock, config.yaml) removed."""
    folder = Path(folder)
    bookkeeping = {RUN_MARKER, ".lock", CONFIG_FILE}
    try:
        entries = list(folder.iterdir())
    except OSError:
        return False
    if any(p.name not in bookkeeping for p in entries):
        return False  # it trained (logs, checkpoints) or holds other files: keep everything
    if created:
        shutil.rmtree(folder, ignore_errors=True)
    else:
        for path in entries:
            path.unlink(missing_ok=True)
    return True
