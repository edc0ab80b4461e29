"""What every run logs whatever hierarchy_metrics says, the reward-corruption control recorded in
config.yaml, and the loud warning of a run that marks no planning token."""

from __future__ import annotations

import math

import torch
import yaml

from hicra.cli import main
from hicra.jsonl import read_jsonl
from hicra.run_folder import Metric
from hicra.train.generation_metrics import corruption_dose
from hicra.train.outcome import PlanningWatch, outcome_metrics
from hicra.train.rewards import AccuracyReward, CorruptedAccuracy
from tests.test_train_cli import tiny_args, write_jsonl


def test_hierarchy_metrics_off_still_logs_accuracy_and_planning(tiny_model_dir, tmp_path, capsys):
    train = write_jsonl(
        tmp_path / "train.jsonl",
        [{"question": f"What is {i} + 2?", "answer": str(i + 2)} for i in range(8)],
    )
    out = tmp_path / "run"
    args = tiny_args(tiny_model_dir, train, out, "--hierarchy-metrics", "false")
    assert main([*args, "--reward-corruption", "0.5", "--credit", "hicra"]) == 0
    rows = [row for _, row in read_jsonl(out / "metrics.jsonl") if "loss" in row]
    assert [r["step"] for r in rows] == [1, 2]
    for row in rows:
        assert 0.0 <= row[Metric.ACCURACY] <= 1.0 and row[Metric.COMPLETIONS] == 8
        assert 0.0 <= row[Metric.PLANNING_RATIO] <= 1.0
        assert Metric.EXECUTION_ENTROPY not in row and Metric.SEMANTIC_ENTROPY not in row
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert config["reward_corruption"] == 0.5 and config["hierarchy_metrics"] is False
    # the dose each step received: the schedule's inverted groups, and those with a signal
    size = config["num_generations"]
    schedule = CorruptedAccuracy(fraction=0.5, seed=config["seed"], group_size=size)
    per_step = 8 // size
    for step, row in enumerate(rows):
        groups = range(step * per_step, (step + 1) * per_step)
        assert row[Metric.INVERTED_GROUPS] == sum(schedule.inverted(k) for k in groups)
        assert 0 <= row[Metric.INVERTED_WITH_SIGNAL] <= row[Metric.INVERTED_GROUPS]
    assert sum(row[Metric.INVERTED_GROUPS] for row in rows) == 2 * per_step // 2
    # the tiny random model says no strategic gram: hicra acted as GRPO, and the log says so
    assert rows[0][Metric.PLANNING_RATIO] == 0  # 8 random tokens hold none of the paper's grams
    err = capsys.readouterr().err
    assert err.count("WARNING: step 0: no completion of this batch holds a strategic") == 1


def fake_reduce(values, kind):
    return list(values)


def test_outcome_metrics_by_hand():
    reward = AccuracyReward()
    reward.last_scores = [1.0, 0.5, 0.0, 1.0]  # partial credit is not "correct"
    planning = torch.tensor([[1, 0, 0], [0, 0, 0], [1, 1, 0], [0, 0, 0]]).bool()
    real = torch.tensor([[1, 1, 1], [1, 1, 0], [1, 1, 1], [1, 0, 0]]).bool()
    metrics = outcome_metrics(reward, planning, real, fake_reduce)
    assert metrics[Metric.ACCURACY] == 0.5 and metrics[Metric.COMPLETIONS] == 4
    assert metrics[Metric.PLANNING_RATIO] == 3 / 9
    assert metrics[Metric.VERIFY_TIMEOUTS] == 0 and metrics[Metric.SCORER_ERRORS] == 0
    nothing = outcome_metrics(None, planning, torch.zeros_like(real), fake_reduce)
    assert set(nothing) == {Metric.PLANNING_RATIO} and math.isnan(nothing[Metric.PLANNING_RATIO])


def test_the_planning_watch_warns_at_1_10_100_empty_batches(capsys):
    watch = PlanningWatch("placebo", "paper", is_main=True)
    empty = torch.zeros(2, 3, dtype=torch.bool)
    some = torch.tensor([[1, 0, 0], [0, 0, 0]]).bool()
    real = torch.ones(2, 3, dtype=torch.bool)
    watch.see(0, some, real, fake_reduce)
    for step in range(1, 12):
        watch.see(step, empty, real, fake_reduce)
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 2
    assert "step 1: no completion" in lines[0] and "(1 of 2 batches" in lines[0]
    assert "credit 'placebo' acted as GRPO" in lines[0]
    assert "step 10:" in lines[1] and "(10 of 11 batches" in lines[1]
    quiet = PlanningWatch("grpo", "paper", is_main=True)  # grpo does not use planning tokens
    quiet.see(0, empty, real, fake_reduce)
    assert capsys.readouterr().err == ""


def test_corruption_dose_by_hand():
    # three groups of 3 (real score, inverted): group 0 inverted with mixed scores (a signal),
    # group 1 inverted but all wrong (inverting it changes no advantage), group 2 not inverted
    rows = [(1.0, True), (0.0, True), (1.0, True)]
    rows += [(0.0, True), (0.0, True), (0.0, True)]
    rows += [(1.0, False), (0.0, False), (0.0, False)]
    assert corruption_dose(rows, 3) == (2, 1)
    assert corruption_dose(rows[6:], 3) == (0, 0)
