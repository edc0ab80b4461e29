import math

import pytest
import torch

from hicra import grpo_advantages, hicra_advantages
from hicra.advantages import hicra_entropy_length_advantages, high_entropy_advantages


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


def test_entropy_length_variant_hand_computed():
    adv = torch.tensor([1.0, -1.0, 0.5, -0.5])
    planning = torch.tensor([[0, 0, 1, 0], [1, 0, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0]]).bool()
    ent = torch.tensor([[0.1, 0.9, 0.5, 0.8], [0.3, 0.2, 0, 0], [0.9, 0.9, 0, 0], [0.1, 0.2, 0, 0]])
    real = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0], [1, 1, 0, 0], [1, 1, 0, 0]])
    correct = torch.tensor([True, False, False, False])
    out = hicra_entropy_length_advantages(adv, planning, ent, real, correct, group_size=2)
    # row 0: correct and longer (4 > 3): planning idx 2 -> 1.2; top-30% entropy (0.9) idx 1 -> 1.2
    # row 1: plain HICRA on its planning token; group 2 has no correct response: plain GRPO
    assert close(
        out, [[1, 1.2, 1.2, 1], [-0.8, -1, -1, -1], [0.5, 0.5, 0.5, 0.5], [-0.5, -0.5, -0.5, -0.5]]
    )
