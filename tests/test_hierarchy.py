import math

import numpy as np
import pytest
import torch

from hicra import StrategicGrams, fork_overlap, semantic_entropy, token_entropy_by_class
from hicra.hierarchy import batch_quantile, gram_counts, semantic_entropy_miller_madow

ENT = torch.tensor([[1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0]])
PLAN = torch.tensor([[True, False, False, False], [False, True, True, False]])
REAL = torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1]])


def test_semantic_entropy_of_counts():
    assert semantic_entropy({"a": 2, "b": 1, "c": 1}) == pytest.approx(1.5 * math.log(2))
    assert semantic_entropy([5]) == 0.0
    assert math.isnan(semantic_entropy({}))  # no gram at all: unknown, not zero
    assert semantic_entropy([1, 1, 1, 1]) == pytest.approx(math.log(4))
    with pytest.raises(ValueError, match="non-negative"):
        semantic_entropy([1, -1])


def test_semantic_entropy_of_texts():
    grams = StrategicGrams(["wait", "let me", "so"])
    texts = ["Wait, let me see. So wait.", "also nothing", "so"]
    assert gram_counts(texts, grams) == {"wait": 2, "let me": 1, "so": 2}
    p = [0.4, 0.2, 0.4]
    assert semantic_entropy(texts, grams) == pytest.approx(-sum(x * math.log(x) for x in p))
    assert math.isnan(semantic_entropy(["nothing here"], grams))
    with pytest.raises(ValueError, match="needs the strategic grams"):
        semantic_entropy(texts)


def test_entropy_by_class_hand_computed():
    split = token_entropy_by_class(ENT, PLAN, REAL)
    assert split.planning_entropy == pytest.approx(14 / 3)  # 1, 6, 7
    assert split.execution_entropy == pytest.approx(18 / 4)  # 2, 3, 5, 8 (4.0 is padding)
    assert split.all_entropy == pytest.approx(32 / 7)
    assert split.planning_ratio == pytest.approx(3 / 7)
    assert (split.planning_tokens, split.execution_tokens) == (3, 4)
    assert (split.planning_sum, split.execution_sum) == (14.0, 18.0)


def test_entropy_by_class_reports_missing_not_zero():
    split = token_entropy_by_class(ENT, torch.zeros_like(PLAN), REAL)
    assert split.planning_entropy is None and split.planning_ratio == 0.0
    assert split.execution_entropy == pytest.approx(32 / 7)
    empty = token_entropy_by_class(ENT, PLAN, torch.zeros_like(REAL))
    assert empty.planning_entropy is None and empty.execution_entropy is None
    assert empty.all_entropy is None and empty.planning_ratio is None


def test_fork_overlap_hand_computed():
    # real values 1,2,3,5,6,7,8; 0.7 quantile = 6.2; high-entropy tokens: 7 and 8
    fo = fork_overlap(ENT, PLAN, REAL, quantile=0.7)
    assert fo.threshold == pytest.approx(6.2)
    assert (fo.planning_tokens, fo.high_entropy_tokens, fo.both) == (3, 2, 1)
    assert fo.planning_high_entropy_share == pytest.approx(1 / 3)
    assert fo.high_entropy_planning_share == pytest.approx(1 / 2)


def test_fork_overlap_empty_and_bad_quantile():
    fo = fork_overlap(ENT, PLAN, torch.zeros_like(REAL))
    assert fo.planning_high_entropy_share is None and fo.threshold is None
    no_plan = fork_overlap(ENT, torch.zeros_like(PLAN), REAL)
    assert no_plan.planning_high_entropy_share is None
    assert no_plan.high_entropy_planning_share == 0.0
    with pytest.raises(ValueError, match="quantile"):
        fork_overlap(ENT, PLAN, REAL, quantile=1.0)


NESTED = "But wait, let me verify... we can use the fact that x = 2."
NESTED_GRAMS = [
    "but",
    "but wait",
    "wait",
    "let me",
    "let me verify",
    "we can use",
    "use the fact that",
    "the fact that",
    "we can",
]


def test_longest_counting_counts_each_phrase_once():
    grams = StrategicGrams(NESTED_GRAMS)
    # leftmost-longest, non-overlapping: "but wait", "let me verify", "we can use" (which hides
    # "we can" and "use the fact that"), then "the fact that" after it
    assert gram_counts([NESTED], grams) == {
        "but wait": 1,
        "let me verify": 1,
        "we can use": 1,
        "the fact that": 1,
    }
    every = gram_counts([NESTED], grams, counting="all")
    assert sum(every.values()) == 9 and every["but"] == 1 and every["the fact that"] == 1
    assert semantic_entropy([NESTED], grams) == pytest.approx(math.log(4))
    assert semantic_entropy([NESTED], grams, counting="all") == pytest.approx(math.log(9))
    with pytest.raises(ValueError, match="counting must be"):
        gram_counts([NESTED], grams, counting="some")


def test_miller_madow_adds_k_minus_one_over_two_n():
    counts = {"a": 2, "b": 1, "c": 1}  # K = 3, N = 4
    plug_in = 1.5 * math.log(2)
    assert semantic_entropy_miller_madow(counts) == pytest.approx(plug_in + 2 / 8)
    assert semantic_entropy_miller_madow([7]) == 0.0  # one gram: no spread, no correction
    assert math.isnan(semantic_entropy_miller_madow({}))


def test_miller_madow_is_less_biased_on_a_sampled_zipf_distribution():
    """249 grams with Zipf weights (1/k), 200 occurrences drawn: the plug-in estimate falls about
    0.5 nats short of the true entropy; Miller-Madow's correction recovers about 0.2 of that."""
    import numpy as np

    weights = 1.0 / np.arange(1, 250)
    p = weights / weights.sum()
    true = float(-(p * np.log(p)).sum())
    rng = np.random.default_rng(0)
    plug, mm = [], []
    for _ in range(50):
        counts = np.bincount(rng.choice(249, size=200, p=p), minlength=249).tolist()
        plug.append(semantic_entropy(counts))
        mm.append(semantic_entropy_miller_madow(counts))
    plug_bias, mm_bias = true - np.mean(plug), true - np.mean(mm)
    assert plug_bias > 0.4  # the plug-in bias at 200 occurrences
    assert 0 < mm_bias < plug_bias - 0.15


def test_batch_quantile_is_torch_quantile_bit_for_bit():
    generator = torch.Generator().manual_seed(0)
    for size in (1, 2, 7, 100, 1001):
        values = torch.rand(size, generator=generator) * 5
        for quantile in (0.0, 0.3, 0.5, 0.7, 0.999):
            assert batch_quantile(values, quantile) == float(torch.quantile(values, quantile))
    ties = torch.tensor([1.0, 1.0, 2.0, 2.0, 2.0, 9.0])
    assert batch_quantile(ties, 0.7) == 2.0  # rank 3.5 lies between two 2.0s
    assert batch_quantile(torch.tensor([0.0, 10.0]), 0.7) == pytest.approx(7.0)


@pytest.mark.parametrize("kind", ["uniform", "ties", "nan", "sorted"])
def test_bracketed_rank_selection_is_a_full_partition(kind):
    """Past 2**20 values the ranks are selected inside a sample's bracket: the same values."""
    from hicra.hierarchy import _select_ranks

    rng = np.random.default_rng(4)
    size = (1 << 20) + 3
    values = {
        "uniform": rng.random(size, dtype=np.float32) * 3,
        "ties": rng.integers(0, 4, size).astype(np.float32),  # ranks inside runs of equal values
        "nan": np.where(rng.random(size) < 0.4, np.nan, rng.random(size)),  # NaN sorts last
        "sorted": np.arange(size, dtype=np.float64),
    }[kind]
    for quantile in (0.0, 0.3, 0.7, 0.9999995):
        rank = quantile * (size - 1)
        below, above = int(np.floor(rank)), int(np.ceil(rank))
        full = np.partition(values, (below, above))
        got = _select_ranks(values, below, above)
        np.testing.assert_array_equal(got, (full[below], full[above]))


def test_batch_quantile_beyond_torch_quantile_limit():
    """A cluster step has more than 2**24 tokens, where torch.quantile refuses."""
    size = 2**24 + 2
    halves = torch.cat([torch.full((size // 2,), 1.0), torch.full((size // 2,), 3.0)])
    values = halves[torch.randperm(size, generator=torch.Generator().manual_seed(1))]
    with pytest.raises(RuntimeError, match="too large"):
        torch.quantile(values, 0.5)
    # ranks 0.25 * (size - 1) and 0.75 * (size - 1) lie inside the lower and the upper half
    assert (batch_quantile(values, 0.25), batch_quantile(values, 0.75)) == (1.0, 3.0)
    assert batch_quantile(values + torch.arange(size) % 2 * 0.5, 0.0) == 1.0  # the minimum
    with pytest.raises(ValueError, match="no values"):
        batch_quantile(torch.tensor([]), 0.5)
