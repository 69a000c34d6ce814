"""PdqIndex: exact radius search from Python against a numpy brute force, dihedral queries on
real images, batches, threads and argument errors."""

from __future__ import annotations

import io
import threading
from types import MappingProxyType

import numpy as np
import numpy.typing as npt
import pytest
from PIL import Image, ImageOps

import hashguard
from hashguard import PdqHash, PdqIndex
from hashguard.hashing import TRANSFORMS

from .test_hashing import EXAMPLES

U8 = npt.NDArray[np.uint8]


def flip(code: U8, bits: int, rng: np.random.Generator) -> U8:
    out = code.copy()
    for b in rng.choice(256, size=bits, replace=False):
        out[b // 8] ^= np.uint8(1 << (b % 8))
    return out


def brute(codes: U8, ids: npt.NDArray[np.uint64], q: U8, r: int) -> list[tuple[int, int]]:
    d = np.bitwise_count(codes.view(np.uint64) ^ q.view(np.uint64)).sum(axis=1)
    hits = [(int(ids[i]), int(d[i])) for i in np.flatnonzero(d <= r)]
    return sorted(hits, key=lambda m: (m[1], m[0]))


@pytest.fixture(scope="module")
def clustered() -> tuple[U8, npt.NDArray[np.uint64]]:
    """25,000 codes (multi-index by default): near-duplicate families and exact duplicates."""
    rng = np.random.default_rng(1)
    centres = rng.integers(0, 256, (400, 32), dtype=np.uint8)
    rows = []
    for i in range(25_000):
        c = centres[rng.integers(len(centres))]
        rows.append(c if i % 13 == 0 else flip(c, int(rng.integers(0, 45)), rng))
    codes = np.stack(rows)
    ids = (np.arange(len(codes), dtype=np.uint64) * 11) + 5
    return codes, ids


@pytest.mark.parametrize("mode", ["auto", "compact", "multi-index"])
def test_queries_equal_brute_force(clustered: tuple[U8, npt.NDArray[np.uint64]], mode: str) -> None:
    codes, ids = clustered
    index = PdqIndex.from_hashes(codes, ids, mode=mode)
    assert len(index) == len(codes)
    assert index.mode == ("multi-index" if mode == "auto" else mode)
    rng = np.random.default_rng(2)
    for r in (0, 1, 15, 31, 32, 47, 63):
        for _ in range(4):
            x = codes[rng.integers(len(codes))]
            for q in (x, flip(x, r, rng), flip(x, r + 1, rng)):
                got = index.query(PdqHash(q.tobytes()), max_distance=r)
                assert got == brute(codes, ids, q, r), (mode, r)


def test_default_radius_is_31_and_bytes_work(
    clustered: tuple[U8, npt.NDArray[np.uint64]],
) -> None:
    codes, ids = clustered
    index = PdqIndex.from_hashes(codes, ids)
    rng = np.random.default_rng(3)
    q = flip(codes[7], 31, rng)
    assert index.query(q.tobytes()) == brute(codes, ids, q, 31)
    assert (int(ids[7]), 31) in index.query(q.tobytes())
    beyond = flip(codes[7], 32, rng).tobytes()
    assert (int(ids[7]), 32) not in index.query(beyond)
    assert (int(ids[7]), 32) in index.query(beyond, 32)


def test_duplicates_are_each_reported() -> None:
    rng = np.random.default_rng(4)
    codes = rng.integers(0, 256, (100, 32), dtype=np.uint8)
    codes[50] = codes[10]
    codes[99] = codes[10]
    index = PdqIndex.from_hashes(codes, np.arange(100, dtype=np.uint64))
    assert index.query(codes[10].tobytes(), 0) == [(10, 0), (50, 0), (99, 0)]


def test_many_matches_grow_the_output_buffer() -> None:
    rng = np.random.default_rng(5)
    codes = rng.integers(0, 256, (3000, 32), dtype=np.uint8)
    index = PdqIndex.from_hashes(codes, np.arange(3000, dtype=np.uint64))
    everything = index.query(codes[0].tobytes(), 256)
    assert len(everything) == 3000
    assert everything[0] == (0, 0)
    distances = [d for _, d in everything]
    assert distances == sorted(distances)
    (batch,) = index.query_batch(codes[:1], 256)
    assert batch == everything


def test_batches_equal_single_queries(clustered: tuple[U8, npt.NDArray[np.uint64]]) -> None:
    codes, ids = clustered
    index = PdqIndex.from_hashes(codes, ids)
    rng = np.random.default_rng(6)
    qs = np.stack([flip(codes[i], 20, rng) for i in rng.integers(0, len(codes), 60)])
    for threads in (1, 2, None):
        got = index.query_batch(qs, 31, threads=threads)
        assert got == [index.query(q.tobytes()) for q in qs]
    as_hashes = [PdqHash(q.tobytes()) for q in qs[:5]]
    assert index.query_batch(as_hashes) == got[:5]
    assert index.query_batch(np.zeros((0, 32), np.uint8)) == []


def test_concurrent_queries_from_threads(clustered: tuple[U8, npt.NDArray[np.uint64]]) -> None:
    codes, ids = clustered
    index = PdqIndex.from_hashes(codes, ids)
    qs = [codes[i].tobytes() for i in range(0, 2000, 50)]
    want = [index.query(q) for q in qs]
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            for _ in range(5):
                assert [index.query(q) for q in qs] == want
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def test_dihedral_finds_mirrored_and_rotated_copies() -> None:
    """A list of originals; queries are transformed, re-encoded copies. The dihedral query
    finds each original and names the transform that maps the copy back onto it."""
    names = ["astronaut.jpg", "chelsea.jpg", "coffee.jpg", "rocket.jpg", "camera.jpg"]
    originals = [hashguard.hash_image(EXAMPLES / n) for n in names]
    index = PdqIndex.from_hashes(originals, np.arange(len(names), dtype=np.uint64) + 100)
    cases = {
        "flipy": ImageOps.mirror,
        "flipx": ImageOps.flip,
        "rot180": lambda im: im.rotate(180),
    }
    for i, name in enumerate(names):
        with Image.open(EXAMPLES / name) as img:
            for expected, transform in cases.items():
                buf = io.BytesIO()
                transform(img.convert("RGB")).save(buf, "JPEG", quality=80)
                query = hashguard.hash_image(buf.getvalue(), dihedral=True)
                assert index.query(query) == [], (name, expected)
                got = index.query_dihedral(query)
                assert [m[0] for m in got] == [100 + i], (name, expected)
                assert got[0][1] <= 31
                assert got[0][2] == expected, (name, got)


def test_dihedral_reports_each_entry_once_with_its_closest_variant() -> None:
    rng = np.random.default_rng(7)
    codes = rng.integers(0, 256, (500, 32), dtype=np.uint8)
    index = PdqIndex.from_hashes(codes, np.arange(500, dtype=np.uint64))
    variants = [rng.integers(0, 256, 32, dtype=np.uint8) for _ in TRANSFORMS]
    variants[2] = flip(codes[40], 9, rng)
    variants[6] = flip(codes[40], 3, rng)
    variants[7] = flip(codes[41], 30, rng)
    as_hashes = {n: PdqHash(v.tobytes()) for n, v in zip(TRANSFORMS, variants, strict=True)}
    q = PdqHash(variants[0].tobytes(), 100, dihedral=MappingProxyType(as_hashes))
    assert index.query_dihedral(q) == [(40, 3, "flipplus1"), (41, 30, "flipminus1")]
    with pytest.raises(hashguard.Error, match="dihedral"):
        index.query_dihedral(PdqHash(variants[0].tobytes()))


def test_memory_is_reported_per_mode(clustered: tuple[U8, npt.NDArray[np.uint64]]) -> None:
    codes, ids = clustered
    compact = PdqIndex.from_hashes(codes, ids, mode="compact")
    multi = PdqIndex.from_hashes(codes, ids, mode="multi-index")
    assert compact.memory_bytes == 40 * len(codes)
    assert 40 * len(codes) < multi.memory_bytes < 150 * len(codes)
    assert "multi-index" in repr(multi)


def test_argument_errors() -> None:
    codes = np.zeros((3, 32), np.uint8)
    ids = np.arange(3, dtype=np.uint64)
    with pytest.raises(ValueError, match="32"):
        PdqIndex.from_hashes(np.zeros((3, 31), np.uint8), ids)
    with pytest.raises(ValueError, match="uint8"):
        PdqIndex.from_hashes(codes.astype(np.int64), ids)
    with pytest.raises(ValueError, match="ids"):
        PdqIndex.from_hashes(codes, ids[:2])
    with pytest.raises(ValueError, match="mode"):
        PdqIndex.from_hashes(codes, ids, mode="fast")
    index = PdqIndex.from_hashes(codes, ids)
    with pytest.raises(ValueError, match="max_distance"):
        index.query(codes[0].tobytes(), 257)
    with pytest.raises(ValueError, match="max_distance"):
        index.query(codes[0].tobytes(), -1)
    with pytest.raises(ValueError, match="32 bytes"):
        index.query(b"short")
    with pytest.raises(ValueError, match="threads"):
        index.query_batch(codes, threads=0)
    empty = PdqIndex.from_hashes(np.zeros((0, 32), np.uint8), np.zeros(0, np.uint64))
    assert len(empty) == 0
    assert empty.query(codes[0].tobytes(), 63) == []
