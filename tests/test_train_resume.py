"""`hicra train --resume` (issue 29): every setting is compared with the run's config.yaml, the
held-out curve keeps one problem set, in-training evaluation has `hicra eval`'s checks, and only
the newest complete checkpoint is kept by default."""

from __future__ import annotations

import json

import pytest
import yaml

from hicra.cli import main
from hicra.eval.registry import file_benchmark, load_benchmark, problems_hash
from tests.test_train_cli import metric_steps, tiny_args, write_jsonl


@pytest.fixture
def math_file(tmp_path):
    rows = [{"question": f"What is {i} + {i + 1}?", "answer": str(2 * i + 1)} for i in range(40)]
    return write_jsonl(tmp_path / "train.jsonl", rows)


@pytest.fixture
def heldout_file(tmp_path):
    rows = [
        {"question": "What is 2 + 2?", "answer": "4"},
        {"question": "What is 3 + 3?", "answer": "6"},
    ]
    return write_jsonl(tmp_path / "heldout.jsonl", rows)


def longer(args, steps):
    out = list(args)
    out[out.index("--max-steps") + 1] = str(steps)
    return [*out, "--resume"]


def test_a_resume_that_changes_a_setting_is_refused_naming_the_key(
    tiny_model_dir, math_file, tmp_path, capsys
):
    """Before: --learning-rate 5e-3 on resume was written to config.yaml while every resumed step
    trained at the checkpoint's rate. Now it is refused, and so is any setting the checkpoint
    restores (seed, batch shape, credit, model...); how long to train and how often to log may
    change, and config.yaml says what ran."""
    out = tmp_path / "run"
    args = tiny_args(tiny_model_dir, math_file, out)
    assert main(args) == 0
    capsys.readouterr()
    saved = (out / "config.yaml").read_text()
    for flags, keys in (
        (["--learning-rate", "5e-3"], "learning_rate differs"),
        (
            ["--seed", "4", "--per-device-train-batch-size", "4"],
            "per_device_train_batch_size, seed differ",
        ),
        (["--credit", "grpo"], "credit differs"),
        (["--max-completion-length", "9"], "max_completion_length differs"),
        (["--dataset-limit", "20"], "dataset_limit differs"),
    ):
        assert main([*longer(args, 3), *flags]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1, err
        assert f"--resume: {keys} from {out / 'config.yaml'}" in err
        assert (out / "config.yaml").read_text() == saved  # nothing touched
        assert metric_steps(out) == [1, 2]
    # a --config file on resume is compared too: its settings replace the run's, silently before
    other = tmp_path / "other.yaml"
    other.write_text(yaml.safe_dump({"credit": "grpo"}))
    assert main([*longer(args, 3), "--config", str(other)]) == 2
    assert "credit" in capsys.readouterr().err
    assert main([*longer(args, 3), "--logging-steps", "2", "--verify-workers", "2"]) == 0
    assert metric_steps(out) == [1, 2, 3]
    config = yaml.safe_load((out / "config.yaml").read_text())
    first_rate = yaml.safe_load(saved)["learning_rate"]
    assert config["max_steps"] == 3 and config["learning_rate"] == first_rate != 5e-3
    assert config["logging_steps"] == 2 and config["verify_workers"] == 2
    # only the newest complete checkpoint is kept by default (TRL kept all)
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-3"]
    assert (out / "final_model" / "config.json").is_file()


def test_a_resume_with_an_edited_grams_file_is_refused(tiny_model_dir, math_file, tmp_path, capsys):
    """Before: config.yaml recorded the grams file's path (and name and count), so a file edited
    between the run and its resume tagged other tokens under the same record. Now its content hash
    is recorded and compared."""
    grams = tmp_path / "grams.txt"
    grams.write_text("wait\nlet me\n")
    out = tmp_path / "run"
    args = [*tiny_args(tiny_model_dir, math_file, out), "--strategic-grams", str(grams)]
    assert main(args) == 0
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert len(saved["strategic_grams_hash"]) == 16
    capsys.readouterr()
    grams.write_text("wait\nso\n")  # the same name and count, other grams
    assert main(longer(args, 3)) == 2
    err = capsys.readouterr().err
    assert f"--resume: strategic_grams_hash differs from {out / 'config.yaml'}" in err
    assert metric_steps(out) == [1, 2]
    grams.write_text("wait\nlet me\n")  # restored: the resume goes on
    assert main(longer(args, 3)) == 0
    assert metric_steps(out) == [1, 2, 3]


def test_the_held_out_curve_keeps_one_problem_set(
    tiny_model_dir, math_file, heldout_file, tmp_path, capsys
):
    """Before: after an edit of the held-out file, or another --eval-benchmarks, one eval/accuracy
    curve switched problem sets at the resume, and its results carried no content hash."""
    out = tmp_path / "run"
    args = tiny_args(
        tiny_model_dir, math_file, out, "--eval-benchmarks", str(heldout_file),
        "--eval-max-new-tokens", "4", "--eval-steps", "1",
    )  # fmt: skip
    assert main(args) == 0
    capsys.readouterr()
    expected = problems_hash(load_benchmark(file_benchmark(heldout_file)))
    results = json.loads((out / "heldout" / "step-2" / "results.json").read_text())
    assert results["benchmarks"]["heldout"]["content_hash"] == expected  # as hicra eval's
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert config["heldout_content_hash"] == {"heldout": expected}
    original = heldout_file.read_text()
    heldout_file.write_text(original.replace('"6"', '"7"'))
    assert main(longer(args, 3)) == 2
    err = capsys.readouterr().err
    assert "the held-out problems changed since the run" in err and f"heldout {expected} ->" in err
    other = write_jsonl(tmp_path / "other.jsonl", [{"question": "1 + 1?", "answer": "2"}])
    flags = longer(args, 3)
    flags[flags.index("--eval-benchmarks") + 1] = str(other)
    assert main(flags) == 2
    assert "--resume: eval_benchmarks differs" in capsys.readouterr().err
    assert main([*longer(args, 3), "--eval-limit", "1"]) == 2  # a smaller set is another set
    assert "--resume: eval_limit differs" in capsys.readouterr().err
    heldout_file.write_text(original)
    assert main(longer(args, 3)) == 0
    assert metric_steps(out) == [1, 1, 2, 2, 3, 3]  # each step's training line and eval line


def test_held_out_evaluation_gets_hicra_evals_checks(
    tiny_model_dir, math_file, heldout_file, tmp_path, capsys
):
    """Before: a held-out question too long for the model, or --eval-max-new-tokens past its
    context, trained and logged a score; '' turned evaluation off while ' , ' was refused; held-out
    settings without --eval-benchmarks were ignored. Each is refused before a model loads."""
    long = write_jsonl(
        tmp_path / "long.jsonl",
        [{"question": "What is 1 + 1?", "answer": "2"}, {"question": "x " * 2000, "answer": "1"}],
    )
    cases = (
        (["--eval-benchmarks", str(long)], f"the prompt of {long}, line 2, is"),
        (["--eval-benchmarks", str(heldout_file), "--eval-max-new-tokens", "1024"],
         "--eval-max-new-tokens 1,024 leaves no room for a prompt in the model's context of 1,024"),
        (["--eval-benchmarks", ""], "--eval-benchmarks is empty"),
        (["--eval-benchmarks", " , "], "no benchmark given"),
        (["--eval-steps", "5"], "--eval-steps 5 without --eval-benchmarks"),
        (["--eval-limit", "3", "--eval-samples", "4"],
         "--eval-limit 3, --eval-samples 4 without --eval-benchmarks"),
    )  # fmt: skip
    for flags, message in cases:
        out = tmp_path / "run"
        capsys.readouterr()
        assert main(tiny_args(tiny_model_dir, math_file, out, *flags)) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err, (flags, err)
        assert not out.exists()  # refused before a run folder was made


def test_train_help_says_what_eval_steps_does(capsys):
    """Before: TRL's text ("Defaults to logging_steps"), which is not what hicra does."""
    assert main(["train", "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "--eval-steps" in out and "Held-out evaluation (--eval-benchmarks): every N steps" in out
    assert "Defaults to logging_steps" not in out
    assert "hicra's default 1, what --resume needs" in out  # --save-total-limit
