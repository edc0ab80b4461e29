"""The words of an experiment's results: one verdict per comparison that never claims more than
the numbers carry, the control pair's verdict (hicra vs the baseline and the placebo), and the
power note (seeds needed to detect a given difference at the measured spread)."""

from __future__ import annotations

from typing import Any

import numpy as np

from hicra.experiment.metrics import LABELS
from hicra.experiment.stats import ALPHA, seeds_needed

POWER_EFFECTS = (0.01, 0.02, 0.05, 0.10)  # differences (accuracy points) for the power note


def verdict(comparison: dict[str, Any], family_size: int) -> str:
    """One plain line that never claims more than the numbers carry."""
    arm, other, metric = comparison["arm"], comparison["baseline"], comparison["metric"]
    n, diff = comparison["n"], comparison["mean_diff"]
    label = f"{LABELS[metric]} ({comparison['family']})"
    if diff is None:
        return f"{arm} vs {other}: no paired seeds with {LABELS[metric]}"
    head = f"{arm} vs {other}: {diff:+.3f} {label}"
    if n < 2:
        return f"{head} from {n} paired seed: too few seeds to compare"
    low, high, p = comparison["ci_low"], comparison["ci_high"], comparison["p_value"]
    adjusted = comparison["adjusted_p"]
    text = f"{head}, 95% CI [{low:+.3f}, {high:+.3f}], p = {p:.2g}"
    if family_size > 1:
        text += f", Holm-adjusted p = {adjusted:.2g} ({family_size} tests)"
    text += f" over {n} seeds: "
    if adjusted < ALPHA:
        text += f"{arm} {'higher' if diff > 0 else 'lower'} at this budget"
    else:
        text += "no difference detected at this budget"
    if n == 2:
        text += " (2 seeds: a t-interval is 12.7 standard errors wide)"
    return text


def control_verdict(
    comparisons: list[dict[str, Any]], hicra: str, baseline: str, placebo: str, metric: str
) -> str | None:
    """What the hicra-vs-baseline and hicra-vs-placebo pair means, on the primary metric."""

    def outcome(a: str, b: str) -> int | None:
        for c in comparisons:
            if c["metric"] != metric or {c["arm"], c["baseline"]} != {a, b}:
                continue
            if c["adjusted_p"] is None:
                return None
            sign = 1 if c["arm"] == a else -1
            return int(np.sign(c["mean_diff"])) * sign if c["adjusted_p"] < ALPHA else 0
        return None

    vs_base, vs_placebo = outcome(hicra, baseline), outcome(hicra, placebo)
    if vs_base is None or vs_placebo is None:
        return None
    on = f"on {LABELS[metric]}"
    if vs_base > 0 and vs_placebo > 0:
        tail = "the gain is specific to planning tokens at this budget"
        return f"{hicra} beats {baseline} and the placebo ({placebo}) {on}: {tail}"
    if vs_base > 0:
        return (
            f"{hicra} beats {baseline} but not the placebo ({placebo}) {on}: the gain is not "
            "shown to be specific to planning tokens (upweighting random tokens may do as well)"
        )
    if vs_base < 0:
        return f"{hicra} is worse than {baseline} {on} at this budget"
    if vs_placebo > 0:
        return (
            f"{hicra} beats the placebo ({placebo}) but not {baseline} {on}: no gain over "
            f"{baseline} is shown"
        )
    return f"{hicra} beats neither {baseline} nor the placebo ({placebo}) {on} at this budget"


def power_note(comparison: dict[str, Any]) -> dict[str, Any] | None:
    """Seeds needed to detect a difference d with power 0.8 at alpha, at the spread of this
    comparison's paired differences (its own between-seed standard deviation)."""
    sd = comparison.get("sd_diff")
    if sd is None or comparison["n"] < 2:
        return None
    # No spread at all (every seed's difference the same, often 0: the arms sampled the very same
    # completions and never diverged) measures no noise: any n would look enough, so none is given.
    no_spread = sd == 0
    return {
        "arm": comparison["arm"],
        "baseline": comparison["baseline"],
        "metric": comparison["metric"],
        "n": comparison["n"],
        "sd_diff": sd,
        "alpha": ALPHA,
        "power": 0.8,
        "seeds_needed": {
            f"{d:g}": None if no_spread else seeds_needed(d, sd) for d in POWER_EFFECTS
        },
        "no_spread": no_spread,
    }
