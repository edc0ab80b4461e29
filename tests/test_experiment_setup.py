"""What an experiment sets up before (and instead of) training: independent data per seed, hicra's
logging default, eval settings that can change without retraining."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from hicra.experiment.execute import EVAL_STAMP, eval_plan, training_plan
from hicra.experiment.spec import check_folder, load_spec, save_spec, saved_eval_fingerprint
from hicra.train.data import DataSpec, load_rows, reasoning_gym_seed
from tests.test_experiment import make_run

TASK = {"min_terms": 2, "max_terms": 2, "min_digits": 3, "max_digits": 3}  # 810,000 problems


def questions(seed: int, size: int = 50) -> list[str]:
    rows, _ = load_rows(DataSpec("rg:chain_sum", kwargs=TASK, size=size, seed=seed))
    return [row["question"] for row in rows]


def test_seeds_train_on_independent_problems():
    """The issue's case: reasoning-gym draws item i from seed + i, so seed 2's item i was seed 1's
    item i + 1 (all but one shared). Seeds now draw from disjoint ranges."""
    import reasoning_gym

    old = [
        [e["question"] for e in reasoning_gym.create_dataset("chain_sum", size=50, seed=s, **TASK)]
        for s in (1, 2)
    ]
    assert old[1][:49] == old[0][1:]  # the old overlap, reproduced
    one, two, three = questions(1), questions(2), questions(3)
    assert not set(one) & set(two) and not set(two) & set(three)
    assert reasoning_gym_seed(2, 50) - reasoning_gym_seed(1, 50) == 50  # [50, 100) vs [100, 150)
    assert questions(1) == one  # reproducible


def test_both_arms_of_a_seed_train_on_the_same_problems(tmp_path):
    from hicra.experiment.heldout import training_questions

    path = tmp_path / "exp.yaml"
    base = {"max_steps": 2, "use_cpu": True, "dataset": "rg:chain_sum", "dataset_kwargs": TASK}
    base["dataset_size"] = 20
    spec = {"base": base, "arms": {"grpo": {"credit": "grpo"}, "hicra": {"credit": "hicra"}}}
    path.write_text(yaml.safe_dump({**spec, "seeds": [1, 2]}))
    loaded = load_spec(path, str(tmp_path / "out"))
    for seed in (1, 2):
        configs = [loaded.run_config(tmp_path, arm, seed) for arm in ("grpo", "hicra")]
        assert configs[0]["seed"] == configs[1]["seed"] == configs[0]["data_seed"] == seed
    # 2 seeds x 20 problems, none shared between the seeds (both arms draw the same 20 each)
    assert len(training_questions(loaded, tmp_path)) == 40


def test_hicra_runs_log_every_step_by_default(tmp_path):
    """A base config without logging_steps got TRL's 10: a short run wrote no metrics.jsonl."""
    from hicra.train.config import resolve_config

    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump({"max_steps": 3, "use_cpu": True, "output_dir": "x"}))
    assert resolve_config(["--config", str(config)]).config.logging_steps == 1
    config.write_text(yaml.safe_dump({"max_steps": 3, "use_cpu": True, "logging_steps": 5}))
    assert resolve_config(["--config", str(config)]).config.logging_steps == 5


def write_eval_file(folder: Path, name: str, rows: int) -> Path:
    path = folder / name
    lines = [json.dumps({"question": f"{i} + 1", "answer": str(i + 1)}) for i in range(rows)]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_eval_settings_change_without_retraining(tmp_path):
    """Fixing an eval setting after training is not "a different experiment file": only the
    evaluations made under the old settings are made again (the old ones kept aside)."""
    write_eval_file(tmp_path, "a.jsonl", 3)
    write_eval_file(tmp_path, "b.jsonl", 4)
    body = {
        "base": {"max_steps": 5, "use_cpu": True},
        "arms": {"grpo": {"credit": "grpo"}, "hicra": {"credit": "hicra"}},
        "seeds": [1],
    }
    first_file = tmp_path / "first.yaml"
    first_file.write_text(yaml.safe_dump({**body, "eval": {"file": "a.jsonl", "samples": 1}}))
    folder = tmp_path / "out"
    first = load_spec(first_file, str(folder))
    assert first.to_dict()["fingerprints"]["training"] == first.fingerprint()
    save_spec(first, folder)
    for arm in ("grpo", "hicra"):  # trained and evaluated under the first settings
        run = make_run(folder, arm, 1, [0.5] * 5, heldout=0.4)
        (run / "eval" / EVAL_STAMP).write_text(first.eval_fingerprint() + "\n")
    assert eval_plan(first, folder, saved_eval_fingerprint(folder)) == []  # nothing to redo
    fixed_file = tmp_path / "fixed.yaml"
    fixed_file.write_text(yaml.safe_dump({**body, "eval": {"file": "b.jsonl", "samples": 2}}))
    fixed = load_spec(fixed_file, str(folder))
    assert fixed.fingerprint() == first.fingerprint()  # the same training
    assert fixed.eval_fingerprint() != first.eval_fingerprint()
    check_folder(fixed, folder)  # accepted: no retraining
    previous = saved_eval_fingerprint(folder)
    assert previous == first.eval_fingerprint()
    jobs = eval_plan(fixed, folder, previous)
    assert [job.label for job in jobs] == ["grpo/seed-1 eval", "hicra/seed-1 eval"]
    assert "b.jsonl" in " ".join(jobs[0].argv) and "--samples 2" in " ".join(jobs[0].argv)
    assert jobs[0].stamp[1] == fixed.eval_fingerprint()
    kept = list((folder / "grpo" / "seed-1").glob("eval.stale-*"))
    assert len(kept) == 1 and (kept[0] / "results.json").is_file()
    assert training_plan(fixed, folder).jobs == []  # nothing is trained again


def test_a_folder_without_stamps_keeps_evaluations_of_unchanged_settings(tmp_path):
    """Folders made before the stamps existed: their evaluations count as made under the folder's
    last eval settings."""
    write_eval_file(tmp_path, "a.jsonl", 3)
    spec_file = tmp_path / "exp.yaml"
    body = {"base": {"max_steps": 5, "use_cpu": True}, "arms": {"grpo": {"credit": "grpo"}}}
    spec_file.write_text(yaml.safe_dump({**body, "seeds": [1], "eval": {"file": "a.jsonl"}}))
    folder = tmp_path / "out"
    spec = load_spec(spec_file, str(folder))
    save_spec(spec, folder)
    make_run(folder, "grpo", 1, [0.5] * 5, heldout=0.4)
    assert eval_plan(spec, folder, saved_eval_fingerprint(folder)) == []


# ----------------------------------------------------------------- refused before training
SMALL = {"max_steps": 2, "use_cpu": True}


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            {"arms": {"héllo": {}, "b": {"beta": 0.1}}},
            r"arm name 'héllo' must start with an ASCII letter .* non-ASCII character 'é'",
        ),
        ({"arms": {"模型": {}}}, r"only ASCII letters.*non-ASCII character '模'"),
        (
            {"arms": {"a": {"eval_benchmarks": "gsm8k"}, "b": {"eval_benchmarks": "math500"}}},
            r"arms 'a' and 'b' differ in eval_benchmarks \('gsm8k' vs 'math500'\)",
        ),
        (
            {"arms": {"a": {}, "b": {"beta": 0.1, "eval_limit": 10}}},
            r"arms 'a' and 'b' differ in eval_limit \(None vs 10\)",
        ),
        (
            {"arms": {"a": {}, "b": {"beta": 0.1}}, "primary_metric": "training_heldout_final"},
            r"arm 'a' cannot measure the primary metric 'training_heldout_final': "
            "eval_benchmarks is not set",
        ),
        (
            {
                "arms": {"a": {}, "b": {"hierarchy_metrics": False}},
                "primary_metric": "execution_entropy_end",
            },
            r"arm 'b' cannot measure the primary metric 'execution_entropy_end': "
            "hierarchy_metrics: false",
        ),
        (
            {"arms": {"a": {"credit": "hicra", "placebo_corpus": "no/such/file.jsonl"}}},
            r"arm 'a': placebo_corpus is used only by credit='placebo' \(this run: "
            "credit='hicra'\\)",
        ),
    ],
)
def test_an_experiment_that_cannot_compare_is_refused_in_one_line(tmp_path, capsys, extra, message):
    from hicra.cli import main

    path = tmp_path / "exp.yaml"
    path.write_text(
        yaml.safe_dump({"base": SMALL, "seeds": [1, 2], **extra}, allow_unicode=True),
        encoding="utf-8",
    )
    assert main(["experiment", "run", str(path), "--output-dir", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert re.search(message, err), err
    assert not (tmp_path / "out").exists()


def test_documented_readouts_are_accepted_as_primary_metrics(tmp_path):
    """`planning_ratio_end` is in docs/experiment.md's metric table: it was 'unknown'. Every run
    logs hicra/planning_ratio, hierarchy_metrics or not."""
    path = tmp_path / "exp.yaml"
    arms = {"grpo": {"credit": "grpo"}, "hicra": {"credit": "hicra", "hierarchy_metrics": False}}
    spec = {"base": SMALL, "arms": arms, "seeds": [1, 2], "primary_metric": "planning_ratio_end"}
    path.write_text(yaml.safe_dump(spec))
    assert load_spec(path, str(tmp_path / "out")).primary_metric == "planning_ratio_end"


def test_placebo_corpus_needs_the_placebo_credit(tmp_path):
    from hicra.errors import HicraError
    from hicra.train.config import resolve_config

    out = ["--output-dir", str(tmp_path / "r")]
    for credit in ("grpo", "hicra", "random_tokens"):
        with pytest.raises(HicraError, match=f"this run: credit='{credit}'"):
            resolve_config(["--credit", credit, "--placebo-corpus", "missing.jsonl", *out])
    corpus = tmp_path / "c.txt"
    corpus.write_text("Wait, the apples.\n")
    resolved = resolve_config(["--credit", "placebo", "--placebo-corpus", str(corpus), *out])
    assert resolved.config.placebo_corpus == str(corpus)


def test_the_graded_positive_control_grades_and_holds_out_150_problems(tmp_path):
    """Issue 28 item 8: 10/25/50% of the groups' rewards inverted, beside grpo, at the planned
    held-out size (150 problems that no seed trains on)."""
    from hicra.experiment.heldout import build_heldout, training_questions

    path = Path(__file__).resolve().parents[1] / "experiments" / "positive-control-graded-cpu.yaml"
    spec = load_spec(path, str(tmp_path / "out"), check_flags=("--use-cpu",))
    grades = {
        arm: spec.run_config(tmp_path, arm, 1).get("reward_corruption", 0.0) for arm in spec.arms
    }
    assert grades == {"grpo": 0.0, "corrupt-10": 0.1, "corrupt-25": 0.25, "corrupt-50": 0.5}
    rows = [json.loads(x) for x in build_heldout(spec, tmp_path).read_text().splitlines()]
    assert len(rows) == 150 and len({r["question"] for r in rows}) == 150
    seen = training_questions(spec, tmp_path)
    assert not {" ".join(r["question"].split()).lower() for r in rows} & seen
