"""Group pass@k of a training step: does exploration widen or narrow as training goes?

Each prompt's group of G completions is a sample of n = G attempts with c correct ones; pass@k is
the unbiased estimator 1 - C(n-c, k) / C(n, k) (`hicra.eval.passk`, Chen et al. 2021), averaged
over the step's groups, for k = 1, 2, 4, ..., G. pass@1 is the step's accuracy; pass@G is the share
of groups with at least one correct completion (the groups GRPO can learn from, when not all are
right). A policy that sharpens onto answers it already finds raises pass@1 and leaves pass@G flat
or lower; one that explores more raises pass@G too.
"""

from __future__ import annotations

from collections.abc import Sequence

from hicra.eval.passk import k_values, pass_at_k


def group_pass_at_k(correct: Sequence[bool], group_size: int) -> dict[int, float]:
    """pass@k for k in 1, 2, 4, ..., group_size, averaged over consecutive groups of `correct`."""
    if group_size < 1:
        raise ValueError(f"group_size must be at least 1, got {group_size}")
    if not correct or len(correct) % group_size:
        raise ValueError(f"{len(correct)} completions do not form whole groups of {group_size}")
    groups = [correct[i : i + group_size] for i in range(0, len(correct), group_size)]
    counts = [sum(map(bool, g)) for g in groups]
    return {
        k: sum(pass_at_k(group_size, c, k) for c in counts) / len(counts)
        for k in k_values(group_size)
    }
