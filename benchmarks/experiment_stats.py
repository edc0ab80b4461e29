"""How honest `hicra experiment analyze`'s statistics are, against the method it used before, both
measured in this run on the same simulated experiments (hicra.experiment.calibration):

1. coverage of the 95% interval of a mean over n seeds (n = 2, 3, 4, 6, 8), normal and skewed
   data: the t-interval (now, tables and curves) vs the percentile bootstrap (before);
2. the share of null experiments (4 arms x 3 metrics, no effect, 8 seeds) that print at least one
   "higher/lower": before (every test at 0.05), the new contrasts unadjusted, and with Holm per
   family (primary; secondary);
3. the false-positive rate of one primary test at alpha, paired t vs the old rule, at 4 and 8 seeds;
4. the power formula behind the power note against simulation;
5. ties on the held-out lattice (every seed exactly j problems better): share of confident verdicts
   before (`ptp == 0` defeated by floating-point noise) and now (exact sign-flip p), and the
   null false-positive rate on binomial held-out scores;
6. problem-level heterogeneity (arms differ problem by problem, sd 1 logit, not on average): the
   false-positive rate and 95% coverage of the seed-level test vs the seeds x problems test;
7. the minimal detectable effect printed beside primary verdicts: simulated power at it;
8. forking paths: seeds added after looking (3 to 8, 2 to 10) and the best of 3 metrics, against
   the verdicts left unflagged by the pre-registration;
9. the power note's seed search: exact vs the old x1.1 steps.

    python benchmarks/experiment_stats.py [--sims 4000]
"""

from __future__ import annotations

import argparse
import time

from hicra.experiment.calibration import (
    best_of_metrics,
    coverage,
    crossed_power_check,
    lattice_ties,
    null_experiments,
    old_seeds_needed,
    problem_level,
    seed_peeking,
    simulated_power,
    single_test_rate,
)
from hicra.experiment.stats import power_paired_t, seeds_needed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sims", type=int, default=4000, help="simulated experiments per cell")
    args = parser.parse_args()
    started = time.perf_counter()
    for distribution in ("normal", "skewed"):
        print(
            f"\n95% interval coverage of a mean over n seeds ({distribution} data, "
            f"{args.sims} draws each)"
        )
        print(
            f"{'n':>3} {'t-interval':>11} {'bootstrap':>10} {'ratio':>6} "
            f"{'t width':>8} {'boot width':>10}  (widths in data sd)"
        )
        for n in (2, 3, 4, 6, 8):
            c = coverage(n, sims=args.sims, distribution=distribution)
            print(
                f"{n:>3} {c.t_interval:>11.3f} {c.bootstrap:>10.3f} "
                f"{c.t_interval / c.bootstrap:>6.2f} {c.t_width:>8.2f} {c.bootstrap_width:>10.2f}"
            )
    sims = max(500, args.sims // 2)
    rates = null_experiments(arms=4, metrics=3, seeds=8, sims=sims)
    print(
        f"\nNull experiments (4 arms x 3 metrics correlated 0.5, 8 seeds, {sims} draws): share "
        "with at least one 'higher/lower'"
    )
    print(
        f"  before: {rates.tests_old} tests vs baseline at 0.05 (sign-flip p + bootstrap CI): "
        f"{rates.old:.3f}"
    )
    print(
        f"  new contrasts ({rates.tests_new} tests, incl. hicra vs placebo), unadjusted: "
        f"{rates.unadjusted:.3f}"
    )
    print(
        f"  new, Holm per family: {rates.holm:.3f} (primary family {rates.primary:.3f}, "
        f"secondary family {rates.secondary:.3f}); ratio before/after {rates.old / rates.holm:.1f}"
    )
    print("\nOne primary test under the null (target alpha = 0.05)")
    for seeds in (4, 8):
        t_rate, old_rate = single_test_rate(seeds, sims=args.sims)
        print(f"  {seeds} seeds: paired t {t_rate:.3f}; before {old_rate:.3f}")
    print("\nPower of the paired t-test (formula, scipy.stats.nct) vs simulation")
    for effect, n in ((1.0, 10), (0.5, 34), (2.0, 5)):
        print(
            f"  d/sd = {effect}, {n} seeds: formula {power_paired_t(effect, 1.0, n):.3f}, "
            f"simulated {simulated_power(effect, 1.0, n, sims=args.sims):.3f}"
        )
    new_rules(args.sims)
    print(f"\n{time.perf_counter() - started:.1f} s")


def new_rules(sims: int) -> None:
    """Issue 28's cases under the new rules."""
    print(
        f"\nTies: every seed exactly j = +-1 or +-2 of 40 problems better ({sims} draws); null: "
        "both arms binomial on 40 problems"
    )
    print(
        f"{'seeds':>5} {'noise':>6} {'verdict before':>15} {'now':>5} {'null before':>12} {'now':>6}"
    )
    for seeds in (2, 3, 4, 5, 6):
        t = lattice_ties(seeds, sims=sims)
        print(
            f"{seeds:>5} {t.missed_before:>6.3f} {t.verdict_before:>15.3f} {t.verdict_now:>5.3f} "
            f"{t.null_before:>12.3f} {t.null_now:>6.3f}"
        )
    runs = sims
    print(
        f"\nProblem-level heterogeneity (40 problems, arms differ per problem by sd 1 logit, "
        f"{runs} draws): false-positive rate, and 95% coverage under a +0.5 logit effect"
    )
    print(
        f"{'seeds':>5} {'FPR seeds':>10} {'FPR seeds x problems':>21} {'cover seeds':>12} {'cover x':>8}"
    )
    for seeds in (2, 3, 4, 8):
        r = problem_level(seeds, problems=40, sims=runs)
        print(
            f"{seeds:>5} {r.seed_level:>10.3f} {r.crossed:>21.3f} {r.seed_coverage:>12.3f} "
            f"{r.coverage:>8.3f}"
        )
    print("\nMinimal detectable effect (power 0.8 at alpha 0.05) vs simulated power at it")
    for components, seeds, problems in (
        ({"seed": 0.0004, "problem": 0.01, "residual": 0.05}, 3, 40),
        ({"seed": 0.0004, "problem": 0.01, "residual": 0.05}, 8, 40),
        ({"seed": 0.002, "problem": 0.05, "residual": 0.3}, 4, 500),
    ):
        effect, power = crossed_power_check(components, seeds, problems, sims=sims)
        print(
            f"  {seeds} seeds x {problems} problems {components}: MDE {effect:.4f}, power {power:.3f}"
        )
    print(f"\nForking paths under the null ({sims} draws)")
    for planned, most in ((3, 8), (2, 10)):
        peek = seed_peeking(planned, most, sims=sims)
        print(
            f"  seeds added {planned} -> {most} after looking: 'higher/lower' at some look "
            f"{peek.any_verdict:.3f}; unflagged (at the planned seeds) {peek.unflagged:.3f}"
        )
    best, planned_metric = best_of_metrics(sims=sims)
    print(
        f"  best of 3 metrics (correlation 0.5, 8 seeds): {best:.3f}; the pre-registered metric "
        f"{planned_metric:.3f}"
    )
    print("\nPower note: seeds needed, exact search vs the old x1.1 steps")
    for effect, sd in ((0.02, 0.1), (0.01, 0.05), (0.05, 0.089)):
        print(
            f"  d = {effect}, sd = {sd}: exact {seeds_needed(effect, sd)}, before "
            f"{old_seeds_needed(effect, sd)}"
        )


if __name__ == "__main__":
    main()
