"""Loading a hash-list bundle against building faiss's multi-hash index from the same hashes.

Issue #4's target: loading a 10-million-entry bundle (verify the signature, decrypt, parse,
build the native index) takes under 2 s on this machine and no longer than building faiss's
``IndexBinaryMultiHash(256, 16, 16)`` (the index Meta's HMA uses) from the same codes. Both
sides start from bytes in memory (the bundle from a file in the page cache, faiss from an
array), and use all CPUs.

    python bench/lists.py [--quick] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import faiss
import numpy as np

import hashguard
from hashguard import lists

TARGET_SECONDS = 2.0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench/lists.py", description=__doc__)
    p.add_argument("--quick", action="store_true", help="100k and 1M entries only")
    p.add_argument("--json", type=Path, help="write the numbers here")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sizes = [100_000, 1_000_000] if args.quick else [1_000_000, 10_000_000]
    print("hashguard list load benchmark" + (" (quick mode)" if args.quick else ""))
    print(f"hashguard {hashguard.__version__}, faiss {faiss.__version__}, {os.cpu_count()} CPUs")
    root = lists.generate_ed25519_key()
    signing = lists.generate_ed25519_key()
    now = int(time.time())
    cert = lists.issue_certificate(root.secret, signing.public, now - 60, now + 86_400)
    signer = lists.CertifiedSigner(signing.secret, cert)
    app = lists.generate_app_key()
    rows = []
    print(f"{'entries':>10} {'bundle MB':>10} {'seal s':>8} {'load s':>8} {'faiss MH s':>11} "
          f"{'ratio':>7}")  # fmt: skip
    for n in sizes:
        codes = np.random.default_rng(n).integers(0, 256, (n, 32), dtype=np.uint8)
        t = time.perf_counter()
        bundle = lists.seal_pdq_bundle(
            list_id="bench", version=1, codes=codes, ids=np.arange(n, dtype=np.uint64),
            category="A1", source="bench", signer=signer, app_keys=[app], expires=now + 3600,
        )  # fmt: skip
        seal_s = time.perf_counter() - t
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "bench.hgl"
            path.write_bytes(bundle)
            del bundle
            t = time.perf_counter()
            hl = lists.HashList.open(path, verify_key=root.public, content_key=app)
            load_s = time.perf_counter() - t
            size_mb = path.stat().st_size / 2**20
        assert hl.entry_count == n
        probe = hashguard.PdqHash(codes[n // 2].tobytes(), 100)
        assert [m.entry_id for m in hl.match(probe, dihedral=False)] == [n // 2]
        del hl
        faiss.omp_set_num_threads(os.cpu_count() or 1)
        t = time.perf_counter()
        mh = faiss.IndexBinaryMultiHash(256, 16, 16)
        mh.add(codes)
        faiss_s = time.perf_counter() - t
        del mh, codes
        rows.append({"entries": n, "bundle_mb": size_mb, "seal_s": seal_s, "load_s": load_s,
                     "faiss_multihash_build_s": faiss_s})  # fmt: skip
        print(f"{n:>10,} {size_mb:>10.1f} {seal_s:>8.2f} {load_s:>8.2f} {faiss_s:>11.2f} "
              f"{faiss_s / load_s:>6.1f}x")  # fmt: skip
    last = rows[-1]
    scope = f"{last['entries']:,}"
    note = " (targets are defined at 10,000,000; quick mode shows 1,000,000)" if args.quick else ""
    print(f"\nsummary{note}:")
    ok = last["load_s"] < TARGET_SECONDS
    print(f"  {scope}: load {last['load_s']:.2f} s, target < {TARGET_SECONDS} s: "
          f"{'PASS' if ok else 'FAIL'}")  # fmt: skip
    ok = last["load_s"] <= last["faiss_multihash_build_s"]
    print(f"  {scope}: no slower than faiss IndexBinaryMultiHash build "
          f"({last['faiss_multihash_build_s']:.2f} s): {'PASS' if ok else 'FAIL'}")  # fmt: skip
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
