import math

import pytest
import torch

from hicra import grpo_advantages, hicra_advantages
from hicra.advantages import (
    CREDITS,
    CreditBatch,
    assign_credit,
    get_credit,
    hicra_entropy_length_advantages,
    high_entropy_advantages,
    register_credit,
    response_entropy_thresholds,
)
from hicra.errors import HicraError


def close(actual: torch.Tensor, expected: list) -> bool:
    return torch.allclose(actual, torch.tensor(expected, dtype=actual.dtype), atol=1e-6)


REWARDS = torch.tensor([1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0])


def test_grpo_group_scale_hand_computed():
    adv = grpo_advantages(REWARDS, group_size=4, scale="group")
    a = 0.5 / (math.sqrt(1 / 3) + 1e-4)  # unbiased std of [1,0,0,1] is sqrt(1/3)
    assert adv.tolist() == pytest.approx([a, -a, -a, a, 0, 0, 0, 0])


def test_grpo_none_is_the_papers_mean_centred_reward():
    adv = grpo_advantages(REWARDS, group_size=4, scale="none")
    assert adv.tolist() == [0.5, -0.5, -0.5, 0.5, 0.0, 0.0, 0.0, 0.0]


def test_grpo_batch_scale_hand_computed():
    adv = grpo_advantages(REWARDS, group_size=4, scale="batch")
    std = math.sqrt(1.5 / 7)  # deviations from 0.75: six of 0.25, two of -0.75
    a = 0.5 / (std + 1e-4)
    assert adv.tolist() == pytest.approx([a, -a, -a, a, 0, 0, 0, 0])


def test_constant_groups_give_exact_zeros_not_nan():
    rewards = torch.tensor([0.1, 0.1, 0.1, 0.3, 0.3, 0.3])  # 0.1*3/3 != 0.1 in floating point
    for scale in ("group", "batch", "none"):
        adv = grpo_advantages(rewards, group_size=3, scale=scale)
        assert not torch.isnan(adv).any()
        assert (adv == 0).all()
    assert (grpo_advantages(torch.tensor([1.0, 2.0]), group_size=1) == 0).all()


def test_grpo_errors():
    with pytest.raises(ValueError, match="cannot be split into groups of 4"):
        grpo_advantages(torch.ones(6), group_size=4)
    with pytest.raises(ValueError, match="scale must be"):
        grpo_advantages(torch.ones(4), group_size=2, scale="std")
    with pytest.raises(ValueError, match="1-D"):
        grpo_advantages(torch.ones(2, 2), group_size=2)


def test_hicra_formula_amplifies_positive_and_dampens_negative():
    adv = torch.tensor([2.0, -1.0, 0.0])
    mask = torch.tensor([[True, False], [True, False], [True, True]])
    out = hicra_advantages(adv, mask, alpha=0.2)
    assert out.shape == (3, 2)
    assert close(out, [[2.4, 2.0], [-0.8, -1.0], [0.0, 0.0]])


def test_hicra_accepts_token_level_advantages_and_alpha_zero_is_identity():
    adv = torch.tensor([[1.0, -2.0, 3.0]])
    mask = torch.tensor([[True, True, False]])
    assert hicra_advantages(adv, mask, 0.5).tolist() == [[1.5, -1.0, 3.0]]
    assert torch.equal(hicra_advantages(adv, mask, 0.0), adv)


def test_hicra_errors():
    mask = torch.ones(2, 3, dtype=torch.bool)
    for alpha in (-0.1, 1.0, 1.5):
        with pytest.raises(ValueError, match=r"alpha must be in \[0, 1\)"):
            hicra_advantages(torch.ones(2), mask, alpha)
    with pytest.raises(ValueError, match="do not match"):
        hicra_advantages(torch.ones(2, 4), mask)
    with pytest.raises(ValueError, match="planning_mask must be"):
        hicra_advantages(torch.ones(2), torch.ones(3, dtype=torch.bool))


def test_high_entropy_variant_uses_batch_top_30_percent():
    ent = torch.tensor([[1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0]])
    real = torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1]])
    # real values 1,2,3,5,6,7,8: 0.7 quantile = 6 + 0.2 * (7 - 6) = 6.2 -> tokens with 7 and 8
    out = high_entropy_advantages(torch.tensor([1.0, -1.0]), ent, real, alpha=0.2)
    assert close(out, [[1, 1, 1, 1], [-1, -1, -0.8, -0.8]])


def test_high_entropy_variant_takes_a_given_global_threshold():
    ent = torch.tensor([[1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0]])
    real = torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1]])
    # a threshold taken over a larger (global) batch: only the 8 is at or above 7.5
    out = high_entropy_advantages(torch.tensor([1.0, -1.0]), ent, real, 0.2, threshold=7.5)
    assert close(out, [[1, 1, 1, 1], [-1, -1, -1, -0.8]])
    batch = CreditBatch(
        torch.tensor([1.0, -1.0]),
        torch.zeros(2, 4, dtype=torch.bool),
        real.bool(),
        group_size=2,
        entropies=ent,
        entropy_threshold=7.5,
    )
    assert close(assign_credit("high_entropy", batch), [[1, 1, 1, 1], [-1, -1, -1, -0.8]])


def test_response_thresholds_follow_the_transcription():
    ent = torch.tensor([[0.1, 0.9, 0.5, 0.8], [0.3, 0.2, 7.0, 7.0], [0.0, 0.0, 0.0, 0.0]])
    real = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0], [0, 0, 0, 0]])
    # sorted [0.1, 0.5, 0.8, 0.9], index int(0.7 * 4) = 2 -> 0.8; [0.2, 0.3], index 1 -> 0.3
    thresholds = response_entropy_thresholds(ent, real, 0.7)
    assert thresholds[:2, 0].tolist() == pytest.approx([0.8, 0.3])
    assert thresholds[2, 0] == float("inf")


ADV = torch.tensor([1.0, -1.0, 0.5, -0.5, 0.0, 0.0])
PLANNING = torch.tensor(
    [[0, 0, 1, 0], [1, 0, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0], [1, 1, 0, 0], [0, 0, 0, 0]]
).bool()
ENT = torch.tensor(
    [
        [0.1, 0.9, 0.5, 0.8],
        [0.3, 0.2, 0, 0],
        [0.9, 0.1, 0, 0],
        [0.1, 0.2, 0, 0],
        [0.5, 0.1, 0.9, 0],
        [0.1, 0.2, 0, 0],
    ]
)
REAL = torch.tensor(
    [[1, 1, 1, 1], [1, 1, 0, 0], [1, 1, 0, 0], [1, 1, 0, 0], [1, 1, 1, 0], [1, 1, 0, 0]]
)


def test_entropy_length_variant_hand_computed():
    out = hicra_entropy_length_advantages(ADV, PLANNING, ENT, REAL, group_size=2, alpha=0.2)
    expected = [
        # A > 0 and longer than its group's mean (4 > 3): planning idx 2 and the token above the
        # response's threshold (0.9 > 0.8) both get A * (1 + 0.2)
        [1, 1.2, 1.2, 1],
        # A < 0: its planning token gets A * (1 - 0.2); its high-entropy tokens nothing
        [-0.8, -1, -1, -1],
        # A > 0 but not longer than the mean (2 = 2): only the planning token, 0.5 * 1.2
        [0.6, 0.5, 0.5, 0.5],
        [-0.5, -0.5, -0.5, -0.5],
        # no response with A > 0 in the group: untouched (with centred advantages, A = 0)
        [0, 0, 0, 0],
        [0, 0, 0, 0],
    ]
    assert close(out, expected)


def test_entropy_length_correct_response_with_negative_advantage_is_not_amplified():
    """A correct but unboxed answer can have A < 0 (no format reward): the official code keys on
    A > 0, so its high-entropy tokens keep A (-0.7, not -0.84) and planning tokens get A(1 - alpha)."""
    adv = torch.tensor([-0.7, 0.7])
    ent = torch.tensor([[0.1, 0.2, 0.3, 0.9], [0.5, 0.5, 0.0, 0.0]])
    real = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]])
    planning = torch.tensor([[1, 0, 0, 0], [0, 0, 0, 0]]).bool()
    out = hicra_entropy_length_advantages(adv, planning, ent, real, group_size=2, alpha=0.2)
    assert close(out[0], [-0.56, -0.7, -0.7, -0.7])


def test_entropy_length_needs_whole_groups_and_sequence_advantages():
    with pytest.raises(ValueError, match="groups of 4"):
        hicra_entropy_length_advantages(ADV, PLANNING, ENT, REAL, group_size=4)
    with pytest.raises(ValueError, match=r"\(B,\)"):
        hicra_entropy_length_advantages(ADV[:, None].expand(6, 4), PLANNING, ENT, REAL, 2)


def test_registry_lists_every_credit_with_its_needs():
    assert list(CREDITS) == [
        "grpo",
        "hicra",
        "high_entropy",
        "hicra_entropy_length",
        "placebo",
        "random_tokens",
    ]
    assert get_credit("placebo").needs == {"placebo_mask"}
    assert get_credit("random_tokens").needs == {"random_mask"}
    assert not get_credit("grpo").token_level and get_credit("hicra").token_level
    assert get_credit("hicra").needs == frozenset()
    assert get_credit("high_entropy").needs == {"entropies"}
    assert get_credit("hicra_entropy_length").needs == {"entropies", "whole_groups"}
    assert all(c.description for c in CREDITS.values())


def test_registry_dispatch_is_the_pure_functions():
    batch = CreditBatch(ADV, PLANNING, REAL.bool(), group_size=2, alpha=0.2, entropies=ENT)
    assert assign_credit("grpo", batch) is ADV  # bitwise TRL: the tensor itself
    assert torch.equal(assign_credit("hicra", batch), hicra_advantages(ADV, PLANNING, 0.2))
    assert torch.equal(
        assign_credit("hicra_entropy_length", batch),
        hicra_entropy_length_advantages(ADV, PLANNING, ENT, REAL, 2, 0.2),
    )


def test_registry_errors():
    with pytest.raises(HicraError, match="unknown credit 'hicr'; choose from grpo, hicra"):
        get_credit("hicr")
    batch = CreditBatch(ADV, PLANNING, REAL.bool(), group_size=2)
    with pytest.raises(ValueError, match="needs the token entropies"):
        assign_credit("high_entropy", batch)
    with pytest.raises(ValueError, match="registered twice"):
        register_credit("hicra", description="again")(lambda b: b.advantages)
    with pytest.raises(ValueError, match="unknown needs"):
        register_credit("x", description="x", needs=("gold",))
