"""Publisher tools: reading list sources (CSV, ThreatExchange PDQ hex), computing deltas
between sources, key files, and writing bundles atomically."""

from __future__ import annotations

import csv
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from hashguard.errors import Error, HashFormatError
from hashguard.hashing import PdqHash
from hashguard.lists import ListEntry

__all__ = [
    "CSV_COLUMNS",
    "SourceError",
    "read_csv",
    "read_key",
    "read_te_hex",
    "write_atomically",
    "write_key",
]

#: Columns of a list source CSV (header row required; at least one fingerprint per row).
CSV_COLUMNS = ("pdq", "md5", "sha256", "id", "category", "source", "threshold", "quality")
ZERO_PDQ = "0" * 64


class SourceError(Error):
    """A list source has invalid or suspicious rows; ``problems`` lists them by line."""

    def __init__(self, path: str, problems: list[str]) -> None:
        shown = "\n".join(f"  {p}" for p in problems[:50])
        more = f"\n  ... and {len(problems) - 50} more" if len(problems) > 50 else ""
        super().__init__(f"{path}: {len(problems)} invalid rows\n{shown}{more}")
        self.problems = problems


@dataclass
class _Checker:
    allow_suspicious: bool
    problems: list[str]

    def pdq(self, line: int, text: str, quality: str | None) -> PdqHash | None:
        if not text:
            return None
        try:
            h = PdqHash.from_hex(text)
        except HashFormatError as e:
            self.problems.append(f"line {line}: pdq: {e}")
            return None
        if not self.allow_suspicious:
            if h.hex == ZERO_PDQ:
                self.problems.append(f"line {line}: the all-zero PDQ hash matches blank images")
            if quality is not None and quality.strip() and int(quality) < 50:
                self.problems.append(f"line {line}: PDQ quality {quality} is below 50")
        return h

    def digest(self, line: int, name: str, text: str, size: int) -> bytes | None:
        if not text:
            return None
        try:
            raw = bytes.fromhex(text)
        except ValueError:
            raw = b""
        if len(raw) != size:
            self.problems.append(f"line {line}: {name} must be {2 * size} hex digits")
            return None
        return raw


def read_csv(path: str | os.PathLike[str], *, allow_suspicious: bool = False) -> list[ListEntry]:
    """Entries from a CSV with the columns in :data:`CSV_COLUMNS` (``threshold`` and
    ``quality`` optional). Every invalid row is reported, by line, in one :class:`SourceError`."""
    check = _Checker(allow_suspicious, [])
    out: list[ListEntry] = []
    seen: set[int] = set()
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = {"id", "category", "source"} - set(reader.fieldnames or [])
        if missing:
            raise SourceError(str(path), [f"line 1: missing columns {sorted(missing)}"])
        for row in reader:
            line = reader.line_num
            try:
                entry_id = int(row["id"])
                if not 0 <= entry_id < 2**64:
                    raise ValueError
            except ValueError:
                check.problems.append(f"line {line}: id must be an integer 0..2^64-1")
                continue
            if entry_id in seen:
                check.problems.append(f"line {line}: duplicate id {entry_id}")
            seen.add(entry_id)
            pdq = check.pdq(line, (row.get("pdq") or "").strip(), row.get("quality"))
            md5 = check.digest(line, "md5", (row.get("md5") or "").strip(), 16)
            sha = check.digest(line, "sha256", (row.get("sha256") or "").strip(), 32)
            if not any((row.get(k) or "").strip() for k in ("pdq", "md5", "sha256")):
                check.problems.append(f"line {line}: no fingerprint (pdq, md5 or sha256)")
            threshold = (row.get("threshold") or "").strip()
            if threshold and not (threshold.isdigit() and int(threshold) <= 255):
                check.problems.append(f"line {line}: threshold must be 0..255")
                threshold = ""
            for col in ("category", "source"):
                if not 1 <= len((row[col] or "").encode()) <= 64:
                    check.problems.append(f"line {line}: {col} must be 1-64 bytes")
            out.append(
                ListEntry(
                    entry_id,
                    row["category"] or "",
                    row["source"] or "",
                    pdq=pdq,
                    md5=md5,
                    sha256=sha,
                    threshold=int(threshold) if threshold else None,
                )
            )
    if check.problems:
        raise SourceError(str(path), check.problems)
    return out


def read_te_hex(
    path: str | os.PathLike[str],
    *,
    category: str,
    source: str,
    first_id: int = 1,
    allow_suspicious: bool = False,
) -> list[ListEntry]:
    """Entries from a ThreatExchange-style file of PDQ hex hashes, one per line (anything after
    a comma, such as a quality, is read as the quality). Ids count up from ``first_id``."""
    check = _Checker(allow_suspicious, [])
    out: list[ListEntry] = []
    for line, text in _lines(path):
        hex_part, _, rest = text.partition(",")
        quality = rest.split(",")[0] if rest else None
        pdq = check.pdq(line, hex_part.strip(), quality)
        if pdq is not None:
            out.append(ListEntry(first_id + len(out), category, source, pdq=pdq))
    if check.problems:
        raise SourceError(str(path), check.problems)
    return out


def _lines(path: str | os.PathLike[str]) -> Iterator[tuple[int, str]]:
    with open(path, encoding="utf-8") as f:
        for n, raw in enumerate(f, 1):
            text = raw.strip()
            if text and not text.startswith("#"):
                yield n, text


def write_atomically(path: str | os.PathLike[str], data: bytes, *, secret: bool = False) -> None:
    """Writes to a temporary file beside ``path``, fsyncs, renames, fsyncs the folder: a
    crash or a full disk leaves either the old file or the new one, never a torn one."""
    target = Path(path)
    fd, tmp = tempfile.mkstemp(dir=target.parent or ".", prefix=f".{target.name}.")
    try:
        os.fchmod(fd, 0o600 if secret else 0o644)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dirfd = os.open(target.parent or ".", os.O_RDONLY)
    try:
        os.fsync(dirfd)
    finally:
        os.close(dirfd)


def write_key(path: str | os.PathLike[str], key: bytes, *, secret: bool) -> None:
    """A key file: hex on one line; secrets are readable by the owner only."""
    write_atomically(path, (key.hex() + "\n").encode(), secret=secret)


def read_key(path: str | os.PathLike[str], size: int = 32) -> bytes:
    """A key from a hex key file (or ``env:NAME`` for an environment variable, for CI)."""
    text = str(path)
    raw = os.environ.get(text[4:], "") if text.startswith("env:") else Path(path).read_text()
    try:
        key = bytes.fromhex(raw.strip())
    except ValueError:
        key = b""
    if len(key) != size:
        raise Error(f"{'environment variable ' + text[4:] if text.startswith('env:') else path}: "
                    f"expected {size} bytes of hex")  # fmt: skip
    return key
