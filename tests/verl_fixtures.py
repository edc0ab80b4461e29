"""verl test scaffolding: verl's own config, a local TransferQueue, and a step of rollouts
written the way verl's agent loop writes them. Used by tests/test_verl_plugin.py and
benchmarks/verl_advantage.py; needs the verl environment (`make setup-verl`).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Iterator
from pathlib import Path

import ray
import torch
import transfer_queue as tq
from tensordict import TensorDict
from verl.experimental.agent_loop.agent_loop import AgentLoopMetrics, AgentLoopOutput
from verl.trainer.ppo.v1 import get_trainer_cls
from verl.utils.tensordict_utils import list_of_dict_to_tensordict

GROUP = 4  # actor_rollout_ref.rollout.n in the test configs
PROMPT = "What is 3 + 4? Put the answer in \\boxed{}."
# A step's rollouts: prompt uid -> one (response text, reward, tool-output token range) a session
Rollouts = dict[str, list[tuple[str, float, tuple[int, int] | None]]]
_partitions = itertools.count()


def compose(model_dir: Path, *overrides: str, group: int = GROUP):
    """verl's own Hydra config (ppo_trainer.yaml) with command-line overrides, as main_ppo does."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module

    base = [
        f"actor_rollout_ref.model.path={model_dir}",
        f"actor_rollout_ref.rollout.n={group}",
        "data.train_batch_size=2",
        "actor_rollout_ref.actor.ppo_mini_batch_size=2",
        "trainer.device=cpu",
        "algorithm.adv_estimator=hicra",
        "trainer.v1.trainer_mode=hicra_sync",
    ]
    with initialize_config_module(config_module="verl.trainer.config", version_base=None):
        return hydra_compose(config_name="ppo_trainer", overrides=[*base, *overrides])


@contextlib.contextmanager
def local_transfer_queue() -> Iterator[None]:
    """A local Ray cluster and TransferQueue. On a 2-core machine TransferQueue's init hangs unless
    Ray has more logical CPUs than cores: its controller and storage units take one each."""
    ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False)
    try:
        tq.init()
        try:
            yield
        finally:
            tq.close()
    finally:
        ray.shutdown()


def build_trainer(model_dir: Path, *overrides: str, group: int = GROUP):
    """The trainer `trainer.v1.trainer_mode` names, with its tokenizer (no workers, no models)."""
    config = compose(model_dir, *overrides, group=group)
    trainer = get_trainer_cls(config.trainer.v1.trainer_mode)(config)
    trainer._init_tokenizer()
    trainer.global_steps = 1  # as verl's fit sets it before the first step
    return trainer


def agent_loop_output(prompt_ids, response_ids, reward, tool) -> AgentLoopOutput:
    """A finished response as verl's agent loop hands it on; `tool` (start, end): tokens of a
    tool's output, outside the response mask."""
    mask = [1] * len(response_ids)
    if tool is not None:
        mask[tool[0] : tool[1]] = [0] * (tool[1] - tool[0])
    return AgentLoopOutput(
        prompt_ids=prompt_ids,
        response_ids=response_ids,
        response_mask=mask,
        reward_score=reward,
        num_turns=2,
        metrics=AgentLoopMetrics(),
        extra_fields={"min_global_steps": 1, "max_global_steps": 1},
    )


def put_rollouts(tokenizer, rollouts: Rollouts, *, sessions_per_output: int = 1) -> str:
    """Write a step into a fresh TransferQueue partition as verl's agent loop does; its name."""
    partition = f"train-{next(_partitions)}"
    prompt_ids = tokenizer.encode(PROMPT)
    for uid, sessions in rollouts.items():
        tq.kv_put(
            key=uid,
            partition_id=partition,
            tag={"is_prompt": True, "status": "finished", "global_steps": 1, "n": len(sessions)},
        )
        for session_id, (text, reward, tool) in enumerate(sessions):
            response_ids = tokenizer.encode(text)
            for index in range(sessions_per_output):
                output = agent_loop_output(prompt_ids, response_ids, reward, tool)
                field = output.as_dict()
                field.update(uid=uid, session_id=session_id, global_steps=1)
                field["loss_mask"] = field["response_mask"]
                field["input_ids"] = torch.cat([field["prompts"], field["responses"]])
                tq.kv_batch_put(
                    keys=[f"{uid}_{session_id}_{index}"],
                    partition_id=partition,
                    fields=list_of_dict_to_tensordict([field]),
                    tags=[
                        {
                            "status": "success",
                            "prompt_len": len(prompt_ids),
                            "response_len": len(response_ids),
                            "seq_len": len(prompt_ids) + len(response_ids),
                            "global_steps": 1,
                            "min_global_steps": 1,
                            "max_global_steps": 1,
                        }
                    ],
                )
    return partition


def build_worker(trainer):
    """HICRA's agent-loop worker as verl's manager builds it, in this process (no LLM server:
    the test hands it finished outputs, as the agent loop does once the LLM has answered)."""
    from omegaconf import open_dict

    from hicra.integrations.verl.workers import TaggingAgentLoopWorker

    config = trainer.config.copy()
    with open_dict(config):  # a run names its LLM engine; no engine starts here
        config.actor_rollout_ref.rollout.name = "vllm"
    return TaggingAgentLoopWorker(config, None)


def put_rollouts_by_worker(worker, rollouts: Rollouts) -> str:
    """Write a step through the worker's real `_agent_loop_postprocess` (verl's write, then the
    tags); the partition, "train", is what verl's worker writes to; its name."""
    partition = "train"
    tokenizer = worker.tokenizer
    prompt_ids = tokenizer.encode(PROMPT)

    async def run() -> None:
        for uid, sessions in rollouts.items():
            await tq.async_kv_put(key=uid, partition_id=partition, tag={"status": "running"})
            for session_id, (text, reward, tool) in enumerate(sessions):
                output = agent_loop_output(prompt_ids, tokenizer.encode(text), reward, tool)
                await worker._agent_loop_postprocess(
                    output, False, uid=uid, session_id=session_id, global_steps=1
                )
            await tq.async_kv_put(
                key=uid,
                partition_id=partition,
                tag={
                    "is_prompt": True,
                    "status": "finished",
                    "global_steps": 1,
                    "n": len(sessions),
                },
            )

    asyncio.run(run())
    return partition


def put_worker_tags(tagger, batch, counting: str = "longest") -> None:
    """Add to a written step the fields HICRA's worker adds (`workers.TaggingAgentLoopWorker`),
    tagged the same way (`credit.tag_response`), for steps written with `put_rollouts`."""
    from hicra.integrations.verl.credit import PLANNING_FIELD, tag_response

    data = tq.kv_batch_get(
        keys=batch.keys,
        partition_id=batch.partition_id,
        select_fields=["responses", "response_mask"],
    )
    rows = []
    for ids, mask in zip(data["responses"].unbind(), data["response_mask"].unbind(), strict=True):
        rows.append({PLANNING_FIELD: tag_response(tagger, ids.tolist(), mask.tolist(), counting)})
    tq.kv_batch_put(
        keys=batch.keys, partition_id=batch.partition_id, fields=list_of_dict_to_tensordict(rows)
    )


def sample(trainer, partition: str, prompts: int):
    batch, _ = trainer.replay_buffer.sample(
        global_steps=1, partition_id=partition, batch_size=prompts
    )
    return batch


def put_entropies(batch, seed: int = 5) -> dict[str, torch.Tensor]:
    """Per-token entropies as verl's old-log-prob step stores them (response-length, nested)."""
    data = tq.kv_batch_get(
        keys=batch.keys, partition_id=batch.partition_id, select_fields=["response_mask"]
    )
    generator = torch.Generator().manual_seed(seed)
    rows = [
        torch.rand(int(n), generator=generator) * 3 for n in data["response_mask"].offsets().diff()
    ]
    nested = torch.nested.as_nested_tensor(rows, layout=torch.jagged)
    tq.kv_batch_put(
        keys=batch.keys,
        partition_id=batch.partition_id,
        fields=TensorDict({"entropy": nested}, batch_size=len(batch)),
    )
    return dict(zip(batch.keys, rows, strict=True))


def read_rows(batch, field: str) -> dict[str, torch.Tensor]:
    data = tq.kv_batch_get(keys=batch.keys, partition_id=batch.partition_id, select_fields=[field])
    return dict(zip(batch.keys, data[field].unbind(), strict=True))
