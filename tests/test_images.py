"""Image sources, checks and limits (hicra.images): every way a row names an image, every way an
image can be bad, each a one-line error that names it."""

from __future__ import annotations

import base64
import io
from pathlib import Path
from types import SimpleNamespace

import datasets
import pytest
from PIL import Image

from hicra.images import (
    DEFAULT_MAX_PIXELS,
    ImageError,
    ImageLimits,
    ImageSource,
    check_image,
    image_source,
    image_sources,
    limits_for,
    strip_placeholders,
    thumbnail_png,
    undecoded,
)
from hicra.testing.tiny_vision import digit_image


def png_bytes(image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def picture(tmp_path) -> Path:
    path = tmp_path / "images" / "seven.png"
    path.parent.mkdir()
    digit_image(7).save(path)
    return path


def test_every_way_to_name_an_image_reads_the_same_pixels(picture, tmp_path):
    data = picture.read_bytes()
    uri = "data:image/png;base64," + base64.b64encode(data).decode()
    expected = Image.open(picture).convert("RGB").tobytes()
    sources = [
        image_source("images/seven.png", tmp_path, "row 1"),  # relative to the data file
        image_source(str(picture), None, "row 1"),
        image_source(data, None, "data.parquet, row 1"),
        image_source({"bytes": data, "path": "seven.png"}, None, "data.parquet, row 1"),
        image_source({"bytes": None, "path": "images/seven.png"}, tmp_path, "row 1"),
        image_source(uri, None, "row 1"),
        image_source(Image.open(picture), None, "hub row 1"),
    ]
    for source in sources:
        assert check_image(source) == (48, 48)
        assert source.open().tobytes() == expected
    assert sources[0].path == str(picture.resolve()) == sources[0].label  # files: by path
    assert sources[2].label == "data.parquet, row 1" and sources[2].path is None
    assert sources[2].feature_value() == {"bytes": data, "path": None}
    assert sources[0].feature_value() == {"bytes": None, "path": str(picture.resolve())}


def test_a_list_names_each_image(picture, tmp_path):
    sources = image_sources(["images/seven.png", picture.read_bytes()], tmp_path, "f.jsonl, line 3")
    assert [s.label for s in sources] == [str(picture.resolve()), "f.jsonl, line 3, image 2"]


@pytest.mark.parametrize(
    ("value", "base", "message"),
    [
        ("https://example.com/a.png", None, "is a URL; hicra does not download images"),
        ("images/a.png", None, "is relative, but the rows do not come from a local file"),
        ("", None, "no image"),
        (None, None, "no image"),
        ([], None, "no image"),
        (b"", None, "empty"),
        (42, None, "unsupported image value of type int"),
        ("data:image/png,abc", None, "must be base64-encoded"),
        ("data:image/png;base64,@@@", None, "not valid base64"),
    ],
)
def test_bad_image_values(value, base, message):
    with pytest.raises(ImageError, match=message):
        image_sources(value, base, "row 1")


def test_bad_image_files_are_named(tmp_path):
    missing = tmp_path / "nope.png"
    with pytest.raises(ImageError, match=f"image file not found: {missing}"):
        check_image(image_source(str(missing), None, ""))
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    with pytest.raises(ImageError, match=f"not an image file PIL can read: {text}"):
        check_image(image_source(str(text), None, ""))
    truncated = tmp_path / "cut.png"
    truncated.write_bytes(png_bytes(digit_image(3))[:120])
    with pytest.raises(ImageError, match=f"unreadable image {truncated}"):
        check_image(image_source(str(truncated), None, ""))
    with pytest.raises(ImageError, match="is a folder"):
        check_image(image_source(str(tmp_path), None, ""))
    embedded = image_source(b"garbage bytes", None, "data.parquet, row 7")
    with pytest.raises(ImageError, match=r"not an image file PIL can read: data\.parquet, row 7"):
        check_image(embedded)


def test_pixel_limit_and_default(picture):
    source = image_source(str(picture), None, "")
    with pytest.raises(ImageError, match=r"48 x 48 = 2,304 pixels, more than the limit of 2,000"):
        check_image(source, ImageLimits(max_pixels=2000))
    assert check_image(source, ImageLimits(max_pixels=2304)) == (48, 48)
    assert ImageLimits().max_pixels == DEFAULT_MAX_PIXELS == Image.MAX_IMAGE_PIXELS
    # a header that claims more pixels than PIL's bomb limit is refused without decoding it
    huge = tmp_png_header(12_000, 12_000)
    with pytest.raises(ImageError, match="144,000,000 pixels, more than the limit"):
        check_image(ImageSource(data=huge, label="big.png"))


def tmp_png_header(width: int, height: int) -> bytes:
    """A PNG whose header says width x height (its pixel data is a single tiny IDAT)."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b""))
        + chunk(b"IEND", b"")
    )


def test_aspect_ratio_limit_matches_qwen2_vl(tmp_path):
    """Qwen2-VL's processors refuse aspect ratios above 200; hicra refuses them before training."""
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import (
        Qwen2VLImageProcessorPil,
    )

    processor = Qwen2VLImageProcessorPil()
    limits = limits_for(SimpleNamespace(image_processor=processor), 10**9)
    assert limits == ImageLimits(10**9, 200.0)
    wide, ok = tmp_path / "wide.png", tmp_path / "ok.png"
    Image.new("RGB", (2010, 10), "white").save(wide)
    Image.new("RGB", (1990, 10), "white").save(ok)
    with pytest.raises(ImageError, match=r"aspect ratio 201.0, above the processor's limit of 200"):
        check_image(image_source(str(wide), None, ""), limits)
    with pytest.raises(ValueError, match="aspect ratio must be smaller than 200"):
        processor(images=[Image.open(wide)], return_tensors="pt")  # what training would hit
    assert check_image(image_source(str(ok), None, ""), limits) == (1990, 10)
    assert processor(images=[Image.open(ok)], return_tensors="pt")["pixel_values"].numel() > 0
    # processors without that rule (Idefics3 resizes anything) get the pixel limit only
    from hicra.testing.tiny_vision import build_tiny_processor

    assert limits_for(build_tiny_processor()) == ImageLimits(DEFAULT_MAX_PIXELS, None)
    with pytest.raises(ImageError, match="at least 1"):
        limits_for(build_tiny_processor(), 0)


def test_placeholders_and_thumbnails():
    assert strip_placeholders("<image>Find x.") == "Find x."
    assert strip_placeholders("Find x in <image1>.") == "Find x in Image 1."
    assert strip_placeholders("Compare <image_1> and <IMAGE_2>") == "Compare Image 1 and Image 2"
    big = Image.new("RGB", (640, 320), "white")
    thumb = Image.open(io.BytesIO(thumbnail_png(big)))
    assert thumb.format == "PNG" and thumb.size == (160, 80)
    small = Image.open(io.BytesIO(thumbnail_png(digit_image(1))))
    assert small.size == (48, 48)  # never enlarged


def test_undecoded_hub_columns_give_bytes(picture):
    data = picture.read_bytes()
    ds = datasets.Dataset.from_dict(
        {"image": [{"bytes": data, "path": None}], "images": [[{"bytes": data, "path": None}]]}
    )
    ds = ds.cast_column("image", datasets.Image()).cast_column(
        "images", datasets.List(datasets.Image())
    )
    assert hasattr(ds[0]["image"], "size")  # decoded by default
    plain = undecoded(ds)
    assert plain[0]["image"]["bytes"] == data and plain[0]["images"][0]["bytes"] == data
