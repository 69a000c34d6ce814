"""Exact Hamming-radius search over PDQ hashes: hashguard's PdqIndex against faiss and numpy.

What is measured
    Search in a list of N 256-bit PDQ codes for every entry within 31 bits (inclusive) of a
    query, the usual PDQ match threshold. Every contender is built from the same codes and
    answers the same queries in the same process, one after the other (each is freed before
    the next is built, so the largest list fits in memory):

    * ``hashguard default``: ``PdqIndex.from_hashes(codes, ids)`` (``mode="auto"``, which is
      multi-index hashing at these sizes), ``query(raw, 31)`` and ``query_batch(..., threads=)``.
    * ``hashguard compact``: the same with ``mode="compact"`` (a linear scan of codes and ids).
    * ``faiss IndexBinaryFlat(256)``: ``range_search(q, 32)``. faiss keeps distances strictly
      below the radius, so 32 is the same set as hashguard's 31.
    * ``faiss IndexBinaryMultiHash(256, 16, 16)`` with ``nflip = 1`` (the index Meta's HMA uses):
      ``range_search(q, 32)``. With 16 chunks of 16 bits and one flip it is exact at radius 31.
    * ``numpy brute force``: the codes stored as four uint64 bit planes (32 bytes an entry),
      XOR with the query and ``np.bitwise_count`` in cache-sized chunks.

Lists
    Sizes 100k, 1M and 10M (``--quick``: 100k and 1M). Two shapes, from seeded
    ``numpy.random.default_rng`` generators: ``uniform`` (independent random codes) and
    ``clustered`` (real lists are full of near-duplicates): N/1000 random centres, at most 5000,
    each entry a random centre with k random bits flipped, k uniform in 0..40, and then 2 % of
    the entries overwritten by exact copies of other entries. The flips are a uniform k-subset
    of the 256 bits per row (Floyd's sampling, vectorised over rows), so an entry is exactly k
    bits from its centre.

Queries
    ``near-dup``: a random entry with 10..20 random bits flipped, so it has at least one match
    at radius 31. ``non-matching``: fresh random codes (they are ~128 bits from everything).
    Single queries are timed one call at a time with ``time.perf_counter`` after one untimed
    warm-up call and with garbage collection off: up to 200 of each kind (``--quick``: 50),
    stopping early once at least 20 have run and a time budget is spent, so that slow
    contenders at 10M (faiss flat, numpy) cost seconds rather than minutes. The query arguments
    (``bytes``, (1, 32) arrays, ...) are made before timing. Median, mean and the number of
    queries are reported; q/s is ``1 / median``.

    Batch: one call on the interleaved near-dup/non-matching batch of 1000 queries. A contender
    whose single queries predict more than a time budget for 1000 gets a prefix of the batch
    instead (at least 50 queries, still half of each kind); the size used is printed. The call
    is repeated up to 3 times while it is cheap; q/s is batch size / median call time. numpy
    has no batch call, so its batch row is a Python loop of single queries.

Threads
    Single queries, and batch "1 thr", run on one thread: ``faiss.omp_set_num_threads(1)`` and
    ``query_batch(threads=1)``. Batch "2 thr" uses ``omp_set_num_threads(2)`` and
    ``threads=2``. Builds use the library defaults: hashguard builds its multi-index tables on
    all CPUs, faiss runs with ``omp_set_num_threads(os.cpu_count())``. hashguard's default build
    is also timed with the process pinned to one CPU and printed under each table.

Memory
    ``B/entry`` is hashguard's own ``memory_bytes / N``; for faiss, the growth of the process
    RSS (``/proc/self/statm``) across the build, read before and after with ``gc.collect()`` and
    glibc ``malloc_trim(0)`` first so that freed temporaries do not count; for numpy, its array
    size (32). ``RSS B/e`` is that RSS growth for every contender, as a cross-check.

Dihedral
    ``query_dihedral`` with 8 variants (variant 0 is the query, the other 7 random codes: for
    timing, only the number of variants matters) on both hashguard modes; reported as the
    median dihedral time over the same mode's median single-query time. faiss has no dihedral
    query: for reference, faiss flat answers the same 8 variants as one ``range_search`` batch.

Correctness checks (printed, never fatal)
    ``recall check``: on 5 near-dup queries every contender's (id, distance) set must equal faiss
    flat's (hashguard is built with ids = positions, which is what faiss returns). ``dihedral
    check``: a query whose ``rot270`` variant is a near-duplicate of a known entry; both
    hashguard modes must report exactly the union of faiss flat's matches over the 8 variants,
    each entry once with its smallest distance and the lowest transform that reaches it.

Summary
    The targets of issue #3 for hashguard's default mode at 10M, single thread, radius 31:
    single-query q/s at least 30x faiss IndexBinaryFlat, at most 100 bytes an entry, a dihedral
    query at most 3x one query, and a build faster than faiss IndexBinaryMultiHash. In
    ``--quick`` mode they are shown at 1M, the largest size run, as an indication only.

Exit status
    0 when every contender ran, even if a target is missed (FAIL is printed: a benchmark is not
    a test); 1 when a contender or a list generation raised.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import os
import platform
import statistics
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

import faiss  # type: ignore[import-untyped,unused-ignore]
import numpy as np
import numpy.typing as npt
from machine import cpu_model, package_version

import hashguard
from hashguard import PdqIndex
from hashguard.hashing import TRANSFORMS, PdqHash

Codes = npt.NDArray[np.uint8]

#: Match threshold: distance <= RADIUS (faiss: distance < RADIUS + 1).
RADIUS: Final = 31

FULL_SIZES: Final = (100_000, 1_000_000, 10_000_000)
QUICK_SIZES: Final = (100_000, 1_000_000)
SHAPES: Final = ("uniform", "clustered")
#: The size at which the issue's targets are defined.
TARGET_SIZE: Final = 10_000_000

# Clustered lists: centres = N / CENTRE_EVERY, capped; flips per entry uniform in 0..MAX_FLIPS.
CENTRE_EVERY: Final = 1000
MAX_CENTRES: Final = 5000
MAX_FLIPS: Final = 40
DUPLICATE_FRACTION: Final = 0.02
# Near-dup queries: an entry with NEAR_FLIPS[0]..NEAR_FLIPS[1] bits flipped.
NEAR_FLIPS: Final = (10, 20)
#: Rows per chunk when generating flip masks (keeps the temporaries small).
GEN_CHUNK: Final = 1 << 18

BATCH_SIZE: Final = 1000
MIN_BATCH: Final = 50
MIN_SINGLE: Final = 20
CHECK_QUERIES: Final = 5
#: The dihedral check plants the near-duplicate in this variant.
CHECK_TRANSFORM: Final = 3


@dataclass(frozen=True)
class Budget:
    """How much each measurement may cost."""

    singles: int  # queries of each kind, at most
    single_s: float  # stop after MIN_SINGLE queries once this much time is spent
    batch_s: float  # the batch is cut to fit this, from the single-query times


FULL_BUDGET: Final = Budget(singles=200, single_s=2.5, batch_s=2.5)
QUICK_BUDGET: Final = Budget(singles=50, single_s=0.5, batch_s=1.0)

HG: Final = "hashguard default"
HG_COMPACT: Final = "hashguard compact"
FLAT: Final = "faiss IndexBinaryFlat"
MULTIHASH: Final = "faiss IndexBinaryMultiHash"
NUMPY: Final = "numpy brute force"
KINDS: Final = ("near", "far")
KIND_LABEL: Final = {"near": "near-dup", "far": "non-matching"}


# --------------------------------------------------------------------------- lists and queries


def random_codes(rng: np.random.Generator, n: int) -> Codes:
    return rng.integers(0, 256, size=(n, 32), dtype=np.uint8)


def flip_masks(rng: np.random.Generator, k: npt.NDArray[np.int64]) -> Codes:
    """(len(k), 32) masks, row i with exactly k[i] set bits at uniformly random positions.

    Floyd's sampling of a k-subset of 0..255, vectorised over rows: for j = 256-k .. 255 pick t
    uniform in 0..j and take j instead if t is already taken. The rows are sorted by k so that
    the rows still sampling at step j are a prefix, and shuffled at the end.
    """
    n = int(k.shape[0])
    mask = np.zeros((n, 32), dtype=np.uint8)
    if n == 0:
        return mask
    ks = np.sort(k)[::-1]
    kmax = int(ks[0])
    # active[c]: how many rows need at least c bits.
    active = np.searchsorted(-ks, -np.arange(257), side="right")
    flat = mask.reshape(-1)
    row_base = np.arange(n, dtype=np.int64) * 32
    for j in range(256 - kmax, 256):
        m = int(active[256 - j])
        base = row_base[:m]
        t = rng.integers(0, j + 1, size=m, dtype=np.int64)
        taken = (flat[base + (t >> 3)] >> (t & 7).astype(np.uint8)) & 1
        t = np.where(taken.astype(bool), j, t)
        flat[base + (t >> 3)] |= np.left_shift(1, t & 7).astype(np.uint8)
    return mask[rng.permutation(n)]


def flip_bits(rng: np.random.Generator, codes: Codes, low: int, high: int) -> Codes:
    """A copy of ``codes`` with low..high (uniform) random bits flipped in each row."""
    out = np.empty_like(codes)
    for start in range(0, codes.shape[0], GEN_CHUNK):
        rows = slice(start, min(start + GEN_CHUNK, codes.shape[0]))
        k = rng.integers(low, high + 1, size=rows.stop - rows.start, dtype=np.int64)
        np.bitwise_xor(codes[rows], flip_masks(rng, k), out=out[rows])
    return out


def make_list(shape: str, n: int, seed: int) -> Codes:
    rng = np.random.default_rng([seed, n, SHAPES.index(shape), 0])
    if shape == "uniform":
        return random_codes(rng, n)
    centres = random_codes(rng, min(MAX_CENTRES, max(1, n // CENTRE_EVERY)))
    assign = rng.integers(0, centres.shape[0], size=n)
    codes = np.empty((n, 32), dtype=np.uint8)
    for start in range(0, n, GEN_CHUNK):
        stop = min(start + GEN_CHUNK, n)
        k = rng.integers(0, MAX_FLIPS + 1, size=stop - start, dtype=np.int64)
        np.bitwise_xor(centres[assign[start:stop]], flip_masks(rng, k), out=codes[start:stop])
    n_dup = int(n * DUPLICATE_FRACTION)
    codes[rng.integers(0, n, size=n_dup)] = codes[rng.integers(0, n, size=n_dup)]
    return codes


@dataclass
class Queries:
    near: Codes  # (m, 32): entries with NEAR_FLIPS bits flipped
    far: Codes  # (m, 32): random codes
    batch: Codes  # (BATCH_SIZE, 32): near and far interleaved, so any prefix is half of each
    dihedral_near: list[PdqHash]  # variant 0 = near[i], the others random
    dihedral_far: list[PdqHash]  # all 8 random (variant 0 = far[i])
    check: Codes  # CHECK_QUERIES near-dup queries for the recall check
    dihedral_check: Codes  # (8, 32): variant CHECK_TRANSFORM is a near-dup of an entry
    dihedral_check_entry: int


def with_variants(first: Codes, others: Codes) -> PdqHash:
    raw = [first.tobytes(), *(row.tobytes() for row in others)]
    variants = MappingProxyType({name: PdqHash(b) for name, b in zip(TRANSFORMS, raw, strict=True)})
    return PdqHash(raw[0], 100, dihedral=variants)


def make_queries(codes: Codes, shape: str, seed: int, singles: int) -> Queries:
    n = codes.shape[0]
    half = BATCH_SIZE // 2
    rng = np.random.default_rng([seed, n, SHAPES.index(shape), 1])
    near = flip_bits(rng, codes[rng.integers(0, n, size=half)], *NEAR_FLIPS)
    far = random_codes(rng, half)
    batch = np.empty((BATCH_SIZE, 32), dtype=np.uint8)
    batch[0::2], batch[1::2] = near, far
    extra = random_codes(rng, 2 * singles * 7).reshape(2 * singles, 7, 32)
    dihedral_near = [with_variants(near[i], extra[i]) for i in range(singles)]
    dihedral_far = [with_variants(far[i], extra[singles + i]) for i in range(singles)]
    entry = int(rng.integers(0, n))
    dihedral_check = random_codes(rng, 8)
    dihedral_check[CHECK_TRANSFORM] = flip_bits(rng, codes[entry : entry + 1], *NEAR_FLIPS)[0]
    return Queries(
        near=near[:singles],
        far=far[:singles],
        batch=batch,
        dihedral_near=dihedral_near,
        dihedral_far=dihedral_far,
        check=near[singles : singles + CHECK_QUERIES],
        dihedral_check=dihedral_check,
        dihedral_check_entry=entry,
    )


# --------------------------------------------------------------------------- contenders

Pairs = set[tuple[int, int]]
QueryFn = Callable[[int], int]


class Contender:
    """One index under test. ``build`` first; the query methods return match counts."""

    name: str = ""
    threads: tuple[int, ...] = (1, 2)  # batch thread counts
    reference: bool = False  # can serve as the reference of the checks

    def prepare(self, codes: Codes) -> None:
        """Work that is not part of the build (made before the build is timed)."""

    def build(self, codes: Codes) -> None:
        raise NotImplementedError

    def reported_bytes(self) -> int | None:
        """The contender's own figure for its memory, if it has one."""
        return None

    def single(self, qs: Codes) -> QueryFn:
        """A function running query ``i`` of ``qs`` (its arguments are prepared here)."""
        raise NotImplementedError

    def batch(self, qs: Codes, threads: int) -> int:
        raise NotImplementedError

    def pairs(self, q: Codes) -> Pairs:
        """(id, distance) of every match of one query, for the checks."""
        raise NotImplementedError

    def free(self) -> None:
        raise NotImplementedError


class Hashguard(Contender):
    threads = (1, 2)

    def __init__(self, name: str, mode: str) -> None:
        self.name = name
        self.mode = mode
        self.ids: npt.NDArray[np.uint64] | None = None
        self.index: PdqIndex | None = None

    def prepare(self, codes: Codes) -> None:
        # ids = positions, which is what faiss reports as labels.
        self.ids = np.arange(codes.shape[0], dtype=np.uint64)

    def build(self, codes: Codes) -> None:
        ids = self.ids
        if ids is None or ids.shape[0] != codes.shape[0]:
            ids = np.arange(codes.shape[0], dtype=np.uint64)
        self.index = PdqIndex.from_hashes(codes, ids, mode=self.mode)

    def get(self) -> PdqIndex:
        assert self.index is not None
        return self.index

    def reported_bytes(self) -> int:
        return self.get().memory_bytes

    def single(self, qs: Codes) -> QueryFn:
        index, args = self.get(), [q.tobytes() for q in qs]
        return lambda i: len(index.query(args[i], RADIUS))

    def dihedral(self, hashes: list[PdqHash]) -> QueryFn:
        index = self.get()
        return lambda i: len(index.query_dihedral(hashes[i], RADIUS))

    def batch(self, qs: Codes, threads: int) -> int:
        return sum(len(r) for r in self.get().query_batch(qs, RADIUS, threads=threads))

    def pairs(self, q: Codes) -> Pairs:
        return set(self.get().query(q.tobytes(), RADIUS))

    def dihedral_rows(self, variants: Codes) -> list[tuple[int, int, str]]:
        return self.get().query_dihedral(with_variants(variants[0], variants[1:]), RADIUS)

    def free(self) -> None:
        self.index = None
        self.ids = None


class Faiss(Contender):
    """A faiss binary index; range_search keeps distances < radius, hence RADIUS + 1."""

    def __init__(self, name: str, factory: Callable[[], Any], reference: bool) -> None:
        self.name = name
        self.factory = factory
        self.reference = reference
        self.index: Any = None

    def build(self, codes: Codes) -> None:
        index = self.factory()
        index.add(codes)
        self.index = index

    def single(self, qs: Codes) -> QueryFn:
        index, args = self.index, [np.ascontiguousarray(q[None, :]) for q in qs]
        return lambda i: int(index.range_search(args[i], RADIUS + 1)[0][-1])

    def multi(self, groups: list[Codes]) -> QueryFn:
        """Each group of queries as one range_search call."""
        index = self.index
        return lambda i: int(index.range_search(groups[i], RADIUS + 1)[0][-1])

    def batch(self, qs: Codes, threads: int) -> int:
        return int(self.index.range_search(qs, RADIUS + 1)[0][-1])

    def pairs(self, q: Codes) -> Pairs:
        lims, dist, labels = self.index.range_search(np.ascontiguousarray(q[None, :]), RADIUS + 1)
        end = int(lims[1])
        found = zip(labels[:end].tolist(), dist[:end].astype(np.int64).tolist(), strict=True)
        return set(found)

    def free(self) -> None:
        self.index = None


def faiss_multihash() -> Any:
    index = faiss.IndexBinaryMultiHash(256, 16, 16)
    index.nflip = 1
    return index


class NumpyBrute(Contender):
    """XOR + popcount over the whole list, as four contiguous uint64 bit planes."""

    name = NUMPY
    threads = (1,)
    reference = True
    CHUNK: Final = 32768

    def __init__(self) -> None:
        self.planes: npt.NDArray[np.uint64] | None = None
        self.xor = np.empty(self.CHUNK, dtype=np.uint64)
        self.word = np.empty(self.CHUNK, dtype=np.uint8)
        self.dist = np.empty(self.CHUNK, dtype=np.uint8)
        self.hit = np.empty(self.CHUNK, dtype=np.bool_)

    def build(self, codes: Codes) -> None:
        self.planes = np.ascontiguousarray(codes.view(np.uint64).T)

    def reported_bytes(self) -> int:
        assert self.planes is not None
        return self.planes.nbytes

    def search(self, q64: npt.NDArray[np.uint64]) -> tuple[npt.NDArray[np.intp], Codes]:
        """Positions and distances of the matches of one query (as 4 uint64 words)."""
        planes = self.planes
        assert planes is not None
        n = planes.shape[1]
        found: list[npt.NDArray[np.intp]] = []
        dists: list[Codes] = []
        for start in range(0, n, self.CHUNK):
            stop = min(start + self.CHUNK, n)
            x, w = self.xor[: stop - start], self.word[: stop - start]
            d, hit = self.dist[: stop - start], self.hit[: stop - start]
            np.bitwise_xor(planes[0, start:stop], q64[0], out=x)
            np.bitwise_count(x, out=d)
            for k in (1, 2, 3):
                np.bitwise_xor(planes[k, start:stop], q64[k], out=x)
                np.bitwise_count(x, out=w)
                # Clamp so that the uint8 sum cannot wrap: a word at 32+ bits is a miss anyway.
                np.minimum(w, RADIUS + 1, out=w)
                np.add(d, w, out=d)
            np.less_equal(d, RADIUS, out=hit)
            pos = np.flatnonzero(hit)
            if pos.size:
                found.append(pos + start)
                dists.append(d[pos].copy())
        if not found:
            return np.empty(0, dtype=np.intp), np.empty(0, dtype=np.uint8)
        return np.concatenate(found), np.concatenate(dists)

    def single(self, qs: Codes) -> QueryFn:
        args = [q.view(np.uint64) for q in qs]
        return lambda i: int(self.search(args[i])[0].size)

    def batch(self, qs: Codes, threads: int) -> int:
        return sum(int(self.search(q.view(np.uint64))[0].size) for q in qs)

    def pairs(self, q: Codes) -> Pairs:
        pos, dist = self.search(q.view(np.uint64))
        return set(zip(pos.tolist(), dist.tolist(), strict=True))

    def free(self) -> None:
        self.planes = None


def contenders() -> list[Contender]:
    return [
        Hashguard(HG, "auto"),
        Hashguard(HG_COMPACT, "compact"),
        Faiss(FLAT, lambda: faiss.IndexBinaryFlat(256), reference=True),
        Faiss(MULTIHASH, faiss_multihash, reference=False),
        NumpyBrute(),
    ]


# --------------------------------------------------------------------------- measurement


@dataclass
class Timing:
    """Per-call times (seconds) and match counts of a run of single calls."""

    times: list[float]
    matches: list[int]

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.times)

    def to_json(self) -> dict[str, Any]:
        return {
            "n": len(self.times),
            "median_s": self.median,
            "mean_s": self.mean,
            "qps_median": 1 / self.median,
            "mean_matches": statistics.fmean(self.matches),
            "times_s": self.times,
            "matches": self.matches,
        }


@dataclass
class BatchTiming:
    size: int
    threads: int
    times: list[float]
    matches: int

    @property
    def qps(self) -> float:
        return self.size / statistics.median(self.times)

    def to_json(self) -> dict[str, Any]:
        return {
            "size": self.size,
            "threads": self.threads,
            "qps": self.qps,
            "times_s": self.times,
            "matches": self.matches,
        }


@dataclass
class Result:
    """Everything measured for one contender on one list."""

    name: str
    mode: str | None = None
    build_s: float | None = None
    bytes_per_entry: float | None = None
    rss_bytes_per_entry: float | None = None
    single: dict[str, Timing] = field(default_factory=dict)
    dihedral: dict[str, Timing] = field(default_factory=dict)  # hashguard: query_dihedral
    batch8: dict[str, Timing] = field(default_factory=dict)  # faiss flat: 8 variants, 1 call
    batch: dict[int, BatchTiming] = field(default_factory=dict)
    build_1cpu_s: float | None = None
    error: str | None = None
    # Check results, not written to JSON.
    check_pairs: list[Pairs] = field(default_factory=list)
    variant_pairs: list[Pairs] = field(default_factory=list)
    dihedral_rows: list[tuple[int, int, str]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "error": self.error,
            "build_s": self.build_s,
            "build_1cpu_s": self.build_1cpu_s,
            "bytes_per_entry": self.bytes_per_entry,
            "rss_bytes_per_entry": self.rss_bytes_per_entry,
            "single": {k: t.to_json() for k, t in self.single.items()},
            "dihedral": {k: t.to_json() for k, t in self.dihedral.items()},
            "batch_of_8_variants": {k: t.to_json() for k, t in self.batch8.items()},
            "batch": {str(t): b.to_json() for t, b in self.batch.items()},
        }


@dataclass
class Run:
    """One list: its size and shape, and every contender's results."""

    n: int
    shape: str
    generate_s: float = 0.0
    results: dict[str, Result] = field(default_factory=dict)
    checks: dict[str, str] = field(default_factory=dict)
    error: str | None = None

    @property
    def label(self) -> str:
        return f"{size_label(self.n)} {self.shape}"

    def ok(self, name: str) -> Result | None:
        r = self.results.get(name)
        return r if r is not None and r.error is None else None


def size_label(n: int) -> str:
    return f"{n // 1_000_000}M" if n % 1_000_000 == 0 else f"{n // 1000}k"


_LIBC: Any = None


def trim_heap() -> None:
    """gc, then hand freed heap memory back to the OS so that RSS growth measures a build."""
    global _LIBC
    gc.collect()
    if _LIBC is None:
        try:
            _LIBC = ctypes.CDLL("libc.so.6")
        except OSError:
            _LIBC = False
    if _LIBC:
        _LIBC.malloc_trim(0)


def rss_bytes() -> int:
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return 0


@contextmanager
def gc_off() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def time_calls(fn: QueryFn, count: int, budget_s: float) -> Timing:
    """Calls fn(0), fn(1), ... one at a time after an untimed fn(0); stops at ``count``, or
    after MIN_SINGLE calls once ``budget_s`` is spent."""
    fn(0)
    times: list[float] = []
    matches: list[int] = []
    total = 0.0
    with gc_off():
        for i in range(count):
            start = time.perf_counter()
            m = fn(i)
            elapsed = time.perf_counter() - start
            times.append(elapsed)
            matches.append(m)
            total += elapsed
            if i + 1 >= MIN_SINGLE and total >= budget_s:
                break
    return Timing(times, matches)


def batch_size(result: Result, budget_s: float) -> int:
    """BATCH_SIZE, or the even prefix of it that the single-query times say fits the budget."""
    est = statistics.fmean(t.mean for t in result.single.values())
    fits = int(budget_s / est) if est > 0 else BATCH_SIZE
    return max(MIN_BATCH, min(BATCH_SIZE, fits)) // 2 * 2


def time_batch(
    fn: Callable[[Codes, int], int], qs: Codes, threads: int, budget_s: float
) -> BatchTiming:
    times: list[float] = []
    matches = 0
    with gc_off():
        while len(times) < 3 and (not times or sum(times) < budget_s):
            start = time.perf_counter()
            matches = fn(qs, threads)
            times.append(time.perf_counter() - start)
    return BatchTiming(qs.shape[0], threads, times, matches)


def measure_build(contender: Contender, codes: Codes) -> tuple[float, int]:
    """Build time and RSS growth."""
    contender.prepare(codes)
    trim_heap()
    before = rss_bytes()
    start = time.perf_counter()
    contender.build(codes)
    elapsed = time.perf_counter() - start
    trim_heap()  # what the build freed again (temporaries) is not part of the index
    return elapsed, rss_bytes() - before


def build_on_one_cpu(codes: Codes) -> float | None:
    """hashguard's default build with the process pinned to one CPU (None if unsupported)."""
    if not hasattr(os, "sched_getaffinity"):
        return None
    cpus = os.sched_getaffinity(0)
    probe = Hashguard(HG, "auto")
    probe.prepare(codes)
    try:
        os.sched_setaffinity(0, {min(cpus)})
        start = time.perf_counter()
        probe.build(codes)
        return time.perf_counter() - start
    except OSError:
        return None
    finally:
        os.sched_setaffinity(0, cpus)
        probe.free()


def run_contender(
    contender: Contender, codes: Codes, queries: Queries, budget: Budget, result: Result
) -> None:
    n = codes.shape[0]
    faiss.omp_set_num_threads(os.cpu_count() or 1)
    result.build_s, rss = measure_build(contender, codes)
    result.rss_bytes_per_entry = rss / n
    reported = contender.reported_bytes()
    result.bytes_per_entry = (reported if reported is not None else rss) / n
    if isinstance(contender, Hashguard):
        result.mode = contender.get().mode

    faiss.omp_set_num_threads(1)
    result.check_pairs = [contender.pairs(q) for q in queries.check]
    if contender.reference:
        result.variant_pairs = [contender.pairs(v) for v in queries.dihedral_check]
    if isinstance(contender, Hashguard):
        result.dihedral_rows = contender.dihedral_rows(queries.dihedral_check)

    for kind, qs in (("near", queries.near), ("far", queries.far)):
        result.single[kind] = time_calls(contender.single(qs), qs.shape[0], budget.single_s)
    dihedral_sets = {"near": queries.dihedral_near, "far": queries.dihedral_far}
    for kind, hashes in dihedral_sets.items():
        count = len(result.single[kind].times)
        if isinstance(contender, Hashguard):
            fn = contender.dihedral(hashes)
            result.dihedral[kind] = time_calls(fn, count, budget.single_s)
        elif isinstance(contender, Faiss) and contender.name == FLAT:
            groups = [variant_array(h) for h in hashes[:count]]
            result.batch8[kind] = time_calls(contender.multi(groups), count, budget.single_s)

    size = batch_size(result, budget.batch_s)
    for threads in contender.threads:
        faiss.omp_set_num_threads(threads)
        result.batch[threads] = time_batch(
            contender.batch, queries.batch[:size], threads, budget.batch_s
        )
    faiss.omp_set_num_threads(1)


def variant_array(h: PdqHash) -> Codes:
    raw = b"".join(v.bytes for v in h.dihedral().values())
    return np.frombuffer(raw, dtype=np.uint8).reshape(8, 32).copy()


def run_list(n: int, shape: str, seed: int, budget: Budget) -> Run:
    run = Run(n, shape)
    start = time.perf_counter()
    codes = make_list(shape, n, seed)
    queries = make_queries(codes, shape, seed, budget.singles)
    run.generate_s = time.perf_counter() - start
    for contender in contenders():
        result = Result(contender.name)
        run.results[contender.name] = result
        try:
            run_contender(contender, codes, queries, budget, result)
        except Exception as e:
            result.error = f"{type(e).__name__}: {e}"
            print(f"\n{contender.name} on {run.label} raised:", file=sys.stderr)
            traceback.print_exc()
        finally:
            contender.free()
            trim_heap()
    try:
        run.results[HG].build_1cpu_s = build_on_one_cpu(codes)
    except Exception as e:
        print(f"hashguard build on one CPU raised: {e}", file=sys.stderr)
    run.checks = checks(run, queries)
    return run


# --------------------------------------------------------------------------- checks


def checks(run: Run, queries: Queries) -> dict[str, str]:
    ref = run.ok(FLAT) or run.ok(NUMPY)
    if ref is None:
        return {"recall": "n/a (no reference ran)", "dihedral": "n/a (no reference ran)"}
    out: dict[str, str] = {}

    problems = []
    compared = []
    for name, r in run.results.items():
        if r is ref or r.error is not None or not r.check_pairs:
            continue
        compared.append(name)
        for i, (mine, theirs) in enumerate(zip(r.check_pairs, ref.check_pairs, strict=True)):
            if mine != theirs:
                problems.append(
                    f"{name} query {i}: {len(mine - theirs)} extra, {len(theirs - mine)} missing"
                )
    total = sum(len(p) for p in ref.check_pairs)
    if problems:
        out["recall"] = "MISMATCH vs " + ref.name + ": " + "; ".join(problems)
    else:
        out["recall"] = (
            f"OK ({len(compared)} contenders agree with {ref.name} on {len(ref.check_pairs)} "
            f"near-dup queries, {total} (id, distance) matches)"
        )

    # Expected dihedral answer: each entry once, smallest distance, lowest transform on ties.
    best: dict[int, tuple[int, int]] = {}
    for t, found in enumerate(ref.variant_pairs):
        for entry, dist in found:
            if entry not in best or (dist, t) < best[entry]:
                best[entry] = (dist, t)
    expected = {(e, d, TRANSFORMS[t]) for e, (d, t) in best.items()}
    planted = best.get(queries.dihedral_check_entry)
    dproblems = []
    for name in (HG, HG_COMPACT):
        hgr = run.ok(name)
        if hgr is None:
            continue
        got = set(hgr.dihedral_rows)
        if got != expected or len(got) != len(hgr.dihedral_rows):
            dproblems.append(
                f"{name}: {len(got - expected)} unexpected, {len(expected - got)} missing, "
                f"{len(hgr.dihedral_rows) - len(got)} repeated"
            )
    if planted is None:
        dproblems.append(f"{ref.name} does not find the planted entry")
    if dproblems:
        out["dihedral"] = "MISMATCH: " + "; ".join(dproblems)
    else:
        dist, t = planted if planted else (0, 0)
        out["dihedral"] = (
            f"OK (both modes report entry {queries.dihedral_check_entry} via {TRANSFORMS[t]} "
            f"at {dist} bits, and all {len(expected)} matches of the 8 variants with the "
            "right distance and transform)"
        )
    return out


# --------------------------------------------------------------------------- output


def fmt_us(seconds: float) -> str:
    us = seconds * 1e6
    return f"{us:.2f}" if us < 10 else f"{us:.1f}" if us < 1000 else f"{us:.0f}"


def fmt_qps(qps: float) -> str:
    return f"{qps:.1f}" if qps < 100 else f"{qps:.0f}"


def fmt_ratio(r: float | None) -> str:
    if r is None:
        return "n/a"
    return f"{r:.2f}x" if r < 10 else f"{r:.1f}x" if r < 100 else f"{r:.0f}x"


def ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else a / b


def median_of(r: Result | None, kind: str) -> float | None:
    return r.single[kind].median if r is not None and kind in r.single else None


def batch_qps(r: Result | None, threads: int) -> float | None:
    return r.batch[threads].qps if r is not None and threads in r.batch else None


def dihedral_ratio(r: Result | None, kind: str) -> float | None:
    if r is None:
        return None
    timing = r.dihedral.get(kind) or r.batch8.get(kind)
    return ratio(timing.median if timing else None, median_of(r, kind))


def print_header(env: dict[str, Any]) -> None:
    print(f"hashguard index benchmark ({env['mode']} mode)")
    print(
        f"hashguard {env['hashguard']}, faiss {env['faiss']}, numpy {env['numpy']}, "
        f"python {env['python']}"
    )
    print(f"machine: {env['cpu']}, {env['logical_cpus']} logical CPUs, {env['platform']}")
    print(
        f"radius {RADIUS} inclusive (faiss range_search radius {RADIUS + 1}); single queries "
        f"one call at a time on 1 thread, up to {env['singles']} of each kind (at least "
        f"{MIN_SINGLE}, fewer once {env['single_budget_s']} s is spent), median and mean "
        "after 1 warm-up"
    )
    print(
        f"batch: {BATCH_SIZE} queries (half near-dup, interleaved), cut to fit "
        f"{env['batch_budget_s']} s when the single-query times predict more; "
        f"builds on all {env['logical_cpus']} CPUs; seed {env['seed']}"
    )


def print_run(run: Run) -> None:
    print(f"\n== {run.label}: {run.n:,} entries (lists and queries made in {run.generate_s:.1f} s)")
    hg = run.ok(HG)
    if hg is not None:
        near, far = hg.single["near"], hg.single["far"]
        print(
            f"   matches per query (hashguard): near-dup mean {statistics.fmean(near.matches):.1f}"
            f", non-matching mean {statistics.fmean(far.matches):.2f}; default mode: {hg.mode}"
        )
    head = (
        f"{'contender':<27}{'build s':>8}{'B/entry':>8}{'RSS B/e':>8} |"
        f"{'near-dup: med us':>17}{'mean us':>9}{'q/s':>8}{'n':>4} |"
        f"{'non-match: med us':>18}{'mean us':>9}{'q/s':>8}{'n':>4} |"
        f"{'batch q/s: 1 thr':>17}{'2 thr':>8}{'size':>5}"
    )
    print(head)
    for name, r in run.results.items():
        if r.error:
            print(f"{name:<27} FAILED: {r.error}")
            continue
        cells = [
            f"{name:<27}",
            f"{r.build_s or 0:>8.2f}",
            f"{r.bytes_per_entry or 0:>8.1f}",
            f"{r.rss_bytes_per_entry or 0:>8.1f} |",
        ]
        for kind, width in (("near", 17), ("far", 18)):
            t = r.single[kind]
            cells.append(
                f"{fmt_us(t.median):>{width}}{fmt_us(t.mean):>9}{fmt_qps(1 / t.median):>8}"
                f"{len(t.times):>4} |"
            )
        b1, b2 = r.batch.get(1), r.batch.get(2)
        size = b1.size if b1 else 0
        loop = "*" if name == NUMPY else ""
        cells.append(
            f"{fmt_qps(b1.qps) + loop if b1 else '-':>17}{fmt_qps(b2.qps) if b2 else '-':>8}"
            f"{size:>5}"
        )
        print("".join(cells))
    if run.ok(NUMPY):
        print("   * numpy: a Python loop of single queries (numpy has no batch search)")
    print_ratios(run)
    print(f"recall check: {run.checks.get('recall', 'n/a')}")
    print(f"dihedral check: {run.checks.get('dihedral', 'n/a')}")


def print_ratios(run: Run) -> None:
    hg = run.ok(HG)
    if hg is None:
        return
    print("hashguard default speed-up (other median time / hashguard's; batch: q/s ratio):")
    for name, r in run.results.items():
        if name == HG or r.error:
            continue
        parts = [
            f"{KIND_LABEL[k]} {fmt_ratio(ratio(median_of(r, k), median_of(hg, k)))}" for k in KINDS
        ]
        for threads in (1, 2):
            if threads in r.batch:
                q = ratio(batch_qps(hg, threads), batch_qps(r, threads))
                parts.append(f"batch {threads} thr {fmt_ratio(q)}")
        print(f"   vs {name + ':':<28} {', '.join(parts)}")
    dparts = []
    for name in (HG, HG_COMPACT, FLAT):
        res = run.ok(name)
        if res is None or not (res.dihedral or res.batch8):
            continue
        what = "dihedral / single" if res.dihedral else "batch of 8 / single"
        values = ", ".join(f"{KIND_LABEL[k]} {fmt_ratio(dihedral_ratio(res, k))}" for k in KINDS)
        dparts.append(f"   {name}: {what}: {values}")
    if dparts:
        print("dihedral (median time over the same contender's single-query median):")
        print("\n".join(dparts))
    mh = run.ok(MULTIHASH)
    if mh is not None and hg.build_s is not None and mh.build_s is not None:
        line = (
            f"build: hashguard default {hg.build_s:.2f} s vs {MULTIHASH} {mh.build_s:.2f} s "
            f"({fmt_ratio(ratio(mh.build_s, hg.build_s))} faster)"
        )
        if hg.build_1cpu_s is not None:
            line += (
                f"; hashguard pinned to 1 CPU: {hg.build_1cpu_s:.2f} s "
                f"({fmt_ratio(ratio(mh.build_s, hg.build_1cpu_s))})"
            )
        print(line)


def verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else "PASS" if ok else "FAIL"


def summary(runs: list[Run], quick: bool) -> list[str]:
    """PASS/FAIL lines for the issue's targets, at the largest size run."""
    if not runs:
        return ["no list was measured"]
    n = max(r.n for r in runs)
    at = [r for r in runs if r.n == n]
    lines: list[str] = []
    if n != TARGET_SIZE:
        lines.append(
            f"NOTE: the targets are defined at {size_label(TARGET_SIZE)} entries; "
            f"{'quick mode stops' if quick else 'this run stopped'} at {size_label(n)}, so the "
            f"verdicts below are for {size_label(n)} and only indicative"
        )

    speed: list[str] = []
    speed_ok: list[bool] = []
    for run in at:
        for kind in KINDS:
            q = ratio(median_of(run.ok(FLAT), kind), median_of(run.ok(HG), kind))
            speed.append(f"{run.shape} {KIND_LABEL[kind]} {fmt_ratio(q)}")
            if q is not None:
                speed_ok.append(q >= 30)
    ok = all(speed_ok) if len(speed_ok) == 2 * len(at) else None
    lines.append(
        f"{size_label(n)}: single-query q/s >= 30x {FLAT}: {verdict(ok)} ({', '.join(speed)})"
    )

    mem = [(run.shape, r.bytes_per_entry) for run in at if (r := run.ok(HG)) is not None]
    ok = all(b is not None and b <= 100 for _, b in mem) if len(mem) == len(at) else None
    detail = ", ".join(f"{s} {b:.1f}" for s, b in mem if b is not None)
    lines.append(f"{size_label(n)}: at most 100 bytes/entry: {verdict(ok)} ({detail})")

    dih: list[str] = []
    dih_ok: list[bool] = []
    for run in at:
        for kind in KINDS:
            q = dihedral_ratio(run.ok(HG), kind)
            dih.append(f"{run.shape} {KIND_LABEL[kind]} {fmt_ratio(q)}")
            if q is not None:
                dih_ok.append(q <= 3)
    ok = all(dih_ok) if len(dih_ok) == 2 * len(at) else None
    lines.append(
        f"{size_label(n)}: dihedral query <= 3x one query: {verdict(ok)} ({', '.join(dih)})"
    )

    builds: list[str] = []
    build_ok: list[bool] = []
    for run in at:
        hg, mh = run.ok(HG), run.ok(MULTIHASH)
        q = ratio(mh.build_s if mh else None, hg.build_s if hg else None)
        if q is not None and hg is not None and mh is not None:
            builds.append(
                f"{run.shape} {hg.build_s:.2f} s vs {mh.build_s:.2f} s, {fmt_ratio(q)} faster"
            )
            build_ok.append(q > 1)
        else:
            builds.append(f"{run.shape} n/a")
    ok = all(build_ok) if len(build_ok) == len(at) else None
    lines.append(
        f"{size_label(n)}: build faster than {MULTIHASH}: {verdict(ok)} ({'; '.join(builds)})"
    )
    return lines


# --------------------------------------------------------------------------- main


def environment(args: argparse.Namespace, budget: Budget, sizes: tuple[int, ...]) -> dict[str, Any]:
    return {
        "mode": "quick" if args.quick else "full",
        "hashguard": hashguard.__version__,
        "faiss": getattr(faiss, "__version__", package_version("faiss-cpu")),
        "numpy": np.__version__,
        "python": platform.python_version(),
        "cpu": cpu_model(),
        "logical_cpus": os.cpu_count(),
        "platform": platform.platform(),
        "seed": args.seed,
        "sizes": list(sizes),
        "shapes": list(SHAPES),
        "radius": RADIUS,
        "singles": budget.singles,
        "single_budget_s": budget.single_s,
        "batch_budget_s": budget.batch_s,
        "batch_size": BATCH_SIZE,
    }


def to_json(env: dict[str, Any], runs: list[Run], lines: list[str]) -> dict[str, Any]:
    return {
        "environment": env,
        "runs": [
            {
                "n": run.n,
                "shape": run.shape,
                "generate_s": run.generate_s,
                "error": run.error,
                "checks": run.checks,
                "results": {name: r.to_json() for name, r in run.results.items()},
            }
            for run in runs
        ],
        "summary": lines,
    }


def parse_sizes(text: str) -> tuple[int, ...]:
    units = {"k": 1000, "m": 1_000_000}
    out = []
    for part in text.split(","):
        part = part.strip().lower()
        scale = units.get(part[-1:], 1)
        out.append(int(part[:-1] if scale > 1 else part) * scale)
    return tuple(out)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/index.py",
        description="Exact radius-31 PDQ search: hashguard PdqIndex vs faiss and numpy.",
    )
    parser.add_argument(
        "--quick", action="store_true", help="CI mode: 100k and 1M only, fewer queries"
    )
    parser.add_argument("--json", metavar="PATH", type=Path, help="also write raw numbers here")
    parser.add_argument("--seed", type=int, default=0, help="list and query seed (default 0)")
    parser.add_argument(
        "--sizes",
        type=parse_sizes,
        help="comma-separated list sizes, e.g. 100k,1M (default: 100k,1M,10M; quick: 100k,1M)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    budget = QUICK_BUDGET if args.quick else FULL_BUDGET
    sizes: tuple[int, ...] = args.sizes or (QUICK_SIZES if args.quick else FULL_SIZES)
    env = environment(args, budget, sizes)
    print_header(env)
    sys.stdout.flush()

    runs: list[Run] = []
    for n in sizes:
        for shape in SHAPES:
            try:
                run = run_list(n, shape, args.seed, budget)
            except Exception as e:
                run = Run(n, shape, error=f"{type(e).__name__}: {e}")
                print(f"\n{n} {shape} raised:", file=sys.stderr)
                traceback.print_exc()
                print(f"\n== {run.label}: FAILED: {run.error}")
            else:
                print_run(run)
            runs.append(run)
            trim_heap()
            sys.stdout.flush()

    lines = summary([r for r in runs if r.error is None], args.quick)
    print(
        "\nsummary: issue #3 targets for hashguard's default mode, single thread, radius 31 "
        "(a benchmark, so FAIL does not change the exit status):"
    )
    for line in lines:
        print(f"  {line}")
    failed = [f"{run.label}" for run in runs if run.error] + [
        f"{name} on {run.label}" for run in runs for name, r in run.results.items() if r.error
    ]
    if failed:
        print(f"\nraised: {', '.join(failed)}")
    print(f"\ntotal wall time: {time.perf_counter() - started:.1f} s")

    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(to_json(env, runs, lines), indent=2) + "\n")
        print(f"raw numbers written to {args.json}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
