"""Pure functions for benchmark scores: avg@k, the unbiased pass@k estimator, majority vote.

pass@1 in the paper's tables is avg@k: the mean correctness over k samples per problem, averaged
over problems. pass@k uses the Codex estimator (Chen et al., 2021): with n samples of which c are
correct, pass@k = 1 - C(n-c, k) / C(n, k), the chance that k samples drawn without replacement
contain a correct one. It is unbiased, unlike 1 - (1 - c/n)^k.
"""

from __future__ import annotations

from collections.abc import Sequence

from hicra.answers import normalize_strict


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k for one problem with n samples, c of them correct (needs 1 <= k <= n)."""
    if not 0 <= c <= n:
        raise ValueError(f"need 0 <= c <= n, got n={n}, c={c}")
    if not 1 <= k <= n:
        raise ValueError(f"need 1 <= k <= n, got n={n}, k={k}")
    if n - c < k:
        return 1.0
    # 1 - prod_{i=n-c+1..n} (1 - k/i): the ratio of binomials without huge integers
    fail = 1.0
    for i in range(n - c + 1, n + 1):
        fail *= 1.0 - k / i
    return 1.0 - fail


def k_values(n: int) -> list[int]:
    """The k reported for n samples: powers of two below n, and n itself (1, 2, 4, ..., n)."""
    if n < 1:
        return []
    ks, k = [], 1
    while k < n:
        ks.append(k)
        k *= 2
    return [*ks, n]


def avg_at_k(correct: Sequence[Sequence[bool]]) -> float:
    """Mean over problems of the share of correct samples (pass@1 estimated from k samples)."""
    if not correct:
        raise ValueError("avg@k needs at least one problem")
    return sum(sum(map(bool, row)) / len(row) for row in correct) / len(correct)


def mean_pass_at_k(correct: Sequence[Sequence[bool]], k: int) -> float:
    """pass@k averaged over problems."""
    if not correct:
        raise ValueError("pass@k needs at least one problem")
    return sum(pass_at_k(len(row), sum(map(bool, row)), k) for row in correct) / len(correct)


def majority_vote(answers: Sequence[str | None], correct: Sequence[bool]) -> bool:
    """Whether the most frequent extracted answer is correct.

    Answers are grouped by their strict normalization ("27.0" and "27" vote together); samples
    without an answer do not vote; a tie goes to the answer seen first. The winner's correctness
    is that of its first sample (equal normalized answers get the same verdict).
    """
    if len(answers) != len(correct):
        raise ValueError("majority_vote needs one verdict per answer")
    votes: dict[str, list[int]] = {}
    for i, answer in enumerate(answers):
        if answer is not None and answer.strip():
            votes.setdefault(normalize_strict(answer), []).append(i)
    if not votes:
        return False
    winner = max(votes.values(), key=len)  # max keeps the first of equal counts
    return bool(correct[winner[0]])


def mean_majority(
    answers: Sequence[Sequence[str | None]], correct: Sequence[Sequence[bool]]
) -> float:
    """maj@k averaged over problems."""
    if not correct:
        raise ValueError("maj@k needs at least one problem")
    pairs = zip(answers, correct, strict=True)
    return sum(majority_vote(a, c) for a, c in pairs) / len(correct)
