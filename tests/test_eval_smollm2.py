"""The real bundled SmolLM2-135M-Instruct on 20 bundled GSM8K problems via `hicra eval` (CPU)."""

from __future__ import annotations

import json
import re

import pytest

from hicra.cli import main

MAX_NEW_TOKENS = 64  # greedy and short: about 15 s on two idle cores


def _words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z]{5,}", text.lower())}


@pytest.mark.slow
def test_smollm2_on_20_gsm8k_problems(tmp_path, capsys):
    from hicra.eval.registry import load_benchmark
    from hicra.prompts import BOXED_INSTRUCTION

    out = tmp_path / "eval"
    argv = [
        "eval",
        "--model",
        "smollm2-135m",
        "--benchmarks",
        "gsm8k",  # the bundled copy: no --data-dir
        "--limit",
        "20",
        "--temperature",
        "0",
        "--max-new-tokens",
        str(MAX_NEW_TOKENS),
        "--batch-size",
        "20",
        "--output-dir",
        str(out),
        "--no-progress",
    ]
    assert main(argv) == 0
    problems = load_benchmark("gsm8k", limit=20)
    with open(out / "samples.jsonl", encoding="utf-8") as handle:
        rows = [json.loads(line) for line in handle]
    assert sorted(r["id"] for r in rows) == sorted(p.id for p in problems)
    rows.sort(key=lambda r: int(r["id"]))  # written shortest prompt first
    results = json.loads((out / "results.json").read_text())
    gsm = results["benchmarks"]["gsm8k"]
    assert gsm["problems"] == 20 and gsm["samples"] == 1
    assert gsm["source"] == "bundled:gsm8k/test.jsonl.gz"
    assert gsm["avg@k"] == sum(r["correct"] for r in rows) / 20
    instruction = _words(BOXED_INSTRUCTION)
    on_topic = 0
    for row, problem in zip(rows, problems, strict=True):
        text = row["completion"]
        assert text.strip() and "<|im_end|>" not in text and "<|im_start|>" not in text
        assert 1 <= row["tokens"] <= MAX_NEW_TOKENS
        assert row["finish_reason"] == "stop" or row["tokens"] == MAX_NEW_TOKENS
        on_topic += bool((_words(problem.question) - instruction) & _words(text))
    # the model really read the chat-templated question: its answers talk about the problem
    assert on_topic >= 15, on_topic
    capsys.readouterr()
    # rerunning the same command resumes: nothing is generated again, the scores are the same
    assert main(argv) == 0
    again = json.loads((out / "results.json").read_text())
    assert again["timing"]["generated_problems"] == 0
    assert again["benchmarks"] == results["benchmarks"]
