"""One verl step's credit assignment and hierarchy metrics, as functions on padded tensors.

The HICRA trainer reads the step's responses from TransferQueue and hands them here: the planning
mask comes from the same `PlanningTagger`, the advantages from the same registered credit rule
(`hicra.advantages.CREDITS`) as on the TRL path, so both engines share one implementation of
the formula. Nothing here imports verl or trl.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from hicra.advantages import Credit, CreditBatch
from hicra.errors import HicraError
from hicra.hierarchy import (
    batch_quantile,
    count,
    fork_overlap,
    masked_values,
    semantic_entropy,
    semantic_entropy_miller_madow,
    token_entropy_by_class,
)
from hicra.integrations.verl.settings import VerlHicraSettings
from hicra.run_folder import Metric
from hicra.tagging import PlanningTagger

PLANNING_FIELD = "hicra_planning"  # TransferQueue field: a response's planning mask (workers.py)
# TransferQueue field: a response's counted gram occurrences, each as its gram's index + 1, after
# a leading 0 (a row is never empty; 0 is also the padding value of a padded read). A tensor
# field: TransferQueue reads a non-tensor one (a dict a row) at about twice the cost per row.
GRAMS_FIELD = "hicra_grams"


def tag_response(
    tagger: PlanningTagger, ids: Sequence[int], mask: Sequence[int], counting: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """One response's planning mask (T,) and gram occurrences (`GRAMS_FIELD`), as the driver tags
    a step's rows: the tagger finds grams within a row only, so a step's masks and summed counts
    are those of `PlanningTagger.token_mask` on the whole step."""
    counts: Counter[str] = Counter()
    planning = tagger.token_mask(
        [list(ids)], [list(mask)], gram_counts=counts, counting=counting, strict=False
    )[0]
    names = tagger.grams.grams
    occurrences = [0]
    for name, times in counts.items():
        occurrences += [names.index(name) + 1] * times
    return planning, torch.tensor(occurrences, dtype=torch.int32)


def count_occurrences(
    occurrences: torch.Tensor, padding: torch.Tensor, names: Sequence[str]
) -> Counter[str]:
    """The step's gram counts from the workers' (B, K) occurrences (`GRAMS_FIELD`), padding rows
    (verl's, which carry a copy of a real row's fields) left out."""
    kept = occurrences[~padding].flatten().long()
    totals = torch.bincount(kept, minlength=len(names) + 1)[1:]
    return Counter({names[i]: int(totals[i]) for i in totals.nonzero().flatten().tolist()})


@dataclass(frozen=True)
class StepResponses:
    """A step's responses as the driver holds them, right-padded to one width T.

    `advantages` are the estimator's (verl's GRPO: a response's advantage on each of its tokens).
    `response_mask` marks the model's own tokens (tool outputs of multi-turn loops are 0).
    `padding` marks rows verl adds to fill a batch (no response tokens, a shared fake uid).
    `planning` and `gram_occurrences`, when verl's workers tagged the responses (workers.py), replace
    the driver's tagging; then `responses` may be None.
    """

    responses: torch.Tensor | None  # (B, T) token ids
    response_mask: torch.Tensor  # (B, T)
    advantages: torch.Tensor  # (B, T)
    uids: list[str]  # the prompt each response answers
    padding: torch.Tensor  # (B,) bool
    entropies: torch.Tensor | None = None  # (B, T): the old policy's, when verl computed them
    planning: torch.Tensor | None = None  # (B, T): tagged in verl's workers
    gram_occurrences: torch.Tensor | None = None  # (B, K): `GRAMS_FIELD`, from the workers


@dataclass(frozen=True)
class StepCredit:
    """The advantages for the loss (B, T) and what the metrics need."""

    advantages: torch.Tensor
    planning_mask: torch.Tensor  # (B, T) bool
    gram_counts: Counter[str]


def sequence_advantages(
    token_advantages: torch.Tensor, response_mask: torch.Tensor
) -> torch.Tensor:
    """(B,): each response's advantage, read at its first token (0 for a response with none).

    An outcome estimator gives every token of a response the same value, so reading one token is
    exact where a mean over the tokens would round.
    """
    real = response_mask.bool()
    if real.device.type == "cpu":  # numpy's argmax reads the bools in place; torch's copies
        first = torch.from_numpy(np.argmax(real.numpy(), axis=1))
    else:
        first = real.int().argmax(dim=1)
    values = token_advantages.gather(1, first.unsqueeze(1)).squeeze(1)
    return torch.where(real.any(dim=1), values, torch.zeros_like(values))


def _rows(step: StepResponses, credit: Credit, group_size: int) -> torch.Tensor | slice:
    """The rows the credit sees: the real ones, grouped by prompt when the credit compares groups.

    All rows in their order (a step without padding, its groups contiguous) are `slice(None)`,
    so that the (B, T) tensors are handed on as views, not copied.
    """
    rows = torch.nonzero(~step.padding, as_tuple=False).squeeze(1)
    if "whole_groups" not in credit.needs:
        return _as_slice(rows, len(step.padding))
    order = sorted(rows.tolist(), key=lambda row: step.uids[row])  # a group's rows contiguous
    sizes = Counter(step.uids[row] for row in order)
    uneven = sorted({size for size in sizes.values() if size != group_size})
    if uneven:
        raise HicraError(
            f"credit {credit.name!r} compares the responses of a prompt group, but this step has "
            f"groups of {', '.join(map(str, uneven))} responses instead of "
            f"actor_rollout_ref.rollout.n={group_size} (failed rollouts or a per-prompt n)"
        )
    return _as_slice(torch.tensor(order, dtype=torch.long), len(step.padding))


def _as_slice(rows: torch.Tensor, total: int) -> torch.Tensor | slice:
    if total and rows.numel() == total and torch.equal(rows, torch.arange(total)):
        return slice(None)
    return rows


def assign_step_credit(
    step: StepResponses,
    credit: Credit,
    tagger: PlanningTagger,
    settings: VerlHicraSettings,
    group_size: int,
) -> StepCredit:
    """Tag planning tokens, run the registered credit rule, return (B, T) advantages.

    Padding rows keep their advantages. The rule sees `CreditBatch` exactly as `hicra train` fills
    it: the group advantages (B,), the planning mask, the model's own tokens, alpha; entropies and
    the batch-wide entropy quantile only for a credit that declared it needs them.
    """
    real = step.response_mask.bool()
    counts: Counter[str] = Counter()
    if step.planning is not None:  # tagged in verl's workers: only the credit is left
        planning = step.planning.bool() & real
        if step.gram_occurrences is not None:
            counts = count_occurrences(step.gram_occurrences, step.padding, tagger.grams.grams)
    elif step.responses is not None:
        planning = tagger.token_mask(
            step.responses,
            real,
            gram_counts=counts,
            counting=settings.gram_counting,
            strict=False,
        )
    else:
        raise HicraError("the step holds neither the responses nor their planning masks")
    rows = _rows(step, credit, group_size)
    advantages = step.advantages
    if isinstance(rows, slice) or rows.numel():
        entropies = threshold = None
        if "entropies" in credit.needs:
            if step.entropies is None:
                raise HicraError(f"credit {credit.name!r} needs entropies; verl stored none")
            entropies = step.entropies[rows]
            values = masked_values(entropies, real[rows])
            threshold = batch_quantile(values, settings.fork_quantile) if values.numel() else None
        batch = CreditBatch(
            advantages=sequence_advantages(step.advantages[rows], real[rows]),
            planning_mask=planning[rows],
            completion_mask=real[rows],
            group_size=group_size,
            alpha=settings.hicra_alpha,
            quantile=settings.fork_quantile,
            entropies=entropies,
            entropy_threshold=threshold,
        )
        assigned = credit.rule(batch)
        if assigned.dim() == 1:
            assigned = assigned.unsqueeze(1).expand(-1, real.shape[1])
        credited = (assigned * real[rows]).to(advantages.dtype)
        if isinstance(rows, slice):
            advantages = credited
        else:
            advantages = advantages.clone()
            advantages[rows] = credited
    return StepCredit(advantages=advantages, planning_mask=planning & real, gram_counts=counts)


def _nan_if_none(value: float | None) -> float:
    return math.nan if value is None else float(value)


def _mean(total: float, count: float) -> float:
    return total / count if count else math.nan


def hierarchy_metrics(
    step: StepResponses, result: StepCredit, fork_quantile: float
) -> dict[str, float]:
    """The hierarchy lens for one step, under `hicra train`'s metric names (`run_folder.Metric`).

    Token-weighted over the step's real responses; the entropy metrics need verl's entropies.
    A value that cannot be known (no planning token, no gram) is NaN, never 0.
    """
    real = step.response_mask.bool() & ~step.padding.unsqueeze(1)
    planning = result.planning_mask & real
    execution = real & ~planning
    advantages = result.advantages.detach().float()
    n_plan, n_exec = float(count(planning)), float(count(execution))
    counts = result.gram_counts
    occurrences = sum(counts.values())
    metrics = {
        Metric.PLANNING_RATIO: _mean(n_plan, n_plan + n_exec),
        Metric.PLANNING_ADVANTAGE: _mean(float(masked_values(advantages, planning).sum()), n_plan),
        Metric.EXECUTION_ADVANTAGE: _mean(
            float(masked_values(advantages, execution).sum()), n_exec
        ),
        Metric.GRAM_OCCURRENCES: float(occurrences),
        Metric.DISTINCT_GRAMS: float(len(counts)),
        Metric.SEMANTIC_ENTROPY: semantic_entropy(counts) if occurrences else math.nan,
        Metric.SEMANTIC_ENTROPY_MM: semantic_entropy_miller_madow(counts)
        if occurrences
        else math.nan,
    }
    if step.entropies is not None:
        split = token_entropy_by_class(step.entropies, planning, real)
        fork = fork_overlap(step.entropies, planning, real, fork_quantile)
        metrics[Metric.PLANNING_ENTROPY] = _nan_if_none(split.planning_entropy)
        metrics[Metric.EXECUTION_ENTROPY] = _nan_if_none(split.execution_entropy)
        metrics[Metric.ENTROPY] = _nan_if_none(split.all_entropy)
        metrics[Metric.FORK_PLANNING_HIGH] = _nan_if_none(fork.planning_high_entropy_share)
        metrics[Metric.FORK_HIGH_PLANNING] = _nan_if_none(fork.high_entropy_planning_share)
    return metrics
