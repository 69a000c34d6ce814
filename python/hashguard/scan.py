"""The scanner: files in, matches against the loaded lists out.

A scan reads the file once; computes MD5 and SHA-256 of its bytes; decodes it (large JPEGs at a
reduced DCT scale unless ``exact``; every frame of an animated image up to a cap) and hashes each
frame with PDQ and its dihedral variants; then asks each list for matches. Nothing here touches
the network, and results hold hashes and list facts, never pixels.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Final, Protocol, final

from hashguard import image
from hashguard.errors import ImageError, NoList, NotAnImage
from hashguard.hashing import PdqHash, hash_pixels
from hashguard.lists import HashList

__all__ = ["DEFAULT_FLOOD_LIMIT", "DEFAULT_FLOOD_WINDOW", "Match", "ScanResult", "Scanner"]

#: An entry matching more distinct files than this within the window is quarantined.
DEFAULT_FLOOD_LIMIT: Final = 50
#: Seconds.
DEFAULT_FLOOD_WINDOW: Final = 3600.0
#: Frames hashed per animated image.
DEFAULT_MAX_FRAMES: Final = 64


class _KeepsLists(Protocol):
    """What keeps lists current (a :class:`hashguard.ListUpdater`): the handles in use now."""

    @property
    def lists(self) -> Mapping[str, HashList]: ...


@final
@dataclass(frozen=True)
class Match:
    """One list entry a file matched."""

    list_id: str
    list_version: int
    entry_id: int
    category: str
    #: ``"pdq"``, ``"md5"`` or ``"sha256"``.
    kind: str
    #: Hamming distance for PDQ; 0 for exact hashes.
    distance: int
    #: The dihedral variant of the file that matched (``"orig"`` unless rotated or mirrored).
    transform: str
    #: The frame of an animated image that matched; None for exact hashes.
    frame: int | None


@final
@dataclass(frozen=True)
class ScanResult:
    """What a scan found out about one file. ``error`` is set when the file could not be read or
    decoded; exact hashes (and their matches) are still given when the bytes were read."""

    source: str
    pdq: PdqHash | None
    md5: str | None
    sha256: str | None
    matches: tuple[Match, ...]
    #: The PDQ quality was below a list's minimum, so PDQ matching against it was skipped.
    low_quality: bool
    #: Frames hashed (0 for files that are not images).
    frames: int
    error: ImageError | None = None
    #: Entries this scan pushed over the flood limit: quarantined from now on, reported once.
    suspect_entries: tuple[tuple[str, int], ...] = ()

    @property
    def quality(self) -> int | None:
        return self.pdq.quality if self.pdq is not None else None

    @property
    def matched(self) -> bool:
        return bool(self.matches)


class _Flood:
    """Distinct files matched per entry within a sliding window."""

    def __init__(self, limit: int, window: float, clock: Callable[[], float]) -> None:
        self.limit, self.window, self.clock = limit, window, clock
        self.seen: dict[tuple[str, int], deque[tuple[float, str]]] = {}
        self.quarantined: set[tuple[str, int]] = set()
        self.lock = threading.Lock()

    def record(self, entries: set[tuple[str, int]], file_key: str) -> set[tuple[str, int]]:
        """Notes that the file matched these entries; returns those newly quarantined."""
        now = self.clock()
        newly = set()
        with self.lock:
            for key in entries - self.quarantined:
                hits = self.seen.setdefault(key, deque())
                while hits and hits[0][0] <= now - self.window:
                    hits.popleft()
                if all(f != file_key for _, f in hits):
                    hits.append((now, file_key))
                if len(hits) > self.limit:
                    self.quarantined.add(key)
                    del self.seen[key]
                    newly.add(key)
        return newly

    def blocked(self, key: tuple[str, int]) -> bool:
        with self.lock:
            return key in self.quarantined


class Scanner:
    """Scans files against hash lists.

    ``lists``: a :class:`HashList`, several, or an object with a ``lists`` property (a
    :class:`hashguard.ListUpdater`), read at the start of every scan so updates swap in
    between scans. ``dihedral``: also match rotated and mirrored copies. ``exact``: decode
    JPEGs in full (hashes bit-identical to the reference) instead of at a reduced DCT scale
    (see docs/decoding.md). ``max_frames``: frames hashed per animated image. An entry that
    matches more than ``flood_limit`` distinct files within ``flood_window`` seconds is
    quarantined (a suspected bad list entry): reported once in ``suspect_entries`` and to
    ``on_suspect_entry``, and not matched again by this scanner.
    """

    def __init__(
        self,
        lists: HashList | Sequence[HashList] | _KeepsLists,
        *,
        dihedral: bool = True,
        exact: bool = False,
        max_frames: int = DEFAULT_MAX_FRAMES,
        apply_exif: bool = False,
        max_pixels: int = image.DEFAULT_MAX_PIXELS,
        flood_limit: int = DEFAULT_FLOOD_LIMIT,
        flood_window: float = DEFAULT_FLOOD_WINDOW,
        on_suspect_entry: Callable[[str, int], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_frames < 1:
            raise ValueError(f"max_frames must be at least 1, got {max_frames}")
        if flood_limit < 1 or flood_window <= 0:
            raise ValueError("flood_limit must be at least 1 and flood_window positive")
        self._source = lists
        self.dihedral = dihedral
        self.exact = exact
        self.max_frames = max_frames
        self.apply_exif = apply_exif
        self.max_pixels = max_pixels
        self._flood = _Flood(flood_limit, flood_window, clock)
        self._on_suspect = on_suspect_entry
        if not isinstance(lists, (HashList, Sequence)) and not hasattr(lists, "lists"):
            raise TypeError(f"expected HashList handles or an updater, got {type(lists).__name__}")

    def _current_lists(self) -> Sequence[HashList]:
        src = self._source
        if isinstance(src, HashList):
            return (src,)
        lists: Sequence[HashList] = src if isinstance(src, Sequence) else list(src.lists.values())
        for hl in lists:
            if not isinstance(hl, HashList):
                raise TypeError(f"expected HashList handles, got {type(hl).__name__}")
        if not lists:
            # Scanning against nothing would report every file as clean.
            raise NoList("no list to scan against (has the updater installed one yet?)")
        return lists

    @property
    def quarantined(self) -> frozenset[tuple[str, int]]:
        """(list id, entry id) of every entry quarantined by flood protection."""
        with self._flood.lock:
            return frozenset(self._flood.quarantined)

    def scan(self, src: image.Source) -> ScanResult:
        """Scans one file (a path, bytes, or a binary file object; a ``PIL.Image`` or array is
        hashed without exact hashes). Never raises for a bad file: see ``ScanResult.error``."""
        lists = self._current_lists()
        name = image.source_name(src)
        try:
            data = image.read_source(src)
        except ImageError as e:
            return ScanResult(name, None, None, None, (), False, 0, e)
        md5 = sha256 = None
        if data is not None:
            md5 = hashlib.md5(data, usedforsecurity=False).hexdigest()
            sha256 = hashlib.sha256(data).hexdigest()
        hashes: list[PdqHash] = []
        error = None
        try:
            for pixels in image.frames(
                src,
                data=data,
                max_frames=self.max_frames,
                apply_exif=self.apply_exif,
                max_pixels=self.max_pixels,
                min_side=None if self.exact else image.DEFAULT_MIN_SIDE,
            ):
                hashes.append(hash_pixels(pixels, dihedral=self.dihedral))
        except NotAnImage:
            pass  # any other file: its exact hashes are still checked
        except ImageError as e:
            error = e
        return self._match(name, lists, hashes, md5, sha256, error)

    def _match(
        self,
        name: str,
        lists: Sequence[HashList],
        hashes: list[PdqHash],
        md5: str | None,
        sha256: str | None,
        error: ImageError | None,
    ) -> ScanResult:
        md5_raw = bytes.fromhex(md5) if md5 else None
        sha_raw = bytes.fromhex(sha256) if sha256 else None
        found: dict[tuple[str, int, str], Match] = {}
        low_quality = False
        for hl in lists:
            per_frame: list[tuple[int | None, PdqHash | None]] = [
                (i, h) for i, h in enumerate(hashes)
            ] or [(None, None)]
            for frame, pdq in per_frame:
                if pdq is not None and (pdq.quality or 0) < hl.min_quality:
                    low_quality = True
                exact = frame is None or frame == 0
                for m in hl.match(
                    pdq,
                    md5=md5_raw if exact else None,
                    sha256=sha_raw if exact else None,
                    dihedral=self.dihedral,
                ):
                    match = Match(
                        list_id=hl.list_id,
                        list_version=hl.version,
                        entry_id=m.entry_id,
                        category=m.category,
                        kind=m.kind,
                        distance=m.distance,
                        transform=m.transform if m.kind == "pdq" else "orig",
                        frame=frame if m.kind == "pdq" else None,
                    )
                    key = (hl.list_id, m.entry_id, m.kind)
                    best = found.get(key)
                    if best is None or match.distance < best.distance:
                        found[key] = match
        matches = [m for m in found.values() if not self._flood.blocked((m.list_id, m.entry_id))]
        file_key = sha256 or (hashes[0].hex if hashes else name)
        newly = self._flood.record({(m.list_id, m.entry_id) for m in matches}, file_key)
        if newly:
            matches = [m for m in matches if (m.list_id, m.entry_id) not in newly]
            if self._on_suspect is not None:
                for list_id, entry_id in sorted(newly):
                    self._on_suspect(list_id, entry_id)
        matches.sort(key=lambda m: (m.distance, m.list_id, m.entry_id, m.kind))
        return ScanResult(
            source=name,
            pdq=hashes[0] if hashes else None,
            md5=md5,
            sha256=sha256,
            matches=tuple(matches),
            low_quality=low_quality,
            frames=len(hashes),
            error=error,
            suspect_entries=tuple(sorted(newly)),
        )

    def scan_many(
        self,
        sources: Iterable[image.Source],
        *,
        workers: int | None = None,
        ordered: bool = True,
        cancel: threading.Event | None = None,
    ) -> Generator[ScanResult, None, None]:
        """Scans on ``workers`` threads (default: one per CPU); decoding and hashing release
        the GIL, so they overlap. Results come in input order, or as they complete with
        ``ordered=False``. At most ``2 * workers`` files are in flight, so memory stays bounded.
        Setting ``cancel`` stops submitting work; files already in flight are finished and
        yielded, then the iterator ends (closing the iterator does the same)."""
        n = workers if workers is not None else (os.cpu_count() or 1)
        if n < 1:
            raise ValueError(f"workers must be at least 1, got {n}")
        with ThreadPoolExecutor(max_workers=n, thread_name_prefix="hashguard-scan") as pool:
            pending: deque[Future[ScanResult]] = deque()
            try:
                for src in sources:
                    if cancel is not None and cancel.is_set():
                        break
                    pending.append(pool.submit(self.scan, src))
                    while len(pending) >= 2 * n:
                        yield from self._drain(pending, ordered)
                while pending:
                    yield from self._drain(pending, ordered)
            finally:
                for f in pending:
                    f.cancel()

    @staticmethod
    def _drain(pending: deque[Future[ScanResult]], ordered: bool) -> Iterator[ScanResult]:
        """The next result in input order, or every result that has completed."""
        if ordered:
            yield pending.popleft().result()
            return
        done, _ = wait(pending, return_when=FIRST_COMPLETED)
        for f in done:
            pending.remove(f)
            yield f.result()
