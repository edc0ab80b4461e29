"""Credit assignment as pure functions on tensors: GRPO's group advantages and HICRA on top.

Every function takes and returns plain tensors, so it can be tested with hand-computed numbers and
wired into any trainer. The HICRA formula itself is `hicra_advantages`, a few lines below.
"""

from __future__ import annotations

from typing import Literal

import torch

from hicra.metrics import high_entropy_mask

Scale = Literal["group", "batch", "none"]


def grpo_advantages(
    rewards: torch.Tensor, group_size: int, scale: Scale = "group", eps: float = 1e-4
) -> torch.Tensor:
    """Group-relative advantages (N,): reward minus its group's mean, optionally over a std.

    `rewards` holds N = num_groups * group_size rewards, each group's G responses contiguous.
    scale="group" divides by the group's std (GRPO), "batch" by the std of all N rewards
    (TRL's scale_rewards="batch"), "none" keeps R - mean (the paper's text, Dr. GRPO).
    Stds are unbiased (as TRL's). A group whose rewards are all equal gets exact zeros.
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
    if advantages.dim() == 1:
        advantages = advantages.unsqueeze(1).expand(-1, planning_mask.shape[1])
    if advantages.shape != planning_mask.shape:
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
) -> torch.Tensor:
    """Ablation of the paper (section 5): HICRA's rule applied to the top-30%-entropy tokens.

    The threshold is the `quantile` of entropy over all real completion tokens of the batch.
    """
    high = high_entropy_mask(entropies, completion_mask, quantile)
    return hicra_advantages(advantages, high, alpha)


def hicra_entropy_length_advantages(
    advantages: torch.Tensor,
    planning_mask: torch.Tensor,
    entropies: torch.Tensor,
    completion_mask: torch.Tensor,
    correct: torch.Tensor,
    group_size: int,
    alpha: float = 0.2,
    quantile: float = 0.7,
) -> torch.Tensor:
    """The extra heuristics reported in a transcription of the official verl code (not in the paper).

    HICRA on planning tokens; in addition, within a correct response that is longer than its group's
    mean length, its non-planning tokens in that response's top 30% of entropy are scaled by
    (1 + alpha) (planning tokens already got HICRA's bonus); groups with no correct response keep
    plain GRPO advantages. `correct` is a bool tensor (B,).
    """
    out = hicra_advantages(advantages, planning_mask, alpha)
    real = completion_mask.bool()
    lengths = real.sum(dim=1).float()
    group_mean_length = lengths.view(-1, group_size).mean(dim=1).repeat_interleave(group_size)
    correct = torch.as_tensor(correct, dtype=torch.bool, device=out.device)
    group_has_correct = correct.view(-1, group_size).any(dim=1).repeat_interleave(group_size)
    for i in range(out.shape[0]):
        if not group_has_correct[i]:
            out[i] = advantages[i] if advantages.dim() == 2 else advantages[i].expand(out.shape[1])
            continue
        if correct[i] and lengths[i] > group_mean_length[i]:
            high = high_entropy_mask(entropies[i : i + 1], real[i : i + 1], quantile)[0]
            out[i] = torch.where(high & ~planning_mask[i].bool(), out[i] * (1 + alpha), out[i])
    return out
