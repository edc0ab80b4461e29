"""Vision-language training on a tiny random Idefics3 (SmolVLM-style) model with drawn images:
image datasets, HICRA credit on image prompts with the planning mask on completion tokens only,
the run folder's image references and thumbnails, resume, eval and report, and bad input."""

from __future__ import annotations

import base64
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from hicra import PlanningTagger, StrategicGrams
from hicra.cli import main
from hicra.jsonl import read_jsonl
from hicra.testing.tiny import punctuation_grams, punctuation_reward, smoke_config
from hicra.testing.tiny_vision import IMAGE_TOKEN, IMAGE_TOKENS, digit_image, write_digit_dataset
from hicra.train.data import DataError, DataSpec, PromptStyle, build_dataset
from hicra.train.hicra_trainer import HICRATrainer
from hicra.train.images import without_media_tokens
from tests.test_train_cli import tiny_args as train_args

PUNCTUATION = punctuation_grams()


@pytest.fixture(autouse=True)
def one_thread(one_torch_thread):
    """Tiny models are all overhead: one thread leaves the other core to the answer checker."""


@pytest.fixture
def digits(tmp_path):
    return write_digit_dataset(tmp_path / "digits", rows=16)


def processor_of(folder):
    from hicra.models import load_processor

    return load_processor(folder)


# --------------------------------------------------------------------------- data
def test_image_dataset_prompts_and_columns(digits):
    style = PromptStyle("Be brief.", "Answer in \\boxed{}.", (("1 + 1?", "\\boxed{2}"),))
    dataset, stats = build_dataset(DataSpec(str(digits)), style)
    assert not stats.skipped and len(dataset) == 16
    assert {"prompt", "images", "image_refs", "answer"} <= set(dataset.column_names)
    row = dataset[3]
    assert row["answer"] == "3"
    assert [image.size for image in row["images"]] == [(48, 48)]  # decoded when a batch needs it
    assert row["image_refs"] == [str((digits.parent / "images" / "digit-3.png").resolve())]
    system, shot_user, shot_answer, user = row["prompt"]
    # the image goes into the question's turn, never into the few-shot example
    assert [b["type"] for b in shot_user["content"]] == ["text"]
    assert shot_answer == {"role": "assistant", "content": [{"type": "text", "text": "\\boxed{2}"}]}
    assert [b["type"] for b in user["content"]] == ["image", "text"]
    assert user["content"][1]["text"] == "Which digit is shown?\n\nAnswer in \\boxed{}."
    assert system["content"][0]["text"] == "Be brief."


def test_parquet_with_embedded_bytes_and_image_lists(tmp_path):
    rows = [
        {
            "problem": "<image>Which digit is shown first?",
            "answer": str(i),
            "images": [
                {"bytes": _png(digit_image(i)), "path": None},
                {"bytes": _png(digit_image(i + 1)), "path": None},
            ],
        }
        for i in range(3)
    ]
    path = tmp_path / "train.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    dataset, _ = build_dataset(DataSpec(str(path)), PromptStyle(instruction=""))
    assert dataset[0]["image_refs"] == [f"{path}, row 1, image 1", f"{path}, row 1, image 2"]
    blocks = dataset[0]["prompt"][-1]["content"]
    assert [b["type"] for b in blocks] == ["image", "image", "text"]
    assert blocks[-1]["text"] == "Which digit is shown first?"  # the placeholder is gone
    assert len(dataset[2]["images"]) == 2


def test_data_uri_images_in_jsonl(tmp_path):
    uri = "data:image/png;base64," + base64.b64encode(_png(digit_image(4))).decode()
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps({"question": "Digit?", "answer": "4", "image": uri}) + "\n")
    dataset, _ = build_dataset(DataSpec(str(path)), PromptStyle())
    assert dataset[0]["images"][0].size == (48, 48)
    assert dataset[0]["image_refs"] == [f"{path}, line 1"]


def test_bad_images_name_file_and_row_or_are_skipped(digits):
    (digits.parent / "images" / "digit-2.png").unlink()
    (digits.parent / "images" / "digit-5.png").write_text("not a picture")
    with pytest.raises(DataError) as err:
        build_dataset(DataSpec(str(digits)), PromptStyle())
    missing = (digits.parent / "images" / "digit-2.png").resolve()
    assert str(err.value) == (
        f"{digits}, line 3: field 'image': image file not found: {missing} "
        "(use --skip-bad-rows to skip)"
    )
    dataset, stats = build_dataset(DataSpec(str(digits), skip_bad_rows=True), PromptStyle())
    assert len(dataset) == 14 and stats.skipped_count == 2
    assert stats.summary() == (
        "1 field 'image': image file not found (line 3); "
        "1 field 'image': not an image file PIL can read (line 6)"
    )
    assert [r["answer"] for r in dataset][:3] == ["0", "1", "3"]


def test_field_choice_and_missing_field(digits):
    spec = DataSpec(str(digits), image_field="picture")
    with pytest.raises(
        DataError,
        match=r"no image field 'picture' in any of its 16 rows \(fields: question, answer",
    ):
        build_dataset(spec, PromptStyle())


# --------------------------------------------------------------------------- the planning mask
def test_media_tokens_are_never_planning(tiny_vlm_dir):
    processor = processor_of(tiny_vlm_dir)
    tokenizer = processor.tokenizer
    image_id = tokenizer.convert_tokens_to_ids(IMAGE_TOKEN)
    # a gram that spells the image token's text: the tagger still never marks the special token
    tagger = PlanningTagger(StrategicGrams(["image", "so"], name="t"), tokenizer)
    ids = tokenizer(f"so {IMAGE_TOKEN} image", add_special_tokens=False)["input_ids"]
    assert image_id in ids
    mask = tagger.token_mask(torch.tensor([ids]))[0]
    assert not mask[ids.index(image_id)] and mask.any()
    # and the trainer's guard clears any image or video id, whatever the tagger says
    planning = torch.tensor([[True, True, False, True], [True, False, True, True]])
    completion = torch.tensor([[5, image_id, 7, 8], [image_id, 9, 99, image_id]])
    cleared = without_media_tokens(planning, completion, [image_id, 99])
    assert cleared.tolist() == [[True, False, False, True], [False, False, False, False]]
    assert without_media_tokens(planning, completion, []) is planning


class RecordingTrainer(HICRATrainer):
    """Keeps each generation's prompt, completion, masks and advantages."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.generated = []

    def _generate_and_score_completions(self, inputs):
        out = super()._generate_and_score_completions(inputs)
        keys = ("prompt_ids", "completion_ids", "completion_mask", "planning_mask")
        record = {k: out[k].clone() for k in keys}
        record["advantages"] = out["advantages"].clone()
        record["sequence_advantages"] = out["sequence_advantages"].clone()
        record["pixel_values"] = out.get("pixel_values")
        self.generated.append(record)
        return out


def vision_trainer(model_dir, data, out, trainer_cls=None, **overrides):
    args = smoke_config(out, **{"per_device_train_batch_size": 8, **overrides})
    return (trainer_cls or RecordingTrainer)(
        model=str(model_dir),
        reward_funcs=[punctuation_reward],
        args=args,
        train_dataset=data,
        processing_class=processor_of(model_dir),
        strategic_grams=PUNCTUATION,
    )


def test_hicra_credit_on_image_prompts_masks_completion_tokens_only(tiny_vlm_dir, digits, tmp_path):
    dataset, _ = build_dataset(DataSpec(str(digits)), PromptStyle())
    trainer = vision_trainer(tiny_vlm_dir, dataset, tmp_path / "run", max_steps=2)
    trainer.train()
    image_id = trainer.processing_class.tokenizer.convert_tokens_to_ids(IMAGE_TOKEN)
    assert len(trainer.generated) == 2
    planned = 0
    for batch in trainer.generated:
        prompt, completion = batch["prompt_ids"], batch["completion_ids"]
        real = batch["completion_mask"].bool()
        planning = batch["planning_mask"]
        # every prompt holds one image's tokens; no completion holds any
        assert ((prompt == image_id).sum(dim=1) == IMAGE_TOKENS).all()
        assert not (completion == image_id).any()
        assert batch["pixel_values"] is not None and batch["pixel_values"].shape[0] == 8
        # the mask is a mask of completion tokens: its shape, inside the completion mask
        assert planning.shape == completion.shape and not (planning & ~real).any()
        # HICRA's formula on those tokens, A(1 + alpha) or A(1 - alpha), A elsewhere
        seq = batch["sequence_advantages"].unsqueeze(1).expand_as(planning)
        factor = torch.where(seq > 0, 1.2, 0.8)
        expected = torch.where(planning, seq * factor, seq)
        assert torch.allclose(batch["advantages"][real], expected[real], atol=1e-6)
        planned += int((planning & real & (seq != 0)).sum())
    assert planned > 0, "the test needs planning tokens with non-zero advantages"
    rows = [row for _, row in read_jsonl(tmp_path / "run" / "rollouts.jsonl")]
    assert rows and all(len(r["images"]) == len(r["thumbnails"]) == 1 for r in rows)
    for row in rows:
        assert (tmp_path / "run" / row["thumbnails"][0]).is_file()
        assert row["prompt"] == "Which digit is shown?\n\n" + PromptStyle().instruction


class EntropyRecordingTrainer(RecordingTrainer):
    """Also keeps the credit's entropies and the same forward pass computed here, by hand, with
    and without the images."""

    def _generation_entropies(self, out, mode):
        used = super()._generation_entropies(out, mode)
        ids = torch.cat([out["prompt_ids"], out["completion_ids"]], dim=1)
        mask = torch.cat([out["prompt_mask"], out["completion_mask"]], dim=1)
        width = out["completion_ids"].size(1)
        images = {k: out[k] for k in ("pixel_values", "pixel_attention_mask")}
        with torch.no_grad():
            by_hand = [
                torch.distributions.Categorical(
                    logits=self.model(input_ids=ids, attention_mask=mask, **extra).logits[
                        :, -width - 1 : -1
                    ]
                ).entropy()
                for extra in (images, {})
            ]
        self.entropies = (used, *by_hand, out["completion_mask"].bool())
        return used


def test_entropy_credit_runs_its_forward_pass_with_the_images(tiny_vlm_dir, digits, tmp_path):
    """high_entropy needs one extra forward over prompt + completion: with the images, or the
    model would read image tokens without image features."""
    dataset, _ = build_dataset(DataSpec(str(digits)), PromptStyle())
    trainer = vision_trainer(
        tiny_vlm_dir,
        dataset,
        tmp_path / "run",
        EntropyRecordingTrainer,
        max_steps=1,
        credit="high_entropy",
    )
    trainer.train()
    used, with_images, without_images, real = trainer.entropies
    assert torch.allclose(used[real], with_images[real], atol=1e-4)
    assert not torch.allclose(used[real], without_images[real], atol=1e-3)
    batch = trainer.generated[0]
    boosted = (batch["advantages"] != batch["sequence_advantages"].unsqueeze(1)) & real
    assert boosted.any()  # some high-entropy tokens got HICRA's rule


# --------------------------------------------------------------------------- the command line
def test_train_resume_eval_and_report_on_a_tiny_vlm(tiny_vlm_dir, digits, tmp_path):
    from hicra.testing.tiny_vision import write_digit_benchmark

    out = tmp_path / "run"
    assert main(train_args(tiny_vlm_dir, digits, out)) == 0
    longer = train_args(tiny_vlm_dir, digits, out)
    longer[longer.index("--max-steps") + 1] = "3"
    assert main([*longer, "--resume"]) == 0
    steps = [row["step"] for _, row in read_jsonl(out / "metrics.jsonl")]
    assert steps == [1, 2, 3]
    rollouts = [row for _, row in read_jsonl(out / "rollouts.jsonl")]
    assert sorted({r["step"] for r in rollouts}) == [1, 2, 3]
    thumbs = {t for r in rollouts for t in r["thumbnails"]}
    assert thumbs and all((out / t).is_file() for t in thumbs)
    assert (out / "final_model" / "processor_config.json").is_file()

    data_dir = write_digit_benchmark(tmp_path / "bench")
    eval_dir = tmp_path / "eval"
    eval_args = ["eval", "--model", str(out), "--benchmarks", "mathvista", "--data-dir"]
    eval_args += [str(data_dir), "--output-dir", str(eval_dir), "--max-new-tokens", "6"]
    assert main([*eval_args, "--samples", "2", "--no-progress"]) == 0
    results = json.loads((eval_dir / "results.json").read_text())
    assert results["benchmarks"]["mathvista"]["problems"] == 3
    samples = [row for _, row in read_jsonl(eval_dir / "samples.jsonl")]
    assert len(samples) == 6
    assert {r["id"]: r["gold"] for r in samples} == {"1": "7", "2": "B", "3": "1"}

    report = tmp_path / "report"
    assert main(["report", str(out), "--output", str(report)]) == 0
    page = (report / "report.html").read_text()
    for thumb in thumbs:
        png = (out / thumb).read_bytes()
        assert base64.b64encode(png).decode() in page  # inlined once, offline
        assert page.count(base64.b64encode(png).decode()) == 1
    assert page.count("<span class='thumb thumb-") >= len(thumbs)


def test_text_model_with_image_data_is_refused_before_training(
    tiny_model_dir, digits, tmp_path, capsys
):
    out = tmp_path / "run"
    assert main(train_args(tiny_model_dir, digits, out)) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"16 of 16 rows of {digits} have images (field 'image'; the first: " in err
    assert f"{digits}, line 1) but the model {tiny_model_dir}" in err
    assert "(Qwen2ForCausalLM) reads text only" in err
    assert not (out / "metrics.jsonl").exists()


def test_vlm_with_text_data_is_refused_before_training(tiny_vlm_dir, tmp_path, capsys):
    data = tmp_path / "text.jsonl"
    data.write_text(
        "".join(json.dumps({"question": f"{i}+1?", "answer": str(i + 1)}) + "\n" for i in range(8))
    )
    assert main(train_args(tiny_vlm_dir, data, tmp_path / "run")) == 2
    err = capsys.readouterr().err
    assert "is a vision-language model but dataset" in err and "has no images" in err


def test_too_large_image_is_refused_before_training(tiny_vlm_dir, digits, tmp_path, capsys):
    args = train_args(tiny_vlm_dir, digits, tmp_path / "run", "--max-image-pixels", "1000")
    assert main(args) == 2
    err = capsys.readouterr().err
    assert f"{digits}, line 1: field 'image':" in err
    assert "48 x 48 = 2,304 pixels, more than the limit of 1,000 (--max-image-pixels)" in err


def test_missing_image_skipped_with_flag(tiny_vlm_dir, digits, tmp_path, capsys):
    (digits.parent / "images" / "digit-0.png").unlink()
    assert main(train_args(tiny_vlm_dir, digits, tmp_path / "a")) == 2
    assert "image file not found" in capsys.readouterr().err
    args = train_args(tiny_vlm_dir, digits, tmp_path / "b", "--skip-bad-rows", "--max-steps", "1")
    assert main(args) == 0
    assert "skipped 1 bad rows" in capsys.readouterr().err


def _png(image) -> bytes:
    import io

    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_hub_image_features_are_read_without_decoding(tmp_path):
    """A hub dataset's image features, as `_hub_rows` reads them: undecoded, checked, named."""
    import datasets

    from hicra.images import undecoded
    from hicra.jsonl import ReadStats
    from hicra.train.data import _math_rows

    hub = datasets.Dataset.from_dict(
        {
            "problem": ["<image>Find x.", "<image>Find y."],
            "answer": ["3", "4"],
            "images": [
                [{"bytes": _png(digit_image(3)), "path": None}],
                [{"bytes": b"oops", "path": None}],
            ],
        }
    ).cast_column("images", datasets.List(datasets.Image()))
    rows = undecoded(hub)
    spec = DataSpec("someone/geometry", skip_bad_rows=True)
    stats = ReadStats()
    out = list(_math_rows(((i + 1, r) for i, r in enumerate(rows)), spec, spec.source, stats))
    assert [r["answer"] for r in out] == ["3"] and stats.skipped_count == 1
    assert out[0]["images"][0].label == "someone/geometry, row 1, image 1"
    assert stats.summary() == "1 field 'images': not an image file PIL can read (line 2)"


def test_two_processes_log_each_rollout_with_its_own_image(tiny_vlm_dir, digits, tmp_path):
    """Under `accelerate launch` (two gloo CPU processes) each logged completion names the image
    of its own prompt: the images are gathered in the order TRL gathers completions."""
    import re
    import subprocess

    from tests.conftest import accelerate_launch

    out = tmp_path / "run"
    args = train_args(tiny_vlm_dir, digits, out, "--rollouts-per-step", "4")
    args[args.index("--per-device-train-batch-size") + 1] = "4"
    launch = [*accelerate_launch(), "-m", "hicra.cli"]
    result = subprocess.run([*launch, *args], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [row for _, row in read_jsonl(out / "rollouts.jsonl")]
    assert len(rows) == 2 * 8  # 2 steps x all 8 completions (4 groups of 4 asked, 2 exist)
    for row in rows:
        (label,) = row["images"]
        index = int(re.search(r"digit-(\d+)\.png$", label).group(1))
        assert str(index % 10) == row["answer"]  # the image of this row's own prompt
        assert (out / row["thumbnails"][0]).is_file()
    # completions of one group share one prompt image; two groups a step, two different images
    for step in (1, 2):
        groups = {r["group"]: r["images"][0] for r in rows if r["step"] == step}
        assert len(groups) == 2 and len(set(groups.values())) == 2
