"""`hicra experiment`: the experiment file, the analysis (hand-computed statistics on synthetic run
folders), and the harness end to end on the tiny model (run, skip, resume, evaluate, report)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from hicra.cli import main
from hicra.experiment.analysis import analyze, load_experiment
from hicra.experiment.spec import ExperimentError, load_spec
from hicra.experiment.stats import paired, summarize
from tests.test_train_cli import write_jsonl


# ----------------------------------------------------------------- synthetic run folders
def make_run(folder: Path, arm: str, seed: int, accuracy, finished=True, heldout=None, **config):
    run = folder / arm / f"seed-{seed}"
    run.mkdir(parents=True)
    settings = {"hicra_version": "0", "credit": arm, "learning_rate": 1e-5, "max_steps": 20}
    settings.update(seed=seed, data_seed=seed, output_dir=str(run), **config)
    (run / "config.yaml").write_text(yaml.safe_dump(settings))
    rows = [
        {"step": i + 1, "hicra/accuracy": a, "hicra/planning_ratio": 0.1, "hicra/completions": 8}
        for i, a in enumerate(accuracy)
    ]
    write_jsonl(run / "metrics.jsonl", rows)
    if not finished:  # killed after a checkpoint at its last step
        checkpoint = run / f"checkpoint-{len(accuracy)}"
        checkpoint.mkdir()
        (checkpoint / "trainer_state.json").write_text("{}")
    if finished:
        (run / "final_model").mkdir()
        (run / "final_model" / "config.json").write_text("{}")
        (run / "summary.json").write_text(json.dumps({"step": len(accuracy)}))
    if heldout is not None:
        (run / "eval").mkdir()
        results = {"benchmarks": {"heldout": {"avg@k": heldout, "problems": 10}}}
        (run / "eval" / "results.json").write_text(json.dumps(results))
    return run


def spec_file(folder: Path, arms: dict, seeds=(1, 2, 3), baseline="grpo") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    spec = {"base": {"learning_rate": 1e-5}, "arms": arms, "seeds": list(seeds)}
    spec["baseline"] = baseline
    spec["eval"] = {}
    spec["analysis"] = {"threshold": 0.5}
    (folder / "experiment.yaml").write_text(yaml.safe_dump(spec))


@pytest.fixture
def three_seeds(tmp_path):
    """grpo at a constant 0.2 / 0.3 / 0.4, hicra at 0.3 / 0.5 / 0.7: paired differences 0.1,
    0.2, 0.3, so every statistic can be computed by hand."""
    folder = tmp_path / "exp"
    spec_file(folder, {"grpo": {"credit": "grpo"}, "hicra": {"credit": "hicra"}})
    for seed, (g, h) in enumerate([(0.2, 0.3), (0.3, 0.5), (0.4, 0.7)], start=1):
        make_run(folder, "grpo", seed, [g] * 20, heldout=g / 2)
        make_run(folder, "hicra", seed, [h] * 20, heldout=h / 2)
    return folder


def test_paired_t_and_means_are_hand_computed(three_seeds):
    results = analyze(load_experiment(three_seeds))
    assert results["baseline"] == "grpo" and results["horizon"] == 20
    assert results["primary_metric"] == "mean_accuracy"  # no eval configured
    hicra = results["arms"]["hicra"]["mean_accuracy"]
    # 0.3, 0.5, 0.7: mean 0.5, sd 0.2, t(0.975, 2) = 4.3027: 0.5 +- 4.3027 * 0.2 / sqrt(3)
    assert hicra["mean"] == pytest.approx(0.5) and hicra["n"] == 3
    assert hicra["ci_low"] == pytest.approx(0.5 - 0.49683, abs=1e-5)
    assert hicra["ci_high"] == pytest.approx(0.5 + 0.49683, abs=1e-5)
    mean_cmp = next(c for c in results["comparisons"] if c["metric"] == "mean_accuracy")
    assert mean_cmp["mean_diff"] == pytest.approx(0.2) and mean_cmp["n"] == 3
    assert mean_cmp["family"] == "primary" and mean_cmp["sd_diff"] == pytest.approx(0.1)
    # differences 0.1, 0.2, 0.3: t = 0.2 / (0.1 / sqrt 3) = 3.4641 on 2 df: p = 0.07418
    assert mean_cmp["p_value"] == pytest.approx(0.07418, abs=1e-5)
    assert mean_cmp["adjusted_p"] == mean_cmp["p_value"]  # the only primary test
    assert mean_cmp["ci_low"] == pytest.approx(0.2 - 0.24841, abs=1e-5)
    # of the 2^3 sign flips of (0.1, 0.2, 0.3), only all-plus and all-minus reach |mean| >= 0.2
    assert mean_cmp["p_sign_flip"] == pytest.approx(2 / 8)
    held = next(c for c in results["comparisons"] if c["metric"] == "heldout_accuracy")
    final = next(c for c in results["comparisons"] if c["metric"] == "final_accuracy")
    assert held["mean_diff"] == pytest.approx(0.1) and held["family"] == "secondary"
    # two secondary tests with equal p: Holm doubles both
    assert held["adjusted_p"] == pytest.approx(2 * 0.07418, abs=1e-4)
    assert final["adjusted_p"] == pytest.approx(2 * 0.07418, abs=1e-4)
    # a trailing mean over 5 full steps: 0.5 is first reached at step 5 (seed 1 never does)
    assert results["arms"]["hicra"]["steps_to_threshold"]["mean"] == pytest.approx(5.0)
    assert results["arms"]["hicra"]["steps_to_threshold"]["n"] == 2
    line = next(v for v in results["verdicts"] if "mean accuracy" in v)
    assert line == (
        "hicra vs grpo: +0.200 mean accuracy (primary), 95% CI [-0.048, +0.448], p = 0.074 "
        "over 3 seeds: no difference detected at this budget; rests on normally distributed "
        "seed differences (below 6 seeds the exact sign-flip test cannot reach 0.05); minimal "
        "detectable effect +-0.326 at power 0.8 (3 seeds, alpha 0.05)"
    )
    from hicra.experiment.stats import power_paired_t

    assert power_paired_t(0.326, 0.1, 3) == pytest.approx(0.8, abs=0.002)


def test_final_accuracy_is_the_last_tenth_of_the_common_steps(tmp_path):
    folder = tmp_path / "exp"
    spec_file(folder, {"grpo": {"credit": "grpo"}, "hicra": {"credit": "hicra"}}, seeds=(1,))
    make_run(folder, "grpo", 1, [0.0] * 18 + [1.0, 1.0])
    # hicra is still training at step 10: every number uses steps 1-10 only
    make_run(folder, "hicra", 1, [0.5] * 9 + [1.0], finished=False)
    loaded = load_experiment(folder)
    assert loaded.missing == ["hicra/seed-1: killed at step 10"]
    results = analyze(loaded)
    assert results["horizon"] == 10
    grpo = results["arms"]["grpo"]
    assert grpo["final_accuracy"]["mean"] == 0.0 and grpo["mean_accuracy"]["mean"] == 0.0
    assert grpo["final_accuracy"]["ci_low"] is None  # one seed: no CI
    hicra = results["arms"]["hicra"]
    assert hicra["final_accuracy"]["mean"] == 1.0  # the last 10% of 10 steps: step 10
    assert hicra["mean_accuracy"]["mean"] == pytest.approx(0.55)
    line = next(v for v in results["verdicts"] if "final accuracy" in v)
    assert line == (  # hicra is still training: the experiment is unfinished
        "INTERIM (1 of 2 runs finished): hicra vs grpo: +1.000 final accuracy (secondary) from 1 "
        "paired seed: too few seeds to compare"
    )
    only = analyze(load_experiment(folder, finished_only=True))
    assert only["horizon"] == 20 and "hicra" not in only["arms"]


def test_statistics_helpers():
    assert summarize([0.5, 0.5, 0.5]) == {"mean": 0.5, "ci_low": 0.5, "ci_high": 0.5, "n": 3}
    assert summarize([]) == {"mean": None, "ci_low": None, "ci_high": None, "n": 0}
    assert summarize([0.4]) == {"mean": 0.4, "ci_low": None, "ci_high": None, "n": 1}
    # cut to the values an accuracy can take: 0.05 +- 4.3027 * 0.05 / sqrt(3) reaches below 0
    cut = summarize([0.0, 0.05, 0.1], bounds=(0.0, 1.0))
    assert cut["ci_low"] == 0.0 and cut["ci_high"] == pytest.approx(0.05 + 0.124207, abs=1e-5)
    same = paired({1: 0.3, 2: 0.4}, {1: 0.3, 2: 0.4, 3: 0.9})
    assert same["n"] == 2 and same["mean_diff"] == 0 and same["p_value"] == 1.0
    # every difference the same: no t statistic; the interval is the value, p the sign-flip p
    six = paired({s: 0.6 for s in range(1, 7)}, {s: 0.5 for s in range(1, 7)})
    assert six["p_value"] == pytest.approx(2 / 64) and six["ci_low"] == pytest.approx(0.1)
    four = paired({s: 0.5 + 0.01 * s for s in range(1, 5)}, {s: 0.5 for s in range(1, 5)})
    # 0.01..0.04: mean 0.025, sd 0.0129099, t = 3.873 on 3 df: p = 0.03047
    assert four["p_value"] == pytest.approx(0.03047, abs=1e-4)
    assert four["p_sign_flip"] == pytest.approx(2 / 16)


def test_analysis_refuses_to_mix_configs(three_seeds, tmp_path):
    config = three_seeds / "hicra" / "seed-2" / "config.yaml"
    data = yaml.safe_load(config.read_text())
    data["learning_rate"] = 3e-5
    config.write_text(yaml.safe_dump(data))
    with pytest.raises(ExperimentError, match="differ in 'learning_rate'"):
        load_experiment(three_seeds)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ExperimentError, match="no runs"):
        load_experiment(empty)


def test_arms_may_differ_in_what_their_keys_set(tmp_path):
    """accuracy_weight -1 (the positive control's flipped reward) changes the run's
    reward_weights too: that is the arm's own difference, not a mix-up."""
    folder = tmp_path / "exp"
    arms = {"grpo": {"credit": "grpo"}, "flipped": {"credit": "flipped", "accuracy_weight": -1.0}}
    spec_file(folder, arms, seeds=(1,))
    make_run(folder, "grpo", 1, [0.5] * 5, accuracy_weight=1.0, reward_weights=[1.0, 0.2])
    make_run(folder, "flipped", 1, [0.1] * 5, accuracy_weight=-1.0, reward_weights=[-1.0, 0.2])
    assert analyze(load_experiment(folder))["arms"]["flipped"]["mean_accuracy"]["mean"] == 0.1


def test_arms_may_differ_only_in_their_own_keys(tmp_path):
    folder = tmp_path / "exp"
    spec_file(folder, {"grpo": {"credit": "grpo"}, "hicra": {"credit": "hicra"}}, seeds=(1,))
    make_run(folder, "grpo", 1, [0.5] * 5)
    make_run(folder, "hicra", 1, [0.5] * 5, beta=0.1)
    with pytest.raises(ExperimentError, match=r"differ in 'beta'.*which no arm sets"):
        load_experiment(folder)


def test_analyze_command_writes_results(three_seeds, capsys):
    assert main(["experiment", "analyze", str(three_seeds)]) == 0
    out = capsys.readouterr().out
    assert "hicra vs grpo: +0.200 mean accuracy" in out
    results = json.loads((three_seeds / "results.json").read_text())
    assert set(results["arms"]["grpo"]) >= {"final_accuracy", "mean_accuracy", "heldout_accuracy"}
    assert set(results["arms"]["grpo"]["mean_accuracy"]) == {"mean", "ci_low", "ci_high", "n"}
    keys = {"arm", "baseline", "metric", "n", "mean_diff", "ci_low", "ci_high", "p_value"}
    keys |= {"family", "adjusted_p", "p_sign_flip", "sd_diff"}
    assert all(keys <= set(c) for c in results["comparisons"])
    table = (three_seeds / "results.md").read_text()
    assert (
        "| hicra | grpo | mean accuracy | primary | seeds | 1-20 | 3 | +0.200 | [-0.048, +0.448] "
        "| 0.0742 | 0.0742 | 0.25 |" in table
    )
    assert "## Power" in table
    assert main(["report", str(three_seeds)]) == 0
    page = (three_seeds / "report" / "report.html").read_text()
    assert "hicra vs grpo: +0.200 mean accuracy" in page
    assert "../hicra/seed-1/report/report.html" in page
    assert (three_seeds / "hicra" / "seed-1" / "report" / "report.html").is_file()
    assert (three_seeds / "report" / "experiment.png").stat().st_size > 10_000


# ----------------------------------------------------------------- the experiment file
def write_spec(tmp_path, text: str) -> Path:
    path = tmp_path / "exp.yaml"
    path.write_text(text)
    return path


BASE = "base: {max_steps: 2, use_cpu: true}\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (BASE + "arms: {a: {credit: hicra}}\nseeds: [1]\nsed: 3\n", "unknown key 'sed'"),
        (BASE + "arms: {a: {credit: magic}}\nseeds: [1]\n", "arm 'a'.*unknown credit 'magic'"),
        (BASE + "arms: {a: {learning_rat: 1}}\nseeds: [1]\n", "unknown config key 'learning_rat'"),
        (
            BASE + "arms: {a: {credit: grpo}, b: {credit: grpo}}\nseeds: [1]\n",
            "arms 'a' and 'b' have identical settings",
        ),
        (BASE + "arms: {a: {}}\nseeds: [1, 2, 1]\n", "seed 1 is listed twice"),
        (BASE + "arms: {a: {}}\nseeds: []\n", "seeds must be a non-empty list"),
        (BASE + "arms: {a: {seed: 3}}\nseeds: [1]\n", "'seed' is set by the harness"),
        (BASE + "arms: {a: {}}\nseeds: [1]\nbaseline: b\n", "baseline 'b' is not an arm"),
        (
            BASE + "arms: {'a/b': {}}\nseeds: [1]\n",
            "arm name 'a/b' must start with an ASCII letter",
        ),
        # ".." and "." name folders that are not the arm's: the stated rule is one they break
        (
            BASE + "arms: {'..': {}}\nseeds: [1]\n",
            r"arm name '\.\.' must start with an ASCII letter",
        ),
        (BASE + "arms: {'.': {}}\nseeds: [1]\n", r"arm name '\.' must start with an ASCII letter"),
        (BASE + "arms: {a: {}}\nseeds: [-1]\n", r"seed -1 is out of range: .* from 0 to"),
        (
            BASE + "arms: {a: {}}\nseeds: [1]\neval: {benchmarks: [aime2042]}\n",
            "eval: unknown benchmark 'aime2042'",
        ),
        (BASE + "arms: {a: {}}\nseeds: [1]\neval: {file: rows.jsonl}\n", r"rows.jsonl, line 2"),
        (
            BASE + "arms: {a: {}}\nseeds: [1]\neval: {benchmarks: [gsm8k], samples: 0}\n",
            "eval.samples must be a whole number of at least 1",
        ),
        (
            BASE + "arms: {a: {}}\nseeds: [1]\nprimary_metric: mean_acc\n",
            "did you mean mean_accuracy",
        ),
        (
            BASE + "arms: {a: {}}\nseeds: [1]\nprimary_metric: heldout_accuracy\n",
            "primary_metric 'heldout_accuracy' needs an eval",
        ),
        (
            BASE + "arms: {a: {}, b: {beta: 0.1}}\nseeds: [1]\ncontrasts: [[a, c]]\n",
            r"contrast \['a', 'c'\]: 'c' is not an arm",
        ),
        (
            BASE + "arms: {a: {}, b: {beta: 0.1}}\nseeds: [1]\ncontrasts: [[a, b], [b, a]]\n",
            "is listed twice",
        ),
        (
            BASE + "arms: {a: {importance_sampling_level: sequence}}\nseeds: [1]\n",
            "importance_sampling_level='sequence'",
        ),
        (BASE + "arms: {a: {}}\nseeds: [1]\neval: {samples: 2}\n", "exactly one of heldout"),
    ],
)
def test_bad_experiment_files_are_one_clear_line(tmp_path, capsys, text, message):
    # an eval file whose second row has no answer: refused before any training
    (tmp_path / "rows.jsonl").write_text(
        '{"question": "1+1", "answer": "2"}\n{"question": "2+2"}\n'
    )
    path = write_spec(tmp_path, text)
    assert main(["experiment", "run", str(path), "--output-dir", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and "Traceback" not in err
    assert re.search(message, err), err
    assert not (tmp_path / "out").exists()


def test_a_folder_from_another_experiment_file_is_refused(tmp_path, capsys):
    first = write_spec(tmp_path, BASE + "arms: {a: {credit: grpo}, b: {}}\nseeds: [1]\n")
    spec = load_spec(first, str(tmp_path / "out"))
    from hicra.experiment.spec import check_folder, save_spec

    save_spec(spec, tmp_path / "out")
    other = tmp_path / "other.yaml"
    other.write_text(BASE + "arms: {a: {credit: grpo}, b: {hicra_alpha: 0.3}}\nseeds: [1]\n")
    with pytest.raises(ExperimentError, match=r"different experiment file \(arms.b.hicra_alpha"):
        check_folder(load_spec(other, str(tmp_path / "out")), tmp_path / "out")
    more_seeds = tmp_path / "more.yaml"
    more_seeds.write_text(BASE + "arms: {a: {credit: grpo}, b: {}}\nseeds: [1, 2]\n")
    check_folder(load_spec(more_seeds, str(tmp_path / "out")), tmp_path / "out")  # seeds may grow


# ----------------------------------------------------------------- end to end on the tiny model
def test_harness_runs_skips_resumes_and_evaluates(tiny_model_dir, tmp_path, capsys):
    data = write_jsonl(
        tmp_path / "train.jsonl",
        [{"question": f"What is {i} + {i + 1}?", "answer": str(2 * i + 1)} for i in range(40)],
    )
    heldout = write_jsonl(
        tmp_path / "heldout.jsonl", [{"question": "What is 2 + 2?", "answer": "4"}] * 2
    )
    base = {
        "model": str(tiny_model_dir),
        "dataset": str(data),
        "max_steps": 2,
        "num_generations": 4,
        "per_device_train_batch_size": 8,
        "max_completion_length": 8,
        "save_steps": 1,
        "save_total_limit": 2,  # checkpoint-1 stays: the kill below resumes from it
        "use_cpu": True,
        "verify_workers": 1,
        "logging_steps": 1,
    }
    spec = {
        "base": base,
        "arms": {"grpo": {"credit": "grpo"}, "placebo": {"credit": "placebo"}},
        "seeds": [3],
        "eval": {"file": str(heldout), "max_new_tokens": 4, "samples": 1},
        "output_dir": str(tmp_path / "exp"),
    }
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(spec))
    assert main(["experiment", "run", str(path), "--parallel", "2"]) == 0
    out = capsys.readouterr().out
    assert "2 of 2 runs to train, 2 at a time" in out
    folder = tmp_path / "exp"
    for arm in ("grpo", "placebo"):
        run = folder / arm / "seed-3"
        config = yaml.safe_load((run / "config.yaml").read_text())
        assert config["seed"] == 3 and config["data_seed"] == 3 and config["credit"] == arm
        assert (run / "final_model" / "config.json").is_file()
        results = json.loads((run / "eval" / "results.json").read_text())
        assert results["benchmarks"]["heldout"]["problems"] == 2
        stamp = (run / "eval" / "experiment-eval.txt").read_text().strip()
        assert stamp == load_spec(path).eval_fingerprint()  # what the evaluation was made under
    results = json.loads((folder / "results.json").read_text())
    assert [r["state"] for r in results["runs"]] == ["finished", "finished"]
    # again: nothing to do
    assert main(["experiment", "run", str(path)]) == 0
    assert "0 of 2 runs to train" in capsys.readouterr().out
    # a run killed after its first checkpoint is resumed from it, not restarted
    run = folder / "placebo" / "seed-3"
    (run / "summary.json").unlink()
    (run / "final_model" / "config.json").unlink()
    for item in (run / "checkpoint-2").iterdir():
        item.unlink()
    (run / "checkpoint-2").rmdir()
    first_line = (run / "metrics.jsonl").read_text().splitlines()[0]
    assert main(["experiment", "run", str(path)]) == 0
    assert "1 of 2 runs to train" in capsys.readouterr().out
    lines = (run / "metrics.jsonl").read_text().splitlines()
    assert lines[0] == first_line  # step 1 kept as it was: resumed from checkpoint-1
    assert [json.loads(x)["step"] for x in lines] == [1, 2]
    assert (run / "final_model" / "config.json").is_file()


EXPERIMENTS = sorted((Path(__file__).resolve().parents[1] / "experiments").glob("*.yaml"))


def test_bundled_experiment_files_resolve_and_say_what_they_cost():
    names = {p.name for p in EXPERIMENTS}
    assert {"smoke-cpu.yaml", "arith2-smollm2-gpu.yaml", "math-qwen-gpu.yaml"} <= names
    for path in EXPERIMENTS:
        header = path.read_text().split("\nbase:")[0]
        assert "What it tests" in header or "HICRA vs GRPO" in header, path.name
        assert "Cost" in header, path.name
        spec = load_spec(path, "/nonexistent/out", check_flags=("--use-cpu",))
        assert spec.baseline == "grpo" and len(spec.seeds) >= 2


def test_arith2_heldout_set_has_no_training_question(tmp_path):
    """The GPU experiment's 500 held-out problems are two-digit sums and differences that no run's
    training set contains (the training sets depend on the seed)."""
    from hicra.experiment.heldout import build_heldout, training_questions

    path = next(p for p in EXPERIMENTS if p.name == "arith2-smollm2-gpu.yaml")
    spec = load_spec(path, str(tmp_path / "out"), check_flags=("--use-cpu",))
    heldout = build_heldout(spec, tmp_path)
    rows = [json.loads(x) for x in heldout.read_text().splitlines()]
    assert len(rows) == 500 and len({r["question"] for r in rows}) == 500
    seen = training_questions(spec, tmp_path)
    # each seed draws its 5,000 problems independently: 20,000 draws from the 16,200 possible
    # problems hold 16,200 x (1 - e^(-20000/16200)) = 11,487 distinct ones on average (when
    # reasoning-gym drew item i from seed + i for every seed, they held about 4,300)
    assert 11_000 < len(seen) < 12_000
    assert not {" ".join(r["question"].split()).lower() for r in rows} & seen
    assert any(int(r["answer"]) < 0 for r in rows) and all(
        re.search(r"\d\d [+-] \d\d =$", r["question"]) for r in rows
    )


@pytest.mark.slow
def test_smoke_cpu_experiment_shortened(tmp_path, capsys):
    """The bundled smoke-cpu.yaml on the real bundled SmolLM2, cut to 1 seed x 1 step and 6
    held-out problems: the harness end to end as a user runs it."""
    path = next(p for p in EXPERIMENTS if p.name == "smoke-cpu.yaml")
    spec = yaml.safe_load(path.read_text())
    spec["base"].update(max_steps=1, save_steps=1)
    spec["seeds"] = [1]
    spec["eval"]["heldout"]["size"] = 6
    spec["output_dir"] = str(tmp_path / "smoke")
    short = tmp_path / "smoke.yaml"
    short.write_text(yaml.safe_dump(spec))
    assert main(["experiment", "run", str(short)]) == 0
    results = json.loads((tmp_path / "smoke" / "results.json").read_text())
    assert [r["state"] for r in results["runs"]] == ["finished", "finished"]
    assert all(r["heldout_problems"] == 6 for r in results["runs"])
    assert all(0 <= r["mean_accuracy"] <= 1 for r in results["runs"])
    verdicts = results["verdicts"]
    assert verdicts and all("too few seeds to compare" in v for v in verdicts)
