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
    entropy_lens,
    masked_values,
    semantic_entropy,
    semantic_entropy_miller_madow,
    sum64,
)
from hicra.integrations.verl.settings import VerlHicraSettings
from hicra.run_folder import Metric
from hicra.tagging import PlanningTagger

# TransferQueue field HICRA's agent-loop workers add to each training response (workers.py): its
# planning mask (1 on a planning token, else 0), then its counted gram occurrences, each as its
# gram's index + 2. One field, not two: TransferQueue's read costs the driver per row and per field
# (benchmarks/verl_advantage.py). A padded read fills with 0, and the positions past a response's
# own tokens lie outside verl's response mask, so the mask and the occurrences never mix.
PLANNING_FIELD = "hicra_planning"
_FIRST_GRAM = 2  # the value of the gram of index 0 in PLANNING_FIELD


def tags_dtype(grams: int) -> torch.dtype:
    """The smallest integer type that holds `PLANNING_FIELD`'s values: uint8 up to 254 grams (the
    paper's 249), so that the field costs a byte a token, as a bool mask does."""
    largest = grams - 1 + _FIRST_GRAM
    if largest <= torch.iinfo(torch.uint8).max:
        return torch.uint8
    return torch.int16 if largest <= torch.iinfo(torch.int16).max else torch.int32


def tag_response(
    tagger: PlanningTagger, ids: Sequence[int], mask: Sequence[int], counting: str
) -> torch.Tensor:
    """One response's `PLANNING_FIELD` row: its planning mask (len(ids),), then the index + 2 of
    each counted gram occurrence. The tagger finds grams within a row only, so a step's masks and
    summed counts are those of `PlanningTagger.token_mask` on the whole step, as the driver tags."""
    counts: Counter[str] = Counter()
    planning = tagger.token_mask(
        [list(ids)], [list(mask)], gram_counts=counts, counting=counting, strict=False
    )[0]
    names = tagger.grams.grams
    occurrences = [
        names.index(name) + _FIRST_GRAM for name, times in counts.items() for _ in range(times)
    ]
    dtype = tags_dtype(len(names))
    row = torch.cat([planning.to(dtype), torch.tensor(occurrences, dtype=dtype)])
    return row if len(row) else torch.zeros(1, dtype=dtype)  # an empty row: one 0, no tag


def read_worker_tags(
    tags: torch.Tensor, real: torch.Tensor, padding: torch.Tensor, names: Sequence[str]
) -> tuple[torch.Tensor, Counter[str]]:
    """The step's planning mask (B, T) within `real` (verl's response mask, bool) and its gram
    counts, from the workers' padded (B, W) `PLANNING_FIELD`; padding rows (verl's, a copy of a
    real row's fields) are left out of the counts."""
    width = real.shape[1]
    head = tags[:, :width]
    if head.shape[1] < width:  # verl padded the responses wider than the longest tagged row
        head = torch.nn.functional.pad(head, (0, width - head.shape[1]))
    planning = (head == 1) & real
    kept = tags[~padding] if bool(padding.any()) else tags
    if kept.device.type == "cpu":  # numpy's selection and bincount: about 5x torch's here
        values = kept.numpy()
        found = np.bincount(values[values >= _FIRST_GRAM], minlength=len(names) + _FIRST_GRAM)
    else:
        found = torch.bincount(kept[kept >= _FIRST_GRAM].long()).cpu().numpy()
    totals = found[_FIRST_GRAM:]
    return planning, Counter({names[i]: int(totals[i]) for i in np.flatnonzero(totals)})


@dataclass(frozen=True)
class StepResponses:
    """A step's responses as the driver holds them, right-padded to one width T.

    `advantages` are the estimator's (verl's GRPO: a response's advantage on each of its tokens).
    `response_mask` marks the model's own tokens (tool outputs of multi-turn loops are 0).
    `padding` marks rows verl adds to fill a batch (no response tokens, a shared fake uid).
    `worker_tags`, when verl's workers tagged the responses (workers.py), replace the driver's
    tagging; then `responses` may be None.
    """

    responses: torch.Tensor | None  # (B, T) token ids
    response_mask: torch.Tensor  # (B, T)
    advantages: torch.Tensor  # (B, T)
    uids: list[str]  # the prompt each response answers
    padding: torch.Tensor  # (B,) bool
    entropies: torch.Tensor | None = None  # (B, T): the old policy's, when verl computed them
    worker_tags: torch.Tensor | None = None  # (B, W): `PLANNING_FIELD`, from verl's workers


@dataclass(frozen=True)
class StepCredit:
    """The advantages for the loss (B, T) and what the metrics need."""

    advantages: torch.Tensor
    planning_mask: torch.Tensor  # (B, T) bool: planning tokens among the real ones
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
    has_tokens = real.gather(1, first.unsqueeze(1)).squeeze(1)  # argmax is 0 for a row of none
    return torch.where(has_tokens, values, torch.zeros_like(values))


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
    if step.worker_tags is not None:  # tagged in verl's workers: only the credit is left
        planning, counts = read_worker_tags(
            step.worker_tags, real, step.padding, tagger.grams.grams
        )
    elif step.responses is not None:
        planning = real & tagger.token_mask(
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
        credited = torch.where(real[rows], assigned, 0.0).to(advantages.dtype)
        if isinstance(rows, slice):
            advantages = credited
        else:
            advantages = advantages.clone()
            advantages[rows] = credited
    return StepCredit(advantages=advantages, planning_mask=planning, gram_counts=counts)


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
    real = step.response_mask.bool()
    planning = result.planning_mask
    if bool(step.padding.any()):  # verl's padding rows copy a real row: leave them out
        real = real & ~step.padding.unsqueeze(1)
        planning = planning & real
    advantages = result.advantages.detach().float()
    # execution = real less planning: one dense selection, one sparse, sums in float64
    real_sum = sum64(masked_values(advantages, real))
    planning_sum = sum64(masked_values(advantages, planning))
    n_real, n_plan = float(count(real)), float(count(planning))
    counts = result.gram_counts
    occurrences = sum(counts.values())
    metrics = {
        Metric.PLANNING_RATIO: _mean(n_plan, n_real),
        Metric.PLANNING_ADVANTAGE: _mean(planning_sum, n_plan),
        Metric.EXECUTION_ADVANTAGE: _mean(real_sum - planning_sum, n_real - n_plan),
        Metric.GRAM_OCCURRENCES: float(occurrences),
        Metric.DISTINCT_GRAMS: float(len(counts)),
        Metric.SEMANTIC_ENTROPY: semantic_entropy(counts) if occurrences else math.nan,
        Metric.SEMANTIC_ENTROPY_MM: semantic_entropy_miller_madow(counts)
        if occurrences
        else math.nan,
    }
    if step.entropies is not None:
        split, fork = entropy_lens(step.entropies, planning, real, fork_quantile)
        metrics[Metric.PLANNING_ENTROPY] = _nan_if_none(split.planning_entropy)
        metrics[Metric.EXECUTION_ENTROPY] = _nan_if_none(split.execution_entropy)
        metrics[Metric.ENTROPY] = _nan_if_none(split.all_entropy)
        metrics[Metric.FORK_PLANNING_HIGH] = _nan_if_none(fork.planning_high_entropy_share)
        metrics[Metric.FORK_HIGH_PLANNING] = _nan_if_none(fork.high_entropy_planning_share)
    return metrics
