"""`hicra eval` end to end on a tiny random model: outputs, resume, compare, generation, errors."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from hicra.cli import main
from hicra.eval.backends import choose_backend
from hicra.eval.checkers import StrictBoxedChecker
from hicra.eval.passk import avg_at_k, mean_pass_at_k
from hicra.eval.registry import load_benchmark
from hicra.eval.results import compare_table, load_results
from hicra.eval.runner import EvalConfig, EvalError, default_output_dir, evaluate
from hicra.eval.sampling import (
    HFBackend,
    Request,
    SamplingSettings,
    encode_prompt,
)
from hicra.models import ModelError, resolve_model_path

CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


@pytest.fixture(autouse=True)
def one_thread(one_torch_thread):
    """A tiny model is all overhead: one thread leaves the second core to the verifier."""


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory, bytelevel_tokenizer) -> Path:
    """A 2-layer Qwen2 with random weights and a locally trained tokenizer with a chat template."""
    import torch
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

    folder = tmp_path_factory.mktemp("tiny-model")
    bytelevel_tokenizer.save_pretrained(folder)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.save_pretrained(folder)
    torch.manual_seed(0)
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        initializer_range=0.5,  # well separated logits: greedy argmax is stable under padding
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )
    Qwen2ForCausalLM(config).save_pretrained(folder)
    return folder


def _config(model: Path, out: Path, **overrides) -> EvalConfig:
    values = {
        "model": str(model),
        "benchmarks": ["gsm8k", "aime24"],
        "output_dir": str(out),
        "limit": 3,
        "samples": 2,
        "max_new_tokens": 8,
        "checker": "strict-boxed",
        "progress": False,
    }
    return EvalConfig(**{**values, **overrides})


def _rows(out: Path) -> list[dict]:
    with open(out / "samples.jsonl", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


# --------------------------------------------------------------------------- end to end
def test_cli_end_to_end_on_limit_3(tiny_model, tmp_path, capsys):
    out = tmp_path / "eval"
    code = main(
        [
            "eval",
            "--model",
            str(tiny_model),
            "--benchmarks",
            "gsm8k,aime24",
            "--limit",
            "3",
            "--max-new-tokens",
            "8",
            "--checker",
            "math-verify",
            "--output-dir",
            str(out),
            "--no-progress",
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "| model | AIME24 | GSM8K | Avg |" in printed  # the paper's column order
    results = json.loads((out / "results.json").read_text())
    assert results["checker"] == "math-verify" and results["backend"] == "hf"
    assert results["generation"]["temperature"] == 0.6 and results["generation"]["top_p"] == 0.95
    gsm, aime = results["benchmarks"]["gsm8k"], results["benchmarks"]["aime24"]
    assert (gsm["problems"], gsm["samples"]) == (3, 1)
    assert (aime["problems"], aime["samples"]) == (3, 32)  # the paper's default for AIME
    assert list(aime["pass@k"]) == ["1", "2", "4", "8", "16", "32"]
    assert (gsm["source"], aime["source"]) == (
        "bundled:gsm8k/test.jsonl.gz",
        "bundled:aime24/test.jsonl.gz",
    )
    rows = _rows(out)
    assert len(rows) == 3 * 1 + 3 * 32
    keys = {(r["benchmark"], r["id"], r["sample"]) for r in rows}
    assert len(keys) == len(rows)
    assert {(r["benchmark"], r["id"]) for r in rows} == {
        ("gsm8k", "0"),
        ("gsm8k", "1"),
        ("gsm8k", "2"),
        ("aime24", "60"),
        ("aime24", "61"),
        ("aime24", "62"),
    }
    for r in rows:
        assert 1 <= r["tokens"] <= 8 and r["finish_reason"] in ("stop", "length")
        assert r["finish_reason"] == "stop" or r["tokens"] == 8
        assert r["checker"] == "math-verify" and isinstance(r["completion"], str)
    assert results["timing"]["generated_tokens"] == sum(r["tokens"] for r in rows)
    markdown = (out / "results.md").read_text()
    assert "| smollm2" not in markdown and f"| {tiny_model.name} |" in markdown
    assert "Checker: math-verify; temperature 0.6, top-p 0.95, at most 8 new tokens" in markdown


def test_offline_cli_from_an_empty_folder_reads_the_bundled_copies(tiny_model, tmp_path):
    """What a user gets after `pip install hicra`, with no hub and no --data-dir."""
    cwd = tmp_path / "empty"
    cwd.mkdir()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    argv = [sys.executable, "-m", "hicra.cli", "eval", "--model", str(tiny_model)]
    argv += ["--benchmarks", "aime24,math500", "--limit", "2", "--samples", "1"]
    argv += ["--max-new-tokens", "4", "--checker", "strict-boxed", "--no-progress"]
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads((cwd / f"eval-{tiny_model.name}" / "results.json").read_text())
    scored = results["benchmarks"]
    assert {name: (b["problems"], b["source"]) for name, b in scored.items()} == {
        "aime24": (2, "bundled:aime24/test.jsonl.gz"),
        "math500": (2, "bundled:math500/test.jsonl.gz"),
    }
    assert "| model | AIME24 | MATH500 | Avg |" in done.stdout


def test_data_dir_overrides_the_bundled_copy(tiny_model, tmp_path):
    data = tmp_path / "data"
    (data / "aime24").mkdir(parents=True)
    rows = [
        {"id": f"own-{i}", "problem": f"What is {i} + {i}?", "answer": str(2 * i)} for i in (1, 2)
    ]
    (data / "aime24" / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    config = _config(tiny_model, tmp_path / "eval", benchmarks=["aime24"], samples=1)
    results = evaluate(replace(config, data_dir=str(data)))
    aime = results["benchmarks"]["aime24"]
    assert (aime["problems"], aime["source"]) == (2, str(data / "aime24" / "test.jsonl"))
    assert {(r["id"], r["gold"]) for r in _rows(tmp_path / "eval")} == {
        ("own-1", "2"),
        ("own-2", "4"),
    }


def test_recorded_verdicts_and_scores_match_the_samples(tiny_model, tmp_path):
    out = tmp_path / "eval"
    results = evaluate(_config(tiny_model, out))
    rows = _rows(out)
    verdicts = StrictBoxedChecker().check_many(
        [r["completion"] for r in rows], [r["gold"] for r in rows]
    )
    for row, verdict in zip(rows, verdicts, strict=True):
        assert (row["correct"], row["status"], row["answer"]) == (
            verdict.correct,
            verdict.status,
            verdict.answer,
        )
    golds = {p.id: p.gold for p in load_benchmark("gsm8k", limit=3)}
    assert all(r["gold"] == golds[r["id"]] for r in rows if r["benchmark"] == "gsm8k")
    by_problem: dict[tuple[str, str], list[bool]] = {}
    for r in sorted(rows, key=lambda r: r["sample"]):
        by_problem.setdefault((r["benchmark"], r["id"]), []).append(r["correct"])
    for bench in ("gsm8k", "aime24"):
        correct = [v for (b, _), v in by_problem.items() if b == bench]
        assert results["benchmarks"][bench]["avg@k"] == avg_at_k(correct)
        assert results["benchmarks"][bench]["pass@k"]["2"] == mean_pass_at_k(correct, 2)


def test_scores_are_recomputed_from_samples_by_hand(tiny_model, tmp_path):
    """Doctored verdicts in samples.jsonl give hand-computed avg@k, pass@k and maj@k."""
    out = tmp_path / "eval"
    evaluate(_config(tiny_model, out, benchmarks=["aime24"], limit=2, samples=4))
    rows = _rows(out)
    planted = {
        ("60", 0): ("204", True),
        ("60", 1): ("5", False),
        ("60", 2): ("5", False),
        ("60", 3): ("7", False),
        ("61", 0): ("113", True),
        ("61", 1): ("113", True),
        ("61", 2): ("1", False),
        ("61", 3): (None, False),
    }
    for r in rows:
        r["answer"], r["correct"] = planted[(r["id"], r["sample"])]
    (out / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    results = evaluate(_config(tiny_model, out, benchmarks=["aime24"], limit=2, samples=4))
    assert results["timing"]["generated_problems"] == 0  # nothing left to sample
    aime = results["benchmarks"]["aime24"]
    assert aime["avg@k"] == pytest.approx((1 / 4 + 2 / 4) / 2)
    assert aime["pass@k"]["2"] == pytest.approx((1 / 2 + 5 / 6) / 2)
    assert aime["pass@k"]["4"] == 1.0
    assert aime["maj@k"] == pytest.approx(0.5)  # "5" wins problem 60, "113" wins problem 61
    assert aime["no_answer"] == pytest.approx(1 / 8)
    assert "| AIME24 | 2 | 4 | 37.5 | 100.0 | 50.0 |" in (out / "results.md").read_text()


# --------------------------------------------------------------------------- resume
def test_resume_skips_finished_samples_and_repairs_a_cut_line(tiny_model, tmp_path):
    out = tmp_path / "eval"
    first = evaluate(_config(tiny_model, out, limit=2))
    assert first["timing"]["generated_problems"] == 4
    before = _rows(out)
    # a run killed while writing: the last problem lost, half a line left behind
    kept = [r for r in before if not (r["benchmark"] == "aime24" and r["id"] == "61")]
    text = "".join(json.dumps(r) + "\n" for r in kept) + '{"benchmark": "aime24", "id": "6'
    (out / "samples.jsonl").write_text(text)
    second = evaluate(_config(tiny_model, out, limit=3))  # and one more problem each
    timing = second["timing"]
    assert (timing["resumed_problems"], timing["generated_problems"]) == (3, 3)
    after = _rows(out)  # every line parses again: the cut line was dropped
    assert after[: len(kept)] == kept  # finished samples are never recomputed
    added = {(r["benchmark"], r["id"]) for r in after[len(kept) :]}
    assert added == {("aime24", "61"), ("gsm8k", "2"), ("aime24", "62")}
    assert len(after) == 12
    assert second["benchmarks"]["gsm8k"]["problems"] == 3
    # more samples later: only the missing sample indices are added
    third = evaluate(_config(tiny_model, out, limit=3, samples=3))
    assert third["timing"]["generated_problems"] == 6
    extra = _rows(out)[12:]
    assert {r["sample"] for r in extra} == {2} and len(extra) == 6


def test_interrupted_cli_run_resumes_where_it_stopped(tiny_model, tmp_path):
    """A real `hicra eval` process interrupted mid-run; the rerun only adds what is missing."""
    out = tmp_path / "eval"
    argv = [
        sys.executable,
        "-m",
        "hicra.cli",
        "eval",
        "--model",
        str(tiny_model),
        "--benchmarks",
        "aime24",
        "--max-new-tokens",
        "32",
        "--samples",
        "4",
        "--batch-size",
        "1",  # slow enough to be caught mid-run: 30 problems x 4 samples, one row per call
        "--checker",
        "strict-boxed",
        "--output-dir",
        str(out),
    ]
    process = subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # a shell's background jobs inherit SIGINT ignored; Ctrl-C must reach this one as a user's
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    samples = out / "samples.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if samples.is_file() and samples.read_bytes().count(b"\n") >= 8:
            break
        time.sleep(0.1)
    assert process.poll() is None, "the evaluation ended before it could be interrupted"
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130
    assert "interrupted; finished problems are kept" in err and "Traceback" not in err
    lines = samples.read_text().splitlines()
    complete = [json.loads(line) for line in lines if line.endswith("}")]
    assert len(complete) % 4 == 0 and len(complete) >= 8  # whole problems only
    finished = len(complete) // 4
    config = _config(
        tiny_model, out, benchmarks=["aime24"], limit=None, samples=4, max_new_tokens=32
    )
    results = evaluate(config)
    assert results["timing"]["resumed_problems"] == finished
    assert results["timing"]["generated_problems"] == 30 - finished
    after = _rows(out)
    assert after[: len(complete)] == complete
    assert len(after) == 4 * 30
    assert len({(r["id"], r["sample"]) for r in after}) == len(after)


def test_resume_refuses_other_settings(tiny_model, tmp_path):
    out = tmp_path / "eval"
    evaluate(_config(tiny_model, out, benchmarks=["gsm8k"], limit=1, samples=1))
    with pytest.raises(EvalError, match=r"other settings \(temperature 0.6 -> 1.0\).*--output-dir"):
        evaluate(
            _config(tiny_model, out, benchmarks=["gsm8k"], limit=1, samples=1, temperature=1.0)
        )
    with pytest.raises(EvalError, match="checker 'strict-boxed' -> 'math-verify'"):
        evaluate(_config(tiny_model, out, benchmarks=["gsm8k"], limit=1, checker="math-verify"))


def test_foreign_samples_file_is_refused_with_its_line(tiny_model, tmp_path):
    out = tmp_path / "eval"
    evaluate(_config(tiny_model, out, benchmarks=["gsm8k"], limit=1, samples=1))
    with open(out / "samples.jsonl", "a") as handle:
        handle.write(json.dumps({"text": "not a sample"}) + "\n")
    with pytest.raises(EvalError, match=r"samples.jsonl, line 2: not an evaluation sample"):
        evaluate(_config(tiny_model, out, benchmarks=["gsm8k"], limit=1, samples=1))


# --------------------------------------------------------------------------- compare
def test_compare_prints_both_runs_with_deltas(tiny_model, tmp_path, capsys):
    base = tmp_path / "a"
    evaluate(_config(tiny_model, base, benchmarks=["gsm8k", "aime24"], limit=1, samples=1))
    results = json.loads((base / "results.json").read_text())
    results["benchmarks"]["gsm8k"]["avg@k"] = 0.25
    results["benchmarks"]["aime24"]["avg@k"] = 0.10
    (base / "results.json").write_text(json.dumps(results))
    other = tmp_path / "b.json"
    results["benchmarks"]["gsm8k"]["avg@k"] = 0.5
    results["benchmarks"]["aime24"]["avg@k"] = 0.05
    results["checker"] = "math-verify"
    other.write_text(json.dumps(results))
    assert main(["eval", "--compare", str(base), str(other)]) == 0
    printed = capsys.readouterr().out
    assert "| AIME24 | 10.0 | 5.0 | -5.0 |" in printed
    assert "| GSM8K | 25.0 | 50.0 | +25.0 |" in printed
    assert "| Avg (2 in both) | 17.5 | 27.5 | +10.0 |" in printed
    assert "checker differs: A strict-boxed, B math-verify" in printed
    table = compare_table(load_results(base), load_results(other))
    assert printed.endswith(table.split("\n", 2)[2])


def test_compare_errors_name_the_file(tmp_path, capsys):
    assert main(["eval", "--compare", str(tmp_path), str(tmp_path / "x.json")]) == 2
    assert f"no results.json in {tmp_path}" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text('{"benchmarks": {"gsm8k": {}}}')
    assert main(["eval", "--compare", str(bad), str(bad)]) == 2
    assert "benchmark 'gsm8k' has no avg@k score" in capsys.readouterr().err


# --------------------------------------------------------------------------- generation
def test_batched_left_padded_greedy_equals_one_prompt_at_a_time(tiny_model):
    from hicra.models import load_tokenizer

    tokenizer = load_tokenizer(tiny_model)
    questions = ["1+1?", "What is the sum of the first ten positive integers, exactly?", "x"]
    requests = [Request(encode_prompt(tokenizer, q), 1, q) for q in questions]
    assert len({len(r.prompt_ids) for r in requests}) == 3  # really different lengths
    settings = SamplingSettings(temperature=0.0, max_new_tokens=12)
    batched = HFBackend.from_path(str(tiny_model), tokenizer, batch_size=3)
    single = HFBackend.from_path(str(tiny_model), tokenizer, batch_size=1)
    assert batched.generate(requests, settings) == single.generate(requests, settings)


def test_sampling_gives_n_completions_and_stops_at_eos(tiny_model):
    from hicra.models import load_tokenizer

    tokenizer = load_tokenizer(tiny_model)
    backend = HFBackend.from_path(str(tiny_model), tokenizer, batch_size=4)
    prompt = encode_prompt(tokenizer, "Let me verify: 3 + 4 = ?")
    settings = SamplingSettings(max_new_tokens=16)
    out = backend.generate([Request(prompt, 5, "a"), Request(prompt, 2, "b")], settings)
    assert [len(row) for row in out] == [5, 2]
    texts = {c.text for row in out for c in row}
    assert len(texts) > 1  # sampled, not greedy
    # completion bookkeeping: EOS ends a completion and is counted, nothing after it is kept
    eos = tokenizer.eos_token_id
    stopped = backend._completion([5, 6, eos, 7, eos])
    assert (stopped.tokens, stopped.finish_reason) == (3, "stop")
    assert stopped.text == tokenizer.decode([5, 6])
    cut = backend._completion([5, 6, 7])
    assert (cut.tokens, cut.finish_reason) == (3, "length")


def test_prompt_uses_the_chat_template_once(tiny_model):
    from hicra.models import load_tokenizer

    tokenizer = load_tokenizer(tiny_model)
    text = tokenizer.decode(encode_prompt(tokenizer, "What is 2+2?"))
    assert text == (
        "<|im_start|>user\nWhat is 2+2?\n\nPlease reason step by step, and put your final "
        "answer within \\boxed{}.<|im_end|>\n<|im_start|>assistant\n"
    )


def test_backend_choice_without_gpu():
    assert choose_backend("auto") == "hf"  # no vLLM and no GPU on the test machine
    assert choose_backend("hf") == "hf"
    with pytest.raises(Exception, match="unknown backend"):
        choose_backend("tgi")
    import importlib.util

    if importlib.util.find_spec("vllm") is None:
        with pytest.raises(Exception, match=r"pip install 'hicra\[vllm\]'"):
            choose_backend("vllm")


# --------------------------------------------------------------------------- models and errors
def test_run_folders_resolve_to_final_model_else_latest_checkpoint(tiny_model, tmp_path):
    run = tmp_path / "run"
    for name in ("checkpoint-5", "checkpoint-40", "checkpoint-60", "checkpoint-100x"):
        shutil.copytree(tiny_model, run / name)
        if name != "checkpoint-60":  # 60 was cut short while saving: no trainer_state.json
            (run / name / "trainer_state.json").write_text("{}")
    assert resolve_model_path(run) == str(run / "checkpoint-40")
    assert resolve_model_path(run / "checkpoint-5") == str(run / "checkpoint-5")
    shutil.copytree(tiny_model, run / "final_model")
    assert resolve_model_path(run) == str(run / "final_model")
    assert default_output_dir(str(run)) == str(run / "eval")
    assert default_output_dir("Qwen/Qwen3-4B-Base") == "eval-Qwen3-4B-Base"
    results = evaluate(
        _config(run / "checkpoint-5", tmp_path / "out", benchmarks=["gsm8k"], limit=1, samples=1)
    )
    assert results["label"] == "run/checkpoint-5"


def test_model_that_cannot_be_loaded_is_a_clear_error(tiny_model, tmp_path, capsys):
    broken = tmp_path / "broken"
    shutil.copytree(tiny_model, broken)
    (broken / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ModelError, match=f"cannot load the model in '{broken}'"):
        evaluate(_config(broken, tmp_path / "out", benchmarks=["gsm8k"], limit=1, samples=1))
    code = main(["eval", "--model", str(tmp_path / "missing")])
    assert code == 2
    err = capsys.readouterr().err
    assert "hicra eval: error: model folder" in err and "does not exist" in err
    assert "Traceback" not in err


def test_cli_bad_input_is_one_line(tmp_path, capsys):
    assert main(["eval", "--model", "x", "--benchmarks", "mmlu"]) == 2
    assert "hicra eval: error: unknown benchmark 'mmlu'" in capsys.readouterr().err
    assert main(["eval", "--model", "x", "--data-dir", str(tmp_path / "none")]) == 2
    assert "data folder not found" in capsys.readouterr().err
    assert main(["eval"]) == 2
    assert "give --model MODEL" in capsys.readouterr().err


def test_eval_help_names_local_jsonl_benchmarks(capsys):
    with pytest.raises(SystemExit) as done:
        main(["eval", "--help"])
    assert done.value.code == 0
    out = " ".join(capsys.readouterr().out.split())
    start = out.index("--benchmarks BENCHMARKS comma-separated")
    entry = out[start : out.index("--data-dir DATA_DIR", start)]
    assert "local .jsonl files of your own problems" in entry
