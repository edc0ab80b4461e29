"""examples/: two tasks beyond math (countdown, JSON output), each a reward file, data and a YAML.

Their verifiers are checked against hand-made completions; `hicra eval --checker` judges with the
same verifier; each example trains on the bundled SmolLM2 model (slow) as its YAML says, with the
run shortened to two tiny steps.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import yaml

from hicra.cli import main
from hicra.jsonl import read_jsonl

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = {
    "countdown": ("examples/countdown/countdown.yaml", "countdown_reward"),
    "json_output": ("examples/json_output/json_output.yaml", "json_reward"),
}


def load(name: str):
    path = ROOT / "examples" / name / "reward.py"
    spec = importlib.util.spec_from_file_location(f"example_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def chat(text: str) -> list[dict[str, str]]:
    return [{"role": "assistant", "content": text}]


def test_countdown_reward_by_hand():
    countdown = load("countdown")
    completions = [
        chat("Let me try. <answer>(7 * 4) * 3</answer>"),  # 84, each number once
        chat("<answer>7 * 4 * 3 + 0</answer>"),  # 84, but uses a 0 it was not given
        chat("<answer>7 * 4 + 3</answer>"),  # 31
        chat("7 * 4 * 3"),  # no <answer>
        chat("<answer>(8 / 4) * 3</answer>"),  # 6 exactly, through a division
        chat("<answer>__import__('os')</answer>"),  # not arithmetic
    ]
    numbers = [[7, 3, 4]] * 4 + [[3, 4, 8], [1]]
    target = [84, 84, 84, 84, 6, 1]
    scores = countdown.countdown_reward(None, completions, numbers=numbers, target=target)
    assert scores == [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    assert countdown.format_reward(None, completions) == [1.0, 1.0, 1.0, 0.0, 1.0, 1.0]
    row = {"numbers": [7, 3, 4], "target": 84}
    assert countdown.check("<answer>3 * (4 * 7)</answer>", row) is True
    assert countdown.check("<answer>3 * 4 * 8</answer>", row) is False


def test_json_reward_by_hand():
    task = load("json_output")
    expected = json.dumps({"name": "Ada", "age": 36})
    completions = [
        chat('{"name": "Ada", "age": 36}'),  # exact
        chat('Here: ```json\n{"age": 36, "name": "Ada"}\n```'),  # exact, fenced, keys reordered
        chat('{"name": "Ada", "age": 63}'),  # one of two keys right: 0.5 * 1/2
        chat('{"name": "Ada", "age": 36, "city": "Oslo"}'),  # an extra key: 0.5 * 2/2
        chat("name: Ada, age: 36"),  # not JSON
        chat("[1, 2]"),  # JSON, not an object
    ]
    scores = task.json_reward(None, completions, answer=[expected] * len(completions))
    assert scores == [1.0, 1.0, 0.25, 0.5, 0.0, 0.0]
    assert task.valid_json_reward(None, completions) == [1.0, 1.0, 1.0, 1.0, 0.0, 0.0]
    assert task.check('{"name": "Ada", "age": 36}', {"answer": expected}) is True
    assert task.check('{"name": "Ada"}', {"answer": expected}) is False


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_example_data_is_solved_by_its_own_gold(name):
    """Every row's `answer` passes the example's checker: the data and verifier agree."""
    module = load(name)
    for file in ("data.jsonl", "test.jsonl"):
        rows = [row for _, row in read_jsonl(ROOT / "examples" / name / file)]
        assert len(rows) >= 32
        if name == "countdown":
            assert all(module.check(f"<answer>{r['answer']}</answer>", r) for r in rows)
        else:
            assert all(module.check(r["answer"], r) for r in rows)


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_example_config_resolves(name, monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    config, success = EXAMPLES[name]
    assert main(["train", "--config", config, "--print-config"]) == 0
    resolved = yaml.safe_load(capsys.readouterr().out)
    assert resolved["success_reward"] == success and len(resolved["reward_funcs"]) == 2


def test_eval_with_the_examples_checker(tiny_model_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    out = tmp_path / "eval"
    args = ["eval", "--model", str(tiny_model_dir), "--benchmarks",
            "examples/countdown/test.jsonl", "--limit", "3", "--max-new-tokens", "8",
            "--backend", "hf", "--output-dir", str(out), "--no-progress"]  # fmt: skip
    assert main([*args, "--checker", "examples/countdown/reward.py:check"]) == 0
    samples = [row for _, row in read_jsonl(out / "samples.jsonl")]
    assert len(samples) == 3
    assert all(s["checker"] == "check (examples/countdown/reward.py:check)" for s in samples)
    assert all(s["correct"] is False for s in samples)  # a random model writes no <answer>
    results = json.loads((out / "results.json").read_text())
    assert results["checker"] == "examples/countdown/reward.py:check"


def test_eval_checker_errors_come_before_the_model(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    checker = tmp_path / "checks.py"
    checker.write_text(
        "def half(completion, row):\n    return 0.5\n\n"
        "def needs_key(completion, row):\n    return row['missing'] == 1\n"
    )
    args = ["eval", "--model", str(tmp_path / "no-model"), "--benchmarks",
            "examples/countdown/test.jsonl", "--output-dir", str(tmp_path / "e")]  # fmt: skip
    for spec, expected in (
        (f"{checker}:half", "returned 0.5 (float) on examples/countdown/test.jsonl, line 1"),
        (f"{checker}:needs_key", "raised KeyError: 'missing' on examples/countdown/test.jsonl"),
        (f"{checker}:nothing", "has no function 'nothing' (its functions: half, needs_key)"),
        ("no_such_module.check", "no module 'no_such_module'"),
        ("nonsense", "unknown checker 'nonsense'; choose from math-verify, strict-boxed, or"),
    ):
        assert main([*args, "--checker", spec]) == 2
        err = capsys.readouterr().err
        assert expected in err and "Traceback" not in err, err
        assert "no-model" not in err  # the model was never looked at
    assert not (tmp_path / "e").exists()


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_example_trains_on_the_bundled_model(name, tmp_path, monkeypatch):
    """The example's YAML as it is, on SmolLM2-135M, cut to 2 steps of 2 completions of 16
    tokens (the only real-model run of these tasks; 44 s for countdown on the 2-core machine)."""
    monkeypatch.chdir(ROOT)
    config, success = EXAMPLES[name]
    out = tmp_path / "run"
    args = ["train", "--config", config, "--output-dir", str(out), "--max-steps", "2",
            "--num-generations", "2", "--per-device-train-batch-size", "2",
            "--max-completion-length", "16", "--save-steps", "2", "--use-cpu"]  # fmt: skip
    assert main(args) == 0
    rows = [row for _, row in read_jsonl(out / "metrics.jsonl")]
    assert [r["step"] for r in rows] == [1, 2]
    assert all(f"rewards/{success}/mean" in r and "hicra/accuracy" in r for r in rows)
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert saved["success_signal"] == f"{success} >= 1 (success_reward)"
    assert (out / "final_model" / "config.json").is_file()
