"""The analysis-side checks of issues 28 and 29 (`hicra.experiment.checks`) on synthetic runs."""

from __future__ import annotations

import json

import pytest

from hicra.experiment.analysis import load_experiment
from hicra.experiment.checks import heldout_gone_notes, missing_primary_notes, no_planning_notes
from hicra.experiment.controls import MEAN_OF_STEPS, check_run
from hicra.experiment.metrics import COMPARED, compared_metrics
from tests.test_experiment_analysis import ARMS, write_experiment, write_run


def steps(accuracy=0.5, planning=0.1, n=4, **more):
    return {"hicra/accuracy": [accuracy] * n, "hicra/planning_ratio": [planning] * n, **more}


def by_label(loaded):
    return {item.label: item for item in loaded.runs}


def test_no_planning_token_anywhere_is_said_loudly(tmp_path):
    folder = tmp_path / "exp"
    write_experiment(folder, ARMS, [1, 2])
    for arm in ARMS:
        for seed in (1, 2):
            write_run(folder, arm, seed, steps(planning=0.0))
    notes = no_planning_notes(load_experiment(folder).runs)
    assert len(notes) == 1 and notes[0].startswith("NO RUN MARKED A SINGLE PLANNING TOKEN")
    assert "comparison between them is empty" in notes[0]


def test_a_single_run_without_planning_tokens_is_named(tmp_path):
    folder = tmp_path / "exp"
    write_experiment(folder, ARMS, [1, 2])
    for arm in ARMS:
        for seed in (1, 2):
            empty = arm == "hicra" and seed == 2
            write_run(folder, arm, seed, steps(planning=0.0 if empty else 0.1))
    notes = no_planning_notes(load_experiment(folder).runs)
    assert notes == ["hicra/seed-2: no planning token in any step: credit 'hicra' ran as GRPO"]


def test_a_run_whose_heldout_lines_are_gone_is_named(tmp_path):
    folder = tmp_path / "exp"
    arms = {"grpo": {"credit": "grpo"}, "hicra": {"credit": "hicra"}}
    write_experiment(folder, arms, [1, 2])
    for arm in arms:
        for seed in (1, 2):
            gone = arm == "hicra" and seed == 1
            columns = steps() if gone else steps(**{"eval/accuracy": [0.4] * 4})
            write_run(
                folder, arm, seed, columns, heldout=None if gone else 0.6, eval_benchmarks="x"
            )
    notes = heldout_gone_notes(load_experiment(folder).runs, has_eval=True)
    assert len(notes) == 2 and all(n.startswith("hicra/seed-1: ") for n in notes)
    assert "eval/results.json" in notes[0] and "no eval/accuracy line" in notes[1]
    assert heldout_gone_notes(load_experiment(folder).runs, has_eval=False) == notes[1:]


def test_missing_primary_metric_is_named(tmp_path):
    folder = tmp_path / "exp"
    arms = {"grpo": {"credit": "grpo"}, "hicra": {"credit": "hicra"}}
    write_experiment(folder, arms, [1])
    write_run(folder, "grpo", 1, steps())
    write_run(folder, "hicra", 1, {"hicra/planning_ratio": [0.1] * 4, "loss": [1.0] * 4})
    runs = load_experiment(folder).runs
    notes = missing_primary_notes(runs, "mean_accuracy", horizon=4, threshold=0.5)
    assert notes == ["hicra/seed-1: the primary metric (mean accuracy) is missing from this run"]


def test_run_long_ratio_and_answer_or_format_of_controls(tmp_path):
    folder = tmp_path / "exp"
    write_experiment(folder, ARMS, [1])
    write_run(folder, "grpo", 1, steps())
    write_run(folder, "hicra", 1, steps())
    logged = steps(
        **{"hicra/placebo_ratio": [0.05] * 4, "hicra/placebo_run_ratio": [0.7, 0.9, 1.0, 0.95]}
    )
    placebo = write_run(folder, "placebo", 1, logged)
    runs = by_label(load_experiment(folder))
    check = check_run(runs["placebo/seed-1"])
    assert check.ratio == 0.95 and check.valid  # the cumulative count, last step
    assert check.grams_known and check.bad_grams == []  # the fixture's clean placebo_grams.json
    (placebo / "placebo_grams.json").write_text(
        json.dumps({"grams": ["the answer"], "answer_or_format": ["the answer"]})
    )
    check = check_run(runs["placebo/seed-1"])
    assert check.bad_grams == ["the answer"] and not check.valid
    # an older run without the run-long key: the mean shares' ratio (0.06 / 0.1)
    older = tmp_path / "old"
    write_experiment(older, ARMS, [1])
    write_run(older, "placebo", 1, steps(**{"hicra/placebo_ratio": [0.05, 0.07, 0.06, 0.06]}))
    item = by_label(load_experiment(older))["placebo/seed-1"]
    check = check_run(item)
    assert check.ratio == pytest.approx(0.6) and check.how == MEAN_OF_STEPS and not check.valid


def test_a_readout_named_primary_is_tested():
    assert compared_metrics("mean_accuracy") == COMPARED
    assert compared_metrics("planning_ratio_end") == ("planning_ratio_end", *COMPARED)
