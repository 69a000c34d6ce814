"""Single-threaded PDQ hashing speed: hashguard against pdqhash and imagehash.phash.

What is measured
    The time to hash one *decoded* image, i.e. a C-contiguous uint8 H x W x 3 RGB array that
    is already in memory. Decoding is excluded on purpose: it costs the same whichever hasher
    runs next, and it would hide the hashing cost that this project controls. Each contender is
    called serially from one Python thread, so the numbers are per-core throughput.

Contenders, per image size (4032x3024, 1920x1080, 640x480)
    * ``hashguard``: ``hash_pixels(Pixels(arr, RGB8))``, and the same with ``dihedral=True``
      (all 8 rotation/flip hashes in one call).
    * ``pdqhash`` (PyPI, Meta's C++ PDQ core): ``pdqhash.compute(arr)`` and
      ``pdqhash.compute_dihedral(arr)``.
    * ``imagehash.phash`` on a Pillow image. It is not PDQ, but it is the perceptual hash most
      Python users reach for. Its own internal resize is included, as that is how it is called.
      The Pillow image is made from the array once, outside the timed region, so the copy made
      by ``Image.fromarray`` does not count against it.

Inputs
    One real photograph (default: scikit-image's ``coffee.png``, CC0, from the shared PDQ
    vectors), cropped to each aspect ratio and resized with Pillow's LANCZOS filter, plus mild
    uniform noise from a seeded ``numpy.random.default_rng`` so that upscaled areas are not
    perfectly smooth. The arrays are built once, kept in memory and their SHA-256 is printed so
    that two runs can be checked to have hashed the same pixels.

Timing
    ``time.perf_counter`` around each call, one untimed warm-up call first, garbage collection
    off while timing, and the median of the repetitions. A full run repeats each contender until
    it has run for at least 1.5 s and at least 5 times; ``--quick`` (used by CI) stops after 3
    repetitions and 0.2 s. The ratio "hashguard speed-up" is the competitor's median time
    divided by the matching hashguard median (plain against plain, dihedral against dihedral).

Correctness sanity
    For each size the Hamming distance between hashguard's and pdqhash's hash of the same array
    is printed (0 or a few bits is expected: pdqhash computes luma in double precision, the
    reference and hashguard in float32). It is informational and never fails the run.

Exit status
    0 when every contender ran, even if a speed target is missed (it is printed as FAIL: a
    benchmark is not a test); 1 when a contender raised; 2 for bad arguments or a missing photo.
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
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, cast

import imagehash  # type: ignore[import-untyped,unused-ignore]
import numpy as np
import numpy.typing as npt
import pdqhash  # type: ignore[import-untyped,unused-ignore]
from machine import cpu_model, package_version
from PIL import Image, ImageOps

import hashguard
from hashguard.hashing import PdqHash, hash_pixels
from hashguard.image import Pixels

#: Layout code of interleaved 8-bit RGB in the native core (hg_pixel_layout).
RGB8: Final = 0

#: Image sizes (width, height): a 12 MP phone photo, full HD and VGA.
SIZES: Final[tuple[tuple[int, int], ...]] = ((4032, 3024), (1920, 1080), (640, 480))

DEFAULT_PHOTO: Final = (
    Path(__file__).resolve().parents[1].parent / "shared" / "pdq-vectors" / "photos" / "coffee.png"
)

#: Noise added to every channel is uniform in [-NOISE_AMPLITUDE, +NOISE_AMPLITUDE].
NOISE_AMPLITUDE: Final = 3

#: (min repetitions, min seconds of timed calls) per contender.
FULL_BUDGET: Final = (5, 1.5)
QUICK_BUDGET: Final = (3, 0.2)
MAX_REPS: Final = 100_000

# Contender names; the baselines are the hashguard rows the competitors are divided by.
HG: Final = "hashguard"
HG_DIH: Final = "hashguard dihedral"
PDQ: Final = "pdqhash.compute"
PDQ_DIH: Final = "pdqhash.compute_dihedral"
PHASH: Final = "imagehash.phash"
BASELINE: Final = {PDQ: HG, PDQ_DIH: HG_DIH, PHASH: HG}
#: How the summary names the competitors.
SHORT_NAME: Final = {PDQ: "pdqhash", PHASH: "imagehash.phash"}

#: The targets the summary checks: the minimum speed-up of hashguard over a competitor's plain
#: hash at the largest size, and "faster" (speed-up > 1) at the other sizes.
LARGE: Final = (4032, 3024)
OTHERS: Final = ((1920, 1080), (640, 480))
LARGE_TARGET: Final = {PDQ: 15.0, PHASH: 1.0}

Array = npt.NDArray[np.uint8]


@dataclass
class Result:
    """Timings of one contender at one size (seconds), or the error it raised."""

    name: str
    times: list[float] = field(default_factory=list)
    error: str | None = None

    @property
    def median(self) -> float:
        return statistics.median(self.times)


@dataclass
class SizeReport:
    """Everything measured at one image size."""

    width: int
    height: int
    sha256: str
    results: dict[str, Result] = field(default_factory=dict)
    sanity: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.width}x{self.height}"

    def speedup(self, name: str) -> float | None:
        """Competitor time / hashguard time, or None when either did not run."""
        base = BASELINE.get(name)
        if base is None:
            return None
        other, mine = self.results.get(name), self.results.get(base)
        if other is None or mine is None or other.error or mine.error:
            return None
        return other.median / mine.median


def make_image(photo: Image.Image, width: int, height: int, seed: int) -> Array:
    """The photo cropped to the aspect ratio, LANCZOS-resized and lightly noised."""
    fitted = ImageOps.fit(photo, (width, height), method=Image.Resampling.LANCZOS)
    base = np.asarray(fitted, dtype=np.uint8)
    rng = np.random.default_rng([seed, width, height])
    noise = rng.integers(-NOISE_AMPLITUDE, NOISE_AMPLITUDE + 1, size=base.shape, dtype=np.int16)
    noisy = np.clip(base.astype(np.int16) + noise, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(noisy)


def measure(fn: Callable[[], object], min_reps: int, min_time: float) -> tuple[object, list[float]]:
    """One untimed warm-up call, then timed calls until both minimums are met.

    Returns the warm-up call's result (for the sanity checks) and the per-call times.
    """
    first = fn()
    times: list[float] = []
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        total = 0.0
        while len(times) < MAX_REPS and (len(times) < min_reps or total < min_time):
            start = time.perf_counter()
            fn()
            elapsed = time.perf_counter() - start
            times.append(elapsed)
            total += elapsed
    finally:
        if gc_was_enabled:
            gc.enable()
    return first, times


def pdqhash_int(bits: Sequence[int] | npt.NDArray[Any]) -> int:
    """pdqhash's 256 0/1 values (most significant bit first) as an integer."""
    return int("".join("1" if int(b) else "0" for b in bits), 2)


def hash_int(h: PdqHash) -> int:
    return int.from_bytes(h.bytes, "big")


def contenders(arr: Array) -> list[tuple[str, Callable[[], object]]]:
    """The calls to time on one array, hashguard first."""
    pil = Image.fromarray(arr)
    return [
        (HG, lambda: hash_pixels(Pixels(arr, RGB8))),
        (HG_DIH, lambda: hash_pixels(Pixels(arr, RGB8), dihedral=True)),
        (PDQ, lambda: pdqhash.compute(arr)),
        (PDQ_DIH, lambda: pdqhash.compute_dihedral(arr)),
        (PHASH, lambda: imagehash.phash(pil)),
    ]


def sanity(firsts: dict[str, object]) -> dict[str, Any]:
    """Bit distances between hashguard and pdqhash on the same array."""
    out: dict[str, Any] = {}
    mine, theirs = firsts.get(HG), firsts.get(PDQ)
    if isinstance(mine, PdqHash) and theirs is not None:
        bits, quality = cast("tuple[npt.NDArray[Any], float]", theirs)
        out["distance_bits"] = (hash_int(mine) ^ pdqhash_int(bits)).bit_count()
        out["quality_hashguard"] = mine.quality
        out["quality_pdqhash"] = int(quality)
    mine_dih, theirs_dih = firsts.get(HG_DIH), firsts.get(PDQ_DIH)
    if isinstance(mine_dih, PdqHash) and theirs_dih is not None:
        variants = mine_dih.dihedral()
        their_hashes, _ = cast("tuple[list[npt.NDArray[Any]], float]", theirs_dih)
        # Both list the 8 transforms in the same order (orig, rot90, ..., flipminus1).
        distances = [
            (hash_int(h) ^ pdqhash_int(b)).bit_count()
            for h, b in zip(variants.values(), their_hashes, strict=True)
        ]
        out["dihedral_distance_bits"] = distances
    return out


def run_size(
    photo: Image.Image, width: int, height: int, seed: int, budget: tuple[int, float]
) -> SizeReport:
    arr = make_image(photo, width, height, seed)
    report = SizeReport(width, height, hashlib.sha256(arr.tobytes()).hexdigest())
    firsts: dict[str, object] = {}
    for name, fn in contenders(arr):
        result = Result(name)
        try:
            firsts[name], result.times = measure(fn, *budget)
        except Exception as e:
            result.error = f"{type(e).__name__}: {e}"
            print(f"\n{name} at {report.label} raised:", file=sys.stderr)
            traceback.print_exc()
        report.results[name] = result
    try:
        report.sanity = sanity(firsts)
    except Exception as e:
        report.sanity = {"error": f"{type(e).__name__}: {e}"}
    return report


def environment(args: argparse.Namespace, budget: tuple[int, float]) -> dict[str, Any]:
    return {
        "mode": "quick" if args.quick else "full",
        "hashguard": hashguard.__version__,
        "kernel": hashguard.kernel(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "Pillow": package_version("Pillow"),
        "pdqhash": package_version("pdqhash"),
        "ImageHash": package_version("ImageHash"),
        "scipy": package_version("scipy"),
        "cpu": cpu_model(),
        "logical_cpus": os.cpu_count(),
        "platform": platform.platform(),
        "photo": str(args.photo),
        "seed": args.seed,
        "noise_amplitude": NOISE_AMPLITUDE,
        "min_reps": budget[0],
        "min_time_s": budget[1],
    }


def fmt_ms(seconds: float) -> str:
    ms = seconds * 1e3
    return f"{ms:.3f}" if ms < 10 else f"{ms:.2f}" if ms < 1000 else f"{ms:.1f}"


def print_header(env: dict[str, Any]) -> None:
    print(f"hashguard benchmark ({env['mode']} mode)")
    print(f"hashguard {env['hashguard']}, PDQ kernel: {env['kernel']}")
    print(
        f"python {env['python']}, numpy {env['numpy']}, Pillow {env['Pillow']}, "
        f"pdqhash {env['pdqhash']}, ImageHash {env['ImageHash']}, scipy {env['scipy']}"
    )
    print(f"machine: {env['cpu']}, {env['logical_cpus']} logical CPUs, {env['platform']}")
    print(
        "single thread; decoded uint8 RGB arrays in memory (decode excluded); median of "
        f">= {env['min_reps']} reps and >= {env['min_time_s']} s per contender after 1 warm-up"
    )
    print(
        f"input: {Path(env['photo']).name} fitted with LANCZOS, "
        f"+ uniform noise +-{env['noise_amplitude']} (seed {env['seed']})"
    )


def print_table(report: SizeReport) -> None:
    mp = report.width * report.height / 1e6
    print(f"\n== {report.label} ({mp:.1f} MP), pixels sha256 {report.sha256[:16]}")
    print(f"{'contender':<26} {'median ms':>10} {'images/s':>10} {'reps':>7}  hashguard speed-up")
    for name, result in report.results.items():
        if result.error:
            print(f"{name:<26} {'FAILED':>10}  {result.error}")
            continue
        ratio = report.speedup(name)
        vs = f"{ratio:.1f}x (vs {BASELINE[name]})" if ratio is not None else "-"
        print(
            f"{name:<26} {fmt_ms(result.median):>10} {1 / result.median:>10.1f} "
            f"{len(result.times):>7}  {vs}"
        )
    s = report.sanity
    if "error" in s:
        print(f"sanity check failed: {s['error']}")
        return
    parts = []
    if "distance_bits" in s:
        parts.append(
            f"hashguard vs pdqhash {s['distance_bits']} bits apart "
            f"(quality {s['quality_hashguard']} vs {s['quality_pdqhash']})"
        )
    if "dihedral_distance_bits" in s:
        parts.append(f"dihedral: at most {max(s['dihedral_distance_bits'])} bits over 8")
    print(f"sanity: {'; '.join(parts) if parts else 'n/a (a contender did not run)'}")


def summary(reports: dict[tuple[int, int], SizeReport]) -> list[str]:
    """The PASS/FAIL lines for the speed targets."""
    lines: list[str] = []
    for name in (PDQ, PHASH):
        target = LARGE_TARGET[name]
        large = reports.get(LARGE)
        ratio = large.speedup(name) if large else None
        op = ">=" if target > 1 else ">"
        label = f"{LARGE[0]}x{LARGE[1]}"
        if ratio is None:
            lines.append(
                f"{label}: hashguard vs {SHORT_NAME[name]} not measured "
                f"(target {op} {target:g}x): n/a"
            )
        else:
            ok = ratio >= target if target > 1 else ratio > 1
            lines.append(
                f"{label}: hashguard is {ratio:.1f}x faster than {SHORT_NAME[name]} "
                f"(target {op} {target:g}x): {'PASS' if ok else 'FAIL'}"
            )
        ratios = [reports[s].speedup(name) if s in reports else None for s in OTHERS]
        labels = " and ".join(f"{w}x{h}" for w, h in OTHERS)
        if any(r is None for r in ratios):
            verdict = "n/a"
        else:
            verdict = "PASS" if all(r is not None and r > 1 for r in ratios) else "FAIL"
        detail = ", ".join("not measured" if r is None else f"{r:.1f}x" for r in ratios)
        lines.append(f"faster than {SHORT_NAME[name]} at {labels}: {verdict} ({detail})")
    return lines


def to_json(
    env: dict[str, Any], reports: dict[tuple[int, int], SizeReport], lines: list[str]
) -> dict[str, Any]:
    sizes = []
    for report in reports.values():
        results = {}
        for name, r in report.results.items():
            entry: dict[str, Any] = {"error": r.error, "reps": len(r.times), "times_s": r.times}
            if not r.error:
                entry |= {
                    "median_s": r.median,
                    "min_s": min(r.times),
                    "images_per_s": 1 / r.median,
                    "baseline": BASELINE.get(name),
                    "hashguard_speedup": report.speedup(name),
                }
            results[name] = entry
        sizes.append(
            {
                "width": report.width,
                "height": report.height,
                "pixels_sha256": report.sha256,
                "results": results,
                "sanity": report.sanity,
            }
        )
    return {"environment": env, "sizes": sizes, "summary": lines}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/pdq.py",
        description="Single-threaded PDQ hashing speed of hashguard vs pdqhash and imagehash.",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"CI mode: >= {QUICK_BUDGET[0]} reps and >= {QUICK_BUDGET[1]} s per contender "
        f"(default: >= {FULL_BUDGET[0]} reps and >= {FULL_BUDGET[1]} s)",
    )
    parser.add_argument("--json", metavar="PATH", type=Path, help="also write raw numbers here")
    parser.add_argument(
        "--photo",
        type=Path,
        default=DEFAULT_PHOTO,
        help="source photograph for the test images (default: %(default)s)",
    )
    parser.add_argument("--seed", type=int, default=0, help="noise seed (default: %(default)s)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    try:
        with Image.open(args.photo) as img:
            photo = img.convert("RGB")
    except OSError as e:
        print(f"error: cannot open the source photo {args.photo}: {e}", file=sys.stderr)
        return 2
    budget = QUICK_BUDGET if args.quick else FULL_BUDGET
    env = environment(args, budget)
    print_header(env)

    reports: dict[tuple[int, int], SizeReport] = {}
    for width, height in SIZES:
        report = run_size(photo, width, height, args.seed, budget)
        reports[(width, height)] = report
        print_table(report)
        sys.stdout.flush()

    lines = summary(reports)
    print("\nsummary (targets; a benchmark, so FAIL does not change the exit status):")
    for line in lines:
        print(f"  {line}")
    failed = [
        f"{r.name} at {rep.label}"
        for rep in reports.values()
        for r in rep.results.values()
        if r.error
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
