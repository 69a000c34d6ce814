"""The PdqHash value type, fingerprints, hash_many and the GIL release."""

from __future__ import annotations

import hashlib
import io
import pickle
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import hashguard
from hashguard import HashFormatError, ImageError, PdqHash

HEX = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22"


def photo(seed: int, size: tuple[int, int] = (160, 120)) -> np.ndarray:
    """Smooth structure plus noise: a hash with quality well above zero."""
    rng = np.random.default_rng(seed)
    w, h = size
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    base = 128 + 80 * np.sin(x / w * rng.uniform(2, 9)) * np.cos(y / h * rng.uniform(2, 9))
    rgb = base[:, :, None] + rng.normal(0, 12, (h, w, 3))
    return np.clip(rgb, 0, 255).astype(np.uint8)


EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "images"


def sample(name: str) -> np.ndarray:
    with Image.open(EXAMPLES / name) as img:
        return np.asarray(img.convert("RGB"))


def png_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "PNG")
    return buf.getvalue()


class TestPdqHash:
    def test_hex_round_trip_and_bytes_order(self) -> None:
        h = PdqHash.from_hex(HEX)
        assert h.hex == HEX
        assert str(h) == HEX
        assert h.bytes == bytes.fromhex(HEX)
        assert h.quality is None
        assert PdqHash.from_hex(HEX.upper()) == h
        assert PdqHash(h.bytes, 77).quality == 77

    @pytest.mark.parametrize(
        "text",
        ["", HEX[:-1], HEX + "0", HEX[:-1] + "g", " " + HEX[1:], HEX[:-1] + "\n", "é" * 32],
    )
    def test_from_hex_rejects_anything_but_64_hex_digits(self, text: str) -> None:
        with pytest.raises(HashFormatError) as e:
            PdqHash.from_hex(text)
        assert "hex" in str(e.value) or "64" in str(e.value)
        assert isinstance(e.value, hashguard.Error)
        assert isinstance(e.value, ValueError)

    def test_from_hex_rejects_non_strings(self) -> None:
        with pytest.raises(TypeError):
            PdqHash.from_hex(b"00" * 32)  # type: ignore[arg-type]

    def test_constructor_validates(self) -> None:
        with pytest.raises(ValueError):
            PdqHash(b"\0" * 31)
        with pytest.raises(ValueError):
            PdqHash(b"\0" * 32, 101)

    def test_distance_and_subtraction(self) -> None:
        a = PdqHash.from_hex(HEX)
        flipped = bytearray(a.bytes)
        flipped[0] ^= 0xFF
        flipped[31] ^= 0x01
        b = PdqHash(bytes(flipped))
        assert a.distance(b) == 9
        assert a - b == 9
        assert b - a == 9
        assert a - a == 0
        assert PdqHash(b"\0" * 32) - PdqHash(b"\xff" * 32) == 256
        with pytest.raises(TypeError):
            a.distance(HEX)  # type: ignore[arg-type]

    def test_equality_hashing_and_immutability(self) -> None:
        a = PdqHash.from_hex(HEX, quality=90)
        b = PdqHash.from_hex(HEX, quality=10)
        assert a == b  # same bits
        assert len({a, b}) == 1
        assert a != PdqHash(b"\0" * 32)
        assert a != HEX
        with pytest.raises(AttributeError):
            a._bytes = b"\0" * 32  # type: ignore[misc]
        with pytest.raises(AttributeError):
            del a._quality
        assert pickle.loads(pickle.dumps(a)) == a
        assert pickle.loads(pickle.dumps(a)).quality == 90
        assert "quality=90" in repr(a)

    def test_dihedral_needs_to_be_requested(self) -> None:
        h = hashguard.hash_image(photo(1))
        with pytest.raises(hashguard.Error, match="dihedral=True"):
            h.dihedral()


class TestHashImage:
    def test_dihedral_variants_equal_hashes_of_transformed_pixels(self) -> None:
        # The even box window and the sampling grid are not mirror-symmetric, so a variant is
        # close to (not always equal to) the hash of the really transformed pixels.
        arr = sample("astronaut.jpg")
        h = hashguard.hash_image(arr, dihedral=True)
        variants = h.dihedral()
        assert tuple(variants) == hashguard.TRANSFORMS
        assert variants["orig"] == h
        transformed = {
            "rot90": np.rot90(arr, 1),
            "rot180": np.rot90(arr, 2),
            "rot270": np.rot90(arr, 3),
            "flipx": arr[::-1],
            "flipy": arr[:, ::-1],
            "flipplus1": arr.transpose(1, 0, 2),
            "flipminus1": np.rot90(arr, 2).transpose(1, 0, 2),
        }
        for name, pixels in transformed.items():
            assert hashguard.hash_image(pixels) - variants[name] <= 20, name
            assert hashguard.hash_image(pixels) - h > 60, name
        assert all(v.quality == h.quality for v in variants.values())

    def test_near_duplicates_are_close_and_different_images_far(self) -> None:
        arr = sample("coffee.jpg")
        h = hashguard.hash_image(arr)
        buf = io.BytesIO()
        Image.fromarray(arr).resize((300, 200)).save(buf, "JPEG", quality=60)
        assert hashguard.hash_image(buf.getvalue()) - h <= 31
        for other in ("astronaut.jpg", "chelsea.jpg", "rocket.jpg"):
            assert hashguard.hash_image(sample(other)) - h > 64

    def test_quality_is_zero_for_flat_images(self) -> None:
        flat = np.full((100, 100, 3), 128, np.uint8)
        assert hashguard.hash_image(flat).quality == 0
        assert hashguard.hash_image(sample("chelsea.jpg")).quality >= 50


class TestFingerprint:
    def test_digests_are_of_the_file_bytes(self, tmp_path: Path) -> None:
        data = png_bytes(photo(6))
        path = tmp_path / "a.png"
        path.write_bytes(data)
        for src in (path, str(path), data, io.BytesIO(data)):
            fp = hashguard.fingerprint(src)
            assert fp.md5 == hashlib.md5(data).hexdigest()
            assert fp.sha256 == hashlib.sha256(data).hexdigest()
            assert fp.pdq == hashguard.hash_image(photo(6))

    def test_reads_a_file_object_once(self) -> None:
        data = png_bytes(photo(7))

        class OneShot(io.RawIOBase):
            def __init__(self) -> None:
                self.reads = 0

            def readable(self) -> bool:
                return True

            def read(self, n: int = -1) -> bytes:
                self.reads += 1
                return data if self.reads == 1 else b""

        src = OneShot()
        fp = hashguard.fingerprint(src)  # type: ignore[arg-type]
        assert src.reads == 1
        assert fp.sha256 == hashlib.sha256(data).hexdigest()

    def test_dihedral_and_not_an_image(self) -> None:
        fp = hashguard.fingerprint(png_bytes(photo(8)), dihedral=True)
        assert len(fp.pdq.dihedral()) == 8
        with pytest.raises(ImageError, match="not a recognised image"):
            hashguard.fingerprint(b"plain text, not an image")


class TestHashMany:
    def test_input_order_and_errors_as_results(self, tmp_path: Path) -> None:
        sources: list[object] = []
        want: list[object] = []
        for i in range(12):
            if i % 4 == 3:
                bad = tmp_path / f"bad{i}.png"
                bad.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
                sources.append(bad)
                want.append(str(bad))
            else:
                arr = photo(100 + i)
                sources.append(png_bytes(arr))
                want.append(hashguard.hash_image(arr))
        results = list(hashguard.hash_many(sources, workers=3))  # type: ignore[arg-type]
        assert len(results) == len(want)
        for got, expected in zip(results, want, strict=True):
            if isinstance(expected, str):
                assert isinstance(got, ImageError)
                assert got.source == expected
            else:
                assert got == expected

    def test_memory_is_bounded(self) -> None:
        pulled = 0
        arr = photo(9)

        def endless() -> Iterator[np.ndarray]:
            nonlocal pulled
            while True:
                pulled += 1
                yield arr

        workers = 2
        stream = hashguard.hash_many(endless(), workers=workers)
        for consumed in range(1, 40):
            next(stream)
            assert pulled <= consumed + 2 * workers
        stream.close()  # type: ignore[attr-defined]

    def test_dihedral_and_worker_validation(self) -> None:
        (h,) = hashguard.hash_many([photo(10)], workers=1, dihedral=True)
        assert isinstance(h, PdqHash)
        assert len(h.dihedral()) == 8
        with pytest.raises(ValueError):
            list(hashguard.hash_many([photo(10)], workers=0))


def test_native_hashing_releases_the_gil() -> None:
    """While one thread is inside a long native hash, another keeps running Python code."""
    big = np.random.default_rng(0).integers(0, 256, (3000, 4000, 3), dtype=np.uint8)
    hashguard.hash_image(big)  # warm up
    started = time.perf_counter()
    hashguard.hash_image(big)
    one_call = time.perf_counter() - started

    inside = threading.Event()
    done = threading.Event()

    def worker() -> None:
        inside.set()
        for _ in range(5):
            hashguard.hash_image(big)
        done.set()

    t = threading.Thread(target=worker)
    t.start()
    inside.wait()
    spins = 0
    t0 = time.perf_counter()
    while not done.is_set():
        spins += 1
    elapsed = time.perf_counter() - t0
    t.join()
    # Holding the GIL through ~5 native calls would leave this loop a few switch intervals at
    # most; released, it runs for nearly the whole time.
    assert elapsed > 3 * one_call
    assert spins > 50_000, (spins, elapsed)


def test_memory_stays_small_for_extreme_aspect_ratios() -> None:
    """The native downscaler streams: a 5 x 4,000,000 image (20 MB) must not need per-row
    buffers (256 bytes a row would be another gigabyte)."""
    code = (
        "import resource, numpy as np, hashguard\n"
        "tall = np.random.default_rng(0).integers(0, 256, (4_000_000, 5), dtype=np.uint8)\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "h = hashguard.hash_image(tall)\n"
        "after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "print((after - before) // 1024, h.quality)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    grown_mib, quality = map(int, out.stdout.split())
    assert grown_mib < 64, f"hashing grew the process by {grown_mib} MiB"
    assert 0 <= quality <= 100
