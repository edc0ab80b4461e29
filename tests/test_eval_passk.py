"""avg@k, unbiased pass@k and majority vote against numbers worked out by hand."""

import pytest

from hicra.eval.passk import (
    avg_at_k,
    k_values,
    majority_vote,
    mean_majority,
    mean_pass_at_k,
    pass_at_k,
)


@pytest.mark.parametrize(
    ("n", "c", "k", "expected"),
    [
        (10, 3, 1, 3 / 10),  # pass@1 is the share of correct samples
        (4, 1, 2, 1 - 3 / 6),  # 1 - C(3,2)/C(4,2)
        (5, 2, 2, 1 - 3 / 10),  # 1 - C(3,2)/C(5,2)
        (4, 2, 3, 1.0),  # n - c < k: every draw of 3 holds a correct sample
        (32, 4, 8, 1 - 3108105 / 10518300),  # 1 - C(28,8)/C(32,8)
        (32, 0, 8, 0.0),
        (32, 32, 1, 1.0),
        (1, 1, 1, 1.0),
        (1, 0, 1, 0.0),
    ],
)
def test_pass_at_k_matches_hand_computed_binomials(n, c, k, expected):
    assert pass_at_k(n, c, k) == pytest.approx(expected, abs=1e-12)


def test_pass_at_k_is_the_unbiased_estimator_not_the_naive_one():
    # with 4 samples, 1 correct: pass@2 is 1/2, while 1 - (1 - 1/4)^2 would say 7/16
    assert pass_at_k(4, 1, 2) == pytest.approx(0.5)
    assert pass_at_k(4, 1, 2) != pytest.approx(1 - (1 - 1 / 4) ** 2)


@pytest.mark.parametrize(("n", "c", "k"), [(4, 5, 1), (4, -1, 1), (4, 1, 0), (4, 1, 5)])
def test_pass_at_k_rejects_impossible_counts(n, c, k):
    with pytest.raises(ValueError):
        pass_at_k(n, c, k)


def test_k_values_are_powers_of_two_and_n():
    assert k_values(1) == [1]
    assert k_values(4) == [1, 2, 4]
    assert k_values(32) == [1, 2, 4, 8, 16, 32]
    assert k_values(6) == [1, 2, 4, 6]
    assert k_values(0) == []


def test_avg_and_mean_pass_at_k_over_problems():
    correct = [[True, False, False, False], [True, True, False, False]]
    assert avg_at_k(correct) == pytest.approx((1 / 4 + 2 / 4) / 2)
    # problem 1: 1 - C(3,2)/C(4,2) = 1/2; problem 2: 1 - C(2,2)/C(4,2) = 5/6
    assert mean_pass_at_k(correct, 2) == pytest.approx((1 / 2 + 5 / 6) / 2)
    assert mean_pass_at_k(correct, 1) == pytest.approx(avg_at_k(correct))
    assert mean_pass_at_k(correct, 4) == 1.0
    with pytest.raises(ValueError):
        avg_at_k([])


def test_majority_vote_groups_equal_answers_and_ignores_missing_ones():
    # "27" and "27.0" vote together (2 votes) and beat "5" (1 vote); None does not vote
    assert majority_vote(["27", "5", "27.0", None], [True, False, True, False]) is True
    # the wrong answer is the most frequent
    assert majority_vote(["5", "5", "27", None], [False, False, True, False]) is False
    # a tie goes to the answer seen first
    assert majority_vote(["27", "5"], [True, False]) is True
    assert majority_vote(["5", "27"], [False, True]) is False
    # no answer at all cannot be right
    assert majority_vote([None, None], [False, False]) is False
    with pytest.raises(ValueError):
        majority_vote(["1"], [True, False])


def test_mean_majority_over_problems():
    answers = [["204", "5", "5", "7"], ["113", "113", "1", None]]
    correct = [[True, False, False, False], [True, True, False, False]]
    assert mean_majority(answers, correct) == pytest.approx(0.5)
