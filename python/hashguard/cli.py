"""The ``hashguard`` command line: argument handling and output only.

Exit codes (every command):
  0   success
  2   one or more inputs could not be processed (each reported on stderr); the rest were
  64  bad command line (unknown option, missing argument)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import NoReturn, TextIO

from hashguard import __version__
from hashguard.errors import ImageError
from hashguard.hashing import Fingerprint, fingerprint, map_ordered

EXIT_OK = 0
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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.run(args)
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
