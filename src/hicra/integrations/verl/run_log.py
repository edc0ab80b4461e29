"""A verl run's hicra run folder: what `hicra report` reads, in `hicra train`'s format.

The HICRA trainer writes, beside verl's checkpoints (`trainer.default_local_dir`/hicra, or
`algorithm.output_dir`), the files `hicra train` writes (docs/run-format.md, `hicra.run_folder`):
config.yaml (the credit, alpha, grams, model, verl's mode and group size), metrics.jsonl (per step
the hierarchy metrics, the accuracy and verl's reward and response length under the names the
report reads) and rollouts.jsonl (a few whole prompt groups a step, with their planning spans).
Only the driver writes, once a step, after verl has computed the step's metrics. A resumed verl
run cuts the logs back to the step it resumes after, as `hicra train --resume` does; a fresh run
sets old logs aside. Nothing here imports verl.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from hicra import __version__
from hicra.errors import HicraError
from hicra.folder_lock import FolderLock
from hicra.integrations.verl.settings import VerlHicraSettings
from hicra.output_folder import refuse_file
from hicra.run_folder import Metric, RolloutField, RunLog, create_run_folder, is_run_folder
from hicra.tagging import PlanningTagger

RUN_SUBFOLDER = "hicra"  # inside trainer.default_local_dir, beside verl's global_step_N folders
# verl's metric keys that the report reads under TRL's names (both are written)
VERL_REWARD, VERL_LENGTH = "critic/score/mean", "response_length/mean"


def run_folder_path(default_local_dir: str | None, output_dir: str | None) -> Path:
    """`algorithm.output_dir` when set, else `trainer.default_local_dir`/hicra."""
    if output_dir:
        return Path(output_dir)
    if not default_local_dir:
        raise HicraError(
            "the HICRA trainer writes its run folder beside verl's checkpoints, but "
            "trainer.default_local_dir is empty; set it, or +algorithm.output_dir=PATH"
        )
    return Path(default_local_dir) / RUN_SUBFOLDER


def check_run_folder(folder: Path) -> Path:
    """A new or empty folder, or a hicra run folder (a resumed verl run): anything else is refused."""
    folder = refuse_file(folder)
    used = folder.is_dir() and any(p.name != ".lock" for p in folder.iterdir())
    if used and not is_run_folder(folder):
        raise HicraError(
            f"run folder {folder} is not empty and is not a hicra run folder: the HICRA "
            "trainer writes only into a new or empty folder, or a run folder it wrote "
            "(set +algorithm.output_dir to another folder)"
        )
    return folder


@dataclass
class StepRecord:
    """What one global step collects over its mini-steps (`parameter_sync_step`)."""

    correct: int = 0
    scored: int = 0
    rollouts: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class SampledResponses:
    """The rows of a step chosen for rollouts.jsonl, as the driver holds them."""

    groups: list[int]  # the group index of each row within the step's sample
    prompts: list[str]
    answers: list[Any]
    responses: torch.Tensor  # (k, T) token ids
    response_mask: torch.Tensor  # (k, T): the model's own tokens
    scores: torch.Tensor  # (k,)
    advantages: torch.Tensor  # (k,) the sequence advantage before HICRA
    planning_mask: torch.Tensor  # (k, T)


def is_correct(score: float) -> bool:
    """**Decision**: a response is correct when its score is at least 1, `hicra train`'s rule for
    the accuracy reward (verl's math rewards give 1 for a right answer, 0 or -1 otherwise;
    a penalty, DAPO's overlong one say, makes a right answer count as wrong, as in `hicra train`)."""
    return score >= 1.0


def config_record(settings: VerlHicraSettings, config: Any, grams_name: str, grams_count: int):
    """config.yaml: HICRA's settings under `hicra train`'s names, the model and verl's mode."""
    trainer, rollout = config.trainer, config.actor_rollout_ref.rollout
    return {
        "hicra_version": __version__,
        "engine": "verl",
        "model_name_or_path": str(config.actor_rollout_ref.model.path),
        "credit": settings.credit,
        "hicra_alpha": settings.hicra_alpha,
        "strategic_grams": settings.strategic_grams,
        "strategic_grams_resolved": {"name": grams_name, "count": grams_count},
        "fork_quantile": settings.fork_quantile,
        "gram_counting": settings.gram_counting,
        "hierarchy_metrics": settings.hierarchy_metrics,
        "rollouts_per_step": settings.rollouts_per_step,
        "num_generations": int(rollout.n),
        "verl_trainer_mode": str(trainer.v1.trainer_mode),
        "verl_project_name": str(trainer.get("project_name", "")),
        "verl_experiment_name": str(trainer.get("experiment_name", "")),
        "verl_default_local_dir": str(trainer.get("default_local_dir", "")),
    }


def rollout_rows(step: int, tagger: PlanningTagger, sample: SampledResponses) -> list[dict]:
    """rollouts.jsonl lines for the sampled rows: text and spans exactly as the tagger saw them."""
    rows = []
    for i, group in enumerate(sample.groups):
        real = sample.response_mask[i].bool()
        ids = sample.responses[i][real].tolist()
        text, spans = tagger.decode_with_spans(ids)
        score = float(sample.scores[i])
        rows.append(
            {
                RolloutField.STEP: step,
                RolloutField.GROUP: group,
                RolloutField.PROMPT: sample.prompts[i],
                RolloutField.COMPLETION: text,
                RolloutField.ANSWER: sample.answers[i],
                RolloutField.REWARD: score,
                RolloutField.REWARDS: {"score": score},
                RolloutField.CORRECT: is_correct(score),
                RolloutField.ADVANTAGE: float(sample.advantages[i]),
                RolloutField.PLANNING_SPANS: [list(s) for s in spans],
                RolloutField.LENGTH: int(real.sum()),
                RolloutField.PLANNING_TOKENS: int((sample.planning_mask[i] & real).sum()),
            }
        )
    return rows


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


class VerlRunLog:
    """The run folder of one verl run, written by the driver once per global step."""

    def __init__(self, folder: str | os.PathLike[str], record: dict[str, Any]) -> None:
        self.folder = check_run_folder(Path(folder))
        self.record = record
        self.log: RunLog | None = None
        self.lock: FolderLock | None = None
        self.pending: dict[int, StepRecord] = {}

    def _open(self, step: int) -> RunLog:
        """Create the folder at the first step; a resumed run cuts logs of steps >= `step`."""
        if self.log is None:
            folder = create_run_folder(self.folder, numbered=False)
            # one writer, as for `hicra train`: a second verl run into this folder is refused
            # before it cuts or sets aside the first one's logs; held until the driver exits
            self.lock = FolderLock(folder, "hicra run folder").acquire()
            log = RunLog(folder)
            if log.has_logs():
                if step > 1:
                    log.truncate_after(step - 1)
                else:
                    log.set_aside()
            log.write_config(self.record)
            self.log = log
        return self.log

    def wants_rollouts(self, step: int, per_step: int) -> bool:
        """Whether this step still needs its rollout sample (taken from its first mini-step)."""
        return per_step > 0 and not self.pending.get(step, StepRecord()).rollouts

    def add(self, step: int, scores: torch.Tensor, rollouts: list[dict[str, Any]]) -> None:
        """One mini-step's real responses' scores and its sampled rollouts."""
        record = self.pending.setdefault(step, StepRecord())
        record.correct += int(sum(is_correct(float(s)) for s in scores.tolist()))
        record.scored += int(scores.numel())
        record.rollouts.extend(rollouts)

    def write_step(self, step: int, metrics: dict[str, Any]) -> dict[str, float]:
        """Append the step's metrics line and rollouts; the accuracy keys (for verl's logger too)."""
        record = self.pending.pop(step, StepRecord())
        added: dict[str, float] = {}
        if record.scored:
            added[Metric.ACCURACY] = record.correct / record.scored
            added[Metric.COMPLETIONS] = float(record.scored)
        line: dict[str, Any] = {
            key: value
            for key, value in metrics.items()
            if key.startswith("hicra/") and _number(value) is not None
        }
        line.update(added)
        for ours, theirs in ((Metric.REWARD, VERL_REWARD), (Metric.LENGTH, VERL_LENGTH)):
            value = _number(metrics.get(theirs))
            if value is not None:
                line[ours] = line[theirs] = value
        log = self._open(step)
        log.log_metrics(step, line)
        log.log_rollouts(record.rollouts)
        return added
