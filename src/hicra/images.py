"""Images of vision-language prompts: where one comes from, checking it cheaply, thumbnails.

Training rows and benchmark problems name their images in several ways: a file path (relative to
the data file), encoded bytes (Parquet written by `datasets`: `{"bytes": ..., "path": ...}`, or a
binary column), a `data:image/...;base64,` URI, or a decoded PIL image. `image_source` turns any of
them into an `ImageSource` with a label for messages and rollouts; `check_image` reads only what it
needs to catch a missing, unreadable or too-large image (header and, for PNG, chunk checksums), so
a bad image is one error line naming it before any model is loaded, not a traceback mid-training.
"""

from __future__ import annotations

import base64
import binascii
import io
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hicra.errors import HicraError

# PIL refuses to decode more pixels than this (a "decompression bomb"); processors decode the
# whole image before resizing it, so this is also the default limit of hicra's checks.
DEFAULT_MAX_PIXELS = 89_478_485  # PIL.Image.MAX_IMAGE_PIXELS, pinned so the limit is documented
THUMBNAIL_SIZE = 160
IMAGE_FIELDS = ("images", "image")  # a dataset's image column when none is named
_PLACEHOLDER = re.compile(r"<image(?:[ _-]?(\d+))?>", re.IGNORECASE)


class ImageError(HicraError):
    """An image cannot be used; the message says which image and why, `kind` says why alone (so
    that skipped rows are counted by reason)."""

    def __init__(self, message: str, kind: str | None = None) -> None:
        super().__init__(message)
        self.kind = kind or message


@dataclass(frozen=True)
class ImageSource:
    """One image: a file (`path`, absolute) or encoded bytes (`data`), and how to name it."""

    path: str | None = None
    data: bytes | None = None
    label: str = ""

    def open(self) -> Any:
        """The decoded image in RGB (what vision processors expect)."""
        from PIL import Image

        with Image.open(self.path if self.data is None else io.BytesIO(self.data)) as image:
            return image.convert("RGB")

    def feature_value(self) -> dict[str, Any]:
        """The value of a `datasets.Image()` column: decoded lazily, when a batch needs it."""
        return {"bytes": self.data, "path": None if self.data is not None else self.path}


@dataclass(frozen=True)
class ImageLimits:
    """What a processor can take: pixels (width x height) and, for some, the aspect ratio."""

    max_pixels: int = DEFAULT_MAX_PIXELS
    max_aspect_ratio: float | None = None  # Qwen2-VL's processors refuse more than 200

    def problem(self, width: int, height: int) -> str | None:
        """Why an image of this size is refused, or None."""
        if width < 1 or height < 1:
            return f"image has no pixels ({width} x {height})"
        if width * height > self.max_pixels:
            return (
                f"image is {width} x {height} = {width * height:,} pixels, more than the limit of "
                f"{self.max_pixels:,} (--max-image-pixels); downscale it"
            )
        ratio = max(width, height) / min(width, height)
        if self.max_aspect_ratio is not None and ratio > self.max_aspect_ratio:
            return (
                f"image is {width} x {height}, aspect ratio {ratio:.1f}, above the processor's "
                f"limit of {self.max_aspect_ratio:g}; crop or pad it"
            )
        return None


def limits_for(processor: Any, max_pixels: int | None = None) -> ImageLimits:
    """The limits of a processor's image processor (Qwen2-VL style ones refuse extreme aspect
    ratios), with `max_pixels` (or PIL's decompression-bomb limit) as the size limit."""
    if max_pixels is not None and max_pixels < 1:
        raise ImageError(f"--max-image-pixels must be at least 1, got {max_pixels}")
    image_processor = getattr(processor, "image_processor", None)
    qwen_style = image_processor is not None and hasattr(image_processor, "merge_size")
    return ImageLimits(max_pixels or DEFAULT_MAX_PIXELS, 200.0 if qwen_style else None)


def _decode_data_uri(text: str) -> bytes:
    header, _, payload = text.partition(",")
    if ";base64" not in header:
        raise ImageError(
            "a data URI image must be base64-encoded (data:image/png;base64,...)", "bad data URI"
        )
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise ImageError("the data URI image is not valid base64", "bad data URI") from None


def _file(value: str, base_dir: Path | None) -> str:
    if value.startswith(("http://", "https://")):
        raise ImageError(
            f"image {value!r} is a URL; hicra does not download images: download them and give "
            "file paths relative to the data file",
            "image URL",
        )
    path = Path(value).expanduser()
    if not path.is_absolute():
        if base_dir is None:
            raise ImageError(
                f"image path {value!r} is relative, but the rows do not come from a local file; "
                "download the dataset with its images and give the local data file",
                "relative image path without a data file",
            )
        path = base_dir / path
    return str(path.resolve())


def image_source(value: Any, base_dir: str | Path | None, label: str) -> ImageSource:
    """An `ImageSource` from a path, bytes, a `datasets` image dict, a data URI or a PIL image.

    Relative paths are relative to `base_dir` (the folder of the data file). `label` names embedded
    images ("data.parquet, row 4"); a file is named by its path.
    """
    base = Path(base_dir) if base_dir is not None else None
    if isinstance(value, dict) and ("bytes" in value or "path" in value):
        data, path = value.get("bytes"), value.get("path")
        if data:
            return ImageSource(data=bytes(data), label=label)
        value = path
    if isinstance(value, (bytes, bytearray, memoryview)):
        if not value:
            raise ImageError("the image is empty (0 bytes)", "empty image")
        return ImageSource(data=bytes(value), label=label)
    if isinstance(value, str) and value.strip():
        text = value.strip()
        if text.startswith("data:"):
            return ImageSource(data=_decode_data_uri(text), label=label)
        path = _file(text, base)
        return ImageSource(path=path, label=path)
    if hasattr(value, "save") and hasattr(value, "size"):  # a decoded PIL image
        buffer = io.BytesIO()
        value.save(buffer, format="PNG")
        return ImageSource(data=buffer.getvalue(), label=label)
    if value is None or (isinstance(value, str) and not value.strip()):
        raise ImageError("no image (the field is empty)", "no image")
    raise ImageError(
        f"unsupported image value of type {type(value).__name__}", "unsupported image value"
    )


def image_sources(value: Any, base_dir: str | Path | None, label: str) -> list[ImageSource]:
    """All images of one field: a single image, or a list of them (`images` columns)."""
    if isinstance(value, (list, tuple)):
        if not value:
            raise ImageError("no image (the list is empty)", "no image")
        return [image_source(v, base_dir, f"{label}, image {i + 1}") for i, v in enumerate(value)]
    return [image_source(value, base_dir, label)]


def check_image(source: ImageSource, limits: ImageLimits | None = None) -> tuple[int, int]:
    """(width, height) of a readable image within the limits; else `ImageError` naming it.

    Reads the header and runs PIL's `verify` (PNG chunk checksums, truncated files), without
    decoding pixels: about a tenth of a millisecond for a small PNG.
    """
    from PIL import Image, UnidentifiedImageError

    limits = limits or ImageLimits()
    where = source.path if source.data is None else source.label
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(source.path if source.data is None else io.BytesIO(source.data)) as img:
                width, height = img.size
                refused = limits.problem(width, height)
                if refused is None:
                    img.verify()
    except FileNotFoundError:
        raise ImageError(f"image file not found: {where}", "image file not found") from None
    except IsADirectoryError:
        raise ImageError(f"image path is a folder, not a file: {where}", "folder") from None
    except UnidentifiedImageError:
        kind = "not an image file PIL can read"
        raise ImageError(f"{kind}: {where}", kind) from None
    except Image.DecompressionBombError as err:
        kind = "image too large to decode safely"
        raise ImageError(f"{where}: {kind} ({err})", kind) from None
    except (OSError, SyntaxError, ValueError) as err:  # PIL reports corrupt data as any of these
        raise ImageError(f"unreadable image {where}: {err}", "unreadable image") from None
    if refused is not None:
        raise ImageError(f"{where}: {refused}", "image over the processor's limits")
    return width, height


def strip_placeholders(text: str) -> str:
    """Question text without image placeholders: `<image>` is dropped (the image itself goes in
    the prompt), numbered ones (`<image_2>`, `<image2>`) become "Image 2" so references stay."""

    def replace(match: re.Match[str]) -> str:
        return f"Image {match.group(1)}" if match.group(1) else ""

    cleaned = _PLACEHOLDER.sub(replace, text)
    return re.sub(r"[ \t]{2,}", " ", cleaned).strip()


def thumbnail_png(image: Any, size: int = THUMBNAIL_SIZE) -> bytes:
    """A PNG at most `size` pixels on its longer side (the report's rollout browser shows it)."""
    copy = image.convert("RGB")
    copy.thumbnail((size, size))
    buffer = io.BytesIO()
    copy.save(buffer, format="PNG")  # optimize=True: 8% smaller, 9x slower
    return buffer.getvalue()


def undecoded(dataset: Any) -> Any:
    """A hub dataset whose image columns yield `{"bytes", "path"}` instead of decoded images, so
    that rows can be checked without decoding every image."""
    import datasets

    def plain(feature: Any) -> Any:
        if isinstance(feature, datasets.Image):
            return datasets.Image(decode=False)
        inner = getattr(feature, "feature", None)
        if isinstance(feature, (datasets.List, datasets.Sequence)) and isinstance(
            inner, datasets.Image
        ):
            return datasets.List(datasets.Image(decode=False))
        return None

    for name, feature in (getattr(dataset, "features", None) or {}).items():
        replacement = plain(feature)
        if replacement is not None:
            dataset = dataset.cast_column(name, replacement)
    return dataset


def image_columns(features: Any) -> list[str]:
    """Names of the columns of a `datasets` feature dict that hold images."""
    import datasets

    names = []
    for name, feature in (features or {}).items():
        inner = getattr(feature, "feature", None)
        if isinstance(feature, datasets.Image) or isinstance(inner, datasets.Image):
            names.append(name)
    return names
