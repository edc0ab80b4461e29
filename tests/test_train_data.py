import csv
import json

import pytest

from hicra.answers import gold_answer
from hicra.eval.registry import bundled_file, get_benchmark
from hicra.train.data import DataError, DataSpec, PromptStyle, build_dataset, load_rows
from tests.conftest import FIXTURES


@pytest.mark.parametrize(
    ("value", "gold"),
    [
        ("Natalia sold 48/2 = 24 clips.\n#### 1,072", "1072"),
        (r"So the area is $\boxed{\frac{1}{2}}$.", r"\frac{1}{2}"),
        (27.0, "27"),
        (0.5, "0.5"),
        (["3", "5"], "3, 5"),
        (" 42 ", "42"),
        ("", None),
        (None, None),
        (float("nan"), None),
    ],
)
def test_gold_answer_formats(value, gold):
    assert gold_answer(value) == gold


def test_prompt_style_builds_chat_messages():
    style = PromptStyle("sys", "Box it.", (("1+1?", "\\boxed{2}"),))
    assert style.messages("2+2?") == [
        {"role": "system", "content": "sys"},
        {"role": "user", "content": "1+1?\n\nBox it."},
        {"role": "assistant", "content": "\\boxed{2}"},
        {"role": "user", "content": "2+2?\n\nBox it."},
    ]
    assert PromptStyle(instruction="").messages(" q ") == [{"role": "user", "content": "q"}]


def test_local_formats_give_the_same_rows(tmp_path):
    rows = [{"problem": f"Q{i}", "solution": f"so \\boxed{{{i}}}"} for i in range(3)]
    (tmp_path / "a.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "a.json").write_text(json.dumps(rows))
    with open(tmp_path / "a.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["problem", "solution"])
        writer.writeheader()
        writer.writerows(rows)
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "a.parquet")
    expected = [("Q0", "0"), ("Q1", "1"), ("Q2", "2")]
    for suffix in ("jsonl", "json", "csv", "parquet"):
        got, _ = load_rows(DataSpec(str(tmp_path / f"a.{suffix}")))
        assert [(r["question"], r["answer"]) for r in got] == expected, suffix
        assert all(r["task"] == "math" for r in got)


def test_real_benchmark_files_gsm8k_and_math():
    """GSM8K train rows (the committed fixture: its first 100) and the bundled, gzip MATH test."""
    gsm, _ = load_rows(DataSpec(str(FIXTURES / "gsm8k"), split="train"))
    assert len(gsm) == 100
    assert gsm[0]["answer"] == "72" and gsm[0]["question"].startswith("Natalia")
    assert gsm[1]["answer"] == "10" and gsm[1]["id"] == "2"  # no id field: the line number
    math_test = bundled_file(get_benchmark("math"))
    assert math_test is not None and math_test.name == "test.jsonl.gz"
    math, _ = load_rows(DataSpec(str(math_test), limit=1))
    assert math[0]["answer"] == "2"  # MATH's solution field: the boxed answer
    whole, _ = load_rows(DataSpec(str(math_test.parent), split="test"))  # folder: test.jsonl.gz
    assert len(whole) == 5000


def test_reasoning_gym_rows_and_dataset():
    spec = DataSpec("rg:chain_sum", kwargs={"min_digits": 1, "max_digits": 1}, size=5, seed=1)
    dataset, _ = build_dataset(spec, PromptStyle(instruction="Box it."))
    assert len(dataset) == 5
    row = dataset[0]
    assert row["task"] == "rg:chain_sum"
    entry = json.loads(row["rg_entry"])
    assert entry["answer"] == row["answer"] and row["prompt"][-1]["role"] == "user"


def write_rows(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_bad_rows_are_named_or_skipped(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text('{"question": "a", "answer": "1"}\n{"question": "b", "answer": ""}\n')
    with pytest.raises(DataError, match=r"d\.jsonl, line 2: field 'answer' is empty"):
        load_rows(DataSpec(str(path)))
    rows, stats = load_rows(DataSpec(str(path), skip_bad_rows=True))
    assert len(rows) == 1 and stats.skipped_count == 1


def test_unusable_sources_are_clear(tmp_path):
    with pytest.raises(DataError, match="no question field: none of question, problem"):
        load_rows(DataSpec(str(write_rows(tmp_path / "x.jsonl", [{"text": "q"}]))))
    with pytest.raises(DataError, match=r"unsupported file type '\.txt'"):
        load_rows(DataSpec(str(write_rows(tmp_path / "x.txt", []))))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"has no train\.jsonl"):
        load_rows(DataSpec(str(tmp_path / "empty")))


def test_reasoning_gym_task_that_breaks_on_json_is_refused():
    """A real task whose scorer needs a Python set in its metadata: JSON turns it into a list."""
    from dataclasses import dataclass

    import reasoning_gym
    from reasoning_gym.dataset import ProceduralDataset

    @dataclass
    class SetConfig:
        seed: int | None = None
        size: int = 3

    class SetTask(ProceduralDataset):
        def __init__(self, config: SetConfig):
            super().__init__(config=config, seed=config.seed, size=config.size)

        def __getitem__(self, idx):
            return {"question": "Name the set.", "answer": "1", "metadata": {"items": {1}}}

        def score_answer(self, answer, entry):
            return 1.0 if isinstance(entry["metadata"]["items"], set) and answer == "1" else 0.0

    reasoning_gym.factory.register_dataset("hicra_test_set_task", SetTask, SetConfig)
    with pytest.raises(DataError, match=r"own gold answer scores 0\.0"):
        load_rows(DataSpec("rg:hicra_test_set_task", size=3))


def test_user_rewards_get_every_column_as_it_is(tmp_path):
    """With --reward-funcs, the file's columns reach the rewards unchanged (None where a row lacks
    one), and no gold answer is needed."""
    rows = [
        {"question": "Make 6 from 1, 2, 3", "numbers": [1, 2, 3], "target": 6, "level": "easy"},
        {"question": "Make 9 from 2, 3, 3", "numbers": [2, 3, 3], "target": 9},
    ]
    path = write_rows(tmp_path / "t.jsonl", rows)
    spec = DataSpec(str(path), keep_columns=True, answer_required=False)
    dataset, _ = build_dataset(spec, PromptStyle())
    assert list(dataset["numbers"]) == [[1, 2, 3], [2, 3, 3]]
    assert list(dataset["target"]) == [6, 9] and list(dataset["level"]) == ["easy", None]
    assert list(dataset["answer"]) == ["6", "9"]  # `target` as text, for the rollouts
    assert list(dataset["id"]) == ["1", "2"]  # the line, for messages that name a row
    # an answer column is kept as the file has it (GSM8K's "#### 4" is not parsed for them)
    write_rows(path, [{"question": "q", "answer": "so #### 4"}])
    dataset, _ = build_dataset(spec, PromptStyle())
    assert list(dataset["answer"]) == ["so #### 4"]
    # without user rewards (hicra's accuracy), the gold answer is still required and parsed
    with pytest.raises(DataError, match="no answer field"):
        build_dataset(DataSpec(str(write_rows(path, [{"question": "q", "n": 1}]))), PromptStyle())
    dataset, _ = build_dataset(
        DataSpec(str(write_rows(path, [{"question": "q", "answer": "so #### 4"}]))), PromptStyle()
    )
    assert list(dataset["answer"]) == ["4"] and "numbers" not in dataset.column_names
