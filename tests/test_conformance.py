"""Every row of the shared PDQ conformance vectors, bit for bit, from the RGB Pillow decodes.

The vectors were produced by Meta's C++ core on Pillow's RGB. The RGB digest is checked first,
so a decoder difference is reported as such instead of as a hashing bug.
"""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import hashguard

VECTORS = Path(__file__).resolve().parents[1].parent / "shared" / "pdq-vectors"


def rows(name: str) -> list[dict[str, str]]:
    path = VECTORS / name
    assert path.exists(), f"conformance vectors not found at {path}"
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


ROWS = rows("expected.csv") + rows("expected-threatexchange.csv")


def test_all_vector_files_are_present() -> None:
    assert len(ROWS) >= 40
    missing = [r["file"] for r in ROWS if not (VECTORS / r["file"]).exists()]
    assert not missing


@pytest.mark.parametrize("row", ROWS, ids=[r["file"].rsplit("/", 1)[-1] for r in ROWS])
def test_vector(row: dict[str, str]) -> None:
    path = VECTORS / row["file"]
    with Image.open(path) as img:
        assert img.mode == row["pillow_mode"]
        rgb = np.asarray(img.convert("RGB"))
    digest = hashlib.sha256(rgb.tobytes()).hexdigest()
    assert digest == row["rgb_sha256"], "Pillow decoded different RGB than the vectors were made on"

    got = hashguard.hash_image(path, dihedral=True)
    plain = hashguard.hash_image(path)
    assert plain.hex == row["ref_hash"]
    assert plain.quality == int(row["ref_quality"])
    assert got.quality == int(row["ref_quality"])
    for name, variant in got.dihedral().items():
        assert variant.hex == row[f"dih_{name}"], name

    if row["ref_grey_hash"]:
        with Image.open(path) as img:
            grey = np.asarray(img)
        assert grey.ndim == 2
        g = hashguard.hash_image(grey)
        assert g.hex == row["ref_grey_hash"]
        assert g.quality == int(row["ref_grey_quality"])


def test_dihedral_files_match_the_original_variants() -> None:
    """The 8 bridge files are one photo in its 8 dihedral forms (JPEG re-encoded): each file's
    plain hash is close to the matching variant of the original, and far from the original."""
    base = "threatexchange/pdq/data/reg-test-input/dih/"
    original = hashguard.hash_image(VECTORS / (base + "bridge-1-original.jpg"), dihedral=True)
    files = {
        "rot90": "bridge-2-rotate-90.jpg",
        "rot180": "bridge-3-rotate-180.jpg",
        "rot270": "bridge-4-rotate-270.jpg",
        "flipx": "bridge-5-flipx.jpg",
        "flipy": "bridge-6-flipy.jpg",
        "flipplus1": "bridge-7-flip-plus-1.jpg",
        "flipminus1": "bridge-8-flip-minus-1.jpg",
    }
    for transform, name in files.items():
        h = hashguard.hash_image(VECTORS / (base + name))
        assert h.distance(original.dihedral()[transform]) <= 10, transform
        assert h.distance(original) > 60, transform
