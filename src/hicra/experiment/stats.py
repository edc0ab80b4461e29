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
- Ties: held-out accuracy lives on a lattice (multiples of 1/problems), so every seed's difference
  can be the same number up to floating-point noise (sd 6e-17). Spread is judged against the
  values' own size (`TIE_TOLERANCE`): within it the t statistic is undefined and the p-value is the
  exact sign-flip p (2 / 2^n: 0.25 at 3 seeds), never a t-test p of 1e-30.
- Power: the paired t-test's power from the noncentral t distribution (scipy.stats.nct); the seeds
  needed to detect a difference d at the spread of the seeds' differences (every n tried, none
  skipped), and the minimal detectable effect at a given number of seeds.
- Seeds x problems: `crossed` analyses a (seeds, problems) table of differences as a two-way
  crossed random-effects design (seed, problem, residual variance by the ANOVA moment estimator,
  Satterthwaite degrees of freedom), so a held-out difference is judged against the population of
  problems as well as of seeds.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import scipy.optimize
import scipy.stats

ALPHA = 0.05
CONFIDENCE = 1 - ALPHA
POWER = 0.8
EXACT_UP_TO = 16  # sign flips: all 2^n for n <= 16 seeds, 9,999 random ones beyond
TIE_TOLERANCE = 1e-9  # differences spread less than this times the values' size do not vary
NORMAL_BELOW = 6  # below 6 seeds the exact sign-flip test cannot reach 0.05 (2 / 2^5 = 0.0625)


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


def no_spread(diff: np.ndarray, scale: np.ndarray | float | None = None) -> np.ndarray:
    """Whether the differences (last axis) do not vary: their range is within `TIE_TOLERANCE`
    times `scale` (the size of the values they were computed from; default the differences' own
    largest magnitude), so floating-point noise on a lattice of ties counts as no spread."""
    diff = np.asarray(diff, dtype=float)
    if scale is None:
        scale = np.max(np.abs(diff), axis=-1)
    return np.ptp(diff, axis=-1) <= TIE_TOLERANCE * np.asarray(scale, dtype=float)


def paired_t(
    diff: np.ndarray, confidence: float = CONFIDENCE, scale: np.ndarray | float | None = None
) -> tuple[np.ndarray, ...]:
    """Mean, t-interval and two-sided t-test p-value of paired differences (last axis: seeds).

    Where the differences do not vary (`no_spread`, judged against `scale`) the t statistic is
    undefined: the interval is that one value, and p is 1 when it is 0, else the exact sign-flip p
    (2 / 2^n), never a p of 0.
    """
    diff = np.asarray(diff, dtype=float)
    n = diff.shape[-1]
    mean, low, high = t_interval(diff, confidence)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # sd 0: handled below
        p = np.asarray(scipy.stats.ttest_1samp(diff, 0.0, axis=-1).pvalue, dtype=float)
    flat = no_spread(diff, scale)
    if np.any(flat):
        size = np.max(np.abs(diff), axis=-1) if scale is None else np.asarray(scale, dtype=float)
        zero = np.abs(mean) <= TIE_TOLERANCE * size
        low, high = np.where(flat, mean, low), np.where(flat, mean, high)
        p = np.where(flat, np.where(zero, 1.0, min(1.0, 2.0 / 2**n)), p)
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


def _two_sided(critical: Any, df: Any, shift: Any) -> Any:
    """The chance that a noncentral t (df, shift) falls beyond +-critical. The far tail's mass is
    below 1e-9 wherever scipy returns NaN for it, so NaN there counts as 0."""
    lower = np.nan_to_num(scipy.stats.nct.cdf(-critical, df, shift), nan=0.0)
    return scipy.stats.nct.sf(critical, df, shift) + lower


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
    return float(_two_sided(critical, df, shift))


def seeds_needed(
    effect: float, sd: float, alpha: float = ALPHA, power: float = POWER, most: int = 10_000
) -> int | None:
    """The fewest paired seeds for which `power_paired_t` reaches `power` (None past `most`):
    every n from 2 to `most` is tried at once (the power at each n by scipy.stats.nct)."""
    if effect == 0:
        return None
    if sd <= 0:
        return 2
    start = 2
    for stop in (256, most):  # most answers are small: try those first, then the rest at once
        n = np.arange(start, max(start, min(stop, most)) + 1)
        df = n - 1
        critical = scipy.stats.t.ppf(1 - alpha / 2, df)
        shift = abs(effect) / sd * np.sqrt(n)
        reached = _two_sided(critical, df, shift)
        hits = np.flatnonzero(reached >= power)
        if hits.size:
            return int(n[hits[0]])
        start = int(n[-1]) + 1
        if start > most:
            break
    return None


def sign_flip_seeds(alpha: float = ALPHA) -> int:
    """The fewest seeds at which the exact two-sided sign-flip test can reach `alpha` at all (its
    smallest p is 2 / 2^n): 6 at 0.05, 7 at 0.025. With no measured spread this is the only seed
    count that can be given, a lower bound."""
    return max(2, math.ceil(1 + math.log2(1 / alpha) + 1e-12))


def minimal_effect(
    sd: float, n: int, alpha: float = ALPHA, power: float = POWER, df: float | None = None
) -> float | None:
    """The smallest true difference a two-sided t-test at alpha detects with `power` when the
    estimate's standard error is sd / sqrt(n) (noncentral t on `df`, default n - 1 degrees of
    freedom); None below 2 seeds or without a spread."""
    if n < 2 or not sd > 0:
        return None
    df = n - 1 if df is None else df
    se = sd / math.sqrt(n)
    critical = scipy.stats.t.ppf(1 - alpha / 2, df)

    def gap(shift: float) -> float:
        reached = _two_sided(critical, df, shift)
        return float(reached) - power

    shift = scipy.optimize.brentq(gap, 0.0, 1e3)
    return float(shift * se)


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
    if no_spread(array, np.max(np.abs(array))):
        low = high = mean
    low, high = max(float(low), bounds[0]), min(float(high), bounds[1])
    return {"mean": float(mean), "ci_low": low, "ci_high": high, "n": int(array.size)}


def paired(arm: dict[int, float], other: dict[int, float]) -> dict[str, Any]:
    """Arm minus other over the seeds both have: the mean difference, the sd of the differences
    (0 where they do not vary, `no_spread`), its 95% t-interval, the paired t-test p-value and
    the exact sign-flip p-value."""
    seeds = sorted(s for s in arm if s in other)
    out: dict[str, Any] = {"n": len(seeds), "seeds": seeds}
    empty = dict.fromkeys(("mean_diff", "sd_diff", "ci_low", "ci_high", "p_value", "p_sign_flip"))
    if not seeds:
        return {**out, **empty, "ties": False}
    diff = np.asarray([arm[s] - other[s] for s in seeds], dtype=float)
    if diff.size < 2:
        return {**out, **empty, "mean_diff": float(diff[0]), "ties": False}
    scale = max(max(abs(arm[s]), abs(other[s])) for s in seeds)
    mean, low, high, p = paired_t(diff, scale=scale)
    flat = bool(no_spread(diff, scale))
    return {
        **out,
        "mean_diff": float(mean),
        "sd_diff": 0.0 if flat else float(diff.std(ddof=1)),
        "ci_low": float(low),
        "ci_high": float(high),
        "p_value": float(p),
        "p_sign_flip": sign_flip_p(diff),
        "ties": flat,
    }


# --------------------------------------------------------------------------- seeds x problems
def crossed(diff: np.ndarray, confidence: float = CONFIDENCE) -> dict[str, np.ndarray]:
    """The mean of a (..., seeds, problems) table of paired differences (2 or more of each),
    judged against new seeds and new problems alike: a two-way crossed random-effects design.

    The mean squares of seeds (rows), problems (columns) and residual estimate the variance
    components (ANOVA moment estimator; a component whose estimate is negative is 0), so the mean's
    variance is seed/S + problem/P + residual/(S P) and its degrees of freedom are Satterthwaite's.
    With no problem effect and many problems this is the paired t-test on the seeds' means; with
    no seed effect it is a t-test over problems. Returns mean, ci_low, ci_high, p, se, df and the
    components (seed, problem, residual: the variance of one seed's, one problem's and one
    cell's contribution to a difference).
    """
    d = np.asarray(diff, dtype=float)
    s, q = d.shape[-2], d.shape[-1]
    if s < 2 or q < 2:
        raise ValueError(f"crossed needs 2 or more seeds and problems, got {s} x {q}")
    mean = d.mean(axis=(-2, -1))
    rows, cols = d.mean(axis=-1), d.mean(axis=-2)
    ms_s = q * rows.var(axis=-1, ddof=1)
    ms_p = s * cols.var(axis=-1, ddof=1)
    resid = d - rows[..., :, None] - cols[..., None, :] + mean[..., None, None]
    ms_e = (resid**2).sum(axis=(-2, -1)) / ((s - 1) * (q - 1))
    use_s, use_p = (ms_s > ms_e).astype(float), (ms_p > ms_e).astype(float)
    total = s * q
    parts = ((use_s * ms_s, s - 1), (use_p * ms_p, q - 1), ((1 - use_s - use_p) * ms_e, total))
    var = np.maximum(sum(part for part, _ in parts) / total, 0.0)
    se = np.sqrt(var)
    scale = np.max(np.abs(d), axis=(-2, -1))
    flat = se <= TIE_TOLERANCE * scale
    with np.errstate(divide="ignore", invalid="ignore"):
        denom = sum((part / total) ** 2 / dof for part, dof in parts[:2])
        denom = denom + (parts[2][0] / total) ** 2 / ((s - 1) * (q - 1))
        df = np.clip(np.where(denom > 0, var**2 / denom, 1.0), 1.0, total - 1)
        p = 2 * scipy.stats.t.sf(np.abs(mean) / np.where(flat, 1.0, se), df)
    half = np.where(flat, 0.0, scipy.stats.t.ppf(0.5 + confidence / 2, df) * se)
    zero = np.abs(mean) <= TIE_TOLERANCE * scale
    p = np.where(flat, np.where(zero, 1.0, min(1.0, 2.0 / 2**s)), p)
    return {
        "mean": mean,
        "ci_low": mean - half,
        "ci_high": mean + half,
        "p": p,
        "se": se,
        "df": df,
        "seed": np.maximum((ms_s - ms_e) / q, 0.0),
        "problem": np.maximum((ms_p - ms_e) / s, 0.0),
        "residual": ms_e,
    }


def crossed_power(
    effect: float, components: dict[str, float], seeds: int, problems: int, alpha: float = ALPHA
) -> float:
    """The chance that `crossed` at alpha detects a true difference `effect` with this many seeds
    and problems, at the given variance components (a noncentral t on the Satterthwaite degrees of
    freedom of the expected mean squares)."""
    seed, problem, residual = (float(components[k]) for k in ("seed", "problem", "residual"))
    s, q = seeds, problems
    if s < 2 or q < 2:
        return 0.0
    var = seed / s + problem / q + residual / (s * q)
    if var <= 0:
        return 1.0 if effect != 0 else alpha
    total = s * q
    # the expected mean squares of seeds, problems and residual, each on its degrees of freedom
    parts = ((residual + q * seed, s - 1), (residual + s * problem, q - 1))
    parts += ((residual, (s - 1) * (q - 1)),)
    denom = sum((value / total) ** 2 / dof for value, dof in parts)
    df = min(max(var**2 / denom if denom > 0 else 1.0, 1.0), total - 1)
    critical = scipy.stats.t.ppf(1 - alpha / 2, df)
    shift = abs(effect) / math.sqrt(var)
    return float(_two_sided(critical, df, shift))


def crossed_seeds_needed(
    effect: float,
    components: dict[str, float],
    problems: int,
    alpha: float = ALPHA,
    power: float = POWER,
    most: int = 10_000,
) -> int | None:
    """The fewest seeds at which `crossed_power` reaches `power` with `problems` problems; None when
    no number of seeds does (the problems' own variance, problem/P, does not shrink with seeds)."""
    if effect == 0:
        return None
    low, high = 2, most
    if crossed_power(effect, components, high, problems, alpha) < power:
        return None
    while low < high:  # power grows with seeds: the first n that reaches it
        middle = (low + high) // 2
        if crossed_power(effect, components, middle, problems, alpha) >= power:
            high = middle
        else:
            low = middle + 1
    return low


def crossed_minimal_effect(
    components: dict[str, float],
    seeds: int,
    problems: int,
    alpha: float = ALPHA,
    power: float = POWER,
) -> float | None:
    """The smallest true difference `crossed` detects with `power` at this many seeds and problems
    (None when the components are all 0: no noise was measured)."""
    var = (
        components["seed"] / seeds
        + components["problem"] / problems
        + components["residual"] / (seeds * problems)
    )
    if seeds < 2 or problems < 2 or not var > 0:
        return None
    unit = math.sqrt(var)
    return float(
        scipy.optimize.brentq(
            lambda d: crossed_power(d * unit, components, seeds, problems, alpha) - power, 0.0, 1e3
        )
        * unit
    )
