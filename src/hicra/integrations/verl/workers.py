"""Planning tags made in verl's agent-loop workers, as each response is produced.

verl's v1 rollout writes each finished response to TransferQueue from an agent-loop worker
(`AgentLoopWorkerTQ._agent_loop_postprocess`). `HicraAgentLoopManager` starts those workers as
`HicraAgentLoopWorker`, which after verl's own write adds one field under the same key:
`hicra_planning`, the response's per-token planning mask followed by its counted gram occurrences
(`credit.PLANNING_FIELD`, `credit.tag_response`).
The driver then reads these instead of the token ids and only applies the credit
(`trainers.HicraTrainerMixin`); a step without them (another manager class) is tagged on the
driver as before. The HICRA trainers name this manager (`trainers.MANAGER_CLASS`) in
`actor_rollout_ref.rollout.agent.agent_loop_manager_class` unless the user named one.
"""

from __future__ import annotations

from typing import Any

import ray
import transfer_queue as tq
from omegaconf import DictConfig
from verl.experimental.agent_loop import AgentLoopOutput
from verl.trainer.ppo.v1 import AgentLoopManagerTQ, AgentLoopWorkerTQ
from verl.utils.tensordict_utils import list_of_dict_to_tensordict

from hicra.grams import StrategicGrams
from hicra.integrations.verl.credit import PLANNING_FIELD, tag_response
from hicra.integrations.verl.trainers import settings_from_config
from hicra.tagging import PlanningTagger

# verl's class is already a Ray actor class; Ray refuses subclasses of those, so take the original
_VerlWorker = AgentLoopWorkerTQ.__ray_metadata__.modified_class.__ray_actor_class__


class TaggingAgentLoopWorker(_VerlWorker):
    """verl's TransferQueue agent-loop worker, tagging each training response it writes."""

    def __init__(self, config: DictConfig, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, *args, **kwargs)
        settings = settings_from_config(config)  # checked by the trainer at start-up
        grams = StrategicGrams.resolve(settings.strategic_grams)
        self.hicra_tagger = PlanningTagger(grams, self.tokenizer)
        self.hicra_counting = settings.gram_counting

    async def _agent_loop_postprocess(
        self, output: AgentLoopOutput | list[AgentLoopOutput], validate: bool, **kwargs: Any
    ) -> None:
        """verl's write, then the tags under the same keys, before the session reports done
        (verl marks the prompt finished, and samples it, only after this returns)."""
        await super()._agent_loop_postprocess(output, validate, **kwargs)
        outputs = output if isinstance(output, list) else [output]
        if validate or not outputs:  # validation responses get no credit
            return
        uid, session_id = kwargs["uid"], kwargs["session_id"]
        fields = []
        for item in outputs:
            tags = tag_response(
                self.hicra_tagger, item.response_ids, item.response_mask, self.hicra_counting
            )
            fields.append({PLANNING_FIELD: tags})
        await tq.async_kv_batch_put(
            keys=[f"{uid}_{session_id}_{i}" for i in range(len(outputs))],
            fields=list_of_dict_to_tensordict(fields),
            partition_id="train",
        )


HicraAgentLoopWorker = ray.remote(TaggingAgentLoopWorker)


class HicraAgentLoopManager(AgentLoopManagerTQ):
    """verl's TransferQueue agent-loop manager, starting `HicraAgentLoopWorker`s."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.agent_loop_workers_class = HicraAgentLoopWorker
