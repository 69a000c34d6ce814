"""Turning what callers hand us (paths, bytes, files, Pillow images, arrays) into pixel buffers.

Every decoded image is hashed from 8-bit RGB, the buffer the conformance vectors are defined
on; alpha is dropped without compositing, as the reference does. Any failure becomes an
:class:`~hashguard.ImageError` that names the source.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import IO, Final, TypeAlias, Union

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageCms, ImageOps, JpegImagePlugin, UnidentifiedImageError

from hashguard.errors import ImageError, NotAnImage

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "DEFAULT_MIN_SIDE",
    "MAX_FILE_BYTES",
    "Pixels",
    "Source",
    "dct_scale",
    "frames",
    "load",
    "read_source",
    "source_name",
]

#: Images with more pixels than this are refused before they are decoded. It is Pillow's own
#: default limit (about 89 megapixels); to hash larger images, pass a larger ``max_pixels`` and
#: raise ``PIL.Image.MAX_IMAGE_PIXELS`` to match, or Pillow refuses them first.
DEFAULT_MAX_PIXELS: Final = 89_478_485

#: The formats Pillow may decode for us: what phones, cameras, browsers and cloud drives hold
#: (JPEG includes multi-picture MPO files; AVIF needs a Pillow built with libavif; HEIF needs
#: the ``heif`` extra, pillow-heif).
#: Everything else (EPS, which would run Ghostscript, among them) is refused unread.
FORMATS: Final = (
    "JPEG",
    "PNG",
    "GIF",
    "WEBP",
    "BMP",
    "DIB",
    "TIFF",
    "ICO",
    "PPM",
    "TGA",
    "AVIF",
    "HEIF",
)

try:  # HEIC/HEIF photos (iPhones) need the optional extra: pip install hashguard[heif]
    import pillow_heif
except ImportError:
    pass
else:
    pillow_heif.register_heif_opener()

#: The short-side floor for fast (DCT-scaled) JPEG decoding: ``load(..., min_side=S)`` decodes a
#: JPEG at the smallest libjpeg scale (1/2, 1/4, 1/8) whose output keeps the short side >= S, and
#: the hash is computed at the full image's geometry (``Pixels.full_size``). Chosen from the drift
#: measured on a real-photo corpus at native size and upscaled to 12 and 48 MP (docs/decoding.md;
#: ``bench/drift.py`` reproduces it): below about 350 decoded pixels a side the drift reaches 8-12
#: bits; from 352 up it stays at 6 or less on every set. A 4032x3024 photo decodes at 1/8
#: (504x378), a 1920x1080 one at 1/2. Not the default of ``load`` or ``hash_image``: their
#: default (``min_side=None``) decodes in full, for hashes bit-identical to the reference.
DEFAULT_MIN_SIDE: Final = 352

#: libjpeg's DCT down-scaling factors that Pillow's ``Image.draft`` can ask for, largest first.
DCT_SCALES: Final = (8, 4, 2)

#: Files larger than this are refused before they are read.
MAX_FILE_BYTES: Final = 1 << 30

Source: TypeAlias = Union[
    str, "os.PathLike[str]", bytes, bytearray, memoryview, IO[bytes], Image.Image, np.ndarray
]

# Native pixel layouts (hg_pixel_layout in native/include/hashguard.h).
RGB8: Final = 0
RGBA8: Final = 1
GREY8: Final = 4

_CHANNELS_TO_LAYOUT: Final = {3: RGB8, 4: RGBA8}


@dataclass(frozen=True)
class Pixels:
    """A C-contiguous uint8 array (H x W or H x W x C) and its native layout code.
    ``full_size`` is (width, height) of the image the array was decoded down from by DCT
    scaling, which the hash then follows; None when the array is the image at its own size."""

    array: npt.NDArray[np.uint8]
    layout: int
    full_size: tuple[int, int] | None = None


def source_name(src: object) -> str:
    """How errors refer to an input."""
    if isinstance(src, (str, os.PathLike)):
        return os.fsdecode(src)
    if isinstance(src, (bytes, bytearray, memoryview)):
        return "<bytes>"
    if isinstance(src, Image.Image):
        return "<PIL.Image>"
    if isinstance(src, np.ndarray):
        return "<array>"
    if hasattr(src, "read"):
        name = getattr(src, "name", None)
        return name if isinstance(name, str) else "<file object>"
    return f"<{type(src).__name__}>"


def read_source(src: Source) -> bytes | None:
    """The encoded bytes of a path, bytes or binary file; None for images and arrays."""
    name = source_name(src)
    if isinstance(src, (Image.Image, np.ndarray)):
        return None
    if isinstance(src, (bytes, bytearray, memoryview)):
        data = bytes(src)
    elif isinstance(src, (str, os.PathLike)):
        try:
            with open(src, "rb") as f:
                # Sized by the file (one byte more, to notice growth), not by the cap: a read of
                # the cap would allocate a 1 GiB buffer for every file.
                size = os.fstat(f.fileno()).st_size
                if size > MAX_FILE_BYTES:
                    raise ImageError(name, f"file is larger than {MAX_FILE_BYTES} bytes")
                data = f.read(size + 1)
        except OSError as e:
            raise ImageError(name, f"cannot read file: {e.strerror or e}") from None
    elif hasattr(src, "read"):
        try:
            data = src.read(MAX_FILE_BYTES + 1)
        except Exception as e:
            raise ImageError(name, f"cannot read file object: {e}") from None
        if not isinstance(data, (bytes, bytearray)):
            raise ImageError(name, "file object is not opened in binary mode")
        data = bytes(data)
    else:
        raise ImageError(name, f"unsupported source type {type(src).__name__}")
    if len(data) > MAX_FILE_BYTES:
        raise ImageError(name, f"file is larger than {MAX_FILE_BYTES} bytes")
    if not data:
        raise ImageError(name, "file is empty")
    return data


def dct_scale(width: int, height: int, min_side: int) -> int:
    """The largest DCT down-scaling divisor (8, 4, 2, or 1 for none) whose decoded size keeps
    the short side of a ``width`` x ``height`` JPEG at or above ``min_side``.

    libjpeg rounds scaled sizes up, so a side of ``n`` pixels decodes to ``ceil(n / s)``.
    """
    short = min(width, height)
    for s in DCT_SCALES:
        if -(-short // s) >= min_side:
            return s
    return 1


def load(
    src: Source,
    *,
    data: bytes | None = None,
    apply_exif: bool = False,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    min_side: int | None = None,
) -> Pixels:
    """Pixels of any supported source. ``data``, when given, is ``read_source(src)``.

    ``min_side=None`` (the default) decodes in full: the pixels the reference hashes.
    ``min_side=S`` lets a JPEG file (path, bytes or binary file) decode at the smallest libjpeg
    DCT scale (1/2, 1/4 or 1/8) that keeps its short side at or above ``S`` pixels: several
    times faster on large photos, but PDQ then drifts from the full decode's hash, by more at
    smaller scales (:data:`DEFAULT_MIN_SIDE`, docs/decoding.md). Other formats, JPEGs already
    small, and ``PIL.Image`` objects passed in are decoded in full. ``max_pixels`` applies to
    the full size in the file's header either way.
    """
    return next(
        frames(
            src,
            data=data,
            max_frames=1,
            apply_exif=apply_exif,
            max_pixels=max_pixels,
            min_side=min_side,
        )
    )


#: Formats whose extra frames are animation frames (a JPEG's are MPO side images, a TIFF's
#: pages): only these are read past the first frame.
ANIMATED: Final = ("GIF", "PNG", "WEBP")


def frames(
    src: Source,
    *,
    data: bytes | None = None,
    max_frames: int = 1,
    apply_exif: bool = False,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    min_side: int | None = None,
) -> Iterator[Pixels]:
    """Pixels of the first ``max_frames`` frames of an animated GIF, PNG or WebP, or of the one
    image of any other source; options as for :func:`load`. A frame that fails to decode raises
    :class:`~hashguard.ImageError` when it is reached, after the frames before it."""
    name = source_name(src)
    if min_side is not None and (
        isinstance(min_side, bool) or not isinstance(min_side, int) or min_side < 1
    ):
        raise ValueError(f"min_side must be a positive int or None, got {min_side!r}")
    if isinstance(src, np.ndarray):
        yield _from_array(src, name, max_pixels)
        return
    if isinstance(src, Image.Image):
        yield _from_pil(src, name, apply_exif, max_pixels)
        return
    if data is None:
        data = read_source(src)
    assert data is not None
    with _decoding(name), Image.open(io.BytesIO(data), formats=FORMATS) as img:
        # The limit is on the size the file declares, checked before any decoding or scaling.
        _check_size(name, img.width, img.height, max_pixels)
        full_size = img.size
        if min_side is not None:
            _draft(img, min_side)
        count = getattr(img, "n_frames", 1) if img.format in ANIMATED else 1
        for i in range(min(count, max_frames)):
            if i:
                img.seek(i)
            frame = _frame(img, name, apply_exif)
            if img.size != full_size:
                frame = replace(frame, full_size=_oriented(full_size, img.size, frame))
            yield frame


@contextmanager
def _decoding(name: str) -> Iterator[None]:
    """Turns whatever Pillow raises on bad input into an ImageError naming the source."""
    try:
        yield
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise NotAnImage(name, "not a recognised image format") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        # The warning arrives as an exception only when warnings are errors (python -W error).
        raise ImageError(name, f"over Pillow's pixel limit, refused as a bomb: {e}") from None
    except MemoryError:
        raise ImageError(name, "out of memory while decoding") from None
    except Exception as e:
        # Pillow signals corrupt data with many exception types (OSError, SyntaxError,
        # ValueError, EOFError, struct.error, ...): none of them may escape raw.
        raise ImageError(name, f"corrupt or truncated image ({type(e).__name__}: {e})") from None


def _draft(img: Image.Image, min_side: int) -> None:
    """Asks libjpeg to decode a just-opened JPEG (or MPO) at :func:`dct_scale`'s scale."""
    if not isinstance(img, JpegImagePlugin.JpegImageFile):
        return
    width, height = img.size
    scale = dct_scale(width, height, min_side)
    if scale == 1:
        return
    # Pillow picks the largest of 8, 4, 2 and 1 that fits min(width // w, height // h); asking
    # for the floor of each side divided by the scale gives exactly ``scale``. The mode is kept
    # (None): no colour conversion happens inside libjpeg that the full decode would not do.
    img.draft(None, (width // scale, height // scale))


def _from_array(arr: np.ndarray, name: str, max_pixels: int) -> Pixels:
    if arr.dtype != np.uint8:
        raise ImageError(name, f"array dtype must be uint8, got {arr.dtype}")
    if arr.ndim == 2:
        layout = GREY8
    elif arr.ndim == 3 and arr.shape[2] in _CHANNELS_TO_LAYOUT:
        layout = _CHANNELS_TO_LAYOUT[arr.shape[2]]
    else:
        raise ImageError(name, f"array shape must be HxW, HxWx3 or HxWx4, got {arr.shape}")
    _check_size(name, arr.shape[1], arr.shape[0], max_pixels)
    return Pixels(np.ascontiguousarray(arr), layout)


def _check_size(name: str, width: int, height: int, max_pixels: int) -> None:
    if width * height > max_pixels:
        raise ImageError(
            name, f"{width}x{height} is {width * height} pixels, over the limit of {max_pixels}"
        )


def _from_pil(img: Image.Image, name: str, apply_exif: bool, max_pixels: int) -> Pixels:
    """The first frame of a caller's image, which is left on the frame it was on."""
    _check_size(name, img.width, img.height, max_pixels)
    frame = img.tell()
    try:
        if frame:
            img.seek(0)
        return _frame(img, name, apply_exif)
    finally:
        if frame:
            img.seek(frame)


def _oriented(full: tuple[int, int], decoded: tuple[int, int], frame: Pixels) -> tuple[int, int]:
    """The full size as the frame's pixels are oriented (EXIF may have turned them)."""
    height, width = frame.array.shape[:2]
    return full if (width, height) == decoded else (full[1], full[0])


def _frame(img: Image.Image, name: str, apply_exif: bool) -> Pixels:
    """The current frame as RGB pixels."""
    if apply_exif:
        img = ImageOps.exif_transpose(img)
    if img.mode == "RGB" and img.width and img.height:
        return _rgbx(img)
    return Pixels(np.ascontiguousarray(_to_rgb(img, name)), RGB8)


def _rgbx(img: Image.Image) -> Pixels:
    """An RGB image's pixels as 4 bytes each, copied straight from Pillow's own storage (which
    keeps RGB as RGBX) into an array: about 12 ms at 12 megapixels, where ``np.asarray`` packs
    them to 3 bytes through ``tobytes`` in about 70. The native core ignores the fourth byte."""
    img.load()
    arr = np.empty((img.height, img.width, 4), np.uint8)
    view = Image.frombuffer("RGBA", img.size, arr, "raw", "RGBA", 0, 1)
    # The core image's paste copies rows as they are stored; `view` maps `arr`'s memory.
    view.im.paste(img.im, (0, 0, *img.size))
    return Pixels(arr, RGBA8)


def _to_rgb(img: Image.Image, name: str) -> npt.NDArray[np.uint8]:
    mode = img.mode
    if mode == "RGB":
        return np.asarray(img, dtype=np.uint8)
    if mode in ("P", "PA"):
        # Looked up directly: Pillow's convert() would warn about, or even edit, the caller's
        # palette transparency, which is dropped anyway.
        lut = np.zeros((256, 3), np.uint8)
        palette = np.asarray(img.getpalette("RGB") or [], np.uint8).reshape(-1, 3)[:256]
        lut[: len(palette)] = palette
        indices = np.asarray(img, dtype=np.uint8)
        return lut[indices if indices.ndim == 2 else indices[:, :, 0]]
    if mode == "LAB":
        srgb = ImageCms.createProfile("sRGB")
        lab = ImageCms.createProfile("LAB")
        converted = ImageCms.profileToProfile(img, lab, srgb, outputMode="RGB")
        assert converted is not None
        return np.asarray(converted, dtype=np.uint8)
    if mode in ("I", "F") or mode.startswith("I;16"):
        grey = _wide_grey_to_8bit(np.asarray(img), mode)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if mode in ("La", "RGBa"):
        # Premultiplied alpha: undo it first, as Pillow converts these only to their plain forms.
        img = img.convert(mode[:-1] + "A")
    try:
        return np.asarray(img.convert("RGB"), dtype=np.uint8)
    except ValueError as e:
        raise ImageError(name, f"unsupported image mode {mode}: {e}") from None


def _wide_grey_to_8bit(values: np.ndarray, mode: str) -> npt.NDArray[np.uint8]:
    """Scales 16-bit, 32-bit integer and float grey to 0-255 instead of clipping it.

    16-bit modes are scaled from 0-65535. Integer ("I") and float ("F") data carry no declared
    range, so it is inferred: values within 0-255 are taken as 8-bit, floats within 0-1 as
    normalised, anything larger as 16-bit.
    """
    v = np.nan_to_num(values.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    top = float(v.max()) if v.size else 0.0
    if mode.startswith("I;16") or top > 255.0:
        v = v / 257.0
    elif mode == "F" and top <= 1.0:
        v = v * 255.0
    return np.clip(np.rint(v), 0, 255).astype(np.uint8)
