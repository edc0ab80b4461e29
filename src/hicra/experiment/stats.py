"""The statistics of an experiment, as pure functions over seeds (vectorised over leading axes, so
the coverage and false-positive simulations in tests and benchmarks run the very same code).

- A mean over seeds gets a t-interval (scipy.stats.t): exact coverage for normal data at every
  n >= 2, where the percentile bootstrap covered 54/72/82/85% at n = 2/3/4/6.
- Two arms are compared on the paired differences of their seeds: the mean difference, its
  t-interval and the two-sided one-sample t-test p-value (scipy.stats.ttest_1samp), so the CI
  excludes 0 exactly when p < alpha. The exact sign-flip permutation p-value is kept beside it as
  a distribution-free check (scipy.stats.permutation_test).
- A family of comparisons is adjusted by Holm's step-down (`holm`), which controls the chance of
  any false "higher/lower" in the family at alpha under any dependence between the tests.
- Power: the paired t-test's power from the noncentral t distribution (scipy.stats.nct), and the
  seeds needed to detect a difference d at the spread of the seeds' differences.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import scipy.stats

ALPHA = 0.05
CONFIDENCE = 1 - ALPHA
POWER = 0.8
EXACT_UP_TO = 16  # sign flips: all 2^n for n <= 16 seeds, 9,999 random ones beyond


def t_interval(values: np.ndarray, confidence: float = CONFIDENCE) -> tuple[np.ndarray, ...]:
    """Mean and t-interval of the mean over the last axis (n >= 2; NaN where n < 2)."""
    values = np.asarray(values, dtype=float)
    n = values.shape[-1]
    mean = values.mean(axis=-1)
    if n < 2:
        nan = np.full_like(mean, np.nan)
        return mean, nan, nan
    sem = values.std(axis=-1, ddof=1) / math.sqrt(n)
    half = scipy.stats.t.ppf(0.5 + confidence / 2, n - 1) * sem
    return mean, mean - half, mean + half


def paired_t(diff: np.ndarray, confidence: float = CONFIDENCE) -> tuple[np.ndarray, ...]:
    """Mean, t-interval and two-sided t-test p-value of paired differences (last axis: seeds).

    Where every difference is the same (sd 0) the t statistic is undefined: the interval is that
    one value, and p is 1 when it is 0, else the exact sign-flip p (2 / 2^n), never a p of 0.
    """
    diff = np.asarray(diff, dtype=float)
    n = diff.shape[-1]
    mean, low, high = t_interval(diff, confidence)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # sd 0: handled below
        p = np.asarray(scipy.stats.ttest_1samp(diff, 0.0, axis=-1).pvalue, dtype=float)
    flat = np.ptp(diff, axis=-1) == 0
    if np.any(flat):
        low, high = np.where(flat, mean, low), np.where(flat, mean, high)
        p = np.where(flat, np.where(mean == 0, 1.0, min(1.0, 2.0 / 2**n)), p)
    return mean, low, high, p


def sign_flip_p(diff: np.ndarray) -> float:
    """The two-sided p-value of the exact sign-flip permutation test on paired differences."""
    diff = np.asarray(diff, dtype=float)
    if diff.size < 2:
        return math.nan
    if np.all(diff == 0):
        return 1.0
    test = scipy.stats.permutation_test(
        (diff,),
        lambda d, axis: np.mean(d, axis=axis),
        permutation_type="samples",
        vectorized=True,
        n_resamples=np.inf if diff.size <= EXACT_UP_TO else 9_999,
        alternative="two-sided",
        random_state=np.random.default_rng(0),
    )
    return float(test.pvalue)


def holm(p_values: np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p-values over the last axis (a family of m tests).

    Sorted ascending, the i-th smallest p (i = 0..m-1) becomes max over j <= i of (m - j) p_(j),
    capped at 1; a test is rejected at alpha when its adjusted p < alpha.
    """
    p = np.asarray(p_values, dtype=float)
    m = p.shape[-1]
    if m == 0:
        return p.copy()
    order = np.argsort(p, axis=-1)
    ranked = np.take_along_axis(p, order, axis=-1) * (m - np.arange(m))
    adjusted = np.minimum(np.maximum.accumulate(ranked, axis=-1), 1.0)
    out = np.empty_like(adjusted)
    np.put_along_axis(out, order, adjusted, axis=-1)
    return out


def power_paired_t(effect: float, sd: float, n: int, alpha: float = ALPHA) -> float:
    """The chance that a two-sided paired t-test at alpha over n seeds detects a true mean
    difference `effect` when the seeds' differences have standard deviation `sd`."""
    if n < 2:
        return 0.0
    if sd <= 0:
        return 1.0 if effect != 0 else alpha
    df = n - 1
    critical = scipy.stats.t.ppf(1 - alpha / 2, df)
    shift = abs(effect) / sd * math.sqrt(n)
    return float(
        scipy.stats.nct.sf(critical, df, shift) + scipy.stats.nct.cdf(-critical, df, shift)
    )


def seeds_needed(
    effect: float, sd: float, alpha: float = ALPHA, power: float = POWER, most: int = 10_000
) -> int | None:
    """The fewest paired seeds for which `power_paired_t` reaches `power` (None past `most`)."""
    if effect == 0:
        return None
    n = 2
    while n <= most:
        if power_paired_t(effect, sd, n, alpha) >= power:
            return n
        n = n + 1 if n < 64 else int(n * 1.1)
    return None


def summarize(
    values: list[float | None], bounds: tuple[float, float] = (-math.inf, math.inf)
) -> dict[str, Any]:
    """Mean and 95% t-interval of a metric over seeds (an interval needs 2 or more), cut to the
    values the metric can take (`bounds`: an accuracy's interval never reaches below 0; cutting
    never drops the true mean, which lies within them, so coverage is kept)."""
    array = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    if array.size == 0:
        return {"mean": None, "ci_low": None, "ci_high": None, "n": 0}
    mean, low, high = t_interval(array)
    if array.size < 2:
        return {"mean": float(mean), "ci_low": None, "ci_high": None, "n": 1}
    if np.ptp(array) == 0:
        low = high = mean
    low, high = max(float(low), bounds[0]), min(float(high), bounds[1])
    return {"mean": float(mean), "ci_low": low, "ci_high": high, "n": int(array.size)}


def paired(arm: dict[int, float], other: dict[int, float]) -> dict[str, Any]:
    """Arm minus other over the seeds both have: the mean difference, the sd of the differences,
    its 95% t-interval, the paired t-test p-value and the exact sign-flip p-value."""
    seeds = sorted(s for s in arm if s in other)
    out: dict[str, Any] = {"n": len(seeds), "seeds": seeds}
    empty = dict.fromkeys(("mean_diff", "sd_diff", "ci_low", "ci_high", "p_value", "p_sign_flip"))
    if not seeds:
        return {**out, **empty}
    diff = np.asarray([arm[s] - other[s] for s in seeds], dtype=float)
    if diff.size < 2:
        return {**out, **empty, "mean_diff": float(diff[0])}
    mean, low, high, p = paired_t(diff)
    return {
        **out,
        "mean_diff": float(mean),
        "sd_diff": float(diff.std(ddof=1)),
        "ci_low": float(low),
        "ci_high": float(high),
        "p_value": float(p),
        "p_sign_flip": sign_flip_p(diff),
    }
