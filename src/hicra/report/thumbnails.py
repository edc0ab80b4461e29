"""The prompt images of vision-language rollouts in the report: small thumbnails, inlined once.

A run folder keeps a PNG thumbnail of each logged prompt image (`thumbnails/`, written by the
trainer). Every completion of a prompt group shows the same image, so each thumbnail is inlined
once, as a CSS class with a base64 background, and each card shows a sized box of that class
(with the image's label as its accessible name): the page stays one offline file, and a group of 8
completions costs one copy of its image, not 8. A thumbnail path that leaves the run folder, a
missing file or one that is not a small PNG shows the label alone.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

MAX_THUMBNAIL_BYTES = 512 * 1024  # a thumbnail is a few kB; anything larger is not one of ours


@dataclass(frozen=True)
class Thumbnail:
    css_class: str
    width: int
    height: int
    data: bytes


def _css_class(run: Path, relative: str) -> str:
    return "thumb-" + hashlib.sha1(f"{run}|{relative}".encode()).hexdigest()[:12]


def load_thumbnail(run: Path, relative: str) -> Thumbnail | None:
    """The thumbnail `relative` to the run folder, or None when it is missing or not ours."""
    from PIL import Image, UnidentifiedImageError

    root = run.resolve()
    path = (root / relative).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        return None
    if path.stat().st_size > MAX_THUMBNAIL_BYTES:
        return None
    data = path.read_bytes()
    try:
        with Image.open(path) as image:
            if image.format != "PNG":
                return None
            width, height = image.size
    except (UnidentifiedImageError, OSError):
        return None
    return Thumbnail(_css_class(root, relative), width, height, data)


class ThumbnailSet:
    """The thumbnails a page shows: each loaded and inlined once."""

    def __init__(self) -> None:
        self._loaded: dict[tuple[Path, str], Thumbnail | None] = {}

    def get(self, run: Path, relative: str) -> Thumbnail | None:
        key = (run, relative)
        if key not in self._loaded:
            self._loaded[key] = load_thumbnail(run, relative)
        return self._loaded[key]

    def images_html(self, run: Path, labels: list[str], relatives: list[str]) -> str:
        """The images of one rollout card ("" for a text rollout)."""
        if not labels and not relatives:
            return ""
        parts = []
        for i, label in enumerate(labels or relatives):
            relative = relatives[i] if i < len(relatives) else None
            thumb = self.get(run, relative) if relative else None
            name = escape(label, quote=True)
            if thumb is None:
                parts.append(f"<span class='image-label muted'>image: {name}</span>")
            else:
                parts.append(
                    f"<span class='thumb {thumb.css_class}' role='img' aria-label='{name}' "
                    f"title='{name}'></span>"
                )
        return f"<div class='images'>{''.join(parts)}</div>"

    def style(self) -> str:
        """One CSS rule per thumbnail shown, with the PNG inlined."""
        rules = []
        for thumb in self._loaded.values():
            if thumb is None:
                continue
            data = base64.b64encode(thumb.data).decode("ascii")
            rules.append(
                f".{thumb.css_class}{{width:{thumb.width}px;height:{thumb.height}px;"
                f"background-image:url(data:image/png;base64,{data})}}"
            )
        return f"<style>{''.join(rules)}</style>" if rules else ""


def rollout_images_html(thumbs: ThumbnailSet, run: Any, rollout: Any) -> str:
    return thumbs.images_html(Path(run.path), rollout.images, rollout.thumbnails)
