"""The hierarchy metrics of a generation batch, logged into TRL's metric store.

Planning-token ratio, the mean advantage of planning and execution tokens, the strategic grams'
occurrences and semantic entropy (plain and Miller-Madow), and with an accuracy reward the
accuracy, verifier time-outs and scorer errors; the training groups' pass@k. Token means are
global sums over global counts (token-weighted over every process).
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

import torch
from accelerate.utils import gather_object

from hicra.hierarchy import semantic_entropy, semantic_entropy_miller_madow
from hicra.run_folder import Metric
from hicra.train.collectives import ratio
from hicra.train.group_passk import group_pass_at_k


def log_generation_metrics(
    trainer: Any,
    mode: str,
    advantages: torch.Tensor,
    planning: torch.Tensor,
    real: torch.Tensor,
    counts: Counter[str],
) -> None:
    """One value per metric for the whole generation batch (every process)."""
    token_adv = advantages if advantages.dim() == 2 else advantages.unsqueeze(1).expand_as(real)
    token_adv = token_adv.detach().float()
    execution = real & ~planning
    accuracy = trainer._accuracy
    counts_of = accuracy.pop_counts() if accuracy is not None else {}
    scores = accuracy.last_scores if accuracy is not None else []
    n_plan, n_exec, adv_plan, adv_exec, correct, scored, timeouts, errors = trainer._reduce(
        [
            float(planning.sum()),
            float(execution.sum()),
            float(token_adv[planning].sum()),
            float(token_adv[execution].sum()),
            float(sum(score >= 1.0 for score in scores)),  # exactly correct, never partial
            float(len(scores)),
            float(counts_of.get("verify_timeouts", 0)),
            float(counts_of.get("scorer_errors", 0)),
        ],
        kind="generation",
    )
    merged: Counter[str] = Counter()
    for part in gather_object([dict(counts)]):
        merged.update(part)
    occurrences = sum(merged.values())
    metrics = trainer._metrics[mode]
    metrics[Metric.PLANNING_RATIO].append(ratio(n_plan, n_plan + n_exec))
    metrics[Metric.PLANNING_ADVANTAGE].append(ratio(adv_plan, n_plan))
    metrics[Metric.EXECUTION_ADVANTAGE].append(ratio(adv_exec, n_exec))
    metrics[Metric.GRAM_OCCURRENCES].append(float(occurrences))
    # No gram at all: the diversity is unknown (missing), not zero.
    metrics[Metric.SEMANTIC_ENTROPY].append(semantic_entropy(merged) if occurrences else math.nan)
    metrics[Metric.SEMANTIC_ENTROPY_MM].append(
        semantic_entropy_miller_madow(merged) if occurrences else math.nan
    )
    metrics[Metric.DISTINCT_GRAMS].append(float(len(merged)))
    if accuracy is not None:
        metrics[Metric.ACCURACY].append(ratio(correct, scored))
        metrics[Metric.COMPLETIONS].append(scored)
        metrics[Metric.VERIFY_TIMEOUTS].append(timeouts)
        metrics[Metric.SCORER_ERRORS].append(errors)


def log_group_pass_at_k(trainer: Any) -> None:
    """`hicra/pass@k` over the prompt groups of the whole generation batch (every process:
    TRL splits the batch into consecutive slices by rank, so groups stay contiguous), and under
    `reward_corruption` the dose the step received (`corruption_dose`)."""
    signal = trainer._accuracy
    correct = [score >= 1.0 for score in signal.last_scores]
    inverted = signal.last_inverted  # under reward_corruption: the dose, from the raw scores
    corrupting = inverted is not None and len(inverted) == len(correct)
    raw = signal.last_raw_scores if corrupting else [0.0] * len(correct)
    local = list(zip(correct, raw, inverted if corrupting else [False] * len(correct), strict=True))
    everything = gather_object(local)
    size = trainer.num_generations
    if not everything or len(everything) % size:
        return
    metrics = trainer._metrics["train"]
    for k, value in group_pass_at_k([ok for ok, _, _ in everything], size).items():
        metrics[Metric.group_pass_at(k)].append(value)
    if corrupting:
        groups, with_signal = corruption_dose([row[1:] for row in everything], size)
        metrics[Metric.INVERTED_GROUPS].append(float(groups))
        metrics[Metric.INVERTED_WITH_SIGNAL].append(float(with_signal))


def corruption_dose(rows: list[tuple[float, bool]], group_size: int) -> tuple[int, int]:
    """(inverted groups, inverted groups with a learning signal) of a batch of (real score,
    inverted) rows, groups contiguous: a group whose real scores are all equal keeps advantages of
    0 when inverted, so the positive control's harm is carried by the second count only."""
    groups = [rows[i : i + group_size] for i in range(0, len(rows), group_size)]
    inverted = [group for group in groups if group[0][1]]
    return len(inverted), sum(len({score for score, _ in group}) > 1 for group in inverted)
