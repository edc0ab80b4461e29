"""Cross-process sums and gathers for the hierarchy metrics and the credit thresholds.

Means are built from global sums and counts (token-weighted, never a mean of means), and
quantiles from every process's values, so a metric or a threshold is the same for any split of
one global batch over processes. `HICRATrainer` calls these through its `_reduce`,
`_gather_values` and `_global_quantile` methods, the seams a subclass wraps to observe them.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch

from hicra.hierarchy import batch_quantile

if TYPE_CHECKING:  # for type hints only
    from accelerate import Accelerator


def reduce_sum(accelerator: Accelerator, values: list[float]) -> list[float]:
    """Each value summed over processes (float64, so token counts stay exact)."""
    local = torch.tensor(values, dtype=torch.float64, device=accelerator.device)
    return accelerator.reduce(local, reduction="sum").tolist()


def gather_values(accelerator: Accelerator, values: torch.Tensor) -> torch.Tensor:
    """A 1-D tensor of every process's values (each process's own count), in rank order."""
    local = values.detach().float().reshape(-1).to(accelerator.device)
    if accelerator.num_processes == 1:
        return local
    padded = accelerator.pad_across_processes(local, dim=0, pad_index=math.nan)
    gathered = accelerator.gather(padded)
    return gathered[~torch.isnan(gathered)]


def quantile_or_none(values: torch.Tensor, quantile: float) -> float | None:
    """The quantile (linear interpolation) of gathered values; None when there are none."""
    return batch_quantile(values, quantile) if values.numel() else None


def ratio(total: float, count: float) -> float:
    """total / count, NaN (a missing value in metrics.jsonl) when nothing was counted."""
    return total / count if count else float("nan")
