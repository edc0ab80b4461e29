"""The `hicra` advantage estimator: verl's GRPO, refused outside the HICRA trainer.

verl hands a registered estimator only rewards, masks, uids and the `algorithm` config: never the
response token ids or the tokenizer (`compute_advantage` in verl/trainer/ppo/ray_trainer.py), so
the estimator cannot find planning tokens. It computes the group-relative advantages with verl's
own GRPO function; the HICRA trainer's `_compute_advantage` then applies the credit. Run by any
other trainer it would silently be plain GRPO, so it refuses with the fix in the message.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from verl.trainer.ppo import core_algos

from hicra.errors import HicraError
from hicra.integrations.verl.settings import ESTIMATOR

TRAINER_MODES = ("hicra_sync", "hicra_colocate_async", "hicra_separate_async")

_inside_hicra_trainer: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "inside_hicra_trainer", default=False
)


@contextlib.contextmanager
def hicra_trainer_context() -> Iterator[None]:
    """While active, the `hicra` estimator runs (the HICRA trainer wraps verl's advantage step)."""
    token = _inside_hicra_trainer.set(True)
    try:
        yield
    finally:
        _inside_hicra_trainer.reset(token)


def hicra_group_advantages(
    token_level_rewards: torch.Tensor,
    response_mask: torch.Tensor,
    index: np.ndarray | None = None,
    config: Any = None,
    **_: Any,
) -> tuple[torch.Tensor, torch.Tensor]:
    """verl's GRPO advantages and returns (B, T), honouring algorithm.norm_adv_by_std_in_grpo."""
    if not _inside_hicra_trainer.get():
        raise HicraError(
            f"algorithm.adv_estimator={ESTIMATOR} runs only inside the HICRA trainer, which finds "
            "the planning tokens: set trainer.v1.trainer_mode to one of "
            f"{', '.join(TRAINER_MODES)} (and trainer.use_v1=true)"
        )
    if index is None:
        raise HicraError(f"algorithm.adv_estimator={ESTIMATOR} needs the responses' prompt uids")
    normalize = True if config is None else bool(config.get("norm_adv_by_std_in_grpo", True))
    return core_algos.compute_grpo_outcome_advantage(
        token_level_rewards=token_level_rewards,
        response_mask=response_mask,
        index=index,
        norm_adv_by_std_in_grpo=normalize,
    )


def register_estimator() -> None:
    """Register `hicra` with verl (idempotent: the same function may be registered again)."""
    core_algos.register_adv_est(ESTIMATOR)(hicra_group_advantages)
