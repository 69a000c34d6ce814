"""Regenerates examples/images/ from public-domain and CC0 photos (see examples/README.md).

Usage: python examples/make_samples.py [SOURCE_DIR]
SOURCE_DIR defaults to ../shared/pdq-vectors/photos (the scikit-image sample photos). The
photos are re-encoded as JPEG (quality 90) so the repository stays small.
"""

from __future__ import annotations

import sys
from pathlib import Path

from PIL import Image

HERE = Path(__file__).resolve().parent
PHOTOS = ("astronaut.png", "camera.png", "chelsea.png", "coffee.png", "rocket.jpg")


def main(argv: list[str]) -> int:
    source = Path(argv[1]) if len(argv) > 1 else HERE.parents[1] / "shared/pdq-vectors/photos"
    out = HERE / "images"
    out.mkdir(exist_ok=True)
    for name in PHOTOS:
        with Image.open(source / name) as img:
            target = out / (Path(name).stem + ".jpg")
            img.convert("RGB").save(target, "JPEG", quality=90, optimize=True)
            print(f"{target.relative_to(HERE.parent)} {img.size[0]}x{img.size[1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
