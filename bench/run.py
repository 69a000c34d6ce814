"""Runs the benchmark suites in one process: ``pdq`` (hashing speed, bench/pdq.py), then ``scan``
(scanner throughput from JPEG files, bench/scan.py), then ``index`` (exact radius search,
bench/index.py), then ``lists`` (bundle loading, bench/lists.py).

    python bench/run.py [--quick] [--only pdq|scan|index|lists] [--json DIR]

``--quick`` is passed to every suite. ``--json DIR`` makes each suite write its raw numbers to
``DIR/<suite>.json``. Each suite prints its own report; a missed target prints FAIL there but is
not an error. The exit status is 1 if a suite crashed (an exception, a contender that raised, or
a non-zero status from the suite) and 0 otherwise; every selected suite runs either way.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
import traceback
from pathlib import Path
from typing import Final

BENCH_DIR: Final = Path(__file__).resolve().parent
#: Suite name -> module in this directory, in the order they run.
SUITES: Final = ("pdq", "scan", "index", "lists")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/run.py",
        description="Run the hashguard benchmark suites (pdq, scan, index, lists).",
    )
    parser.add_argument("--quick", action="store_true", help="CI mode, passed to every suite")
    parser.add_argument("--only", choices=SUITES, help="run only this suite")
    parser.add_argument(
        "--json",
        metavar="DIR",
        type=Path,
        help="write each suite's raw numbers to DIR/<suite>.json",
    )
    return parser.parse_args(argv)


def run_suite(name: str, argv: list[str]) -> int:
    """Imports bench/<name>.py and runs its main(argv); a raised exception counts as status 1."""
    try:
        module = importlib.import_module(name)
        status = module.main(argv)
    except SystemExit as e:
        status = e.code if isinstance(e.code, int) else 1
    except Exception:
        sys.stdout.flush()
        traceback.print_exc()
        return 1
    return int(status or 0)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if str(BENCH_DIR) not in sys.path:
        sys.path.insert(0, str(BENCH_DIR))
    started = time.perf_counter()
    crashed: list[str] = []
    statuses: list[str] = []
    for name in SUITES:
        if args.only and name != args.only:
            continue
        suite_argv = ["--quick"] if args.quick else []
        if args.json:
            suite_argv += ["--json", str(args.json / f"{name}.json")]
        print(f"\n{'=' * 30} suite: {name} {'=' * 30}\n", flush=True)
        suite_started = time.perf_counter()
        status = run_suite(name, suite_argv)
        sys.stdout.flush()
        elapsed = time.perf_counter() - suite_started
        statuses.append(
            f"{name} {'ok' if status == 0 else f'CRASHED (status {status})'} in {elapsed:.1f} s"
        )
        if status != 0:
            crashed.append(name)
    print(f"\nsuites: {'; '.join(statuses)}; total {time.perf_counter() - started:.1f} s")
    return 1 if crashed else 0


if __name__ == "__main__":
    sys.exit(main())
