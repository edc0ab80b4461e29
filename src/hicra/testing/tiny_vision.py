"""A tiny, randomly initialised vision-language model and drawn images: VLM tests with no hub.

`build_tiny_vlm(folder)` writes an Idefics3 model (the SmolVLM architecture: a SigLIP-style
vision tower, a pixel-shuffle connector and a 2-layer Llama decoder) with a locally built
processor (the tiny byte-level tokenizer plus Idefics3's image tokens, and Idefics3's image
processor at 32 x 32 pixels: 4 image tokens per image). It trains and generates on a CPU in well
under a second a step and learns nothing useful. `digit_image` draws digits and shapes with PIL;
`write_digit_dataset` and `write_digit_benchmark` lay them out as a training file and as a
MathVista-style benchmark folder.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

IMAGE_SIZE = 32  # the vision tower's input: 4 x 4 patches of 8 pixels
IMAGE_TOKENS = 4  # (32 / 8)^2 patches / scale_factor^2
IMAGE_TOKEN = "<image>"
# ChatML that takes plain string content and content blocks ({"type": "image"} / "text").
VISION_CHAT_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' }}"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for part in message['content'] %}{% if part['type'] == 'image' %}{{ '<image>' }}"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}{% endfor %}{% endif %}"
    "{{ '<|im_end|>\\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def build_tiny_processor() -> Any:
    """Idefics3's processor over the tiny tokenizer, at 32 x 32 pixels without image splitting."""
    from transformers import Idefics3Processor
    from transformers.models.idefics3.image_processing_pil_idefics3 import (
        Idefics3ImageProcessorPil,
    )

    from hicra.testing.tiny import build_tiny_tokenizer

    tokenizer = build_tiny_tokenizer()
    tokenizer.chat_template = VISION_CHAT_TEMPLATE
    image_processor = Idefics3ImageProcessorPil(
        size={"longest_edge": IMAGE_SIZE},
        max_image_size={"longest_edge": IMAGE_SIZE},
        do_image_splitting=False,
    )
    # the processor adds its special tokens (<image>, <fake_token_around_image>, ...) itself
    return Idefics3Processor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        image_seq_len=IMAGE_TOKENS,
        chat_template=VISION_CHAT_TEMPLATE,
    )


def build_tiny_vlm(
    folder: str | Path, hidden_size: int = 64, layers: int = 2, seed: int = 0
) -> Path:
    """Write a tiny random Idefics3 (SmolVLM-style) model and its processor to `folder`."""
    import torch
    from transformers import GenerationConfig, Idefics3Config, Idefics3ForConditionalGeneration

    folder = Path(folder)
    processor = build_tiny_processor()
    tokenizer = processor.tokenizer
    text_config = {
        "model_type": "llama",
        "vocab_size": len(tokenizer),
        "hidden_size": hidden_size,
        "intermediate_size": hidden_size * 2,
        "num_hidden_layers": layers,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 1024,
        "tie_word_embeddings": True,
        "bos_token_id": None,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
    }
    vision_config = {
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "image_size": IMAGE_SIZE,
        "patch_size": 8,
    }
    config = Idefics3Config(
        vision_config=vision_config,
        text_config=text_config,
        scale_factor=2,
        image_token_id=tokenizer.convert_tokens_to_ids(IMAGE_TOKEN),
        tie_word_embeddings=True,
    )
    torch.manual_seed(seed)
    model = Idefics3ForConditionalGeneration(config)
    model.generation_config = GenerationConfig(
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id
    )
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def digit_image(digit: int, shape: str | None = None, size: int = 48, seed: int = 0) -> Any:
    """A white RGB image with a black digit and, optionally, a shape ("circle", "square",
    "triangle") drawn beside it; `seed` shifts the drawing so that images of one digit differ."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(image)
    offset = seed % 5
    draw.text((4 + offset, 4 + offset), str(digit), fill="black")
    box = (size // 2, size // 2, size - 4, size - 4)
    if shape == "circle":
        draw.ellipse(box, outline="red", width=2)
    elif shape == "square":
        draw.rectangle(box, outline="blue", width=2)
    elif shape == "triangle":
        draw.polygon(
            [(box[0], box[3]), (box[2], box[3]), ((box[0] + box[2]) // 2, box[1])], "green"
        )
    elif shape is not None:
        raise ValueError(f"unknown shape {shape!r}: circle, square or triangle")
    return image


def write_digit_dataset(folder: str | Path, rows: int = 16, name: str = "train.jsonl") -> Path:
    """`folder/name` with `rows` questions about drawn digits, images in `folder/images/` named
    by relative path (as a user's local image dataset would be); returns the data file."""
    folder = Path(folder)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    lines = []
    for i in range(rows):
        digit = i % 10
        relative = f"images/digit-{i}.png"
        digit_image(digit, seed=i).save(folder / relative)
        lines.append({"question": "Which digit is shown?", "answer": str(digit), "image": relative})
    path = folder / name
    path.write_text("".join(json.dumps(r) + "\n" for r in lines), encoding="utf-8")
    return path


def write_digit_benchmark(data_dir: str | Path, folder: str = "mathvista") -> Path:
    """A 3-problem benchmark in MathVista's layout (`DIR/mathvista/test.jsonl`, images beside it):
    a free-form digit, a multiple-choice digit (gold stored as the option text, as MathVista does)
    and a count of shapes; returns `data_dir`."""
    root = Path(data_dir)
    target = root / folder
    (target / "images").mkdir(parents=True, exist_ok=True)
    problems = [
        ("1", digit_image(7, seed=1), "Which digit is shown?", None, "7", "free_form"),
        (
            "2",
            digit_image(5, "circle", seed=2),
            "Which digit is shown?",
            ["3", "5", "8"],
            "5",
            "multi_choice",
        ),
        (
            "3",
            digit_image(2, "square", seed=3),
            "How many squares are there?",
            None,
            "1",
            "free_form",
        ),
    ]
    lines = []
    for pid, image, question, choices, answer, kind in problems:
        relative = f"images/{pid}.png"
        image.save(target / relative)
        lines.append(
            {
                "pid": pid,
                "question": question,
                "image": relative,
                "choices": choices,
                "answer": answer,
                "question_type": kind,
            }
        )
    (target / "test.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in lines), encoding="utf-8"
    )
    return root
