"""The fault probes of issue #20 as regression tests: benchmark identity and the sample cache,
prompts longer than the model's context, image fields found over the whole dataset, and messages
that say what is actually wrong. Each failed on the code before the fix."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest

from hicra.cli import main
from hicra.eval.registry import BenchmarkError, load_benchmark, parse_benchmarks
from hicra.jsonl import read_jsonl
from hicra.run_folder import checkpoint_step, last_complete_checkpoint
from hicra.train.data import DataError, DataSpec, PromptStyle, build_dataset, load_rows
from tests.test_train_cli import metric_steps, tiny_args, write_jsonl

LONG_QUESTION = "How many apples are there if " + "one apple and " * 7200 + "one more?"  # 100 kB


@pytest.fixture(autouse=True)
def one_thread(one_torch_thread):
    """Tiny models are all overhead: one thread leaves the other core to the answer checker."""


def questions(start: int, count: int) -> list[dict[str, str]]:
    return [{"question": f"What is {i} + 1?", "answer": str(i + 1)} for i in range(start, count)]


def eval_args(model, benchmarks, out, *extra):
    return [
        "eval",
        "--model",
        str(model),
        "--benchmarks",
        benchmarks,
        "--output-dir",
        str(out),
        "--max-new-tokens",
        "4",
        "--samples",
        "1",
        "--checker",
        "strict-boxed",
        "--no-progress",
        *extra,
    ]


def timing(out) -> tuple[int, int]:
    done = json.loads((out / "results.json").read_text())["timing"]
    return done["resumed_problems"], done["generated_problems"]


# ----------------------------------------------------------------- 1. benchmark identity
def test_two_files_of_one_name_are_both_evaluated(tiny_model_dir, tmp_path):
    """`--benchmarks d1/test.jsonl,d2/test.jsonl` evaluated d1 only: both are named "test"."""
    d1 = write_jsonl((tmp_path / "d1").mkdir() or tmp_path / "d1" / "test.jsonl", questions(0, 2))
    d2 = write_jsonl((tmp_path / "d2").mkdir() or tmp_path / "d2" / "test.jsonl", questions(5, 8))
    out = tmp_path / "eval"
    assert main(eval_args(tiny_model_dir, f"{d1},{d2}", out)) == 0
    results = json.loads((out / "results.json").read_text())["benchmarks"]
    assert {name: b["problems"] for name, b in results.items()} == {"d1-test": 2, "d2-test": 3}
    assert results["d1-test"]["content_hash"] != results["d2-test"]["content_hash"]
    rows = [row for _, row in read_jsonl(out / "samples.jsonl")]
    assert sorted(r["benchmark"] for r in rows) == ["d1-test"] * 2 + ["d2-test"] * 3
    # the same file twice is still one benchmark, under its plain name
    assert [b.name for b in parse_benchmarks([str(d1), str(d1)])] == ["test"]


def test_cached_samples_are_reused_only_for_the_same_question_and_gold(tiny_model_dir, tmp_path):
    """d1/test.jsonl then d2/test.jsonl into one folder reported d1's samples as d2's results,
    and an edited file's old samples were scored for its new questions."""
    (tmp_path / "d1").mkdir()
    (tmp_path / "d2").mkdir()
    d1 = write_jsonl(tmp_path / "d1" / "test.jsonl", questions(0, 3))
    d2 = write_jsonl(tmp_path / "d2" / "test.jsonl", questions(10, 13))  # same ids 0, 1, 2
    out = tmp_path / "eval"
    assert main(eval_args(tiny_model_dir, str(d1), out)) == 0
    assert timing(out) == (0, 3)
    assert main(eval_args(tiny_model_dir, str(d2), out)) == 0
    assert timing(out) == (0, 3)  # nothing of d1's is d2's
    golds = {r["gold"] for _, r in read_jsonl(out / "samples.jsonl") if r["problem_hash"]}
    assert golds == {"1", "2", "3", "11", "12", "13"}
    assert main(eval_args(tiny_model_dir, str(d1), out)) == 0
    assert timing(out) == (3, 0)  # unchanged problems: all reused
    edited = questions(0, 3)
    edited[1]["question"] = "What is 1 + 1 + 0?"  # an edited question
    edited[2]["answer"] = "30"  # an edited gold answer
    write_jsonl(d1, edited)
    assert main(eval_args(tiny_model_dir, str(d1), out)) == 0
    assert timing(out) == (1, 2)
    scored = json.loads((out / "results.json").read_text())["benchmarks"]["test"]
    assert scored["problems"] == 3


def test_compare_says_when_one_name_holds_other_problems():
    from hicra.eval.results import compare_table

    def results(content_hash: str, score: float) -> dict:
        bench = {"title": "test", "avg@k": score, "problems": 2, "samples": 1}
        return {"label": "m", "benchmarks": {"test": {**bench, "content_hash": content_hash}}}

    table = compare_table(results("aaaa", 0.5), results("bbbb", 1.0))
    assert "test: different problems (content hash A aaaa, B bbbb)" in table
    assert "different problems" not in compare_table(results("aaaa", 0.5), results("aaaa", 1.0))


def test_samples_without_a_problem_hash_are_not_reused(tiny_model_dir, tmp_path, capsys):
    data = write_jsonl(tmp_path / "q.jsonl", questions(0, 2))
    out = tmp_path / "eval"
    assert main(eval_args(tiny_model_dir, str(data), out)) == 0
    rows = [row for _, row in read_jsonl(out / "samples.jsonl")]
    for row in rows:
        del row["problem_hash"]  # as an older hicra wrote them
    write_jsonl(out / "samples.jsonl", rows)
    capsys.readouterr()
    assert main(eval_args(tiny_model_dir, str(data), out)) == 0
    assert "2 samples in" in capsys.readouterr().err
    assert timing(out) == (0, 2)


# ----------------------------------------------------------------- 2. context limits
def test_context_rule_by_hand():
    from hicra.context import ContextError, check_prompt_lengths

    lengths = [(90, "a.jsonl, line 1"), (91, "a.jsonl, line 2"), (95, "a.jsonl, line 3")]
    check_prompt_lengths(lengths[:1], 100, 10, "--max-new-tokens")  # 90 + 10 = 100 fits
    with pytest.raises(ContextError) as err:
        check_prompt_lengths(lengths, 100, 10, "--max-new-tokens")
    assert str(err.value).startswith(
        "2 prompts do not fit the model's context of 100 tokens with --max-new-tokens 10: the "
        "prompt of a.jsonl, line 2, is 91 tokens (at most 90 fit)"
    )
    with pytest.raises(ContextError, match="--max-new-tokens 100 leaves no room"):
        check_prompt_lengths([], 100, 100, "--max-new-tokens")
    check_prompt_lengths(lengths, None, 10, "--max-new-tokens")  # unknown context: no check


def test_default_new_tokens_by_hand():
    from hicra.context import new_tokens_that_fit

    assert new_tokens_that_fit(90, 100, 4096) == 10  # a short context: what the prompt leaves
    assert new_tokens_that_fit(50, 8192, 4096) == 4096  # room enough: the default as it is
    assert new_tokens_that_fit(50, None, 4096) == 4096  # unknown context: nothing lowered
    assert new_tokens_that_fit(100, 100, 4096) == 1  # no room: left to check_prompt_lengths
    assert new_tokens_that_fit(130, 100, 4096) == 1


def test_eval_without_max_new_tokens_fits_a_short_context(tiny_model_dir, tmp_path, capsys):
    """hicra.testing.tiny's context is 1,024 tokens: the default 4,096 was refused before."""
    from transformers import AutoTokenizer

    from hicra.eval.sampling import encode_prompt

    rows = [
        *questions(0, 2),
        {"question": "What is " + " + ".join(["7"] * 40) + "?", "answer": "280"},
    ]
    data = write_jsonl(tmp_path / "q.jsonl", rows)
    out = tmp_path / "eval"
    argv = eval_args(tiny_model_dir, str(data), out, "--temperature", "0")
    i = argv.index("--max-new-tokens")
    assert main(argv[:i] + argv[i + 2 :]) == 0
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    longest = max(len(encode_prompt(tokenizer, row["question"])) for row in rows)
    chosen = json.loads((out / "results.json").read_text())["generation"]["max_new_tokens"]
    assert chosen == 1024 - longest
    assert f"--max-new-tokens {chosen:,}, not the default 4,096" in capsys.readouterr().err
    assert f"at most {chosen} new" in (out / "results.md").read_text()


def test_context_length_from_the_config(tiny_model_dir, tmp_path):
    from transformers import Qwen2Config

    from hicra.context import context_length

    assert context_length(tiny_model_dir) == 1024  # hicra.testing.tiny's max_position_embeddings
    yarn = {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 1024}
    Qwen2Config(max_position_embeddings=1024, rope_scaling=yarn).save_pretrained(tmp_path)
    assert context_length(tmp_path) == 4096


@pytest.mark.parametrize("family", ["bytelevel", "sentencepiece"])
def test_only_prompts_that_could_be_too_long_are_counted_and_none_is_missed(request, family):
    """The byte bound (a token covers at least one byte) never lets a too-long prompt through."""
    from hicra.context import ContextFit, long_prompts, prompt_token_counts
    from hicra.testing.tiny import CHATML_TEMPLATE

    tokenizer = request.getfixturevalue(f"{family}_tokenizer")
    fit = ContextFit(tokenizer, 200, 20, "--max-completion-length", CHATML_TEMPLATE)
    style = PromptStyle()
    pieces = ["7 + ", "ü", "日本", "🙂", " wait,", "x"]
    questions = [
        "".join(pieces[(i + j) % len(pieces)] for j in range(n)) for i, n in enumerate(range(150))
    ]
    exact = prompt_token_counts(tokenizer, [style.messages(q) for q in questions], CHATML_TEMPLATE)
    expected = [(i, n) for i, n in enumerate(exact) if n > 180]
    assert 0 < len(expected) < len(questions)
    assert long_prompts(fit, questions, style.messages) == expected


def _run(argv: list[str], timeout: float) -> subprocess.CompletedProcess | None:
    """A real hicra process; None when it was still running after `timeout` seconds."""
    try:
        return subprocess.run(
            [sys.executable, "-m", "hicra.cli", *argv],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return None


def test_eval_refuses_a_100kb_question_before_generating(tiny_model_dir, tmp_path):
    """It took 47 s and ended in a traceback (a 30 GB attention matrix) on the tiny model."""
    data = write_jsonl(
        tmp_path / "long.jsonl", [*questions(0, 1), {"question": LONG_QUESTION, "answer": "7201"}]
    )
    out = tmp_path / "eval"
    start = time.monotonic()
    done = _run(eval_args(tiny_model_dir, str(data), out), timeout=40)
    assert done is not None, "hicra eval was still busy with a 100 kB question after 40 s"
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert (
        f"the model's context of 1,024 tokens with --max-new-tokens 4: the prompt of {data}, "
        "line 2, is 50,4" in done.stderr
    )
    assert time.monotonic() - start < 40
    assert not out.exists()  # refused before any folder, model or generation


def test_train_refuses_a_100kb_question_before_training(tiny_model_dir, tmp_path):
    rows = questions(0, 40)
    rows[2] = {"question": LONG_QUESTION, "answer": "7201"}
    data = write_jsonl(tmp_path / "train.jsonl", rows)
    out = tmp_path / "run"
    done = _run(tiny_args(tiny_model_dir, data, out), timeout=90)
    assert done is not None, "hicra train was still busy with a 100 kB question after 90 s"
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert f"with --max-completion-length 8: the prompt of {data}, line 3, is 50," in done.stderr
    assert not out.exists()


def test_ctrl_c_stops_training_within_seconds_and_it_resumes(tiny_model_dir, tmp_path):
    """A real SIGINT mid-run: the process ends in seconds with its checkpoints, and `--resume`
    continues from the last one."""
    data = write_jsonl(tmp_path / "train.jsonl", questions(0, 40))
    out = tmp_path / "run"
    argv = tiny_args(tiny_model_dir, data, out)
    argv[argv.index("--max-steps") + 1] = "40"
    argv[argv.index("--max-completion-length") + 1] = "64"
    process = subprocess.Popen(
        [sys.executable, "-m", "hicra.cli", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # a shell's background jobs inherit SIGINT ignored; Ctrl-C must reach this one as a user's
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and process.poll() is None:
        if (out / "checkpoint-1" / "trainer_state.json").is_file():  # step 1 saved to the end
            break
        time.sleep(0.1)
    assert process.poll() is None, "the run ended before it could be interrupted"
    time.sleep(0.5)  # inside the next step's generation
    sent = time.monotonic()
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    stopped = time.monotonic() - sent
    assert process.returncode == 130 and "hicra train: interrupted" in err
    assert "Traceback" not in err
    assert stopped < 10, f"Ctrl-C took {stopped:.1f} s to stop training"
    # SIGINT may land between a step's metric line and its checkpoint: --resume then goes back to
    # the last complete checkpoint and cuts the logs back to it, so the steps stay 1, 2, ... N.
    saved = checkpoint_step(last_complete_checkpoint(out))
    assert saved >= 1 and metric_steps(out)[-1] in (saved, saved + 1)
    argv[argv.index("--max-steps") + 1] = str(saved + 1)
    assert main([*argv, "--resume"]) == 0
    assert metric_steps(out) == list(range(1, saved + 2))


# ----------------------------------------------------------------- 3. image fields
@pytest.fixture
def mixed_images(tmp_path):
    """A dataset whose first row has no image and every second row has one."""
    from hicra.testing.tiny_vision import digit_image

    (tmp_path / "images").mkdir()
    rows = []
    for i in range(8):
        row = {"question": "Which digit is shown?" if i % 2 else f"What is {i} + 0?"}
        row["answer"] = str(i)
        if i % 2:
            digit_image(i).save(tmp_path / "images" / f"{i}.png")
            row["image"] = f"images/{i}.png"
        elif i == 4:
            row["image"] = None  # a null image: a text row too
        rows.append(row)
    return write_jsonl(tmp_path / "mixed.jsonl", rows)


def test_text_model_given_image_rows_is_refused_with_the_count(mixed_images):
    spec = DataSpec(str(mixed_images), text_only_model="tiny (Qwen2ForCausalLM)")
    with pytest.raises(DataError) as err:
        load_rows(spec)
    assert str(err.value).startswith(
        f"4 of 8 rows of {mixed_images} have images (field 'image'; the first: {mixed_images}, "
        "line 2) but the model tiny (Qwen2ForCausalLM) reads text only"
    )


def test_image_field_is_found_over_all_rows(mixed_images):
    for spec in (DataSpec(str(mixed_images)), DataSpec(str(mixed_images), image_field="image")):
        dataset, _ = build_dataset(spec, PromptStyle(instruction=""))
        assert [len(images) for images in dataset["images"]] == [0, 1] * 4
        text_turn, image_turn = dataset[0]["prompt"][-1], dataset[1]["prompt"][-1]
        assert [b["type"] for b in text_turn["content"]] == ["text"]
        assert [b["type"] for b in image_turn["content"]] == ["image", "text"]
        assert dataset[3]["images"][0].size == (48, 48)
    with pytest.raises(DataError, match=r"no image field 'picture' in any of its 8 rows"):
        load_rows(DataSpec(str(mixed_images), image_field="picture"))


def test_a_vlm_trains_on_image_and_text_rows(tiny_vlm_dir, mixed_images, tmp_path):
    out = tmp_path / "run"
    argv = tiny_args(tiny_vlm_dir, mixed_images, out)
    argv[argv.index("--per-device-train-batch-size") + 1] = "16"  # both kinds in each batch
    assert main(argv) == 0
    rollouts = [row for _, row in read_jsonl(out / "rollouts.jsonl")]
    with_images = [r for r in rollouts if r.get("images")]
    assert with_images and len(with_images) < len(rollouts)


@pytest.fixture
def pil_ceiling():
    from PIL import Image

    saved = Image.MAX_IMAGE_PIXELS
    yield
    Image.MAX_IMAGE_PIXELS = saved


def test_max_image_pixels_above_pils_ceiling_is_honoured(tmp_path, pil_ceiling):
    """PIL refuses more than 2 x 89,478,485 pixels: a larger --max-image-pixels was capped."""
    from PIL import Image

    from hicra.images import check_image, image_source, limits_for

    path = tmp_path / "huge.png"
    Image.new("1", (13_500, 13_500)).save(path)  # 182 million pixels, 1 bit each
    source = image_source(str(path), None, "huge.png")
    assert check_image(source, limits_for(None, 200_000_000)) == (13_500, 13_500)
    assert Image.MAX_IMAGE_PIXELS == 200_000_000  # decoding later honours it too
    with pytest.raises(Exception, match="more than the limit of 100,000,000"):
        check_image(source, limits_for(None, 100_000_000))


# ----------------------------------------------------------------- 5. messages
def test_benchmark_messages_say_what_is_wrong(tmp_path):
    path = write_jsonl(
        tmp_path / "q.jsonl",
        [{"question": "1 + 1?", "answer": "2"}, {"question": ["1 + 2?"], "answer": "3"}],
    )
    with pytest.raises(BenchmarkError) as err:
        load_benchmark(str(path))
    assert f"{path}, line 2: field 'question' is a list, expected text" in str(err.value)
    assert "no question field" not in str(err.value)
    write_jsonl(path, [{"question": "1 + 1?", "answer": None}])
    with pytest.raises(BenchmarkError) as err:
        load_benchmark(str(path))
    assert f"{path}, line 1: field 'answer' is null, expected the gold answer" in str(err.value)
    assert "no answer field" not in str(err.value)


def test_training_data_messages_say_what_is_wrong(tmp_path):
    rows = questions(0, 8)
    rows[2]["question"] = ["What is 2 + 1?"]
    rows[6]["answer"] = None
    path = write_jsonl(tmp_path / "train.jsonl", rows)
    with pytest.raises(DataError, match=r"line 3: field 'question' is a list, expected text"):
        load_rows(DataSpec(str(path)))
    rows[2]["question"] = "What is 2 + 1?"
    write_jsonl(path, rows)
    with pytest.raises(DataError, match=r"line 7: field 'answer' is null \(use --skip-bad-rows"):
        load_rows(DataSpec(str(path)))
