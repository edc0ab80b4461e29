"""`hicra train --reward-funcs SPEC`: the user's rewards in TRL's forms, the dataset's columns as
keyword arguments, the success signal, a reward model, and bad rewards caught in one line."""

from __future__ import annotations

import json
import textwrap

import pytest
import yaml

from hicra.cli import main
from hicra.jsonl import read_jsonl
from tests.test_train_cli import tiny_args, write_jsonl

REWARDS = '''
import math


def weight_reward(prompts, completions, weight, **kwargs):
    """The row's own `weight` column: a column reaches the reward as a keyword argument."""
    return [float(w) for w in weight]


def length_reward(prompts, completions, **kwargs):
    return [float(len(c[-1]["content"])) for c in completions]


def no_kwargs(prompts, completions):
    return [0.0 for _ in completions]


def nan_later(prompts, completions, **kwargs):  # an empty completion passes the dry call
    return [math.nan if c[-1]["content"] else 0.0 for c in completions]


def short_later(prompts, completions, **kwargs):
    return [0.0] * (len(completions) - 1 if completions[0][-1]["content"] else len(completions))


def text_later(prompts, completions, **kwargs):
    return ["1.0" if c[-1]["content"] else 0.0 for c in completions]


def raises_on_row_7(prompts, completions, id, **kwargs):  # the dry call's first row is id 0
    if "7" in id:
        raise KeyError("no such key")
    return [0.0 for _ in completions]


def raises_at_once(prompts, completions, **kwargs):
    return [1 / 0 for _ in completions]


def returns_string(prompts, completions, **kwargs):
    return "1.0"


def needs_solution(prompts, completions, solution, **kwargs):
    return [0.0 for _ in completions]


not_a_function = 3
'''


@pytest.fixture
def task(tmp_path):
    """A non-math task: no answer column; `weight` and `tag` columns for the rewards."""
    rows = [{"question": f"Say hi {i}", "weight": 1.0, "tag": f"t{i}"} for i in range(1, 41)]
    data = write_jsonl(tmp_path / "task.jsonl", rows)
    rewards = tmp_path / "my_rewards.py"
    rewards.write_text(REWARDS)
    return data, rewards


def run(model, data, out, *extra):
    args = tiny_args(model, data, out, *extra)
    return main(args)


def metrics(folder):
    return [row for _, row in read_jsonl(folder / "metrics.jsonl")]


def test_a_file_reward_gets_the_columns_and_is_the_success_signal(
    tiny_model_dir, task, tmp_path, capsys
):
    data, rewards = task
    out = tmp_path / "run"
    spec = f"{rewards}:weight_reward"
    assert run(tiny_model_dir, data, out, "--reward-funcs", spec, f"{rewards}:length_reward",
               "--reward-weights", "1", "0") == 0  # fmt: skip
    rows = metrics(out)
    assert [r["step"] for r in rows] == [1, 2]
    # every row's weight is 1.0: the reward is 1.0 everywhere, so every completion is "correct"
    assert all(r["rewards/weight_reward/mean"] == 1.0 for r in rows)
    assert all(r["hicra/accuracy"] == 1.0 and r["hicra/pass@1"] == 1.0 for r in rows)
    assert "rewards/length_reward/mean" in rows[0]
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert config["success_signal"].startswith("weight_reward >= 1 (the first reward function")
    assert config["reward_weights"] == [1.0, 0.0]
    assert "success signal (hicra/accuracy): weight_reward >= 1" in capsys.readouterr().err
    rollouts = [json.loads(x) for x in (out / "rollouts.jsonl").read_text().splitlines()]
    assert rollouts and all(r["correct"] is True for r in rollouts)
    assert main(["report", str(out)]) == 0  # the report says which reward meant "correct"
    report = json.loads((out / "report" / "report.json").read_text())
    signal = report["runs"][0]["success_signal"]
    assert signal.startswith("weight_reward >= 1")
    assert (
        "correct (accuracy): weight_reward &gt;= 1" in (out / "report" / "report.html").read_text()
    )


def test_success_reward_and_threshold_name_the_signal(tiny_model_dir, task, tmp_path):
    data, rewards = task
    out = tmp_path / "run"
    funcs = [f"{rewards}:length_reward", f"{rewards}:weight_reward"]
    extra = ["--reward-funcs", *funcs, "--success-reward", "weight_reward"]
    assert run(tiny_model_dir, data, out, *extra, "--success-threshold", "1.5") == 0
    rows = metrics(out)
    assert all(r["hicra/accuracy"] == 0.0 for r in rows)  # 1.0 < 1.5: never correct
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert config["success_signal"] == "weight_reward >= 1.5 (success_reward)"
    rollouts = [json.loads(x) for x in (out / "rollouts.jsonl").read_text().splitlines()]
    assert all(r["correct"] is False for r in rollouts)


def test_a_dotted_path_from_the_working_folder_and_a_trl_builtin(
    tiny_model_dir, task, tmp_path, monkeypatch
):
    data, rewards = task
    work = tmp_path / "work"
    (work / "mypkg").mkdir(parents=True)
    (work / "mypkg" / "__init__.py").write_text("")
    (work / "mypkg" / "scoring.py").write_text(rewards.read_text())
    monkeypatch.chdir(work)
    out = tmp_path / "run"
    spec = ["mypkg.scoring.weight_reward", "think_format_reward"]
    assert run(tiny_model_dir, data, out, "--reward-funcs", *spec) == 0
    row = metrics(out)[0]
    assert row["rewards/weight_reward/mean"] == 1.0
    assert row["rewards/think_format_reward/mean"] == 0.0  # no <think> from a random model


def test_reward_funcs_from_yaml(tiny_model_dir, task, tmp_path):
    data, rewards = task
    config = tmp_path / "run.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "model": str(tiny_model_dir),
                "dataset": str(data),
                "reward_funcs": [f"{rewards}:weight_reward"],
                "reward_weights": [2.0],
                "success_reward": "weight_reward",
            }
        )
    )
    out = tmp_path / "run"
    args = tiny_args(tiny_model_dir, data, out)[1:]
    assert main(["train", "--config", str(config), *args]) == 0
    row = metrics(out)[0]
    assert row["reward"] == 2.0 and row["hicra/accuracy"] == 1.0


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("missing.py:f", "file not found"),
        ("{rewards}:nope", "has no function 'nope' (its functions: length_reward"),
        ("{rewards}:not_a_function", "is a int, not a function"),
        ("{broken}:f", "SyntaxError"),
        ("no_such_module.f", "no module 'no_such_module'"),
        ("nonsense", "not a built-in name (accuracy, format, accuracy_reward"),
        ("{rewards}:no_kwargs", "cannot take 'completion_ids'"),
        ("{rewards}:needs_solution", "needs 'solution'"),
        ("accuracy_reward", "needs 'solution'"),  # TRL's: its gold column is `solution`
        ("{rewards}:raises_at_once", "raised ZeroDivisionError: division by zero on a dry call"),
        ("{rewards}:returns_string", "returned a str, not a list of 1 numbers"),
    ],
)
def test_a_bad_reward_is_one_line_before_the_model_loads(
    tiny_model_dir, task, tmp_path, capsys, spec, expected
):
    data, rewards = task
    broken = tmp_path / "broken.py"
    broken.write_text("def f(prompts, completions, **kw):\n    return [\n")
    out = tmp_path / "run"
    spec = spec.format(rewards=rewards, broken=broken)
    assert run(tiny_model_dir, data, out, "--reward-funcs", spec) == 2
    err = capsys.readouterr().err
    assert expected in err and "Traceback" not in err, err
    assert len(err.strip().splitlines()) == 1
    assert not out.exists()  # nothing written


def test_syntax_error_names_the_file_and_line(tiny_model_dir, task, tmp_path, capsys):
    data, _ = task
    broken = tmp_path / "broken.py"
    broken.write_text("x = 1\ndef f(prompts, completions, **kw):\n    return [\n")
    assert run(tiny_model_dir, data, tmp_path / "run", "--reward-funcs", f"{broken}:f") == 2
    assert f"at {broken}, line 3" in capsys.readouterr().err


def test_weights_names_and_default_weights_are_checked(tiny_model_dir, task, tmp_path, capsys):
    data, rewards = task
    spec = f"{rewards}:weight_reward"
    assert run(tiny_model_dir, data, tmp_path / "a", "--reward-funcs", spec,
               "--reward-weights", "1", "2") == 2  # fmt: skip
    assert "reward_weights has 2 values for 1 rewards (weight_reward" in capsys.readouterr().err
    assert run(tiny_model_dir, data, tmp_path / "b", "--reward-funcs", spec, spec) == 2
    assert "two rewards are named 'weight_reward'" in capsys.readouterr().err
    assert run(tiny_model_dir, data, tmp_path / "c", "--reward-funcs", spec,
               "--format-weight", "0.5") == 2  # fmt: skip
    assert "format_weight (from command-line flags) weighs hicra's default rewards" in (
        capsys.readouterr().err
    )
    assert run(tiny_model_dir, data, tmp_path / "d", "--reward-funcs", spec,
               "--success-reward", "nothing") == 2  # fmt: skip
    assert "success_reward 'nothing' is not one of the run's reward functions (weight_reward)" in (
        capsys.readouterr().err
    )


@pytest.mark.parametrize(
    ("func", "expected"),
    [
        ("nan_later", "returned nan for row id '"),
        ("short_later", "returned 7 values for 8 completions"),
        ("text_later", "returned '1.0' (str) for row id '"),
        ("raises_on_row_7", "raised KeyError: 'no such key' on row id '7'"),
    ],
)
def test_a_reward_that_misbehaves_in_training_stops_at_the_first_step(
    tiny_model_dir, task, tmp_path, capsys, func, expected
):
    data, rewards = task
    rows = [{"question": "Say hi", "weight": 1.0, "id": "7" if i else "0"} for i in range(40)]
    write_jsonl(data, rows)  # the dry call's first row is id 0; every batch holds an id 7
    out = tmp_path / "run"
    assert run(tiny_model_dir, data, out, "--reward-funcs", f"{rewards}:{func}") == 2
    err = capsys.readouterr().err
    line = next(x for x in err.splitlines() if "hicra train: error" in x)
    assert f"reward function {func!r}" in line and expected in line, line
    assert "Traceback" not in err
    assert not out.exists()  # the failed start left nothing a --resume would trust


def test_a_column_named_like_trls_arguments_is_refused(tiny_model_dir, tmp_path, capsys):
    data = write_jsonl(tmp_path / "d.jsonl", [{"question": "q", "completions": 1}] * 8)
    assert run(tiny_model_dir, data, tmp_path / "run", "--reward-funcs", "think_format_reward") == 2
    assert "column 'completions' has the name of an argument TRL gives" in capsys.readouterr().err


def test_a_column_of_mixed_kinds_is_named(tiny_model_dir, tmp_path, capsys):
    rows = [{"question": "q", "size": 3}] * 4 + [{"question": "q", "size": "big"}] * 4
    data = write_jsonl(tmp_path / "d.jsonl", rows)
    assert run(tiny_model_dir, data, tmp_path / "run", "--reward-funcs", "think_format_reward") == 2
    err = capsys.readouterr().err
    assert "column 'size' holds values of different kinds: number (first in row 1), str" in err


def build_reward_model(folder, tiny_model_dir):
    """A tiny sequence-classification model with one label and the tiny tokenizer."""
    import torch
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    config = AutoConfig.from_pretrained(tiny_model_dir, num_labels=1)
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_config(config)
    model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(tiny_model_dir).save_pretrained(folder)
    return folder


def test_a_reward_model_scores_and_is_never_the_success_signal(
    tiny_model_dir, task, tmp_path, capsys
):
    data, rewards = task
    scorer = build_reward_model(tmp_path / "rm", tiny_model_dir)
    out = tmp_path / "run"
    assert run(tiny_model_dir, data, out, "--reward-model", str(scorer)) == 0
    row = metrics(out)[0]
    assert "rewards/rm/mean" in row and row["rewards/rm/std"] > 0  # a random head's spread
    assert "hicra/accuracy" not in row
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert config["success_signal"].startswith("none (only a reward model")
    # beside a function, the model comes first (as in TRL) and the function is the signal
    out = tmp_path / "run2"
    assert run(tiny_model_dir, data, out, "--reward-model", str(scorer), "--reward-funcs",
               f"{rewards}:weight_reward", "--reward-weights", "0.5", "1") == 0  # fmt: skip
    assert metrics(out)[0]["hicra/accuracy"] == 1.0
    capsys.readouterr()
    assert run(tiny_model_dir, data, tmp_path / "run3", "--reward-model", str(tiny_model_dir)) == 2
    assert "is a Qwen2ForCausalLM, not a sequence-classification model" in capsys.readouterr().err


def test_without_config_your_model_or_data_start_from_the_defaults(capsys, tmp_path):
    assert main(["train", "--print-config"]) == 0
    toy = yaml.safe_load(capsys.readouterr().out)
    assert toy["max_completion_length"] == 40 and toy["learning_rate"] == 2e-5
    assert main(["train", "--dataset", "data.jsonl", "--print-config"]) == 0
    out = capsys.readouterr().out
    own = yaml.safe_load(out)
    assert own["max_completion_length"] == 512 and own["learning_rate"] == 1e-6  # TRL's
    assert own["few_shot"] is None and own["format_weight"] == 0.0
    assert own["instruction"].startswith("Please reason step by step")
    assert out.startswith("# YAML layer: defaults (--model or --dataset given without --config")
    # which layer set each value
    config = tmp_path / "c.yaml"
    config.write_text("learning_rate: 0.5\n")
    assert main(["train", "--config", str(config), "--max-steps", "9", "--print-config"]) == 0
    out = capsys.readouterr().out
    flags, rest = out.split("# set by command-line flags\n")[1].split(f"# set by {config}\n")
    assert "max_steps: 9" in flags and "learning_rate" not in flags
    from_file, defaults = rest.split("# set by defaults")
    assert "learning_rate: 0.5" in from_file and "seed: 42" in defaults


def test_success_threshold_must_be_finite(capsys):
    assert main(["train", "--success-threshold", "nan", "--print-config"]) == 2
    assert "success_threshold must be a finite number, not nan" in capsys.readouterr().err


def test_help_names_the_reward_options():
    from hicra.train.config import make_parser
    from hicra.train.help import help_text

    text = help_text(make_parser())
    for flag in ("--reward-funcs", "--reward-weights", "--reward-model", "--success-reward"):
        assert flag in text
    assert "path/to/file.py:function" in text.replace("\n", " ").replace("  ", " ")


def test_dry_call_gives_trls_arguments(tmp_path):
    """The dry call passes what TRL passes: the columns, completion_ids, trainer_state..."""
    from hicra.train.reward_funcs import build_reward_set

    seen = {}
    module = tmp_path / "spy.py"
    module.write_text(
        textwrap.dedent(
            """
            SEEN = {}
            def spy(prompts, completions, completion_ids, trainer_state, log_extra, log_metric,
                    weight, **kwargs):
                SEEN.update(kwargs, weight=weight, completions=completions, step=trainer_state.global_step)
                return [None]
            """
        )
    )
    row = {"prompt": [{"role": "user", "content": "q"}], "weight": 2.0, "id": "1"}
    rewards = build_reward_set([f"{module}:spy"], None, None, {}, 16, row)
    import sys

    seen = next(m for n, m in sys.modules.items() if n.startswith("hicra_user_spy")).SEEN
    assert seen["weight"] == [2.0] and seen["id"] == ["1"] and seen["step"] == 0
    assert seen["completions"] == [[{"role": "assistant", "content": ""}]]
    assert rewards.names == ["spy"] and rewards.weights == [1.0]


def test_reward_keys_in_experiment_base_and_arms(tmp_path):
    from hicra.experiment.spec import ExperimentError, load_spec

    spec = {
        "base": {
            "dataset": "examples/countdown/data.jsonl",
            "reward_funcs": ["examples/countdown/reward.py:countdown_reward"],
            "success_reward": "countdown_reward",
        },
        "arms": {
            "grpo": {"credit": "grpo"},
            "hicra": {"credit": "hicra"},
            "hicra-format": {
                "reward_funcs": [
                    "examples/countdown/reward.py:countdown_reward",
                    "examples/countdown/reward.py:format_reward",
                ],
                "reward_weights": [1.0, 0.2],
            },
        },
        "seeds": [1],
    }
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(spec))
    loaded = load_spec(path, str(tmp_path / "out"))
    config = loaded.run_config(tmp_path / "out", "hicra-format", 1)
    assert config["reward_weights"] == [1.0, 0.2] and config["success_reward"] == "countdown_reward"
    spec["arms"]["grpo"] = {"credit": "grpo", "reward_func": ["x.py:f"]}
    path.write_text(yaml.safe_dump(spec))
    with pytest.raises(ExperimentError, match=r"arm 'grpo'.*did you mean reward_funcs"):
        load_spec(path, str(tmp_path / "out"))


def test_trl_builtins_by_name():
    """TRL's four script names load; the overlong punishment uses the run's length, TRL's ratio
    (a soft zone of the last fifth): 95 tokens of at most 100 lie 15 into the 20-token zone."""
    from hicra.train.reward_funcs import build_reward_set

    row = {"prompt": [{"role": "user", "content": "q"}], "solution": "5", "id": "1"}
    names = ["get_soft_overlong_punishment", "reasoning_accuracy_reward", "accuracy_reward",
             "think_format_reward"]  # fmt: skip
    rewards = build_reward_set(names, None, [1, 1, 1, 0.5], {}, 100, row)
    assert rewards.names[0] == "soft_overlong_punishment_reward"
    assert rewards.weights == [1.0, 1.0, 1.0, 0.5]
    punish = rewards.funcs[0]
    completion = [[{"role": "assistant", "content": "x"}]]
    for length, expected in ((80, 0.0), (95, -0.75), (100, -1.0)):
        got = punish(prompts=["q"], completions=completion, completion_ids=[[1] * length], id=["1"])
        assert got == [pytest.approx(expected)]
