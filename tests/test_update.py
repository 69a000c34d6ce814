"""ListUpdater: periodic, fail-safe list updates with an atomic hot swap, against a real HTTP
server on 127.0.0.1. Every fault leaves the last good list in use, in memory and on disk."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import random
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import hashguard
from hashguard import ListSource, ListUpdater, UpdateResult, fetch, lists, publish, state
from hashguard.cli import EXIT_INPUT_ERRORS, EXIT_OK, EXIT_USAGE, main

from .listserver import NOW, ListServer, Publisher, Reply, Request, free_port

FULL = "/lists/news/full.hgl"
DELTA = r"/lists/news/delta-from-(\d+)\.hgl"
DELTA_TEMPLATE = "/lists/news/delta-from-{version}.hgl"


@pytest.fixture(scope="module")
def pub() -> Publisher:
    return Publisher()


@pytest.fixture
def server() -> Iterator[ListServer]:
    with ListServer() as s:
        yield s


def source(pub: Publisher, server: ListServer, *, delta: bool = True, **kw: Any) -> ListSource:
    return ListSource(
        "news",
        server.url(FULL),
        verify_key=pub.root.public,
        content_key=pub.app,
        delta_url=server.url(DELTA_TEMPLATE) if delta else None,
        max_bundle_bytes=kw.pop("max_bundle_bytes", 1 << 20),
        **kw,
    )


def updater(src: ListSource, state: Path, **kw: Any) -> ListUpdater:
    args: dict[str, Any] = {"jitter": 0.0, "connect_timeout": 2.0, "read_timeout": 1.0,
                            "deadline": 3.0}  # fmt: skip
    args.update(kw)
    return ListUpdater(src, state, **args)


@pytest.fixture
def installed(pub: Publisher, server: ListServer, tmp_path: Path) -> ListUpdater:
    """An updater with version 5 installed from the full bundle (served with an ETag)."""
    server.routes[FULL] = Reply(body=pub.full(5), etag='"v5"')
    u = updater(source(pub, server), tmp_path / "state")
    result = u.update_now()["news"]
    assert (result.status, result.version, result.via) == ("updated", 5, ("full",))
    server.requests.clear()
    return u


def assert_kept(u: ListUpdater, pub: Publisher, version: int = 5) -> None:
    """The last good list is in use, and the next start uses it too."""
    hl = u.current("news")
    assert hl.version == version
    pub.check(hl)
    src = u._slots["news"].source
    again = ListUpdater(src, u.state_dir)
    assert again.current().version == version
    pub.check(again.current())
    leftovers = [n for n in os.listdir(u.state_dir / "news") if n.startswith(".") and n != ".lock"]
    assert leftovers == []


def failed(u: ListUpdater, error: type[Exception]) -> UpdateResult:
    result = u.update_now()["news"]
    assert result.status == "failed", result
    assert isinstance(result.error, error), repr(result.error)
    assert isinstance(result.error, hashguard.Error)
    assert result.version == result.previous_version
    return result


# ---- the normal paths ----------------------------------------------------------------------


def test_full_then_deltas_then_conditional_get(
    pub: Publisher, server: ListServer, installed: ListUpdater
) -> None:
    u = installed
    first = u.current()
    pub.check(first)
    # Nothing new: the delta is absent (404), the full bundle answers 304 to If-None-Match.
    result = u.update_now()["news"]
    assert (result.status, result.version, result.error) == ("unchanged", 5, None)
    assert [r.target for r in server.requests] == ["/lists/news/delta-from-5.hgl", FULL]
    assert server.requests[1].header("If-None-Match") == '"v5"'
    assert u.current() is first
    # A delta 5 -> 6 and then 6 -> 7 are published: both applied in one update.
    server.routes[DELTA] = lambda req, m: (
        Reply(body=pub.delta(int(m[1]), int(m[1]) + 1)) if int(m[1]) < 7 else Reply(status=404)
    )
    server.requests.clear()
    result = u.update_now()["news"]
    assert (result.status, result.previous_version, result.version) == ("updated", 5, 7)
    assert result.via == ("delta", "delta")
    pub.check(u.current())
    assert first.version == 5  # a scan holding the old handle still has the old list
    pub.check(first)
    # After the deltas the full bundle is not downloaded again (its validators are for v5).
    server.requests.clear()
    assert u.update_now()["news"].status == "unchanged"
    assert [r.target for r in server.requests] == ["/lists/news/delta-from-7.hgl"]
    # The next start rebuilds version 7 from the full bundle and the two deltas.
    files = sorted(os.listdir(u.state_dir / "news"))
    assert [f.split("-")[0] for f in files if f.endswith(".hgl")] == ["delta", "delta", "full"]
    assert_kept(u, pub, 7)


def test_if_modified_since_and_a_full_bundle_replacing_the_chain(
    pub: Publisher, server: ListServer, tmp_path: Path
) -> None:
    stamp = "Wed, 01 Jan 2025 00:00:00 GMT"
    server.routes[FULL] = Reply(body=pub.full(5), last_modified=stamp)
    u = updater(source(pub, server), tmp_path / "s", max_chain=1)
    assert u.update_now()["news"].version == 5
    server.requests.clear()
    assert u.update_now()["news"].status == "unchanged"
    assert server.requests[-1].header("If-Modified-Since") == stamp
    # One delta reaches the chain limit; the next update fetches the full bundle of the same
    # version and makes it the new base (no version change, no delta files left).
    server.routes[DELTA] = lambda req, m: Reply(body=pub.delta(5, 6)) if m[1] == "5" else Reply(404)
    assert u.update_now()["news"].via == ("delta",)
    server.routes[FULL] = Reply(body=pub.full(6), etag='"v6"')
    result = u.update_now()["news"]
    assert (result.status, result.version) == ("unchanged", 6)
    m = u._slots["news"].manifest
    assert m is not None and m.chain_length == 0 and m.etag == '"v6"'
    assert_kept(u, pub, 6)


def test_device_key_local_path_and_file_url_sources(pub: Publisher, tmp_path: Path) -> None:
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "full.hgl").write_bytes(pub.full(3))
    src = ListSource(
        "news",
        mirror / "full.hgl",
        verify_key=[lists.generate_ed25519_key().public, pub.root.public],
        device_key=pub.device.secret,
        delta_url=f"file://{mirror}/delta-{{version}}.hgl",
    )
    u = ListUpdater(src, tmp_path / "state", jitter=0)
    assert u.update_now()["news"].version == 3
    assert u.update_now()["news"].status == "unchanged"  # same file: not copied again
    (mirror / "delta-3.hgl").write_bytes(pub.delta(3, 4))
    assert u.update_now()["news"].via == ("delta",)
    (mirror / "full.hgl").write_bytes(pub.full(9))
    (mirror / "delta-4.hgl").write_bytes(b"garbage")
    result = u.update_now()["news"]  # a broken delta falls back to the full bundle
    assert (result.status, result.version, result.via) == ("updated", 9, ("full",))
    assert_kept(u, pub, 9)


def test_https_with_certificate_verification(pub: Publisher, tmp_path: Path) -> None:
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert, key)
    with ListServer(tls) as s:
        s.routes[FULL] = Reply(body=pub.full(5), etag='"v5"')
        trusting = ssl.create_default_context(cafile=str(cert))
        u = updater(source(pub, s), tmp_path / "state", ssl_context=trusting)
        assert u.update_now()["news"].version == 5
        # The system's CAs do not know the test certificate: refused, last good list kept.
        s.routes[FULL] = Reply(body=pub.full(6), etag='"v6"')
        strict = updater(source(pub, s), tmp_path / "state")
        result = failed(strict, hashguard.FetchError)
        assert "certificate" in str(result.error).lower()
        assert_kept(strict, pub)


# ---- faults: each is a typed failure with the last good list kept ------------------------


def test_server_errors(pub: Publisher, server: ListServer, installed: ListUpdater) -> None:
    server.routes[FULL] = Reply(status=500, body=b"oops", content_type="text/plain")
    assert failed(installed, hashguard.HttpStatusError).error.status == 500  # type: ignore[union-attr]
    server.routes[FULL] = Reply(status=403, body=b"", content_type="text/plain")
    failed(installed, hashguard.HttpStatusError)
    del server.routes[FULL]  # the full bundle is gone (404)
    failed(installed, hashguard.HttpStatusError)
    assert_kept(installed, pub)


def test_connection_refused(pub: Publisher, tmp_path: Path) -> None:
    port = free_port()
    with ListServer() as s:
        s.routes[FULL] = Reply(body=pub.full(5))
        u = updater(source(pub, s), tmp_path / "state")
        u.update_now()
    src = ListSource("news", f"http://127.0.0.1:{port}{FULL}", verify_key=pub.root.public,
                     content_key=pub.app)  # fmt: skip
    u = updater(src, tmp_path / "state")
    assert u.current().version == 5  # starting offline: the last good list
    result = failed(u, hashguard.FetchError)
    assert not isinstance(result.error, hashguard.FetchTimeout)
    assert_kept(u, pub)


def test_timeout_when_the_server_does_not_answer(
    pub: Publisher, server: ListServer, installed: ListUpdater
) -> None:
    server.routes[FULL] = Reply(body=pub.full(6), delay=5)
    installed.read_timeout = 0.3
    started = time.monotonic()
    failed(installed, hashguard.FetchTimeout)
    assert time.monotonic() - started < 2
    assert_kept(installed, pub)


def test_slow_dribbling_body_hits_the_deadline_and_scans_never_wait(
    pub: Publisher, server: ListServer, installed: ListUpdater
) -> None:
    # One byte every 20 ms: each read is within the read timeout, the whole is not.
    server.routes[FULL] = Reply(body=pub.full(6), dribble=0.02)
    installed.read_timeout, installed.deadline = 0.5, 0.8
    results: list[UpdateResult] = []
    worker = threading.Thread(target=lambda: results.append(installed.update_now()["news"]))
    started = time.monotonic()
    worker.start()
    slowest = 0.0
    while worker.is_alive():
        t = time.monotonic()
        hl = installed.current()
        assert hl.version == 5
        assert hl.match(Publisher.pdq(7), dihedral=False)
        slowest = max(slowest, time.monotonic() - t)
    worker.join()
    assert 0.7 < time.monotonic() - started < 2.5
    assert slowest < 0.25, "a scan waited for the update"
    (result,) = results
    assert isinstance(result.error, hashguard.FetchTimeout), result
    assert_kept(installed, pub)


def test_truncated_body(pub: Publisher, server: ListServer, installed: ListUpdater) -> None:
    data = pub.full(6)
    server.routes[FULL] = Reply(body=data, truncate=len(data) // 2)
    failed(installed, hashguard.BadResponse)
    # Without a Content-Length the cut is only visible in the bundle itself.
    server.routes[FULL] = Reply(body=data, truncate=len(data) // 2, length=None)
    failed(installed, hashguard.ListError)
    assert_kept(installed, pub)


def test_oversized_body(pub: Publisher, server: ListServer, tmp_path: Path) -> None:
    server.routes[FULL] = Reply(body=pub.full(5), etag='"v5"')
    u = updater(source(pub, server, max_bundle_bytes=4096), tmp_path / "state")
    assert u.update_now()["news"].version == 5
    huge = pub.full(6) + bytes(1 << 20)
    server.routes[FULL] = Reply(body=huge)  # refused from its Content-Length
    failed(u, hashguard.ListTooLarge)
    server.routes[FULL] = Reply(body=huge, length=None)  # refused once past the cap
    failed(u, hashguard.ListTooLarge)
    server.routes[FULL] = Reply(body=huge, length=100)  # a lying Content-Length
    failed(u, hashguard.ListError)
    assert_kept(u, pub)


def test_wrong_content_type_or_garbage(
    pub: Publisher, server: ListServer, installed: ListUpdater
) -> None:
    server.routes[FULL] = Reply(body=pub.full(6), content_type="text/html; charset=utf-8")
    failed(installed, hashguard.BadResponse)
    server.routes[FULL] = Reply(body=pub.full(6), content_type=None)
    failed(installed, hashguard.BadResponse)
    server.routes[FULL] = Reply(body=b"<html>captive portal</html>")
    failed(installed, hashguard.ListMalformed)
    assert_kept(installed, pub)


def test_tampered_bundle(pub: Publisher, server: ListServer, installed: ListUpdater) -> None:
    data = bytearray(pub.full(6))
    data[len(data) // 2] ^= 1
    server.routes[FULL] = Reply(body=bytes(data))
    failed(installed, hashguard.BadSignature)
    assert_kept(installed, pub)


def test_rollback_attempt(pub: Publisher, server: ListServer, installed: ListUpdater) -> None:
    server.routes[FULL] = Reply(body=pub.full(3))
    failed(installed, hashguard.Rollback)
    assert_kept(installed, pub)


def test_expired_list(pub: Publisher, server: ListServer, installed: ListUpdater) -> None:
    server.routes[FULL] = Reply(body=pub.full(6, created=NOW - 600, expires=NOW - 60))
    failed(installed, hashguard.ListExpired)
    assert_kept(installed, pub)


def test_bundle_for_another_list_or_root(
    pub: Publisher, server: ListServer, installed: ListUpdater
) -> None:
    server.routes[FULL] = Reply(body=pub.full(6, list_id="other"))
    failed(installed, hashguard.WrongList)
    stranger = Publisher()
    server.routes[FULL] = Reply(body=stranger.full(6))
    failed(installed, hashguard.UntrustedKey)
    assert_kept(installed, pub)


def test_delta_for_the_wrong_base(
    pub: Publisher, server: ListServer, installed: ListUpdater
) -> None:
    server.routes[DELTA] = Reply(body=pub.delta(3, 6))
    result = failed(installed, hashguard.WrongBase)
    # The full bundle was still checked (304), and nothing else was fetched.
    assert [r.target for r in server.requests] == ["/lists/news/delta-from-5.hgl", FULL]
    assert result.via == ()
    assert_kept(installed, pub)
    # A tampered delta is refused too, and a newer full bundle then gets the device current.
    data = bytearray(pub.delta(5, 6))
    data[-10] ^= 1
    server.routes[DELTA] = Reply(body=bytes(data))
    server.routes[FULL] = Reply(body=pub.full(8), etag='"v8"')
    result = installed.update_now()["news"]
    assert (result.status, result.version, result.via) == ("updated", 8, ("full",))
    assert isinstance(result.error, hashguard.BadSignature)


def test_redirects_are_not_followed(
    pub: Publisher, server: ListServer, installed: ListUpdater
) -> None:
    server.routes[FULL] = Reply(status=302, headers={"Location": server.url("/elsewhere.hgl")})
    server.routes["/elsewhere.hgl"] = Reply(body=pub.full(6))
    assert failed(installed, hashguard.HttpStatusError).error.status == 302  # type: ignore[union-attr]
    assert "/elsewhere.hgl" not in [r.target for r in server.requests]
    assert_kept(installed, pub)


def _raise_from(module: str, call: Callable[..., Any], code: int, when: Callable[[], bool]) -> Any:
    """``call``, but raising OSError(code) when called from ``module`` and ``when()``."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if sys._getframe(1).f_globals.get("__name__") == module and when():
            raise OSError(code, os.strerror(code))
        return call(*args, **kwargs)

    return wrapper


@pytest.mark.parametrize(
    "point",
    ["download-write", "download-fsync", "rename", "manifest-previous", "manifest-current",
     "read-only"],
)  # fmt: skip
def test_full_disk_or_read_only_state(
    pub: Publisher,
    server: ListServer,
    installed: ListUpdater,
    monkeypatch: pytest.MonkeyPatch,
    point: str,
) -> None:
    """Works as root too: the failures are injected where the state writer calls the OS."""
    server.routes[FULL] = Reply(body=pub.full(6))
    calls = {"n": 0}

    def third() -> bool:  # each manifest write fsyncs the file, then the folder
        calls["n"] += 1
        return calls["n"] == 3

    def always() -> bool:
        return True

    state_dir = str(installed.state_dir)
    if point == "download-write":
        monkeypatch.setattr(
            os, "write", _raise_from("hashguard.state", os.write, errno.ENOSPC, always)
        )
    elif point == "download-fsync":
        monkeypatch.setattr(
            os, "fsync", _raise_from("hashguard.state", os.fsync, errno.ENOSPC, always)
        )
    elif point == "rename":
        monkeypatch.setattr(
            os, "replace", _raise_from("hashguard.state", os.replace, errno.EROFS, always)
        )
    elif point.startswith("manifest"):
        when = always if point == "manifest-previous" else third
        monkeypatch.setattr(
            os, "fsync", _raise_from("hashguard.publish", os.fsync, errno.ENOSPC, when)
        )
    else:
        real = tempfile.mkstemp

        def mkstemp(*args: Any, **kwargs: Any) -> Any:
            if str(kwargs.get("dir", "")).startswith(state_dir):
                raise OSError(errno.EROFS, "Read-only file system")
            return real(*args, **kwargs)

        monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    result = failed(installed, hashguard.StateError)
    assert "disk full" in str(result.error) or "read-only" in str(result.error)
    monkeypatch.undo()
    bundles = [n for n in os.listdir(installed.state_dir / "news") if n.endswith(".hgl")]
    assert len(bundles) == 1, bundles  # nothing half-installed stays behind
    assert_kept(installed, pub)
    # Once the disk has room again, the update goes through.
    assert installed.update_now()["news"].version == 6


def test_unattended_through_every_fault_with_the_last_good_list_in_use(
    pub: Publisher, server: ListServer, installed: ListUpdater
) -> None:
    """The background thread meets one fault after another; scans run all along and always get
    a good list; when a good bundle finally comes, it is installed."""
    v6 = pub.full(6)
    tampered = bytearray(v6)
    tampered[len(v6) // 3] ^= 0x40
    script = [  # (full bundle reply, expected error), one per attempt
        (Reply(body=pub.full(5), etag='"v5"'), hashguard.WrongBase),  # 304; the delta is wrong
        (Reply(status=500, content_type="text/plain"), hashguard.HttpStatusError),
        (Reply(body=v6, delay=2), hashguard.FetchTimeout),
        (Reply(body=v6, dribble=0.02), hashguard.FetchTimeout),
        (Reply(body=v6, truncate=100), hashguard.BadResponse),
        (Reply(body=bytes(2 << 20)), hashguard.ListTooLarge),
        (Reply(body=v6, content_type="text/html"), hashguard.BadResponse),
        (Reply(body=b"garbage" * 50), hashguard.ListMalformed),
        (Reply(body=bytes(tampered)), hashguard.BadSignature),
        (Reply(body=pub.full(4)), hashguard.Rollback),
        (Reply(body=pub.full(6, created=NOW - 600, expires=NOW - 60)), hashguard.ListExpired),
        (Reply(body=pub.full(6, list_id="other")), hashguard.WrongList),
    ]
    replies = [reply for reply, _ in script]
    deltas = [Reply(body=pub.delta(3, 6))]
    server.routes[FULL] = lambda req, m: replies.pop(0) if replies else Reply(body=v6)
    server.routes[DELTA] = lambda req, m: deltas.pop(0) if deltas else Reply(status=404)
    failures: list[UpdateResult] = []
    u = installed
    u.on_failed = failures.append
    u.interval, u.backoff_initial, u.backoff_max = 0.05, 0.01, 0.02
    # Well under the 2 s delay, and well over what a loaded 2-CPU machine needs for a good reply.
    u.read_timeout, u.deadline = 0.5, 1.0
    stop = threading.Event()
    seen: set[int] = set()
    problems: list[str] = []

    def scan() -> None:
        while not stop.is_set():
            hl = u.current()
            seen.add(hl.version)
            if pub.matched(hl, upto=10) != pub.ids(hl.version):
                problems.append(f"version {hl.version}")
            time.sleep(0.001)

    scanner = threading.Thread(target=scan)
    scanner.start()
    try:
        with u:
            wait_for(lambda: u.current().version == 6, timeout=15)
    finally:
        stop.set()
        scanner.join()
    got = [f"{type(r.error).__name__}: {r.error}" for r in failures]
    assert [type(r.error) for r in failures] == [error for _, error in script], got
    assert all(r.version == 5 for r in failures)
    assert problems == [] and seen == {5, 6}, (problems, seen)
    assert_kept(u, pub, 6)


# ---- the state directory ----------------------------------------------------------------


def two_generations(pub: Publisher, server: ListServer, tmp_path: Path) -> ListUpdater:
    server.routes[FULL] = Reply(body=pub.full(5), etag='"v5"')
    u = updater(source(pub, server), tmp_path / "state")
    u.update_now()
    server.routes[DELTA] = lambda req, m: Reply(body=pub.delta(5, 6)) if m[1] == "5" else Reply(404)
    assert u.update_now()["news"].version == 6
    return u


def test_corrupt_state_at_start_falls_back(
    pub: Publisher, server: ListServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    u = two_generations(pub, server, tmp_path)
    folder = u.state_dir / "news"
    src = u._slots["news"].source
    (delta,) = folder.glob("delta-*.hgl")

    # The newest bundle is damaged: the previous generation (version 5) is used.
    good = delta.read_bytes()
    delta.write_bytes(good[:100])
    with caplog.at_level(logging.WARNING, "hashguard.update"):
        again = ListUpdater(src, u.state_dir)
    assert (again.current().version, again.status()["news"].loaded_from) == (5, "previous")
    assert "unusable" in caplog.text
    delta.write_bytes(good)

    # The manifest is garbage: the previous one is used.
    manifest = (folder / "state.json").read_bytes()
    (folder / "state.json").write_bytes(b"\x00garbage")
    again = ListUpdater(src, u.state_dir)
    assert again.current().version == 5
    # Both manifests are gone: the bundles in the folder are recovered, newest chain first.
    (folder / "state.prev.json").unlink()
    again = ListUpdater(src, u.state_dir)
    assert (again.current().version, again.status()["news"].loaded_from) == (6, "recovered")
    pub.check(again.current())
    # ...and the next update writes a good state again.
    server.routes[FULL] = Reply(body=pub.full(6), etag='"v6"')
    server.routes[DELTA] = Reply(status=404)
    again.update_now()
    assert ListUpdater(src, u.state_dir).status()["news"].loaded_from == "current"
    assert (folder / "state.json").read_bytes() != manifest

    # Nothing opens at all: no crash, a clear NoList, and nothing is deleted.
    for p in folder.iterdir():
        if p.name != ".lock":
            p.write_bytes(b"junk")
    names = sorted(os.listdir(folder))
    broken = ListUpdater(src, u.state_dir)
    with pytest.raises(hashguard.NoList, match="no list news"):
        broken.current()
    assert sorted(os.listdir(folder)) == names


def test_state_folder_that_is_a_file_or_unreadable(pub: Publisher, tmp_path: Path) -> None:
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "news").write_bytes(b"not a folder")
    src = ListSource("news", f"http://127.0.0.1:{free_port()}/x", verify_key=pub.root.public,
                     content_key=pub.app)  # fmt: skip
    u = ListUpdater(src, tmp_path / "state")
    with pytest.raises(hashguard.NoList):
        u.current()
    assert isinstance(u.update_now()["news"].error, hashguard.StateError)


def test_no_list_at_all_is_reported_clearly(pub: Publisher, tmp_path: Path) -> None:
    src = ListSource("news", f"http://127.0.0.1:{free_port()}{FULL}", verify_key=pub.root.public,
                     content_key=pub.app)  # fmt: skip
    seen: list[UpdateResult] = []
    u = ListUpdater(src, tmp_path / "state", on_failed=seen.append)
    assert u.lists == {}
    with pytest.raises(hashguard.NoList, match="no update has succeeded yet"):
        u.current()
    result = u.update_now()["news"]
    assert (result.status, result.version) == ("failed", None)
    assert seen == [result]
    assert u.status()["news"].version is None
    with pytest.raises(hashguard.NoList, match="Connection refused"):
        u.current("news")
    with pytest.raises(ValueError):
        u.current("another")


# ---- crashes --------------------------------------------------------------------------------


def test_sigkill_at_random_points_always_leaves_a_valid_list(
    pub: Publisher, server: ListServer, tmp_path: Path
) -> None:
    """A child process updates in a loop (deltas, full bundles replacing the chain, garbage
    collection) and is killed with SIGKILL after a random delay, 120 times; after each kill a
    new start loads a valid list no older than the last update the child reported done."""
    latest = [1]
    lock = threading.Lock()

    def delta(req: Request, m: re.Match[str]) -> Reply:
        base = int(m[1])
        with lock:
            if base >= latest[0]:
                latest[0] = base + 1
            target = latest[0]
        return Reply(body=pub.delta(base, target))

    def full(req: Request, m: re.Match[str]) -> Reply:
        with lock:
            v = latest[0]
        return Reply(body=pub.full(v), etag=f'"v{v}"')

    server.routes[FULL] = full
    server.routes[DELTA] = delta
    state = tmp_path / "state"
    src = source(pub, server)
    assert updater(src, state).update_now()["news"].version == 1
    committed, rng, kills, versions, interrupted = 1, random.Random(7), 0, set(), 0
    for _ in range(120):
        traces = set(_interrupted_writes(state / "news"))
        r, w = os.pipe()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads (3.12+)
            pid = os.fork()
        if pid == 0:  # the child: update forever, reporting each committed version
            code = 0
            try:
                os.close(r)
                child = updater(src, state, max_chain=3)
                while True:
                    res = child.update_now()["news"]
                    if res.status == "failed":
                        os.write(w, f"E {res.error!r}\n".encode())
                    os.write(w, f"{res.version}\n".encode())
            except BaseException as e:
                os.write(w, f"E {e!r}\n".encode())
                code = 1
            finally:
                os._exit(code)
        os.close(w)
        time.sleep(rng.uniform(0.0, 0.08))  # one delta commit takes a few fsyncs (~30 ms)
        os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
        kills += 1
        with os.fdopen(r) as f:
            lines = f.read().splitlines()
        errors = [line for line in lines if line.startswith("E ")]
        assert not errors, errors
        reported = [int(line) for line in lines if line.strip() and line != "None"]
        committed = max([committed, *reported])
        interrupted += bool(set(_interrupted_writes(state / "news")) - traces)
        hl = updater(src, state).current()  # the next start
        assert hl.version >= committed
        pub.check(hl, upto=latest[0])
        versions.add(hl.version)
    assert kills >= 100
    print(f"{kills} kills, {interrupted} left an update half done, {len(versions)} versions")
    assert len(versions) > 20, "the child hardly got to update between kills"
    assert interrupted > 0, "no kill landed in the middle of an update"
    final = updater(src, state)
    assert final.update_now()["news"].ok
    assert final._slots["news"].manifest is not None


def _interrupted_writes(folder: Path) -> list[str]:
    """Traces of a writer killed mid-update: temporary files, or bundles no manifest names."""
    named: set[str] = set()
    for name in (state.MANIFEST, state.PREVIOUS):
        with contextlib.suppress(OSError, ValueError):
            named |= {
                f.name for f in state.StateDir(folder.parent, folder.name).read_manifest(name).files
            }
    return [
        n
        for n in os.listdir(folder)
        if (n.startswith(".") and n != ".lock") or (n.endswith(".hgl") and n not in named)
    ]


# ---- hot swap -----------------------------------------------------------------------------


def test_concurrent_scans_never_see_a_torn_state(
    pub: Publisher, server: ListServer, installed: ListUpdater
) -> None:
    latest = [5]

    def delta(req: Request, m: re.Match[str]) -> Reply:
        base = int(m[1])
        if base >= latest[0]:
            return Reply(status=404)
        return Reply(body=pub.delta(base, latest[0]))

    server.routes[DELTA] = delta
    server.routes[FULL] = lambda req, m: Reply(body=pub.full(latest[0]), etag=f'"v{latest[0]}"')
    installed.max_chain = 4
    stop = threading.Event()
    problems: list[str] = []
    scans = [0] * 3

    def scan(n: int) -> None:
        while not stop.is_set():
            hl = installed.current()
            version = hl.version
            got = pub.matched(hl, upto=60)
            if got != pub.ids(version) or hl.version != version:
                problems.append(f"version {version}: matched {sorted(got)}")
            scans[n] += 1

    threads = [threading.Thread(target=scan, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    try:
        for v in range(6, 30):
            latest[0] = v
            result = installed.update_now()["news"]
            assert (result.status, result.version) == ("updated", v), result
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert problems == []
    assert min(scans) > 0 and sum(scans) > 40
    assert_kept(installed, pub, 29)


# ---- scheduling and events ----------------------------------------------------------------


def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    end = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.01)


def test_background_updates_backoff_and_recovery(
    pub: Publisher, server: ListServer, tmp_path: Path
) -> None:
    events: list[tuple[str, UpdateResult]] = []
    server.routes[FULL] = Reply(status=503, content_type="text/plain")
    u = updater(
        source(pub, server, delta=False), tmp_path / "state", interval=0.2, backoff_initial=0.05,
        backoff_max=0.2, on_updated=lambda r: events.append(("updated", r)),
        on_failed=lambda r: events.append(("failed", r)),
    )  # fmt: skip
    with u:
        assert u.running
        wait_for(lambda: len(events) >= 4)
        status = u.status()["news"]
        assert status.consecutive_failures >= 4 and status.version is None
        assert isinstance(status.last_error, hashguard.HttpStatusError)
        server.routes[FULL] = Reply(body=pub.full(5), etag='"v5"')
        wait_for(lambda: events[-1][0] == "updated")
        assert u.current().version == 5
        assert u.status()["news"].consecutive_failures == 0
        server.routes[FULL] = Reply(body=pub.full(6), etag='"v6"')
        wait_for(lambda: u.current().version == 6)
    assert not u.running
    assert [r.status for _, r in events[:4]] == ["failed"] * 4
    # The retry delays double up to the cap, with up to half again of jitter.
    for failures, low in ((1, 0.05), (2, 0.1), (3, 0.2), (9, 0.2)):
        for _ in range(20):
            assert low <= u._next_delay(failures) <= low * 1.5
    assert 0.2 <= u._next_delay(0) <= 0.2 + u.jitter


def test_callbacks_stale_lists_and_stop_during_a_download(
    pub: Publisher, server: ListServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    now = [float(NOW)]
    stale: list[UpdateResult] = []

    def broken_callback(result: UpdateResult) -> None:
        raise RuntimeError("callback bug")

    server.routes[FULL] = Reply(body=pub.full(5), etag='"v5"')
    u = updater(source(pub, server), tmp_path / "state", clock=lambda: now[0],
                on_stale=stale.append, on_updated=broken_callback)  # fmt: skip
    with caplog.at_level(logging.ERROR, "hashguard.update"):
        assert u.update_now()["news"].version == 5
    assert "callback bug" in caplog.text
    assert stale == []
    now[0] = NOW + 7200.0  # past the list's expiry, the server has nothing newer
    result = u.update_now()["news"]
    assert result.stale and stale == [result]
    assert u.status()["news"].stale
    assert u.current().version == 5  # kept in use, reported as stale
    strict = updater(u._slots["news"].source, u.state_dir, clock=lambda: now[0], keep_stale=False)
    with pytest.raises(hashguard.NoList, match="expired"):
        strict.current()
    # stop() does not wait for a slow download to finish.
    server.routes[FULL] = Reply(body=pub.full(6), dribble=0.05)
    now[0] = float(NOW)
    u.deadline = 30.0
    u.start()  # a list is loaded: the first check comes within the jitter (0)
    wait_for(lambda: any(r.target == FULL for r in server.requests[-1:]))
    time.sleep(0.2)
    started = time.monotonic()
    u.stop()
    assert time.monotonic() - started < 2
    assert u.current().version == 5


# ---- privacy: no egress ------------------------------------------------------------------


def test_only_gets_to_configured_urls_and_scans_never_touch_the_network(
    pub: Publisher, server: ListServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    connects: list[object] = []
    real_connect = socket.socket.connect

    def connect(self: socket.socket, address: Any) -> None:
        connects.append(address)
        real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", lambda *a: pytest.fail("connect_ex"))
    server.routes[FULL] = Reply(body=pub.full(5), etag='"v5"',
                                last_modified="Wed, 01 Jan 2025 00:00:00 GMT")  # fmt: skip
    u = updater(source(pub, server), tmp_path / "state", full_check_interval=0)
    u.update_now()
    server.routes[DELTA] = lambda req, m: Reply(body=pub.delta(5, 6)) if m[1] == "5" else Reply(404)
    u.update_now()
    u.update_now()
    assert server.requests[-1].header("If-Modified-Since") == "Wed, 01 Jan 2025 00:00:00 GMT"
    assert connects and set(connects) == {("127.0.0.1", server.port)}
    allowed_paths = {FULL, "/lists/news/delta-from-5.hgl", "/lists/news/delta-from-6.hgl"}
    for req in server.requests:
        assert req.method == "GET"
        assert req.target in allowed_paths and "?" not in req.target
        names = {k.lower() for k, _ in req.headers}
        assert names <= fetch.ALLOWED_HEADERS, names
        assert req.header("User-Agent") == f"hashguard/{hashguard.__version__}"
        assert req.header("Connection") == "close"
        inm = req.header("If-None-Match")
        assert inm in (None, '"v5"')
    assert {r.target for r in server.requests} == allowed_paths

    # Scanning (hashing, matching, starting from the state folder) makes no connection at all.
    def no_network(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("network used during a scan")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    offline = ListUpdater(u._slots["news"].source, u.state_dir)
    image = Path(__file__).resolve().parents[1] / "examples" / "images" / "chelsea.jpg"
    fp = hashguard.fingerprint(image, dihedral=True)
    for hl in (u.current(), offline.current()):
        assert hl.match(fp.pdq, md5=bytes.fromhex(fp.md5)) == []
        assert hl.match(Publisher.pdq(7), dihedral=False)


# ---- keys ---------------------------------------------------------------------------------


def test_keys_from_files_and_environment_and_never_shown(
    pub: Publisher,
    server: ListServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    publish.write_key(tmp_path / "root.pub", pub.root.public, secret=False)
    monkeypatch.setenv("HG_TEST_APP_KEY", pub.app.hex())
    server.routes[FULL] = Reply(body=pub.full(5))
    src = ListSource("news", server.url(FULL), verify_key=tmp_path / "root.pub",
                     content_key="env:HG_TEST_APP_KEY")  # fmt: skip
    with caplog.at_level(logging.DEBUG, "hashguard"):
        u = ListUpdater(src, tmp_path / "state")
        good = u.update_now()["news"]
        server.routes[FULL] = Reply(body=Publisher().full(6))
        bad = u.update_now()["news"]
    assert good.version == 5 and isinstance(bad.error, hashguard.UntrustedKey)
    shown = caplog.text + repr(src) + repr(u) + repr(good) + repr(bad) + str(bad.error)
    for secret in (pub.app, pub.root.public, pub.device.secret):
        assert secret.hex() not in shown
    with pytest.raises(hashguard.Error, match="HG_TEST_MISSING"):
        ListSource("news", "x.hgl", verify_key="env:HG_TEST_MISSING", content_key=pub.app)
    with pytest.raises(ValueError, match="32 bytes"):
        ListSource("news", "x.hgl", verify_key=b"short", content_key=pub.app)
    with pytest.raises(ValueError, match="content_key or a device_key"):
        ListSource("news", "x.hgl", verify_key=pub.root.public)


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"list_id": ".."}, "list id"),
        ({"list_id": "Upper"}, "list id"),
        ({"url": "ftp://host/x.hgl"}, "scheme"),
        ({"url": "https://user:pw@host/x.hgl"}, "credentials"),
        ({"delta_url": "https://host/delta.hgl"}, "version"),
    ],
)
def test_invalid_sources(pub: Publisher, kw: dict[str, str], message: str) -> None:
    args: dict[str, Any] = {"list_id": "news", "url": "https://host/full.hgl"}
    args.update(kw)
    with pytest.raises(ValueError, match=message):
        ListSource(verify_key=pub.root.public, content_key=pub.app, **args)


# ---- the command line ---------------------------------------------------------------------


def test_cli_list_update(
    pub: Publisher, server: ListServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    publish.write_key(tmp_path / "root.pub", pub.root.public, secret=False)
    publish.write_key(tmp_path / "app.key", pub.app, secret=True)
    state = str(tmp_path / "state")
    base = ["list", "update", "--state", state, "--url", server.url(FULL),
            "--delta-url", server.url(DELTA_TEMPLATE), "--root-key", str(tmp_path / "root.pub"),
            "--app-key", str(tmp_path / "app.key")]  # fmt: skip

    # No list id and an empty state folder: a usage error.
    with pytest.raises(SystemExit) as e:
        main(base)
    assert e.value.code == EXIT_USAGE
    capsys.readouterr()
    # No server answers yet: a failure with no list installed.
    assert main([*base, "--list-id", "news"]) == EXIT_INPUT_ERRORS
    out, err = capsys.readouterr()
    assert "update failed" in err and "no list installed" in err
    server.routes[FULL] = Reply(body=pub.full(5), etag='"v5"')
    assert main([*base, "--list-id", "news"]) == EXIT_OK
    out, err = capsys.readouterr()
    assert out.strip() == "list news: updated from no list to version 5 (full)"
    assert main(base) == EXIT_OK  # the one list in the state folder
    assert capsys.readouterr().out.strip() == "list news: version 5 is current"
    server.routes[FULL] = Reply(body=pub.full(3))
    assert main(base) == EXIT_INPUT_ERRORS
    out, err = capsys.readouterr()
    assert "Rollback" in err and "keeping version 5" in err
    server.routes[DELTA] = Reply(body=pub.delta(5, 6))
    assert main(base) == EXIT_OK
    out, err = capsys.readouterr()
    assert "updated from version 5 to version 6 (delta)" in out
    for text in (out, err):
        assert pub.app.hex() not in text and pub.root.public.hex() not in text
    for bad in (["--app-key", "x", "--device-key", "y"], ["--watch", "0"], ["--url", "ftp://x"]):
        with pytest.raises(SystemExit) as e:
            main([*base, *bad])
        assert e.value.code == EXIT_USAGE


def test_cli_watch_runs_until_interrupted(
    pub: Publisher, server: ListServer, tmp_path: Path
) -> None:
    publish.write_key(tmp_path / "root.pub", pub.root.public, secret=False)
    server.routes[FULL] = Reply(body=pub.full(5), etag='"v5"')
    exe = Path(sys.executable).parent / "hashguard"
    proc = subprocess.Popen(
        [str(exe), "list", "update", "--state", str(tmp_path / "state"), "--url",
         server.url(FULL), "--root-key", str(tmp_path / "root.pub"), "--device-key",
         "env:HG_TEST_DEVICE_KEY", "--list-id", "news", "--watch", "0.1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "HG_TEST_DEVICE_KEY": pub.device.secret.hex()},
    )  # fmt: skip
    assert proc.stdout is not None
    lines = [proc.stdout.readline(), proc.stdout.readline()]
    wait_for(lambda: len(server.requests) >= 3)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=10)
    assert proc.returncode == EXIT_OK, err
    assert lines[0].startswith("list news: watching every 0.1 s")
    assert lines[1].strip() == "list news: updated from no list to version 5 (full)"
    assert pub.device.secret.hex() not in out + err + "".join(lines)


def test_the_updater_loads_on_first_use() -> None:
    # Apps that only scan do not import the networking code.
    code = (
        "import sys, hashguard, hashguard.cli\n"
        "assert 'hashguard.update' not in sys.modules\n"
        "assert hashguard.ListUpdater.__module__ == 'hashguard.update'\n"
        "from hashguard import ListSource, UpdateResult\n"
        "assert 'hashguard.update' in sys.modules\n"
        "try:\n"
        "    hashguard.no_such_name\n"
        "except AttributeError:\n"
        "    pass\n"
        "else:\n"
        "    raise SystemExit('no AttributeError')\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
