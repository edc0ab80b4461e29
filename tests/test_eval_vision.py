"""`hicra eval` for vision-language models: the MathVista / MathVision / MathVerse / EMMA registry
entries, multiple choice checked by letter and by option text, image prompts through the model's
processor, a 3-problem local image benchmark end to end, and bad input."""

from __future__ import annotations

import json

import pytest
import torch

from hicra.errors import HicraError
from hicra.eval.checkers import StrictBoxedChecker, make_checker
from hicra.eval.choices import (
    answer_letter,
    check_with_choices,
    format_choices,
    gold_letter,
    parse_choices,
)
from hicra.eval.registry import (
    PAPER_VISION_BENCHMARKS,
    BenchmarkError,
    get_benchmark,
    load_benchmark,
    problem_from_row,
)
from hicra.eval.runner import EvalConfig, evaluate
from hicra.eval.sampling import Request, SamplingSettings
from hicra.testing.tiny_vision import IMAGE_TOKEN, IMAGE_TOKENS, digit_image, write_digit_benchmark


@pytest.fixture(autouse=True)
def one_thread(one_torch_thread):
    """Tiny models are all overhead: one thread leaves the other core to the answer checker."""


@pytest.fixture
def bench_dir(tmp_path):
    return write_digit_benchmark(tmp_path / "bench")


# --------------------------------------------------------------------------- registry
def test_vision_entries_name_their_hub_data_and_fields():
    assert PAPER_VISION_BENCHMARKS == ("mathvista", "mathvision", "mathverse", "emma")
    hubs = {n: get_benchmark(n).hub for n in PAPER_VISION_BENCHMARKS}
    assert hubs == {
        "mathvista": ("AI4Math/MathVista", None, "testmini"),
        "mathvision": ("MathLLMs/MathVision", None, "test"),
        "mathverse": ("AI4Math/MathVerse", "testmini", "testmini"),
        "emma": ("luckychao/EMMA", "Math", "test"),
    }
    assert all(get_benchmark(n).vision for n in PAPER_VISION_BENCHMARKS)
    assert not get_benchmark("math500").vision
    assert get_benchmark("MathVista_testmini").name == "mathvista"
    assert get_benchmark("math-v").name == "mathvision"
    assert get_benchmark("emma_math").name == "emma"
    assert {get_benchmark(n).default_samples for n in PAPER_VISION_BENCHMARKS} == {1}


def test_local_image_benchmark_loads(bench_dir):
    problems = load_benchmark("mathvista", bench_dir)
    assert [p.id for p in problems] == ["1", "2", "3"]
    free, choice, count = problems
    assert free.choices == () and free.gold == "7" and len(free.images) == 1
    assert free.images[0].path == str((bench_dir / "mathvista" / "images" / "1.png").resolve())
    # MathVista stores the option's text as the gold: it becomes the letter
    assert choice.choices == ("3", "5", "8") and choice.gold == "B"
    assert choice.question == "Which digit is shown?\n\nChoices:\n(A) 3\n(B) 5\n(C) 8"
    assert count.question == "How many squares are there?" and count.gold == "1"
    assert load_benchmark("mathvista", bench_dir, limit=2)[-1].id == "2"


def _save(tmp_path, name, digit):
    digit_image(digit).save(tmp_path / name)
    return name


def test_mathvision_mathverse_and_emma_rows(tmp_path):
    math_v = problem_from_row(
        get_benchmark("mathvision"),
        {
            "id": "9",
            "question": "Which cube? <image1>",
            "options": ["A", "B", "C", "D", "E"],
            "image": _save(tmp_path, "v.png", 1),
            "answer": "C",
        },
        "mv.jsonl, line 1",
        0,
        tmp_path,
    )
    assert math_v.question.endswith(
        "Which cube? Image 1\n\nChoices:\n(A) A\n(B) B\n(C) C\n(D) D\n(E) E"
    )
    assert math_v.gold == "C" and math_v.choices == tuple("ABCDE")
    verse_text = "Find the angle.\nChoices:\nA:50°\nB:40°\nC:80°\nD:100°"
    verse = problem_from_row(
        get_benchmark("mathverse"),
        {
            "sample_index": "1",
            "question": verse_text,
            "image": _save(tmp_path, "w.png", 2),
            "answer": "B",
            "question_type": "multi-choice",
        },
        "verse.jsonl, line 1",
        0,
        tmp_path,
    )
    assert verse.choices == ("50°", "40°", "80°", "100°") and verse.question == verse_text
    only_image = problem_from_row(
        get_benchmark("mathverse"),
        {
            "sample_index": "2",
            "question": "Answer with the option letter.",
            "answer": "D",
            "image": "w.png",
            "question_type": "multi-choice",
        },
        "verse.jsonl, line 2",
        1,
        tmp_path,
    )
    assert only_image.choices == ("A", "B", "C", "D")  # the options are in the image
    free = problem_from_row(
        get_benchmark("mathverse"),
        {
            "sample_index": "3",
            "question": "Find x.",
            "answer": "5",
            "image": "w.png",
            "question_type": "free-form",
        },
        "verse.jsonl, line 3",
        2,
        tmp_path,
    )
    assert free.choices == () and free.gold == "5"
    emma = problem_from_row(
        get_benchmark("emma"),
        {
            "pid": "e1",
            "question": "Which of <image_2> matches <image_1>?",
            "options": ["x", "y"],
            "answer": "A",
            "image_1": _save(tmp_path, "e1.png", 3),
            "image_2": _save(tmp_path, "e2.png", 4),
            "image_3": None,
            "context": "",
        },
        "emma.jsonl, line 1",
        0,
        tmp_path,
    )
    assert len(emma.images) == 2 and emma.gold == "A"
    assert emma.question.startswith("Which of Image 2 matches Image 1?")


def test_bad_benchmark_rows_are_named(bench_dir):
    (bench_dir / "mathvista" / "images" / "2.png").unlink()
    test_file = bench_dir / "mathvista" / "test.jsonl"
    with pytest.raises(
        BenchmarkError, match=rf"mathvista: {test_file}, line 2: image file not found"
    ):
        load_benchmark("mathvista", bench_dir)
    rows = [json.loads(x) for x in test_file.read_text().splitlines()]
    rows[1]["image"] = "images/1.png"
    rows[1]["answer"] = "9"  # neither a letter nor an option's text
    test_file.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(BenchmarkError, match="gold answer '9' is neither an option letter"):
        load_benchmark("mathvista", bench_dir)
    rows[1].pop("image")
    rows[1]["answer"] = "5"
    test_file.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(BenchmarkError, match=r"line 2: no image \(decoded_image / image\)"):
        load_benchmark("mathvista", bench_dir)


def test_local_parquet_with_embedded_images(tmp_path):
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    buffer = io.BytesIO()
    digit_image(6).save(buffer, format="PNG")
    rows = [
        {
            "pid": "1",
            "question": "Digit?",
            "answer": "6",
            "choices": None,
            "decoded_image": {"bytes": buffer.getvalue(), "path": None},
        }
    ]
    (tmp_path / "mathvista").mkdir()
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "mathvista" / "test.parquet")
    (problem,) = load_benchmark("mathvista", tmp_path)
    assert problem.images[0].open().size == (48, 48)
    assert problem.images[0].label.endswith("test.parquet, row 1, field 'decoded_image'")


# --------------------------------------------------------------------------- multiple choice
def test_letters_and_choices_parse():
    assert answer_letter("B", 4) == "B" and answer_letter("(b)", 4) == "B"
    assert answer_letter("Option C", 4) == "C" and answer_letter("D: 100°", 4) == "D"
    assert answer_letter("(A) 50°", 4) == "A" and answer_letter("\\text{B}", 4) == "B"
    assert answer_letter("E", 4) is None  # not one of four options
    assert answer_letter("145", 4) is None and answer_letter("a + b", 4) is None
    assert parse_choices("Q\nChoices:\n(A) 1\n(B) 2\nThen more text") == ("1", "2")
    assert parse_choices("No options here") == ()
    assert gold_letter("145°", ["130°", "145°"]) == "B" and gold_letter("(c)", "xyz") == "C"
    assert format_choices(["1", "2"]) == "Choices:\n(A) 1\n(B) 2"


@pytest.mark.parametrize("checker_name", ["strict-boxed", "math-verify"])
def test_multiple_choice_is_checked_by_letter_and_by_text(checker_name):
    checker = make_checker(checker_name, workers=1)
    choices = ("130", "145", "160")
    cases = [
        ("So the answer is \\boxed{B}.", True),
        ("\\boxed{(B) 145}", True),
        ("\\boxed{145}", True),  # the option's text
        ("Answer: B", True),
        ("\\boxed{160}", False),  # another option's text
        ("\\boxed{C}", False),
        ("I think it is B.", False),  # no explicit final answer
    ]
    try:
        verdicts = check_with_choices(
            checker,
            [c for c, _ in cases] + ["\\boxed{7}"],
            ["B"] * len(cases) + ["7"],
            [choices] * len(cases) + [()],  # a free-form problem in the same batch
        )
    finally:
        checker.close()
    assert [v.correct for v in verdicts] == [ok for _, ok in cases] + [True]
    assert verdicts[0].answer == "B" and verdicts[-2].status == "no_answer"


# --------------------------------------------------------------------------- end to end
def test_vision_backend_builds_image_prompts(tiny_vlm_dir, bench_dir):
    from hicra.eval.vision import HFVisionBackend

    backend = HFVisionBackend.from_vision_path(str(tiny_vlm_dir), batch_size=4)
    problems = load_benchmark("mathvista", bench_dir)
    requests = [Request([1], 1, p.id, images=p.images, question=p.question) for p in problems]
    inputs = backend._model_inputs(requests)
    image_id = backend.tokenizer.convert_tokens_to_ids(IMAGE_TOKEN)
    assert ((inputs["input_ids"] == image_id).sum(dim=1) == IMAGE_TOKENS).all()
    assert inputs["pixel_values"].shape[:2] == (3, 1)
    assert (inputs["attention_mask"][:, -1] == 1).all()  # left padding
    greedy = SamplingSettings(temperature=0.0, max_new_tokens=6)
    a, b = backend.generate(requests, greedy), backend.generate(requests, greedy)
    assert [c[0].text for c in a] == [c[0].text for c in b]  # greedy is deterministic
    # the image is read: other pixels, other logits for the same question
    other = Request([1], 1, "x", images=problems[1].images, question=problems[0].question)
    with torch.no_grad():
        logits = [
            backend.model(**backend._model_inputs([r])).logits[0, -1] for r in (requests[0], other)
        ]
    assert not torch.allclose(logits[0], logits[1])
    # a text question and image questions in one call (one batch: TRL mixes them too)
    text = Request(backend.tokenizer("What is 2 + 2?")["input_ids"], 2, "t", question="2 + 2?")
    mixed = backend.generate([requests[0], text, requests[1]], greedy)
    assert [len(c) for c in mixed] == [1, 2, 1]
    assert mixed[0][0].text == a[0][0].text  # the same greedy completion as in an image-only call


def test_evaluate_a_vlm_on_the_local_image_benchmark(tiny_vlm_dir, bench_dir, tmp_path):
    out = tmp_path / "out"
    config = EvalConfig(
        model=str(tiny_vlm_dir),
        benchmarks=["mathvista"],
        output_dir=str(out),
        data_dir=str(bench_dir),
        samples=2,
        max_new_tokens=6,
        checker="strict-boxed",
        progress=False,
    )
    results = evaluate(config)
    bench = results["benchmarks"]["mathvista"]
    assert bench["problems"] == 3 and bench["samples"] == 2 and results["backend"] == "hf"
    rows = [json.loads(x) for x in (out / "samples.jsonl").read_text().splitlines()]
    assert sorted((r["id"], r["sample"]) for r in rows) == [(i, s) for i in "123" for s in (0, 1)]
    # rerunning resumes: nothing new is generated
    again = evaluate(config)
    assert again["timing"]["generated_problems"] == 0


def test_vlm_on_a_text_benchmark(tiny_vlm_dir, tmp_path):
    (tmp_path / "gsm8k").mkdir()
    rows = [{"question": f"What is {i} + 1?", "answer": f"#### {i + 1}"} for i in range(2)]
    (tmp_path / "gsm8k" / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    config = EvalConfig(
        model=str(tiny_vlm_dir),
        benchmarks=["gsm8k"],
        output_dir=str(tmp_path / "out"),
        data_dir=str(tmp_path),
        max_new_tokens=4,
        checker="strict-boxed",
        progress=False,
    )
    assert evaluate(config)["benchmarks"]["gsm8k"]["problems"] == 2


def test_text_model_on_an_image_benchmark_is_refused(tiny_model_dir, bench_dir, tmp_path):
    config = EvalConfig(
        model=str(tiny_model_dir),
        benchmarks=["mathvista"],
        output_dir=str(tmp_path / "out"),
        data_dir=str(bench_dir),
        progress=False,
    )
    with pytest.raises(
        HicraError,
        match=r"benchmarks mathvista have images, but the model .* "
        r"\(Qwen2ForCausalLM\) reads text only",
    ):
        evaluate(config)
    assert not (tmp_path / "out").exists()


def test_strict_checker_unchanged_for_free_form():
    verdicts = check_with_choices(StrictBoxedChecker(), ["\\boxed{12}"], ["12"], [()])
    assert verdicts[0].correct and verdicts[0].answer == "12"


def test_vision_prompts_follow_the_prompt_style():
    """`--prompt-of RUN` reaches vision-language prompts too: system prompt and few-shot turns as
    text, the images in the last user turn, the run's own instruction after the question."""
    from hicra.prompts import BOXED_INSTRUCTION, PromptStyle

    plain = PromptStyle().vision_messages("How many?", 2)
    assert [m["role"] for m in plain] == ["user"]
    assert [b["type"] for b in plain[0]["content"]] == ["image", "image", "text"]
    assert plain[0]["content"][-1]["text"] == f"How many?\n\n{BOXED_INSTRUCTION}"
    style = PromptStyle("Be brief.", "Box it.", (("1+1?", "\\boxed{2}"),))
    styled = style.vision_messages("How many?", 1)
    assert [m["role"] for m in styled] == ["system", "user", "assistant", "user"]
    assert styled[1]["content"] == [{"type": "text", "text": "1+1?\n\nBox it."}]
    assert [b["type"] for b in styled[-1]["content"]] == ["image", "text"]
    assert styled[-1]["content"][-1]["text"] == "How many?\n\nBox it."


def test_a_local_jsonl_with_images_is_read_for_a_vlm_and_refused_for_a_text_model(
    tiny_vlm_dir, tiny_model_dir, tmp_path
):
    """Issue 29: `hicra eval` never read the image field of a local .jsonl; a VLM was asked "How
    many dots?" without the picture and a text model scored image rows as text. Now the field is
    found as training finds it (`images` or `image`), text rows beside image rows stay text."""
    folder = tmp_path / "mine"
    (folder / "img").mkdir(parents=True)
    _save(folder / "img", "7.png", 7)
    rows = [
        {"question": "Which digit is shown?", "answer": "7", "image": "img/7.png"},
        {"question": "What is 2 + 2?", "answer": "4", "image": None},
    ]
    file = folder / "digits.jsonl"
    file.write_text("".join(json.dumps(r) + "\n" for r in rows))
    bench = get_benchmark(str(file))
    assert (
        bench.vision
        and bench.image_rows == f"1 of 2 rows, field 'image'; the first: {file}, line 1"
    )
    shown, text = load_benchmark(bench)
    assert [s.path for s in shown.images] == [str((folder / "img" / "7.png").resolve())]
    assert text.images == () and text.question == "What is 2 + 2?"
    out = tmp_path / "out"
    config = EvalConfig(
        model=str(tiny_vlm_dir),
        benchmarks=[str(file)],
        output_dir=str(out),
        max_new_tokens=4,
        checker="strict-boxed",
        progress=False,
    )
    assert evaluate(config)["benchmarks"]["digits"]["problems"] == 2
    with pytest.raises(
        HicraError,
        match=r"benchmarks digits \(1 of 2 rows, field 'image'; the first: .*digits\.jsonl, line 1\)"
        r" have images, but the model .* reads text only",
    ):
        evaluate(
            EvalConfig(
                model=str(tiny_model_dir), benchmarks=[str(file)], output_dir=str(tmp_path / "t")
            )
        )
    assert not (tmp_path / "t").exists()
    # a file without image values stays a text benchmark
    plain = folder / "plain.jsonl"
    plain.write_text(json.dumps({"question": "1 + 1?", "answer": "2", "image": ""}) + "\n")
    assert not get_benchmark(str(plain)).vision
