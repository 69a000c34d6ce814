"""PDQ hashes of images: the :class:`PdqHash` value type, one-shot and streaming hashing, and
exact file fingerprints."""

from __future__ import annotations

import builtins
import hashlib
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, TypeVar, final

from hashguard import _native
from hashguard._native import ffi, lib
from hashguard.errors import Error, ImageError
from hashguard.image import DEFAULT_MAX_PIXELS, Pixels, Source, load, read_source, source_name

__all__ = [
    "TRANSFORMS",
    "Fingerprint",
    "PdqHash",
    "fingerprint",
    "hash_image",
    "hash_many",
    "hash_pixels",
]

#: Dihedral transform names, in the native order: rot90 is counter-clockwise, flipx swaps top
#: and bottom, flipy mirrors left and right, flipplus1 transposes, flipminus1 anti-transposes.
TRANSFORMS: Final = (
    "orig",
    "rot90",
    "rot180",
    "rot270",
    "flipx",
    "flipy",
    "flipplus1",
    "flipminus1",
)

HASH_BYTES: Final = 32


@final
class PdqHash:
    """An immutable 256-bit PDQ hash.

    ``bytes`` are in the order of the hex text. ``quality`` (0-100) is known for hashes computed
    here and None for hashes parsed from text unless given. Equality and hashing consider the
    bits only.
    """

    __slots__ = ("_bytes", "_dihedral", "_quality")

    _bytes: bytes
    _quality: int | None
    _dihedral: Mapping[str, PdqHash] | None

    def __init__(
        self,
        data: bytes,
        quality: int | None = None,
        *,
        dihedral: Mapping[str, PdqHash] | None = None,
    ) -> None:
        data = bytes(data)
        if len(data) != HASH_BYTES:
            raise ValueError(f"a PDQ hash is {HASH_BYTES} bytes, got {len(data)}")
        if quality is not None and not 0 <= quality <= 100:
            raise ValueError(f"PDQ quality is 0-100, got {quality}")
        object.__setattr__(self, "_bytes", data)
        object.__setattr__(self, "_quality", quality)
        object.__setattr__(self, "_dihedral", dihedral)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("PdqHash is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("PdqHash is immutable")

    @classmethod
    def from_hex(cls, text: str, quality: int | None = None) -> PdqHash:
        """Parses 64 hex digits (either case); raises :class:`HashFormatError` otherwise."""
        if not isinstance(text, str):
            raise TypeError(f"expected str, got {type(text).__name__}")
        raw = text.encode("utf-8")
        out = ffi.new("uint8_t[32]")
        _native.check(lib.hg_pdq_from_hex(raw, len(raw), out))
        return cls(bytes(out), quality)

    @property
    def hex(self) -> str:
        """64 lowercase hex digits, ThreatExchange's text format."""
        return self._bytes.hex()

    @property
    def bytes(self) -> bytes:
        return self._bytes

    @property
    def quality(self) -> int | None:
        return self._quality

    def distance(self, other: PdqHash) -> int:
        """Hamming distance in bits (0-256)."""
        if not isinstance(other, PdqHash):
            raise TypeError(f"expected PdqHash, got {type(other).__name__}")
        a = int.from_bytes(self._bytes, "big")
        b = int.from_bytes(other._bytes, "big")
        return (a ^ b).bit_count()

    def __sub__(self, other: PdqHash) -> int:
        if not isinstance(other, PdqHash):
            return NotImplemented
        return self.distance(other)

    def dihedral(self) -> Mapping[str, PdqHash]:
        """The 8 dihedral variants by transform name (see :data:`TRANSFORMS`)."""
        if self._dihedral is None:
            raise Error("dihedral variants were not computed; use hash_image(..., dihedral=True)")
        return self._dihedral

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PdqHash):
            return NotImplemented
        return self._bytes == other._bytes

    def __hash__(self) -> int:
        return hash(self._bytes)

    def __str__(self) -> str:
        return self.hex

    def __repr__(self) -> str:
        return f"PdqHash('{self.hex}', quality={self._quality})"

    def __reduce__(self) -> tuple[type[PdqHash], tuple[builtins.bytes, int | None]]:
        return (PdqHash, (self._bytes, self._quality))


@final
@dataclass(frozen=True)
class Fingerprint:
    """PDQ hash plus exact digests (lowercase hex) of the same file bytes."""

    pdq: PdqHash
    md5: str
    sha256: str


def hash_pixels(pixels: Pixels, *, dihedral: bool = False) -> PdqHash:
    """Hashes a decoded pixel buffer in the native core (without the GIL)."""
    arr = pixels.array
    height, width = arr.shape[:2]
    if width > 0xFFFFFFFF or height > 0xFFFFFFFF:
        raise ImageError("<array>", f"{width}x{height} is too large")
    buf = ffi.from_buffer("uint8_t[]", arr)
    quality = ffi.new("int32_t *")
    stride = arr.strides[0] if height else 0
    outs = ffi.new("uint8_t[256]")
    if pixels.full_size is not None:
        # A DCT-scaled decode, hashed at the full image's geometry (all 8 variants at once).
        full_width, full_height = pixels.full_size
        _native.check(
            lib.hg_pdq_hash_scaled(
                buf, len(buf), width, height, stride, pixels.layout, full_width, full_height,
                outs, quality,
            )
        )  # fmt: skip
        if not dihedral:
            return PdqHash(bytes(outs)[:HASH_BYTES], quality[0])
    elif not dihedral:
        out = ffi.new("uint8_t[32]")
        _native.check(
            lib.hg_pdq_hash(buf, len(buf), width, height, stride, pixels.layout, out, quality)
        )
        return PdqHash(bytes(out), quality[0])
    else:
        _native.check(
            lib.hg_pdq_hash_dihedral(
                buf, len(buf), width, height, stride, pixels.layout, outs, quality
            )
        )
    raw = bytes(outs)
    q = quality[0]
    variants = {
        name: PdqHash(raw[i * HASH_BYTES : (i + 1) * HASH_BYTES], q)
        for i, name in enumerate(TRANSFORMS)
    }
    return PdqHash(variants["orig"].bytes, q, dihedral=MappingProxyType(variants))


def hash_image(
    src: Source,
    *,
    dihedral: bool = False,
    apply_exif: bool = False,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    min_side: int | None = None,
) -> PdqHash:
    """PDQ hash of an image.

    ``src`` is a path, bytes, a binary file object, a ``PIL.Image.Image`` or a uint8 numpy array
    (H x W grey, H x W x 3 RGB, H x W x 4 RGBA). Decoded images are hashed from 8-bit RGB with
    alpha dropped; EXIF orientation is ignored unless ``apply_exif`` (published lists are hashed
    without it); animated images use their first frame. Raises :class:`ImageError` for input
    that cannot be hashed.

    With ``dihedral=True`` the result's :meth:`PdqHash.dihedral` gives all 8 variants.

    ``min_side=None`` (the default) decodes in full, for hashes bit-identical to the reference.
    ``min_side=S`` decodes JPEG files at the smallest DCT scale that keeps the short side at or
    above ``S`` pixels, and hashes them at the full image's geometry: several times faster, and
    within a few bits of the full decode's hash (``hashguard.image.DEFAULT_MIN_SIDE``,
    docs/decoding.md).
    """
    pixels = load(src, apply_exif=apply_exif, max_pixels=max_pixels, min_side=min_side)
    return hash_pixels(pixels, dihedral=dihedral)


def fingerprint(
    src: Source,
    *,
    dihedral: bool = False,
    apply_exif: bool = False,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    min_side: int | None = None,
) -> Fingerprint:
    """PDQ hash plus MD5 and SHA-256 of the file bytes, all from one read of the file.

    ``src`` is a path, bytes or a binary file object: the exact digests need the encoded file.
    ``min_side`` is as for :func:`hash_image`; the digests are always of the exact bytes.
    """
    data = read_source(src)
    if data is None:
        raise ImageError(source_name(src), "exact fingerprints need the file's bytes")
    pixels = load(src, data=data, apply_exif=apply_exif, max_pixels=max_pixels, min_side=min_side)
    return Fingerprint(
        pdq=hash_pixels(pixels, dihedral=dihedral),
        md5=hashlib.md5(data, usedforsecurity=False).hexdigest(),
        sha256=hashlib.sha256(data).hexdigest(),
    )


def hash_many(
    sources: Iterable[Source],
    *,
    workers: int | None = None,
    dihedral: bool = False,
    apply_exif: bool = False,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    min_side: int | None = None,
) -> Iterator[PdqHash | ImageError]:
    """Hashes many images on ``workers`` threads (default: one per CPU), yielding in input order.

    At most ``2 * workers`` images are in flight, so memory stays bounded however long the input
    is. An image that cannot be hashed yields its :class:`ImageError` instead of raising.
    ``min_side`` is as for :func:`hash_image`.
    """

    def one(src: Source) -> PdqHash:
        return hash_image(
            src,
            dihedral=dihedral,
            apply_exif=apply_exif,
            max_pixels=max_pixels,
            min_side=min_side,
        )

    return map_ordered(one, sources, workers)


T = TypeVar("T")
R = TypeVar("R")


def map_ordered(
    func: Callable[[T], R], items: Iterable[T], workers: int | None
) -> Iterator[R | ImageError]:
    """Applies ``func`` on a thread pool with a bounded window, in input order; ImageErrors
    become results."""
    n = workers if workers is not None else (os.cpu_count() or 1)
    if n < 1:
        raise ValueError(f"workers must be at least 1, got {n}")

    def run(item: T) -> R | ImageError:
        try:
            return func(item)
        except ImageError as e:
            return e

    def generate() -> Iterator[R | ImageError]:
        with ThreadPoolExecutor(max_workers=n, thread_name_prefix="hashguard") as pool:
            window: deque[Future[R | ImageError]] = deque()
            try:
                for item in items:
                    window.append(pool.submit(run, item))
                    if len(window) >= 2 * n:
                        yield window.popleft().result()
                while window:
                    yield window.popleft().result()
            finally:
                for f in window:
                    f.cancel()

    return generate()
