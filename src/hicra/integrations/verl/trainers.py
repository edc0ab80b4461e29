"""HICRA trainers for verl's v1 trainer modes: verl's advantage step, then the credit on the ids.

One class per v1 mode (`hicra_sync`, `hicra_colocate_async`, `hicra_separate_async`), each verl's
own trainer with one step changed: `_compute_advantage` reads the responses' token ids and
entropies from TransferQueue, then runs verl's own step (KL-in-reward, rollout correction and all),
in which the `hicra` estimator hands verl's GRPO advantages, rewards and uids to the registered
credit
(`credit.assign_step_credit`) and verl writes the credited advantages back; the hierarchy metrics
join verl's step metrics, and the step's line goes to the run folder (`run_log`).

verl switches behaviour on the mode's name (`trainer_mode == "sync"`, the `trainer.v1.<mode>`
section), so the trainer sets `trainer.v1.trainer_mode` back to verl's mode before verl reads it.
"""

from __future__ import annotations

import logging
from dataclasses import fields
from typing import Any, ClassVar

import numpy as np
import torch
import transfer_queue as tq
from omegaconf import DictConfig, open_dict
from transfer_queue import KVBatchMeta
from verl.trainer.config import AlgoConfig
from verl.trainer.ppo.v1.trainer_base import register_trainer
from verl.trainer.ppo.v1.trainer_colocate_async import PPOTrainerColocateAsync
from verl.trainer.ppo.v1.trainer_separate_async import PPOTrainerSeparateAsync
from verl.trainer.ppo.v1.trainer_sync import PPOTrainerSync

from hicra.advantages import get_credit
from hicra.errors import HicraError
from hicra.grams import StrategicGrams
from hicra.integrations.verl.credit import (
    PLANNING_FIELD,
    StepResponses,
    assign_step_credit,
    hierarchy_metrics,
    sequence_advantages,
)
from hicra.integrations.verl.estimator import hicra_trainer_context
from hicra.integrations.verl.run_log import (
    SampledResponses,
    VerlRunLog,
    config_record,
    rollout_rows,
    run_folder_path,
)
from hicra.integrations.verl.settings import ESTIMATOR, VerlHicraSettings, read_settings
from hicra.tagging import PlanningTagger

logger = logging.getLogger(__name__)
# the agent-loop manager whose workers tag the responses (workers.py; a name: verl loads it)
MANAGER_CLASS = "hicra.integrations.verl.workers.HicraAgentLoopManager"


def settings_from_config(config: DictConfig) -> VerlHicraSettings:
    """HICRA's settings from a whole verl config; every mistake is a one-line HicraError."""
    mode = config.trainer.v1.trainer_mode
    estimator = config.algorithm.adv_estimator
    if estimator != ESTIMATOR:
        raise HicraError(
            f"trainer.v1.trainer_mode={mode} applies HICRA on top of algorithm.adv_estimator="
            f"{ESTIMATOR}, got {estimator!r}; for a GRPO baseline through the same trainer set "
            "+algorithm.credit=grpo"
        )
    correction = config.algorithm.get("rollout_correction") or {}
    return read_settings(
        config.algorithm,
        engine_keys={f.name for f in fields(AlgoConfig)} | {"_target_"},
        entropies_available=not correction.get("bypass_mode", False),
    )


def check_one_output_per_session(keys: list[str]) -> None:
    """verl broadcasts a session's advantage over several outputs only for estimator "grpo"."""
    for key in keys:
        parts = key.rsplit("_", 2)
        if len(parts) == 3 and parts[2] != "0":
            raise HicraError(
                f"the agent loop returned several outputs for one session (TransferQueue key "
                f"{key!r}); verl broadcasts a session's advantage over its outputs only for "
                f"adv_estimator=grpo, so adv_estimator={ESTIMATOR} supports one output per session"
            )


class HicraTrainerMixin:
    """The HICRA step on top of one of verl's v1 trainers (listed first among the bases)."""

    base_mode: ClassVar[str]
    config: DictConfig
    tokenizer: Any

    def __init__(self, config: DictConfig) -> None:
        self.hicra_mode = str(config.trainer.v1.trainer_mode)
        self.hicra_settings = settings_from_config(config)
        self.hicra_credit = get_credit(self.hicra_settings.credit)
        self.hicra_grams = StrategicGrams.resolve(self.hicra_settings.strategic_grams)
        folder = run_folder_path(
            config.trainer.get("default_local_dir"), self.hicra_settings.output_dir
        )
        record = config_record(
            self.hicra_settings, config, self.hicra_grams.name, len(self.hicra_grams)
        )
        self.hicra_run = VerlRunLog(folder, record)  # checked now, written from the first step
        agent = config.actor_rollout_ref.rollout.get("agent", {})
        with open_dict(config):
            config.trainer.v1.trainer_mode = self.base_mode
            if not agent.get("agent_loop_manager_class"):  # tag in verl's workers (workers.py)
                config.actor_rollout_ref.rollout.agent.agent_loop_manager_class = MANAGER_CLASS
        super().__init__(config)  # type: ignore[call-arg]
        logger.info(
            "HICRA on verl (%s as verl's %s): %s, %d strategic grams (%s)",
            self.hicra_mode,
            self.base_mode,
            self.hicra_settings,
            len(self.hicra_grams),
            self.hicra_grams.name,
        )

    def _init_tokenizer(self) -> None:
        super()._init_tokenizer()  # type: ignore[misc]
        self.hicra_tagger = PlanningTagger(self.hicra_grams, self.tokenizer)

    def _hicra_fields(self, tagged: bool = True) -> list[str]:
        """The fields HICRA reads besides verl's own read: each field costs the driver about as
        much as the next, per row (benchmarks/verl_advantage.py), so verl's uids and rewards
        come from its estimator call instead; the scores are read only when verl's rewards
        carry a KL penalty. `tagged`: the workers' planning masks (and gram counts, for the
        metrics) instead of the token ids, when `HicraAgentLoopManager` runs the rollout."""
        if (
            tagged
            and self.config.actor_rollout_ref.rollout.agent.get("agent_loop_manager_class")
            == MANAGER_CLASS
        ):
            wanted = [PLANNING_FIELD]  # with the gram occurrences, in one field
        else:
            wanted = ["responses"]
        if "entropies" in self.hicra_credit.needs or self.hicra_settings.hierarchy_metrics:
            wanted.append("entropy")  # absent in bypass mode: TransferQueue skips missing fields
        if self.config.algorithm.use_kl_in_reward:
            wanted.append("rm_scores")
        return wanted

    def _compute_advantage(self, batch: KVBatchMeta, metrics: dict) -> KVBatchMeta:
        """verl's advantage step, with the credit applied by the `hicra` estimator inside it.

        One extra TransferQueue read (the responses' ids and entropies) before verl's step;
        verl's own write stores the credited advantages.
        """
        check_one_output_per_session(batch.keys)
        padded = self._hicra_read(batch)
        padding = torch.tensor([bool(tag.get("is_padding", False)) for tag in batch.tags])
        done: dict[str, Any] = {}

        def credit(
            advantages: torch.Tensor,
            response_mask: torch.Tensor,
            rewards: torch.Tensor,
            uids: np.ndarray,
        ) -> torch.Tensor:
            read = padded.get("responses", None)
            if read is None:  # the workers' tags: a row holds more than the response's tokens
                read = padded[PLANNING_FIELD][:, : advantages.shape[1]]
            if advantages.shape[0] != read.shape[0] or advantages.shape[1] < read.shape[1]:
                raise HicraError(
                    f"verl's advantages have shape {tuple(advantages.shape)}, the responses read "
                    f"from TransferQueue {tuple(read.shape)}"
                )
            step = StepResponses(
                responses=padded.get("responses", None),
                response_mask=response_mask,  # verl's, after its rollout correction
                advantages=advantages,
                uids=[str(uid) for uid in uids],
                padding=padding,
                entropies=padded.get("entropy", None),
                worker_tags=padded.get(PLANNING_FIELD, None),
            )
            done["step"] = step
            # a response's score: verl's reward, unless it holds a KL penalty (then read)
            scores = padded.get("rm_scores", None)
            done["scores"] = (rewards if scores is None else scores).sum(dim=1)
            done["result"] = assign_step_credit(
                step,
                self.hicra_credit,
                self.hicra_tagger,
                self.hicra_settings,
                group_size=int(self.config.actor_rollout_ref.rollout.n),
            )
            return done["result"].advantages

        with hicra_trainer_context(credit):
            batch = super()._compute_advantage(batch, metrics)  # type: ignore[misc]
        if "result" not in done:
            raise HicraError(
                f"verl's advantage step did not call algorithm.adv_estimator={ESTIMATOR}"
            )
        step, result = done["step"], done["result"]
        if self.hicra_settings.hierarchy_metrics:
            metrics.update(hierarchy_metrics(step, result, self.hicra_settings.fork_quantile))
        self._hicra_record(batch, step, result.planning_mask, done["scores"])
        return batch

    def _hicra_read(self, batch: KVBatchMeta) -> Any:
        """The step's fields HICRA reads, padded; the token ids when the workers' tags are
        absent (TransferQueue skips a missing field), so the driver tags them itself."""
        fields = self._hicra_fields()

        def read(select: list[str]) -> Any:
            data = tq.kv_batch_get(
                keys=batch.keys, partition_id=batch.partition_id, select_fields=select
            )
            return data.to_padded_tensor()

        padded = read(fields)
        if PLANNING_FIELD in fields and PLANNING_FIELD not in padded.keys():  # noqa: SIM118 (a TensorDict)
            logger.warning(
                "the step's responses carry no %s; tagging on the driver", PLANNING_FIELD
            )
            padded = read(self._hicra_fields(tagged=False))
        return padded

    def _hicra_record(
        self, batch: KVBatchMeta, step: StepResponses, planning: torch.Tensor, scores: torch.Tensor
    ) -> None:
        """Keep the mini-step's scores and, once a step, a few whole prompt groups for the log."""
        global_step = int(self.global_steps)  # type: ignore[attr-defined]
        real = ~step.padding
        rollouts = []
        per_step = self.hicra_settings.rollouts_per_step
        if self.hicra_run.wants_rollouts(global_step, per_step):
            flags = real.tolist()  # one conversion, not a tensor index per row
            chosen = sorted({uid for uid, keep in zip(step.uids, flags, strict=True) if keep})
            chosen = chosen[:per_step]
            rows = [i for i, keep in enumerate(flags) if keep and step.uids[i] in chosen]
            rows.sort(key=lambda i: (chosen.index(step.uids[i]), batch.keys[i]))
            rollouts = rollout_rows(
                global_step,
                self.hicra_tagger,
                self._hicra_sample(batch, step, planning, scores, rows, chosen),
            )
        self.hicra_run.add(global_step, scores[real], rollouts)

    def _hicra_sample(
        self,
        batch: KVBatchMeta,
        step: StepResponses,
        planning: torch.Tensor,
        scores: torch.Tensor,
        rows: list[int],
        chosen: list[str],
    ) -> SampledResponses:
        """The sampled rows with their prompts and gold answers (one small TransferQueue read)."""
        data = tq.kv_batch_get(
            keys=[batch.keys[i] for i in rows],
            partition_id=batch.partition_id,
            select_fields=["prompts", "reward_model", "responses"],
        )
        prompts = [
            self.tokenizer.decode(ids, skip_special_tokens=True) for ids in data["prompts"].unbind()
        ]
        reward_model = data.get("reward_model", None)
        answers = (
            [item.get("ground_truth") for item in reward_model.tolist()]
            if reward_model is not None
            else [None] * len(rows)
        )
        index = torch.tensor(rows, dtype=torch.long)
        return SampledResponses(
            groups=[chosen.index(step.uids[i]) for i in rows],
            prompts=prompts,
            answers=answers,
            responses=_pad_to(data.to_padded_tensor()["responses"], step.response_mask.shape[1]),
            response_mask=step.response_mask[index],
            scores=scores[index],
            advantages=sequence_advantages(step.advantages[index], step.response_mask[index]),
            planning_mask=planning[index],
        )

    def _compute_metrics(self, batch: KVBatchMeta, metrics: dict, *args: Any, **kwargs: Any):
        """verl's step metrics, then the step's line in the hicra run folder (and its accuracy)."""
        result = super()._compute_metrics(batch, metrics, *args, **kwargs)  # type: ignore[misc]
        metrics.update(self.hicra_run.write_step(int(self.global_steps), metrics))  # type: ignore[attr-defined]
        return result


def _pad_to(rows: torch.Tensor, width: int) -> torch.Tensor:
    """(k, t) right-padded with zeros to (k, width): a few rows read on their own are narrower."""
    return torch.nn.functional.pad(rows, (0, width - rows.shape[1]))


@register_trainer("hicra_sync")
class HicraTrainerSync(HicraTrainerMixin, PPOTrainerSync):
    """verl's synchronous trainer with HICRA (trainer.v1.trainer_mode=hicra_sync)."""

    base_mode = "sync"


@register_trainer("hicra_colocate_async")
class HicraTrainerColocateAsync(HicraTrainerMixin, PPOTrainerColocateAsync):
    """verl's colocated asynchronous trainer with HICRA (hicra_colocate_async)."""

    base_mode = "colocate_async"


@register_trainer("hicra_separate_async")
class HicraTrainerSeparateAsync(HicraTrainerMixin, PPOTrainerSeparateAsync):
    """verl's separated asynchronous trainer with HICRA (hicra_separate_async)."""

    base_mode = "separate_async"
