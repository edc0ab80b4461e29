"""Evaluating vision-language models: image prompts for the HF and vLLM backends, modality checks.

A vision-language model is asked exactly as a text model is (the question, a blank line, the
shared boxed instruction, in the user turn of its chat template), with the problem's images as
image blocks at the start of that turn, the layout TRL uses in training (`train.images`). The
model's processor turns the text and images into model inputs: each model family expands its image
placeholders into its own number of image tokens, so prompts are built here, not from token ids.
Sampling is the text backends' (`eval.sampling`): the HF backend's batching, seeding and exact
temperature/top-p, and vLLM with the images as `multi_modal_data`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from hicra.errors import HicraError
from hicra.eval.sampling import HFBackend, Request, VLLMBackend, cuda_available
from hicra.models import ModelError, is_vision_model, load_processor, model_kind, torch_dtype
from hicra.prompts import PromptStyle

MAX_IMAGES_PER_PROMPT = 5  # EMMA's problems have up to five images


def chat_text(processor: Any, request: Request) -> str:
    """The prompt text with the model's image placeholders, from its processor's chat template."""
    style = request.style or PromptStyle()
    messages = style.vision_messages(request.question, len(request.images))
    return processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)


class HFVisionBackend(HFBackend):
    """HF batched generation for an image-text-to-text model: the processor builds each batch."""

    def __init__(self, model: Any, processor: Any, batch_size: int | None = None) -> None:
        super().__init__(model, processor.tokenizer, batch_size)
        self.processor = processor

    @classmethod
    def from_vision_path(
        cls, path: str, batch_size: int | None = None, dtype: str = "auto"
    ) -> HFVisionBackend:
        from transformers import AutoModelForImageTextToText

        device = "cuda" if cuda_available() else "cpu"
        processor = load_processor(path)
        try:
            model = AutoModelForImageTextToText.from_pretrained(
                path, dtype=torch_dtype(dtype, device)
            )
        except Exception as err:
            raise ModelError(
                f"cannot load the vision-language model in {path!r}: {type(err).__name__}: "
                f"{str(err)[:300]}"
            ) from None
        return cls(model.to(device), processor, batch_size)

    def _model_inputs(self, requests: list[Request]) -> dict[str, Any]:
        texts = [chat_text(self.processor, r) for r in requests]
        images = [[source.open() for source in r.images] for r in requests]
        extra = {"images": images} if any(images) else {}
        encoded = self.processor(text=texts, padding=True, return_tensors="pt", **extra)
        return dict(encoded)


class VLLMVisionBackend(VLLMBackend):
    """vLLM with the images as `multi_modal_data` (up to MAX_IMAGES_PER_PROMPT a prompt)."""

    def __init__(self, model_path: str, processor: Any, dtype: str = "auto", seed: int = 0) -> None:
        super().__init__(
            model_path, dtype, seed, limit_mm_per_prompt={"image": MAX_IMAGES_PER_PROMPT}
        )
        self.processor = processor

    def _prompts(self, requests: Sequence[Request]) -> list[dict[str, Any]]:
        prompts = []
        for request in requests:
            prompt: dict[str, Any] = {"prompt": chat_text(self.processor, request)}
            if request.images:
                prompt["multi_modal_data"] = {"image": [s.open() for s in request.images]}
            prompts.append(prompt)
        return prompts


def make_vision_backend(
    name: str,
    model_path: str,
    *,
    batch_size: int | None = None,
    dtype: str = "auto",
    seed: int = 0,
) -> HFBackend | VLLMBackend:
    """The backend `name` ("hf" or "vllm") for a vision-language model, loaded."""
    if name == "vllm":
        return VLLMVisionBackend(model_path, load_processor(model_path), dtype=dtype, seed=seed)
    return HFVisionBackend.from_vision_path(model_path, batch_size=batch_size, dtype=dtype)


def check_modality(model_path: str, model: str, benchmarks: Iterable[Any]) -> None:
    """Image benchmarks need a vision-language model (a VLM may take text benchmarks too)."""
    with_images = [
        f"{b.name} ({b.image_rows})" if b.image_rows else b.name for b in benchmarks if b.vision
    ]
    if with_images and not is_vision_model(model_path):
        raise HicraError(
            f"benchmarks {', '.join(with_images)} have images, but the model {model} "
            f"({model_kind(model_path)}) reads text only; evaluate a vision-language model "
            "(e.g. Qwen/Qwen2.5-VL-3B-Instruct), or leave them out of --benchmarks"
        )
