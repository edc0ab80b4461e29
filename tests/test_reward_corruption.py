"""The graded positive control: the accuracy reward inverted on a seeded share of prompt groups."""

from __future__ import annotations

import pytest
from transformers import TrainerState

from hicra.errors import HicraError
from hicra.train.config import resolve_config
from hicra.train.rewards import CorruptedAccuracy


def scores_of(reward, step, correct):
    """The corrupted rewards of one step of rg rows whose answers are right where `correct`."""
    completions = [f"\\boxed{{{2 if ok else 3}}}" for ok in correct]
    entry = '{"question": "1 + 1", "answer": "2", "metadata": {}}'
    return reward(
        [""] * len(correct),
        completions,
        ["2"] * len(correct),
        task=["rg:chain_sum"] * len(correct),
        rg_entry=[entry] * len(correct),
        trainer_state=TrainerState(global_step=step),
    )


@pytest.mark.parametrize("fraction", [0.1, 0.25, 0.5])
def test_the_share_of_inverted_groups_is_the_fraction_and_spread(fraction):
    reward = CorruptedAccuracy(fraction=fraction, seed=3, group_size=4)
    flags = [reward.inverted(k) for k in range(40)]
    assert sum(flags) == round(40 * fraction)  # 4, 10, 20 of 40 groups
    for start in range(0, 40, 10):  # evenly spread: every 10 groups hold floor or ceil of f x 10
        assert sum(flags[start : start + 10]) in (int(10 * fraction), -(-10 * fraction // 1))
    other = CorruptedAccuracy(fraction=fraction, seed=4, group_size=4)
    assert [other.inverted(k) for k in range(40)] != flags or fraction == 0.5
    again = CorruptedAccuracy(fraction=fraction, seed=3, group_size=4)
    assert [again.inverted(k) for k in range(40)] == flags


def test_an_inverted_group_gets_one_minus_its_reward_and_accuracy_stays_real():
    reward = CorruptedAccuracy(fraction=0.5, seed=1, group_size=2)
    correct = [True, False, True, True]  # two groups of 2 at step 0: groups 0 and 1
    out = scores_of(reward, 0, correct)
    real = [1.0, 0.0, 1.0, 1.0]
    assert reward.last_scores == real  # hicra/accuracy reads these
    expected = []
    for i, score in enumerate(real):
        expected.append(1.0 - score if reward.inverted(i // 2) else score)
    assert out == expected and out != real  # exactly one of the two groups inverted
    assert reward.last_inverted == [reward.inverted(i // 2) for i in range(4)]  # for the dose
    # step 3: groups 6 and 7 of the run
    out = scores_of(reward, 3, correct)
    assert out == [1.0 - s if reward.inverted(6 + i // 2) else s for i, s in enumerate(real)]
    plain = CorruptedAccuracy(fraction=0.0, seed=1, group_size=2)
    assert scores_of(plain, 0, correct) == real


def test_reward_corruption_is_a_checked_train_option(tmp_path):
    resolved = resolve_config(["--reward-corruption", "0.25", "--output-dir", str(tmp_path / "r")])
    assert resolved.args.reward_corruption == 0.25
    with pytest.raises(
        HicraError, match=r"reward-corruption must be a number in \[0, 1\], got 1.5"
    ):
        resolve_config(["--reward-corruption", "1.5", "--output-dir", str(tmp_path / "r")])
