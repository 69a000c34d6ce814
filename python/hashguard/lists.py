"""Hash lists: loading signed, encrypted bundles (devices) and sealing them (publishers).

The decrypted entries live only in the native core; nothing here can return them.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal, final

import numpy as np
import numpy.typing as npt

from hashguard import _native
from hashguard._native import OUTPUT_TOO_SMALL, ffi, lib
from hashguard.errors import ListTooLarge
from hashguard.hashing import TRANSFORMS, PdqHash

__all__ = [
    "DEFAULT_MAX_BUNDLE_BYTES",
    "CertifiedSigner",
    "HashList",
    "KeyPair",
    "ListEntry",
    "ListMatch",
    "generate_app_key",
    "generate_device_key",
    "generate_ed25519_key",
    "inspect_bundle",
    "issue_certificate",
    "seal_bundle",
    "seal_pdq_bundle",
]

#: Bundles larger than this are refused before they are read.
DEFAULT_MAX_BUNDLE_BYTES: Final = 4 << 30
CERTIFICATE_BYTES: Final = 120
_KINDS: Final = ("pdq", "md5", "sha256")


def _key_array(keys: bytes | Sequence[bytes] | None, what: str) -> tuple[Any, int]:
    if keys is None:
        return ffi.NULL, 0
    items = [keys] if isinstance(keys, (bytes, bytearray)) else list(keys)
    for k in items:
        if len(k) != 32:
            raise ValueError(f"{what} must be 32 bytes, got {len(k)}")
    return ffi.from_buffer("uint8_t[]", b"".join(bytes(k) for k in items)), len(items)


def _read_text(call: Any) -> str:
    cap = 128
    length = ffi.new("size_t *")
    while True:
        buf = ffi.new("char[]", cap)
        status = call(buf, cap, length)
        if status != OUTPUT_TOO_SMALL:
            _native.check(status)
            return str(ffi.string(buf).decode())
        cap = int(length[0]) + 1


@dataclass(frozen=True)
class ListMatch:
    """One list entry a file matched."""

    entry_id: int
    category: str
    kind: Literal["pdq", "md5", "sha256"]
    distance: int
    transform: str


@final
class HashList:
    """A verified, decrypted list held in native memory, immutable; see :meth:`open`."""

    __slots__ = ("_categories", "_handle", "_info", "_list_id")

    def __init__(self, handle: Any) -> None:
        self._handle = handle
        info = ffi.new("hg_list_info *")
        _native.check(lib.hg_list_get_info(handle, info))
        self._info = info
        self._list_id = _read_text(lambda b, c, n: lib.hg_list_id(handle, b, c, n))
        cats: dict[str, int] = {}
        for i in range(int(info.category_count)):
            count = ffi.new("uint64_t *")
            name = _read_text(
                lambda b, c, n, i=i, count=count: lib.hg_list_category(handle, i, b, c, n, count)
            )
            cats[name] = int(count[0])
        self._categories = cats

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        *,
        verify_key: bytes | Sequence[bytes],
        content_key: bytes | Sequence[bytes] | None = None,
        device_key: bytes | Sequence[bytes] | None = None,
        list_id: str | None = None,
        installed_version: int | None = None,
        allow_stale: bool = False,
        now: float | None = None,
        max_bundle_bytes: int = DEFAULT_MAX_BUNDLE_BYTES,
    ) -> HashList:
        """Loads a full bundle. ``verify_key``: the trusted root public key(s) (32 bytes);
        ``content_key``: 32-byte app key(s), or ``device_key``: 32-byte X25519 secret(s) (several
        while keys rotate: any that has a slot in the bundle opens it).
        ``list_id`` and ``installed_version`` refuse other lists and rollbacks; ``allow_stale``
        keeps an expired list (then :attr:`is_stale`). Each refusal raises its own
        :class:`hashguard.ListError` subclass; a file that cannot be read raises
        :class:`OSError`."""
        path = os.fspath(path)
        os.stat(path)  # the usual OSError subclasses (FileNotFoundError, ...) for bad paths
        config = _config(
            verify_key,
            content_key,
            device_key,
            list_id,
            installed_version,
            allow_stale,
            now,
            max_bundle_bytes,
        )
        out = ffi.new("hg_list **")
        # Natively: the file is read and hashed on every core and decrypted where it was read.
        _native.check(lib.hg_list_open_file(os.fsencode(path), config.struct, out))
        return cls(ffi.gc(out[0], lib.hg_list_free))

    def apply_delta(
        self,
        path: str | os.PathLike[str],
        *,
        verify_key: bytes | Sequence[bytes],
        content_key: bytes | Sequence[bytes] | None = None,
        device_key: bytes | Sequence[bytes] | None = None,
        allow_stale: bool = False,
        now: float | None = None,
        max_bundle_bytes: int = DEFAULT_MAX_BUNDLE_BYTES,
    ) -> HashList:
        """The next version, from a delta bundle for this version. This list is unchanged."""
        data = _read_bundle(path, max_bundle_bytes)
        config = _config(
            verify_key,
            content_key,
            device_key,
            self.list_id,
            self.version,
            allow_stale,
            now,
            max_bundle_bytes,
        )
        out = ffi.new("hg_list **")
        _native.check(lib.hg_list_apply_delta(self._handle, data, len(data), config.struct, out))
        return HashList(ffi.gc(out[0], lib.hg_list_free))

    @property
    def list_id(self) -> str:
        return self._list_id

    @property
    def version(self) -> int:
        return int(self._info.version)

    @property
    def created(self) -> int:
        return int(self._info.created)

    @property
    def expires(self) -> int:
        return int(self._info.expires)

    @property
    def is_stale(self) -> bool:
        return bool(self._info.stale)

    @property
    def entry_count(self) -> int:
        return int(self._info.entry_count)

    @property
    def categories(self) -> dict[str, int]:
        """Entry counts by category."""
        return dict(self._categories)

    @property
    def default_threshold(self) -> int:
        return int(self._info.default_threshold)

    @property
    def min_quality(self) -> int:
        return int(self._info.min_quality)

    def match(
        self,
        pdq: PdqHash | None = None,
        *,
        md5: bytes | None = None,
        sha256: bytes | None = None,
        dihedral: bool = True,
    ) -> list[ListMatch]:
        """Entries a file matches (policy in docs/list-format.md), closest first. With
        ``dihedral`` and a hash from ``hash_image(..., dihedral=True)`` all 8 variants count."""
        if pdq is not None:
            if dihedral:
                variants = pdq.dihedral()
                raw = b"".join(variants[t].bytes for t in TRANSFORMS)
            else:
                raw = pdq.bytes
            quality = pdq.quality if pdq.quality is not None else 100
        else:
            raw, quality = b"", 0
        for name, value, size in (("md5", md5, 16), ("sha256", sha256, 32)):
            if value is not None and len(value) != size:
                raise ValueError(f"{name} must be {size} bytes, got {len(value)}")
        count = ffi.new("size_t *")
        cap = 16
        names = list(self._categories)
        while True:
            out = ffi.new("hg_list_match[]", cap)
            status = lib.hg_list_match_file(
                self._handle, raw, len(raw) // 32, quality,
                md5 if md5 is not None else ffi.NULL,
                sha256 if sha256 is not None else ffi.NULL,
                out, cap, count,
            )  # fmt: skip
            if status != OUTPUT_TOO_SMALL:
                _native.check(status)
                break
            cap = int(count[0])
        return [
            ListMatch(
                entry_id=int(m.entry_id),
                category=names[m.category] if m.category < len(names) else "",
                kind=_KINDS[m.kind],
                distance=int(m.distance),
                transform=TRANSFORMS[m.transform],
            )
            for m in out[0 : count[0]]
        ]

    def __repr__(self) -> str:
        return (
            f"<HashList {self.list_id} v{self.version}, {self.entry_count} entries"
            f"{', stale' if self.is_stale else ''}>"
        )


def _read_bundle(path: str | os.PathLike[str], cap: int) -> bytes:
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size > cap:
            raise ListTooLarge(f"bundle size {size} is over the cap of {cap}")
        # One byte more than the size: a file that grows while read is noticed, and the
        # buffer is sized by the file, not by the cap.
        data = f.read(size + 1)
    if len(data) > cap:
        raise ListTooLarge(f"bundle grew past the cap of {cap} while read")
    return data


@dataclass
class _Config:
    struct: Any
    keep: list[Any]


def _config(
    verify_key: bytes | Sequence[bytes],
    content_key: bytes | Sequence[bytes] | None,
    device_key: bytes | Sequence[bytes] | None,
    list_id: str | None,
    installed_version: int | None,
    allow_stale: bool,
    now: float | None,
    max_bundle_bytes: int,
) -> _Config:
    roots, n_roots = _key_array(verify_key, "verify_key")
    apps, n_apps = _key_array(content_key, "content_key")
    devices, n_devices = _key_array(device_key, "device_key")
    c = ffi.new("hg_list_config *")
    c.root_keys, c.root_key_count = roots, n_roots
    c.app_keys, c.app_key_count = apps, n_apps
    c.device_keys, c.device_key_count = devices, n_devices
    c.now = int(time.time() if now is None else now)
    keep: list[Any] = [roots, apps, devices]
    if list_id is not None:
        raw = ffi.new("char[]", list_id.encode())
        keep.append(raw)
        c.list_id, c.list_id_len = raw, len(list_id.encode())
    if installed_version is not None:
        c.installed_version, c.has_installed_version = installed_version, 1
    c.keep_stale = int(allow_stale)
    c.max_bundle_bytes = max_bundle_bytes
    return _Config(c, keep)


def inspect_bundle(
    path: str | os.PathLike[str],
    *,
    verify_key: bytes | Sequence[bytes],
    now: float | None = None,
    max_bundle_bytes: int = DEFAULT_MAX_BUNDLE_BYTES,
) -> dict[str, object]:
    """A bundle's verified header, without any content key (never its entries)."""
    data = _read_bundle(path, max_bundle_bytes)
    roots, n = _key_array(verify_key, "verify_key")
    info = ffi.new("hg_list_info *")
    when = int(time.time() if now is None else now)
    list_id = _read_text(
        lambda b, c, length: lib.hg_list_inspect(
            data, len(data), roots, n, when, info, b, c, length
        )
    )
    return {
        "list_id": list_id,
        "version": int(info.version),
        "kind": "delta" if info.is_delta else "full",
        "base_version": int(info.base_version) if info.is_delta else None,
        "created": int(info.created),
        "expires": int(info.expires),
        "stale": bool(info.stale),
        "entries": int(info.entry_count),
        "default_threshold": int(info.default_threshold),
        "min_quality": int(info.min_quality),
    }


# ---- publishing ------------------------------------------------------------------------------


@dataclass(frozen=True)
class KeyPair:
    secret: bytes
    public: bytes

    def __repr__(self) -> str:  # never print secrets
        return f"KeyPair(public={self.public.hex()})"


def _generate(kind: int) -> KeyPair:
    secret = ffi.new("uint8_t[32]")
    public = ffi.new("uint8_t[32]")
    _native.check(lib.hg_keys_generate(kind, secret, public))
    return KeyPair(bytes(secret), bytes(public))


def generate_ed25519_key() -> KeyPair:
    """A root or signing key pair."""
    return _generate(0)


def generate_device_key() -> KeyPair:
    """An X25519 device (or app) key pair: bundles are sealed to the public half."""
    return _generate(1)


def generate_app_key() -> bytes:
    """A symmetric 32-byte app key."""
    return _generate(2).secret


def issue_certificate(
    root_secret: bytes, signing_public: bytes, not_before: int, not_after: int
) -> bytes:
    """The root key certifies a signing key for a time window (Unix seconds)."""
    out = ffi.new("uint8_t[]", CERTIFICATE_BYTES)
    _native.check(lib.hg_certificate_issue(root_secret, signing_public, not_before, not_after, out))
    return bytes(out)


@dataclass(frozen=True)
class CertifiedSigner:
    """A signing key's secret and its certificate from the root."""

    secret: bytes
    certificate: bytes

    def __repr__(self) -> str:
        return "CertifiedSigner(...)"


@dataclass(frozen=True)
class ListEntry:
    """One list entry for :func:`seal_bundle`: at least one fingerprint."""

    id: int
    category: str
    source: str
    pdq: PdqHash | None = None
    md5: bytes | None = None
    sha256: bytes | None = None
    threshold: int | None = None


def seal_bundle(
    *,
    list_id: str,
    version: int,
    entries: Iterable[ListEntry],
    signer: CertifiedSigner,
    app_keys: Sequence[bytes] = (),
    device_publics: Sequence[bytes] = (),
    base_version: int | None = None,
    allow: Iterable[tuple[Literal["pdq", "md5", "sha256"], bytes]] = (),
    allow_removed: Iterable[tuple[Literal["pdq", "md5", "sha256"], bytes]] = (),
    tombstones: Iterable[int] = (),
    created: int | None = None,
    expires: int,
    default_threshold: int = 31,
    min_quality: int = 50,
) -> bytes:
    """A signed, encrypted bundle: a full list, or with ``base_version`` a delta from it."""
    items = list(entries)
    specs = ffi.new("hg_entry_spec[]", max(len(items), 1))
    keep: list[Any] = []
    for spec, e in zip(specs, items, strict=False):
        spec.id = e.id
        for field, value in (("pdq", e.pdq.bytes if e.pdq else None), ("md5", e.md5),
                             ("sha256", e.sha256)):  # fmt: skip
            if value is not None:
                buf = ffi.new("uint8_t[]", value)
                keep.append(buf)
                setattr(spec, field, buf)
        for field, text in (("category", e.category), ("source", e.source)):
            buf = ffi.new("char[]", text.encode())
            keep.append(buf)
            setattr(spec, field, buf)
        spec.threshold = -1 if e.threshold is None else e.threshold
    changes = [(k, v, 0) for k, v in allow] + [(k, v, 1) for k, v in allow_removed]
    allow_specs = ffi.new("hg_fingerprint_spec[]", max(len(changes), 1))
    for a, (kind, value, remove) in zip(allow_specs, changes, strict=False):
        a.kind = _KINDS.index(kind)
        a.remove = remove
        ffi.memmove(a.value, value, len(value))
    dead = list(tombstones)
    tomb = ffi.new("uint64_t[]", dead) if dead else ffi.NULL
    seal, _list_id_buffer = _seal_spec(
        list_id, version, base_version, created, expires, default_threshold, min_quality
    )
    apps, n_apps = _key_array(list(app_keys), "app key")
    devices, n_devices = _key_array(list(device_publics), "device public key")
    out = ffi.new("hg_buffer **")
    _native.check(
        lib.hg_list_seal(
            seal, specs, len(items), allow_specs, len(changes), tomb, len(dead),
            signer.secret, signer.certificate, apps, n_apps, devices, n_devices, out,
        )
    )  # fmt: skip
    return _take_buffer(out[0])


def seal_pdq_bundle(
    *,
    list_id: str,
    version: int,
    codes: npt.ArrayLike,
    ids: npt.ArrayLike,
    category: str,
    source: str,
    signer: CertifiedSigner,
    app_keys: Sequence[bytes] = (),
    device_publics: Sequence[bytes] = (),
    created: int | None = None,
    expires: int,
    default_threshold: int = 31,
    min_quality: int = 50,
) -> bytes:
    """A full bundle of PDQ hashes only, from an (N, 32) uint8 array and (N,) uint64 ids, all in
    one category: the fast path for large ThreatExchange-style lists."""
    arr = np.ascontiguousarray(np.asarray(codes), dtype=np.uint8)
    id_arr = np.ascontiguousarray(np.asarray(ids), dtype=np.uint64)
    if arr.ndim != 2 or arr.shape[1] != 32 or id_arr.shape != (arr.shape[0],):
        raise ValueError(f"codes must be (N, 32) and ids (N,), got {arr.shape} {id_arr.shape}")
    seal, _list_id_buffer = _seal_spec(
        list_id, version, None, created, expires, default_threshold, min_quality
    )
    apps, n_apps = _key_array(list(app_keys), "app key")
    devices, n_devices = _key_array(list(device_publics), "device public key")
    out = ffi.new("hg_buffer **")
    _native.check(
        lib.hg_list_seal_pdq(
            seal, ffi.from_buffer("uint8_t[]", arr), ffi.from_buffer("uint64_t[]", id_arr),
            arr.shape[0], category.encode(), source.encode(), signer.secret,
            signer.certificate, apps, n_apps, devices, n_devices, out,
        )
    )  # fmt: skip
    return _take_buffer(out[0])


def _seal_spec(
    list_id: str,
    version: int,
    base_version: int | None,
    created: int | None,
    expires: int,
    default_threshold: int,
    min_quality: int,
) -> tuple[Any, Any]:
    """The native seal spec, and the list id buffer it points to (keep both alive)."""
    seal = ffi.new("hg_seal_spec *")
    name = ffi.new("char[]", list_id.encode())
    seal.list_id = name
    seal.version = version
    seal.is_delta = int(base_version is not None)
    seal.base_version = base_version or 0
    seal.created = int(time.time()) if created is None else created
    seal.expires = expires
    seal.default_threshold = default_threshold
    seal.min_quality = min_quality
    return seal, name


def _take_buffer(handle: Any) -> bytes:
    buf = ffi.gc(handle, lib.hg_buffer_free)
    return bytes(ffi.buffer(lib.hg_buffer_data(buf), lib.hg_buffer_len(buf)))
