"""The words of an experiment's results: one verdict per comparison that never claims more than
the numbers carry, the control verdict (hicra against the baseline and each control arm, read with
the control's own validity), and the power note.

Every verdict says what it rests on: the exact sign-flip p where the seeds' differences do not
vary (ties on the held-out lattice), normally distributed differences below 6 seeds (where the
sign-flip test cannot reach 0.05), a sharp disagreement between the two tests; a primary verdict
carries the minimal detectable effect at the planned seeds and held-out size; an unfinished
experiment's verdicts are INTERIM; and what changed after the pre-registration is repeated on
every line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hicra.experiment.controls import GRAMS_KEY, RunControl
from hicra.experiment.metrics import LABELS
from hicra.experiment.stats import (
    ALPHA,
    NORMAL_BELOW,
    POWER,
    crossed_minimal_effect,
    crossed_seeds_needed,
    minimal_effect,
    seeds_needed,
    sign_flip_seeds,
)

POWER_EFFECTS = (0.01, 0.02, 0.05, 0.10)  # differences (accuracy points) for the power note
SHOWN_REASONS = 3  # a control verdict names this many reasons, the Controls table all of them
SHARP = 10.0  # two p-values on either side of alpha, one 10x the other, disagree sharply


@dataclass
class Framing:
    """What every verdict line carries beside its own numbers."""

    primary_tests: int = 1  # the primary family's size (Holm: its strictest step is alpha / m)
    planned_seeds: int = 0  # seeds planned (pre-registered, else the experiment file's)
    interim: str | None = None  # "INTERIM: 4 of 6 runs finished", when unfinished
    changed: list[str] = field(default_factory=list)  # deviations from the pre-registration

    @property
    def power_alpha(self) -> float:
        return ALPHA / max(1, self.primary_tests)

    def frame(self, line: str) -> str:
        if self.interim:
            line = f"{self.interim}: {line}"
        if self.changed:
            line += f" [changed after the pre-registration: {'; '.join(self.changed)}]"
        return line


def _over(comparison: dict[str, Any]) -> str:
    n = comparison["n"]
    if comparison.get("level") == "seeds x problems":
        return f"{n} seeds x {comparison['problems']} problems"
    return f"{n} seeds"


def resting(comparison: dict[str, Any]) -> list[str]:
    """What the test behind a verdict rests on, and a sharp disagreement between the tests."""
    n, p, flip = comparison["n"], comparison["p_value"], comparison.get("p_sign_flip")
    crossed = comparison.get("level") == "seeds x problems"
    if comparison.get("ties") and not crossed:
        return [
            f"every seed's difference is the same ({comparison['mean_diff']:+.3f}, a tie on the "
            f"lattice of scores): there is no spread for a t-test, so the verdict rests on the "
            f"exact sign-flip p = {p:.2g}"
        ]
    out = []
    if n < NORMAL_BELOW:
        what = "seed and problem effects" if crossed else "seed differences"
        out.append(
            f"rests on normally distributed {what} (below {NORMAL_BELOW} seeds the exact "
            f"sign-flip test cannot reach {ALPHA})"
        )
    if flip is not None and p is not None and (p < ALPHA) != (flip < ALPHA):
        low, high = sorted((max(p, 1e-300), max(flip, 1e-300)))
        if high / low >= SHARP:
            test = "seeds x problems t-test" if crossed else "t-test"
            out.append(
                f"the {test} (p = {p:.2g}) and the exact sign-flip test over seeds "
                f"(p = {flip:.2g}) disagree sharply"
            )
    return out


def detectable(comparison: dict[str, Any], framing: Framing) -> dict[str, Any]:
    """The minimal detectable effect (power 0.8, Holm's strictest alpha) at the planned seeds and
    the held-out size, at this comparison's measured noise."""
    seeds = max(framing.planned_seeds, comparison["n"])
    alpha = framing.power_alpha
    if comparison.get("level") == "seeds x problems":
        effect = crossed_minimal_effect(
            comparison["components"], seeds, comparison["problems"], alpha
        )
        size = f"{seeds} seeds x {comparison['problems']} problems"
    else:
        sd = comparison.get("sd_diff")
        effect = None if sd is None else minimal_effect(sd, seeds, alpha)
        size = f"{seeds} seeds"
    return {"effect": effect, "seeds": seeds, "alpha": alpha, "size": size}


def verdict(comparison: dict[str, Any], family_size: int, framing: Framing | None = None) -> str:
    """One plain line that never claims more than the numbers carry."""
    framing = framing or Framing()
    arm, other, metric = comparison["arm"], comparison["baseline"], comparison["metric"]
    n, diff = comparison["n"], comparison["mean_diff"]
    label = f"{LABELS[metric]} ({comparison['family']})"
    if diff is None:
        return framing.frame(f"{arm} vs {other}: no paired seeds with {LABELS[metric]}")
    head = f"{arm} vs {other}: {diff:+.3f} {label}"
    if n < 2:
        return framing.frame(f"{head} from {n} paired seed: too few seeds to compare")
    low, high, p = comparison["ci_low"], comparison["ci_high"], comparison["p_value"]
    adjusted = comparison["adjusted_p"]
    text = f"{head}, 95% CI [{low:+.3f}, {high:+.3f}], p = {p:.2g}"
    if family_size > 1:
        text += f", Holm-adjusted p = {adjusted:.2g} ({family_size} tests)"
    text += f" over {_over(comparison)}: "
    if adjusted < ALPHA:
        text += f"{arm} {'higher' if diff > 0 else 'lower'} at this budget"
    else:
        text += "no difference detected at this budget"
    if n == 2 and comparison.get("level") != "seeds x problems" and not comparison.get("ties"):
        text += " (2 seeds: a t-interval is 12.7 standard errors wide)"
    extra = resting(comparison)
    if comparison["family"] == "primary":
        mde = comparison.get("detectable") or detectable(comparison, framing)
        if mde["effect"] is None:
            extra.append(
                f"minimal detectable effect not estimable (no spread measured; a sign-flip test "
                f"needs {sign_flip_seeds(mde['alpha'])} seeds to reach alpha {mde['alpha']:.3g})"
            )
        else:
            extra.append(
                f"minimal detectable effect +-{mde['effect']:.3f} at power {POWER} "
                f"({mde['size']}, alpha {mde['alpha']:.3g})"
            )
    if extra:
        text += "; " + "; ".join(extra)
    return framing.frame(text)


# --------------------------------------------------------------------------- the control verdict
def _outcome(comparisons: list[dict[str, Any]], metric: str, a: str, b: str) -> int | None:
    """+1 when a is detected higher than b on the metric, -1 lower, 0 neither; None: not compared."""
    for c in comparisons:
        if c["metric"] != metric or {c["arm"], c["baseline"]} != {a, b}:
            continue
        if c["adjusted_p"] is None:
            return None
        sign = 1 if c["arm"] == a else -1
        return int(np.sign(c["mean_diff"])) * sign if c["adjusted_p"] < ALPHA else 0
    return None


def invalid_reasons(checks: list[RunControl]) -> list[str]:
    """Each control run's reasons not to be valid, labelled."""
    return [f"{c.label}: {problem}" for c in checks for problem in c.problems]


def unknown_grams(checks: list[RunControl]) -> list[str]:
    return [c.label for c in checks if not c.grams_known]


def control_verdict(
    comparisons: list[dict[str, Any]],
    hicra: str,
    baseline: str,
    control: str,
    metric: str,
    checks: list[RunControl] | None = None,
    kind: str = "placebo",
) -> str | None:
    """What hicra against the baseline and against one control arm means, on the primary metric:
    no claim of specificity from a control that is not valid, or when the control is the
    baseline (then only hicra against the control is said)."""
    checks = checks or []
    on = f"on {LABELS[metric]}"
    name = f"the placebo ({control})" if kind == "placebo" else f"the {kind} control ({control})"
    reasons = invalid_reasons(checks)
    if reasons:
        shown = "; ".join(reasons[:SHOWN_REASONS])
        if len(reasons) > SHOWN_REASONS:
            shown += f"; {len(reasons) - SHOWN_REASONS} more in the Controls table"
        return (
            f"{name} is not valid ({shown}): whether {hicra}'s result {on} is specific to "
            "planning tokens is not judged"
        )
    vs_control = _outcome(comparisons, metric, hicra, control)
    if vs_control is None:
        return None
    line = _control_line(comparisons, hicra, baseline, control, metric, checks, name, vs_control)
    if line is None:
        return None
    involved = [
        c
        for c in comparisons
        if c["metric"] == metric
        and hicra in (c["arm"], c["baseline"])
        and {c["arm"], c["baseline"]} & {baseline, control} - {hicra}
    ]
    if any(2 <= c["n"] < NORMAL_BELOW for c in involved):
        line += (
            f"; rests on normally distributed seed differences (below {NORMAL_BELOW} seeds the "
            f"exact sign-flip test cannot reach {ALPHA})"
        )
    return line


def _control_line(
    comparisons: list[dict[str, Any]],
    hicra: str,
    baseline: str,
    control: str,
    metric: str,
    checks: list[RunControl],
    name: str,
    vs_control: int,
) -> str | None:
    on = f"on {LABELS[metric]}"
    unknown = unknown_grams(checks)
    tail = (
        f" (unknown whether its grams include answer or format text: placebo_grams.json has no "
        f"{GRAMS_KEY} in {len(unknown)} of {len(checks)} runs)"
        if unknown
        else ""
    )
    if control == baseline:
        said = {1: "beats", -1: "is worse than", 0: "is not distinguished from"}[vs_control]
        return (
            f"{hicra} {said} {name} {on} at this budget; the baseline is the control, so no gain "
            f"over GRPO is judged here{tail}"
        )
    vs_base = _outcome(comparisons, metric, hicra, baseline)
    if vs_base is None:
        return None
    if vs_base > 0 and vs_control > 0:
        return (
            f"{hicra} beats {baseline} and {name} {on}: the gain is specific to planning tokens "
            f"at this budget{tail}"
        )
    if vs_base > 0:
        return (
            f"{hicra} beats {baseline} but not {name} {on}: the gain is not shown to be specific "
            f"to planning tokens (upweighting random tokens may do as well){tail}"
        )
    if vs_base < 0:
        return f"{hicra} is worse than {baseline} {on} at this budget"
    if vs_control > 0:
        return f"{hicra} beats {name} but not {baseline} {on}: no gain over {baseline} is shown"
    return f"{hicra} beats neither {baseline} nor {name} {on} at this budget"


# --------------------------------------------------------------------------- the power note
def power_note(comparison: dict[str, Any], framing: Framing | None = None) -> dict[str, Any] | None:
    """Seeds needed to detect a difference d with power 0.8 at Holm's strictest alpha (alpha over
    the primary family's size), at this comparison's measured noise: the spread of its seed
    differences, or its seed, problem and residual variances at the held-out size. Where the seeds
    did not vary, the one count that can be given: the seeds a sign-flip test needs at all."""
    framing = framing or Framing()
    sd = comparison.get("sd_diff")
    if sd is None or comparison["n"] < 2:
        return None
    alpha = framing.power_alpha
    crossed = comparison.get("level") == "seeds x problems"
    no_spread = sd == 0 and not crossed
    if crossed:
        needed = {
            f"{d:g}": crossed_seeds_needed(
                d, comparison["components"], comparison["problems"], alpha
            )
            for d in POWER_EFFECTS
        }
    else:
        needed = {
            f"{d:g}": None if no_spread else seeds_needed(d, sd, alpha) for d in POWER_EFFECTS
        }
    return {
        "arm": comparison["arm"],
        "baseline": comparison["baseline"],
        "metric": comparison["metric"],
        "n": comparison["n"],
        "sd_diff": sd,
        "level": comparison.get("level", "seeds"),
        "problems": comparison.get("problems"),
        "components": comparison.get("components"),
        "alpha": alpha,
        "power": POWER,
        "seeds_needed": needed,
        "no_spread": no_spread,
        "sign_flip_seeds": sign_flip_seeds(alpha),
    }
