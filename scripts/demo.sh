#!/usr/bin/env bash
# The README's main command: hash the sample photos, then show that a mirrored, re-encoded copy
# is recognised through its dihedral hashes.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== hashguard hash examples/images"
.venv/bin/hashguard hash examples/images
echo
echo "== a mirrored, resized, re-encoded copy of chelsea.jpg, against the original's 8 variants"
.venv/bin/python - <<'PY'
import io

from PIL import Image, ImageOps

import hashguard

original = hashguard.hash_image("examples/images/chelsea.jpg", dihedral=True)
with Image.open("examples/images/chelsea.jpg") as img:
    copy = ImageOps.mirror(img).resize((img.width // 2, img.height // 2))
buf = io.BytesIO()
copy.save(buf, "JPEG", quality=70)
query = hashguard.hash_image(buf.getvalue())
print(f"copy       {query.hex}  quality {query.quality}")
for name, variant in original.dihedral().items():
    d = query - variant
    print(f"{name:11}{variant.hex}  distance {d:3d}{'  <- match (<= 31)' if d <= 31 else ''}")
PY
