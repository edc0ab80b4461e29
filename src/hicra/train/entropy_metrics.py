"""The loss-time hierarchy metrics: planning and execution entropy, and the fork overlap.

The entropies are the per-token ones TRL computes anyway in its loss forward pass. An optimizer
step's micro-batches are collected in an `EntropyWindow` and logged once, when the step's
gradients sync: entropy means are token-weighted sums over processes, and the fork overlap's
"high entropy" threshold is the quantile over every real token of the step on every process, so
neither the micro-batch size nor the number of processes changes them.
"""

from __future__ import annotations

from typing import Any

import torch

from hicra.hierarchy import fork_overlap, token_entropy_by_class
from hicra.run_folder import Metric
from hicra.train.collectives import ratio
from hicra.train.credit_step import real_tokens


class EntropyWindow:
    """One optimizer step's entropy sums and its real tokens' (entropy, planning) values."""

    def __init__(self) -> None:
        self.sums = torch.zeros(4, dtype=torch.float64)  # planning sum, count, execution sum, count
        self.tokens: list[tuple[torch.Tensor, torch.Tensor]] = []

    def add(self, inputs: dict[str, Any], entropies: torch.Tensor) -> None:
        real = real_tokens(inputs)
        planning = inputs["planning_mask"].bool() & real
        split = token_entropy_by_class(entropies, planning, real)
        self.sums += torch.tensor(
            [
                split.planning_sum,
                split.planning_tokens,
                split.execution_sum,
                split.execution_tokens,
            ],
            dtype=torch.float64,
        )
        self.tokens.append((entropies[real].float(), planning[real]))

    def take(self) -> tuple[list[float], torch.Tensor, torch.Tensor]:
        """The step's sums, entropies and planning flags (this process's); the window empties."""
        sums = self.sums.tolist()
        values = torch.cat([v for v, _ in self.tokens])
        flags = torch.cat([f for _, f in self.tokens]).float()
        self.sums.zero_()
        self.tokens = []
        return sums, values, flags


def accumulate_entropy_metrics(
    trainer: Any, inputs: dict[str, Any], entropies: torch.Tensor
) -> None:
    """Add a micro-batch to the trainer's window; at the step's end, log the step's metrics."""
    window: EntropyWindow = trainer.entropy_window
    window.add(inputs, entropies)
    mode = "train" if trainer.model.training else "eval"
    if mode == "train" and not trainer.accelerator.sync_gradients:
        return
    sums, values, flags = window.take()
    p_sum, p_n, e_sum, e_n = trainer._reduce(sums, kind="loss")
    all_values = trainer._gather_values(values, kind="fork_entropies")
    all_flags = trainer._gather_values(flags, kind="fork_planning").bool()
    fork = fork_overlap(
        all_values.unsqueeze(0),
        all_flags.unsqueeze(0),
        torch.ones_like(all_flags).unsqueeze(0),
        trainer.args.fork_quantile,
    )
    metrics = trainer._metrics[mode]
    metrics[Metric.PLANNING_ENTROPY].append(ratio(p_sum, p_n))
    metrics[Metric.EXECUTION_ENTROPY].append(ratio(e_sum, e_n))
    metrics[Metric.ENTROPY].append(ratio(p_sum + e_sum, p_n + e_n))
    metrics[Metric.FORK_PLANNING_HIGH].append(_none_nan(fork.planning_high_entropy_share))
    metrics[Metric.FORK_HIGH_PLANNING].append(_none_nan(fork.high_entropy_planning_share))


def _none_nan(value: float | None) -> float:
    return float("nan") if value is None else value
