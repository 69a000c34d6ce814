"""Downloading bundles for the list updater: plain GETs over HTTP(S), or copies of local files.

Only what :mod:`hashguard.update` needs, and deliberately little: one GET to exactly the
configured address, a fixed set of headers (no cookies, no credentials, no device details, no
proxies from the environment, no redirects), a connect timeout, a per-read timeout, an overall
deadline that also stops a server dribbling bytes, a size cap checked before and while reading,
and a Content-Type check. The body goes to a sink (a temporary file in the state directory);
nothing downloaded is trusted here: the caller verifies it.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final, Literal, Protocol

from hashguard._native import version
from hashguard.errors import (
    BadResponse,
    FetchError,
    FetchTimeout,
    HttpStatusError,
    ListTooLarge,
)

if TYPE_CHECKING:  # imported when first used: most programs that import hashguard never fetch
    import http.client
    import ssl

__all__ = [
    "ACCEPTED_CONTENT_TYPES",
    "ALLOWED_HEADERS",
    "Fetched",
    "Limits",
    "Sink",
    "check_url",
    "fetch",
    "user_agent",
]

#: Content types a bundle may be served with (parameters such as ``charset`` are ignored).
ACCEPTED_CONTENT_TYPES: Final = frozenset(
    {"application/octet-stream", "application/vnd.hashguard.list"}
)
#: Every header a request can carry; nothing else is ever sent.
ALLOWED_HEADERS: Final = frozenset(
    {"host", "user-agent", "accept", "if-none-match", "if-modified-since", "connection"}
)
_CHUNK: Final = 64 * 1024
_MAX_VALIDATOR: Final = 256


def user_agent() -> str:
    """The fixed User-Agent: the library's name and version, nothing about the device."""
    return f"hashguard/{version()}"


class Sink(Protocol):
    """Where a body goes: ``write`` raises :class:`hashguard.StateError` if it cannot store it."""

    def write(self, data: bytes) -> None: ...


@dataclass(frozen=True)
class Limits:
    """Timeouts (seconds) and the size cap (bytes) of one download."""

    max_bytes: int
    connect_timeout: float = 10.0
    read_timeout: float = 30.0
    deadline: float = 600.0


@dataclass(frozen=True)
class Fetched:
    """What a fetch found. ``status``: ``ok`` (the body went to the sink), ``not_modified`` (the
    validators still hold) or ``absent`` (404/410 or no such file, when allowed)."""

    status: Literal["ok", "not_modified", "absent"]
    etag: str | None = None
    last_modified: str | None = None
    size: int = 0


def check_url(url: str) -> str:
    """``url`` if it is an http(s) URL without credentials, a ``file:`` URL or a path;
    ValueError otherwise."""
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme in ("http", "https"):
        if not parts.hostname:
            raise ValueError(f"no host in {url!r}")
        if parts.username is not None or parts.password is not None:
            raise ValueError("credentials in URLs are not supported (nothing but GET is sent)")
        if parts.fragment:
            raise ValueError("URL fragments are not supported")
        return url
    if scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise ValueError(f"file URLs must be local: {url!r}")
        return url
    if scheme and len(scheme) > 1:  # "c:" is a Windows drive, not a scheme
        raise ValueError(f"unsupported URL scheme {scheme!r}: use http, https, file or a path")
    return url


def fetch(
    url: str,
    sink: Sink,
    limits: Limits,
    *,
    etag: str | None = None,
    last_modified: str | None = None,
    allow_absent: bool = False,
    ssl_context: ssl.SSLContext | None = None,
    cancel: threading.Event | None = None,
) -> Fetched:
    """GETs ``url`` (or copies a local file) into ``sink``. Failures raise
    :class:`hashguard.FetchError` subclasses, :class:`hashguard.ListTooLarge` over the cap, or
    whatever the sink raises."""
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme in ("http", "https"):
        return _http(url, parts, sink, limits, etag, last_modified, allow_absent, ssl_context,
                     cancel)  # fmt: skip
    path = Path(urllib.parse.unquote(parts.path)) if scheme == "file" else Path(url)
    return _local(url, path, sink, limits, etag, allow_absent)


def _local(
    url: str, path: Path, sink: Sink, limits: Limits, etag: str | None, allow_absent: bool
) -> Fetched:
    try:
        with open(path, "rb") as f:
            st = os.fstat(f.fileno())
            tag = f"local:{st.st_size}-{st.st_mtime_ns}-{st.st_ino}"
            if etag is not None and etag == tag:
                return Fetched("not_modified", etag=tag)
            if st.st_size > limits.max_bytes:
                raise ListTooLarge(f"{url}: {st.st_size} bytes, over the cap of {limits.max_bytes}")
            total = 0
            while chunk := f.read(_CHUNK):
                total += len(chunk)
                if total > limits.max_bytes:
                    raise ListTooLarge(f"{url}: grew past the cap of {limits.max_bytes}")
                sink.write(chunk)
    except FileNotFoundError:
        if allow_absent:
            return Fetched("absent")
        raise FetchError(url, "no such file") from None
    except IsADirectoryError:
        raise FetchError(url, "is a folder") from None
    except PermissionError:
        raise FetchError(url, "permission denied") from None
    except OSError as e:
        raise FetchError(url, f"cannot read: {e.strerror or e}") from None
    return Fetched("ok", etag=tag, size=total)


def _validator(value: str | None) -> str | None:
    """A server's ETag or Last-Modified, if it is short printable ASCII (it is sent back)."""
    if value is None or not 0 < len(value) <= _MAX_VALIDATOR:
        return None
    if not all(" " <= c <= "~" for c in value):
        return None
    return value


def _http(
    url: str,
    parts: urllib.parse.SplitResult,
    sink: Sink,
    limits: Limits,
    etag: str | None,
    last_modified: str | None,
    allow_absent: bool,
    ssl_context: ssl.SSLContext | None,
    cancel: threading.Event | None,
) -> Fetched:
    import http.client
    import ssl

    host = parts.hostname or ""
    conn: http.client.HTTPConnection
    if parts.scheme.lower() == "https":
        context = ssl_context or ssl.create_default_context()
        conn = http.client.HTTPSConnection(
            host, parts.port, timeout=limits.connect_timeout, context=context
        )
    else:
        conn = http.client.HTTPConnection(host, parts.port, timeout=limits.connect_timeout)
    target = parts.path or "/"
    if parts.query:  # as configured; nothing is ever added
        target += "?" + parts.query

    expired = threading.Event()  # the deadline passed, or the download was cancelled
    done = threading.Event()
    deadline = time.monotonic() + limits.deadline

    def watchdog() -> None:
        """Shuts the socket down at the deadline or on cancel, whatever the reader is doing
        (a server dribbling headers or body bytes keeps every single read within its timeout)."""
        while not done.wait(min(0.05, max(0.0, deadline - time.monotonic()))):
            if time.monotonic() >= deadline or (cancel is not None and cancel.is_set()):
                expired.set()
                sock = conn.sock
                if sock is not None:
                    with contextlib.suppress(OSError):
                        sock.shutdown(socket.SHUT_RDWR)
                return

    guard = threading.Thread(target=watchdog, name="hashguard-fetch-watchdog", daemon=True)
    guard.start()
    try:
        conn.connect()
        if conn.sock is not None:
            conn.sock.settimeout(limits.read_timeout)
        conn.putrequest("GET", target, skip_accept_encoding=True)
        conn.putheader("User-Agent", user_agent())
        conn.putheader("Accept", "application/vnd.hashguard.list, application/octet-stream")
        etag, last_modified = _validator(etag), _validator(last_modified)
        if etag is not None:
            conn.putheader("If-None-Match", etag)
        if last_modified is not None:
            conn.putheader("If-Modified-Since", last_modified)
        conditional = etag is not None or last_modified is not None
        conn.putheader("Connection", "close")
        conn.endheaders()
        resp = conn.getresponse()
        status = resp.status
        if status == 304 and conditional:
            return Fetched("not_modified", etag=etag, last_modified=last_modified)
        if status in (404, 410) and allow_absent:
            return Fetched("absent")
        if 300 <= status < 400:
            raise HttpStatusError(url, f"HTTP {status}: redirects are not followed", status)
        if status != 200:
            raise HttpStatusError(url, f"HTTP {status} {_shown(resp.reason)}".rstrip(), status)
        media = (resp.getheader("Content-Type") or "").split(";")[0].strip().lower()
        if media not in ACCEPTED_CONTENT_TYPES:
            raise BadResponse(
                url, f"content type {_shown(media) or '(none)'!r} is not a bundle", status
            )
        length = _content_length(url, resp)
        if length is not None and length > limits.max_bytes:
            raise ListTooLarge(f"{url}: {length} bytes, over the cap of {limits.max_bytes}")
        total = 0
        while True:
            if cancel is not None and cancel.is_set():
                raise FetchError(url, "cancelled")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise FetchTimeout(url, f"no complete answer within {limits.deadline:g} s")
            if conn.sock is not None:
                conn.sock.settimeout(max(0.001, min(limits.read_timeout, remaining)))
            chunk = resp.read1(_CHUNK)
            if not chunk:
                break
            total += len(chunk)
            if total > limits.max_bytes:
                raise ListTooLarge(f"{url}: body over the cap of {limits.max_bytes}")
            sink.write(chunk)
        if expired.is_set():
            raise _expired(url, limits, cancel)
        if length is not None and total != length:
            raise BadResponse(url, f"truncated: {total} of {length} bytes", status)
        return Fetched(
            "ok",
            etag=_validator(resp.getheader("ETag")),
            last_modified=_validator(resp.getheader("Last-Modified")),
            size=total,
        )
    except (http.client.HTTPException, OSError) as e:
        if expired.is_set():
            raise _expired(url, limits, cancel) from None
        if isinstance(e, TimeoutError):
            raise FetchTimeout(url, "timed out") from None
        if isinstance(e, http.client.IncompleteRead):
            raise BadResponse(url, "truncated body") from None
        if isinstance(e, http.client.HTTPException):
            raise BadResponse(url, f"broken HTTP answer ({type(e).__name__})") from None
        raise FetchError(url, e.strerror or str(e) or type(e).__name__) from None
    finally:
        done.set()
        conn.close()


def _expired(url: str, limits: Limits, cancel: threading.Event | None) -> FetchError:
    if cancel is not None and cancel.is_set():
        return FetchError(url, "cancelled")
    return FetchTimeout(url, f"no complete answer within {limits.deadline:g} s")


def _shown(text: str | None) -> str:
    """Server-supplied text, made safe and short for an error message."""
    return "".join(c if " " <= c <= "~" else "?" for c in (text or "")[:80])


def _content_length(url: str, resp: http.client.HTTPResponse) -> int | None:
    raw = resp.getheader("Content-Length")
    if raw is None or resp.chunked:  # chunked framing wins (and is checked by http.client)
        return None
    try:
        length = int(raw.strip())
    except ValueError:
        raise BadResponse(url, "invalid Content-Length", resp.status) from None
    if length < 0:
        raise BadResponse(url, "invalid Content-Length", resp.status)
    return length
