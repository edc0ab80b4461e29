"""`hicra train` end to end on a tiny local model: runs, resume after a kill, and bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from hicra.cli import main
from hicra.jsonl import read_jsonl
from tests.conftest import accelerate_launch


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture
def math_file(tmp_path):
    rows = [{"question": f"What is {i} + {i + 1}?", "answer": str(2 * i + 1)} for i in range(40)]
    return write_jsonl(tmp_path / "train.jsonl", rows)


def tiny_args(model_dir, dataset, out, *extra):
    return [
        "train",
        "--model",
        str(model_dir),
        "--dataset",
        str(dataset),
        "--output-dir",
        str(out),
        "--max-steps",
        "2",
        "--num-generations",
        "4",
        "--per-device-train-batch-size",
        "8",
        "--max-completion-length",
        "8",
        "--save-steps",
        "1",
        "--use-cpu",
        "--seed",
        "3",
        "--verify-workers",
        "1",
        *extra,
    ]


def metric_steps(folder):
    path = folder / "metrics.jsonl"  # may be read while a run appends to it
    return [row["step"] for _, row in read_jsonl(path, allow_truncated_last_line=True)]


def test_train_writes_a_run_folder(tiny_model_dir, math_file, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(tiny_args(tiny_model_dir, math_file, out, "--credit", "grpo")) == 0
    assert metric_steps(out) == [1, 2]
    assert (out / "final_model" / "config.json").exists()
    assert (out / "checkpoint-2").is_dir()
    config = (out / "config.yaml").read_text()
    assert "credit: grpo" in config and str(math_file) in config
    rows = [json.loads(x) for x in (out / "rollouts.jsonl").read_text().splitlines()]
    assert rows and all(r["answer"] is not None and r["correct"] in (True, False) for r in rows)
    # a second run into the same folder must not mix its logs into the first one
    assert main(tiny_args(tiny_model_dir, math_file, out)) == 2
    assert "already holds a run" in capsys.readouterr().err


def test_resume_after_kill_has_no_duplicate_or_missing_lines(tiny_model_dir, math_file, tmp_path):
    out = tmp_path / "run"
    args = tiny_args(tiny_model_dir, math_file, out)
    args[args.index("--max-steps") + 1] = "200"
    args[args.index("--save-steps") + 1] = "3"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "hicra.cli", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 240
    # kill it after checkpoint-6, once a step past the checkpoint is logged (so there is log to cut)
    while not (
        (out / "checkpoint-6").exists()
        and (out / "metrics.jsonl").exists()
        and max(metric_steps(out), default=0) >= 7
    ):
        assert proc.poll() is None, "training ended before it could be killed"
        assert time.monotonic() < deadline, "no checkpoint-6 in time"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = max(metric_steps(out))
    total = killed_at + 3
    longer = args[:]
    longer[longer.index("--max-steps") + 1] = str(total)
    assert main([*longer, "--resume"]) == 0
    assert metric_steps(out) == list(range(1, total + 1))
    rollout_steps = [
        json.loads(x)["step"] for x in (out / "rollouts.jsonl").read_text().splitlines()
    ]
    assert sorted(set(rollout_steps)) == list(range(1, total + 1))
    assert all(rollout_steps.count(s) == rollout_steps.count(1) for s in range(1, total + 1))


def test_resume_skips_a_checkpoint_killed_while_saving(tiny_model_dir, math_file, tmp_path):
    out = tmp_path / "run"
    args = tiny_args(tiny_model_dir, math_file, out, "--save-total-limit", "2")
    assert main(args) == 0  # checkpoint-1 and checkpoint-2
    (out / "checkpoint-2" / "trainer_state.json").unlink()  # as if killed mid-save
    (out / "checkpoint-2" / "model.safetensors").write_bytes(b"partial")
    longer = args[:]
    longer[longer.index("--max-steps") + 1] = "3"
    assert main([*longer, "--resume"]) == 0
    assert metric_steps(out) == [1, 2, 3]
    assert (out / "checkpoint-2" / "trainer_state.json").exists()  # saved again, whole


def test_resume_without_checkpoint_is_clear(tiny_model_dir, math_file, tmp_path, capsys):
    assert main([*tiny_args(tiny_model_dir, math_file, tmp_path / "none"), "--resume"]) == 2
    assert "is not a hicra run folder" in capsys.readouterr().err
    run = tmp_path / "run"
    args = tiny_args(tiny_model_dir, math_file, run, "--save-strategy", "no")
    args[args.index("--max-steps") + 1] = "1"
    assert main(args) == 0
    (run / "final_model" / "config.json").unlink()  # a run without checkpoint that did not finish
    assert main([*args, "--resume"]) == 2
    assert "--resume: no checkpoint in" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("missing_file", "dataset file not found"),
        ("empty_file", "has no usable rows"),
        ("bad_row", "line 2: field 'answer' is missing"),
        ("bad_json", "line 2: invalid JSON"),
        ("unknown_model", "does not exist"),
        ("hub_model", "cannot load model 'nobody/no-such-model'"),
        ("bad_yaml", "line 2, column 1: invalid YAML"),
        ("unknown_key", "unknown config key 'learning_rat'; did you mean learning_rate"),
        ("unknown_flag", "unknown option '--learning-rat'"),
        ("bad_credit", "credit"),
        ("bad_alpha", "--hicra-alpha must be a number in [0, 1)"),
        ("unknown_rg", "unknown reasoning-gym task 'chain_summ'"),
    ],
)
def test_bad_input_gives_clear_errors(setup, message, tiny_model_dir, math_file, tmp_path, capsys):
    data, extra, model = math_file, [], tiny_model_dir
    if setup == "missing_file":
        data = tmp_path / "missing.jsonl"
    elif setup == "empty_file":
        data = write_jsonl(tmp_path / "empty.jsonl", [])
    elif setup == "bad_row":
        data = write_jsonl(
            tmp_path / "rows.jsonl", [{"question": "a", "answer": "1"}, {"question": "b"}]
        )
    elif setup == "bad_json":
        data = tmp_path / "broken.jsonl"
        data.write_text('{"question": "a", "answer": "1"}\n{"question": \n')
    elif setup == "unknown_model":
        model = tmp_path / "no-model"
    elif setup == "hub_model":
        model = "nobody/no-such-model"
    elif setup in ("bad_yaml", "unknown_key"):
        config = tmp_path / "config.yaml"
        config.write_text("max_steps: 2\n[oops" if setup == "bad_yaml" else "learning_rat: 0.1\n")
        extra = ["--config", str(config)]
    elif setup == "unknown_flag":
        extra = ["--learning-rat", "0.1"]
    elif setup == "bad_credit":
        extra = ["--credit", "magic"]
    elif setup == "bad_alpha":
        extra = ["--alpha", "1.5"]
    elif setup == "unknown_rg":
        data = "rg:chain_summ"
    status = main(tiny_args(model, data, tmp_path / "run", *extra))
    err = capsys.readouterr().err
    assert status == 2, err
    assert message in err
    assert "Traceback" not in err
    assert not (tmp_path / "run" / "metrics.jsonl").exists()


def test_skip_bad_rows_counts_them(tiny_model_dir, tmp_path, capsys):
    rows = [{"problem": f"Q{i}", "solution": f"so \\boxed{{{i}}}"} for i in range(12)]
    rows[3] = {"problem": "no answer here"}
    data = write_jsonl(tmp_path / "math.jsonl", rows)
    args = tiny_args(tiny_model_dir, data, tmp_path / "run", "--skip-bad-rows")
    args[args.index("--max-steps") + 1] = "1"
    assert main(args) == 0
    assert "skipped 1 bad rows" in capsys.readouterr().err


def test_print_config_layers_yaml_and_flags(tmp_path, capsys):
    config = tmp_path / "c.yaml"
    config.write_text("learning_rate: 0.5\nmax_steps: 7\nhicra_alpha: 0.3\n")
    assert main(["train", "--config", str(config), "--max-steps", "9", "--print-config"]) == 0
    out = capsys.readouterr().out
    assert "learning_rate: 0.5" in out and "max_steps: 9" in out and "hicra_alpha: 0.3" in out
    assert main(["train", "--print-config"]) == 0  # the built-in default
    out = capsys.readouterr().out
    assert "model: smollm2-135m" in out and "dataset: rg:chain_sum" in out


def test_trl_config_errors_are_one_clear_line(capsys):
    assert main(["train", "--num-generations", "3", "--print-config"]) == 2
    err = capsys.readouterr().err
    assert "must be divisible by num_generations (3)" in err and "Traceback" not in err


def test_several_processes_need_an_explicit_output_dir(monkeypatch, capsys):
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert main(["train", "--print-config"]) == 2
    assert "give the run folder: --output-dir" in capsys.readouterr().err


def test_the_cli_under_accelerate_with_two_processes(tiny_model_dir, math_file, tmp_path):
    """`accelerate launch --multi_gpu -m hicra.cli train` on a CPU machine: two gloo processes."""
    out = tmp_path / "run"
    launch = [*accelerate_launch(), "-m", "hicra.cli"]
    args = tiny_args(tiny_model_dir, math_file, out)
    args[args.index("--per-device-train-batch-size") + 1] = "4"
    result = subprocess.run(
        [*launch, *args], capture_output=True, text=True, timeout=240, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert metric_steps(out) == [1, 2]
    # both processes saved into the same checkpoint folder
    assert {p.name for p in (out / "checkpoint-2").glob("rng_state_*.pth")} == {
        "rng_state_0.pth",
        "rng_state_1.pth",
    }


def test_train_help_lists_every_field(capsys):
    assert main(["train", "--help"]) == 0
    out = capsys.readouterr().out
    for flag in (
        "--hicra_alpha",
        "--alpha",
        "--credit",
        "--learning_rate",
        "--dataset",
        "--resume",
    ):
        assert flag in out
