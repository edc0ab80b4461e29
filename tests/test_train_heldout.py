"""Held-out evaluation while training, group pass@k, and what `hicra train` says about itself."""

from __future__ import annotations

import json
import math

import pytest

from hicra import __version__
from hicra.cli import main
from hicra.jsonl import read_jsonl
from hicra.run_folder import Metric, heldout_step_dir, parse_heldout_key
from hicra.train.group_passk import group_pass_at_k
from hicra.train.heldout_eval import eval_steps, heldout_metrics, is_due
from tests.test_train_cli import tiny_args, write_jsonl


@pytest.fixture
def heldout_file(tmp_path):
    rows = [
        {"question": "What is 1 + 1?", "answer": "2"},
        {"question": "What is 2 + 5?", "answer": "7"},
        {"question": "What is 3 + 3?", "answer": "6"},
    ]
    return write_jsonl(tmp_path / "heldout.jsonl", rows)


def metric_rows(folder):
    return [row for _, row in read_jsonl(folder / "metrics.jsonl")]


def heldout_rows(folder):
    return [r for r in metric_rows(folder) if Metric.heldout("heldout", "accuracy") in r]


def test_four_steps_with_eval_steps_2_evaluate_twice(
    tiny_model_dir, tmp_path, heldout_file, capsys
):
    train = write_jsonl(
        tmp_path / "train.jsonl",
        [{"question": f"What is {i} + 2?", "answer": str(i + 2)} for i in range(8)],
    )
    out = tmp_path / "run"
    args = tiny_args(tiny_model_dir, train, out, "--eval-benchmarks", str(heldout_file))
    args += ["--eval-steps", "2", "--eval-samples", "4"]
    args += ["--system-prompt", "You are a careful math assistant."]  # the run's own prompt
    args += ["--few-shot", json.dumps([["2 + 3 =", "So it is \\boxed{5}."]])]
    args[args.index("--max-steps") + 1] = "4"
    assert main(args) == 0
    rows = heldout_rows(out)
    assert [r["step"] for r in rows] == [2, 4]
    assert f"hicra_version: {__version__}" in (out / "config.yaml").read_text()
    # report_to loggers get them as transformers' eval metrics (eval_ prefix: filed under eval/)
    history = json.loads((out / "checkpoint-4" / "trainer_state.json").read_text())["log_history"]
    logged = [h for h in history if "eval_heldout/accuracy" in h]
    assert [h["step"] for h in logged] == [2, 4] and all("eval_seconds" in h for h in logged)
    for row in rows:
        acc = row[Metric.heldout("heldout", "accuracy")]
        assert 0.0 <= acc <= 1.0 and row[Metric.EVAL_ACCURACY] == acc
        assert {"eval/heldout/pass@1", "eval/heldout/pass@2", "eval/heldout/pass@4"} <= set(row)
        assert row["eval/heldout/pass@1"] == pytest.approx(acc)
        assert "eval/heldout/maj@4" in row and row[Metric.EVAL_SECONDS] > 0
    for step in (2, 4):
        folder = heldout_step_dir(out, step)
        samples = [json.loads(x) for x in (folder / "samples.jsonl").read_text().splitlines()]
        assert len(samples) == 3 * 4  # 3 problems x 4 samples
        results = json.loads((folder / "results.json").read_text())
        assert results["step"] == step and results["hicra_version"]
        assert results["benchmarks"]["heldout"]["problems"] == 3
        # asked with the run's own prompt: its system prompt and example
        assert results["generation"]["system_prompt"].startswith("You are a careful math")
        assert results["generation"]["few_shot"][0][1].endswith("\\boxed{5}.")
    # group pass@k every training step, k = 1, 2, 4 for groups of 4
    train_rows = [r for r in metric_rows(out) if "loss" in r]
    assert [r["step"] for r in train_rows] == [1, 2, 3, 4]
    for row in train_rows:
        p1, p2, p4 = (row[Metric.group_pass_at(k)] for k in (1, 2, 4))
        assert p1 == pytest.approx(row[Metric.ACCURACY])
        assert p1 <= p2 <= p4
    assert "held-out accuracy: heldout" in capsys.readouterr().out

    # a resume to 6 steps evaluates at 6 and does not redo 2 and 4
    longer = [*args, "--resume"]
    longer[longer.index("--max-steps") + 1] = "6"
    assert main(longer) == 0
    rows = heldout_rows(out)
    assert [r["step"] for r in rows] == [2, 4, 6]
    assert sorted(p.name for p in (out / "heldout").iterdir()) == ["step-2", "step-4", "step-6"]

    # the report reads the evaluations: the held-out column and curves
    assert main(["report", str(out), "--output", str(tmp_path / "report")]) == 0
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    run = report["runs"][0]
    assert run["heldout"]["heldout"]["steps"] == [2, 4, 6]
    assert run["final_eval_accuracy"] == rows[-1][Metric.EVAL_ACCURACY]
    assert (tmp_path / "report" / "heldout.png").stat().st_size > 0


def test_group_pass_at_k_by_hand():
    # groups of 4: one right (c=1), none, two right (c=2)
    correct = [True, False, False, False] + [False] * 4 + [True, True, False, False]
    got = group_pass_at_k(correct, 4)
    assert list(got) == [1, 2, 4]
    # pass@2: 1 - C(3,2)/C(4,2) = 1/2; 0; 1 - C(2,2)/C(4,2) = 5/6
    assert got[1] == pytest.approx((0.25 + 0 + 0.5) / 3)
    assert got[2] == pytest.approx((0.5 + 0 + 5 / 6) / 3)
    assert got[4] == pytest.approx(2 / 3)
    # groups of 6: k = 1, 2, 4, 6; c=3: pass@4 = 1 - C(3,4)/C(6,4) = 1 (fewer wrong than k)
    six = group_pass_at_k([True] * 3 + [False] * 3, 6)
    assert list(six) == [1, 2, 4, 6]
    assert six[2] == pytest.approx(1 - 3 / 15) and six[4] == 1.0
    with pytest.raises(ValueError, match="whole groups"):
        group_pass_at_k([True] * 5, 4)


def test_when_evaluations_are_due():
    class Config:
        eval_steps = 10

    assert eval_steps(Config, 30) == 10
    Config.eval_steps = 0.25  # a fraction of the run, as in transformers
    assert eval_steps(Config, 30) == 8 and eval_steps(Config, 2) == 1
    Config.eval_steps = None
    assert eval_steps(Config, 30) is None
    assert [s for s in range(0, 31) if is_due(s, 10, 30)] == [10, 20, 30]
    assert [s for s in range(0, 26) if is_due(s, 10, 25)] == [10, 20, 25]  # and at the end
    assert [s for s in range(0, 31) if is_due(s, None, 30)] == [30]


def test_heldout_metric_keys():
    summaries = {
        "gsm8k": {"avg@k": 0.25, "pass@k": {"1": 0.25, "2": 0.4, "4": 0.5}, "maj@k": 0.3},
        "heldout": {"avg@k": 0.75, "pass@k": {"1": 0.75, "2": 0.8, "4": 1.0}, "maj@k": 0.7},
    }
    logs = heldout_metrics(summaries, 4)
    assert logs["eval/gsm8k/accuracy"] == 0.25 and logs["eval/heldout/pass@4"] == 1.0
    assert logs["eval/gsm8k/maj@4"] == 0.3 and logs[Metric.EVAL_ACCURACY] == 0.5
    greedy = heldout_metrics({"gsm8k": {**summaries["gsm8k"], "pass@k": {"1": 0.25}}}, 1)
    assert set(greedy) == {"eval/gsm8k/accuracy", Metric.EVAL_ACCURACY}
    assert parse_heldout_key("eval/math500/pass@8") == ("math500", "pass@8")
    assert parse_heldout_key("eval/hicra/accuracy") is None  # TRL's eval of hicra/accuracy
    assert parse_heldout_key("eval/rewards/accuracy/mean") is None
    assert not math.isnan(logs[Metric.EVAL_ACCURACY])


def test_a_bad_eval_benchmark_fails_before_the_model_loads(tiny_model_dir, tmp_path, capsys):
    train = write_jsonl(tmp_path / "train.jsonl", [{"question": "1+1?", "answer": "2"}] * 4)
    args = tiny_args(tiny_model_dir, train, tmp_path / "run", "--eval-benchmarks", "nosuch")
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "nosuch" in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()
    args = tiny_args(tiny_model_dir, train, tmp_path / "run", "--eval-samples", "0")
    assert main(args) == 2
    assert "--eval-samples must be a whole number >= 1" in capsys.readouterr().err


def test_version(capsys):
    assert main(["--version"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"hicra {__version__} (trl ") and "torch" in out


def test_train_help_puts_hicra_and_common_options_first(capsys):
    assert main(["train", "--help"]) == 0
    short = capsys.readouterr().out
    order = ["HICRA's options", "--credit {", "--alpha HICRA_ALPHA", "common options"]
    order += ["--model MODEL", "--dataset DATASET", "--output_dir OUTPUT_DIR"]
    order += ["--max_steps MAX_STEPS", "held-out evaluation", "--eval_benchmarks EVAL"]
    positions = [short.index(s) for s in order]
    assert positions == sorted(positions)
    assert "--help-all" in short and "--adam_beta1" not in short  # TRL's long tail is hidden
    assert main(["train", "--help-all"]) == 0
    full = capsys.readouterr().out
    assert "--adam_beta1" in full and len(full) > 3 * len(short)


def test_train_help_says_that_no_hierarchy_metrics_turns_them_off(capsys):
    """transformers gives `--no_X` the field's own help ('Log planning/execution entropies ...',
    default False): it read as the opposite of what the flag does."""
    assert main(["train", "--help"]) == 0
    short = capsys.readouterr().out
    start = short.index("--no-hierarchy-metrics")
    entry = " ".join(short[start : short.index("--gram_counting", start)].split())
    assert entry.startswith("--no-hierarchy-metrics Turn off (on by default): log planning")
    assert "(default: False)" not in entry
    assert main(["train", "--help-all"]) == 0
    full = capsys.readouterr().out  # TRL's True-default bools read the same way
    entry = full[full.index("--no_gradient_checkpointing") :][:300]
    assert "Turn off (on by default): enable gradient" in " ".join(entry.split())


def test_heldout_evaluation_with_two_processes(tiny_model_dir, tmp_path, heldout_file):
    """Two gloo processes split the 3 problems (2 + 1, padded to 2 each); rank 0 writes all 3."""
    import subprocess

    from tests.conftest import accelerate_launch

    train = write_jsonl(
        tmp_path / "train.jsonl",
        [{"question": f"What is {i} + 2?", "answer": str(i + 2)} for i in range(8)],
    )
    out = tmp_path / "run"
    args = tiny_args(tiny_model_dir, train, out, "--eval-benchmarks", str(heldout_file))
    args[args.index("--per-device-train-batch-size") + 1] = "4"
    args[args.index("--save-steps") + 1] = "2"
    launch = [*accelerate_launch(), "-m", "hicra.cli"]
    result = subprocess.run(
        [*launch, *args], capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert [r["step"] for r in heldout_rows(out)] == [2]  # at the end only (no --eval-steps)
    samples = (heldout_step_dir(out, 2) / "samples.jsonl").read_text().splitlines()
    assert len(samples) == 3 and len({json.loads(x)["id"] for x in samples}) == 3


def test_heldout_settings_as_yaml_keys(tmp_path, capsys):
    config = tmp_path / "run.yaml"
    config.write_text("eval_benchmarks: gsm8k,math500\neval_limit: 5\neval_steps: 10\n")
    assert main(["train", "--config", str(config), "--print-config"]) == 0
    out = capsys.readouterr().out
    assert "eval_benchmarks: gsm8k,math500" in out and "eval_limit: 5" in out
    assert "eval_steps: 10" in out and "eval_samples: 1" in out
    config.write_text("eval_benchmarks: gsm8k\neval_limit: 0\n")
    assert main(["train", "--config", str(config), "--print-config"]) == 2
    assert "eval_limit must be a whole number >= 1" in capsys.readouterr().err
