"""The scanner: transformed copies, exact hashes, animated images, bad files, flood protection,
parallel scans, lists kept current by an updater, and no network."""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import socket
import threading
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

import hashguard
from hashguard import HashList, Scanner, lists
from hashguard.image import DEFAULT_MIN_SIDE, dct_scale

from .test_hashing import EXAMPLES

NOW = int(time.time())
DOCUMENT = b"%PDF-1.4\n% a listed document\n"


def listed_entries() -> list[lists.ListEntry]:
    flat = Image.new("RGB", (64, 64), "gray")
    buf = io.BytesIO()
    flat.save(buf, "PNG")
    return [
        lists.ListEntry(1, "A1", "test", pdq=hashguard.hash_image(EXAMPLES / "chelsea.jpg")),
        lists.ListEntry(2, "B", "test", pdq=hashguard.hash_image(EXAMPLES / "coffee.jpg")),
        lists.ListEntry(3, "doc", "test", md5=hashlib.md5(DOCUMENT).digest()),
        lists.ListEntry(4, "flat", "test", md5=hashlib.md5(buf.getvalue()).digest()),
    ]


def bundle(publisher: dict[str, object], path: Path, version: int = 1, **kw: object) -> Path:
    args: dict[str, object] = {
        "list_id": "scan-test",
        "version": version,
        "entries": listed_entries(),
        "signer": publisher["signer"],
        "app_keys": [publisher["app"]],
        "expires": NOW + 3600,
    }
    args.update(kw)
    path.write_bytes(lists.seal_bundle(**args))  # type: ignore[arg-type]
    return path


@pytest.fixture(scope="module")
def hash_list(publisher: dict[str, object], tmp_path_factory: pytest.TempPathFactory) -> HashList:
    path = bundle(publisher, tmp_path_factory.mktemp("list") / "v1.hgl")
    return HashList.open(path, verify_key=publisher["root"].public, content_key=publisher["app"])  # type: ignore[attr-defined]


def rgb(name: str) -> Image.Image:
    with Image.open(EXAMPLES / name) as img:
        return img.convert("RGB")


def save(img: Image.Image, path: Path, **kw: object) -> Path:
    img.save(path, **kw)  # type: ignore[arg-type]
    return path


def test_transformed_copies_match_with_their_transform(hash_list: HashList, tmp_path: Path) -> None:
    chelsea = rgb("chelsea.jpg")
    cases = {
        save(chelsea, tmp_path / "reencoded.jpg", quality=50): "orig",
        save(chelsea.resize((150, 100)), tmp_path / "small.png"): "orig",
        save(ImageOps.mirror(chelsea), tmp_path / "mirrored.webp", quality=80): None,
        save(chelsea.transpose(Image.Transpose.ROTATE_90), tmp_path / "rot.jpg"): None,
    }
    scanner = Scanner(hash_list)
    for path, transform in cases.items():
        r = scanner.scan(path)
        assert r.error is None
        (m,) = r.matches
        assert (m.list_id, m.list_version, m.entry_id, m.category, m.kind) == (
            "scan-test", 1, 1, "A1", "pdq",
        )  # fmt: skip
        assert m.distance <= 31
        if transform is not None:
            assert m.transform == transform
        else:
            assert m.transform != "orig"
    # Without dihedral matching, the mirrored copy is not found.
    mirrored = next(p for p in cases if p.suffix == ".webp")
    assert Scanner(hash_list, dihedral=False).scan(mirrored).matches == ()
    unrelated = Scanner(hash_list).scan(EXAMPLES / "astronaut.jpg")
    assert (unrelated.matches, unrelated.error, unrelated.frames) == ((), None, 1)
    assert unrelated.md5 == hashlib.md5((EXAMPLES / "astronaut.jpg").read_bytes()).hexdigest()


def test_any_other_file_gets_exact_hashes_only(hash_list: HashList, tmp_path: Path) -> None:
    doc = tmp_path / "listed.pdf"
    doc.write_bytes(DOCUMENT)
    r = Scanner(hash_list).scan(doc)
    assert (r.error, r.pdq, r.frames) == (None, None, 0)
    assert [(m.entry_id, m.kind, m.frame) for m in r.matches] == [(3, "md5", None)]
    assert r.sha256 == hashlib.sha256(DOCUMENT).hexdigest()
    other = tmp_path / "notes.txt"
    other.write_text("nothing to see")
    assert Scanner(hash_list).scan(other).matches == ()


def png_header(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return len(data).to_bytes(4, "big") + body + zlib.crc32(body).to_bytes(4, "big")

    ihdr = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 2, 0, 0, 0])
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


def test_bad_files_give_errors_and_never_stop_a_scan(hash_list: HashList, tmp_path: Path) -> None:
    good = EXAMPLES / "coffee.jpg"
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(good.read_bytes()[:700])
    hostile = tmp_path / "bomb.png"
    hostile.write_bytes(png_header(30_000, 30_000))  # 900 megapixels declared, 57 bytes
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    missing = tmp_path / "missing.jpg"
    sources = [good, truncated, hostile, empty, missing, good]
    results = list(Scanner(hash_list).scan_many(sources, workers=2))
    assert [r.source for r in results] == [str(s) for s in sources]
    assert [bool(r.matches) for r in results] == [True, False, False, False, False, True]
    for r in results[1:5]:
        assert isinstance(r.error, hashguard.ImageError)
    # A truncated file's bytes were read: its exact hashes are still reported.
    assert results[1].sha256 == hashlib.sha256(truncated.read_bytes()).hexdigest()
    assert results[4].md5 is None


def test_animated_images_match_on_any_frame(hash_list: HashList, tmp_path: Path) -> None:
    frames = [Image.new("RGB", (320, 240), c) for c in ("navy", "olive")]
    frames.append(rgb("coffee.jpg").resize((320, 240)))
    for ext in ("gif", "webp", "png"):
        path = tmp_path / f"anim.{ext}"
        frames[0].save(path, save_all=True, append_images=frames[1:], duration=100)
        r = Scanner(hash_list).scan(path)
        assert r.frames == 3, ext
        assert [(m.entry_id, m.frame) for m in r.matches] == [(2, 2)], ext
        # The frame cap: the matching frame is past it.
        assert Scanner(hash_list, max_frames=2).scan(path).matches == (), ext


def test_low_quality_skips_pdq_but_exact_hashes_count(hash_list: HashList, tmp_path: Path) -> None:
    flat = tmp_path / "flat.png"
    Image.new("RGB", (64, 64), "gray").save(flat)
    r = Scanner(hash_list).scan(flat)
    assert r.low_quality and r.quality == 0
    assert [(m.entry_id, m.kind) for m in r.matches] == [(4, "md5")]
    assert not Scanner(hash_list).scan(EXAMPLES / "chelsea.jpg").low_quality


def test_exact_mode_is_the_reference_hash_and_default_mode_is_close(
    hash_list: HashList, tmp_path: Path
) -> None:
    # Just large enough for the default floor to decode it at half size.
    size = (3 * DEFAULT_MIN_SIDE, 2 * DEFAULT_MIN_SIDE)
    big = rgb("chelsea.jpg").resize(size, Image.Resampling.BILINEAR)
    path = save(big, tmp_path / "big.jpg", quality=90)
    exact = Scanner(hash_list, exact=True).scan(path)
    assert exact.pdq == hashguard.hash_image(path)
    fast = Scanner(hash_list).scan(path)
    assert fast.pdq is not None and exact.pdq is not None
    assert dct_scale(*size, DEFAULT_MIN_SIDE) == 2
    assert fast.pdq - exact.pdq < 10
    assert [m.entry_id for m in fast.matches] == [1]


def test_flood_protection_quarantines_an_entry_once(hash_list: HashList, tmp_path: Path) -> None:
    chelsea = rgb("chelsea.jpg")
    files = [save(chelsea, tmp_path / f"c{q}.jpg", quality=q) for q in (40, 50, 60, 70, 80, 90)]
    clock = [1000.0]
    suspects: list[tuple[str, int]] = []
    scanner = Scanner(
        hash_list,
        flood_limit=3,
        flood_window=60,
        clock=lambda: clock[0],
        on_suspect_entry=lambda lst, e: suspects.append((lst, e)),
    )
    # The same file again and again counts once.
    for _ in range(5):
        assert len(scanner.scan(files[0]).matches) == 1
    results = [scanner.scan(f) for f in files[1:]]
    assert [len(r.matches) for r in results] == [1, 1, 0, 0, 0]
    assert results[2].suspect_entries == (("scan-test", 1),)
    assert all(r.suspect_entries == () for r in results[3:])
    assert suspects == [("scan-test", 1)]
    assert scanner.quarantined == {("scan-test", 1)}
    # Other entries still match.
    assert [m.entry_id for m in scanner.scan(EXAMPLES / "coffee.jpg").matches] == [2]
    # Hits older than the window do not count.
    fresh = Scanner(hash_list, flood_limit=2, flood_window=60, clock=lambda: clock[0])
    for f in files:
        clock[0] += 61
        assert len(fresh.scan(f).matches) == 1
    assert fresh.quarantined == frozenset()


def test_scan_many_orders_bounds_and_cancels(hash_list: HashList) -> None:
    paths = [EXAMPLES / n for n in ("chelsea.jpg", "coffee.jpg", "rocket.jpg", "camera.jpg")] * 5
    scanner = Scanner(hash_list)
    ordered = list(scanner.scan_many(paths, workers=2))
    assert [r.source for r in ordered] == [str(p) for p in paths]
    loose = list(scanner.scan_many(paths, workers=2, ordered=False))
    assert sorted(r.source for r in loose) == sorted(str(p) for p in paths)
    consumed = 0

    def source() -> Iterator[Path]:
        nonlocal consumed
        for p in paths:
            consumed += 1
            yield p

    cancel = threading.Event()
    results = scanner.scan_many(source(), workers=2, cancel=cancel)
    next(results)
    assert consumed <= 2 * 2 + 1  # bounded in flight
    cancel.set()
    rest = list(results)
    assert 1 + len(rest) < len(paths)


def test_scans_follow_the_lists_an_updater_keeps_current(
    publisher: dict[str, object], tmp_path: Path
) -> None:
    published = tmp_path / "published.hgl"
    source = hashguard.ListSource(
        "scan-test",
        str(published),
        verify_key=publisher["root"].public,  # type: ignore[attr-defined]
        content_key=publisher["app"],  # type: ignore[arg-type]
    )
    updater = hashguard.ListUpdater(source, tmp_path / "state")
    scanner = Scanner(updater)
    with pytest.raises(hashguard.NoList):
        scanner.scan(EXAMPLES / "chelsea.jpg")
    bundle(publisher, published, version=1)
    updater.update_now()
    assert [m.list_version for m in scanner.scan(EXAMPLES / "chelsea.jpg").matches] == [1]
    bundle(publisher, published, version=2)
    updater.update_now()
    assert [m.list_version for m in scanner.scan(EXAMPLES / "chelsea.jpg").matches] == [2]


def test_scanning_never_touches_the_network(
    hash_list: HashList, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    attempts: list[object] = []

    def refuse(self: socket.socket, address: object) -> None:
        attempts.append(address)
        raise OSError("network use in a scan")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", lambda *a, **k: refuse(None, a))  # type: ignore[arg-type]
    doc = tmp_path / "doc.pdf"
    doc.write_bytes(DOCUMENT)
    results = list(Scanner(hash_list).scan_many([EXAMPLES / "chelsea.jpg", doc], workers=2))
    assert [len(r.matches) for r in results] == [1, 1]
    assert attempts == []


def test_results_hold_hashes_never_pixels(hash_list: HashList) -> None:
    r = Scanner(hash_list).scan(EXAMPLES / "chelsea.jpg")
    seen: list[object] = []

    def walk(x: object) -> None:
        seen.append(x)
        if dataclasses.is_dataclass(x) and not isinstance(x, type):
            for f in dataclasses.fields(x):
                walk(getattr(x, f.name))
        elif isinstance(x, (tuple, list)):
            for y in x:
                walk(y)

    walk(r)
    assert not any(isinstance(x, (np.ndarray, Image.Image, bytes, bytearray)) for x in seen)
    assert isinstance(r.pdq, hashguard.PdqHash)


def test_cli_scan_outputs_and_exit_codes(
    publisher: dict[str, object], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from hashguard import cli, publish

    listed = bundle(publisher, tmp_path / "list.hgl")
    root, app = tmp_path / "root.pub", tmp_path / "app.key"
    publish.write_key(root, publisher["root"].public, secret=False)  # type: ignore[attr-defined]
    publish.write_key(app, publisher["app"], secret=True)  # type: ignore[arg-type]
    base = ["--list", str(listed), "--root-key", str(root), "--app-key", str(app)]
    clean, match = tmp_path / "clean", tmp_path / "match"
    clean.mkdir()
    match.mkdir()
    (clean / "camera.jpg").write_bytes((EXAMPLES / "camera.jpg").read_bytes())
    (match / "a.jpg").write_bytes((EXAMPLES / "chelsea.jpg").read_bytes())
    (match / "b.jpg").write_bytes((EXAMPLES / "coffee.jpg").read_bytes())
    broken = tmp_path / "broken.jpg"
    broken.write_bytes((EXAMPLES / "camera.jpg").read_bytes()[:500])

    assert cli.main(["scan", str(clean), *base]) == cli.EXIT_OK
    assert "1 files" in capsys.readouterr().out
    assert cli.main(["scan", str(match), *base]) == cli.EXIT_MATCH
    out = capsys.readouterr().out
    assert out.count("MATCH") == 2 and "entry 1 [A1] pdq distance 0" in out
    assert cli.main(["scan", str(clean), str(broken), *base]) == cli.EXIT_INPUT_ERRORS
    assert "broken.jpg" in capsys.readouterr().err
    # A match wins over errors; --fail-fast stops at the first of either.
    assert cli.main(["scan", str(broken), str(match), *base]) == cli.EXIT_MATCH
    capsys.readouterr()
    assert cli.main(["scan", str(broken), str(match), "--fail-fast", *base]) == 2
    capsys.readouterr()

    assert cli.main(["scan", str(match), str(clean), "--format", "json", *base]) == 1
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [len(r["matches"]) for r in records] == [1, 1, 0]
    assert records[0]["matches"][0]["entry_id"] == 1 and records[2]["pdq"]
    assert cli.main(["scan", str(match), str(broken), "--format", "csv", *base]) == 1
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [(r["status"], r["entry_id"]) for r in rows] == [
        ("match", "1"), ("match", "2"), ("error", ""),
    ]  # fmt: skip
    # Bad command lines.
    with pytest.raises(SystemExit) as e:
        cli.main(["scan", str(match)])
    assert e.value.code == 64


@pytest.mark.parametrize(
    ("fmt", "ext", "options"),
    [
        ("JPEG", "jpg", {"quality": 85}),
        ("PNG", "png", {}),
        ("GIF", "gif", {}),
        ("WEBP", "webp", {"quality": 85}),
        ("BMP", "bmp", {}),
        ("TIFF", "tif", {}),
        ("AVIF", "avif", {"quality": 85}),
        ("HEIF", "heic", {"quality": 85}),
    ],
)
def test_every_format_is_scanned(
    hash_list: HashList, tmp_path: Path, fmt: str, ext: str, options: dict[str, object]
) -> None:
    path = save(rgb("coffee.jpg"), tmp_path / f"coffee.{ext}", format=fmt, **options)
    r = Scanner(hash_list).scan(path)
    assert r.error is None, r.error
    assert [(m.entry_id, m.kind) for m in r.matches] == [(2, "pdq")], fmt
    assert r.frames == 1
