"""Input handling of ``hashguard.hash_image`` and ``hashguard.fingerprint``.

Covers the errors raised for broken or hostile input, conversion of every Pillow mode to the
8-bit RGB the hash is defined on, EXIF orientation, animated images, the accepted source types,
degenerate (tiny or empty) images and DCT-scaled JPEG decoding (``min_side``). Every file is
generated here, in memory or in tmp_path (the large JPEGs from the photos in examples/images).
"""

from __future__ import annotations

import hashlib
import io
import pickle
import struct
import time
import zlib
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from PIL import Image, ImageOps

import hashguard
from hashguard import ImageError, PdqHash, fingerprint, hash_image

WIDTH, HEIGHT = 160, 120
ZERO_HASH = PdqHash(bytes(32))

U8Array = npt.NDArray[np.uint8]


# --------------------------------------------------------------------------------------------
# Helpers and fixtures
# --------------------------------------------------------------------------------------------


def make_rgb(seed: int = 0, width: int = WIDTH, height: int = HEIGHT) -> U8Array:
    """Structured test content: colour gradients, a rectangle, a disc and seeded noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    img = np.stack(
        [x * 255 // (width - 1), y * 255 // (height - 1), (3 * x + y) % 256], axis=-1
    ).astype(np.int64)
    img[height // 4 : height // 2, width // 4 : 5 * width // 8] = (250, 20, 30)
    disc = (x - 3 * width // 4) ** 2 + (y - 2 * height // 3) ** 2 < (height // 5) ** 2
    img[disc] = (20, 40, 230)
    img += rng.integers(-12, 13, size=img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def make_grey(seed: int = 0, width: int = WIDTH, height: int = HEIGHT) -> U8Array:
    rgb = make_rgb(seed, width, height)
    return np.asarray(Image.fromarray(rgb).convert("L"), dtype=np.uint8)


def grey_as_rgb(grey: U8Array) -> U8Array:
    return np.repeat(grey[:, :, None], 3, axis=2)


def encode(img: Image.Image, fmt: str, **params: Any) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **params)
    return buf.getvalue()


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims ``width`` x ``height`` RGB pixels (data is short)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", zlib.compress(bytes(64)))
        + png_chunk(b"IEND", b"")
    )


def gif_claiming(width: int, height: int) -> bytes:
    """A tiny GIF whose screen and only frame claim ``width`` x ``height`` pixels."""
    screen = b"GIF89a" + struct.pack("<HHBBB", width, height, 0x80, 0, 0) + bytes(6)
    frame = b"," + struct.pack("<HHHHB", 0, 0, width, height, 0) + b"\x02\x02\x44\x01\x00"
    return screen + frame + b";"


def idat_span(png: bytes) -> tuple[int, int]:
    """(start, length) of the first IDAT chunk's data."""
    at = png.index(b"IDAT")
    (length,) = struct.unpack(">I", png[at - 4 : at])
    return at + 4, length


def expect_image_error(src: object, source: str, reason: str, **kwargs: Any) -> ImageError:
    """Asserts ``hash_image(src)`` raises exactly ImageError naming ``source``, with a reason
    matching the regex ``reason``."""
    with pytest.raises(ImageError) as info:
        hash_image(src, **kwargs)  # type: ignore[arg-type]
    err = info.value
    assert isinstance(err, hashguard.Error)
    assert err.source == source
    assert err.reason
    assert info.match(reason), err.reason
    return err


@pytest.fixture(scope="module")
def rgb() -> U8Array:
    arr = make_rgb()
    arr.flags.writeable = False
    return arr


@pytest.fixture(scope="module")
def encoded(rgb: U8Array) -> dict[str, bytes]:
    img = Image.fromarray(rgb)
    return {
        "PNG": encode(img, "PNG"),
        "JPEG": encode(img, "JPEG", quality=90),
        "GIF": encode(img, "GIF"),
        "WEBP": encode(img, "WEBP", quality=90),
        "TIFF": encode(img, "TIFF"),
        "BMP": encode(img, "BMP"),
    }


@pytest.fixture
def png_path(tmp_path: Path, encoded: dict[str, bytes]) -> Path:
    path = tmp_path / "image.png"
    path.write_bytes(encoded["PNG"])
    return path


# --------------------------------------------------------------------------------------------
# Errors: files that are missing, empty, not images, truncated or corrupt
# --------------------------------------------------------------------------------------------


def test_image_error_is_a_hashguard_error() -> None:
    assert issubclass(ImageError, hashguard.Error)
    err = ImageError("a.png", "broken")
    assert str(err) == "a.png: broken"


def test_image_error_pickles_with_source_and_reason() -> None:
    err = ImageError("/photos/a.png", "file is empty")
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is ImageError
    assert (back.source, back.reason, str(back)) == (err.source, err.reason, str(err))


def test_raised_image_error_pickles(tmp_path: Path) -> None:
    path = tmp_path / "missing.jpg"
    err = expect_image_error(path, str(path), "cannot read")
    back = pickle.loads(pickle.dumps(err))
    assert (back.source, back.reason) == (err.source, err.reason)


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.png"
    for src in (str(path), path):
        expect_image_error(src, str(path), r"cannot read file: .*(No such file|not found)")


def test_directory(tmp_path: Path) -> None:
    expect_image_error(tmp_path, str(tmp_path), "cannot read file")
    expect_image_error(str(tmp_path), str(tmp_path), "cannot read file")


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.png"
    path.touch()
    expect_image_error(path, str(path), "empty")
    expect_image_error(b"", "<bytes>", "empty")
    expect_image_error(io.BytesIO(), "<file object>", "empty")


def test_random_garbage() -> None:
    garbage = np.random.default_rng(7).integers(0, 256, 4096, dtype=np.uint8).tobytes()
    expect_image_error(garbage, "<bytes>", "not a recognised image format")
    expect_image_error(io.BytesIO(garbage), "<file object>", "not a recognised image format")


def test_text_file(tmp_path: Path) -> None:
    path = tmp_path / "notes.png"
    path.write_text("these are not the pixels you are looking for\n" * 20, encoding="utf-8")
    expect_image_error(path, str(path), "not a recognised image format")


def test_png_signature_only() -> None:
    expect_image_error(b"\x89PNG\r\n\x1a\n", "<bytes>", "not a recognised|corrupt|truncated")


@pytest.mark.parametrize("fraction", [0.1, 0.5, 0.9, 0.99])
@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_truncated_png_and_jpeg_raise(encoded: dict[str, bytes], fmt: str, fraction: float) -> None:
    data = encoded[fmt]
    cut = data[: int(len(data) * fraction)]
    expect_image_error(cut, "<bytes>", "truncated|corrupt|not a recognised")


@pytest.mark.parametrize("fraction", [0.1, 0.5, 0.9, 0.99])
@pytest.mark.parametrize("fmt", ["GIF", "WEBP", "TIFF", "BMP"])
def test_truncated_other_formats_never_raise_raw(
    encoded: dict[str, bytes], fmt: str, fraction: float
) -> None:
    # Some decoders may deliver a partial image; anything but a hash or an ImageError is a bug.
    data = encoded[fmt]
    cut = data[: int(len(data) * fraction)]
    try:
        result = hash_image(cut)
    except ImageError as err:
        assert err.source == "<bytes>"
        assert err.reason
    else:
        assert isinstance(result, PdqHash)


def test_truncated_file_on_disk_names_the_path(tmp_path: Path, encoded: dict[str, bytes]) -> None:
    path = tmp_path / "cut.jpg"
    path.write_bytes(encoded["JPEG"][: len(encoded["JPEG"]) // 2])
    expect_image_error(path, str(path), "truncated|corrupt")
    with open(path, "rb") as f:
        expect_image_error(f, str(path), "truncated|corrupt")


@pytest.mark.parametrize("where", [0.0, 0.5, 0.99])
@pytest.mark.parametrize("fix_crc", [False, True], ids=["crc-stale", "crc-recomputed"])
def test_png_with_flipped_compressed_bytes(
    encoded: dict[str, bytes], where: float, fix_crc: bool
) -> None:
    data = bytearray(encoded["PNG"])
    start, length = idat_span(bytes(data))
    at = start + int((length - 8) * where)
    data[at : at + 8] = bytes(b ^ 0xFF for b in data[at : at + 8])
    if fix_crc:
        crc = zlib.crc32(bytes(data[start - 4 : start + length]))
        data[start + length : start + length + 4] = struct.pack(">I", crc)
    expect_image_error(bytes(data), "<bytes>", "corrupt|truncated")


def test_png_with_bad_idat_crc_is_refused_or_hashed_intact(
    encoded: dict[str, bytes], rgb: U8Array
) -> None:
    # Pillow does not verify IDAT checksums; the pixel data itself is intact. Either refusing
    # the file or hashing the intact pixels is acceptable; a different hash is not.
    data = bytearray(encoded["PNG"])
    start, length = idat_span(bytes(data))
    data[start + length] ^= 0xFF
    try:
        result = hash_image(bytes(data))
    except ImageError as err:
        assert err.source == "<bytes>"
    else:
        assert result == hash_image(rgb)


def test_png_with_bad_header_crc(encoded: dict[str, bytes]) -> None:
    data = bytearray(encoded["PNG"])
    ihdr_crc = 8 + 4 + 4 + 13
    data[ihdr_crc] ^= 0xFF
    expect_image_error(bytes(data), "<bytes>", "corrupt|not a recognised")


# --------------------------------------------------------------------------------------------
# Errors: oversized and hostile images
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [png_claiming(100_000, 100_000), gif_claiming(65_535, 65_535)],
    ids=["png-100000x100000", "gif-65535x65535"],
)
def test_decompression_bomb_refused_quickly(data: bytes) -> None:
    start = time.perf_counter()
    err = expect_image_error(data, "<bytes>", "bomb|limit")
    assert time.perf_counter() - start < 1.0
    assert "pixels" in err.reason


def test_header_over_max_pixels_refused_before_decoding() -> None:
    # 5000x4000 is under Pillow's own bomb limit, so only hashguard's limit can refuse it.
    start = time.perf_counter()
    expect_image_error(
        png_claiming(5000, 4000), "<bytes>", r"5000x4000 .*limit of 1000000", max_pixels=1_000_000
    )
    assert time.perf_counter() - start < 1.0


def test_max_pixels(tmp_path: Path) -> None:
    img = Image.fromarray(make_rgb(width=100, height=100))
    data = encode(img, "PNG")
    path = tmp_path / "hundred.png"
    path.write_bytes(data)
    expect_image_error(data, "<bytes>", "limit of 5000", max_pixels=5000)
    expect_image_error(path, str(path), "limit of 5000", max_pixels=5000)
    expect_image_error(img, "<PIL.Image>", "limit of 5000", max_pixels=5000)
    # Exactly at the limit is allowed.
    assert hash_image(data, max_pixels=10_000) == hash_image(img)


# --------------------------------------------------------------------------------------------
# Errors: arrays and source types that are not supported
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.uint16, np.int8, np.int32, bool])
def test_array_with_wrong_dtype(dtype: type) -> None:
    arr = np.zeros((16, 16, 3), dtype=dtype)
    expect_image_error(arr, "<array>", "dtype must be uint8")


@pytest.mark.parametrize(
    "shape",
    [(16, 16, 2), (16, 16, 1), (16, 16, 5), (256,), (), (2, 16, 16, 3)],
    ids=str,
)
def test_array_with_wrong_shape(shape: tuple[int, ...]) -> None:
    expect_image_error(np.zeros(shape, dtype=np.uint8), "<array>", "shape must be")


@pytest.mark.parametrize("src", [42, None, 3.5, [1, 2, 3], object()], ids=repr)
def test_unsupported_source_type(src: object) -> None:
    with pytest.raises(ImageError) as info:
        hash_image(src)  # type: ignore[arg-type]
    assert info.value.reason == f"unsupported source type {type(src).__name__}"
    assert info.value.source == f"<{type(src).__name__}>"


def test_formats_outside_the_allow_list_are_refused_unread() -> None:
    # EPS would be handed to Ghostscript; a valid-looking header must not get that far.
    eps = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n%%EOF\n"
    expect_image_error(eps, "<bytes>", "not a recognised image format")
    assert "EPS" not in hashguard.image.FORMATS


def test_array_over_max_pixels() -> None:
    expect_image_error(
        np.zeros((100, 100, 3), np.uint8), "<array>", "limit of 5000", max_pixels=5000
    )


def test_text_mode_file_objects(tmp_path: Path, png_path: Path) -> None:
    text_path = tmp_path / "a.txt"
    text_path.write_text("hello\n", encoding="utf-8")
    with open(text_path, encoding="utf-8") as f:
        expect_image_error(f, str(text_path), "binary mode")
    expect_image_error(io.StringIO("hello"), "<file object>", "binary mode")
    # Decoding an image's bytes as text fails inside read(): still an ImageError.
    with open(png_path, encoding="utf-8") as f:
        expect_image_error(f, str(png_path), "cannot read file object|binary mode")


def test_closed_file_object(png_path: Path) -> None:
    f = open(png_path, "rb")  # noqa: SIM115
    f.close()
    expect_image_error(f, str(png_path), "cannot read file object")


def test_fingerprint_needs_file_bytes(rgb: U8Array) -> None:
    for src, name in ((Image.fromarray(rgb), "<PIL.Image>"), (rgb, "<array>")):
        with pytest.raises(ImageError) as info:
            fingerprint(src)
        assert info.value.source == name
        assert "bytes" in info.value.reason


def test_fingerprint_matches_hash_and_digests(png_path: Path, rgb: U8Array) -> None:
    data = png_path.read_bytes()
    for src in (png_path, data, io.BytesIO(data)):
        fp = fingerprint(src)
        assert fp.pdq == hash_image(rgb)
        assert fp.md5 == hashlib.md5(data).hexdigest()
        assert fp.sha256 == hashlib.sha256(data).hexdigest()


def test_fingerprint_errors_name_the_source(tmp_path: Path) -> None:
    path = tmp_path / "empty.jpg"
    path.touch()
    with pytest.raises(ImageError) as info:
        fingerprint(path)
    assert info.value.source == str(path)
    with pytest.raises(ImageError) as info:
        fingerprint(b"not an image")
    assert info.value.source == "<bytes>"


@pytest.mark.parametrize("mode", Image.MODES)
def test_every_pillow_mode_hashes_or_raises_image_error(mode: str) -> None:
    img = Image.new(mode, (32, 24))
    try:
        result = hash_image(img)
    except ImageError as err:
        assert err.source == "<PIL.Image>"
        assert mode in err.reason
    else:
        assert isinstance(result, PdqHash)


# --------------------------------------------------------------------------------------------
# Pillow modes: every mode hashes like the 8-bit RGB image it shows
# --------------------------------------------------------------------------------------------


def test_rgba_alpha_is_dropped_without_compositing(rgb: U8Array) -> None:
    alpha = np.random.default_rng(1).integers(0, 256, rgb.shape[:2], dtype=np.uint8)
    rgba = np.dstack([rgb, alpha])
    assert hash_image(Image.fromarray(rgba, "RGBA")) == hash_image(rgb)
    # Compositing onto black or white would change the hash.
    onto_black = (rgb * (alpha[:, :, None] / 255.0)).astype(np.uint8)
    assert hash_image(onto_black) != hash_image(rgb)


def test_la_alpha_is_dropped() -> None:
    grey = make_grey()
    alpha = np.random.default_rng(2).integers(0, 256, grey.shape, dtype=np.uint8)
    la = Image.merge("LA", [Image.fromarray(grey), Image.fromarray(alpha)])
    assert hash_image(la) == hash_image(grey_as_rgb(grey))


def palette_image(rgb: U8Array) -> tuple[Image.Image, U8Array]:
    """A P image quantised from ``rgb`` and the RGB pixels its palette says it shows."""
    p = Image.fromarray(rgb).quantize(64)
    palette = np.asarray(p.getpalette(), dtype=np.uint8).reshape(-1, 3)
    return p, palette[np.asarray(p)]


def test_palette_hashes_the_colours_not_the_indices(rgb: U8Array) -> None:
    p, shown = palette_image(rgb)
    assert hash_image(p) == hash_image(shown)
    assert hash_image(p) == hash_image(p.convert("RGB"))
    # Hashing the indices as grey (the naive approach) gives a very different hash.
    assert hash_image(p) - hash_image(np.asarray(p)) > 32


def transparent_palette_image(rgb: U8Array) -> tuple[Image.Image, U8Array]:
    p, shown = palette_image(rgb)
    p.info["transparency"] = int(np.asarray(p)[HEIGHT // 3, WIDTH // 3])
    return p, shown


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("fmt", [None, "PNG", "GIF"])
def test_palette_transparency_is_ignored_without_warnings(rgb: U8Array, fmt: str | None) -> None:
    p, shown = transparent_palette_image(rgb)
    src = p if fmt is None else encode(p, fmt)
    assert hash_image(src) == hash_image(shown)


def test_hashing_a_palette_image_leaves_it_unchanged(rgb: U8Array) -> None:
    # The caller's image is theirs: hashing it must not change what it holds or how it saves.
    p, _ = transparent_palette_image(rgb)
    saved = {fmt: encode(p, fmt) for fmt in ("GIF", "PNG")}
    core_palette = p.im.getpalette("RGBA", "RGBA")
    hash_image(p)
    assert p.im.getpalette("RGBA", "RGBA") == core_palette
    assert {fmt: encode(p, fmt) for fmt in ("GIF", "PNG")} == saved


def test_pa_alpha_is_dropped(rgb: U8Array) -> None:
    p, shown = palette_image(rgb)
    pa = p.convert("PA")
    pa.putalpha(Image.fromarray(np.random.default_rng(3).integers(0, 256, rgb.shape[:2], np.uint8)))
    assert pa.mode == "PA"
    assert hash_image(pa) == hash_image(shown)


def test_bilevel_hashes_as_black_and_white() -> None:
    on = make_grey() > 128
    bilevel = Image.fromarray(on)
    assert bilevel.mode == "1"
    expected = hash_image(Image.fromarray(np.where(on, 255, 0).astype(np.uint8), "L"))
    result = hash_image(bilevel)
    assert result == expected
    assert result.quality is not None
    assert result.quality > 0


def test_cmyk_converts_to_the_colours_it_shows(rgb: U8Array) -> None:
    cmyk = Image.fromarray(rgb).convert("CMYK")
    assert hash_image(cmyk) - hash_image(rgb) <= 8
    # Treating C, M and Y as R, G and B would hash the negative.
    cmy_as_rgb = np.ascontiguousarray(np.asarray(cmyk)[:, :, :3])
    assert hash_image(cmy_as_rgb) - hash_image(rgb) > 100


def test_cmyk_jpeg_file(rgb: U8Array) -> None:
    data = encode(Image.fromarray(rgb).convert("CMYK"), "JPEG", quality=95)
    assert Image.open(io.BytesIO(data)).mode == "CMYK"
    assert hash_image(data) - hash_image(rgb) <= 16


def make_grey16(seed: int = 0) -> npt.NDArray[np.uint16]:
    """16-bit grey spanning the full range, with detail below the top byte."""
    fine = np.random.default_rng(seed).integers(0, 257, (HEIGHT, WIDTH))
    return np.clip(make_grey(seed).astype(np.int64) * 257 + fine - 128, 0, 65535).astype(np.uint16)


def scaled16(values: npt.NDArray[Any]) -> U8Array:
    return np.rint(values.astype(np.float64) / 257.0).astype(np.uint8)


@pytest.mark.parametrize("mode, dtype", [("I;16", "<u2"), ("I;16L", "<u2"), ("I;16B", ">u2")])
def test_16bit_grey_is_scaled_not_clipped(mode: str, dtype: str) -> None:
    g16 = make_grey16()
    img = Image.frombytes(mode, (WIDTH, HEIGHT), g16.astype(dtype).tobytes())
    result = hash_image(img)
    assert result == hash_image(grey_as_rgb(scaled16(g16)))
    assert result.quality == 100
    # Clipping to 0-255 instead would see an almost uniformly white image.
    clipped = hash_image(grey_as_rgb(np.clip(g16, 0, 255).astype(np.uint8)))
    assert clipped != result
    assert clipped.quality is not None
    assert clipped.quality < 10


def test_16bit_grey_from_array_and_png_file() -> None:
    g16 = make_grey16()
    img = Image.fromarray(g16)
    assert img.mode == "I;16"
    expected = hash_image(grey_as_rgb(scaled16(g16)))
    assert hash_image(img) == expected
    data = encode(img, "PNG")
    assert Image.open(io.BytesIO(data)).mode.startswith("I")
    assert hash_image(data) == expected


def test_int32_grey_with_16bit_range_is_scaled() -> None:
    g16 = make_grey16()
    img = Image.fromarray(g16.astype(np.int32))
    assert img.mode == "I"
    assert hash_image(img) == hash_image(grey_as_rgb(scaled16(g16)))


def test_int32_grey_with_8bit_range_is_taken_as_8bit() -> None:
    grey = make_grey()
    img = Image.fromarray(grey.astype(np.int32))
    assert img.mode == "I"
    assert hash_image(img) == hash_image(grey_as_rgb(grey))


@pytest.mark.parametrize("scale", [1.0 / 255.0, 1.0], ids=["0..1", "0..255"])
def test_float_grey_is_scaled(scale: float) -> None:
    grey = make_grey()
    img = Image.fromarray((grey * scale).astype(np.float32))
    assert img.mode == "F"
    assert hash_image(img) == hash_image(grey_as_rgb(grey))


def test_float_grey_not_a_number_reads_as_black() -> None:
    grey = make_grey().astype(np.float32)
    grey[:10, :10] = np.nan
    grey[20:30, :10] = np.inf
    cleaned = np.nan_to_num(grey, nan=0.0, posinf=0.0).astype(np.uint8)
    assert hash_image(Image.fromarray(grey)) == hash_image(grey_as_rgb(cleaned))


def test_grey_image_hashes_like_its_rgb_version() -> None:
    grey = make_grey()
    img = Image.fromarray(grey)
    assert img.mode == "L"
    result = hash_image(img)
    assert result == hash_image(img.convert("RGB"))
    assert result == hash_image(grey_as_rgb(grey))
    # A 2-D array takes the native grey path; it agrees to within rounding.
    direct = hash_image(grey)
    assert isinstance(direct, PdqHash)
    assert direct.quality == result.quality
    assert direct - result <= 4


def test_ycbcr_is_close_to_rgb(rgb: U8Array) -> None:
    img = Image.fromarray(rgb).convert("YCbCr")
    assert img.mode == "YCbCr"
    assert hash_image(img) - hash_image(rgb) <= 8


def test_lab_is_close_to_rgb(rgb: U8Array) -> None:
    img = Image.fromarray(rgb).convert("LAB")
    assert img.mode == "LAB"
    assert hash_image(img) - hash_image(rgb) <= 16
    # Hashing L, a and b as if they were R, G and B would be far off.
    assert hash_image(np.ascontiguousarray(np.asarray(img))) - hash_image(rgb) > 16


# --------------------------------------------------------------------------------------------
# EXIF orientation
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rotated_jpeg(rgb: U8Array) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to display.
    return encode(Image.fromarray(rgb), "JPEG", exif=exif.tobytes(), quality=95)


def test_exif_orientation_is_ignored_by_default(rotated_jpeg: bytes) -> None:
    stored = np.asarray(Image.open(io.BytesIO(rotated_jpeg)).convert("RGB"))
    assert stored.shape == (HEIGHT, WIDTH, 3)
    assert hash_image(rotated_jpeg) == hash_image(stored)
    assert hash_image(rotated_jpeg, apply_exif=False) == hash_image(stored)


def test_exif_orientation_applied_on_request(rotated_jpeg: bytes) -> None:
    stored = np.asarray(Image.open(io.BytesIO(rotated_jpeg)).convert("RGB"))
    shown = ImageOps.exif_transpose(Image.open(io.BytesIO(rotated_jpeg)))
    assert shown.size == (HEIGHT, WIDTH)
    applied = hash_image(rotated_jpeg, apply_exif=True)
    assert applied == hash_image(shown)
    assert applied == hash_image(np.ascontiguousarray(np.rot90(stored, k=-1)))
    assert applied - hash_image(rotated_jpeg) > 32
    # The same for an already opened Pillow image.
    assert hash_image(Image.open(io.BytesIO(rotated_jpeg)), apply_exif=True) == applied


def test_apply_exif_without_orientation_changes_nothing(encoded: dict[str, bytes]) -> None:
    data = encoded["JPEG"]
    assert hash_image(data, apply_exif=True) == hash_image(data)


# --------------------------------------------------------------------------------------------
# Animated images: the first frame is hashed
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def frames() -> list[U8Array]:
    first = make_rgb(0)
    return [first, 255 - first, np.ascontiguousarray(first[::-1, ::-1])]


@pytest.fixture(scope="module")
def animated_gif(frames: list[U8Array]) -> tuple[bytes, list[U8Array]]:
    """An animated GIF and the RGB pixels of its frames (quantised to one shared palette)."""
    first = Image.fromarray(frames[0]).quantize(128)
    paletted = [first] + [Image.fromarray(f).quantize(palette=first) for f in frames[1:]]
    data = encode(paletted[0], "GIF", save_all=True, append_images=paletted[1:], duration=100)
    return data, [np.asarray(p.convert("RGB")) for p in paletted]


def test_animated_gif_hashes_the_first_frame(
    tmp_path: Path, animated_gif: tuple[bytes, list[U8Array]]
) -> None:
    data, shown = animated_gif
    path = tmp_path / "anim.gif"
    path.write_bytes(data)
    with Image.open(path) as img:
        assert img.n_frames == 3
    first, last = hash_image(shown[0]), hash_image(shown[2])
    assert first - last > 64
    assert hash_image(path) == first
    assert hash_image(data) == first
    with Image.open(path) as img:
        assert hash_image(img.convert("RGB")) == first


def test_seeked_animated_image_still_hashes_the_first_frame(
    animated_gif: tuple[bytes, list[U8Array]],
) -> None:
    data, shown = animated_gif
    with Image.open(io.BytesIO(data)) as img:
        img.seek(2)
        assert hash_image(img.convert("RGB")) == hash_image(shown[2])
        assert hash_image(img) == hash_image(shown[0])
        assert img.tell() == 2, "the caller's image is left on its frame"


def test_animated_webp_hashes_the_first_frame(frames: list[U8Array]) -> None:
    images = [Image.fromarray(f) for f in frames]
    data = encode(images[0], "WEBP", save_all=True, append_images=images[1:], lossless=True)
    with Image.open(io.BytesIO(data)) as img:
        assert img.n_frames == 3
        img.seek(2)
        assert hash_image(img) == hash_image(frames[0])
    assert hash_image(data) == hash_image(frames[0])
    assert hash_image(data) - hash_image(frames[2]) > 64


# --------------------------------------------------------------------------------------------
# Sources: every way to pass the same pixels gives the same hash
# --------------------------------------------------------------------------------------------


SOURCE_MAKERS: dict[str, Callable[[Path, bytes, U8Array], object]] = {
    "str path": lambda path, data, arr: str(path),
    "pathlib.Path": lambda path, data, arr: path,
    "bytes": lambda path, data, arr: data,
    "bytearray": lambda path, data, arr: bytearray(data),
    "memoryview": lambda path, data, arr: memoryview(data),
    "BytesIO": lambda path, data, arr: io.BytesIO(data),
    "PIL image": lambda path, data, arr: Image.fromarray(arr),
    "opened PIL image": lambda path, data, arr: Image.open(path),
    "HxWx3 array": lambda path, data, arr: arr,
    "HxWx4 array": lambda path, data, arr: np.dstack([arr, np.full(arr.shape[:2], 9, np.uint8)]),
    "read-only array": lambda path, data, arr: np.frombuffer(arr.tobytes(), np.uint8).reshape(
        arr.shape
    ),
}


@pytest.mark.parametrize("kind", SOURCE_MAKERS)
def test_sources_give_the_same_hash(png_path: Path, rgb: U8Array, kind: str) -> None:
    src = SOURCE_MAKERS[kind](png_path, png_path.read_bytes(), rgb)
    result = hash_image(src)  # type: ignore[arg-type]
    assert result == hash_image(rgb)
    assert result.quality == 100


def test_open_binary_file(png_path: Path, rgb: U8Array) -> None:
    with open(png_path, "rb") as f:
        assert hash_image(f) == hash_image(rgb)


def test_rgba_array_equals_rgb_array_with_alpha_removed(rgb: U8Array) -> None:
    alpha = np.random.default_rng(4).integers(0, 256, rgb.shape[:2], dtype=np.uint8)
    rgba = np.dstack([rgb, alpha])
    assert hash_image(rgba) == hash_image(rgb)
    assert hash_image(rgba) == hash_image(Image.fromarray(rgba, "RGBA"))


def big_rgb() -> U8Array:
    return make_rgb(5, width=2 * WIDTH, height=2 * HEIGHT)


VIEW_MAKERS: dict[str, Callable[[], U8Array]] = {
    "every other pixel": lambda: big_rgb()[::2, ::2],
    "window of a larger array": lambda: big_rgb()[30 : 30 + HEIGHT, 50 : 50 + WIDTH],
    "flipped (negative strides)": lambda: big_rgb()[::-1, ::-1],
    "Fortran order": lambda: np.asfortranarray(big_rgb()),
    "channels of an RGBA array": lambda: np.dstack([big_rgb(), big_rgb()[:, :, :1]])[:, :, :3],
    "grey every other pixel": lambda: big_rgb()[::2, ::2, 1],
}


@pytest.mark.parametrize("kind", VIEW_MAKERS)
def test_non_contiguous_arrays(kind: str) -> None:
    view = VIEW_MAKERS[kind]()
    assert not view.flags.c_contiguous
    copy = np.ascontiguousarray(view)
    assert hash_image(view) == hash_image(copy)
    # The Pillow path sees the same pixels (a grey image within rounding of the grey path).
    assert hash_image(view) - hash_image(Image.fromarray(copy)) <= (4 if view.ndim == 2 else 0)


# --------------------------------------------------------------------------------------------
# Tiny and empty images
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [(4, 7), (7, 4), (4, 4), (1, 1)], ids=str)
def test_images_under_5_pixels_a_side_have_zero_hash(size: tuple[int, int]) -> None:
    width, height = size
    arr = make_rgb(width=max(width, 2), height=max(height, 2))[:height, :width]
    for src in (
        np.ascontiguousarray(arr),
        Image.fromarray(arr),
        encode(Image.fromarray(arr), "PNG"),
    ):
        result = hash_image(src)
        assert result == ZERO_HASH
        assert result.quality == 0


def test_5x5_image_has_a_real_hash() -> None:
    arr = np.random.default_rng(6).integers(0, 256, (5, 5, 3), dtype=np.uint8)
    result = hash_image(arr)
    assert result != ZERO_HASH
    assert result.quality is not None
    assert 0 < result.quality <= 100
    assert hash_image(encode(Image.fromarray(arr), "PNG")) == result


@pytest.mark.parametrize(
    "shape", [(0, 0, 3), (0, 0), (0, 0, 4), (3, 0), (0, 4, 3), (0, 4)], ids=str
)
def test_empty_arrays_have_zero_hash(shape: tuple[int, ...]) -> None:
    result = hash_image(np.zeros(shape, dtype=np.uint8))
    assert result == ZERO_HASH
    assert result.quality == 0


def test_empty_slice_of_a_larger_array_has_zero_hash(rgb: U8Array) -> None:
    result = hash_image(rgb[:, 0:0])
    assert result == ZERO_HASH
    assert result.quality == 0


@pytest.mark.parametrize("size", [(0, 0), (0, 5), (5, 0)], ids=str)
def test_empty_pil_images_have_zero_hash(size: tuple[int, int]) -> None:
    result = hash_image(Image.new("RGB", size))
    assert result == ZERO_HASH
    assert result.quality == 0


# --------------------------------------------------------------------------------------------
# DCT-scaled JPEG decoding (min_side): docs/decoding.md
# --------------------------------------------------------------------------------------------

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "images"


def upscaled_jpeg(path: Path, long_side: int) -> bytes:
    """A sample photo resized (LANCZOS) to ``long_side``, as JPEG q=92."""
    with Image.open(path) as img:
        rgb = img.convert("RGB")
    scale = long_side / max(rgb.size)
    big = rgb.resize((round(rgb.width * scale), round(rgb.height * scale)), Image.LANCZOS)
    return encode(big, "JPEG", quality=92)


@pytest.fixture(scope="module")
def large_jpeg() -> bytes:
    """The coffee sample photo at 2016x1344 (a quarter of 12 MP)."""
    return upscaled_jpeg(EXAMPLES / "coffee.jpg", 2016)


def full_pixels(data: bytes) -> U8Array:
    """What decoding gave before min_side existed."""
    with Image.open(io.BytesIO(data)) as img:
        return np.asarray(img.convert("RGB"))


def decoded(data: bytes, **kwargs: Any) -> U8Array:
    """The RGB pixels ``image.load`` hashes (RGB8, or RGBA8 whose fourth byte is ignored)."""
    pixels = hashguard.image.load(data, **kwargs)
    assert pixels.layout in (hashguard.image.RGB8, hashguard.image.RGBA8)
    assert pixels.array.flags.c_contiguous
    assert pixels.array.dtype == np.uint8
    return pixels.array[:, :, :3]


def box_resized(arr: U8Array, shape: tuple[int, ...]) -> npt.NDArray[np.int16]:
    small = Image.fromarray(arr).resize((shape[1], shape[0]), Image.BOX)
    return np.asarray(small, dtype=np.int16)


def assert_same_picture(full: U8Array, scaled: U8Array) -> None:
    """A DCT-scaled decode is close to the full decode box-averaged to the same size."""
    assert np.abs(box_resized(full, scaled.shape) - scaled).mean() < 2.0


@pytest.mark.parametrize(
    "width, height, min_side, scale",
    [
        (4032, 3024, 256, 8),  # 504x378
        (4032, 3024, 384, 4),  # 378 < 384: 1008x756
        (4032, 3024, 512, 4),
        (4032, 3024, 768, 2),  # 756 < 768: 2016x1512
        (4032, 3024, 1024, 2),
        (4032, 3024, 1512, 2),
        (4032, 3024, 1513, 1),
        (3024, 4032, 768, 2),  # portrait: the short side decides
        (1000, 1001, 125, 8),  # 125 = 1000 / 8
        (1001, 1000, 126, 4),  # ceil(1001 / 8) is 126, but the short side gives 125
        (1001, 1003, 126, 8),  # libjpeg rounds up: ceil(1001 / 8) = 126
        (640, 480, 512, 1),
        (8, 8, 1, 8),
        (1, 1, 2, 1),
        (15, 20, 2, 8),  # decodes to 2x3
    ],
)
def test_dct_scale(width: int, height: int, min_side: int, scale: int) -> None:
    assert hashguard.image.dct_scale(width, height, min_side) == scale


@pytest.mark.parametrize("min_side", [100, 128, 200, 300, 500, 672])
def test_draft_decode_keeps_the_short_side_between_s_and_2s(
    large_jpeg: bytes, min_side: int
) -> None:
    full = full_pixels(large_jpeg)
    assert full.shape[:2] == (1344, 2016)
    arr = decoded(large_jpeg, min_side=min_side)
    assert min_side <= min(arr.shape[:2]) < 2 * min_side
    scale = hashguard.image.dct_scale(2016, 1344, min_side)
    assert scale > 1
    assert arr.shape == (-(-1344 // scale), -(-2016 // scale), 3)
    assert_same_picture(full, arr)


def test_draft_scale_stops_at_one_eighth(large_jpeg: bytes) -> None:
    arr = decoded(large_jpeg, min_side=10)
    assert arr.shape == (168, 252, 3)


def test_min_side_none_gives_exactly_the_old_pixels(large_jpeg: bytes) -> None:
    old = full_pixels(large_jpeg)
    assert np.array_equal(decoded(large_jpeg), old)
    assert np.array_equal(decoded(large_jpeg, min_side=None), old)
    expected = hash_image(old)
    assert hash_image(large_jpeg) == expected
    assert hash_image(large_jpeg, min_side=None) == expected
    assert fingerprint(large_jpeg).pdq == expected


@pytest.mark.parametrize("min_side", [672, 1000, 1344, 5000])
def test_jpegs_too_small_to_scale_are_decoded_in_full(large_jpeg: bytes, min_side: int) -> None:
    # 1344 / 2 = 672 still reaches 672; anything above it cannot be halved.
    if min_side == 672:
        assert decoded(large_jpeg, min_side=min_side).shape[0] == 672
        return
    assert np.array_equal(decoded(large_jpeg, min_side=min_side), full_pixels(large_jpeg))
    assert hash_image(large_jpeg, min_side=min_side) == hash_image(large_jpeg)


@pytest.mark.parametrize("fmt", ["PNG", "WEBP", "TIFF", "BMP", "GIF"])
def test_other_formats_are_decoded_in_full(fmt: str) -> None:
    img = Image.fromarray(make_rgb(8, width=400, height=320))
    data = encode(img, fmt, **({"lossless": True} if fmt == "WEBP" else {}))
    assert decoded(data, min_side=16).shape == (320, 400, 3)
    assert hash_image(data, min_side=16) == hash_image(data)


def test_pil_images_are_used_as_given(large_jpeg: bytes) -> None:
    # An image the caller opened is theirs: it is neither scaled nor changed.
    with Image.open(io.BytesIO(large_jpeg)) as img:
        assert hash_image(img, min_side=200) == hash_image(large_jpeg)
        assert img.size == (2016, 1344)
        assert np.array_equal(np.asarray(img.convert("RGB")), full_pixels(large_jpeg))


def test_all_sources_of_jpeg_bytes_are_scaled(tmp_path: Path, large_jpeg: bytes) -> None:
    path = tmp_path / "large.jpg"
    path.write_bytes(large_jpeg)
    expected = hash_image(large_jpeg, min_side=300)
    assert expected != hash_image(large_jpeg)
    for src in (path, str(path), io.BytesIO(large_jpeg), bytearray(large_jpeg)):
        assert hash_image(src, min_side=300) == expected
    fp = fingerprint(path, min_side=300)
    assert fp.pdq == expected
    assert fp.sha256 == hashlib.sha256(large_jpeg).hexdigest()
    assert list(hashguard.hash_many([path, large_jpeg], workers=2, min_side=300)) == [
        expected,
        expected,
    ]


def test_pixel_limit_applies_to_the_full_size(large_jpeg: bytes) -> None:
    # 2016x1344 is 2.7 megapixels; at 1/8 it would decode to only 252x168.
    expect_image_error(
        large_jpeg, "<bytes>", r"2016x1344 .*limit of 1000000", max_pixels=1_000_000, min_side=8
    )
    assert hash_image(large_jpeg, max_pixels=2016 * 1344, min_side=8) == hash_image(
        large_jpeg, min_side=8
    )


@pytest.mark.parametrize("min_side", [0, -1, 1.5, True, "512"], ids=repr)
def test_min_side_must_be_a_positive_int(large_jpeg: bytes, min_side: object) -> None:
    with pytest.raises(ValueError, match="min_side"):
        hash_image(large_jpeg, min_side=min_side)  # type: ignore[arg-type]


JPEG_KINDS: dict[str, Callable[[Image.Image], bytes]] = {
    "baseline 4:2:0": lambda img: encode(img, "JPEG", quality=90),
    "4:4:4": lambda img: encode(img, "JPEG", quality=90, subsampling=0),
    "progressive": lambda img: encode(img, "JPEG", quality=90, progressive=True),
    "optimised huffman": lambda img: encode(img, "JPEG", quality=80, optimize=True),
    "greyscale": lambda img: encode(img.convert("L"), "JPEG", quality=90),
    "CMYK": lambda img: encode(img.convert("CMYK"), "JPEG", quality=90),
    "MPO": lambda img: encode(
        img, "MPO", save_all=True, append_images=[img.transpose(Image.FLIP_LEFT_RIGHT)]
    ),
}


@pytest.mark.parametrize("kind", JPEG_KINDS)
def test_draft_decodes_every_kind_of_jpeg(large_jpeg: bytes, kind: str) -> None:
    with Image.open(io.BytesIO(large_jpeg)) as img:
        data = JPEG_KINDS[kind](img.convert("RGB"))
    full = decoded(data)
    scaled = decoded(data, min_side=300)
    assert scaled.shape == (336, 504, 3)
    assert_same_picture(full, scaled)
    if kind == "greyscale":
        assert np.array_equal(scaled[:, :, 0], scaled[:, :, 2])
    assert hash_image(data, min_side=300) - hash_image(data) < 32


def test_draft_with_exif_orientation(large_jpeg: bytes) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    with Image.open(io.BytesIO(large_jpeg)) as img:
        data = encode(img, "JPEG", quality=90, exif=exif.tobytes())
    stored = decoded(data, min_side=300)
    shown = decoded(data, min_side=300, apply_exif=True)
    assert stored.shape == (336, 504, 3)
    assert np.array_equal(shown, np.rot90(stored, k=-1))
    assert_same_picture(decoded(data, apply_exif=True), shown)
    # The full size the hash follows turns with the pixels.
    assert hashguard.image.load(data, min_side=300).full_size == (2016, 1344)
    assert hashguard.image.load(data, min_side=300, apply_exif=True).full_size == (1344, 2016)
    full = hash_image(data, apply_exif=True)
    assert full - hash_image(data, min_side=300, apply_exif=True) <= 8


@pytest.mark.parametrize("min_side", [100, 168, 300, 672])
def test_scaled_decodes_are_hashed_at_the_full_size(large_jpeg: bytes, min_side: int) -> None:
    pixels = hashguard.image.load(large_jpeg, min_side=min_side)
    assert pixels.full_size == (2016, 1344)
    assert hashguard.image.load(large_jpeg).full_size is None
    full = hash_image(large_jpeg)
    scaled = hash_image(large_jpeg, min_side=min_side)
    assert scaled == hashguard.hashing.hash_pixels(pixels)
    # The same pixels hashed as a small image of their own: PDQ's blur and grid shrink with
    # the image, and the hash drifts further from the full decode's.
    own_size = hashguard.hashing.hash_pixels(replace(pixels, full_size=None))
    assert full - scaled <= 8, (full - scaled, full - own_size)
    assert full - scaled <= full - own_size
    # Every dihedral variant follows the full size too.
    dihedral = hash_image(large_jpeg, min_side=min_side, dihedral=True)
    exact = hash_image(large_jpeg, dihedral=True)
    for name, h in dihedral.dihedral().items():
        assert exact.dihedral()[name] - h <= 8, name


@pytest.mark.parametrize("name", ["camera", "coffee"])
def test_drift_on_the_sample_photos_at_the_default_floor(name: str) -> None:
    s = hashguard.image.DEFAULT_MIN_SIDE
    native = (EXAMPLES / f"{name}.jpg").read_bytes()
    assert hash_image(native, min_side=s) == hash_image(native)  # too small to be scaled
    # Upscaled so that the short side is 2 * S, the smallest size decoded at 1/2 (e.g. 4096x4096).
    with Image.open(EXAMPLES / f"{name}.jpg") as img:
        rgb = img.convert("RGB")
    k = 2 * s / min(rgb.size)
    big = rgb.resize((round(rgb.width * k), round(rgb.height * k)), Image.BICUBIC)
    data = encode(big, "JPEG", quality=90)
    assert min(decoded(data, min_side=s).shape[:2]) == s
    full, scaled = hash_image(data), hash_image(data, min_side=s)
    assert full - scaled < 10
    assert full.quality == scaled.quality == 100
