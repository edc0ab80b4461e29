"""Vision-language training: image datasets and prompts, modality checks, and the trainer's hooks.

TRL's GRPOTrainer trains a vision-language model when the processing class is a processor and the
rows carry images; hicra feeds it exactly that and keeps the hierarchy lens on the text:

- rows: an `images` (list) or `image` column of file paths relative to the data file, encoded
  bytes, or hub image features; each image is checked before training (`train.data` reads them);
  a row without images (null or []) in an image dataset is a text prompt (`train.data.find_schema`);
- prompts: the last user turn starts with one `{"type": "image"}` block per image, then the text
  (every message in content blocks, so that TRL never puts the images into a few-shot turn), built
  by `prompts.vision_messages`, as eval builds them;
- the planning mask covers completion tokens only: image tokens live in the prompt, TRL's HF
  generation suppresses the image token, the tagger never marks special tokens, and
  `without_media_tokens` removes any image or video token id from the mask all the same;
- rollouts name their images and get a small PNG thumbnail in the run folder for the report.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from hicra.errors import HicraError
from hicra.images import (
    IMAGE_FIELDS,
    ImageLimits,
    ImageSource,
    limits_for,
    strip_placeholders,
    thumbnail_png,
)
from hicra.prompts import vision_messages
from hicra.run_folder import THUMBNAILS_DIR, RolloutField

# TRL's multimodal forward inputs (GRPOTrainer._compute_loss passes these to the model).
MULTIMODAL_KEYS = (
    "pixel_values",
    "image_grid_thw",
    "num_images",
    "pixel_attention_mask",
    "spatial_shapes",
    "num_tiles",
    "image_sizes",
    "token_type_ids",
    "mm_token_type_ids",
    "image_position_ids",
)
_MEDIA_TOKEN_ATTRS = ("image_token_id", "video_token_id", "image_token_index", "boi_token_id")


# --------------------------------------------------------------------------- prompts
def vision_dataset(rows: list[dict[str, Any]], style: Any) -> Any:
    """A `datasets.Dataset` for TRL: block prompts, an `images` column of lazily decoded images,
    and `image_refs` (the labels that rollouts record)."""
    import datasets

    records = []
    for row in rows:
        sources: list[ImageSource] = row["images"]
        messages = style.messages(strip_placeholders(row["question"]))
        records.append(
            {
                **{k: v for k, v in row.items() if k != "images"},
                "prompt": vision_messages(messages, len(sources)),
                "images": [s.feature_value() for s in sources],
                "image_refs": [s.label for s in sources],
            }
        )
    dataset = datasets.Dataset.from_list(records)
    return dataset.cast_column("images", datasets.List(datasets.Image()))


# --------------------------------------------------------------------------- model and processor
@dataclass
class Processing:
    """What reads a model's input: a tokenizer, or a processor for a vision-language model."""

    processing_class: Any
    vision: bool
    limits: ImageLimits | None = None

    @property
    def tokenizer(self) -> Any:
        return getattr(self.processing_class, "tokenizer", self.processing_class)

    @property
    def chat_template(self) -> str | None:
        own = getattr(self.processing_class, "chat_template", None)
        return own or getattr(self.tokenizer, "chat_template", None)


def load_processing(model: str, max_image_pixels: int | None = None) -> Processing:
    """The tokenizer of a text model, or the processor (and its image limits) of a VLM."""
    from hicra.models import is_vision_model, load_processor, load_tokenizer

    if is_vision_model(model):
        processor = load_processor(model)
        return Processing(processor, True, limits_for(processor, max_image_pixels))
    return Processing(load_tokenizer(model), False, None)


def check_modality(processing: Processing, dataset: Any, model: str, source: str) -> None:
    """A vision-language model needs image prompts (a text-only dataset is most likely a wrong
    --dataset or --image-field; the reverse is refused while the rows are read)."""
    if processing.vision and "images" not in dataset.column_names:
        raise HicraError(
            f"model {model} is a vision-language model but dataset {source} has no images "
            f"(no row has an image in a field {' or '.join(IMAGE_FIELDS)}; name the image column with --image-field)"
        )


# --------------------------------------------------------------------------- trainer hooks
def images_per_row(images: list[Any] | None) -> list[Any] | None:
    """TRL's images of a batch with a text row's None as [] (no image): processors take a list of
    images per row, and Idefics3's refuses None when other rows of the batch have images."""
    if images is None:
        return None
    return [[] if row is None else row for row in images]


def multimodal_inputs(batch: dict[str, Any]) -> dict[str, Any]:
    """The image inputs of a generated batch, for a forward pass over its prompts + completions."""
    return {key: batch[key] for key in MULTIMODAL_KEYS if batch.get(key) is not None}


def media_token_ids(processing_class: Any, model: Any) -> list[int]:
    """Token ids that stand for image or video content in this model (empty for a text model)."""
    found: set[int] = set()
    config = getattr(model, "config", None)
    for owner in (config, processing_class, getattr(processing_class, "tokenizer", None)):
        for attr in _MEDIA_TOKEN_ATTRS:
            value = getattr(owner, attr, None) if owner is not None else None
            if isinstance(value, int) and value >= 0:
                found.add(value)
    return sorted(found)


def without_media_tokens(
    planning: torch.Tensor, completion_ids: torch.Tensor, media_ids: Sequence[int]
) -> torch.Tensor:
    """The planning mask with every image/video token position cleared (credit and metrics are
    about the text the model wrote, never about image placeholders)."""
    if not media_ids:
        return planning
    media = torch.isin(completion_ids, torch.tensor(list(media_ids), device=completion_ids.device))
    return planning & ~media.to(planning.device)


def thumbnail_name(label: str) -> str:
    """A stable file name for an image's thumbnail (the same image gets one file per run)."""
    return hashlib.sha1(label.encode("utf-8")).hexdigest()[:16] + ".png"


def rollout_images(
    inputs: list[dict[str, Any]], first_index: int, keep: int, run_folder: Path
) -> tuple[list[list[str]], dict[str, bytes]]:
    """This process's image labels per input row, and the thumbnails (by file name) still missing
    from the run folder of the images of the rows that will be logged (global row index below
    `keep`; `first_index` is this process's first global index). Text rows give empty lists."""
    refs: list[list[str]] = []
    thumbnails: dict[str, bytes] = {}
    for j, row in enumerate(inputs):
        labels = list(row.get("image_refs") or [])
        refs.append(labels)
        if first_index + j >= keep:
            continue
        for label, image in zip(labels, row.get("images") or [], strict=False):
            name = thumbnail_name(label)
            done = name in thumbnails or (run_folder / THUMBNAILS_DIR / name).exists()
            if image is not None and not done:
                thumbnails[name] = thumbnail_png(image)
    return refs, thumbnails


def gather_rollout_images(trainer: Any, inputs: list[dict[str, Any]], keep: int) -> list[list[str]]:
    """Every process's image labels per row (rank order, as TRL gathers completions), with the
    thumbnails of the first `keep` rows saved in the run folder; [] for a text dataset (then
    nothing is gathered: every process sees the same columns)."""
    from accelerate.utils import gather_object

    if not inputs or "image_refs" not in inputs[0]:
        return []
    first = trainer.accelerator.process_index * len(inputs)
    refs, thumbnails = rollout_images(inputs, first, keep, trainer.run_log.folder)
    merged = {k: v for part in gather_object([thumbnails]) for k, v in part.items()}
    trainer.run_log.save_thumbnails(merged)  # the main process writes
    return gather_object(refs)


def image_fields(labels: list[str]) -> dict[str, Any]:
    """The rollout fields of one logged completion (none for a text row)."""
    if not labels:
        return {}
    return {
        RolloutField.IMAGES: labels,
        RolloutField.THUMBNAILS: [f"{THUMBNAILS_DIR}/{thumbnail_name(x)}" for x in labels],
    }
