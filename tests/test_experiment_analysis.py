"""`hicra experiment analyze` on synthetic run folders: each case of issue 19 reproduced (the
placebo contrast, families and Holm, readouts that move with sample size, silent drops)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import yaml

from hicra.cli import main
from hicra.experiment.analysis import analyze, load_experiment
from hicra.experiment.metrics import METRICS, first_step_reaching
from hicra.hierarchy import semantic_entropy, semantic_entropy_miller_madow
from tests.test_train_cli import write_jsonl

ARMS = {"grpo": {"credit": "grpo"}, "hicra": {"credit": "hicra"}, "placebo": {"credit": "placebo"}}


def write_experiment(folder: Path, arms: dict, seeds, **extra) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    spec = {"base": {"learning_rate": 1e-5}, "arms": arms, "seeds": list(seeds)}
    spec.update({"baseline": "grpo", "eval": {}, "analysis": {"threshold": 0.5}, **extra})
    (folder / "experiment.yaml").write_text(yaml.safe_dump(spec))


def write_run(folder: Path, arm: str, seed: int, columns: dict, heldout=None, **config) -> Path:
    """A finished run whose metrics.jsonl holds `columns` (key -> per-step values)."""
    run = folder / arm / f"seed-{seed}"
    run.mkdir(parents=True)
    settings = {"hicra_version": "0", "credit": ARMS.get(arm, {}).get("credit", arm)}
    settings.update(learning_rate=1e-5, max_steps=len(next(iter(columns.values()))))
    settings.update(seed=seed, data_seed=seed, output_dir=str(run), **config)
    (run / "config.yaml").write_text(yaml.safe_dump(settings))
    steps = len(next(iter(columns.values())))
    rows = [{"step": i + 1, **{k: v[i] for k, v in columns.items()}} for i in range(steps)]
    write_jsonl(run / "metrics.jsonl", rows)
    (run / "final_model").mkdir()
    (run / "final_model" / "config.json").write_text("{}")
    (run / "summary.json").write_text(json.dumps({"step": steps}))
    if settings["credit"] == "placebo":  # i28-controls' contract: the grams' answer/format check
        grams = {"grams": ["so the"], "answer_or_format": []}
        (run / "placebo_grams.json").write_text(json.dumps(grams))
    if heldout is not None:
        (run / "eval").mkdir()
        results = {"benchmarks": {"heldout": {"avg@k": heldout, "problems": 10}}}
        (run / "eval" / "results.json").write_text(json.dumps(results))
    return run


def accuracy(level: float, steps: int = 10) -> dict:
    return {"hicra/accuracy": [level] * steps, "hicra/planning_ratio": [0.1] * steps}


def three_arms(folder: Path, hicra_gain: float, placebo_gain: float, seeds=range(1, 9), **extra):
    """grpo at 0.3 + seed noise; hicra and placebo at fixed gains over grpo, seed by seed."""
    write_experiment(folder, ARMS, seeds, **extra)
    rng = np.random.default_rng(0)
    for seed in seeds:
        base = 0.3 + 0.02 * float(rng.normal())
        jitter = 0.005 * rng.normal(size=2)
        write_run(folder, "grpo", seed, accuracy(base))
        write_run(folder, "hicra", seed, accuracy(base + hicra_gain + jitter[0]))
        placebo = accuracy(base + placebo_gain + jitter[1])
        placebo["hicra/placebo_ratio"] = [0.1] * 10
        write_run(folder, "placebo", seed, placebo)


# ----------------------------------------------------------------- 1. the control contrast
def test_hicra_vs_placebo_is_computed_and_the_verdict_says_what_the_pair_means(tmp_path):
    """The issue's case: hicra and placebo equal, both +0.10 over grpo, 8 seeds."""
    three_arms(tmp_path / "exp", hicra_gain=0.10, placebo_gain=0.10)
    results = analyze(load_experiment(tmp_path / "exp"))
    assert results["contrasts"] == [["hicra", "grpo"], ["placebo", "grpo"], ["hicra", "placebo"]]
    control = [
        c
        for c in results["comparisons"]
        if (c["arm"], c["baseline"]) == ("hicra", "placebo") and c["metric"] == "mean_accuracy"
    ]
    assert len(control) == 1 and abs(control[0]["mean_diff"]) < 0.01
    assert control[0]["adjusted_p"] >= 0.05
    assert results["verdicts"][0] == (
        "hicra beats grpo but not the placebo (placebo) on mean accuracy: the gain is not shown "
        "to be specific to planning tokens (upweighting random tokens may do as well)"
    )
    assert any(v.startswith("hicra vs placebo: ") for v in results["verdicts"])


def test_hicra_beating_both_is_specific(tmp_path):
    three_arms(tmp_path / "exp", hicra_gain=0.10, placebo_gain=0.0)
    results = analyze(load_experiment(tmp_path / "exp"))
    assert results["verdicts"][0] == (
        "hicra beats grpo and the placebo (placebo) on mean accuracy: the gain is specific to "
        "planning tokens at this budget"
    )


def test_contrasts_named_in_the_experiment_file(tmp_path):
    three_arms(tmp_path / "exp", 0.1, 0.0, contrasts=[["hicra", "placebo"]])
    results = analyze(load_experiment(tmp_path / "exp"))
    assert {(c["arm"], c["baseline"]) for c in results["comparisons"]} == {("hicra", "placebo")}
    # --baseline on the command line asks for every arm against that arm instead
    other = analyze(load_experiment(tmp_path / "exp", baseline="placebo"))
    assert ("grpo", "placebo") in {(c["arm"], c["baseline"]) for c in other["comparisons"]}


# ----------------------------------------------------------------- 2. families
def test_primary_metric_is_judged_at_alpha_and_the_others_are_holm_adjusted(tmp_path):
    three_arms(tmp_path / "exp", 0.10, 0.10)
    results = analyze(load_experiment(tmp_path / "exp"))
    assert results["primary_metric"] == "mean_accuracy"
    primary = [c for c in results["comparisons"] if c["family"] == "primary"]
    secondary = [c for c in results["comparisons"] if c["family"] == "secondary"]
    assert {c["metric"] for c in primary} == {"mean_accuracy"} and len(primary) == 3
    assert {c["metric"] for c in secondary} == {"final_accuracy"}  # no held-out eval here
    for family in (primary, secondary):
        p = sorted(c["p_value"] for c in family)
        adjusted = sorted(c["adjusted_p"] for c in family)
        assert adjusted[0] == pytest.approx(min(1.0, len(family) * p[0]))
    line = next(v for v in results["verdicts"] if v.startswith("hicra vs grpo: +0.1"))
    assert "(primary)" in line and "Holm-adjusted p" in line and "(3 tests)" in line


def test_primary_metric_rule(tmp_path):
    """Held-out accuracy when an eval is configured, else mean accuracy; the file may override."""
    folder = tmp_path / "exp"
    write_experiment(
        folder,
        {"grpo": ARMS["grpo"], "hicra": ARMS["hicra"]},
        [1, 2],
        eval={"benchmarks": ["gsm8k"]},
    )
    for seed in (1, 2):
        write_run(folder, "grpo", seed, accuracy(0.3), heldout=0.2)
        write_run(folder, "hicra", seed, accuracy(0.4), heldout=0.3)
    assert analyze(load_experiment(folder))["primary_metric"] == "heldout_accuracy"
    for seed in (1, 2):  # evaluations not made yet: the primary family is empty, and said so
        (folder / "hicra" / f"seed-{seed}" / "eval" / "results.json").unlink()
    notes = analyze(load_experiment(folder))["notes"]
    assert "no paired runs have the primary metric (held-out accuracy) yet" in " ".join(notes)
    for seed, score in ((1, 0.3), (2, 0.3)):
        results = {"benchmarks": {"heldout": {"avg@k": score, "problems": 10}}}
        (folder / "hicra" / f"seed-{seed}" / "eval" / "results.json").write_text(
            json.dumps(results)
        )
    saved = yaml.safe_load((folder / "experiment.yaml").read_text())
    saved["primary_metric"] = "final_accuracy"
    (folder / "experiment.yaml").write_text(yaml.safe_dump(saved))
    results = analyze(load_experiment(folder))
    assert results["primary_metric"] == "final_accuracy"
    assert {c["metric"] for c in results["comparisons"] if c["family"] == "primary"} == {
        "final_accuracy"
    }


def test_power_note_uses_the_runs_own_spread(tmp_path):
    three_arms(tmp_path / "exp", 0.10, 0.10)
    results = analyze(load_experiment(tmp_path / "exp"))
    row = next(p for p in results["power"] if (p["arm"], p["baseline"]) == ("hicra", "placebo"))
    comparison = next(
        c
        for c in results["comparisons"]
        if (c["arm"], c["baseline"], c["metric"]) == ("hicra", "placebo", "mean_accuracy")
    )
    assert row["sd_diff"] == pytest.approx(comparison["sd_diff"])
    from hicra.experiment.stats import seeds_needed

    # Holm's strictest step over the 3 primary contrasts: alpha / 3
    assert row["alpha"] == pytest.approx(0.05 / 3)
    assert row["seeds_needed"]["0.01"] == seeds_needed(0.01, row["sd_diff"], alpha=0.05 / 3)
    table = tmp_path / "exp" / "results.md"
    assert main(["experiment", "analyze", str(tmp_path / "exp")]) == 0
    assert "## Power" in table.read_text()


# ----------------------------------------------------------------- 5. the placebo match
def test_analysis_flags_a_placebo_that_does_not_match(tmp_path):
    folder = tmp_path / "exp"
    write_experiment(folder, {"grpo": ARMS["grpo"], "placebo": ARMS["placebo"]}, [1, 2])
    for seed in (1, 2):
        write_run(folder, "grpo", seed, accuracy(0.3))
        columns = accuracy(0.3)
        columns["hicra/planning_ratio"] = [0.083] * 10
        # the draw: 0.050 against 0.083 on seed 1; seed 2 within 10%
        columns["hicra/placebo_ratio"] = [0.050 if seed == 1 else 0.080] * 10
        write_run(folder, "placebo", seed, columns)
    notes = analyze(load_experiment(folder))["notes"]
    flagged = [n for n in notes if "the placebo marked" in n]
    assert len(flagged) == 1 and flagged[0].startswith("placebo/seed-1: the placebo marked 0.050")
    assert "(-40%, beyond the 10% match)" in flagged[0]


# ----------------------------------------------------------------- 6. readouts
def test_semantic_entropy_readout_is_the_bias_corrected_one():
    """Plug-in semantic entropy rises with the number of occurrences on one fixed distribution
    (the issue's 2.85/3.26/3.58 nats at N = 30/60/120; here a 60-gram Zipf law: 2.57/2.87/3.06);
    Miller-Madow moves less (2.84/3.08/3.21) but not nowhere: the analysis also shows the gram
    occurrences per step and says when the arms' counts differ."""
    rng = np.random.default_rng(0)
    weights = 1 / np.arange(1, 61)
    weights /= weights.sum()
    plug, corrected = [], []
    for n in (30, 60, 120):
        draws = [np.bincount(rng.choice(60, n, p=weights), minlength=60) for _ in range(300)]
        plug.append(np.mean([semantic_entropy(list(map(int, d))) for d in draws]))
        corrected.append(np.mean([semantic_entropy_miller_madow(list(map(int, d))) for d in draws]))
    assert plug[2] - plug[0] > 0.4
    assert corrected[2] - corrected[0] < 0.8 * (plug[2] - plug[0])
    assert "bias-corrected" in METRICS["semantic_entropy_end"].label


def test_semantic_entropy_readout_reads_the_corrected_key(tmp_path):
    folder = tmp_path / "exp"
    write_experiment(folder, {"grpo": ARMS["grpo"], "hicra": ARMS["hicra"]}, [1])
    columns = accuracy(0.3)
    columns["hicra/semantic_entropy"] = [2.0] * 10
    columns["hicra/semantic_entropy_mm"] = [2.5] * 10
    columns["hicra/gram_occurrences"] = [10] * 10
    write_run(folder, "grpo", 1, columns)
    plug_in_only = accuracy(0.3)
    plug_in_only["hicra/semantic_entropy"] = [2.0] * 10
    plug_in_only["hicra/gram_occurrences"] = [30] * 10  # says 3x more planning phrases
    write_run(folder, "hicra", 1, plug_in_only)
    results = analyze(load_experiment(folder))
    assert results["arms"]["grpo"]["semantic_entropy_end"]["mean"] == pytest.approx(2.5)
    assert results["arms"]["hicra"]["semantic_entropy_end"]["mean"] is None
    assert results["arms"]["hicra"]["gram_occurrences_end"]["mean"] == pytest.approx(30)
    notes = results["notes"]
    assert any("hicra/seed-1: only the plug-in semantic entropy" in n for n in notes)
    assert any("gram occurrences per step differ" in n and "grpo 10, hicra 30" in n for n in notes)


def test_steps_to_threshold_needs_a_full_trailing_window():
    """One lucky first step is not "reaching" the threshold (the issue's edge case)."""
    steps = np.arange(1, 11)
    lucky = np.array([1.0, 0, 0, 0, 0, 0.6, 0.6, 0.6, 0.6, 0.6])
    # trailing means over 5 steps: 0.2 at step 5 ... (4 x 0.6) / 5 = 0.48 at 9, 0.6 at 10
    assert first_step_reaching(steps, lucky, 0.5) == 10.0
    assert first_step_reaching(steps[:4], np.ones(4), 0.5) is None  # never a partial window
    assert first_step_reaching(steps, np.full(10, 0.5), 0.5) == 5.0


# ----------------------------------------------------------------- 7. silent drops
def test_missing_eval_nan_tail_and_corrupt_lines_are_said(tmp_path, capsys):
    folder = tmp_path / "exp"
    write_experiment(
        folder,
        {"grpo": ARMS["grpo"], "hicra": ARMS["hicra"]},
        [1, 2, 3],
        eval={"benchmarks": ["gsm8k"]},
    )
    for seed in (1, 2, 3):
        write_run(folder, "grpo", seed, accuracy(0.3), heldout=0.2)
    write_run(folder, "hicra", 1, accuracy(0.4), heldout=0.3)
    write_run(folder, "hicra", 2, accuracy(0.4))  # its evaluation never ran
    nan_tail = accuracy(0.4)
    nan_tail["hicra/accuracy"] = [0.4] * 6 + [math.nan] * 4
    run = write_run(folder, "hicra", 3, nan_tail, heldout=0.3)
    with open(run / "metrics.jsonl", "a") as handle:
        handle.write('{"step": 11, "hicra/accuracy": 0.4\n{"step": 12}\n')  # a corrupt line
    assert main(["experiment", "analyze", str(folder)]) == 0
    err = capsys.readouterr().err
    results = json.loads((folder / "results.json").read_text())
    assert any(
        m.startswith("hicra/seed-2: no held-out eval") and "leaves it out" in m
        for m in results["missing"]
    )
    held = next(c for c in results["comparisons"] if c["metric"] == "heldout_accuracy")
    assert held["n"] == 2
    assert any(
        "hicra/seed-3: hicra/accuracy is not a number after step 6 (logged to step 12)" in n
        for n in results["notes"]
    )
    assert any("hicra/seed-3: " in n and "skipped unreadable lines" in n for n in results["notes"])
    assert any("reached only step 6" in n for n in results["notes"])
    assert "note: hicra/seed-3" in err and "missing: hicra/seed-2: no held-out eval" in err
    markdown = (folder / "results.md").read_text()
    assert "## Notes" in markdown and "no held-out eval" in markdown
    assert main(["report", str(folder)]) == 0
    page = (folder / "report" / "report.html").read_text()
    assert "skipped unreadable lines" in page and "no held-out eval" in page


def test_hierarchy_metrics_off_says_why_the_readouts_are_dashes(tmp_path):
    folder = tmp_path / "exp"
    write_experiment(
        folder,
        {"grpo": ARMS["grpo"], "hicra": {"credit": "hicra", "hierarchy_metrics": False}},
        [1],
    )
    write_run(folder, "grpo", 1, accuracy(0.3))
    write_run(folder, "hicra", 1, {"hicra/accuracy": [0.3] * 10}, hierarchy_metrics=False)
    results = analyze(load_experiment(folder))
    assert results["arms"]["hicra"]["planning_ratio_end"]["mean"] is None
    assert any("hierarchy_metrics is false" in n for n in results["notes"])


def test_power_note_refuses_a_spread_of_zero(tmp_path):
    """Paired runs that never diverged (the same value in every seed) measure no noise: the power
    note gives no seed count (it would be 2 for any d) and a note says why."""
    write_experiment(
        tmp_path / "exp", {"grpo": ARMS["grpo"], "placebo": ARMS["placebo"]}, (1, 2, 3)
    )
    for seed, level in zip((1, 2, 3), (0.2, 0.5, 0.7), strict=True):
        for arm in ("grpo", "placebo"):
            write_run(tmp_path / "exp", arm, seed, accuracy(level))
    results = analyze(load_experiment(tmp_path / "exp"))
    (row,) = results["power"]
    assert row["sd_diff"] == 0 and row["no_spread"]
    assert set(row["seeds_needed"].values()) == {None}
    assert any("no spread" in note for note in results["notes"])
    assert main(["experiment", "analyze", str(tmp_path / "exp")]) == 0
    table = (tmp_path / "exp" / "results.md").read_text()
    # the one count that can be given: the seeds a sign-flip test needs to reach alpha at all
    assert "| placebo | grpo | 3 | seeds | 0.0000 | >= 6 | >= 6 | >= 6 | >= 6 |" in table


def test_paired_seeds_that_never_diverged_are_named(tmp_path):
    # a graded positive control at one group a step: in seed 1 the inverted group carried no
    # signal, so the arm sampled exactly grpo's completions; in seed 2 it did not
    arms = {"grpo": {"credit": "grpo"}, "corrupt-25": {"credit": "grpo", "reward_corruption": 0.25}}
    write_experiment(tmp_path, arms, [1, 2, 3])
    logged = [{"step": 1, "completion": "Let me compute: 3"}, {"step": 2, "completion": "5"}]
    for seed in (1, 2, 3):
        grpo = write_run(tmp_path, "grpo", seed, accuracy(0.5), heldout=0.6)
        dose = {"hicra/inverted_groups": [1] * 10, "hicra/inverted_groups_with_signal": [0] * 10}
        if seed == 2:
            dose["hicra/inverted_groups_with_signal"] = [0] * 9 + [1]
        columns = {**accuracy(0.4), **(dose if seed < 3 else {})}
        arm = write_run(
            tmp_path,
            "corrupt-25",
            seed,
            columns,
            heldout=0.5,
            reward_corruption=0.25,
            credit="grpo",
        )
        if seed == 3:
            continue  # no rollouts.jsonl: nothing can be said
        write_jsonl(grpo / "rollouts.jsonl", logged)
        theirs = logged if seed == 1 else [logged[0], {"step": 2, "completion": "6"}]
        write_jsonl(arm / "rollouts.jsonl", [{**row, "reward": 0.0} for row in theirs])
    notes = analyze(load_experiment(tmp_path))["notes"]
    assert (
        "corrupt-25 (reward_corruption 0.25): inverted groups that carried a learning signal, "
        "seed 1: 0 of 10; seed 2: 1 of 10; seed 3: not logged" in "\n".join(notes)
    )
    found = [n for n in notes if "never altered a sampled token" in n]
    assert found == [
        "corrupt-25 vs grpo: seed 1 logged exactly grpo's rollouts (every completion in "
        "rollouts.jsonl, 1 of 3 paired seeds): the arm's change never altered a sampled token "
        "there, so its difference is 0 by construction, not a measured null"
    ]
    for seed in (1, 2):  # runs from before the dose was logged: one line says so
        for key in ("hicra/inverted_groups", "hicra/inverted_groups_with_signal"):
            drop_metric(tmp_path / "corrupt-25" / f"seed-{seed}" / "metrics.jsonl", key)
    notes = analyze(load_experiment(tmp_path))["notes"]
    assert "corrupt-25 (reward_corruption 0.25): its runs did not log the dose" in "\n".join(notes)
    # a longer log is no match, even when its first lines are
    write_jsonl(tmp_path / "corrupt-25" / "seed-1" / "rollouts.jsonl", [*logged, logged[1]])
    notes = analyze(load_experiment(tmp_path))["notes"]
    assert not [n for n in notes if "never altered a sampled token" in n]


def drop_metric(path: Path, key: str) -> None:
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    write_jsonl(path, [{k: v for k, v in row.items() if k != key} for row in rows])
