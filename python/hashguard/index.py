"""Exact Hamming-radius search over PDQ hashes, in the native core.

Lists loaded from bundles build the same index natively and never pass through Python; this
class is for tests, tools and publishers that hold hashes already.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, Final, final

import numpy as np
import numpy.typing as npt

from hashguard import _native
from hashguard._native import OUTPUT_TOO_SMALL, ffi, lib
from hashguard.errors import NativeError
from hashguard.hashing import HASH_BYTES, TRANSFORMS, PdqHash

__all__ = ["DEFAULT_MAX_DISTANCE", "MODES", "PdqIndex"]

#: PDQ's usual match threshold: distance <= 31 bits.
DEFAULT_MAX_DISTANCE: Final = 31

#: Index modes: "compact" scans codes and ids (40 bytes an entry); "multi-index" adds
#: multi-index hashing tables (about 90 bytes an entry at 10 million, ~40x faster queries).
MODES: Final = {"auto": 0, "compact": 1, "multi-index": 2}
_MODE_NAMES: Final = {1: "compact", 2: "multi-index"}


def _codes_array(codes: Any, what: str) -> npt.NDArray[np.uint8]:
    """An (N, 32) C-contiguous uint8 array from an array or a sequence of PdqHash/bytes."""
    if isinstance(codes, np.ndarray):
        arr = codes
    else:
        items = list(codes)
        arr = np.frombuffer(b"".join(_hash_bytes(h) for h in items), np.uint8).reshape(
            len(items), HASH_BYTES
        )
    if arr.dtype != np.uint8 or arr.ndim != 2 or arr.shape[1] != HASH_BYTES:
        raise ValueError(f"{what} must be an (N, 32) uint8 array, got {arr.dtype} {arr.shape}")
    return np.ascontiguousarray(arr)


def _hash_bytes(h: PdqHash | bytes) -> bytes:
    raw = h.bytes if isinstance(h, PdqHash) else bytes(h)
    if len(raw) != HASH_BYTES:
        raise ValueError(f"a PDQ hash is {HASH_BYTES} bytes, got {len(raw)}")
    return raw


def _check_distance(max_distance: int) -> None:
    if not 0 <= max_distance <= 256:
        raise ValueError(f"max_distance must be 0..256, got {max_distance}")


@final
class PdqIndex:
    """An immutable index of PDQ hashes with u64 entry ids.

    Queries return every entry within ``max_distance`` bits (inclusive), closest first; entries
    with equal hashes are each reported. Queries release the GIL and one index may be queried
    from any number of threads.
    """

    __slots__ = ("_handle",)

    def __init__(self, handle: Any) -> None:
        self._handle = handle

    @classmethod
    def from_hashes(
        cls,
        codes: npt.ArrayLike | Sequence[PdqHash],
        ids: npt.ArrayLike,
        *,
        mode: str = "auto",
    ) -> PdqIndex:
        """Builds an index. ``codes`` is an (N, 32) uint8 array in the byte order of the hex
        text (or a sequence of :class:`PdqHash`), ``ids`` an (N,) uint64 array. ``mode`` is
        ``"auto"`` (compact below 20,000 entries), ``"compact"`` or ``"multi-index"``."""
        if mode not in MODES:
            raise ValueError(f"mode must be one of {sorted(MODES)}, got {mode!r}")
        arr = _codes_array(codes, "codes")
        id_arr = np.ascontiguousarray(np.asarray(ids), dtype=np.uint64)
        if id_arr.shape != (arr.shape[0],):
            raise ValueError(f"ids must have shape ({arr.shape[0]},), got {id_arr.shape}")
        out = ffi.new("hg_pdq_index **")
        _native.check(
            lib.hg_pdq_index_new(
                ffi.from_buffer("uint8_t[]", arr),
                ffi.from_buffer("uint64_t[]", id_arr),
                arr.shape[0],
                MODES[mode],
                out,
            )
        )
        return cls(ffi.gc(out[0], lib.hg_pdq_index_free))

    def __len__(self) -> int:
        return int(lib.hg_pdq_index_len(self._handle))

    @property
    def memory_bytes(self) -> int:
        """Heap memory the native index holds."""
        return int(lib.hg_pdq_index_memory_bytes(self._handle))

    @property
    def mode(self) -> str:
        return _MODE_NAMES[int(lib.hg_pdq_index_mode(self._handle))]

    def query(
        self, hash: PdqHash | bytes, max_distance: int = DEFAULT_MAX_DISTANCE
    ) -> list[tuple[int, int]]:
        """``(id, distance)`` of every entry within ``max_distance`` bits, closest first."""
        _check_distance(max_distance)
        raw = _hash_bytes(hash)
        found = self._collect(
            lambda out, cap, count: lib.hg_pdq_index_query(
                self._handle, raw, max_distance, out, cap, count
            )
        )
        return [(int(m.id), int(m.distance)) for m in found]

    def query_dihedral(
        self, pdq_hash: PdqHash, max_distance: int = DEFAULT_MAX_DISTANCE
    ) -> list[tuple[int, int, str]]:
        """``(id, distance, transform)`` of every entry within ``max_distance`` bits of any of
        the 8 dihedral variants of ``pdq_hash`` (from ``hash_image(..., dihedral=True)``), each
        entry once with its closest variant, closest first."""
        _check_distance(max_distance)
        variants = pdq_hash.dihedral()
        raw = b"".join(variants[name].bytes for name in TRANSFORMS)
        found = self._collect(
            lambda out, cap, count: lib.hg_pdq_index_query_dihedral(
                self._handle, raw, max_distance, out, cap, count
            )
        )
        return [(int(m.id), int(m.distance), TRANSFORMS[m.transform]) for m in found]

    def query_batch(
        self,
        codes: npt.ArrayLike | Sequence[PdqHash],
        max_distance: int = DEFAULT_MAX_DISTANCE,
        *,
        threads: int | None = None,
    ) -> list[list[tuple[int, int]]]:
        """:meth:`query` for each row of an (M, 32) uint8 array (or each hash of a sequence), on
        ``threads`` native threads (default: one per CPU); results in query order."""
        _check_distance(max_distance)
        arr = _codes_array(codes, "codes")
        n = arr.shape[0]
        nthreads = threads if threads is not None else (os.cpu_count() or 1)
        if nthreads < 1:
            raise ValueError(f"threads must be at least 1, got {nthreads}")
        buf = ffi.from_buffer("uint8_t[]", arr)
        offsets = ffi.new("size_t[]", n + 1)
        total = ffi.new("size_t *")
        cap = max(64, 4 * n)
        while True:
            out = ffi.new("hg_match[]", cap)
            status = lib.hg_pdq_index_query_batch(
                self._handle, buf, n, max_distance, nthreads, out, cap, offsets, total
            )
            if status != OUTPUT_TOO_SMALL:
                _native.check(status)
                break
            cap = int(total[0])
        return [
            [(int(out[k].id), int(out[k].distance)) for k in range(offsets[i], offsets[i + 1])]
            for i in range(n)
        ]

    def _collect(self, call: Any) -> list[Any]:
        """Runs a query with a buffer that grows to the size the native side asks for."""
        cap = 64
        count = ffi.new("size_t *")
        while True:
            out = ffi.new("hg_match[]", cap)
            status = call(out, cap, count)
            if status != OUTPUT_TOO_SMALL:
                _native.check(status)
                return list(out[0 : count[0]])
            if int(count[0]) <= cap:
                raise NativeError(OUTPUT_TOO_SMALL, "index reported an inconsistent size")
            cap = int(count[0])

    def __repr__(self) -> str:
        return f"<PdqIndex {len(self)} entries, {self.mode}, {self.memory_bytes} bytes>"
