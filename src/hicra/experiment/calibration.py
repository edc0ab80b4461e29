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

from hicra.experiment.stats import ALPHA, holm, paired_t, t_interval


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
