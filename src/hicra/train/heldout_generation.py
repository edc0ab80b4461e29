"""How a held-out evaluation generates with what the trainer already holds (no second copy of
the weights): Hugging Face `generate` on the trained model itself, or TRL's own vLLM engine.

The HF path unwraps the model as TRL does for its rollouts (DeepSpeed ZeRO-3 gathered, FSDP's full
parameters summoned, gradient checkpointing off), switches it to eval mode without gradients, and
restores its train mode, random state and generation config afterwards. The vLLM paths follow TRL
1.16's `VLLMGeneration` (colocate: `trainer.vllm_generation.llm`; server: its `vllm_client`) and
are UNTESTED here (no GPU).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

from hicra.errors import HicraError
from hicra.eval.sampling import Completion, Request, SamplingSettings


@contextlib.contextmanager
def policy_for_generation(trainer: Any) -> Iterator[Any]:
    """The trained model, unwrapped (DeepSpeed/FSDP as TRL does for rollouts), in eval mode with
    its random state and generation config kept: training continues exactly as without eval."""
    import torch
    from trl.models.utils import unwrap_model_for_generation

    with (
        unwrap_model_for_generation(
            trainer.model_wrapped,
            trainer.accelerator,
            gather_deepspeed3_params=trainer.args.ds3_gather_for_generation,
            gradient_checkpointing_kwargs=trainer.args.gradient_checkpointing_kwargs,
        ) as model,
        trainer._dist.summon_full_params(trainer.model_wrapped, recurse=False),
        torch.random.fork_rng(
            devices=[torch.cuda.current_device()] if torch.cuda.is_available() else []
        ),
    ):
        was_training, config = model.training, model.generation_config
        try:
            model.eval()
            yield model
        finally:
            model.generation_config = config
            model.train(was_training)


def generate_hf(
    trainer: Any, tokenizer: Any, requests: list[Request], settings: SamplingSettings
) -> list[list[Completion]]:
    """Batched HF generation with the policy itself (`hicra eval`'s HF backend on the live model)."""
    from hicra.eval.sampling import HFBackend

    if not requests:
        return []
    with policy_for_generation(trainer) as model:
        backend = HFBackend(model, tokenizer, batch_size=trainer.args.per_device_eval_batch_size)
        return backend.generate(requests, settings)


def _sync_vllm_weights(trainer: Any) -> None:
    """Push the current weights to vLLM once per step, as TRL does before generating."""
    if trainer.state.global_step != trainer._last_loaded_step:
        trainer.vllm_generation.sync_weights()
        trainer._last_loaded_step = trainer.state.global_step


def _completion(tokenizer: Any, ids: Sequence[int], max_tokens: int, eos: set[int]) -> Completion:
    ids = list(ids)
    stop = next((i for i, t in enumerate(ids) if t in eos), None)
    text = tokenizer.decode(ids if stop is None else ids[:stop], skip_special_tokens=True)
    if stop is None and len(ids) >= max_tokens:
        return Completion(text, len(ids), "length")
    return Completion(text, len(ids) if stop is None else stop + 1, "stop")


def generate_vllm(
    trainer: Any, tokenizer: Any, requests: list[Request], settings: SamplingSettings
) -> list[list[Completion]]:
    """Generation with the vLLM engine TRL holds (UNTESTED: written from TRL 1.16, no GPU here).

    Colocate: every process runs its own requests on its own engine (waking it up and putting it
    back to sleep as TRL does in sleep mode). Server: the main process sends every process's
    requests to the server and hands each process its share back.
    """
    from accelerate.utils import broadcast_object_list, gather_object

    vg = trainer.vllm_generation
    _sync_vllm_weights(trainer)
    sample = settings.temperature > 0
    params = {
        "temperature": settings.temperature,
        "top_p": settings.top_p if sample else 1.0,
        "max_tokens": settings.max_new_tokens,
    }
    eos = {tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set()
    if vg.mode == "colocate":
        if getattr(vg, "tensor_parallel_size", 1) > 1:
            raise HicraError(
                "held-out evaluation with vllm_mode='colocate' and vllm_tensor_parallel_size > 1 "
                "is not supported; use vllm_mode='server' or evaluate checkpoints with hicra eval"
            )
        if not requests:
            return []
        from vllm import SamplingParams

        if vg.enable_sleep_mode and vg._llm_weights_sleeping:
            vg.sync_weights()
        if vg.enable_sleep_mode:
            vg.llm.wake_up(tags=["kv_cache"])
        try:
            outputs = vg.llm.generate(
                [{"prompt_token_ids": r.prompt_ids} for r in requests],
                sampling_params=SamplingParams(n=requests[0].n, **params),
                use_tqdm=False,
            )
        finally:
            if vg.enable_sleep_mode:
                vg.llm.sleep(level=2)
                vg._llm_weights_sleeping = True
        return [
            [
                Completion(
                    o.text, len(o.token_ids), "length" if o.finish_reason == "length" else "stop"
                )
                for o in out.outputs
            ]
            for out in outputs
        ]
    # server mode: one client, on the main process, one call for every process's prompts
    n = requests[0].n if requests else 1  # every request of an evaluation asks for the same n
    everyone = gather_object([[r.prompt_ids for r in requests]])
    answer: list[Any] = [None]
    if trainer.accelerator.is_main_process:
        prompts = [ids for share in everyone for ids in share]
        flat = []
        if prompts:
            out = vg.vllm_client.generate(prompts=prompts, n=n, logprobs=None, **params)
            flat = out["completion_ids"]  # n completions per prompt, in prompt order
        per_process, at = [], 0
        for share in everyone:
            rows = [flat[(at + i) * n : (at + i + 1) * n] for i in range(len(share))]
            per_process.append(rows)
            at += len(share)
        answer = [per_process]
    broadcast_object_list(answer, from_process=0)
    mine = answer[0][trainer.accelerator.process_index]
    return [
        [_completion(tokenizer, ids, settings.max_new_tokens, eos) for ids in row] for row in mine
    ]
