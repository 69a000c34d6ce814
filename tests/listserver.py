"""Test helpers for list updates: a publisher that seals small bundles on demand, and a real
threaded HTTP server on 127.0.0.1 that serves scripted replies (including broken ones) and
records every request it sees."""

from __future__ import annotations

import contextlib
import functools
import random
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from hashguard import HashList, lists
from hashguard.hashing import PdqHash

NOW = int(time.time())
WINDOW = 5


class Publisher:
    """Keys and bundles of one list. Version ``v`` holds the entries ``v .. v+4`` (a sliding
    window), so every version has different contents and a scan result tells its version."""

    def __init__(self, list_id: str = "news") -> None:
        self.list_id = list_id
        self.root = lists.generate_ed25519_key()
        signing = lists.generate_ed25519_key()
        cert = lists.issue_certificate(self.root.secret, signing.public, NOW - 600, NOW + 86_400)
        self.signer = lists.CertifiedSigner(signing.secret, cert)
        self.app = lists.generate_app_key()
        self.device = lists.generate_device_key()

    @staticmethod
    def ids(version: int) -> set[int]:
        return set(range(version, version + WINDOW))

    @staticmethod
    @functools.lru_cache(maxsize=4096)
    def pdq(entry_id: int) -> PdqHash:
        return PdqHash(random.Random(entry_id).randbytes(32), 100)

    def entry(self, entry_id: int) -> lists.ListEntry:
        return lists.ListEntry(entry_id, "A1", "test", pdq=self.pdq(entry_id))

    def full(
        self,
        version: int,
        *,
        list_id: str | None = None,
        expires: int | None = None,
        created: int | None = None,
        signer: lists.CertifiedSigner | None = None,
    ) -> bytes:
        return lists.seal_bundle(
            list_id=list_id or self.list_id,
            version=version,
            entries=[self.entry(i) for i in sorted(self.ids(version))],
            signer=signer or self.signer,
            app_keys=[self.app],
            device_publics=[self.device.public],
            created=created,
            expires=NOW + 3600 if expires is None else expires,
        )

    def delta(self, base: int, version: int) -> bytes:
        old, new = self.ids(base), self.ids(version)
        return lists.seal_bundle(
            list_id=self.list_id,
            version=version,
            base_version=base,
            entries=[self.entry(i) for i in sorted(new - old)],
            tombstones=sorted(old - new),
            signer=self.signer,
            app_keys=[self.app],
            device_publics=[self.device.public],
            expires=NOW + 3600,
        )

    def matched(self, hl: HashList, upto: int = 200) -> set[int]:
        """Which of the entries 0..upto+WINDOW the list matches."""
        return {
            m.entry_id for i in range(upto + WINDOW) for m in hl.match(self.pdq(i), dihedral=False)
        }

    def check(self, hl: HashList, upto: int = 200) -> None:
        """The list matches exactly the entries of its version."""
        assert self.matched(hl, upto) == self.ids(hl.version), hl


@dataclass
class Reply:
    """A scripted answer. ``length``: -1 sends the body's length, None no Content-Length (the
    body ends when the connection closes), or any number (a lie). ``truncate``: send only that
    many body bytes, then close. ``delay``: seconds before answering; ``dribble``: seconds
    between body bytes."""

    status: int = 200
    body: bytes = b""
    content_type: str | None = "application/octet-stream"
    etag: str | None = None
    last_modified: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    length: int | None = -1
    truncate: int | None = None
    delay: float = 0.0
    dribble: float = 0.0


@dataclass(frozen=True)
class Request:
    method: str
    target: str
    headers: tuple[tuple[str, str], ...]

    def header(self, name: str) -> str | None:
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None


Route = Reply | Callable[[Request, re.Match[str]], Reply]


class ListServer:
    """A threaded HTTP/1.0 server on 127.0.0.1 (port 0). ``routes`` maps a path regex to a
    :class:`Reply` or a function of the request and match; anything else is a 404. GET
    requests are answered; every request, of any method, is recorded in ``requests``."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[Request] = []
        self.stopping = threading.Event()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def _record(self) -> Request:
                req = Request(self.command, self.path, tuple(self.headers.items()))
                owner.requests.append(req)
                return req

            def do_GET(self) -> None:
                owner.answer(self, self._record())

            def _refuse(self) -> None:
                self._record()
                self.send_error(405)

            do_POST = do_PUT = do_HEAD = do_DELETE = do_OPTIONS = do_PATCH = _refuse

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        if tls is not None:
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
        self.scheme = "https" if tls is not None else "http"
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def __enter__(self) -> ListServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    def url(self, path: str) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}{path}"

    def answer(self, h: BaseHTTPRequestHandler, req: Request) -> None:
        reply: Reply | None = None
        for pattern, route in list(self.routes.items()):
            m = re.fullmatch(pattern, req.target)
            if m:
                reply = route if isinstance(route, Reply) else route(req, m)
                break
        if reply is None:
            reply = Reply(status=404, body=b"not found", content_type="text/plain")
        if reply.delay and self.stopping.wait(reply.delay):
            return
        with contextlib.suppress(OSError):
            self._send(h, req, reply)

    def _send(self, h: BaseHTTPRequestHandler, req: Request, r: Reply) -> None:
        fresh = (r.etag is not None and req.header("If-None-Match") == r.etag) or (
            r.last_modified is not None and req.header("If-Modified-Since") == r.last_modified
        )
        if r.status == 200 and fresh:
            h.send_response(304)
            h.end_headers()
            return
        h.send_response(r.status)
        if r.content_type is not None:
            h.send_header("Content-Type", r.content_type)
        if r.etag is not None:
            h.send_header("ETag", r.etag)
        if r.last_modified is not None:
            h.send_header("Last-Modified", r.last_modified)
        if r.length is not None:
            h.send_header("Content-Length", str(len(r.body) if r.length == -1 else r.length))
        for k, v in r.headers.items():
            h.send_header(k, v)
        h.end_headers()
        body = r.body if r.truncate is None else r.body[: r.truncate]
        if r.dribble:
            for i in range(len(body)):
                h.wfile.write(body[i : i + 1])
                h.wfile.flush()
                if self.stopping.wait(r.dribble):
                    return
        else:
            h.wfile.write(body)
        h.wfile.flush()
        if r.truncate is not None:
            h.close_connection = True
            with contextlib.suppress(OSError):
                h.connection.shutdown(socket.SHUT_RDWR)


def free_port() -> int:
    """A port nothing listens on (bound, then closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
