"""The hierarchy lens as pure functions: entropy split by token class, strategic diversity, forks.

What the paper tracks over training (arXiv 2509.03646), computed from tensors and texts.

Functions return sums and counts beside the means, so that values from several processes (or
micro-batches) can be combined as token-weighted means, never as a mean of means.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.stats
import torch

from hicra.grams import StrategicGrams
from hicra.tagging import Counting, GramMatcher


def gram_counts(
    texts: Iterable[str],
    grams: StrategicGrams | str | GramMatcher,
    counting: Counting = "longest",
) -> Counter[str]:
    """How often each strategic gram occurs over a batch of texts.

    "longest" (the default) counts each phrase once, by its leftmost-longest match: "but wait, let
    me verify" is one "but wait" and one "let me verify", not also "but", "wait" and "let me".
    "all" counts every match, nested ones included (`hicra.tagging.select_matches`).
    """
    matcher = (
        grams if isinstance(grams, GramMatcher) else GramMatcher(StrategicGrams.resolve(grams))
    )
    total: Counter[str] = Counter()
    for text in texts:
        total.update(matcher.count(text, counting))
    return total


def _counts(
    counts_or_texts: Mapping[str, int] | Iterable[str] | Iterable[int],
    grams: StrategicGrams | str | GramMatcher | None,
    counting: Counting,
) -> list[float]:
    if isinstance(counts_or_texts, Mapping):
        counts = list(counts_or_texts.values())
    else:
        items = list(counts_or_texts)
        if items and all(isinstance(x, str) for x in items):
            if grams is None:
                raise ValueError("semantic_entropy of texts needs the strategic grams (grams=...)")
            counts = list(gram_counts(items, grams, counting).values())
        else:
            counts = items
    if any(isinstance(c, bool) or not isinstance(c, (int, float)) or not c >= 0 for c in counts):
        raise ValueError("gram counts must be non-negative numbers")
    return [float(c) for c in counts]


def semantic_entropy(
    counts_or_texts: Mapping[str, int] | Iterable[str] | Iterable[int],
    grams: StrategicGrams | str | GramMatcher | None = None,
    counting: Counting = "longest",
) -> float:
    """Shannon entropy (nats) of the gram frequency distribution: the paper's strategic diversity.

    Pass gram counts (a mapping gram -> count, or a sequence of counts), or texts together with
    `grams`. H = -sum p log p with p(g) = c(g) / sum c (the plug-in estimate, scipy.stats.entropy).
    NaN when no gram occurs: the diversity of nothing is unknown, not zero.
    """
    counts = _counts(counts_or_texts, grams, counting)
    if sum(counts) <= 0:
        return math.nan
    return float(scipy.stats.entropy(counts))


def semantic_entropy_miller_madow(
    counts_or_texts: Mapping[str, int] | Iterable[str] | Iterable[int],
    grams: StrategicGrams | str | GramMatcher | None = None,
    counting: Counting = "longest",
) -> float:
    """The plug-in entropy plus Miller-Madow's bias correction (K - 1) / (2N), in nats.

    The plug-in estimate is biased low, more so with few occurrences (a fixed 249-gram Zipf
    distribution reads 2.95 nats from 50 occurrences, 3.95 from 5,000; true 3.98). K is the number
    of distinct grams seen, N the number of occurrences. NaN when no gram occurs.
    """
    counts = _counts(counts_or_texts, grams, counting)
    total = sum(counts)
    if total <= 0:
        return math.nan
    seen = sum(1 for c in counts if c > 0)
    return float(scipy.stats.entropy(counts)) + (seen - 1) / (2.0 * total)


@dataclass(frozen=True)
class EntropySplit:
    """Mean next-token entropy by token class; a mean is None when its class has no tokens."""

    planning_entropy: float | None
    execution_entropy: float | None
    all_entropy: float | None
    planning_ratio: float | None
    planning_sum: float
    execution_sum: float
    planning_tokens: int
    execution_tokens: int


def _mean(total: float, count: int) -> float | None:
    return total / count if count else None


def masked_values(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """`values[mask]`, the same elements in the same order; on the CPU through numpy, whose
    boolean selection is about 10x faster than torch's for a dense mask (a step's real tokens)."""
    if values.device.type == mask.device.type == "cpu" and values.dtype != torch.bfloat16:
        return torch.from_numpy(values.detach().numpy()[mask.numpy()])
    return values[mask]


def count(mask: torch.Tensor) -> int:
    """How many entries of a bool mask are True (on the CPU through numpy: about 10x faster)."""
    if mask.device.type == "cpu" and mask.dtype == torch.bool:
        return int(np.count_nonzero(mask.numpy()))
    return int(torch.count_nonzero(mask))


def sum64(values: torch.Tensor) -> float:
    """The sum in float64 (on the CPU through numpy: torch's float64 sum of float32 values first
    copies them, about 10x slower)."""
    if values.device.type == "cpu" and values.dtype != torch.bfloat16:
        return float(values.detach().numpy().sum(dtype=np.float64))
    return float(values.sum(dtype=torch.float64))


def _real_and_planning_values(
    entropies: torch.Tensor, planning_mask: torch.Tensor, completion_mask: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The entropies of the real completion tokens, and of the planning ones among them.

    Execution tokens are every real token less the planning ones, so their sums and counts are
    differences: one dense selection and one sparse one per step, where selecting both classes and
    a (B, T) high-entropy mask took five passes over a cluster step's 16 M tokens.
    """
    real = completion_mask.bool()
    entropies = entropies.detach().float()
    return masked_values(entropies, real), masked_values(entropies, planning_mask.bool() & real)


def _split(every: torch.Tensor, planned: torch.Tensor) -> EntropySplit:
    all_sum, p_sum = sum64(every), sum64(planned)
    p_n, all_n = planned.numel(), every.numel()
    return EntropySplit(
        planning_entropy=_mean(p_sum, p_n),
        execution_entropy=_mean(all_sum - p_sum, all_n - p_n),
        all_entropy=_mean(all_sum, all_n),
        planning_ratio=_mean(float(p_n), all_n),
        planning_sum=p_sum,
        execution_sum=all_sum - p_sum,
        planning_tokens=p_n,
        execution_tokens=all_n - p_n,
    )


def token_entropy_by_class(
    entropies: torch.Tensor, planning_mask: torch.Tensor, completion_mask: torch.Tensor
) -> EntropySplit:
    """Split per-token entropies (B, T) into planning and execution tokens of the real completion.

    Sums in float64: the execution sum is the real tokens' sum less the planning tokens'."""
    return _split(*_real_and_planning_values(entropies, planning_mask, completion_mask))


_BRACKET_FROM = 1 << 20  # values; below this one `np.partition` of them all is as fast
_BRACKET_SAMPLE = 1 << 16
_BRACKET_WIDTH = 0.01  # about 5 standard errors of a quantile of the sample, either side


def _select_ranks(values: np.ndarray, below: int, above: int) -> tuple[Any, Any]:
    """The values of ascending ranks `below` and `above` of a 1-D float array, exactly as
    `np.partition(values, (below, above))` places them (NaN sorts last).

    A large array is first bracketed by quantiles of a fixed sample of it: the values inside the
    bracket, a few percent of the array, are partitioned alone when they hold both ranks (a
    values-below count says where they start); otherwise the whole array is, as for a small one.
    """
    size = len(values)
    if size >= _BRACKET_FROM:
        picks = np.random.default_rng(0).integers(0, size, _BRACKET_SAMPLE)
        sample = np.sort(values[picks])
        share_lo, share_hi = (
            below / (size - 1) - _BRACKET_WIDTH,
            above / (size - 1) + _BRACKET_WIDTH,
        )
        lo = sample[int(share_lo * (len(sample) - 1))] if share_lo > 0 else -np.inf
        hi = sample[int(np.ceil(share_hi * (len(sample) - 1)))] if share_hi < 1 else np.inf
        start = int(np.count_nonzero(values < lo))  # NaN is neither below nor inside: last
        inside = values[(values >= lo) & (values <= hi)]
        if start <= below and above < start + len(inside):
            part = np.partition(inside, (below - start, above - start))
            return part[below - start], part[above - start]
    part = np.partition(values, (below, above))
    return part[below], part[above]


def batch_quantile(values: torch.Tensor, quantile: float) -> float:
    """The `quantile` of `values` (linear interpolation), for tensors of any size.

    Bit for bit `torch.quantile`, which refuses more than 2**24 values: a cluster step (verl: 512
    prompts x 16 responses x 8k tokens) has more. A selection of the two ranks, no full sort (on
    the CPU `_select_ranks`, elsewhere two `kthvalue`).
    """
    flat = values.detach().reshape(-1)
    if not flat.numel():
        raise ValueError("the quantile of no values is undefined")
    rank = torch.tensor(quantile, dtype=flat.dtype, device=flat.device) * (flat.numel() - 1)
    below, above = int(rank.floor()), int(rank.ceil())
    if flat.device.type == "cpu" and flat.dtype in (torch.float32, torch.float64):
        # one numpy selection for both ranks: about 5x faster than two kthvalue on the CPU
        low_value, high_value = _select_ranks(flat.numpy(), below, above)
        low = torch.tensor(low_value, dtype=flat.dtype)
        high = torch.tensor(high_value, dtype=flat.dtype)
    else:
        low = torch.kthvalue(flat, below + 1).values
        high = low if above == below else torch.kthvalue(flat, above + 1).values
    return float(torch.lerp(low, high, rank - below))


def high_entropy_mask(
    entropies: torch.Tensor,
    completion_mask: torch.Tensor,
    quantile: float = 0.7,
    *,
    with_threshold: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, float | None]:
    """Real tokens whose entropy is at or above the `quantile` of entropy over all real tokens.

    quantile=0.7 selects the top 30% ("forking" tokens in the paper); linear interpolation.
    """
    if not 0.0 <= quantile < 1.0:
        raise ValueError(f"quantile must be in [0, 1), got {quantile}")
    real = completion_mask.bool()
    values = masked_values(entropies.detach().float(), real)
    threshold = batch_quantile(values, quantile) if values.numel() else None
    high = (
        real & (entropies.detach().float() >= threshold) if threshold is not None else real & False
    )
    return (high, threshold) if with_threshold else high


@dataclass(frozen=True)
class ForkOverlap:
    """How planning tokens and high-entropy ("fork") tokens overlap (paper, section 4)."""

    planning_high_entropy_share: float | None  # of planning tokens, the share that is high-entropy
    high_entropy_planning_share: float | None  # of high-entropy tokens, the share that is planning
    threshold: float | None
    planning_tokens: int
    high_entropy_tokens: int
    both: int


def _forks(every: torch.Tensor, planned: torch.Tensor, quantile: float) -> ForkOverlap:
    if not 0.0 <= quantile < 1.0:
        raise ValueError(f"quantile must be in [0, 1), got {quantile}")
    if not every.numel():
        return ForkOverlap(None, None, None, 0, 0, 0)
    threshold = batch_quantile(every, quantile)
    n_plan = planned.numel()
    n_high, n_both = count(every >= threshold), count(planned >= threshold)
    return ForkOverlap(
        planning_high_entropy_share=_mean(float(n_both), n_plan),
        high_entropy_planning_share=_mean(float(n_both), n_high),
        threshold=threshold,
        planning_tokens=n_plan,
        high_entropy_tokens=n_high,
        both=n_both,
    )


def fork_overlap(
    entropies: torch.Tensor,
    planning_mask: torch.Tensor,
    completion_mask: torch.Tensor,
    quantile: float = 0.7,
) -> ForkOverlap:
    """Overlap of planning tokens with the top (1 - quantile) of entropy over the batch's tokens.

    "High entropy" means at or above the `quantile` of entropy (linear interpolation) over all real
    completion tokens, so quantile=0.7 selects the top 30% as in the paper: `high_entropy_mask`'s
    tokens, counted from the selected values without building the mask.
    """
    return _forks(*_real_and_planning_values(entropies, planning_mask, completion_mask), quantile)


def entropy_lens(
    entropies: torch.Tensor,
    planning_mask: torch.Tensor,
    completion_mask: torch.Tensor,
    quantile: float = 0.7,
) -> tuple[EntropySplit, ForkOverlap]:
    """`token_entropy_by_class` and `fork_overlap` of one batch from one selection of its values
    (what a verl driver computes every step)."""
    every, planned = _real_and_planning_values(entropies, planning_mask, completion_mask)
    return _split(every, planned), _forks(every, planned, quantile)
