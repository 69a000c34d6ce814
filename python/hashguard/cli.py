"""The ``hashguard`` command line: argument handling and output only.

Exit codes (every command):
  0   success (``scan``: no match)
  1   ``scan`` only: at least one file matched
  2   one or more inputs could not be processed (each reported on stderr); the rest were
      (``list update``: the update failed; the last good list, if any, is kept)
  64  bad command line (unknown option, missing argument)
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import os
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, NoReturn, TextIO

from hashguard import __version__, lists, publish
from hashguard.errors import Error, ImageError
from hashguard.hashing import Fingerprint, fingerprint, map_ordered
from hashguard.scan import Scanner, ScanResult

if TYPE_CHECKING:
    from hashguard import update

EXIT_OK = 0
EXIT_MATCH = 1
EXIT_INPUT_ERRORS = 2
EXIT_USAGE = 64


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="hashguard", description="On-device PDQ hashing and hash-list matching.")
    parser.add_argument("--version", action="version", version=f"hashguard {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    h = commands.add_parser(
        "hash",
        help="PDQ hash, quality, MD5 and SHA-256 of image files",
        description=(
            "Prints one line per file: pdq quality md5 sha256 path. Folders are walked "
            "recursively. Files that cannot be hashed are reported on stderr and do not stop "
            "the run. Exit codes: 0 all hashed, 2 some files failed, 64 bad command line."
        ),
    )
    h.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="files or folders")
    h.add_argument("--json", action="store_true", help="JSON lines instead of text")
    h.add_argument("--dihedral", action="store_true", help="also print the 8 dihedral hashes")
    h.add_argument(
        "--apply-exif",
        action="store_true",
        help="rotate by EXIF orientation first (published lists are hashed without it)",
    )
    h.add_argument("--workers", type=int, default=None, help="threads (default: one per CPU)")
    h.set_defaults(run=run_hash)
    add_scan_command(commands)
    add_key_commands(commands)
    add_list_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.run(args)
    except Error as e:
        print(f"hashguard: error: {e}", file=sys.stderr)
        return EXIT_INPUT_ERRORS
    except OSError as e:
        print(f"hashguard: error: {e}", file=sys.stderr)
        return EXIT_INPUT_ERRORS
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (e.g. `| head`); stop quietly.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    return code


def walk(paths: Sequence[Path]) -> Iterator[Path]:
    """Files named directly, and every file under named folders, in a stable order."""
    for p in paths:
        if p.is_dir():
            for root, dirs, files in os.walk(p):
                dirs.sort()
                for name in sorted(files):
                    yield Path(root) / name
        else:
            yield p


def run_hash(args: argparse.Namespace) -> int:
    if args.workers is not None and args.workers < 1:
        build_parser().error("--workers must be at least 1")
    files = list(walk(args.paths))

    def one(path: Path) -> Fingerprint:
        return fingerprint(path, dihedral=args.dihedral, apply_exif=args.apply_exif)

    progress = Progress(len(files), sys.stderr)
    failed = 0
    for path, result in zip(files, map_ordered(one, files, args.workers), strict=True):
        if isinstance(result, ImageError):
            failed += 1
            progress.clear()
            print(f"hashguard: error: {result}", file=sys.stderr)
        else:
            progress.clear()
            print(format_fingerprint(path, result, as_json=args.json, dihedral=args.dihedral))
        progress.advance()
    progress.finish()
    return EXIT_INPUT_ERRORS if failed else EXIT_OK


def format_fingerprint(path: Path, fp: Fingerprint, *, as_json: bool, dihedral: bool) -> str:
    if as_json:
        record: dict[str, object] = {
            "path": str(path),
            "pdq": fp.pdq.hex,
            "quality": fp.pdq.quality,
            "md5": fp.md5,
            "sha256": fp.sha256,
        }
        if dihedral:
            record["dihedral"] = {name: h.hex for name, h in fp.pdq.dihedral().items()}
        return json.dumps(record)
    line = f"{fp.pdq.hex} {fp.pdq.quality} {fp.md5} {fp.sha256} {path}"
    if dihedral:
        line += "".join(f"\n  {name} {h.hex}" for name, h in fp.pdq.dihedral().items())
    return line


DAY = 86_400


def add_scan_command(commands: argparse._SubParsersAction[_Parser]) -> None:
    sc = commands.add_parser(
        "scan",
        help="match files against hash lists",
        description=(
            "Scans files (folders recursively) against one or more list bundles: exact MD5 and "
            "SHA-256 matches, and PDQ matches within each list's threshold, including rotated "
            "and mirrored copies. Files that cannot be read or decoded are reported on stderr "
            "and counted; files that are not images get exact matching only. Exit codes: 0 no "
            "match, 1 at least one match (even if some files failed), 2 no match but some "
            "files failed, 64 bad command line."
        ),
    )
    sc.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="files or folders")
    sc.add_argument(
        "--list", dest="bundles", type=Path, action="append", required=True, metavar="BUNDLE",
        help="a list bundle (repeat for several lists)",
    )  # fmt: skip
    sc.add_argument(
        "--root-key", action="append", required=True,
        help="root.pub, a file or env:NAME (repeat to trust several roots)",
    )  # fmt: skip
    opener = sc.add_mutually_exclusive_group(required=True)
    opener.add_argument("--app-key", help="app.key, a file or env:NAME")
    opener.add_argument("--device-key", help="device.key, a file or env:NAME")
    sc.add_argument(
        "--format", choices=["text", "json", "csv"], default="text",
        help="text: matches and a summary; json: one line per file; csv: one row per match",
    )  # fmt: skip
    sc.add_argument("--exact", action="store_true", help="decode JPEGs in full (slower)")
    sc.add_argument("--no-dihedral", action="store_true", help="skip rotated/mirrored matching")
    sc.add_argument("--workers", type=int, default=None, help="threads (default: one per CPU)")
    sc.add_argument("--fail-fast", action="store_true", help="stop at the first match or error")
    sc.set_defaults(run=run_scan)


CSV_FIELDS: Final = (
    "path", "status", "list_id", "list_version", "entry_id", "category", "kind", "distance",
    "transform", "frame", "error",
)  # fmt: skip


def run_scan(args: argparse.Namespace) -> int:
    if args.workers is not None and args.workers < 1:
        build_parser().error("--workers must be at least 1")
    content = publish.read_key(args.app_key) if args.app_key else None
    device = publish.read_key(args.device_key) if args.device_key else None
    roots = [publish.read_key(k) for k in args.root_key]
    handles = []
    for bundle in args.bundles:
        hl = lists.HashList.open(
            bundle, verify_key=roots, content_key=content, device_key=device, allow_stale=True
        )
        if hl.is_stale:
            warning = f"list {hl.list_id} v{hl.version} has expired"
            print(f"hashguard: warning: {warning}", file=sys.stderr)
        handles.append(hl)
    scanner = Scanner(handles, dihedral=not args.no_dihedral, exact=args.exact)
    files = list(walk(args.paths))
    progress = Progress(len(files), sys.stderr)
    out = csv.writer(sys.stdout, lineterminator="\n") if args.format == "csv" else None
    if out is not None:
        out.writerow(CSV_FIELDS)
    started = time.monotonic()
    matched = failed = scanned = 0
    results = scanner.scan_many(files, workers=args.workers)
    try:
        for r in results:
            scanned += 1
            progress.clear()
            if r.error is not None:
                failed += 1
                print(f"hashguard: error: {r.error}", file=sys.stderr)
            if r.matches:
                matched += 1
            for line in format_scan(r, args.format):
                if out is not None:
                    out.writerow(line)
                else:
                    print(line)
            progress.advance()
            if args.fail_fast and (r.matches or r.error is not None):
                break
    finally:
        results.close()
    progress.finish()
    if args.format == "text":
        took = time.monotonic() - started
        lists_desc = ", ".join(f"{h.list_id} v{h.version}" for h in handles)
        print(
            f"scanned {scanned} files against {lists_desc} in {took:.1f} s "
            f"({scanned / max(took, 1e-9):.1f} files/s): {matched} matched, {failed} failed"
        )
    if matched:
        return EXIT_MATCH
    return EXIT_INPUT_ERRORS if failed else EXIT_OK


def format_scan(r: ScanResult, fmt: str) -> list[Any]:
    """Output lines for one file: text lines, one JSON line, or CSV rows."""
    if fmt == "json":
        record = {
            "path": r.source,
            "pdq": r.pdq.hex if r.pdq else None,
            "quality": r.quality,
            "md5": r.md5,
            "sha256": r.sha256,
            "frames": r.frames,
            "low_quality": r.low_quality,
            "matches": [dataclasses.asdict(m) for m in r.matches],
            "error": r.error.reason if r.error else None,
        }
        return [json.dumps(record)]
    if fmt == "csv":
        if not r.matches:
            status = "error" if r.error else "clean"
            return [[r.source, status, *[""] * 8, r.error.reason if r.error else ""]]
        return [
            [r.source, "match", m.list_id, m.list_version, m.entry_id, m.category, m.kind,
             m.distance, m.transform, "" if m.frame is None else m.frame, ""]
            for m in r.matches
        ]  # fmt: skip
    lines = []
    for m in r.matches:
        how = f"{m.kind} distance {m.distance}" if m.kind == "pdq" else m.kind
        if m.kind == "pdq" and m.transform != "orig":
            how += f" ({m.transform})"
        if m.frame:
            how += f" frame {m.frame}"
        lines.append(
            f"MATCH {r.source}: {m.list_id} v{m.list_version} entry {m.entry_id} "
            f"[{m.category}] {how}"
        )
    return lines


def add_key_commands(commands: argparse._SubParsersAction[_Parser]) -> None:
    keys = commands.add_parser("keys", help="publisher and device keys")
    sub = keys.add_subparsers(dest="keys_command", required=True, parser_class=_Parser)
    g = sub.add_parser(
        "generate",
        help="generate a key",
        description=(
            "root: the long-lived Ed25519 key apps trust (keep root.key offline). signing: an "
            "Ed25519 key that signs bundles, certified by the root (--root) for --days. app: a "
            "symmetric content key. device: an X25519 key pair that bundles are sealed to. "
            "Secret files are hex, readable by their owner only; they are never printed."
        ),
    )
    g.add_argument("kind", choices=["root", "signing", "app", "device"])
    g.add_argument("--out", type=Path, required=True, help="folder for the key files")
    g.add_argument("--root", type=Path, help="root.key, to certify a signing key")
    g.add_argument("--days", type=int, default=90, help="signing certificate validity")
    g.set_defaults(run=run_keys_generate)


def run_keys_generate(args: argparse.Namespace) -> int:
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    if args.kind in ("root", "signing", "device"):
        pair = (
            lists.generate_device_key() if args.kind == "device" else lists.generate_ed25519_key()
        )
        if args.kind == "signing":
            if args.root is None:
                build_parser().error("a signing key needs --root ROOT.key to certify it")
            now = int(time.time())
            root = publish.read_key(args.root)
            cert = lists.issue_certificate(root, pair.public, now - 300, now + args.days * DAY)
            publish.write_key(out / "signing.cert", cert, secret=False)
        publish.write_key(out / f"{args.kind}.key", pair.secret, secret=True)
        publish.write_key(out / f"{args.kind}.pub", pair.public, secret=False)
        print(f"{args.kind} public key {pair.public.hex()} written to {out}")
    else:
        publish.write_key(out / "app.key", lists.generate_app_key(), secret=True)
        print(f"app key written to {out / 'app.key'}")
    return EXIT_OK


def add_list_commands(commands: argparse._SubParsersAction[_Parser]) -> None:
    lst = commands.add_parser("list", help="build, inspect and verify hash-list bundles")
    sub = lst.add_subparsers(dest="list_command", required=True, parser_class=_Parser)

    def sealing(p: argparse.ArgumentParser) -> None:
        p.add_argument("--out", type=Path, required=True, help="bundle file to write")
        p.add_argument("--list-id", required=True)
        p.add_argument("--version", type=int, required=True)
        p.add_argument("--signing-key", type=Path, required=True, help="signing.key")
        p.add_argument("--certificate", type=Path, required=True, help="signing.cert")
        p.add_argument("--app-key", type=Path, action="append", default=[], help="app.key")
        p.add_argument("--device-public", type=Path, action="append", default=[], help="device.pub")
        p.add_argument("--expires-days", type=float, default=30.0)
        p.add_argument("--threshold", type=int, default=31, help="default PDQ threshold")
        p.add_argument("--min-quality", type=int, default=50)
        p.add_argument("--format", choices=["csv", "te"], default="csv")
        p.add_argument("--category", default="unknown", help="category for --format te")
        p.add_argument("--source", default=None, help="source for --format te")
        p.add_argument(
            "--allow-suspicious",
            action="store_true",
            help="accept the all-zero PDQ hash and hashes of quality below 50",
        )

    b = sub.add_parser(
        "build",
        help="a full bundle from a list source",
        description=(
            "SOURCE is a CSV with a header row and the columns "
            f"{', '.join(publish.CSV_COLUMNS)} (id, category and source required; at least "
            "one of pdq, md5, sha256 per row; threshold and quality optional), or with "
            "--format te a file of PDQ hex hashes, one per line."
        ),
    )
    b.add_argument("source", type=Path)
    sealing(b)
    b.set_defaults(run=run_list_build)

    d = sub.add_parser("delta", help="a delta bundle from two versions of a list source")
    d.add_argument("old", type=Path)
    d.add_argument("new", type=Path)
    d.add_argument("--base-version", type=int, required=True)
    sealing(d)
    d.set_defaults(run=run_list_delta)

    for name, what in (("verify", "verify and decrypt"), ("inspect", "show the header of")):
        v = sub.add_parser(name, help=f"{what} a bundle")
        v.add_argument("bundle", type=Path)
        v.add_argument("--root-key", type=Path, required=True, help="root.pub")
        v.add_argument("--app-key", type=Path, help="app.key")
        v.add_argument("--device-key", type=Path, help="device.key")
        v.add_argument("--list-id")
        v.set_defaults(run=run_list_verify if name == "verify" else run_list_inspect)

    u = sub.add_parser(
        "update",
        help="download, verify and install the newest list into a state folder",
        description=(
            "Fetches a delta for the installed version when --delta-url is given and one is "
            "published, the full bundle otherwise (conditional GET), verifies it and installs "
            "it crash-safely in the state folder; the last good list is always kept. Keys are "
            "hex files or env:NAME; they are never printed. Exit codes: 0 updated or already "
            "current, 2 the update failed (the last good list, if any, is kept), 64 bad "
            "command line."
        ),
    )
    u.add_argument("--state", type=Path, required=True, help="state folder")
    u.add_argument("--url", required=True, help="full bundle: http(s) URL, file: URL or path")
    u.add_argument("--delta-url", help="delta address with {version} for the installed version")
    u.add_argument(
        "--root-key",
        action="append",
        required=True,
        help="root.pub, a file or env:NAME (repeat to trust several roots during a rotation)",
    )
    opener = u.add_mutually_exclusive_group(required=True)
    opener.add_argument("--app-key", help="app.key, a file or env:NAME")
    opener.add_argument("--device-key", help="device.key, a file or env:NAME")
    u.add_argument("--list-id", help="default: the one list already in the state folder")
    u.add_argument(
        "--max-bytes", type=int, default=lists.DEFAULT_MAX_BUNDLE_BYTES, help="download size cap"
    )
    u.add_argument(
        "--watch",
        type=float,
        metavar="SECONDS",
        help="keep running, checking every SECONDS (plus up to 10%% jitter) until interrupted",
    )
    u.set_defaults(run=run_list_update)


def _source(args: argparse.Namespace, path: Path) -> list[lists.ListEntry]:
    if args.format == "te":
        return publish.read_te_hex(
            path,
            category=args.category,
            source=args.source or path.stem,
            allow_suspicious=args.allow_suspicious,
        )
    return publish.read_csv(path, allow_suspicious=args.allow_suspicious)


def _seal(args: argparse.Namespace, **kw: object) -> int:
    signer = lists.CertifiedSigner(
        publish.read_key(args.signing_key), publish.read_key(args.certificate, 120)
    )
    if not args.app_key and not args.device_public:
        build_parser().error("give at least one --app-key or --device-public")
    now = int(time.time())
    bundle = lists.seal_bundle(
        list_id=args.list_id,
        version=args.version,
        signer=signer,
        app_keys=[publish.read_key(p) for p in args.app_key],
        device_publics=[publish.read_key(p) for p in args.device_public],
        created=now,
        expires=now + int(args.expires_days * DAY),
        default_threshold=args.threshold,
        min_quality=args.min_quality,
        **kw,  # type: ignore[arg-type]
    )
    publish.write_atomically(args.out, bundle)
    print(f"{args.out}: {len(bundle)} bytes, list {args.list_id} version {args.version}")
    return EXIT_OK


def run_list_build(args: argparse.Namespace) -> int:
    return _seal(args, entries=_source(args, args.source))


def run_list_delta(args: argparse.Namespace) -> int:
    old = {e.id: e for e in _source(args, args.old)}
    new = {e.id: e for e in _source(args, args.new)}
    changed = [e for i, e in new.items() if old.get(i) != e]
    removed = sorted(set(old) - set(new))
    print(f"delta: {len(changed)} added or changed, {len(removed)} removed")
    return _seal(args, entries=changed, tombstones=removed, base_version=args.base_version)


def _open_args(args: argparse.Namespace) -> dict[str, object]:
    return {
        "verify_key": publish.read_key(args.root_key),
        "content_key": publish.read_key(args.app_key) if args.app_key else None,
        "device_key": publish.read_key(args.device_key) if args.device_key else None,
        "list_id": args.list_id,
        "allow_stale": True,
    }


def run_list_verify(args: argparse.Namespace) -> int:
    if not args.app_key and not args.device_key:
        build_parser().error("verify needs --app-key or --device-key")
    hl = lists.HashList.open(args.bundle, **_open_args(args))  # type: ignore[arg-type]
    print(f"OK: {hl!r}")
    return EXIT_OK


def run_list_inspect(args: argparse.Namespace) -> int:
    info = lists.inspect_bundle(args.bundle, verify_key=publish.read_key(args.root_key))
    for k, v in info.items():
        print(f"{k}: {v}")
    if args.app_key or args.device_key:
        hl = lists.HashList.open(args.bundle, **_open_args(args))  # type: ignore[arg-type]
        for name, count in sorted(hl.categories.items()):
            print(f"category {name}: {count}")
    return EXIT_OK


def _state_list_id(state: Path) -> str | None:
    """The id of the one list in a state folder, if there is exactly one."""
    try:
        found = [
            p.name
            for p in state.iterdir()
            if (p / "state.json").exists() or (p / "state.prev.json").exists()
        ]
    except OSError:
        return None
    return found[0] if len(found) == 1 else None


def describe_update(result: update.UpdateResult) -> tuple[str, bool]:
    """A line about an update attempt, and whether it reports a failure."""
    name = f"list {result.list_id}"
    if result.status == "updated":
        before = f"version {result.previous_version}" if result.previous_version else "no list"
        line = f"{name}: updated from {before} to version {result.version} ({'+'.join(result.via)})"
        if result.error is not None:
            line += f"; then {type(result.error).__name__}: {result.error}"
        return line, False
    if result.status == "unchanged":
        return f"{name}: version {result.version} is current", False
    kept = (
        f"keeping version {result.version}" if result.version is not None else "no list installed"
    )
    return f"{name}: update failed ({type(result.error).__name__}: {result.error}); {kept}", True


def _print_result(result: update.UpdateResult) -> None:
    line, failed = describe_update(result)
    if failed:
        print(f"hashguard: error: {line}", file=sys.stderr, flush=True)
    else:
        print(line, flush=True)


def _print_stale(result: update.UpdateResult) -> None:
    print(
        f"hashguard: warning: list {result.list_id} version {result.version} has expired and "
        "no newer version could be installed",
        file=sys.stderr,
        flush=True,
    )


def run_list_update(args: argparse.Namespace) -> int:
    from hashguard import update  # the updater's networking, only when updating

    list_id = args.list_id or _state_list_id(args.state)
    if list_id is None:
        build_parser().error("give --list-id (the state folder does not hold exactly one list)")
    if args.watch is not None and not args.watch > 0:
        build_parser().error("--watch must be a positive number of seconds")
    if args.max_bytes < 1:
        build_parser().error("--max-bytes must be positive")
    try:
        source = update.ListSource(
            list_id,
            args.url,
            verify_key=[publish.read_key(k) for k in args.root_key],
            content_key=publish.read_key(args.app_key) if args.app_key else None,
            device_key=publish.read_key(args.device_key) if args.device_key else None,
            delta_url=args.delta_url,
            max_bundle_bytes=args.max_bytes,
        )
    except ValueError as e:
        build_parser().error(str(e))
    interval = args.watch or 3600.0
    updater = update.ListUpdater(
        source,
        args.state,
        interval=interval,
        jitter=interval / 10,
        on_updated=_print_result if args.watch else None,
        on_failed=_print_result if args.watch else None,
        on_stale=_print_stale if args.watch else None,
    )
    loaded = updater.status()[list_id]
    if loaded.loaded_from in ("previous", "recovered"):
        print(
            f"hashguard: warning: list {list_id}: the current state was unusable; using the "
            f"{loaded.loaded_from} generation (version {loaded.version})",
            file=sys.stderr,
        )
    if args.watch is None:
        result = updater.update_now(list_id)[list_id]
        _print_result(result)
        if result.stale:
            _print_stale(result)
        return EXIT_OK if result.ok else EXIT_INPUT_ERRORS
    print(f"list {list_id}: watching every {interval:g} s (Ctrl-C stops)", flush=True)
    updater.start()
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        updater.stop(timeout=5)
    return EXIT_OK


class Progress:
    """A one-line progress bar with rate and ETA on a terminal; silent otherwise."""

    def __init__(self, total: int, stream: TextIO) -> None:
        self.total = total
        self.done = 0
        self.stream = stream
        self.enabled = stream.isatty() and total > 1
        self.started = time.monotonic()
        self.shown = 0.0

    def advance(self) -> None:
        self.done += 1
        now = time.monotonic()
        if self.enabled and (now - self.shown > 0.1 or self.done == self.total):
            self.shown = now
            rate = self.done / max(now - self.started, 1e-9)
            eta = (self.total - self.done) / rate if rate > 0 else 0.0
            width = 30
            filled = width * self.done // max(self.total, 1)
            bar = "#" * filled + "-" * (width - filled)
            self.stream.write(
                f"\r[{bar}] {self.done}/{self.total} {rate:.1f} files/s ETA {eta:.0f}s"
            )
            self.stream.flush()

    def clear(self) -> None:
        if self.enabled and self.shown:
            self.stream.write("\r\x1b[K")

    def finish(self) -> None:
        if self.enabled and self.shown:
            self.stream.write("\n")
            self.stream.flush()


if __name__ == "__main__":
    sys.exit(main())
