"""Credit assignment as pure functions on tensors, and the registry the trainer dispatches on.

Every credit variant is one pure function over a `CreditBatch`, registered with `@register_credit`
(as verl's `core_algos.py` registers its advantage estimators), which also records what the
variant needs (token entropies, correctness, whole prompt groups on each process) and a one-line
description. The CLI's choices and help, config validation and the trainer's dispatch all come
from `CREDITS`. The HICRA formula itself is `hicra_advantages`, a few lines below.

Adding a variant: write `@register_credit("name", description=...) def f(batch) -> Tensor`, and a
test with hand-computed numbers. Nothing else changes (docs/architecture.md).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch

from hicra.errors import HicraError
from hicra.hierarchy import high_entropy_mask

Scale = Literal["group", "batch", "none"]


def grpo_advantages(
    rewards: torch.Tensor, group_size: int, scale: Scale = "group", eps: float = 1e-4
) -> torch.Tensor:
    """Group-relative advantages (N,): reward minus its group's mean, optionally over a std.

    `rewards` holds N = num_groups * group_size rewards, each group's G responses contiguous.
    scale="group" divides by the group's std (GRPO), "batch" by the std of all N rewards
    (TRL's scale_rewards="batch"), "none" keeps R - mean (the paper's text, Dr. GRPO).
    Stds are unbiased (as TRL's). A group whose rewards are all equal gets exact zeros.

    The trainer does not call this: TRL's GRPOTrainer computes the group advantages itself and
    hicra starts from those (so credit="grpo" is bitwise TRL). It is the reference for the tests
    and for engines that hand hicra raw rewards.
    """
    rewards = torch.as_tensor(rewards)
    if rewards.dim() != 1:
        raise ValueError(f"rewards must be 1-D (N,), got shape {tuple(rewards.shape)}")
    if group_size < 1 or rewards.numel() % group_size:
        raise ValueError(
            f"{rewards.numel()} rewards cannot be split into groups of {group_size}: "
            "the reward count must be a multiple of the group size"
        )
    if scale not in ("group", "batch", "none"):
        raise ValueError(f"scale must be 'group', 'batch' or 'none', got {scale!r}")
    rewards = rewards.float()
    grouped = rewards.view(-1, group_size)
    centred = grouped - grouped.mean(dim=1, keepdim=True)
    constant = (grouped == grouped[:, :1]).all(dim=1, keepdim=True)
    centred = centred.masked_fill(constant, 0.0)
    if scale == "group" and group_size > 1:
        centred = centred / (grouped.std(dim=1, keepdim=True) + eps)
    elif scale == "batch" and rewards.numel() > 1:
        centred = centred / (rewards.std() + eps)
    return centred.reshape(-1)


def hicra_advantages(
    advantages: torch.Tensor, planning_mask: torch.Tensor, alpha: float = 0.2
) -> torch.Tensor:
    """HICRA (arXiv 2509.03646, eq. 4): planning tokens get A + alpha*|A|, other tokens A.

    For a correct response (A > 0) planning tokens are amplified to A(1 + alpha); for a failed one
    (A < 0) their penalty is dampened to A(1 - alpha). `advantages` is (B,) or (B, T); returns (B, T).
    """
    if not 0.0 <= alpha < 1.0:
        raise ValueError(f"HICRA alpha must be in [0, 1), got {alpha}")
    planning_mask = torch.as_tensor(planning_mask, dtype=torch.bool, device=advantages.device)
    if planning_mask.dim() != 2:
        raise ValueError(f"planning_mask must be (B, T), got shape {tuple(planning_mask.shape)}")
    if advantages.dim() == 1:  # (B, 1): the rule runs once a response, torch.where broadcasts
        advantages = advantages.unsqueeze(1)
    if advantages.shape not in (planning_mask.shape, (planning_mask.shape[0], 1)):
        raise ValueError(
            f"advantages {tuple(advantages.shape)} and planning_mask "
            f"{tuple(planning_mask.shape)} do not match"
        )
    return torch.where(planning_mask, advantages + alpha * advantages.abs(), advantages)


def high_entropy_advantages(
    advantages: torch.Tensor,
    entropies: torch.Tensor,
    completion_mask: torch.Tensor,
    alpha: float = 0.2,
    quantile: float = 0.7,
    threshold: float | None = None,
) -> torch.Tensor:
    """Ablation of the paper (section 5): HICRA's rule applied to the top-30%-entropy tokens.

    A token is high-entropy when its entropy is at or above `threshold`; by default the `quantile`
    of entropy over all real completion tokens given. The trainer passes the quantile over the
    whole generation batch gathered from every process, so the split does not change it.
    """
    if threshold is None:
        high = high_entropy_mask(entropies, completion_mask, quantile)
    else:
        high = completion_mask.bool() & (entropies.detach().float() >= threshold)
    return hicra_advantages(advantages, high, alpha)


def response_entropy_thresholds(
    entropies: torch.Tensor, completion_mask: torch.Tensor, quantile: float = 0.7
) -> torch.Tensor:
    """Per response (B, 1): the entropy ranked `int(quantile * n)` of its n real tokens (ascending).

    The official code's `topk_threshold(k=0.3)` as transcribed in TRL PR #4997; a token is "higher
    entropy" when strictly above it. A response without real tokens gets +inf (no token is above).
    """
    real = completion_mask.bool()
    out = torch.full((entropies.shape[0], 1), float("inf"), device=entropies.device)
    for row in range(entropies.shape[0]):
        values = torch.sort(entropies[row][real[row]].detach().float()).values
        if values.numel():
            out[row, 0] = values[min(int(quantile * values.numel()), values.numel() - 1)]
    return out


def hicra_entropy_length_advantages(
    advantages: torch.Tensor,
    planning_mask: torch.Tensor,
    entropies: torch.Tensor,
    completion_mask: torch.Tensor,
    group_size: int,
    alpha: float = 0.2,
    quantile: float = 0.7,
) -> torch.Tensor:
    """The heuristics of the official verl code, as transcribed in TRL PR #4997 (not in the paper).

    Per prompt group with at least one response of advantage A > 0 (the code's "correct"):
    planning tokens of every response, and in each response with A > 0 that is longer than its
    group's mean length the tokens above that response's entropy threshold
    (`response_entropy_thresholds`), are multiplied by (1 + alpha*sign(A)) (once, also when both).
    Groups with no A > 0 keep GRPO's advantages untouched, planning tokens included; with
    mean-centred advantages such a group has A = 0 everywhere, so nothing is lost. `advantages` is
    the sequence-level (B,); returns (B, T).
    """
    if advantages.dim() != 1:
        raise ValueError(f"advantages must be (B,), got shape {tuple(advantages.shape)}")
    real = completion_mask.bool()
    batch, width = real.shape
    if group_size < 1 or batch % group_size:
        raise ValueError(f"{batch} responses cannot be split into groups of {group_size}")
    sequence = advantages.float()
    positive = sequence > 0
    lengths = real.sum(dim=1).float()
    group_mean_length = lengths.view(-1, group_size).mean(dim=1).repeat_interleave(group_size)
    group_has_positive = positive.view(-1, group_size).any(dim=1).repeat_interleave(group_size)
    amplified_rows = positive & (lengths > group_mean_length)
    higher = entropies.detach().float() > response_entropy_thresholds(entropies, real, quantile)
    high = real & higher & amplified_rows.unsqueeze(1)
    scaled = (high | (planning_mask.bool() & real)) & group_has_positive.unsqueeze(1)
    token = sequence.unsqueeze(1).expand(batch, width)
    return torch.where(scaled, token * (1 + alpha * torch.sign(token)), token)


def random_token_mask(
    planning_mask: torch.Tensor, completion_mask: torch.Tensor, generator: torch.Generator
) -> torch.Tensor:
    """The random-tokens control: in each response, as many tokens as it has planning tokens, drawn
    uniformly among its real tokens that are not planning tokens (all of those when there are fewer).

    So every response keeps its own planning-token ratio and no token is both planning and
    control. `generator` (a CPU `torch.Generator`) makes the draw reproducible. Returns (B, T) bool.
    """
    real = torch.as_tensor(completion_mask).bool().cpu()
    planning = torch.as_tensor(planning_mask).bool().cpu() & real
    if planning.shape != real.shape or planning.dim() != 2:
        raise ValueError(
            f"planning_mask {tuple(planning.shape)} and completion_mask {tuple(real.shape)} "
            "must be the same (B, T) shape"
        )
    eligible = real & ~planning
    wanted = planning.sum(dim=1, keepdim=True)
    scores = torch.rand(real.shape, generator=generator)
    scores = scores.masked_fill(~eligible, 2.0)  # ineligible tokens sort last
    rank = scores.argsort(dim=1).argsort(dim=1)  # each token's place in its row's random order
    mask = eligible & (rank < wanted)
    return mask.to(torch.as_tensor(completion_mask).device)


# --------------------------------------------------------------------------- the credit registry
NEEDS = ("entropies", "whole_groups", "placebo_mask", "random_mask")


@dataclass(frozen=True)
class CreditBatch:
    """What a credit rule may read for one generation batch (one process, one device).

    Completions of a prompt group are contiguous. The optional fields are filled only for rules
    that declare they need them ("entropies": the sampling policy's per-token entropies and the
    `quantile` of entropy over the whole generation batch of every process).
    """

    advantages: torch.Tensor  # (B,) TRL's group advantages
    planning_mask: torch.Tensor  # (B, T) bool: tokens overlapping a strategic gram
    completion_mask: torch.Tensor  # (B, T) bool: the model's own completion tokens
    group_size: int
    alpha: float = 0.2
    quantile: float = 0.7  # "high entropy": at or above this quantile (0.7: the top 30%)
    entropies: torch.Tensor | None = None  # (B, T)
    entropy_threshold: float | None = None  # the quantile over the global batch
    placebo_mask: torch.Tensor | None = None  # (B, T) bool: tokens of the placebo n-grams
    random_mask: torch.Tensor | None = None  # (B, T) bool: `random_token_mask` of the batch


@dataclass(frozen=True)
class Credit:
    """A registered credit variant: its rule, what it needs, and what it does in one line."""

    name: str
    rule: Callable[[CreditBatch], torch.Tensor]
    description: str
    needs: frozenset[str]
    token_level: bool  # False: every token of a response keeps the response's advantage


CREDITS: dict[str, Credit] = {}


def register_credit(
    name: str, *, description: str, needs: tuple[str, ...] = (), token_level: bool = True
) -> Callable[[Callable[[CreditBatch], torch.Tensor]], Callable[[CreditBatch], torch.Tensor]]:
    """Register a credit rule under `name` (a decorator)."""
    unknown = set(needs) - set(NEEDS)
    if unknown:
        raise ValueError(f"credit {name!r}: unknown needs {sorted(unknown)}; known: {NEEDS}")

    def register(
        rule: Callable[[CreditBatch], torch.Tensor],
    ) -> Callable[[CreditBatch], torch.Tensor]:
        if name in CREDITS:
            raise ValueError(f"credit {name!r} is registered twice")
        CREDITS[name] = Credit(name, rule, description, frozenset(needs), token_level)
        return rule

    return register


def get_credit(name: str) -> Credit:
    """The registered credit called `name`; an unknown name is an error listing the known ones."""
    if name not in CREDITS:
        raise HicraError(f"unknown credit {name!r}; choose from {', '.join(CREDITS)}")
    return CREDITS[name]


def assign_credit(name: str, batch: CreditBatch) -> torch.Tensor:
    """Advantages for the loss: (B,) for sequence-level credits, else (B, T)."""
    credit = get_credit(name)
    if "entropies" in credit.needs and batch.entropies is None:
        raise ValueError(f"credit {name!r} needs the token entropies (CreditBatch.entropies)")
    if "placebo_mask" in credit.needs and batch.placebo_mask is None:
        raise ValueError(f"credit {name!r} needs the placebo mask (CreditBatch.placebo_mask)")
    if "random_mask" in credit.needs and batch.random_mask is None:
        raise ValueError(f"credit {name!r} needs the random-token mask (CreditBatch.random_mask)")
    return credit.rule(batch)


@register_credit(
    "grpo",
    description="TRL's GRPO unchanged: every token of a response gets the response's advantage",
    token_level=False,
)
def grpo_credit(batch: CreditBatch) -> torch.Tensor:
    return batch.advantages


@register_credit(
    "hicra", description="planning tokens get A + alpha*|A|, others A (the paper's rule, eq. 4)"
)
def hicra_credit(batch: CreditBatch) -> torch.Tensor:
    return hicra_advantages(batch.advantages, batch.planning_mask, batch.alpha)


@register_credit(
    "high_entropy",
    description="the paper's ablation: HICRA's rule on the tokens at or above the fork_quantile "
    "of entropy over the whole generation batch",
    needs=("entropies",),
)
def high_entropy_credit(batch: CreditBatch) -> torch.Tensor:
    threshold = batch.entropy_threshold
    if threshold is None:  # no real token anywhere: nothing is high-entropy
        threshold = float("inf")
    return high_entropy_advantages(
        batch.advantages, batch.entropies, batch.completion_mask, batch.alpha, threshold=threshold
    )


@register_credit(
    "hicra_entropy_length",
    description="HICRA plus the official code's entropy and length heuristics (as transcribed in "
    "TRL PR #4997): per-response high-entropy tokens of long A>0 responses also scaled",
    needs=("entropies", "whole_groups"),
)
def hicra_entropy_length_credit(batch: CreditBatch) -> torch.Tensor:
    return hicra_entropy_length_advantages(
        batch.advantages,
        batch.planning_mask,
        batch.entropies,
        batch.completion_mask,
        batch.group_size,
        batch.alpha,
        batch.quantile,
    )


@register_credit(
    "placebo",
    description="the paper's placebo control: HICRA's rule on the tokens of random frequent "
    "n-grams that are not strategic grams, as many tokens as the real grams mark",
    needs=("placebo_mask",),
)
def placebo_credit(batch: CreditBatch) -> torch.Tensor:
    return hicra_advantages(batch.advantages, batch.placebo_mask, batch.alpha)


@register_credit(
    "random_tokens",
    description="the simplest control: HICRA's rule on random non-planning tokens, as many in "
    "each response as it has planning tokens (drawn anew each batch, seeded by the run's seed)",
    needs=("random_mask",),
)
def random_tokens_credit(batch: CreditBatch) -> torch.Tensor:
    return hicra_advantages(batch.advantages, batch.random_mask, batch.alpha)
