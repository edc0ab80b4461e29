"""The credit step of a generation batch: planning tokens marked, then the registered credit rule.

TRL has generated, scored and computed the (B,) group advantages; the tagger marks planning tokens
in the completion ids (image and video token ids never count), and the credit chosen by
`args.credit` (`hicra.advantages.CREDITS`) turns the advantages into what the loss uses, given
only what it declared it needs: a control arm's mask (placebo n-grams or random tokens), or the entropies of the sampling policy (one
extra no-grad forward pass) and their cross-process quantile.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import torch

from hicra.advantages import CreditBatch
from hicra.run_folder import Metric
from hicra.train.collectives import ratio
from hicra.train.images import multimodal_inputs, without_media_tokens


def real_tokens(batch: dict[str, Any]) -> torch.Tensor:
    """The model's own completion tokens: the completion mask, minus tool outputs (TRL's tool_mask)."""
    real = batch["completion_mask"].bool()
    if "tool_mask" in batch:
        real = real & batch["tool_mask"].bool()
    return real


def planning_mask(
    trainer: Any, completion_ids: torch.Tensor, real: torch.Tensor
) -> tuple[torch.Tensor, Counter[str]]:
    """The planning tokens of the completions, and how often each strategic gram occurred."""
    counts: Counter[str] = Counter()
    planning = trainer.tagger.token_mask(
        completion_ids,
        real,
        gram_counts=counts,
        counting=trainer.args.gram_counting,
        strict=False,
    )
    planning = without_media_tokens(planning.to(real.device), completion_ids, trainer._media_ids)
    return planning, counts


def assign_credit(
    trainer: Any,
    advantages: torch.Tensor,
    planning: torch.Tensor,
    real: torch.Tensor,
    out: dict[str, Any],
    mode: str,
) -> torch.Tensor:
    """One registry lookup: the credit rule gets only what it declared it needs."""
    args = trainer.args
    entropies = threshold = None
    control: dict[str, torch.Tensor] = {}
    if trainer.control_arm is not None:  # a control arm: its mask, its share and run-long ratio
        mask = trainer.control_arm.mask(
            out["completion_ids"], real, planning, trainer.state.global_step, mode == "train"
        )
        control[trainer.control_arm.need] = mask
        marked, tokens = trainer._reduce([float(mask.sum()), float(real.sum())], "placebo")
        trainer._metrics[mode][Metric.PLACEBO_RATIO].append(ratio(marked, tokens))
        for key, value in trainer.control_arm.metrics().items() if mode == "train" else ():
            trainer._metrics[mode][key].append(value)
    if "entropies" in trainer.credit.needs:
        entropies = trainer._generation_entropies(out, mode)
        threshold = trainer._global_quantile(
            entropies[real], args.fork_quantile, kind="credit_entropies"
        )
    batch = CreditBatch(
        advantages=advantages,
        planning_mask=planning,
        completion_mask=real,
        group_size=trainer.num_generations if mode == "train" else trainer.num_generations_eval,
        alpha=args.hicra_alpha,
        quantile=args.fork_quantile,
        entropies=entropies,
        entropy_threshold=threshold,
        **control,
    )
    return trainer.credit.rule(batch)


def generation_entropies(
    trainer: Any, forward: Callable[..., Any], out: dict[str, Any], mode: str
) -> torch.Tensor:
    """Per-token entropies of the policy that sampled the batch (one extra no-grad forward).

    `forward` is TRL's own `GRPOTrainer._get_per_token_logps_and_entropies` (bound), not
    HICRATrainer's override, which keeps the loss forward's entropies for the metrics."""
    ids = torch.cat([out["prompt_ids"], out["completion_ids"]], dim=1)
    mask = torch.cat([out["prompt_mask"], out["completion_mask"]], dim=1)
    args = trainer.args
    with torch.no_grad():
        _, entropies, _ = forward(
            trainer.model,
            ids,
            mask,
            out["completion_ids"].size(1),
            batch_size=args.per_device_train_batch_size
            if mode == "train"
            else args.per_device_eval_batch_size,
            compute_entropy=True,
            **multimodal_inputs(out),  # a vision-language batch: its images
        )
    return entropies
