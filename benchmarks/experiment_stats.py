"""How honest `hicra experiment analyze`'s statistics are, against the method it used before, both
measured in this run on the same simulated experiments (hicra.experiment.calibration):

1. coverage of the 95% interval of a mean over n seeds (n = 2, 3, 4, 6, 8), normal and skewed
   data: the t-interval (now, tables and curves) vs the percentile bootstrap (before);
2. the share of null experiments (4 arms x 3 metrics, no effect, 8 seeds) that print at least one
   "higher/lower": before (every test at 0.05), the new contrasts unadjusted, and with Holm per
   family (primary; secondary);
3. the false-positive rate of one primary test at alpha, paired t vs the old rule, at 4 and 8 seeds;
4. the power formula behind the power note against simulation.

    python benchmarks/experiment_stats.py [--sims 4000]
"""

from __future__ import annotations

import argparse
import time

from hicra.experiment.calibration import (
    coverage,
    null_experiments,
    simulated_power,
    single_test_rate,
)
from hicra.experiment.stats import power_paired_t


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
    print(f"\n{time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
