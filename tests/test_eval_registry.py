"""The benchmark registry on the bundled data: sources, fields, gold answers, self-verification,
bad input."""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hicra.answers import MathVerifier, verify_extracted
from hicra.errors import HicraError
from hicra.eval.checkers import StrictBoxedChecker, make_checker
from hicra.eval.registry import (
    BENCHMARKS,
    PAPER_BENCHMARKS,
    BenchmarkError,
    bundled_file,
    get_benchmark,
    load_benchmark,
    locate,
    parse_benchmarks,
    source_of,
)
from hicra.jsonl import read_jsonl
from hicra.prompts import BOXED_INSTRUCTION, user_prompt

# benchmark -> (problems in the bundled file, first problem's id, its gold answer)
EXPECTED = {
    "aime24": (30, "60", "204"),
    "aime25": (30, "0", "70"),
    "math500": (500, "test/precalculus/807.json", r"\left( 3, \frac{\pi}{2} \right)"),
    "amc23": (40, "0", "27"),  # stored as the float 27.0
    "minerva": (272, "0", r"1.6"),
    "olympiadbench": (675, "1606", "2"),
    "gsm8k": (1319, "0", "18"),  # "... #### 18"
    "math": (5000, "0", "2"),
}

# Gold answers that do not verify against themselves, with the reason: (benchmark, id, checker).
# Every bundled gold self-verifies today with both checkers, wrapped as a completion and (for
# math-verify) parsed by math-verify alone; a new failure must be listed here with its reason.
KNOWN_SELF_VERIFY_FAILURES: dict[tuple[str, str, str], str] = {}


@pytest.fixture(scope="module")
def problems():
    return {name: load_benchmark(name) for name, b in BENCHMARKS.items() if not b.vision}  # bundled


@pytest.fixture(scope="module")
def verifier():
    v = MathVerifier(workers=2, timeout=5.0)
    yield v
    v.close()


def test_names_aliases_and_defaults():
    assert (
        list(BENCHMARKS)[:6]
        == list(PAPER_BENCHMARKS)
        == [
            "aime24",
            "aime25",
            "math500",
            "amc23",
            "minerva",
            "olympiadbench",
        ]
    )
    assert get_benchmark("minerva_math").name == "minerva"  # the folder name works too
    assert get_benchmark("MATH500").name == "math500"
    assert get_benchmark("olympiad").folder == "olympiadbench"
    assert [b.name for b in parse_benchmarks("math500, aime24,math500")] == ["math500", "aime24"]
    samples = {name: b.default_samples for name, b in BENCHMARKS.items()}
    assert samples["aime24"] == samples["aime25"] == 32 and samples["amc23"] == 4
    assert {samples[n] for n in ("math500", "minerva", "olympiadbench", "gsm8k", "math")} == {1}
    with pytest.raises(BenchmarkError, match=r"unknown benchmark 'mmlu'.*known: aime24"):
        get_benchmark("mmlu")
    with pytest.raises(BenchmarkError, match="no benchmark"):
        parse_benchmarks(" , ")


def test_prompt_carries_the_shared_boxed_instruction():
    assert BOXED_INSTRUCTION == (
        "Please reason step by step, and put your final answer within \\boxed{}."
    )
    assert user_prompt("  What is 1+1? ") == "What is 1+1?\n\n" + BOXED_INSTRUCTION


def test_evaluation_prompt_is_the_training_prompt():
    """Scores mean something only if the model is asked as it was trained (hicra.train.data)."""
    from hicra.train import data

    assert data.BOXED_INSTRUCTION == BOXED_INSTRUCTION
    question = " Find $x$ if $2x = 6$. "
    assert data.PromptStyle().messages(question) == [
        {"role": "user", "content": user_prompt(question)}
    ]


def test_every_bundled_benchmark_loads_with_its_fields(problems):
    for name, (count, first_id, first_gold) in EXPECTED.items():
        loaded = problems[name]
        assert len(loaded) == count, name
        assert (loaded[0].id, loaded[0].gold) == (first_id, first_gold), name
        assert all(p.question and p.gold for p in loaded), name
        assert len({p.id for p in loaded}) == count, name
    # gsm8k: thousands separators leave plain numbers ("1,450,000" would read as a tuple)
    assert all("," not in p.gold for p in problems["gsm8k"])
    # olympiadbench: several answers in one list entry lose their "$" and stay comma-separated
    multi = {p.id: p.gold for p in problems["olympiadbench"]}
    assert multi["1664"] == "69,84" and multi["1618"] == "(1,8,19), (2,7,13), (4,5,7)"
    assert load_benchmark("aime24", limit=3)[-1].id == "62"


def _failures(name, loaded, verdicts, checker):
    return {
        (name, p.id, checker)
        for p, verdict in zip(loaded, verdicts, strict=True)
        if not verdict.correct
    }


@pytest.mark.parametrize("checker_name", ["strict-boxed", "math-verify"])
def test_gold_answers_verify_against_themselves(problems, verifier, checker_name):
    """Each gold, written as a completion ending in \\boxed{gold}, is graded correct."""
    checker = StrictBoxedChecker() if checker_name == "strict-boxed" else verifier
    failed = set()
    for name, loaded in problems.items():
        completions = [f"Putting it together, the answer is $\\boxed{{{p.gold}}}$." for p in loaded]
        verdicts = checker.check_many(completions, [p.gold for p in loaded])
        failed |= _failures(name, loaded, verdicts, checker_name)
    known = {key for key in KNOWN_SELF_VERIFY_FAILURES if key[2] == checker_name}
    assert failed <= known, sorted(failed - known)[:20]


def test_math_verify_alone_parses_every_gold_as_equal_to_itself(problems, verifier):
    """Without the string shortcut: math-verify must parse each gold, or equivalent answers in
    another notation could never be recognized. The full MATH test set is left to its MATH-500
    subset here (5,000 more sympy checks would cost half a minute on two cores)."""
    failed = set()
    for name, loaded in problems.items():
        if name == "math":
            continue
        golds = [p.gold for p in loaded]
        verdicts = verify_extracted(verifier, golds, golds)
        failed |= _failures(name, loaded, verdicts, "math-verify")
    known = {key for key in KNOWN_SELF_VERIFY_FAILURES if key[2] == "math-verify"}
    assert failed <= known, sorted(failed - known)[:20]


def test_reference_solutions_grade_correct_with_math_verify(problems, verifier):
    """The datasets' own worked solutions (GSM8K's '#### n', MATH/Minerva boxes) score 1."""
    rows = {}
    for name, field in (("gsm8k", "answer"), ("minerva", "solution"), ("math500", "solution")):
        path = bundled_file(get_benchmark(name))
        rows[name] = [row[field] for _, row in read_jsonl(path)]
    for name, solutions in rows.items():
        golds = [p.gold for p in problems[name]]
        verdicts = verifier.check_many(solutions, golds)
        wrong = [p.id for p, v in zip(problems[name], verdicts, strict=True) if not v.correct]
        assert wrong == [], (name, wrong[:10])


def test_checker_names():
    assert make_checker("strict-boxed").name == "strict-boxed"
    with pytest.raises(HicraError, match="unknown checker"):
        make_checker("exact")


def test_strict_boxed_is_the_papers_protocol():
    checker = StrictBoxedChecker()
    verdicts = checker.check_many(
        [r"so \boxed{27.0}", "Final answer: 27", r"\boxed{\dfrac{1}{2}}", r"\boxed{0.5}"],
        ["27", "27", r"\frac{1}{2}", r"\frac12"],
    )
    assert [(v.correct, v.status) for v in verdicts] == [
        (True, "ok"),
        (False, "no_answer"),  # only \boxed{} counts under the strict protocol
        (True, "ok"),
        (False, "ok"),  # no symbolic equivalence
    ]


# --------------------------------------------------------------------------- bad input
def _write(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def test_missing_data_folder_and_file_are_named(tmp_path):
    with pytest.raises(BenchmarkError, match=r"data folder not found: .*nowhere"):
        load_benchmark("gsm8k", tmp_path / "nowhere")
    with pytest.raises(BenchmarkError, match=r"minerva: no minerva_math/test.jsonl \(or test"):
        load_benchmark("minerva", tmp_path)


def test_row_without_answer_field_names_benchmark_file_and_line(tmp_path):
    path = tmp_path / "gsm8k" / "test.jsonl"
    _write(
        path,
        [
            json.dumps({"question": "1+1?", "answer": "so #### 2"}),
            json.dumps({"question": "2+2?", "solution": "4"}),
        ],
    )
    with pytest.raises(BenchmarkError) as err:
        load_benchmark("gsm8k", tmp_path)
    message = str(err.value)
    assert message.startswith("gsm8k: ") and f"{path}, line 2" in message
    assert "no answer field (answer)" in message and "fields present: question, solution" in message


def test_unusable_gold_values_are_explained(tmp_path):
    _write(tmp_path / "gsm8k" / "test.jsonl", [json.dumps({"question": "q", "answer": "4"})])
    with pytest.raises(BenchmarkError, match=r"line 1: .*'answer': no '#### answer' line"):
        load_benchmark("gsm8k", tmp_path)
    _write(
        tmp_path / "minerva_math" / "test.jsonl",
        [json.dumps({"problem": "q", "solution": "the answer is 4"})],
    )
    with pytest.raises(BenchmarkError, match=r"minerva: .*'solution': no \\boxed\{\} answer"):
        load_benchmark("minerva", tmp_path)
    _write(
        tmp_path / "olympiadbench" / "test.jsonl",
        [json.dumps({"question": "q", "final_answer": []})],
    )
    with pytest.raises(BenchmarkError, match="non-empty list"):
        load_benchmark("olympiadbench", tmp_path)


def test_missing_question_invalid_json_and_duplicate_ids(tmp_path):
    path = tmp_path / "aime24" / "test.jsonl"
    _write(path, [json.dumps({"id": 1, "answer": "3"})])
    with pytest.raises(BenchmarkError, match=r"aime24: .*line 1: no question field"):
        load_benchmark("aime24", tmp_path)
    _write(path, [json.dumps({"id": 1, "problem": "p", "answer": "3"}), '{"id": 2, "prob'])
    with pytest.raises(BenchmarkError, match=r"aime24: .*test.jsonl, line 2: invalid JSON"):
        load_benchmark("aime24", tmp_path)
    _write(
        path,
        [json.dumps({"id": 7, "problem": "p", "answer": "3"}) for _ in range(2)],
    )
    with pytest.raises(BenchmarkError, match=r"line 2: duplicate problem id '7' \(first at"):
        load_benchmark("aime24", tmp_path)
    _write(path, [])
    with pytest.raises(BenchmarkError, match="holds no problems"):
        load_benchmark("aime24", tmp_path)


def test_rows_without_ids_are_numbered_and_floats_become_numbers(tmp_path):
    _write(
        tmp_path / "amc23" / "test.jsonl",
        [
            json.dumps({"problem": "a", "answer": 27.0}),
            json.dumps({"problem": "b", "answer": 2.5}),
            json.dumps({"question": "c", "answer": "1,000"}),
        ],
    )
    loaded = load_benchmark("amc23", tmp_path)
    assert [(p.id, p.question, p.gold) for p in loaded] == [
        ("0", "a", "27"),
        ("1", "b", "2.5"),
        ("2", "c", "1000"),
    ]


def test_hub_is_the_fallback_and_offline_it_points_at_data_dir():
    """Without a bundled copy the hub is tried; offline that ends in one clear line."""
    code = (
        "import hicra.eval.registry as registry\n"
        "from hicra.errors import HicraError\n"
        "registry.bundled_dir = lambda: None  # an install without the bundled copies\n"
        "print('SOURCE', registry.source_of(registry.get_benchmark('math500'), None))\n"
        "try:\n"
        "    registry.load_benchmark('math500')\n"
        "except HicraError as err:\n"
        "    print('ERROR', err)\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert "SOURCE hub:HuggingFaceH4/MATH-500, split test" in done.stdout
    assert "ERROR math500: cannot load HuggingFaceH4/MATH-500, split test" in done.stdout
    assert "pass --data-dir DIR with math500/test.jsonl" in done.stdout
    assert "Traceback" not in done.stderr


# --------------------------------------------------------------------------- where data comes from
def test_every_benchmark_is_bundled_and_read_from_the_bundled_copy():
    for bench in (b for b in BENCHMARKS.values() if not b.vision):
        label, path = locate(bench, None)
        assert path == bundled_file(bench) and path is not None, bench.name
        assert path.parent.name == bench.folder and path.name == "test.jsonl.gz"
        assert label == f"bundled:{bench.folder}/test.jsonl.gz"
    assert source_of(get_benchmark("minerva"), None) == "bundled:minerva_math/test.jsonl.gz"
    mathvista = get_benchmark("mathvista")
    assert bundled_file(mathvista) is None and locate(mathvista, None)[0].startswith("hub:")


def test_data_dir_overrides_the_bundled_copy(tmp_path):
    path = tmp_path / "aime24" / "test.jsonl"
    _write(path, [json.dumps({"id": "mine", "problem": "1+1?", "answer": "2"})])
    assert [(p.id, p.gold) for p in load_benchmark("aime24", tmp_path)] == [("mine", "2")]
    assert source_of(get_benchmark("aime24"), tmp_path) == str(path)
    # a copy of the bundled layout works as --data-dir too: test.jsonl.gz is read when there is
    # no test.jsonl
    shutil.copy(bundled_file(get_benchmark("amc23")), tmp_path / "amc23.gz")
    (tmp_path / "amc23").mkdir()
    (tmp_path / "amc23.gz").rename(tmp_path / "amc23" / "test.jsonl.gz")
    assert load_benchmark("amc23", tmp_path) == load_benchmark("amc23")
    assert source_of(get_benchmark("amc23"), tmp_path) == str(tmp_path / "amc23/test.jsonl.gz")


def test_a_damaged_compressed_file_names_file_and_line(tmp_path):
    rows = [json.dumps({"id": i, "problem": f"p{i}", "answer": str(i)}) for i in range(400)]
    data = gzip.compress("".join(r + "\n" for r in rows).encode())
    path = tmp_path / "aime24" / "test.jsonl.gz"
    path.parent.mkdir()
    path.write_bytes(data[: len(data) * 2 // 3])  # cut short, as by an interrupted copy
    with pytest.raises(BenchmarkError, match=r"aime24: .*test.jsonl.gz, line \d+: damaged gzip"):
        load_benchmark("aime24", tmp_path)
    with pytest.raises(BenchmarkError) as err:
        load_benchmark("aime24", tmp_path)
    line = int(re.search(r"line (\d+)", str(err.value)).group(1))
    assert 100 < line < 400  # where the data ends, not the start of a 1 MiB read
    assert len(load_benchmark("aime24", tmp_path, limit=line - 1)) == line - 1  # all before reads
