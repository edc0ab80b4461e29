"""Monte-Carlo checks of the analysis' statistics, vectorised over simulated experiments.

They run the analysis' own functions (`hicra.experiment.stats`) on many synthetic experiments with
a known truth, beside the method the analysis used before (percentile bootstrap CIs, exact
sign-flip p-values, every test at p < 0.05 with no adjustment), so a claim such as "covers 95% at
4 seeds" or "at most 5% of null experiments print a verdict" is a measured number. Used by
tests/test_experiment_stats.py and benchmarks/experiment_stats.py.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from hicra.experiment.stats import (
    ALPHA,
    crossed,
    crossed_minimal_effect,
    holm,
    paired_t,
    power_paired_t,
    t_interval,
)


# --------------------------------------------------------------------------- the old method
def percentile_bootstrap(
    values: np.ndarray, rng: np.random.Generator, resamples: int = 1000, chunk: int = 500
) -> tuple[np.ndarray, np.ndarray]:
    """The old 95% CI: percentile bootstrap of the mean over the last axis (as scipy's
    `bootstrap(method="percentile")`), for each row of a (S, n) array."""
    sims, n = values.shape
    low, high = np.empty(sims), np.empty(sims)
    index = rng.integers(0, n, size=(resamples, n))
    for start in range(0, sims, chunk):
        means = values[start : start + chunk][:, index].mean(axis=-1)
        low[start : start + chunk] = np.percentile(means, 2.5, axis=-1)
        high[start : start + chunk] = np.percentile(means, 97.5, axis=-1)
    return low, high


def sign_flip_p_exact(diff: np.ndarray) -> np.ndarray:
    """The old p-value: the exact two-sided sign-flip test of each row of a (S, n) array (all
    2^n flips; the statistic is the mean, ties count, as scipy's permutation_test does)."""
    n = diff.shape[-1]
    signs = np.array(list(itertools.product((1.0, -1.0), repeat=n)))
    flipped = np.abs(diff @ signs.T) / n
    observed = np.abs(diff.mean(axis=-1, keepdims=True))
    return np.mean(flipped >= observed * (1 - 1e-12), axis=-1)


# --------------------------------------------------------------------------- coverage
@dataclass(frozen=True)
class Coverage:
    n: int
    t_interval: float  # the share of simulated experiments whose interval holds the true mean
    bootstrap: float
    t_width: float  # mean width, in units of the data's standard deviation
    bootstrap_width: float


def coverage(
    n: int, sims: int = 4000, seed: int = 0, distribution: str = "normal", resamples: int = 1000
) -> Coverage:
    """Coverage of the 95% interval of a mean over n seeds, t-interval vs percentile bootstrap.
    `distribution`: "normal", or "skewed" (exponential, the mean's sampling law is skewed)."""
    rng = np.random.default_rng(seed)
    if distribution == "normal":
        values, truth = rng.normal(0.0, 1.0, size=(sims, n)), 0.0
    elif distribution == "skewed":
        values, truth = rng.exponential(1.0, size=(sims, n)), 1.0
    else:
        raise ValueError(f"unknown distribution {distribution!r}")
    _, t_low, t_high = t_interval(values)
    b_low, b_high = percentile_bootstrap(values, rng, resamples)
    return Coverage(
        n,
        float(np.mean((t_low <= truth) & (truth <= t_high))),
        float(np.mean((b_low <= truth) & (truth <= b_high))),
        float(np.mean(t_high - t_low)),
        float(np.mean(b_high - b_low)),
    )


# --------------------------------------------------------------------------- false positives
@dataclass(frozen=True)
class NullRates:
    """Shares of simulated null experiments (no arm differs) with at least one verdict."""

    old: float  # old method: arms vs baseline, p_sign_flip < 0.05 and bootstrap CI excludes 0
    unadjusted: float  # the new contrasts, paired t, every test at p < alpha
    holm: float  # the new analysis: any Holm-adjusted p < alpha in either family
    primary: float  # the primary family alone (its contrasts, Holm-adjusted)
    secondary: float  # the secondary family alone
    tests_old: int
    tests_new: int


def null_experiments(
    arms: int = 4,
    metrics: int = 3,
    seeds: int = 8,
    sims: int = 2000,
    correlation: float = 0.5,
    seed: int = 0,
    resamples: int = 500,
) -> NullRates:
    """Simulate experiments with no effect at all: `arms` arms (arm 0 the baseline, arms 1 and 2
    "hicra" and "placebo"), `metrics` compared metrics correlated with each other, `seeds` paired
    seeds. The new analysis tests every arm vs the baseline plus arm 1 vs arm 2, metric 0 primary."""
    rng = np.random.default_rng(seed)
    cov = np.full((metrics, metrics), correlation) + (1 - correlation) * np.eye(metrics)
    chol = np.linalg.cholesky(cov)
    shared = rng.normal(size=(sims, 1, seeds, metrics))  # the seed's own luck, shared by arms
    noise = rng.normal(size=(sims, arms, seeds, metrics)) @ chol.T
    values = shared + noise  # (sims, arms, seeds, metrics)
    old_hits = np.zeros(sims, dtype=bool)
    for arm in range(1, arms):
        for metric in range(metrics):
            diff = values[:, arm, :, metric] - values[:, 0, :, metric]
            low, high = percentile_bootstrap(diff, rng, resamples)
            p = sign_flip_p_exact(diff)
            old_hits |= (p < ALPHA) & ((low > 0) | (high < 0))
    contrasts = [(arm, 0) for arm in range(1, arms)] + ([(1, 2)] if arms > 2 else [])
    p = np.empty((sims, len(contrasts), metrics))
    for index, (a, b) in enumerate(contrasts):
        diff = values[:, a] - values[:, b]  # (sims, seeds, metrics)
        p[:, index, :] = paired_t(np.moveaxis(diff, -1, 1))[3]
    primary = p[:, :, 0]
    secondary = p[:, :, 1:].reshape(sims, -1)
    primary_hit = np.any(holm(primary) < ALPHA, axis=-1)
    secondary_hit = (
        np.any(holm(secondary) < ALPHA, axis=-1) if secondary.size else np.zeros(sims, bool)
    )
    return NullRates(
        old=float(old_hits.mean()),
        unadjusted=float(np.mean(np.any(p.reshape(sims, -1) < ALPHA, axis=-1))),
        holm=float(np.mean(primary_hit | secondary_hit)),
        primary=float(primary_hit.mean()),
        secondary=float(secondary_hit.mean()),
        tests_old=(arms - 1) * metrics,
        tests_new=len(contrasts) * metrics,
    )


def single_test_rate(seeds: int, sims: int = 4000, seed: int = 0) -> tuple[float, float]:
    """Under the null, how often one primary test says "higher/lower": the paired t-test at
    alpha, and the old rule (sign-flip p < 0.05 and bootstrap CI excluding 0)."""
    rng = np.random.default_rng(seed)
    diff = rng.normal(size=(sims, seeds))
    t_rate = float(np.mean(paired_t(diff)[3] < ALPHA))
    low, high = percentile_bootstrap(diff, rng, 500)
    old = (sign_flip_p_exact(diff) < ALPHA) & ((low > 0) | (high < 0))
    return t_rate, float(old.mean())


def simulated_power(effect: float, sd: float, seeds: int, sims: int = 4000, seed: int = 0) -> float:
    """The share of simulated experiments (normal differences) in which the paired t-test at
    alpha detects a true difference `effect`: checks `stats.power_paired_t`."""
    rng = np.random.default_rng(seed)
    diff = rng.normal(effect, sd, size=(sims, seeds))
    return float(np.mean(paired_t(diff)[3] < ALPHA))


# --------------------------------------------------------------------------- ties on the lattice
def old_paired_t_p(diff: np.ndarray) -> np.ndarray:
    """The p-value before ties were judged relative to the values: `ptp == 0` as the only guard,
    so differences equal up to floating-point noise gave a t-test p near 0."""
    import warnings

    import scipy.stats

    n = diff.shape[-1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        p = np.asarray(scipy.stats.ttest_1samp(diff, 0.0, axis=-1).pvalue, dtype=float)
    flat = np.ptp(diff, axis=-1) == 0
    mean = diff.mean(axis=-1)
    return np.where(flat, np.where(mean == 0, 1.0, min(1.0, 2.0 / 2**n)), p)


@dataclass(frozen=True)
class Ties:
    """Experiments whose seeds all differ by the same nonzero number of problems."""

    seeds: int
    missed_before: float  # share the old `ptp == 0` guard missed (floating-point noise)
    verdict_before: float  # share that printed "higher/lower" (p < alpha) before
    verdict_now: float  # share that does now (exact sign-flip p: never below 6 seeds)
    null_before: float  # null experiments on the lattice: share with a verdict before
    null_now: float  # ... and now


def lattice_ties(
    seeds: int, problems: int = 40, sims: int = 4000, seed: int = 0, accuracy: float = 0.6
) -> Ties:
    """Held-out accuracies are k / problems. (a) Every seed exactly j problems better (j = +-1,
    +-2), the issue's case; (b) null experiments, each arm's score binomial on `problems` at a
    seed's own accuracy: how often each rule prints a verdict."""
    rng = np.random.default_rng(seed)
    base = rng.integers(5, problems - 5, size=(sims, seeds))
    step = rng.choice([-2, -1, 1, 2], size=(sims, 1))
    diff = (base + step) / problems - base / problems
    old = old_paired_t_p(diff)
    new = paired_t(diff, scale=np.maximum(base + step, base).max(axis=-1) / problems)[3]
    level = rng.uniform(accuracy - 0.3, accuracy + 0.3, size=(sims, seeds))
    a = rng.binomial(problems, level) / problems
    b = rng.binomial(problems, level) / problems
    null = a - b
    scale = np.maximum(a, b).max(axis=-1)
    return Ties(
        seeds,
        float(np.mean(np.ptp(diff, axis=-1) > 0)),
        float(np.mean(old < ALPHA)),
        float(np.mean(new < ALPHA)),
        float(np.mean(old_paired_t_p(null) < ALPHA)),
        float(np.mean(paired_t(null, scale=scale)[3] < ALPHA)),
    )


# --------------------------------------------------------------------------- seeds x problems
@dataclass(frozen=True)
class ProblemLevel:
    """Held-out contrasts against the population of problems (arms differ problem by problem)."""

    seeds: int
    problems: int
    seed_level: float  # share of null experiments with p < alpha: paired t over seed means
    crossed: float  # the same for the seeds x problems test
    coverage: float  # share of crossed 95% CIs holding the true difference, under an effect
    seed_coverage: float  # the same for the seed-level t-interval


def logistic_experiments(
    seeds: int,
    problems: int,
    sims: int,
    rng: np.random.Generator,
    effect: float = 0.0,
    heterogeneity: float = 1.0,
    seed_sd: float = 0.3,
    difficulty_sd: float = 1.5,
) -> np.ndarray:
    """(sims, seeds, problems) differences of two arms' correctness (1 sample per problem): a
    problem's logit is its difficulty plus each arm's own problem effect (their difference has
    sd `heterogeneity`), a seed's effect per arm, and `effect` for the first arm."""
    difficulty = rng.normal(0, difficulty_sd, size=(sims, 1, 1, problems))
    per_arm = rng.normal(0, heterogeneity / np.sqrt(2), size=(sims, 2, 1, problems))
    per_seed = rng.normal(0, seed_sd, size=(sims, 2, seeds, 1))
    shift = np.array([effect, 0.0]).reshape(1, 2, 1, 1)
    chance = 1 / (1 + np.exp(-(difficulty + per_arm + per_seed + shift)))
    correct = rng.random((sims, 2, seeds, problems)) < chance
    return correct[:, 0].astype(float) - correct[:, 1]


def true_difference(
    effect: float, heterogeneity: float = 1.0, seed_sd: float = 0.3, difficulty_sd: float = 1.5
) -> float:
    """The population difference (over problems and seeds) of `logistic_experiments`' arms, by
    Monte Carlo on 4 million draws."""
    rng = np.random.default_rng(12345)
    size = 4_000_000
    common = rng.normal(0, difficulty_sd, size)
    a = common + rng.normal(0, heterogeneity / np.sqrt(2), size) + rng.normal(0, seed_sd, size)
    b = common + rng.normal(0, heterogeneity / np.sqrt(2), size) + rng.normal(0, seed_sd, size)
    return float(np.mean(1 / (1 + np.exp(-(a + effect))) - 1 / (1 + np.exp(-b))))


def problem_level(
    seeds: int,
    problems: int = 40,
    sims: int = 2000,
    heterogeneity: float = 1.0,
    effect: float = 0.5,
    seed: int = 0,
) -> ProblemLevel:
    """False-positive rate (no effect) of the seed-level and the seeds x problems test, and the
    coverage of their 95% intervals under a logit `effect` (truth by `true_difference`)."""
    rng = np.random.default_rng(seed)
    null = logistic_experiments(seeds, problems, sims, rng, 0.0, heterogeneity)
    seed_p = paired_t(null.mean(axis=-1))[3]
    crossed_p = crossed(null)["p"]
    shifted = logistic_experiments(seeds, problems, sims, rng, effect, heterogeneity)
    truth = true_difference(effect, heterogeneity)
    result = crossed(shifted)
    _, low, high, _ = paired_t(shifted.mean(axis=-1))
    return ProblemLevel(
        seeds,
        problems,
        float(np.mean(seed_p < ALPHA)),
        float(np.mean(crossed_p < ALPHA)),
        float(np.mean((result["ci_low"] <= truth) & (truth <= result["ci_high"]))),
        float(np.mean((low <= truth) & (truth <= high))),
    )


def crossed_power_check(
    components: dict[str, float], seeds: int, problems: int, sims: int = 4000, seed: int = 0
) -> tuple[float, float]:
    """(minimal detectable effect, simulated power at it): normal seed, problem and residual
    effects with the given variances; `crossed` at alpha should detect it in ~80%."""
    effect = crossed_minimal_effect(components, seeds, problems)
    rng = np.random.default_rng(seed)
    table = (
        effect
        + rng.normal(0, np.sqrt(components["seed"]), size=(sims, seeds, 1))
        + rng.normal(0, np.sqrt(components["problem"]), size=(sims, 1, problems))
        + rng.normal(0, np.sqrt(components["residual"]), size=(sims, seeds, problems))
    )
    return float(effect), float(np.mean(crossed(table)["p"] < ALPHA))


# --------------------------------------------------------------------------- forking paths
@dataclass(frozen=True)
class Peeking:
    """Null experiments where seeds are added one at a time after looking."""

    planned: int
    most: int
    any_verdict: float  # share that print "higher/lower" at some look (the forking path)
    unflagged: float  # share whose verdict is not flagged (it came at the planned seeds)


def seed_peeking(planned: int = 3, most: int = 8, sims: int = 4000, seed: int = 0) -> Peeking:
    """Add seeds from `planned` to `most` after looking, stopping at the first p < alpha: the
    false-positive rate climbs; under the pre-registration every verdict past the planned seeds
    says so, so the rate of unflagged verdicts is the planned test's own."""
    rng = np.random.default_rng(seed)
    diff = rng.normal(size=(sims, most))
    hit = np.zeros(sims, dtype=bool)
    first = np.zeros(sims, dtype=bool)
    for n in range(planned, most + 1):
        now = paired_t(diff[:, :n])[3] < ALPHA
        if n == planned:
            first = now
        hit |= now
    return Peeking(planned, most, float(hit.mean()), float(first.mean()))


def best_of_metrics(
    metrics: int = 3, seeds: int = 8, sims: int = 4000, correlation: float = 0.5, seed: int = 0
) -> tuple[float, float]:
    """(share of null experiments where some metric gives a verdict, where the pre-registered one
    does): choosing the primary metric after looking vs keeping the recorded one."""
    rng = np.random.default_rng(seed)
    cov = np.full((metrics, metrics), correlation) + (1 - correlation) * np.eye(metrics)
    diff = rng.normal(size=(sims, seeds, metrics)) @ np.linalg.cholesky(cov).T
    p = paired_t(np.moveaxis(diff, -1, 1))[3]  # (sims, metrics)
    return float(np.mean(np.any(p < ALPHA, axis=-1))), float(np.mean(p[:, 0] < ALPHA))


def old_seeds_needed(effect: float, sd: float, alpha: float = ALPHA, power: float = 0.8) -> int:
    """The seed search before: every n to 64, then steps of x1.1 (it overshot: 213 for 199)."""
    n = 2
    while power_paired_t(effect, sd, n, alpha) < power:
        n = n + 1 if n < 64 else int(n * 1.1)
    return n
