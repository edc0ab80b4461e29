"""The experiment statistics, checked by hand-computed values and by simulation (vectorised: the
analysis' own functions on thousands of synthetic experiments with a known truth)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats

from hicra.experiment.calibration import (
    coverage,
    null_experiments,
    old_paired_t_p,
    old_seeds_needed,
    problem_level,
    seed_peeking,
    sign_flip_p_exact,
    simulated_power,
    single_test_rate,
)
from hicra.experiment.stats import (
    crossed,
    crossed_seeds_needed,
    holm,
    minimal_effect,
    no_spread,
    paired_t,
    power_paired_t,
    seeds_needed,
    sign_flip_p,
    sign_flip_seeds,
    t_interval,
)


def test_t_interval_and_paired_t_are_hand_computed():
    mean, low, high = t_interval(np.array([0.3, 0.5, 0.7]))
    # sd 0.2, t(0.975, 2) = 4.302653: half-width 4.302653 * 0.2 / sqrt(3) = 0.496828
    assert (mean, low, high) == pytest.approx((0.5, 0.003172, 0.996828), abs=1e-6)
    mean, low, high, p = paired_t(np.array([0.1, 0.2, 0.3]))
    assert p == pytest.approx(0.074180, abs=1e-6)  # t = 3.4641 on 2 df
    assert p == pytest.approx(scipy.stats.ttest_rel([0.3, 0.5, 0.7], [0.2, 0.3, 0.4]).pvalue)
    # the CI excludes 0 exactly when p < 0.05: the same t distribution
    rng = np.random.default_rng(3)
    diffs = rng.normal(0.5, 1.0, size=(500, 5))
    _, low, high, p = paired_t(diffs)
    assert np.array_equal((low > 0) | (high < 0), p < 0.05)


def test_holm_is_hand_computed():
    # sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1 = 0.02, 0.03, 0.06, 0.04; running max
    assert holm(np.array([0.01, 0.04, 0.03, 0.005])) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm(np.array([0.5, 0.9])) == pytest.approx([1.0, 1.0])  # capped at 1
    assert holm(np.array([0.02])) == pytest.approx([0.02])  # a family of one: alpha itself
    rows = holm(np.array([[0.01, 0.04], [0.04, 0.01]]))  # vectorised over rows
    assert np.allclose(rows, [[0.02, 0.04], [0.04, 0.02]])


def test_sign_flip_p_matches_scipy():
    diff = np.array([0.1, -0.05, 0.2, 0.15])
    exact = sign_flip_p_exact(diff[None, :])[0]
    assert exact == pytest.approx(sign_flip_p(diff))
    assert sign_flip_p(np.array([0.1, 0.2, 0.3])) == pytest.approx(2 / 8)


def test_power_formula_agrees_with_known_values_and_simulation():
    # effect size 1, 10 paired seeds, alpha 0.05 two-sided: power 0.8031 (G*Power's value)
    assert power_paired_t(1.0, 1.0, 10) == pytest.approx(0.8031, abs=1e-4)
    assert seeds_needed(1.0, 1.0) == 10
    assert seeds_needed(0.5, 1.0) == 34  # a quarter of the effect size squared: ~4x the seeds
    assert seeds_needed(0.05, 0.02) == 4  # large effect at small spread
    assert simulated_power(1.0, 1.0, 10, sims=4000) == pytest.approx(0.803, abs=0.025)
    assert power_paired_t(0.0, 1.0, 10) == pytest.approx(0.05, abs=1e-9)


@pytest.mark.parametrize("n", [2, 3, 4, 6, 8])
def test_t_intervals_cover_near_nominal_at_every_seed_count(n):
    """The issue's case: the percentile bootstrap covered 54/72/82/85% at n = 2/3/4/6."""
    result = coverage(n, sims=3000, resamples=400)
    assert 0.93 <= result.t_interval <= 0.97  # 95% +- 4 standard errors of 3,000 draws
    assert result.bootstrap < 0.91  # the old method under-covers at these n
    if n == 4:
        assert result.t_interval >= 0.90
    if n == 2:  # honest, and wide: 12.7 standard errors each side
        assert result.bootstrap < 0.6 and result.t_width > 10 * result.bootstrap_width


def test_multiplicity_is_controlled_under_the_null():
    """4 arms x 3 metrics, no effect: the old method said "higher/lower" in ~30-35% of
    experiments; each family of the new analysis does in at most alpha."""
    rates = null_experiments(arms=4, metrics=3, seeds=8, sims=1500, resamples=300)
    assert rates.tests_new == 12 and rates.tests_old == 9
    assert rates.old > 0.2 and rates.unadjusted > 0.25
    assert rates.primary <= 0.05 + 0.017  # + 3 standard errors of 1,500 draws
    assert rates.secondary <= 0.05 + 0.017
    assert rates.holm <= 0.10 + 0.023  # two families: at most 2 alpha


def test_primary_test_is_at_alpha():
    t_rate, _ = single_test_rate(seeds=8, sims=4000)
    assert t_rate == pytest.approx(0.05, abs=0.012)
    t4, old4 = single_test_rate(seeds=4, sims=4000)
    assert t4 == pytest.approx(0.05, abs=0.012)
    assert old4 == 0.0  # with 4 seeds the sign-flip p is never below 0.125


# ----------------------------------------------------------------- issue 28: ties, power, problems
def test_lattice_noise_is_no_spread_and_gets_the_exact_sign_flip_p():
    """+1/40 in each of 3 seeds: the differences carry ~6e-17 of floating-point spread."""
    grpo = np.array([11, 28, 33]) / 40
    diff = (np.array([12, 29, 34]) / 40) - grpo
    assert 0 < np.ptp(diff) < 1e-15
    assert old_paired_t_p(diff) < 1e-10  # what the `ptp == 0` guard gave
    _, low, high, p = paired_t(diff, scale=34 / 40)
    assert p == pytest.approx(0.25) and low == pytest.approx(high)
    assert paired_t(np.array([0.1 + 0.2 - 0.3, 0.0, 0.0]), scale=0.3)[3] == 1.0  # a zero tie
    assert not no_spread(np.array([0.025, 0.05, 0.025]), 0.85)  # a real spread stays one
    # vectorised: one row tied, one not
    rows = np.stack([diff, np.array([0.025, 0.05, 0.0])])
    assert no_spread(rows, np.array([0.85, 0.85])).tolist() == [True, False]


def test_seeds_needed_is_an_exact_search():
    """The issue's case: d = 0.02 at sd 0.1 needs 199 seeds; the x1.1 steps printed 213."""
    assert old_seeds_needed(0.02, 0.1) == 213
    assert seeds_needed(0.02, 0.1) == 199
    assert power_paired_t(0.02, 0.1, 199) >= 0.8 > power_paired_t(0.02, 0.1, 198)
    # at Holm's strictest step of 3 tests, more seeds
    assert seeds_needed(1.0, 1.0, alpha=0.05 / 3) > seeds_needed(1.0, 1.0)


def test_sign_flip_seeds_and_minimal_effect():
    assert sign_flip_seeds(0.05) == 6 and sign_flip_seeds(0.025) == 7  # 2/64 < 0.05, 2/128 < 0.025
    assert sign_flip_seeds(1 / 16) == 6  # p must be below alpha: 2/32 = 1/16 is not
    effect = minimal_effect(1.0, 10)
    assert effect == pytest.approx(1.0, abs=0.01)  # 10 seeds detect d = sd with power 0.8031
    assert power_paired_t(effect, 1.0, 10) == pytest.approx(0.8, abs=1e-6)


def test_crossed_is_hand_computed():
    """2 seeds x 3 problems: MS seeds 1/6, MS problems 1/2, MS residual 1/6 (2 df). The seed
    component is 0 (MS seeds = MS residual), so the mean's variance is MS problems / 6 = 1/12 on
    2 Satterthwaite degrees of freedom: t = 0.5 / sqrt(1/12) = 1.732, p = 0.2254."""
    result = crossed(np.array([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]]))
    assert float(result["mean"]) == pytest.approx(0.5)
    assert float(result["se"]) ** 2 == pytest.approx(1 / 12)
    assert float(result["df"]) == pytest.approx(2.0)
    assert float(result["p"]) == pytest.approx(2 * scipy.stats.t.sf(0.5 / np.sqrt(1 / 12), 2))
    assert float(result["p"]) == pytest.approx(0.2254, abs=1e-4)
    assert float(result["seed"]) == 0 and float(result["problem"]) == pytest.approx(1 / 6)
    assert float(result["residual"]) == pytest.approx(1 / 6)
    # no problem effect, many problems: the paired t-test on the seeds' means
    rng = np.random.default_rng(0)
    table = rng.normal(0, 1, size=(5, 1)) + rng.normal(0, 0.01, size=(5, 400))
    assert float(crossed(table)["p"]) == pytest.approx(float(paired_t(table.mean(-1))[3]), rel=0.05)


def test_seeds_cannot_beat_too_few_problems():
    """The problems' own variance (problem / P) does not shrink with seeds: with 40 problems whose
    differences vary by 0.2 (variance 0.04), no number of seeds detects 0.02."""
    components = {"seed": 0.0001, "problem": 0.04, "residual": 0.1}
    assert crossed_seeds_needed(0.02, components, 40) is None
    assert crossed_seeds_needed(0.02, components, 4000) is not None


def test_problem_level_false_positives_are_at_alpha():
    """Arms that differ problem by problem (sd 1 logit) but not on average over problems: the
    seed-level test says "higher/lower" beyond alpha at 8 seeds (~10%), the seeds x problems test
    does not. 600 simulated experiments: a 3-standard-error band."""
    result = problem_level(8, problems=40, sims=600)
    assert result.seed_level > 0.07
    assert result.crossed <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / 600)
    assert result.coverage >= 0.95 - 3 * np.sqrt(0.05 * 0.95 / 600)


def test_seed_peeking_is_flagged():
    peek = seed_peeking(3, 8, sims=2000)
    assert peek.any_verdict > 0.1  # the 14.6%
    assert peek.unflagged == pytest.approx(0.05, abs=0.015)  # verdicts at the planned seeds
