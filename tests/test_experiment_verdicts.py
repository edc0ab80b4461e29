"""`hicra experiment analyze`, round two (issue 28): verdicts a hostile reviewer signs. Each case on
synthetic run folders: lattice ties, stated assumptions, the control's validity, the
pre-registration and interim labels, and held-out results at the (seed, problem) level."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from hicra.cli import main
from hicra.experiment.analysis import analyze, load_experiment
from hicra.experiment.execute import training_plan
from hicra.experiment.preregistration import PREREGISTRATION_FILE
from hicra.experiment.spec import load_spec
from hicra.experiment.stats import crossed, crossed_minimal_effect, crossed_power
from hicra.experiment.status import eval_score
from tests.test_experiment_analysis import ARMS, accuracy, three_arms, write_experiment, write_run

TWO = {"grpo": ARMS["grpo"], "hicra": ARMS["hicra"]}


def heldout_runs(folder: Path, grpo: list[float], hicra: list[float], problems: int = 40):
    """Runs whose only held-out record is results.json's avg@k (no per-problem samples)."""
    write_experiment(folder, TWO, range(1, len(grpo) + 1), eval={"benchmarks": ["gsm8k"]})
    for seed, (g, h) in enumerate(zip(grpo, hicra, strict=True), start=1):
        for arm, score in (("grpo", g), ("hicra", h)):
            run = write_run(folder, arm, seed, accuracy(0.3))
            (run / "eval").mkdir()
            results = {"benchmarks": {"heldout": {"avg@k": score, "problems": problems}}}
            (run / "eval" / "results.json").write_text(json.dumps(results))


def primary(results: dict, arm: str = "hicra", other: str = "grpo") -> dict:
    return next(
        c
        for c in results["comparisons"]
        if (c["arm"], c["baseline"]) == (arm, other) and c["family"] == "primary"
    )


# ----------------------------------------------------------------- 1. lattice ties
def test_three_seeds_one_problem_better_rest_on_the_exact_sign_flip_p(tmp_path):
    """The issue's case: each seed exactly one problem of 40 better. Floating point leaves a
    spread of ~6e-17 (ptp != 0), and the t-test said p = 2.2e-30, "hicra higher"."""
    grpo = [11 / 40, 28 / 40, 33 / 40]
    hicra = [12 / 40, 29 / 40, 34 / 40]
    assert np.ptp(np.subtract(hicra, grpo)) > 0  # the noise that defeated `ptp == 0`
    heldout_runs(tmp_path / "exp", grpo, hicra)
    results = analyze(load_experiment(tmp_path / "exp"))
    c = primary(results)
    assert c["metric"] == "heldout_accuracy" and c["ties"]
    assert c["p_value"] == pytest.approx(0.25) and c["sd_diff"] == 0
    assert c["ci_low"] == pytest.approx(0.025) and c["ci_high"] == pytest.approx(0.025)
    line = next(v for v in results["verdicts"] if v.startswith("hicra vs grpo: +0.025 held-out"))
    assert "no difference detected" in line
    assert "rests on the exact sign-flip p = 0.25" in line
    # the power note still gives a seed count: the fewest seeds at which a sign-flip can reach 0.05
    (row,) = results["power"]
    assert row["no_spread"] and row["sign_flip_seeds"] == 6
    assert main(["experiment", "analyze", str(tmp_path / "exp")]) == 0
    table = (tmp_path / "exp" / "results.md").read_text()
    assert "| hicra | grpo | 3 | seeds | 0.0000 | >= 6 | >= 6 | >= 6 | >= 6 |" in table


def test_identical_arms_on_the_lattice_are_no_difference(tmp_path):
    heldout_runs(tmp_path / "exp", [0.1 + 0.2, 0.3, 0.6], [0.3, 0.1 + 0.2, 0.6])
    c = primary(analyze(load_experiment(tmp_path / "exp")))
    assert c["ties"] and c["p_value"] == 1.0


# ----------------------------------------------------------------- 2. assumptions stated
def test_verdicts_below_six_seeds_say_they_rest_on_normal_differences(tmp_path):
    three_arms(tmp_path / "few", 0.10, 0.0, seeds=range(1, 4))
    results = analyze(load_experiment(tmp_path / "few"))
    assert all("rests on normally distributed seed differences" in v for v in results["verdicts"])
    line = next(v for v in results["verdicts"] if v.startswith("hicra vs grpo: +0.1"))
    # t-test p ~ 5e-4, the sign-flip test's smallest p at 3 seeds is 0.25
    assert "and the exact sign-flip test over seeds (p = 0.25) disagree sharply" in line
    three_arms(tmp_path / "many", 0.10, 0.0, seeds=range(1, 9))
    results = analyze(load_experiment(tmp_path / "many"))
    assert not any("normally distributed" in v for v in results["verdicts"])
    assert not any("disagree" in v for v in results["verdicts"])


# ----------------------------------------------------------------- 3. the control's quality
def placebo_runs(folder: Path, ratio: float, grams=None, weighted: bool = True, **extra):
    """hicra +0.10 over grpo and over the placebo, 8 seeds; the placebo marks `ratio` x the
    planning tokens; its placebo_grams.json says `grams` for answer_or_format (None: no key)."""
    three_arms(folder, 0.10, 0.0, **extra)
    for seed in range(1, 9):
        run = folder / "placebo" / f"seed-{seed}"
        rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        for row in rows:
            row["hicra/placebo_ratio"] = 0.1 * ratio
            if weighted:
                row["hicra/completions"], row["completions/mean_length"] = 8, 100.0
        (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        saved = {"grams": ["so the"]}
        if grams is not None:
            saved["answer_or_format"] = grams
        (run / "placebo_grams.json").write_text(json.dumps(saved))


def test_a_placebo_that_marked_too_few_tokens_is_not_a_valid_control(tmp_path):
    placebo_runs(tmp_path / "exp", ratio=0.6, grams=[])
    results = analyze(load_experiment(tmp_path / "exp"))
    first = results["verdicts"][0]
    assert first.startswith("the placebo (placebo) is not valid (placebo/seed-1: it marked 0.60x")
    assert "(token-weighted sum over steps), beyond the +-10% match" in first
    assert "is not judged" in first
    assert not any("specific to planning tokens at this budget" in v for v in results["verdicts"])
    assert results["controls"]["placebo"][0]["ratio"] == pytest.approx(0.6)


def test_without_token_counts_the_match_is_the_mean_of_per_step_ratios_and_says_so(tmp_path):
    placebo_runs(tmp_path / "exp", ratio=0.8, grams=[], weighted=False)
    first = analyze(load_experiment(tmp_path / "exp"))["verdicts"][0]
    assert "0.80x the planning tokens (mean of per-step ratios (no token counts logged))" in first


def test_a_placebo_whose_grams_include_answer_text_is_not_valid(tmp_path):
    placebo_runs(tmp_path / "exp", ratio=1.0, grams=["the answer is"])
    first = analyze(load_experiment(tmp_path / "exp"))["verdicts"][0]
    assert "is not valid" in first and "its grams include answer or format text" in first
    assert "'the answer is'" in first


def test_a_placebo_whose_grams_were_not_checked_says_unknown(tmp_path):
    placebo_runs(tmp_path / "exp", ratio=1.0, grams=None)
    first = analyze(load_experiment(tmp_path / "exp"))["verdicts"][0]
    assert first.startswith("hicra beats grpo and the placebo (placebo) on mean accuracy: the gain")
    assert "unknown whether its grams include answer or format text" in first
    assert "in 8 of 8 runs" in first


def test_a_matched_clean_placebo_still_shows_specificity(tmp_path):
    placebo_runs(tmp_path / "exp", ratio=1.05, grams=[])
    first = analyze(load_experiment(tmp_path / "exp"))["verdicts"][0]
    assert first == (
        "hicra beats grpo and the placebo (placebo) on mean accuracy: the gain is specific to "
        "planning tokens at this budget"
    )


def test_baseline_placebo_never_says_beats_placebo_and_the_placebo(tmp_path):
    placebo_runs(tmp_path / "exp", ratio=1.0, grams=[])
    results = analyze(load_experiment(tmp_path / "exp", baseline="placebo"))
    assert not any("and the placebo" in v for v in results["verdicts"])
    assert results["verdicts"][0].startswith(
        "hicra beats the placebo (placebo) on mean accuracy at this budget; the baseline is the "
        "control, so no gain over GRPO is judged here"
    )


def test_a_random_token_control_arm_is_contrasted_and_checked(tmp_path):
    folder = tmp_path / "exp"
    arms = {**TWO, "random": {"credit": "random_tokens"}}
    write_experiment(folder, arms, range(1, 9))
    rng = np.random.default_rng(1)
    for seed in range(1, 9):
        base = 0.3 + 0.02 * float(rng.normal())
        write_run(folder, "grpo", seed, accuracy(base))
        write_run(folder, "hicra", seed, accuracy(base + 0.1 + 0.005 * float(rng.normal())))
        control = accuracy(base + 0.005 * float(rng.normal()))
        control["hicra/placebo_ratio"] = [0.05] * 10  # half the planning ratio
        write_run(folder, "random", seed, control, credit="random_tokens")
    results = analyze(load_experiment(folder))
    assert ["hicra", "random"] in results["contrasts"]
    first = results["verdicts"][0]
    assert first.startswith("the random-token control (random) is not valid (random/seed-1: ")
    assert "0.50x the planning tokens" in first


# ----------------------------------------------------------------- 6. forking paths
def test_first_run_records_the_plan_and_never_rewrites_it(tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_text(
        "base: {max_steps: 2, use_cpu: true}\n"
        "arms: {grpo: {credit: grpo}, hicra: {credit: hicra}, placebo: {credit: placebo}}\n"
        "seeds: [1, 2, 3]\n"
    )
    folder = tmp_path / "out"
    spec = load_spec(path, str(folder))
    folder.mkdir()
    training_plan(spec, folder)
    record = json.loads((folder / PREREGISTRATION_FILE).read_text())
    assert record["primary_metric"] == "mean_accuracy" and record["alpha"] == 0.05
    assert record["seeds"] == [1, 2, 3] and record["baseline"] == "grpo"
    assert record["contrasts"] == [["hicra", "grpo"], ["placebo", "grpo"], ["hicra", "placebo"]]
    path.write_text(path.read_text().replace("seeds: [1, 2, 3]", "seeds: [1, 2, 3, 4]"))
    training_plan(load_spec(path, str(folder)), folder)
    assert json.loads((folder / PREREGISTRATION_FILE).read_text()) == record


def test_no_record_when_runs_started_before_one_was_kept(tmp_path):
    three_arms(tmp_path / "exp", 0.1, 0.0, seeds=(1, 2))
    path = tmp_path / "exp.yaml"
    path.write_text(
        "base: {max_steps: 2, use_cpu: true}\narms: {grpo: {credit: grpo}}\nseeds: [1]\n"
    )
    training_plan(load_spec(path, str(tmp_path / "exp")), tmp_path / "exp")
    assert not (tmp_path / "exp" / PREREGISTRATION_FILE).exists()
    notes = analyze(load_experiment(tmp_path / "exp"))["notes"]
    assert any(n.startswith("not pre-registered") for n in notes)


def preregistered(folder: Path, seeds=(1, 2, 3), **plan) -> None:
    record = {
        "primary_metric": "mean_accuracy",
        "contrasts": [["hicra", "grpo"], ["placebo", "grpo"], ["hicra", "placebo"]],
        "alpha": 0.05,
        "seeds": list(seeds),
        "arms": ["grpo", "hicra", "placebo"],
        "baseline": "grpo",
        **plan,
    }
    (folder / PREREGISTRATION_FILE).write_text(json.dumps(record))


def test_every_verdict_says_what_changed_after_the_preregistration(tmp_path):
    folder = tmp_path / "exp"
    three_arms(folder, 0.1, 0.0, seeds=range(1, 9), primary_metric="final_accuracy")
    preregistered(folder, seeds=(1, 2, 3, 4, 5, 6))
    results = analyze(load_experiment(folder))
    changed = (
        "[changed after the pre-registration: primary metric final accuracy (planned: mean "
        "accuracy); seed-7, seed-8 beyond the 6 planned seeds]"
    )
    assert results["verdicts"] and all(v.endswith(changed) for v in results["verdicts"])
    assert results["changed_after_preregistration"][0].startswith("primary metric final")
    # as planned: nothing said
    folder2 = tmp_path / "planned"
    three_arms(folder2, 0.1, 0.0, seeds=range(1, 7))
    preregistered(folder2, seeds=range(1, 7))
    assert not any("changed after" in v for v in analyze(load_experiment(folder2))["verdicts"])
    # contrasts chosen afterwards (--baseline) are a change too
    other = analyze(load_experiment(folder2, baseline="placebo"))
    assert all("contrasts added grpo vs placebo" in v for v in other["verdicts"])


def test_an_unfinished_experiment_is_interim(tmp_path, capsys):
    folder = tmp_path / "exp"
    three_arms(folder, 0.1, 0.0, seeds=range(1, 4))
    saved = yaml.safe_load((folder / "experiment.yaml").read_text())
    saved["seeds"] = [1, 2, 3, 4]  # seed 4 planned, not started
    (folder / "experiment.yaml").write_text(yaml.safe_dump(saved))
    results = analyze(load_experiment(folder))
    assert results["interim"]
    assert all(v.startswith("INTERIM (9 of 12 runs finished): ") for v in results["verdicts"])
    assert main(["experiment", "analyze", str(folder)]) == 0
    assert (folder / "results.md").read_text().startswith("# INTERIM: hicra experiment")
    assert "INTERIM (9 of 12 runs finished)" in capsys.readouterr().out


# ----------------------------------------------------------------- 7. seeds x problems
def test_heldout_score_pools_benchmarks_by_problem_count(tmp_path):
    run = tmp_path / "run"
    (run / "eval").mkdir(parents=True)
    benches = {
        "aime24": {"avg@k": 0.1, "problems": 30},
        "math500": {"avg@k": 0.5, "problems": 500},
    }
    (run / "eval" / "results.json").write_text(json.dumps({"benchmarks": benches}))
    score, problems = eval_score(run)
    assert problems == 530
    assert score == pytest.approx((0.1 * 30 + 0.5 * 500) / 530)  # 0.4774, not the plain 0.3


def write_samples(folder: Path, correct: dict[str, list[list[bool]]]) -> None:
    """An evaluation folder: per benchmark, per problem, its samples' correctness."""
    folder.mkdir(parents=True, exist_ok=True)
    rows, benches = [], {}
    for bench, problems in correct.items():
        for index, samples in enumerate(problems):
            for sample, ok in enumerate(samples):
                rows.append({"benchmark": bench, "id": str(index), "sample": sample, "correct": ok})
        k = len(problems[0])
        avg = float(np.mean([np.mean(s) for s in problems]))
        benches[bench] = {"avg@k": avg, "problems": len(problems), "samples": k}
    (folder / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (folder / "results.json").write_text(json.dumps({"benchmarks": benches}))


def test_heldout_contrast_is_judged_over_seeds_and_problems(tmp_path):
    """3 seeds x (30 + 10) problems, 2 samples each: the contrast is `stats.crossed` on the
    (seed, problem) table, pooled by problem count, and per benchmark beside it."""
    folder = tmp_path / "exp"
    write_experiment(folder, TWO, [1, 2, 3], eval={"benchmarks": ["a", "b"]})
    rng = np.random.default_rng(0)
    difficulty = {"a": rng.uniform(0.1, 0.9, 30), "b": rng.uniform(0.1, 0.9, 10)}
    scores = {}
    for seed in (1, 2, 3):
        for arm, gain in (("grpo", 0.0), ("hicra", 0.15)):
            run = write_run(folder, arm, seed, accuracy(0.3))
            correct = {
                b: [[bool(x) for x in rng.random(2) < min(1, p + gain)] for p in difficulty[b]]
                for b in ("a", "b")
            }
            write_samples(run / "eval", correct)
            scores[arm, seed] = {
                (b, str(i)): float(np.mean(s)) for b in correct for i, s in enumerate(correct[b])
            }
    results = analyze(load_experiment(folder))
    c = primary(results)
    assert c["level"] == "seeds x problems" and c["problems"] == 40
    keys = sorted(scores["grpo", 1])
    table = np.array(
        [[scores["hicra", s][k] - scores["grpo", s][k] for k in keys] for s in (1, 2, 3)]
    )
    expected = crossed(table)
    assert c["mean_diff"] == pytest.approx(table.mean())
    assert c["p_value"] == pytest.approx(float(expected["p"]))
    assert c["ci_low"] == pytest.approx(float(expected["ci_low"]))
    # the per-arm held-out accuracy is the problem-weighted one: the same mean difference
    arms = results["arms"]
    gap = arms["hicra"]["heldout_accuracy"]["mean"] - arms["grpo"]["heldout_accuracy"]["mean"]
    assert gap == pytest.approx(c["mean_diff"])
    assert set(c["by_benchmark"]) == {"a", "b"}
    assert c["by_benchmark"]["a"]["problems"] == 30 and c["by_benchmark"]["b"]["problems"] == 10
    line = next(v for v in results["verdicts"] if "held-out accuracy (primary)" in v)
    assert "over 3 seeds x 40 problems" in line
    mde = c["detectable"]
    assert f"minimal detectable effect +-{mde['effect']:.3f} at power 0.8 (3 seeds x 40" in line
    assert crossed_power(mde["effect"], c["components"], 3, 40, 0.05) == pytest.approx(
        0.8, abs=1e-6
    )
    assert main(["experiment", "analyze", str(folder)]) == 0
    page = (folder / "results.md").read_text()
    assert "seeds x 40 problems" in page and "| hicra | grpo | held-out accuracy | a | 30 |" in page


def test_training_heldout_uses_the_last_in_training_evaluation_records(tmp_path):
    folder = tmp_path / "exp"
    write_experiment(folder, TWO, [1, 2], primary_metric="training_heldout_final")
    for seed in (1, 2):
        for arm, right in (("grpo", 5), ("hicra", 8)):
            columns = accuracy(0.3)
            columns["eval/accuracy"] = [None] * 9 + [right / 10]
            run = write_run(folder, arm, seed, columns)
            write_samples(run / "heldout" / "step-5", {"x": [[False]] * 10})  # an earlier one
            right_now = right + (seed == 2)
            write_samples(run / "heldout" / "step-10", {"x": [[i < right_now] for i in range(10)]})
    c = primary(analyze(load_experiment(folder)))
    assert c["level"] == "seeds x problems" and c["problems"] == 10
    assert c["mean_diff"] == pytest.approx(0.3)


def test_crossed_minimal_effect_is_where_power_reaches_080():
    components = {"seed": 0.0004, "problem": 0.01, "residual": 0.05}
    effect = crossed_minimal_effect(components, 4, 40)
    assert crossed_power(effect, components, 4, 40) == pytest.approx(0.8, abs=1e-6)
    assert crossed_minimal_effect(components, 4, 400) < effect  # more problems, smaller effect


def test_missing_per_problem_records_fall_back_to_seeds_and_say_so(tmp_path):
    heldout_runs(tmp_path / "exp", [0.3, 0.5, 0.6], [0.35, 0.5, 0.7])
    results = analyze(load_experiment(tmp_path / "exp"))
    assert primary(results)["level"] == "seeds"
    assert any(
        "held-out accuracy judged over seeds only, not over seeds x problems (no complete "
        "per-problem records in hicra/seed-1, grpo/seed-1, hicra/seed-2" in n
        for n in results["notes"]
    )


def test_an_unreadable_preregistration_is_said(tmp_path):
    three_arms(tmp_path / "exp", 0.1, 0.0, seeds=(1, 2))
    (tmp_path / "exp" / PREREGISTRATION_FILE).write_text("{not json")
    notes = analyze(load_experiment(tmp_path / "exp"))["notes"]
    assert any("preregistration.json is unreadable" in n for n in notes)


def test_an_arm_on_the_default_credit_is_hicra_in_the_preregistered_contrasts(tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_text(
        "base: {max_steps: 2, use_cpu: true}\n"
        "arms: {grpo: {credit: grpo}, mine: {hicra_alpha: 0.3}, shuffled: {credit: placebo}}\n"
        "seeds: [1]\n"
    )
    folder = tmp_path / "out"
    folder.mkdir()
    training_plan(load_spec(path, str(folder)), folder)
    record = json.loads((folder / PREREGISTRATION_FILE).read_text())
    assert ["mine", "shuffled"] in record["contrasts"]  # hicra train's default credit is hicra
