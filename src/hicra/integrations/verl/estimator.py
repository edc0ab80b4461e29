"""The `hicra` advantage estimator: verl's GRPO, then the HICRA trainer's credit; refused elsewhere.

verl hands a registered estimator only rewards, masks, uids and the `algorithm` config: never the
response token ids or the tokenizer (`compute_advantage` in verl/trainer/ppo/ray_trainer.py), so
the estimator cannot find planning tokens itself. It computes the group-relative advantages with
verl's own GRPO function and hands them to the credit the HICRA trainer installed for this step
(which holds the step's token ids), with the rewards and prompt uids verl already read, so the
trainer need not read them again: verl then writes the credited advantages back to
TransferQueue in its own write, so the trainer needs no second write. Run by any other trainer it
would silently be plain GRPO, so it refuses with the fix in the message.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
from verl.trainer.ppo import core_algos

from hicra.errors import HicraError
from hicra.integrations.verl.settings import ESTIMATOR

TRAINER_MODES = ("hicra_sync", "hicra_colocate_async", "hicra_separate_async")

# (GRPO advantages (B, T), response mask (B, T), verl's token-level rewards (B, T), uids (B,))
# -> the advantages for the loss (B, T)
Credit = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, np.ndarray], torch.Tensor]
_OUTSIDE = object()
_step_credit: contextvars.ContextVar[Any] = contextvars.ContextVar("hicra_step_credit")


def _identity(advantages: torch.Tensor, *_: Any) -> torch.Tensor:
    return advantages


@contextlib.contextmanager
def hicra_trainer_context(credit: Credit | None = None) -> Iterator[None]:
    """While active, the `hicra` estimator runs and applies `credit` to verl's GRPO advantages
    (the HICRA trainer wraps verl's advantage step in it)."""
    token = _step_credit.set(credit or _identity)
    try:
        yield
    finally:
        _step_credit.reset(token)


def hicra_group_advantages(
    token_level_rewards: torch.Tensor,
    response_mask: torch.Tensor,
    index: np.ndarray | None = None,
    config: Any = None,
    **_: Any,
) -> tuple[torch.Tensor, torch.Tensor]:
    """verl's GRPO advantages (B, T) with the step's credit applied, and GRPO's returns.

    Honours algorithm.norm_adv_by_std_in_grpo. Only the advantages change: returns (used by a
    critic, none with GRPO) stay GRPO's.
    """
    credit = _step_credit.get(_OUTSIDE)
    if credit is _OUTSIDE:
        raise HicraError(
            f"algorithm.adv_estimator={ESTIMATOR} runs only inside the HICRA trainer, which finds "
            "the planning tokens: set trainer.v1.trainer_mode to one of "
            f"{', '.join(TRAINER_MODES)} (and trainer.use_v1=true)"
        )
    if index is None:
        raise HicraError(f"algorithm.adv_estimator={ESTIMATOR} needs the responses' prompt uids")
    normalize = True if config is None else bool(config.get("norm_adv_by_std_in_grpo", True))
    advantages, returns = core_algos.compute_grpo_outcome_advantage(
        token_level_rewards=token_level_rewards,
        response_mask=response_mask,
        index=index,
        norm_adv_by_std_in_grpo=normalize,
    )
    return credit(advantages, response_mask, token_level_rewards, index), returns


def register_estimator() -> None:
    """Register `hicra` with verl (idempotent: the same function may be registered again)."""
    core_algos.register_adv_est(ESTIMATOR)(hicra_group_advantages)
