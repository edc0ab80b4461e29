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
    interim = "INTERIM: " if results.get("interim") else ""
    lines = [
        f"# {interim}hicra experiment: {results['experiment']}",
        "",
        f"Baseline **{results['baseline']}**; primary metric **{primary}** (its contrasts are "
        f"judged at alpha = {results['alpha']}, Holm-adjusted among themselves; every other "
        "metric is secondary, Holm-adjusted across its family). Training accuracy is the share of "
        f"completions exactly right, over steps 1-{results['horizon']} (the steps every run has "
        "reached); final = mean of the last 10% of those steps, mean = over all of them. 95% CIs "
        "are t-intervals over seeds (of the paired differences for contrasts); p-values are "
        "paired t-tests, with the exact sign-flip p beside them. A held-out contrast with "
        "per-problem records is judged over seeds x problems (level): a crossed random-effects "
        "t-test, benchmarks pooled by problem count.",
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
            "| arm | vs | metric | family | level | steps | n | mean diff | 95% CI | p | Holm p "
            "| sign-flip p |",
            "|---|---|---|---|---|---:|---:|---:|---|---:|---:|---:|",
        ]
        for c in results["comparisons"]:
            ci = "–" if c["ci_low"] is None else f"[{c['ci_low']:+.3f}, {c['ci_high']:+.3f}]"
            diff = "–" if c["mean_diff"] is None else f"{c['mean_diff']:+.3f}"
            lines.append(
                f"| {c['arm']} | {c['baseline']} | {LABELS[c['metric']]} | {c['family']} "
                f"| {_level(c)} | 1-{c['horizon']} | {c['n']} | {diff} | {ci} | {_p(c['p_value'])} "
                f"| {_p(c['adjusted_p'])} | {_p(c['p_sign_flip'])} |"
            )
    lines += benchmark_table(results["comparisons"])
    lines += ["", "## Verdicts", "", *(f"- {v}" for v in results["verdicts"])]
    lines += power_table(results["power"], primary)
    lines += control_table(results.get("controls") or {})
    if results.get("changed_after_preregistration"):
        lines += [
            "",
            "## Changed after the pre-registration",
            "",
            *(f"- {c}" for c in results["changed_after_preregistration"]),
        ]
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


def _level(c: dict[str, Any]) -> str:
    if c.get("level") == "seeds x problems":
        return f"seeds x {c['problems']} problems"
    return "seeds (ties)" if c.get("ties") else "seeds"


def benchmark_table(comparisons: list[dict[str, Any]]) -> list[str]:
    """Each seeds x problems contrast per benchmark (the pooled row is in the main table)."""
    rows = [c for c in comparisons if c.get("by_benchmark")]
    if not rows:
        return []
    lines = [
        "",
        "Per benchmark (seeds x problems; the contrast above pools them by problem count):",
        "",
        "| arm | vs | metric | benchmark | problems | mean diff | 95% CI | p |",
        "|---|---|---|---|---:|---:|---|---:|",
    ]
    for c in rows:
        for bench, b in c["by_benchmark"].items():
            lines.append(
                f"| {c['arm']} | {c['baseline']} | {LABELS[c['metric']]} | {bench} "
                f"| {b['problems']} | {b['mean_diff']:+.3f} | [{b['ci_low']:+.3f}, "
                f"{b['ci_high']:+.3f}] | {_p(b['p_value'])} |"
            )
    return lines


def power_table(power: list[dict[str, Any]], primary: str) -> list[str]:
    """Seeds needed per difference d, at Holm's strictest alpha and the measured noise."""
    if not power:
        return []
    effects = list(power[0]["seeds_needed"])
    lines = [
        "",
        "## Power",
        "",
        f"Paired seeds needed to detect a difference d in {primary} with power 0.8 at alpha = "
        f"{power[0]['alpha']:.3g} (Holm's strictest step: alpha over the primary family's "
        "size; two-sided), at the noise each contrast measured here: the spread of its seeds' "
        "differences, or its seed, problem and residual variances at its number of problems "
        "(then '> 10000' can mean that no number of seeds suffices: more problems are needed). "
        "Where the seeds' differences did not vary, '>= N' is the fewest seeds at which a "
        "sign-flip test can reach that alpha at all.",
        "",
        "| arm | vs | n | level | sd of differences | "
        + " | ".join(f"d = {d}" for d in effects)
        + " |",
        "|---|---|---:|---|---:|" + "---:|" * len(effects),
    ]
    for row in power:
        level = "seeds" if row.get("level", "seeds") == "seeds" else f"x {row['problems']} problems"
        if row.get("no_spread"):
            needed = [f">= {row['sign_flip_seeds']}" for _ in effects]
        else:
            needed = ["> 10000" if v is None else str(v) for v in row["seeds_needed"].values()]
        lines.append(
            f"| {row['arm']} | {row['baseline']} | {row['n']} | {level} | {row['sd_diff']:.4f} | "
            + " | ".join(needed)
            + " |"
        )
    return lines


def control_table(controls: dict[str, list[dict[str, Any]]]) -> list[str]:
    """Each control run's match to the planning ratio and its grams' check."""
    if not controls:
        return []
    lines = [
        "",
        "## Controls",
        "",
        "| run | marked / planning tokens | over the run | answer or format grams | valid |",
        "|---|---:|---|---|---|",
    ]
    for checks in controls.values():
        for c in checks:
            ratio = "–" if c["ratio"] is None else f"{c['ratio']:.2f}x"
            if not c["grams_known"]:
                grams = "unknown"
            elif c["bad_grams"] is None:
                grams = "n/a"
            else:
                grams = ", ".join(c["bad_grams"]) or "none"
            valid = "yes" if not c["problems"] else "no: " + "; ".join(c["problems"])
            lines.append(f"| {c['label']} | {ratio} | {c['how']} | {grams} | {valid} |")
    return lines
