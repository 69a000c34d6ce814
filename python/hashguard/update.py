"""Keeping hash lists current on the device: periodic, fail-safe updates with an atomic hot swap.

:class:`ListUpdater` downloads bundles (a delta for the installed version when one is published,
the full bundle otherwise), verifies them natively before anything else happens, stores them
crash-safely in a state directory (:mod:`hashguard.state`) and only then replaces the list that
scans use. A failure of any kind leaves the last good list in use. See docs/updates.md.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Final, Literal, Union

from hashguard import fetch as _fetch
from hashguard import publish
from hashguard.errors import (
    Error,
    NoList,
    Rollback,
    StateError,
    UntrustedKey,
    UpdateError,
)
from hashguard.lists import DEFAULT_MAX_BUNDLE_BYTES, HashList
from hashguard.state import PREVIOUS, BundleFile, Manifest, StateDir

__all__ = ["KeySpec", "ListSource", "ListStatus", "ListUpdater", "UpdateResult", "read_key"]

if TYPE_CHECKING:
    import ssl

logger = logging.getLogger("hashguard.update")
logger.addHandler(logging.NullHandler())  # the app decides where messages go

#: A key: its 32 raw bytes, or a hex key file (a path), or ``"env:NAME"`` for an environment
#: variable holding the hex (for CI).
KeySpec = Union[bytes, str, "os.PathLike[str]"]
_LIST_ID: Final = re.compile(r"[a-z0-9._-]{1,64}")


def read_key(spec: KeySpec) -> bytes:
    """32 key bytes from raw bytes, a hex key file, or ``env:NAME``. Errors name the file or
    variable, never the key."""
    if isinstance(spec, (bytes, bytearray)):
        if len(spec) != 32:
            raise ValueError(f"a key is 32 bytes, got {len(spec)}")
        return bytes(spec)
    return publish.read_key(spec)


def _key_list(spec: KeySpec | Sequence[KeySpec]) -> list[KeySpec]:
    if isinstance(spec, (bytes, bytearray, str, os.PathLike)):
        return [spec]
    return list(spec)


@dataclass(frozen=True)
class ListSource:
    """Where one list comes from and the keys that verify and open it.

    ``url``: the full bundle (``http://``, ``https://``, ``file://`` or a local path).
    ``delta_url``: optional template with ``{version}``, replaced by the installed version; a
    404 (or a missing file) there means "no delta", and the full bundle is used.
    ``verify_key``: the trusted root public key(s); ``content_key`` (an app key) and/or
    ``device_key`` (an X25519 secret) open the bundle. Keys are :data:`KeySpec` values, read
    once here; they never appear in reprs or logs. ``max_bundle_bytes`` caps every download.
    """

    list_id: str
    url: str | os.PathLike[str]
    verify_key: KeySpec | Sequence[KeySpec] = field(repr=False)
    content_key: KeySpec | None = field(default=None, repr=False)
    device_key: KeySpec | None = field(default=None, repr=False)
    delta_url: str | None = None
    max_bundle_bytes: int = DEFAULT_MAX_BUNDLE_BYTES
    _url: str = field(init=False, repr=False, compare=False)
    _roots: tuple[bytes, ...] = field(init=False, repr=False, compare=False)
    _content: bytes | None = field(init=False, repr=False, compare=False)
    _device: bytes | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not _LIST_ID.fullmatch(self.list_id) or set(self.list_id) == {"."}:
            raise ValueError(
                f"list id must be 1-64 of a-z 0-9 . _ - (not only dots): {self.list_id!r}"
            )
        object.__setattr__(self, "url", _fetch.check_url(os.fspath(self.url)))
        object.__setattr__(self, "_url", self.url)
        if self.delta_url is not None:
            if "{version}" not in self.delta_url:
                raise ValueError("delta_url must contain {version}")
            _fetch.check_url(self.delta_url)
        if self.max_bundle_bytes < 1:
            raise ValueError("max_bundle_bytes must be positive")
        specs = _key_list(self.verify_key)
        if not specs:
            raise ValueError("give at least one verify_key")
        object.__setattr__(self, "_roots", tuple(read_key(k) for k in specs))
        if self.content_key is None and self.device_key is None:
            raise ValueError("give a content_key or a device_key")
        object.__setattr__(
            self, "_content", None if self.content_key is None else read_key(self.content_key)
        )
        object.__setattr__(
            self, "_device", None if self.device_key is None else read_key(self.device_key)
        )

    def delta_for(self, version: int) -> str | None:
        """The delta address for an installed version, if a template is configured."""
        return None if self.delta_url is None else self.delta_url.replace("{version}", str(version))


Status = Literal["updated", "unchanged", "failed"]


@dataclass(frozen=True)
class UpdateResult:
    """What one update attempt of one list did.

    ``status``: ``updated`` (a newer version is in use), ``unchanged`` (nothing newer), or
    ``failed`` (``error`` says why; the last good list, if any, stays in use). ``via`` lists the
    bundles that got there (``"delta"``, ``"full"``). An ``updated`` result may still carry an
    ``error`` from a later step (for example a broken delta after a good one)."""

    list_id: str
    status: Status
    version: int | None
    previous_version: int | None
    via: tuple[str, ...] = ()
    error: Error | None = None
    stale: bool = False

    @property
    def ok(self) -> bool:
        return self.status != "failed"


@dataclass(frozen=True)
class ListStatus:
    """The state of one list: the version in use (None: no list), whether it has expired,
    where it was loaded from at start (``current``, ``previous``, ``recovered`` or None), and
    the update history (times are Unix seconds)."""

    list_id: str
    version: int | None
    stale: bool
    expires: int | None
    loaded_from: str | None
    last_attempt: float | None
    last_success: float | None
    last_error: Error | None
    consecutive_failures: int
    next_attempt_in: float | None


Callback = Callable[[UpdateResult], object]


class _Slot:
    """One list's runtime state. ``handle`` is what scans read (one atomic reference);
    everything else is changed under ``lock`` by whoever is updating."""

    def __init__(self, source: ListSource, state: StateDir) -> None:
        self.source = source
        self.state = state
        self.lock = threading.Lock()
        self.handle: HashList | None = None
        self.manifest: Manifest | None = None
        self.previous: Manifest | None = None
        self.loaded_from: str | None = None
        self.load_problems: list[str] = []
        self.failures = 0
        self.next_due = 0.0
        self.last_attempt: float | None = None
        self.last_success: float | None = None
        self.last_error: Error | None = None


class ListUpdater:
    """Keeps one or more lists current from their sources, with the last good list always in
    use.

    The constructor loads the last good generation of each list from ``state_dir`` (no network);
    :meth:`current` hands out the list scans should use. :meth:`update_now` updates
    synchronously; :meth:`start` runs updates on a daemon thread every ``interval`` seconds plus
    up to ``jitter`` seconds, retrying failures after ``backoff_initial`` seconds, doubling up
    to ``backoff_max``. ``on_updated``, ``on_failed`` and ``on_stale`` are called with an
    :class:`UpdateResult` after each attempt, on the thread that ran it (exceptions they raise
    are logged and ignored).

    Deltas: at most ``max_chain`` deltas are kept on top of a full bundle before the full
    bundle is fetched again; after a delta 404 the full bundle is checked only when its HTTP
    validators describe the installed version (a cheap conditional GET), when the list is stale,
    or when neither a full check nor a delta happened for ``full_check_interval`` seconds.
    ``keep_stale``: keep matching with an expired list (reported as stale) rather than refusing
    it. ``clock``: the time source (seconds), for tests.
    """

    def __init__(
        self,
        sources: ListSource | Sequence[ListSource],
        state_dir: str | os.PathLike[str],
        *,
        interval: float = 3600.0,
        jitter: float = 300.0,
        backoff_initial: float = 60.0,
        backoff_max: float = 6 * 3600.0,
        full_check_interval: float = 3 * 86400.0,
        max_chain: int = 16,
        keep_stale: bool = True,
        connect_timeout: float = 10.0,
        read_timeout: float = 30.0,
        deadline: float = 600.0,
        ssl_context: ssl.SSLContext | None = None,
        on_updated: Callback | None = None,
        on_failed: Callback | None = None,
        on_stale: Callback | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        items = [sources] if isinstance(sources, ListSource) else list(sources)
        if not items:
            raise ValueError("give at least one ListSource")
        ids = [s.list_id for s in items]
        if len(set(ids)) != len(ids):
            raise ValueError(f"duplicate list ids: {ids}")
        for name, value in (("interval", interval), ("backoff_initial", backoff_initial),
                            ("backoff_max", backoff_max), ("connect_timeout", connect_timeout),
                            ("read_timeout", read_timeout), ("deadline", deadline)):  # fmt: skip
            if not value > 0:
                raise ValueError(f"{name} must be positive")
        if jitter < 0 or max_chain < 0 or full_check_interval < 0:
            raise ValueError("jitter, max_chain and full_check_interval must not be negative")
        self.state_dir = Path(state_dir)
        self.interval = interval
        self.jitter = jitter
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.full_check_interval = full_check_interval
        self.max_chain = max_chain
        self.keep_stale = keep_stale
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.deadline = deadline
        self.ssl_context = ssl_context
        self.on_updated = on_updated
        self.on_failed = on_failed
        self.on_stale = on_stale
        self._clock = clock
        self._slots = {s.list_id: _Slot(s, StateDir(self.state_dir, s.list_id)) for s in items}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._thread_lock = threading.Lock()
        for slot in self._slots.values():
            self._load(slot)

    # ---- what scans use -----------------------------------------------------------------

    def current(self, list_id: str | None = None) -> HashList:
        """The list to scan with now: an immutable handle, so a scan that holds it finishes on
        it even if an update swaps in a newer one meanwhile. ``list_id`` may be left out when
        there is one list. Raises :class:`hashguard.NoList` if there is no usable list."""
        slot = self._slot(list_id)
        hl = slot.handle  # one atomic read; never waits for an update
        if hl is None:
            why = f" (last error: {slot.last_error})" if slot.last_error is not None else ""
            raise NoList(
                f"no list {slot.source.list_id}: nothing usable in {slot.state.path} and no "
                f"update has succeeded yet{why}"
            )
        if not self.keep_stale and self._clock() >= hl.expires:
            raise NoList(
                f"list {hl.list_id} version {hl.version} expired and stale lists are not used"
            )
        return hl

    @property
    def lists(self) -> dict[str, HashList]:
        """The lists in use now, by id (lists with none yet are left out)."""
        out: dict[str, HashList] = {}
        for list_id in self._slots:
            with contextlib.suppress(NoList):
                out[list_id] = self.current(list_id)
        return out

    def status(self) -> dict[str, ListStatus]:
        now = time.monotonic()
        out = {}
        for list_id, slot in self._slots.items():
            hl = slot.handle
            out[list_id] = ListStatus(
                list_id=list_id,
                version=hl.version if hl else None,
                stale=hl is not None and self._clock() >= hl.expires,
                expires=hl.expires if hl else None,
                loaded_from=slot.loaded_from,
                last_attempt=slot.last_attempt,
                last_success=slot.last_success,
                last_error=slot.last_error,
                consecutive_failures=slot.failures,
                next_attempt_in=max(0.0, slot.next_due - now) if self.running else None,
            )
        return out

    # ---- updating -----------------------------------------------------------------------

    def update_now(self, list_id: str | None = None) -> dict[str, UpdateResult]:
        """Updates every list (or one) now, in this thread; returns a result per list. Never
        raises for a failed update: the result says what went wrong."""
        slots = [self._slot(list_id)] if list_id is not None else list(self._slots.values())
        return {s.source.list_id: self._update(s, None) for s in slots}

    def start(self) -> None:
        """Starts the background thread (a no-op if it runs). The first check of a list with no
        list loaded is immediate, otherwise within ``jitter`` seconds."""
        with self._thread_lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._stop.clear()
            now = time.monotonic()
            for slot in self._slots.values():
                slot.next_due = now + (0.0 if slot.handle is None else self._jitter())
            self._thread = threading.Thread(
                target=self._run, name="hashguard-list-updater", daemon=True
            )
            self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Stops the background thread, cancelling a download in progress, and waits for it."""
        with self._thread_lock:
            thread, self._thread = self._thread, None
            self._stop.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    @property
    def running(self) -> bool:
        thread = self._thread
        return thread is not None and thread.is_alive()

    def __enter__(self) -> ListUpdater:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        versions = ", ".join(
            f"{i} v{s.handle.version}" if s.handle else f"{i} (no list)"
            for i, s in self._slots.items()
        )
        return (
            f"<ListUpdater {versions}; state {self.state_dir}{', running' if self.running else ''}>"
        )

    # ---- internals ----------------------------------------------------------------------

    def _slot(self, list_id: str | None) -> _Slot:
        if list_id is None:
            if len(self._slots) != 1:
                raise ValueError("several lists: name the list_id")
            return next(iter(self._slots.values()))
        try:
            return self._slots[list_id]
        except KeyError:
            raise ValueError(f"no list {list_id!r} is configured") from None

    def _jitter(self) -> float:
        return random.uniform(0.0, self.jitter) if self.jitter else 0.0

    def _next_delay(self, failures: int) -> float:
        """Seconds until the next attempt: the interval plus jitter after a success, or the
        backoff after ``failures`` failures in a row, plus up to half again at random."""
        if failures == 0:
            return self.interval + self._jitter()
        base = min(self.backoff_max, self.backoff_initial * 2.0 ** min(failures - 1, 64))
        return base + random.uniform(0.0, base / 2)

    def _limits(self, source: ListSource) -> _fetch.Limits:
        return _fetch.Limits(
            max_bytes=source.max_bundle_bytes,
            connect_timeout=self.connect_timeout,
            read_timeout=self.read_timeout,
            deadline=self.deadline,
        )

    def _open_chain(self, source: ListSource, chain: list[tuple[Path, float]]) -> HashList:
        """Re-verifies stored bundles, each as of the time it was verified on install (so a
        signing certificate that expired since, or a clock set wrong, does not take the last
        good list away; expiry is judged by :meth:`current` and :meth:`status` against the
        clock). A bundle whose certificate was not valid then is tried as of now."""
        hl: HashList | None = None

        def step(path: Path, now: float) -> HashList:
            if hl is None:
                return HashList.open(
                    path, verify_key=source._roots, content_key=source._content,
                    device_key=source._device, list_id=source.list_id, allow_stale=True,
                    now=now, max_bundle_bytes=source.max_bundle_bytes,
                )  # fmt: skip
            return hl.apply_delta(
                path, verify_key=source._roots, content_key=source._content,
                device_key=source._device, allow_stale=True, now=now,
                max_bundle_bytes=source.max_bundle_bytes,
            )  # fmt: skip

        for path, verified_at in chain:
            try:
                nxt = step(path, verified_at)
            except UntrustedKey:
                nxt = step(path, self._clock())
            hl = nxt
        if hl is None:
            raise ValueError("empty chain")
        return hl

    def _load(self, slot: _Slot) -> None:
        """The last good generation from the state directory, if any (never raises)."""
        try:
            found = slot.state.load(lambda chain: self._open_chain(slot.source, chain))
        except Exception as e:  # a bug must not stop the app from starting
            logger.exception("list %s: loading the state failed", slot.source.list_id)
            slot.load_problems = [f"{type(e).__name__}: {e}"]
            return
        if found is None:
            logger.info("list %s: no list in %s yet", slot.source.list_id, slot.state.path)
            return
        hl, manifest, origin, problems = found
        slot.handle, slot.manifest, slot.loaded_from = hl, manifest, origin
        slot.load_problems = problems
        if origin == "current":
            try:
                slot.previous = slot.state.read_manifest(PREVIOUS)
            except (OSError, ValueError, KeyError, TypeError):
                slot.previous = None
        if origin != "current":
            logger.warning(
                "list %s: the current state is unusable (%s); using the %s generation, "
                "version %d", slot.source.list_id, "; ".join(problems), origin, hl.version,
            )  # fmt: skip
        else:
            logger.info("list %s: version %d loaded", slot.source.list_id, hl.version)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                now = time.monotonic()
                for slot in self._slots.values():
                    if self._stop.is_set():
                        return
                    if slot.next_due <= now:
                        self._update(slot, self._stop)
                wait = min(s.next_due for s in self._slots.values()) - time.monotonic()
            except Exception:  # the thread must survive anything
                logger.exception("list updater: unexpected error")
                wait = self.backoff_initial
            self._stop.wait(max(wait, 0.0))

    def _update(self, slot: _Slot, cancel: threading.Event | None) -> UpdateResult:
        source = slot.source
        with slot.lock:
            before = slot.handle
            slot.last_attempt = self._clock()
            try:
                with slot.state.lock():
                    slot.state.clean_temporaries()
                    via, error = self._update_locked(slot, cancel)
            except Error as e:
                via, error = (), e
            except Exception as e:  # a bug: report it, keep the last good list
                logger.exception("list %s: unexpected error while updating", source.list_id)
                via, error = (), UpdateError(f"internal error: {type(e).__name__}: {e}")
            after = slot.handle
            status: Status = "updated" if via else ("failed" if error is not None else "unchanged")
            if status == "failed":
                slot.failures += 1
                slot.last_error = error
            else:
                slot.failures = 0
                slot.last_success = slot.last_attempt
                slot.last_error = error
            slot.next_due = time.monotonic() + self._next_delay(slot.failures)
            result = UpdateResult(
                list_id=source.list_id,
                status=status,
                version=after.version if after else None,
                previous_version=before.version if before else None,
                via=via,
                error=error,
                stale=after is not None and self._clock() >= after.expires,
            )
        self._report(result)
        return result

    def _report(self, result: UpdateResult) -> None:
        if result.status == "updated":
            logger.info("list %s: updated from %s to version %s via %s", result.list_id,
                        result.previous_version, result.version, "+".join(result.via))  # fmt: skip
            self._call(self.on_updated, result)
        elif result.status == "failed":
            kept = f"keeping version {result.version}" if result.version is not None else "no list"
            logger.warning("list %s: update failed (%s): %s; %s", result.list_id,
                           type(result.error).__name__, result.error, kept)  # fmt: skip
            self._call(self.on_failed, result)
        else:
            logger.debug("list %s: version %s is current", result.list_id, result.version)
        if result.stale:
            logger.warning("list %s: version %s has expired (stale)", result.list_id,
                           result.version)  # fmt: skip
            self._call(self.on_stale, result)

    @staticmethod
    def _call(callback: Callback | None, result: UpdateResult) -> None:
        if callback is None:
            return
        try:
            callback(result)
        except Exception:
            logger.exception("list %s: an update callback raised", result.list_id)

    def _update_locked(
        self, slot: _Slot, cancel: threading.Event | None
    ) -> tuple[tuple[str, ...], Error | None]:
        """Deltas as far as they go, then the full bundle if needed. Returns what was applied
        and the error that stopped it, if any."""
        via: list[str] = []
        delta_error: Error | None = None
        while slot.handle is not None and slot.manifest is not None:
            url = slot.source.delta_for(slot.handle.version)
            if url is None or slot.manifest.chain_length >= self.max_chain:
                break
            try:
                if not self._try_delta(slot, url, cancel):
                    break
            except Error as e:
                delta_error = e
                logger.info("list %s: delta refused (%s: %s); trying the full bundle",
                            slot.source.list_id, type(e).__name__, e)  # fmt: skip
                break
            via.append("delta")
        if isinstance(delta_error, StateError):
            return tuple(via), delta_error
        if not self._need_full(slot, bool(via), delta_error is not None):
            return tuple(via), None
        try:
            if self._try_full(slot, cancel):
                via.append("full")
        except Error as e:
            return tuple(via), e
        return tuple(via), delta_error

    def _need_full(self, slot: _Slot, applied_delta: bool, delta_failed: bool) -> bool:
        hl, m = slot.handle, slot.manifest
        if hl is None or m is None or slot.source.delta_url is None or delta_failed:
            return True
        if m.chain_length >= self.max_chain or self._clock() >= hl.expires:
            return True
        if applied_delta:
            return False
        if m.validators_version == hl.version and (m.etag or m.last_modified):
            return True
        return self._clock() - m.full_checked_at >= self.full_check_interval

    def _try_delta(self, slot: _Slot, url: str, cancel: threading.Event | None) -> bool:
        source, hl, manifest = slot.source, slot.handle, slot.manifest
        assert hl is not None and manifest is not None
        with slot.state.sink() as sink:
            got = _fetch.fetch(url, sink, self._limits(source), allow_absent=True,
                               ssl_context=self.ssl_context, cancel=cancel)  # fmt: skip
            if got.status != "ok":
                return False
            sink.finish()
            now = self._clock()
            new = hl.apply_delta(
                sink.path, verify_key=source._roots, content_key=source._content,
                device_key=source._device, now=now, max_bundle_bytes=source.max_bundle_bytes,
            )  # fmt: skip
            bundle = slot.state.install(sink, version=new.version, base=hl.version, verified_at=now)
            updated = replace(manifest, files=(*manifest.files, bundle), full_checked_at=now)
            self._commit(slot, updated, new, bundle)
        return True

    def _try_full(self, slot: _Slot, cancel: threading.Event | None) -> bool:
        """Fetches the full bundle (conditionally). True if it brought a newer version."""
        source, hl, manifest = slot.source, slot.handle, slot.manifest
        with slot.state.sink() as sink:
            got = _fetch.fetch(
                source._url, sink, self._limits(source),
                etag=manifest.etag if manifest is not None else None,
                last_modified=manifest.last_modified if manifest is not None else None,
                ssl_context=self.ssl_context, cancel=cancel,
            )  # fmt: skip
            now = self._clock()
            if got.status != "ok":  # not modified: note the check (in memory only)
                if manifest is not None:
                    slot.manifest = replace(manifest, full_checked_at=now)
                return False
            sink.finish()
            installed = hl.version if hl is not None else None
            try:
                # One below the installed version: the same version is accepted (and below).
                new = HashList.open(
                    sink.path, verify_key=source._roots, content_key=source._content,
                    device_key=source._device, list_id=source.list_id,
                    installed_version=installed - 1 if installed else None, now=now,
                    max_bundle_bytes=source.max_bundle_bytes,
                )  # fmt: skip
            except Rollback:
                raise Rollback(
                    f"the full bundle is older than the installed version {installed}"
                ) from None
            if installed is not None and new.version < installed:  # installed version 0
                raise Rollback(f"bundle version {new.version} is older than installed {installed}")
            digest = sink.digest.hexdigest()[:16]
            if (
                manifest is not None
                and new.version == installed
                and manifest.chain_length == 0
                and manifest.files[0].name.endswith(f"-{digest}.hgl")
            ):
                # The very bundle we have: only its validators are new, not a new generation.
                meta = replace(
                    manifest, etag=got.etag, last_modified=got.last_modified,
                    validators_version=new.version, full_checked_at=now,
                )  # fmt: skip
                slot.state.commit(meta, previous=None, keep=slot.previous)
                slot.manifest = meta
                return False
            bundle = slot.state.install(sink, version=new.version, base=None, verified_at=now)
            fresh = Manifest(
                source.list_id, (bundle,), etag=got.etag, last_modified=got.last_modified,
                validators_version=new.version, full_checked_at=now,
            )  # fmt: skip
            self._commit(slot, fresh, new, bundle)
            # The same version as installed (a full bundle replacing base + deltas) is no update.
            return installed is None or new.version > installed

    def _commit(self, slot: _Slot, manifest: Manifest, new: HashList, bundle: BundleFile) -> None:
        """Makes ``manifest`` durable, then swaps ``new`` in for scans."""
        try:
            slot.state.commit(manifest, previous=slot.manifest)
        except StateError:
            slot.state.forget(bundle, slot.manifest, slot.previous)
            raise
        slot.previous, slot.manifest = slot.manifest, manifest
        slot.handle = new  # the hot swap: one reference assignment
