"""Hash drift and speed of DCT-scaled JPEG decoding against full decoding.

What is measured
    For every JPEG under the given folders, the PDQ hash of a full decode
    (``hash_image(data)``, bit-identical to the reference) and of a DCT-scaled decode at each
    short-side floor S (``hash_image(data, min_side=S)``: libjpeg decodes at the smallest of
    1/2, 1/4, 1/8 that keeps the short side >= S). Per S it reports how many photos were
    actually scaled, the Hamming drift in bits from the full decode's hash (mean, p95 and max,
    over all photos and over the scaled ones), the change in PDQ quality, and the median
    decode+hash time per photo against the full decode. See docs/decoding.md for the results.

Inputs
    The file bytes are read once, outside the timed region; each timed call decodes from bytes
    in memory and hashes (no disk I/O). Folders are searched recursively for ``*.jpg`` and
    ``*.jpeg``; each folder given is reported as a set, with a drift line per subfolder.
    ``../shared/tools/build_photo_corpus.sh /tmp/hg-corpus`` builds a real-photo corpus;
    ``--upscale-to DEST`` writes copies of it resized to phone size (long side 4032, LANCZOS),
    so that drift and speed at 12 MP are measured too. Never commit the images.

Timing
    Single thread, garbage collection off, one untimed warm-up call. Each call is timed by the
    thread's CPU time (``time.thread_time``), which other processes on a busy machine do not
    inflate, and by wall time (``time.perf_counter``); the report shows CPU time and the JSON
    holds both. ``--repeat N`` keeps the fastest of N calls. A floor that selects the same
    scale as another (or as the full decode) reuses that measurement: it is the same decode.

Full-size geometry
    A scaled decode is hashed at the full image's geometry (``Pixels.full_size``,
    ``hg_pdq_hash_scaled``): PDQ's blur windows (ceil(side/128)) and its 64 sample positions
    follow the image size, and hashing the small image as it is drifts by tens of bits.

Near-duplicates (``--near-dup``)
    Each photo's full decode is shrunk to half size and re-encoded as JPEG q=70, and that copy's
    full-decode hash stands in for a list entry. A "flip" is a photo whose match at distance
    <= 31 against its own near-duplicate differs between the full and the scaled decode.

Examples
    .venv/bin/python bench/drift.py /tmp/hg-corpus                       # ~10 s
    .venv/bin/python bench/drift.py /tmp/hg-corpus --upscale-to /tmp/hg-corpus-12mp-q92
    .venv/bin/python bench/drift.py /tmp/hg-corpus-12mp-q92 --limit 200  # ~1-1.5 min
    .venv/bin/python bench/drift.py DIR... --floors 256,512 --near-dup --json out.json
"""

from __future__ import annotations

import argparse
import gc
import io
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np
from PIL import Image, features

import hashguard
from hashguard import PdqHash, hash_image
from hashguard.image import DEFAULT_MIN_SIDE, dct_scale, load

DEFAULT_FLOORS: Final = (128, 256, 320, 352, 512, 1024)
MATCH_THRESHOLD: Final = 31
JPEG_SUFFIXES: Final = (".jpg", ".jpeg")


@dataclass
class Photo:
    set: str
    file: str
    width: int
    height: int
    mode: str
    progressive: bool
    full_hash: str
    full_quality: int
    full_ms: float
    full_wall_ms: float
    scale: dict[int, int] = field(default_factory=dict)
    drift: dict[int, int] = field(default_factory=dict)
    quality: dict[int, int] = field(default_factory=dict)
    ms: dict[int, float] = field(default_factory=dict)
    wall_ms: dict[int, float] = field(default_factory=dict)
    near_dup_full: int | None = None
    near_dup: dict[int, int] = field(default_factory=dict)


def find_jpegs(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in JPEG_SUFFIXES and p.is_file())


def spread(items: list[Path], limit: int | None) -> list[Path]:
    """``limit`` items evenly spread over the sorted list (all of them without a limit)."""
    if limit is None or limit >= len(items):
        return items
    step = len(items) / limit
    return [items[int(i * step)] for i in range(limit)]


def timed(call: Callable[[], PdqHash], repeat: int) -> tuple[PdqHash, float, float]:
    """The result and the fastest CPU and wall time of ``repeat`` calls, in milliseconds."""
    best_cpu = best_wall = float("inf")
    result = None
    for _ in range(repeat):
        c0, w0 = time.thread_time(), time.perf_counter()
        result = call()
        c1, w1 = time.thread_time(), time.perf_counter()
        best_cpu = min(best_cpu, (c1 - c0) * 1e3)
        best_wall = min(best_wall, (w1 - w0) * 1e3)
    assert result is not None
    return result, best_cpu, best_wall


def near_duplicate_hash(data: bytes) -> PdqHash:
    """Full-decode hash of a half-size, JPEG q=70 copy of the photo."""
    arr = load(data).array
    img = Image.fromarray(np.ascontiguousarray(arr[:, :, :3]) if arr.ndim == 3 else arr)
    half = img.resize((max(1, img.width // 2), max(1, img.height // 2)), Image.Resampling.BOX)
    buf = io.BytesIO()
    half.save(buf, "JPEG", quality=70)
    return hash_image(buf.getvalue())


def measure_photo(
    set_name: str,
    root: Path,
    path: Path,
    floors: Sequence[int],
    repeat: int,
    near_dup: bool,
) -> Photo:
    data = path.read_bytes()
    with Image.open(io.BytesIO(data)) as img:
        width, height = img.size
        mode = img.mode
        progressive = bool(img.info.get("progressive") or img.info.get("progression"))
    full, full_cpu, full_wall = timed(lambda: hash_image(data), repeat)
    assert full.quality is not None
    photo = Photo(
        set=set_name,
        file=str(path.relative_to(root)),
        width=width,
        height=height,
        mode=mode,
        progressive=progressive,
        full_hash=full.hex,
        full_quality=full.quality,
        full_ms=full_cpu,
        full_wall_ms=full_wall,
    )
    by_scale: dict[int, tuple[PdqHash, float, float]] = {1: (full, full_cpu, full_wall)}
    for s in floors:
        scale = dct_scale(width, height, s)
        if scale not in by_scale:
            by_scale[scale] = timed(lambda s=s: hash_image(data, min_side=s), repeat)  # type: ignore[misc]
        h, cpu, wall = by_scale[scale]
        assert h.quality is not None
        photo.scale[s] = scale
        photo.drift[s] = full - h
        photo.quality[s] = h.quality - full.quality
        photo.ms[s] = cpu
        photo.wall_ms[s] = wall
    if near_dup:
        ref = near_duplicate_hash(data)
        photo.near_dup_full = full - ref
        for s in floors:
            photo.near_dup[s] = by_scale[photo.scale[s]][0] - ref
    return photo


def p95(values: Sequence[float]) -> float:
    """95th percentile by nearest rank (a value that occurs in the data)."""
    if not values:
        return float("nan")
    return float(np.percentile(np.asarray(values), 95, method="inverted_cdf"))


def drift_stats(values: Sequence[int]) -> dict[str, float]:
    if not values:
        return {"n": 0, "mean": float("nan"), "p95": float("nan"), "max": float("nan")}
    return {
        "n": len(values),
        "mean": float(np.mean(values)),
        "p95": p95(values),
        "max": float(max(values)),
    }


def summarise(photos: Sequence[Photo], floors: Sequence[int]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "photos": len(photos),
        "full_ms_median": statistics.median(p.full_ms for p in photos),
        "full_wall_ms_median": statistics.median(p.full_wall_ms for p in photos),
        "short_side_median": statistics.median(min(p.width, p.height) for p in photos),
        "floors": {},
    }
    total_full = sum(p.full_ms for p in photos)
    for s in floors:
        scaled = [p for p in photos if p.scale[s] > 1]
        row: dict[str, Any] = {
            "scaled": len(scaled),
            "scales": {str(k): sum(p.scale[s] == k for p in photos) for k in (1, 2, 4, 8)},
            "drift_all": drift_stats([p.drift[s] for p in photos]),
            "drift_scaled": drift_stats([p.drift[s] for p in scaled]),
            "drift_all_q50": drift_stats([p.drift[s] for p in photos if p.full_quality >= 50]),
            "quality_change_mean": float(np.mean([p.quality[s] for p in photos])),
            "quality_change_min": min(p.quality[s] for p in photos),
            "quality_change_max": max(p.quality[s] for p in photos),
            "ms_median": statistics.median(p.ms[s] for p in photos),
            "wall_ms_median": statistics.median(p.wall_ms[s] for p in photos),
            "speedup_total": total_full / max(sum(p.ms[s] for p in photos), 1e-9),
        }
        with_nd = [p for p in photos if p.near_dup_full is not None]
        if with_nd:
            row["near_dup_flips"] = sum(
                (p.near_dup_full <= MATCH_THRESHOLD) != (p.near_dup[s] <= MATCH_THRESHOLD)
                for p in with_nd
                if p.near_dup_full is not None
            )
            row["near_dup_lost"] = sum(
                p.near_dup_full <= MATCH_THRESHOLD < p.near_dup[s]
                for p in with_nd
                if p.near_dup_full is not None
            )
            row["near_dup_matched_full"] = sum(
                p.near_dup_full <= MATCH_THRESHOLD for p in with_nd if p.near_dup_full is not None
            )
        out["floors"][str(s)] = row
    return out


def fmt_drift(d: dict[str, float]) -> str:
    if not d["n"]:
        return f"{'-':>5} {'-':>3} {'-':>3}"
    return f"{d['mean']:5.2f} {d['p95']:3.0f} {d['max']:3.0f}"


def print_report(name: str, photos: Sequence[Photo], floors: Sequence[int]) -> dict[str, Any]:
    summary = summarise(photos, floors)
    print(
        f"\n== {name}: {len(photos)} JPEGs, short side median {summary['short_side_median']:.0f}"
        f" px; full decode+hash median {summary['full_ms_median']:.1f} ms CPU"
        f" ({summary['full_wall_ms_median']:.1f} ms wall)"
    )
    nd = any(p.near_dup_full is not None for p in photos)
    print(
        "     S  scaled       drift all      drift scaled    quality chg   median ms  speed-up"
        + ("  flips@31" if nd else "")
    )
    print("                   mean p95 max    mean p95 max    mean min max    (CPU)     (total)")
    for s in floors:
        r = summary["floors"][str(s)]
        line = (
            f"{s:6d}  {r['scaled']:4d}/{len(photos):<4d} {fmt_drift(r['drift_all'])}"
            f"    {fmt_drift(r['drift_scaled'])}   {r['quality_change_mean']:5.2f}"
            f" {r['quality_change_min']:3d} {r['quality_change_max']:3d}"
            f"    {r['ms_median']:6.1f}   {r['speedup_total']:6.2f}x"
        )
        if nd:
            line += f"  {r['near_dup_flips']:4d} ({r['near_dup_lost']} lost)"
        print(line)
    # Drift per subfolder (e.g. general/ and astro/ of the corpus).
    groups: dict[str, list[Photo]] = {}
    for p in photos:
        groups.setdefault(p.file.split(os.sep)[0] if os.sep in p.file else ".", []).append(p)
    if len(groups) > 1:
        for g, members in sorted(groups.items()):
            cells = "  ".join(
                f"S={s}: {fmt_drift(drift_stats([p.drift[s] for p in members]))}" for s in floors
            )
            print(f"  {g} ({len(members)}) mean/p95/max  {cells}")
    worst = sorted(photos, key=lambda p: -max(p.drift.values()))[:5]
    print("  largest drift: " + ", ".join(f"{p.file} {dict(p.drift)}" for p in worst))
    return summary


def measure_set(
    root: Path,
    floors: Sequence[int],
    limit: int | None,
    repeat: int,
    near_dup: bool,
) -> list[Photo]:
    paths = spread(find_jpegs(root), limit)
    if not paths:
        raise SystemExit(f"no JPEGs under {root}")
    name = str(root)
    # Warm-up: first calls load code and fill caches.
    for s in (None, *floors):
        hash_image(paths[0].read_bytes(), min_side=s)
    photos = []
    start = time.perf_counter()
    for i, path in enumerate(paths, 1):
        photos.append(measure_photo(name, root, path, floors, repeat, near_dup))
        if sys.stderr.isatty():
            print(f"\r{name}: {i}/{len(paths)}", end="", file=sys.stderr, flush=True)
    if sys.stderr.isatty():
        print(file=sys.stderr)
    print(f"[{name}: measured in {time.perf_counter() - start:.0f} s]", file=sys.stderr)
    return photos


# ---------------------------------------------------------------------------------------------
# The upscaled (phone-size) copies
# ---------------------------------------------------------------------------------------------


def upscale_one(job: tuple[Path, Path, int, int, str]) -> str:
    src, dest, long_side, quality, subsampling = job
    if dest.exists():
        return "kept"
    with Image.open(src) as img:
        rgb = img.convert("RGB")
    scale = long_side / max(rgb.size)
    size = (max(1, round(rgb.width * scale)), max(1, round(rgb.height * scale)))
    big = rgb.resize(size, Image.Resampling.LANCZOS)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(".tmp")
    big.save(tmp, "JPEG", quality=quality, subsampling=subsampling)
    tmp.replace(dest)
    return "written"


def upscale(
    src_root: Path,
    dest_root: Path,
    long_side: int,
    quality: int,
    subsampling: str,
    workers: int,
    limit: int | None,
) -> None:
    jobs = [
        (p, dest_root / p.relative_to(src_root), long_side, quality, subsampling)
        for p in spread(find_jpegs(src_root), limit)
    ]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(upscale_one, jobs, chunksize=4))
    print(
        f"{dest_root}: {results.count('written')} written, {results.count('kept')} already there"
        f" (long side {long_side}, JPEG q={quality}, {subsampling}, LANCZOS)"
    )


# ---------------------------------------------------------------------------------------------


def parse_floors(text: str) -> list[int]:
    try:
        floors = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of integers: {text!r}") from None
    if not floors or min(floors) < 1:
        raise argparse.ArgumentTypeError("floors must be positive integers")
    return sorted(set(floors))


def environment() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "pillow": Image.__version__,  # type: ignore[attr-defined]
        "libjpeg_turbo": features.version("libjpeg_turbo"),
        "hashguard": getattr(hashguard, "__version__", None),
        "default_min_side": DEFAULT_MIN_SIDE,
        "loadavg": os.getloadavg() if hasattr(os, "getloadavg") else None,
    }


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("corpus", nargs="+", type=Path, help="folders of JPEGs, searched recursively")
    ap.add_argument(
        "--floors",
        type=parse_floors,
        default=list(DEFAULT_FLOORS),
        help="comma-separated short-side floors S (default: %(default)s)",
    )
    ap.add_argument("--json", type=Path, help="write the summary and every photo's numbers here")
    ap.add_argument(
        "--limit", type=int, help="at most N photos per set (or to upscale), evenly spread"
    )
    ap.add_argument("--repeat", type=int, default=1, help="keep the fastest of N calls (default 1)")
    ap.add_argument(
        "--near-dup", action="store_true", help="count match flips at 31 against near-duplicates"
    )
    up = ap.add_argument_group("making phone-size copies instead of measuring")
    up.add_argument("--upscale-to", type=Path, metavar="DEST", help="write resized copies here")
    up.add_argument("--long-side", type=int, default=4032)
    up.add_argument("--quality", type=int, default=92)
    up.add_argument("--subsampling", default="4:4:4", choices=["4:4:4", "4:2:2", "4:2:0"])
    up.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = ap.parse_args(argv)

    if args.upscale_to is not None:
        if len(args.corpus) != 1:
            ap.error("--upscale-to takes one source folder")
        upscale(
            args.corpus[0],
            args.upscale_to,
            args.long_side,
            args.quality,
            args.subsampling,
            args.workers,
            args.limit,
        )
        return 0
    if args.repeat < 1 or (args.limit is not None and args.limit < 1):
        ap.error("--repeat and --limit must be at least 1")

    env = environment()
    print(
        f"hashguard drift: Pillow {env['pillow']} (libjpeg-turbo {env['libjpeg_turbo']}),"
        f" Python {env['python']}, {env['processor']}, {env['cpus']} CPUs,"
        f" load average {env['loadavg']}; floors {args.floors}; p95 = nearest rank;"
        f" times: single thread, CPU time, decode from bytes in memory + hash"
    )
    gc_was_enabled = gc.isenabled()
    gc.disable()
    report: dict[str, Any] = {"environment": env, "floors": args.floors, "sets": {}}
    try:
        for root in args.corpus:
            photos = measure_set(root, args.floors, args.limit, args.repeat, args.near_dup)
            summary = print_report(str(root), photos, args.floors)
            report["sets"][str(root)] = {
                "summary": summary,
                "photos": [asdict(p) for p in photos],
            }
            gc.collect()
    finally:
        if gc_was_enabled:
            gc.enable()
    report["environment"]["loadavg_end"] = os.getloadavg() if hasattr(os, "getloadavg") else None
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=1), encoding="utf-8")
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
