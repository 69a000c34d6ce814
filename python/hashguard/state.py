"""The list updater's state directory: crash-safe storage of the last good bundles.

One folder per list (``STATE/<list_id>/``) holds:

- bundle files, named by what they are and a digest of their bytes, never modified once
  written: ``full-v<version>-<sha>.hgl`` and ``delta-v<base>-v<version>-<sha>.hgl``;
- ``state.json``, the manifest of the generation in use: the full bundle and the deltas applied
  on top of it, in order, with the time each was verified and the HTTP validators;
- ``state.prev.json``, the manifest of the generation before it;
- ``.lock`` (an advisory lock held while updating) and, after a crash, stray ``.dl-*`` or
  ``.state.json.*`` temporary files, removed by the next update.

Every file is written to a temporary file, fsynced, renamed into place and the folder fsynced,
and a manifest only names files that are already durable, so a crash at any point leaves the
previous manifest and everything it names intact. See docs/updates.md.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Final

from hashguard import publish
from hashguard.errors import Error, StateError
from hashguard.lists import HashList

__all__ = ["BundleFile", "Manifest", "Sink", "StateDir"]

MANIFEST: Final = "state.json"
PREVIOUS: Final = "state.prev.json"
LOCK: Final = ".lock"
FORMAT: Final = 1
_FULL = re.compile(r"full-v(\d+)-[0-9a-f]{16}\.hgl")
_DELTA = re.compile(r"delta-v(\d+)-v(\d+)-[0-9a-f]{16}\.hgl")

#: Opens a chain of bundle files as one list: (files, verification times) -> HashList.
ChainOpener = Callable[[list[tuple[Path, float]]], HashList]


@dataclass(frozen=True)
class BundleFile:
    """One committed bundle: its file name, the version it brings, and when it was verified."""

    name: str
    version: int
    verified_at: float


@dataclass(frozen=True)
class Manifest:
    """One generation: a full bundle and the deltas on top of it, plus HTTP validators of the
    full bundle URL (``validators_version``: the version the full bundle had then)."""

    list_id: str
    files: tuple[BundleFile, ...]
    etag: str | None = None
    last_modified: str | None = None
    validators_version: int | None = None
    full_checked_at: float = 0.0

    @property
    def version(self) -> int:
        return self.files[-1].version

    @property
    def chain_length(self) -> int:
        """Deltas on top of the full bundle."""
        return len(self.files) - 1

    def to_json(self) -> bytes:
        data = asdict(self)
        data["format"] = FORMAT
        data["version"] = self.version
        return (json.dumps(data, indent=1, sort_keys=True) + "\n").encode()

    @classmethod
    def from_json(cls, raw: bytes) -> Manifest:
        """Raises ValueError (or KeyError/TypeError) for anything but a well-formed manifest."""
        data = json.loads(raw)
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ValueError("not a version 1 manifest")
        files = tuple(
            BundleFile(str(f["name"]), int(f["version"]), float(f["verified_at"]))
            for f in data["files"]
        )
        if not files or not _FULL.fullmatch(files[0].name):
            raise ValueError("a manifest starts with a full bundle")
        if not all(_DELTA.fullmatch(f.name) for f in files[1:]):
            raise ValueError("bad delta file name")
        if int(data["version"]) != files[-1].version:
            raise ValueError("version does not match the chain")

        def text(key: str) -> str | None:
            value = data.get(key)
            return value if isinstance(value, str) else None

        vv = data.get("validators_version")
        return cls(
            list_id=str(data["list_id"]),
            files=files,
            etag=text("etag"),
            last_modified=text("last_modified"),
            validators_version=int(vv) if isinstance(vv, int) else None,
            full_checked_at=float(data.get("full_checked_at") or 0.0),
        )


class Sink:
    """A temporary download file in the state directory. Write failures (full disk, read-only
    folder) raise :class:`hashguard.StateError`; :meth:`finish` makes the bytes durable."""

    def __init__(self, folder: Path) -> None:
        try:
            fd, name = tempfile.mkstemp(dir=folder, prefix=".dl-")
        except OSError as e:
            raise _state_error("cannot create a download file in", folder, e) from None
        self.fd: int | None = fd
        self.path = Path(name)
        self.digest = hashlib.sha256()
        self.installed = False

    def write(self, data: bytes) -> None:
        assert self.fd is not None
        view = memoryview(data)
        try:
            while view:
                n = os.write(self.fd, view)
                view = view[n:]
        except OSError as e:
            raise _state_error("cannot write a download to", self.path.parent, e) from None
        self.digest.update(data)

    def finish(self) -> None:
        """fsyncs and closes the file."""
        assert self.fd is not None
        fd, self.fd = self.fd, None
        try:
            os.fsync(fd)
        except OSError as e:
            raise _state_error("cannot store a download in", self.path.parent, e) from None
        finally:
            os.close(fd)

    def discard(self) -> None:
        if self.fd is not None:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = None
        if not self.installed:
            with contextlib.suppress(OSError):
                self.path.unlink()

    def __enter__(self) -> Sink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.discard()


def _state_error(what: str, path: Path, e: OSError) -> StateError:
    reason = {errno.ENOSPC: "disk full", errno.EROFS: "read-only file system",
              errno.EDQUOT: "quota exceeded"}.get(e.errno or 0, e.strerror or str(e))  # fmt: skip
    return StateError(f"{what} {path}: {reason}")


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class StateDir:
    """The folder of one list. Reading needs no lock (every write is atomic); updating holds
    :meth:`lock`, which also serializes updaters in different processes."""

    def __init__(self, root: str | os.PathLike[str], list_id: str) -> None:
        self.root = Path(root)
        self.list_id = list_id
        self.path = self.root / list_id

    # ---- reading ------------------------------------------------------------------------

    def read_manifest(self, name: str) -> Manifest:
        """Raises OSError or ValueError if the manifest is missing or not well formed."""
        with open(self.path / name, "rb") as f:
            raw = f.read(1 << 20)
        manifest = Manifest.from_json(raw)
        if manifest.list_id != self.list_id:
            raise ValueError(f"manifest of list {manifest.list_id!r}")
        return manifest

    def load(self, opener: ChainOpener) -> tuple[HashList, Manifest, str, list[str]] | None:
        """The newest good generation: the current manifest, else the previous one, else any
        full bundle (and deltas) found in the folder. Returns the list, its manifest, where it
        came from (``current``, ``previous`` or ``recovered``) and what was wrong on the way;
        None if nothing opens. Never deletes or changes anything."""
        problems: list[str] = []
        for name, origin in ((MANIFEST, "current"), (PREVIOUS, "previous")):
            try:
                manifest = self.read_manifest(name)
            except FileNotFoundError:
                problems.append(f"{name}: missing")
                continue
            except (OSError, ValueError, KeyError, TypeError) as e:
                problems.append(f"{name}: unreadable ({type(e).__name__})")
                continue
            try:
                hl = self._open(opener, manifest)
            except (Error, OSError, ValueError) as e:
                problems.append(f"{name}: {e}")
                continue
            return hl, manifest, origin, problems
        recovered = self._recover(opener, problems)
        if recovered is not None:
            return recovered[0], recovered[1], "recovered", problems
        return None

    def _open(self, opener: ChainOpener, manifest: Manifest) -> HashList:
        hl = opener([(self.path / f.name, f.verified_at) for f in manifest.files])
        if hl.version != manifest.version or hl.list_id != self.list_id:
            raise ValueError(
                f"chain opens as version {hl.version}, manifest says {manifest.version}"
            )
        return hl

    def _recover(
        self, opener: ChainOpener, problems: list[str]
    ) -> tuple[HashList, Manifest] | None:
        """Both manifests are unusable: the newest full bundle that opens, with any deltas in
        the folder that extend it. Verification time: the file's modification time."""
        try:
            names = sorted(os.listdir(self.path))
        except OSError:
            return None
        fulls = sorted(
            ((int(m.group(1)), n) for n in names if (m := _FULL.fullmatch(n))), reverse=True
        )
        deltas: dict[int, list[tuple[int, str]]] = {}
        for n in names:
            if m := _DELTA.fullmatch(n):
                deltas.setdefault(int(m.group(1)), []).append((int(m.group(2)), n))
        for version, name in fulls:
            chain = [BundleFile(name, version, self._mtime(name))]
            try:
                hl = self._open(opener, Manifest(self.list_id, tuple(chain)))
            except (Error, OSError, ValueError) as e:
                problems.append(f"{name}: {e}")
                continue
            while True:
                extended = False
                for target, dname in sorted(deltas.get(hl.version, []), reverse=True):
                    step = BundleFile(dname, target, self._mtime(dname))
                    try:
                        hl = self._open(opener, Manifest(self.list_id, (*chain, step)))
                    except (Error, OSError, ValueError):
                        continue
                    chain.append(step)
                    extended = True
                    break
                if not extended:
                    break
            return hl, Manifest(self.list_id, tuple(chain))
        return None

    def _mtime(self, name: str) -> float:
        try:
            return os.stat(self.path / name).st_mtime
        except OSError:
            return 0.0

    # ---- writing (under the lock) -------------------------------------------------------

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """An exclusive advisory lock on the folder (released by the kernel if we die)."""
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path / LOCK, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as e:
            raise _state_error("cannot use the state folder", self.path, e) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def clean_temporaries(self) -> None:
        """Removes temporary files left by a writer that died (call under the lock)."""
        with contextlib.suppress(OSError):
            for name in os.listdir(self.path):
                if name.startswith(".") and name != LOCK:
                    with contextlib.suppress(OSError):
                        (self.path / name).unlink()

    def sink(self) -> Sink:
        return Sink(self.path)

    def install(
        self, sink: Sink, *, version: int, base: int | None, verified_at: float
    ) -> BundleFile:
        """Renames a verified, finished download to its permanent name and fsyncs the folder."""
        sha = sink.digest.hexdigest()[:16]
        name = (
            f"delta-v{base}-v{version}-{sha}.hgl"
            if base is not None
            else f"full-v{version}-{sha}.hgl"
        )
        try:
            os.replace(sink.path, self.path / name)
            sink.installed = True
            _fsync_dir(self.path)
        except OSError as e:
            raise _state_error("cannot store a bundle in", self.path, e) from None
        return BundleFile(name, version, verified_at)

    def commit(
        self, new: Manifest, *, previous: Manifest | None, keep: Manifest | None = None
    ) -> None:
        """Makes ``new`` the current generation. With ``previous`` (the generation in use until
        now), writes it as the previous one first; without, the previous manifest is left as it
        is (a change of metadata only). Each write is atomic, and a crash or failure between
        them leaves a current manifest that names durable files. Then removes bundle files that
        none of ``new``, ``previous`` and ``keep`` names."""
        try:
            if previous is not None:
                publish.write_atomically(self.path / PREVIOUS, previous.to_json())
            publish.write_atomically(self.path / MANIFEST, new.to_json())
        except OSError as e:
            raise _state_error("cannot write the manifest in", self.path, e) from None
        self.collect(new, previous, keep)

    def collect(self, *keep: Manifest | None) -> None:
        """Removes bundle files that no kept manifest names (best effort)."""
        names = {f.name for m in keep if m is not None for f in m.files}
        with contextlib.suppress(OSError):
            for name in os.listdir(self.path):
                if (_FULL.fullmatch(name) or _DELTA.fullmatch(name)) and name not in names:
                    with contextlib.suppress(OSError):
                        (self.path / name).unlink()

    def forget(self, bundle: BundleFile, *keep: Manifest | None) -> None:
        """Removes a bundle installed by a failed commit, unless a kept manifest names it."""
        if any(bundle.name in {f.name for f in m.files} for m in keep if m is not None):
            return
        with contextlib.suppress(OSError):
            (self.path / bundle.name).unlink()
