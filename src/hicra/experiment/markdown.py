"""results.md: an experiment's results (results.json's content) as Markdown tables, verdicts, the
power note, and what is missing."""

from __future__ import annotations

from typing import Any

from hicra.experiment import SEED_PREFIX
from hicra.experiment.metrics import LABELS, METRICS


def _fmt(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _p(value: float | None) -> str:
    return "–" if value is None else f"{value:.3g}"


def markdown(results: dict[str, Any]) -> str:
    """results.md: the same numbers as tables, then the verdicts and what is missing."""
    primary = LABELS[results["primary_metric"]]
    lines = [
        f"# hicra experiment: {results['experiment']}",
        "",
        f"Baseline **{results['baseline']}**; primary metric **{primary}** (its contrasts are "
        f"judged at alpha = {results['alpha']}, Holm-adjusted among themselves; every other "
        "metric is secondary, Holm-adjusted across its family). Training accuracy is the share of "
        f"completions exactly right, over steps 1-{results['horizon']} (the steps every run has "
        "reached); final = mean of the last 10% of those steps, mean = over all of them. 95% CIs "
        "are t-intervals over seeds (of the paired differences for contrasts); p-values are "
        "paired t-tests, with the exact sign-flip p beside them.",
        "",
        "| arm | " + " | ".join(LABELS.values()) + " |",
        "|---|" + "---:|" * len(LABELS),
    ]
    for arm, metrics in results["arms"].items():
        cells = []
        for name, spec in METRICS.items():
            s = metrics[name]
            if s["mean"] is None:
                cells.append("–")
            elif s["ci_low"] is None:
                cells.append(f"{_fmt(s['mean'], spec.digits)} (n={s['n']})")
            else:
                cells.append(
                    f"{_fmt(s['mean'], spec.digits)} [{_fmt(s['ci_low'], spec.digits)}, "
                    f"{_fmt(s['ci_high'], spec.digits)}] (n={s['n']})"
                )
        lines.append(f"| {arm} | " + " | ".join(cells) + " |")
    if results["comparisons"]:
        lines += [
            "",
            "| arm | vs | metric | family | steps | n | mean diff | 95% CI | p | Holm p "
            "| sign-flip p |",
            "|---|---|---|---|---:|---:|---:|---|---:|---:|---:|",
        ]
        for c in results["comparisons"]:
            ci = "–" if c["ci_low"] is None else f"[{c['ci_low']:+.3f}, {c['ci_high']:+.3f}]"
            diff = "–" if c["mean_diff"] is None else f"{c['mean_diff']:+.3f}"
            lines.append(
                f"| {c['arm']} | {c['baseline']} | {LABELS[c['metric']]} | {c['family']} "
                f"| 1-{c['horizon']} | {c['n']} | {diff} | {ci} | {_p(c['p_value'])} "
                f"| {_p(c['adjusted_p'])} | {_p(c['p_sign_flip'])} |"
            )
    lines += ["", "## Verdicts", "", *(f"- {v}" for v in results["verdicts"])]
    if results["power"]:
        effects = list(results["power"][0]["seeds_needed"])
        lines += [
            "",
            "## Power",
            "",
            f"Paired seeds needed to detect a difference d in {primary} with power 0.8 at alpha "
            f"= {results['alpha']} (two-sided paired t-test), at the standard deviation of each "
            "contrast's seed differences measured here:",
            "",
            "| arm | vs | n | sd of differences | "
            + " | ".join(f"d = {d}" for d in effects)
            + " |",
            "|---|---|---:|---:|" + "---:|" * len(effects),
        ]
        for row in results["power"]:
            if row.get("no_spread"):
                lines.append(
                    f"| {row['arm']} | {row['baseline']} | {row['n']} | 0 | "
                    + " | ".join("–" for _ in effects)
                    + " |"
                )
                continue
            needed = ["> 10000" if v is None else str(v) for v in row["seeds_needed"].values()]
            lines.append(
                f"| {row['arm']} | {row['baseline']} | {row['n']} | {row['sd_diff']:.4f} | "
                + " | ".join(needed)
                + " |"
            )
    if results["missing"]:
        lines += ["", "## Missing or unfinished", "", *(f"- {m}" for m in results["missing"])]
    if results["notes"]:
        lines += ["", "## Notes", "", *(f"- {n}" for n in results["notes"])]
    lines += ["", "## Runs", "", "| run | state | last step | mean accuracy | held-out |"]
    lines.append("|---|---|---:|---:|---:|")
    for r in results["runs"]:
        lines.append(
            f"| {r['arm']}/{SEED_PREFIX}{r['seed']} | {r['state']} | {r['last_step']} "
            f"| {_fmt(r['mean_accuracy'])} | {_fmt(r['heldout_accuracy'])} |"
        )
    return "\n".join(lines) + "\n"
