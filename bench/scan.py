"""Scanner throughput: files per second from JPEG files on disk, against the usual pipelines.

What is measured
    Files per second for one worker hashing a folder of JPEG files one file at a time, from the
    path to the result: reading the file, decoding it and hashing it, plus whatever else each
    contender does with it. Every contender gets the same folder, read from the page cache (each
    file is read once before timing starts), and runs serially in this Python thread. A pass is
    one call per file of the folder; files/s is the number of files divided by the median pass
    time. This is end-to-end throughput, unlike bench/pdq.py, which times hashing alone.

Contenders (each a function path -> result)
    * ``hashguard default``: ``Scanner(hash_list).scan(path)`` with the default options
      (``dihedral=True``, ``exact=False``) against a small real list (a signed, encrypted bundle
      of a dozen entries made with ``hashguard.lists`` and opened with ``HashList.open``). One scan
      reads the file, takes its MD5 and SHA-256, decodes it (a large JPEG at a reduced DCT scale,
      see ``hashguard.image.dct_scale`` and ``DEFAULT_MIN_SIDE``), computes PDQ with all 8
      dihedral variants and matches them and the exact hashes against the list. The report
      prints the decode scale at each size: at scale 1/1 the default decodes in full, exactly
      as ``exact`` does.
    * ``hashguard exact``: the same with ``exact=True`` (always decodes in full).
    * ``Pillow + pdqhash``: ``pdqhash.compute(np.asarray(Image.open(path).convert("RGB")))``,
      how python-threatexchange and Meta's HMA hash a file (a full decode, one PDQ hash, no
      dihedral variants, no exact hashes, no matching).
    * ``perception PDQHash``: ``perception.hashers.PDQHash().compute(path, hash_format="hex")``
      (Thorn's perception: OpenCV's ``imread``, then the same pdqhash C++ core). OpenCV is set
      to one thread so that the comparison stays single-worker.
    * ``imagehash.phash``: ``imagehash.phash(Image.open(path))``, a 64-bit DCT hash rather than
      PDQ, included because it is the common choice in Python.

Inputs
    Folders of JPEG files at 4032x3024 (a 12 MP phone photo), 1920x1080 and 640x480, built in a
    temporary directory from the sample photos in ``examples/images``: file ``i`` is photo
    ``i mod 5``, mirrored every second time round and with the crop centre moving every fourth
    time, cropped to the aspect ratio, resized with Pillow's LANCZOS filter, given mild uniform
    noise from a seeded ``numpy.random.default_rng`` so that upscaled areas are not perfectly
    smooth, and saved as baseline JPEG at quality 90 with 4:2:0 chroma subsampling, as phones
    save them. A full run uses 10 files per size (each photo, then each photo mirrored),
    ``--quick`` 3. The SHA-256 of each folder's files is printed, so that two runs can be checked
    to have read the same bytes (with the same Pillow and libjpeg).

Timing
    One untimed warm-up call per contender on the first file, then passes over the folder, the
    contenders interleaved (one pass each in turn, starting with a different contender each
    round, so that a slow spell of the machine, or what one contender leaves in the caches for
    the next, is shared out), with garbage collection off during each pass. A contender keeps
    running passes until it has at least 5 and at least 2 s of them (``--quick``: 3 passes and
    0.3 s). A speed-up is the other row's median pass time divided by the hashguard row's.

Correctness sanity
    Printed per size, informational only: the Hamming distance between hashguard's exact hash
    and the Pillow + pdqhash hash of each file (0 or a few bits: pdqhash computes luma in double
    precision), between the default and the exact hash (0 where the default decodes in full),
    between perception's and pdqhash's (OpenCV and Pillow may decode slightly differently), and
    how many files each hashguard mode matched in the list (its PDQ entries are the source
    photos centre-cropped to each aspect ratio: the unmirrored centred files match directly, the
    mirrored ones through a dihedral variant).

Targets (issue: scanner throughput)
    At 4032x3024 on one worker, ``hashguard exact`` at least 4x the Pillow + pdqhash pipeline
    and ``hashguard default`` at least 12x; both modes faster than ``imagehash.phash`` at every
    size. A miss prints FAIL.

Exit status
    0 when every contender ran, even if a target is missed (a benchmark is not a test); 1 when a
    contender raised (or a scan reported an error); 2 for bad arguments, unreadable source
    photos or a list that could not be built.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import imagehash  # type: ignore[import-untyped,unused-ignore]
import numpy as np
import pdqhash  # type: ignore[import-untyped,unused-ignore]
from machine import cpu_model, package_version
from PIL import Image, ImageOps, features

import hashguard
from hashguard import lists
from hashguard.image import DEFAULT_MIN_SIDE, dct_scale
from hashguard.scan import Scanner, ScanResult

try:
    import cv2  # type: ignore[import-untyped,unused-ignore]
    from perception import hashers as perception_hashers  # type: ignore[import-untyped,unused-ignore]
except ImportError as e:  # a benchmark anchor, pinned in requirements-dev.txt
    PERCEPTION_MISSING: str | None = f"perception is not installed ({e})"
else:
    PERCEPTION_MISSING = None

#: Image sizes (width, height): a 12 MP phone photo, full HD and VGA.
SIZES: Final[tuple[tuple[int, int], ...]] = ((4032, 3024), (1920, 1080), (640, 480))

DEFAULT_IMAGES: Final = Path(__file__).resolve().parents[1] / "examples" / "images"

#: Noise added to every channel is uniform in [-NOISE_AMPLITUDE, +NOISE_AMPLITUDE].
NOISE_AMPLITUDE: Final = 3
JPEG_QUALITY: Final = 90
#: Crop centres (x, y) of the successive pairs of variants of each photo (the second variant of
#: each pair is mirrored).
CENTERINGS: Final = ((0.5, 0.5), (0.3, 0.4), (0.7, 0.6))


@dataclass(frozen=True)
class Budget:
    """Files per folder, and the passes each contender runs: at least ``min_passes`` and at
    least ``min_seconds`` of timed passes, at most ``max_passes``."""

    files: int
    min_passes: int
    min_seconds: float
    max_passes: int = 1000


FULL: Final = Budget(files=10, min_passes=5, min_seconds=2.0)
QUICK: Final = Budget(files=3, min_passes=3, min_seconds=0.3)

# Contender names. The two hashguard rows are the baselines of the speed-up columns.
HG_DEFAULT: Final = "hashguard default"
HG_EXACT: Final = "hashguard exact"
PIL_PDQ: Final = "Pillow + pdqhash"
PERCEPTION: Final = "perception PDQHash"
PHASH: Final = "imagehash.phash"
BASELINES: Final = (HG_DEFAULT, HG_EXACT)

#: The targets: the minimum speed-up of each hashguard mode over the Pillow + pdqhash pipeline
#: at the large size; both must also beat imagehash.phash at every size.
LARGE: Final = (4032, 3024)
LARGE_TARGET: Final = {HG_EXACT: 4.0, HG_DEFAULT: 12.0}

Contender = Callable[[str], object]


@dataclass
class Result:
    """The timed passes of one contender over one folder, or the error it raised."""

    name: str
    #: Seconds per pass (one call per file).
    passes: list[float] = field(default_factory=list)
    #: Seconds per call, one list per file, across passes.
    per_file: list[list[float]] = field(default_factory=list)
    #: What each file gave in the first timed pass (for the sanity checks).
    first: list[object] = field(default_factory=list)
    error: str | None = None
    #: The contender could not run here (not installed): not a crash.
    skipped: bool = False

    @property
    def median(self) -> float:
        return statistics.median(self.passes)

    def done(self, budget: Budget) -> bool:
        n = len(self.passes)
        return n >= budget.max_passes or (
            n >= budget.min_passes and sum(self.passes) >= budget.min_seconds
        )


@dataclass
class SizeReport:
    """Everything measured on one folder."""

    width: int
    height: int
    files: list[dict[str, Any]]
    results: dict[str, Result] = field(default_factory=dict)
    sanity: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.width}x{self.height}"

    @property
    def scale(self) -> int:
        return dct_scale(self.width, self.height, DEFAULT_MIN_SIDE)

    def speedup(self, name: str, baseline: str) -> float | None:
        """``name``'s median pass time over ``baseline``'s, or None when either did not run."""
        other, mine = self.results.get(name), self.results.get(baseline)
        if other is None or mine is None or other.error or mine.error:
            return None
        if not other.passes or not mine.passes:
            return None
        return other.median / mine.median


# ---------------------------------------------------------------------------------------------
# Inputs


def load_photos(folder: Path) -> list[tuple[str, Image.Image]]:
    photos = []
    for path in sorted(folder.glob("*.jpg")):
        with Image.open(path) as img:
            photos.append((path.stem, img.convert("RGB")))
    if not photos:
        raise OSError(f"no .jpg files in {folder}")
    return photos


def write_jpeg(
    photo: Image.Image, width: int, height: int, variant: int, seed: int, index: int, path: Path
) -> None:
    """One test file: the photo fitted to the size, lightly noised, saved as a phone would."""
    src = ImageOps.mirror(photo) if variant % 2 else photo
    centering = CENTERINGS[variant // 2 % len(CENTERINGS)]
    fitted = ImageOps.fit(src, (width, height), Image.Resampling.LANCZOS, centering=centering)
    base = np.asarray(fitted, dtype=np.int16)
    rng = np.random.default_rng([seed, width, height, index])
    noise = rng.integers(-NOISE_AMPLITUDE, NOISE_AMPLITUDE + 1, size=base.shape, dtype=np.int16)
    noisy = np.clip(base + noise, 0, 255).astype(np.uint8)
    Image.fromarray(noisy).save(path, "JPEG", quality=JPEG_QUALITY, subsampling="4:2:0")


def make_folder(
    photos: list[tuple[str, Image.Image]], width: int, height: int, n: int, seed: int, root: Path
) -> list[Path]:
    folder = root / f"{width}x{height}"
    folder.mkdir()
    paths = []
    for i in range(n):
        stem, photo = photos[i % len(photos)]
        variant = i // len(photos)
        path = folder / f"{i:02d}-{stem}-v{variant}.jpg"
        write_jpeg(photo, width, height, variant, seed, i, path)
        paths.append(path)
    return paths


def describe_files(paths: list[Path]) -> list[dict[str, Any]]:
    """Name, size and SHA-256 of each file; reading them also puts them in the page cache."""
    out = []
    for p in paths:
        data = p.read_bytes()
        out.append({"name": p.name, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()})
    return out


def folder_digest(files: list[dict[str, Any]]) -> str:
    return hashlib.sha256("".join(f["sha256"] for f in files).encode()).hexdigest()


@dataclass(frozen=True)
class BenchList:
    """The opened list and what it holds."""

    hash_list: lists.HashList
    entries: int
    bundle_bytes: int


def build_list(
    photos: list[tuple[str, Image.Image]], sizes: Sequence[tuple[int, int]], root: Path
) -> BenchList:
    """A small real list, sealed, written to disk and opened as a device would: for each source
    photo and each aspect ratio measured, the PDQ hash of the photo centre-cropped to it (so the
    first file made from each photo matches directly and the second, mirrored, through a
    dihedral variant), plus an MD5 and a SHA-256 entry that no test file has."""
    now = int(time.time())
    root_key = lists.generate_ed25519_key()
    signing = lists.generate_ed25519_key()
    cert = lists.issue_certificate(root_key.secret, signing.public, now - 60, now + 86_400)
    signer = lists.CertifiedSigner(signing.secret, cert)
    app = lists.generate_app_key()
    shapes = sorted({(640, max(1, round(640 * h / w))) for w, h in sizes})
    entries = [
        lists.ListEntry(
            len(shapes) * i + j + 1,
            "bench",
            "examples",
            pdq=hashguard.hash_image(ImageOps.fit(photo, shape, Image.Resampling.LANCZOS)),
        )
        for i, (_, photo) in enumerate(photos)
        for j, shape in enumerate(shapes)
    ]
    n = len(entries)
    entries.append(lists.ListEntry(n + 1, "doc", "bench", md5=hashlib.md5(b"doc").digest()))
    entries.append(lists.ListEntry(n + 2, "doc", "bench", sha256=hashlib.sha256(b"doc").digest()))
    bundle = lists.seal_bundle(
        list_id="bench-scan",
        version=1,
        entries=entries,
        signer=signer,
        app_keys=[app],
        expires=now + 86_400,
    )
    path = root / "bench-scan.hgl"
    path.write_bytes(bundle)
    hl = lists.HashList.open(path, verify_key=root_key.public, content_key=app)
    return BenchList(hl, len(entries), len(bundle))


# ---------------------------------------------------------------------------------------------
# Contenders


def contenders(hash_list: lists.HashList) -> list[tuple[str, Contender | None]]:
    """The calls to time, hashguard first; None for a contender that cannot run here."""
    default = Scanner(hash_list)
    exact = Scanner(hash_list, exact=True)

    def pillow_pdqhash(path: str) -> object:
        with Image.open(path) as img:
            return pdqhash.compute(np.asarray(img.convert("RGB")))

    def phash(path: str) -> object:
        with Image.open(path) as img:
            return imagehash.phash(img)

    perception: Contender | None = None
    if PERCEPTION_MISSING is None:
        hasher = perception_hashers.PDQHash()

        def perception(path: str) -> object:
            return hasher.compute(path, hash_format="hex")

    return [
        (HG_DEFAULT, default.scan),
        (HG_EXACT, exact.scan),
        (PIL_PDQ, pillow_pdqhash),
        (PERCEPTION, perception),
        (PHASH, phash),
    ]


def check(results: list[object]) -> None:
    """Raises if a scan reported an error: a scanner that fails fast is not a fast scanner."""
    for r in results:
        if isinstance(r, ScanResult) and r.error is not None:
            raise RuntimeError(f"scan of {r.source} failed: {r.error}")


def timed_pass(fn: Contender, paths: Sequence[str]) -> tuple[list[object], list[float]]:
    """One call per file with garbage collection off; the results and each call's time."""
    results: list[object] = []
    times: list[float] = []
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for p in paths:
            start = time.perf_counter()
            results.append(fn(p))
            times.append(time.perf_counter() - start)
    finally:
        if gc_was_enabled:
            gc.enable()
    return results, times


def fail(result: Result, label: str, e: Exception) -> None:
    result.error = f"{type(e).__name__}: {e}"
    print(f"\n{result.name} at {label} raised:", file=sys.stderr)
    traceback.print_exc()


def measure(
    calls: list[tuple[str, Contender | None]], paths: Sequence[str], budget: Budget, label: str
) -> dict[str, Result]:
    """Warm-up, then interleaved passes until every contender has met the budget."""
    results = {name: Result(name) for name, _ in calls}
    running: list[tuple[Result, Contender]] = []
    for name, fn in calls:
        result = results[name]
        if fn is None:
            result.error = PERCEPTION_MISSING or "not available"
            result.skipped = True
            continue
        try:
            check([fn(paths[0])])
        except Exception as e:
            fail(result, label, e)
            continue
        result.per_file = [[] for _ in paths]
        running.append((result, fn))
    rounds = 0
    while running:
        # Rotating the order shares out slow spells and whatever the previous contender left
        # in the caches and the allocator.
        k = rounds % len(running)
        rounds += 1
        for result, fn in running[k:] + running[:k]:
            try:
                out, times = timed_pass(fn, paths)
                check(out)
            except Exception as e:
                fail(result, label, e)
                running.remove((result, fn))
                continue
            if not result.passes:
                result.first = out
            result.passes.append(sum(times))
            for per_file, t in zip(result.per_file, times, strict=True):
                per_file.append(t)
            if result.done(budget):
                running.remove((result, fn))
    return results


# ---------------------------------------------------------------------------------------------
# Sanity


def hash_int(value: object) -> int | None:
    """A 256-bit PDQ hash as an integer, from whichever contender made it."""
    if isinstance(value, ScanResult):
        return int.from_bytes(value.pdq.bytes, "big") if value.pdq is not None else None
    if isinstance(value, str):  # perception's hex
        return int(value, 16)
    if isinstance(value, tuple):  # pdqhash: (256 0/1 values, most significant first; quality)
        bits = np.asarray(value[0]).astype(bool)
        return int.from_bytes(np.packbits(bits).tobytes(), "big")
    return None


def max_distance(a: Result | None, b: Result | None) -> int | None:
    if a is None or b is None or a.error or b.error or not a.first or not b.first:
        return None
    distances = []
    for x, y in zip(a.first, b.first, strict=True):
        hx, hy = hash_int(x), hash_int(y)
        if hx is None or hy is None:
            return None
        distances.append((hx ^ hy).bit_count())
    return max(distances)


def sanity(results: dict[str, Result]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "exact_vs_pdqhash_max_bits": max_distance(results.get(HG_EXACT), results.get(PIL_PDQ)),
        "default_vs_exact_max_bits": max_distance(results.get(HG_DEFAULT), results.get(HG_EXACT)),
        "perception_vs_pdqhash_max_bits": max_distance(
            results.get(PERCEPTION), results.get(PIL_PDQ)
        ),
    }
    for name in BASELINES:
        r = results.get(name)
        scans = [s for s in (r.first if r and not r.error else []) if isinstance(s, ScanResult)]
        if scans:
            out[name] = {
                "matched_files": sum(s.matched for s in scans),
                "matched_via_transform": sum(
                    any(m.transform != "orig" for m in s.matches) for s in scans
                ),
                "low_quality_files": sum(s.low_quality for s in scans),
                "files": len(scans),
            }
    return out


# ---------------------------------------------------------------------------------------------
# Report


def environment(args: argparse.Namespace, budget: Budget, bench_list: BenchList) -> dict[str, Any]:
    return {
        "mode": "quick" if args.quick else "full",
        "hashguard": hashguard.__version__,
        "kernel": hashguard.kernel(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "Pillow": package_version("Pillow"),
        "libjpeg_turbo": features.version("libjpeg_turbo"),
        "pdqhash": package_version("pdqhash"),
        "ImageHash": package_version("ImageHash"),
        "perception": package_version("perception"),
        "opencv": package_version("opencv-contrib-python-headless"),
        "cpu": cpu_model(),
        "logical_cpus": os.cpu_count(),
        "platform": platform.platform(),
        "images": str(args.images),
        "seed": args.seed,
        "noise_amplitude": NOISE_AMPLITUDE,
        "jpeg_quality": JPEG_QUALITY,
        "files_per_size": budget.files,
        "min_passes": budget.min_passes,
        "min_time_s": budget.min_seconds,
        "default_min_side": DEFAULT_MIN_SIDE,
        "list_entries": bench_list.entries,
        "list_bundle_bytes": bench_list.bundle_bytes,
    }


def print_header(env: dict[str, Any]) -> None:
    print(f"hashguard scanner throughput benchmark ({env['mode']} mode)")
    print(f"hashguard {env['hashguard']}, PDQ kernel: {env['kernel']}")
    print(
        f"python {env['python']}, numpy {env['numpy']}, Pillow {env['Pillow']} (libjpeg-turbo "
        f"{env['libjpeg_turbo']}), pdqhash {env['pdqhash']}, ImageHash {env['ImageHash']}, "
        f"perception {env['perception']}, opencv {env['opencv']}"
    )
    print(f"machine: {env['cpu']}, {env['logical_cpus']} logical CPUs, {env['platform']}")
    print(
        f"one worker, one file at a time, files in the page cache; files/s = files / median pass "
        f"of >= {env['min_passes']} passes and >= {env['min_time_s']} s per contender, after a "
        f"warm-up call; contenders interleaved, order rotating"
    )
    print(
        f"input: {env['files_per_size']} JPEGs per size (q{env['jpeg_quality']}, 4:2:0) from "
        f"{Path(env['images']).name}/, LANCZOS-fitted, noise +-{env['noise_amplitude']} "
        f"(seed {env['seed']})"
    )
    print(
        f"hashguard scans: read + MD5 + SHA-256 + decode + PDQ x 8 dihedral + match against a "
        f"{env['list_entries']}-entry list; default decodes JPEGs at the smallest DCT scale "
        f"keeping the short side >= {env['default_min_side']}"
    )


def fmt_ratio(r: float | None) -> str:
    return "-" if r is None else f"{r:.2f}x" if r < 10 else f"{r:.1f}x"


def print_table(report: SizeReport) -> None:
    mp = report.width * report.height / 1e6
    mb = sum(f["bytes"] for f in report.files) / len(report.files) / 1e6
    full = " (decodes in full)" if report.scale == 1 else ""
    print(
        f"\n== {report.label} ({mp:.1f} MP), {len(report.files)} files of {mb:.2f} MB on average, "
        f"sha256 {folder_digest(report.files)[:16]}"
    )
    print(f"default mode decode scale: 1/{report.scale}{full}")
    print(
        f"{'contender':<20} {'files/s':>9} {'ms/file':>9} {'passes':>7}  "
        f"{'default speed-up':>16} {'exact speed-up':>15}"
    )
    for name, r in report.results.items():
        if r.error:
            print(f"{name:<20} {'skipped' if r.skipped else 'FAILED':>9}  {r.error}")
            continue
        n = len(report.files)
        ratios = [
            fmt_ratio(report.speedup(name, base)) if name != base else "-" for base in BASELINES
        ]
        print(
            f"{name:<20} {n / r.median:>9.2f} {r.median / n * 1e3:>9.2f} {len(r.passes):>7}  "
            f"{ratios[0]:>16} {ratios[1]:>15}"
        )
    s = report.sanity

    def bits(key: str) -> str:
        return "n/a" if s.get(key) is None else f"{s[key]} bits"

    print(
        f"sanity: max distance exact vs pdqhash {bits('exact_vs_pdqhash_max_bits')}, "
        f"default vs exact {bits('default_vs_exact_max_bits')}, "
        f"perception vs pdqhash {bits('perception_vs_pdqhash_max_bits')}"
    )
    for name in BASELINES:
        m = s.get(name)
        if m:
            print(
                f"        {name}: {m['matched_files']}/{m['files']} files matched the list "
                f"({m['matched_via_transform']} through a rotated/mirrored variant), "
                f"{m['low_quality_files']} low quality"
            )


def summary(reports: dict[tuple[int, int], SizeReport]) -> list[str]:
    """The PASS/FAIL lines for the targets."""
    lines: list[str] = []
    large = reports.get(LARGE)
    label = f"{LARGE[0]}x{LARGE[1]}"
    for name in (HG_EXACT, HG_DEFAULT):
        target = LARGE_TARGET[name]
        ratio = large.speedup(PIL_PDQ, name) if large else None
        if ratio is None:
            lines.append(f"{label}: {name} vs Pillow + pdqhash not measured: n/a")
        else:
            lines.append(
                f"{label}: {name} is {ratio:.2f}x the Pillow + pdqhash pipeline "
                f"(target >= {target:g}x): {'PASS' if ratio >= target else 'FAIL'}"
            )
    for name in BASELINES:
        ratios = [r.speedup(PHASH, name) for r in reports.values()]
        if not ratios or any(x is None for x in ratios):
            verdict = "n/a"
        else:
            verdict = "PASS" if all(x is not None and x > 1 for x in ratios) else "FAIL"
        detail = ", ".join(
            f"{r.label} {fmt_ratio(x)}" for r, x in zip(reports.values(), ratios, strict=True)
        )
        lines.append(f"{name} faster than imagehash.phash at every size: {verdict} ({detail})")
    if large is not None and large.scale == 1:
        lines.append(
            f"note: at {label} the default mode decodes in full (short side "
            f"{min(LARGE)} / 2 < DEFAULT_MIN_SIDE {DEFAULT_MIN_SIDE}), so it does the same work "
            f"as exact mode"
        )
    return lines


def to_json(
    env: dict[str, Any], reports: dict[tuple[int, int], SizeReport], lines: list[str]
) -> dict[str, Any]:
    sizes = []
    for report in reports.values():
        n = len(report.files)
        results = {}
        for name, r in report.results.items():
            entry: dict[str, Any] = {
                "error": r.error,
                "skipped": r.skipped,
                "passes": len(r.passes),
            }
            if not r.error and r.passes:
                entry |= {
                    "pass_times_s": r.passes,
                    "median_pass_s": r.median,
                    "files_per_s": n / r.median,
                    "ms_per_file": r.median / n * 1e3,
                    "per_file_median_s": [statistics.median(t) for t in r.per_file],
                    "speedup_of_hashguard_default": report.speedup(name, HG_DEFAULT),
                    "speedup_of_hashguard_exact": report.speedup(name, HG_EXACT),
                }
            results[name] = entry
        sizes.append(
            {
                "width": report.width,
                "height": report.height,
                "default_decode_scale": report.scale,
                "files": report.files,
                "results": results,
                "sanity": report.sanity,
            }
        )
    return {"environment": env, "sizes": sizes, "summary": lines}


# ---------------------------------------------------------------------------------------------
# Main


def parse_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(x) for x in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT, got {text!r}") from None
    if w < 32 or h < 32:
        raise argparse.ArgumentTypeError(f"{text} is too small")
    return w, h


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/scan.py",
        description="Scanner throughput (files/s from JPEG files) of hashguard vs Pillow + "
        "pdqhash, perception and imagehash.",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"CI mode: {QUICK.files} files per size, >= {QUICK.min_passes} passes and >= "
        f"{QUICK.min_seconds} s per contender (default: {FULL.files} files, >= "
        f"{FULL.min_passes} passes and >= {FULL.min_seconds} s)",
    )
    parser.add_argument("--json", metavar="PATH", type=Path, help="also write raw numbers here")
    parser.add_argument(
        "--images",
        type=Path,
        default=DEFAULT_IMAGES,
        help="folder of source photos (*.jpg) for the test files (default: %(default)s)",
    )
    parser.add_argument("--seed", type=int, default=0, help="noise seed (default: %(default)s)")
    parser.add_argument("--files", type=int, help="files per size (overrides the mode's)")
    parser.add_argument(
        "--sizes",
        type=lambda s: [parse_size(x) for x in s.split(",")],
        default=list(SIZES),
        help="comma-separated WIDTHxHEIGHT list (default: 4032x3024,1920x1080,640x480)",
    )
    args = parser.parse_args(argv)
    if args.files is not None and args.files < 1:
        parser.error("--files must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    budget = QUICK if args.quick else FULL
    if args.files is not None:
        budget = Budget(args.files, budget.min_passes, budget.min_seconds, budget.max_passes)
    try:
        photos = load_photos(args.images)
    except OSError as e:
        print(f"error: cannot read the source photos in {args.images}: {e}", file=sys.stderr)
        return 2
    if PERCEPTION_MISSING is None:
        cv2.setNumThreads(1)

    with tempfile.TemporaryDirectory(prefix="hashguard-bench-scan-") as tmp:
        root = Path(tmp)
        try:
            bench_list = build_list(photos, args.sizes, root)
        except Exception as e:
            print(f"error: cannot build the benchmark list: {e}", file=sys.stderr)
            return 2
        env = environment(args, budget, bench_list)
        print_header(env)
        calls = contenders(bench_list.hash_list)

        reports: dict[tuple[int, int], SizeReport] = {}
        for width, height in args.sizes:
            paths = make_folder(photos, width, height, budget.files, args.seed, root)
            report = SizeReport(width, height, describe_files(paths))
            report.results = measure(calls, [str(p) for p in paths], budget, report.label)
            report.sanity = sanity(report.results)
            for r in report.results.values():
                r.first = []  # the decoded results are not needed any more
            reports[(width, height)] = report
            print_table(report)
            sys.stdout.flush()
            for p in paths:
                p.unlink()

    lines = summary(reports)
    print("\nsummary (targets; a benchmark, so FAIL does not change the exit status):")
    for line in lines:
        print(f"  {line}")
    failed = [
        f"{r.name} at {rep.label}"
        for rep in reports.values()
        for r in rep.results.values()
        if r.error and not r.skipped
    ]
    if failed:
        print(f"\ncontenders that raised: {', '.join(failed)}")
    print(f"\ntotal wall time: {time.perf_counter() - started:.1f} s")

    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(to_json(env, reports, lines), indent=2) + "\n")
        print(f"raw numbers written to {args.json}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
