#!/usr/bin/env bash
# Builds the C example against native/include/hashguard.h and libhashguard.so, hashes sample
# photos with it, and checks the results against the Python package for the same pixels.
# Works from any directory; exits non-zero on any build failure or mismatch.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"

py="$root/.venv/bin/python"
photos="$root/../shared/pdq-vectors/photos"
rgb_src="$photos/rocket.jpg"
grey_src="$photos/camera.png"
exe="$here/hash_image"

for f in "$py" "$rgb_src" "$grey_src"; do
  [ -e "$f" ] || { echo "run.sh: missing $f" >&2; exit 1; }
done

# 1. Library and example. The rpath is relative to the binary, so no LD_LIBRARY_PATH is needed.
cargo build --release -q --manifest-path native/Cargo.toml
"${CC:-gcc}" -std=c99 -Wall -Wextra -Werror -pedantic -O2 \
  -I native/include "$here/hash_image.c" \
  -L native/target/release -Wl,-rpath,'$ORIGIN/../../native/target/release' -lhashguard \
  -o "$exe"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# 2. Sample images as PPM (RGB) and PGM (grey), plus malformed files the parser must reject.
"$py" - "$rgb_src" "$grey_src" "$tmp" <<'EOF'
import sys
from PIL import Image

rgb_src, grey_src, tmp = sys.argv[1:]
Image.open(rgb_src).convert("RGB").save(f"{tmp}/rocket.ppm")   # Pillow writes P6, maxval 255
grey = Image.open(grey_src).convert("L")
grey.save(f"{tmp}/camera.pgm")                                 # P5, maxval 255
w, h = grey.size
raster = grey.tobytes()
with open(f"{tmp}/camera-comments.pgm", "wb") as f:             # same pixels, commented header
    f.write(b"P5 # comment after the magic\n%d\t%d # size\n#\n255\n" % (w, h) + raster)
bad = {
    "ascii.ppm": b"P3\n2 2\n255\n" + b"0 " * 12,
    "maxval.pgm": b"P5\n2 2\n65535\n" + bytes(8),
    "short.pgm": b"P5\n%d %d\n255\n" % (w, h) + raster[:-1],
    "noheader.pgm": b"P5\n2\n",
    "glued.pgm": b"P52 2\n255\n" + bytes(4),
}
for name, data in bad.items():
    with open(f"{tmp}/{name}", "wb") as f:
        f.write(data)
EOF

# What the Python package gives for the pixels in a PNM file: the hash line, then the dihedral
# lines. The array is HxWx3 for PPM and HxW (the grey path) for PGM.
python_hashes() {
  "$py" - "$1" <<'EOF'
import sys
import numpy as np
from PIL import Image
import hashguard

arr = np.asarray(Image.open(sys.argv[1]), dtype=np.uint8)
h = hashguard.hash_image(arr)
print(f"{h.hex} {h.quality}")
d = hashguard.hash_image(arr, dihedral=True).dihedral()
for name in hashguard.TRANSFORMS:
    print(f"{name} {d[name].hex}")
EOF
}

fail=0
check() {  # check NAME FILE
  local want got
  want="$(python_hashes "$2")"
  got="$("$exe" "$2")"$'\n'"$("$exe" --dihedral "$2")"
  if [ "$got" = "$want" ]; then
    echo "ok    $1: $(head -n1 <<<"$got") (and 8 dihedral hashes)"
  else
    echo "FAIL  $1: C and Python disagree" >&2
    diff <(echo "$want") <(echo "$got") >&2 || true
    fail=1
  fi
}

# 3. The error path, made visible once (it runs silently on every call).
"$exe" --verbose "$tmp/rocket.ppm" >/dev/null

check "rocket.ppm (RGB8)" "$tmp/rocket.ppm"
check "camera.pgm (GREY8)" "$tmp/camera.pgm"
check "camera.pgm, commented header" "$tmp/camera-comments.pgm"

for name in ascii.ppm maxval.pgm short.pgm noheader.pgm glued.pgm; do
  rc=0
  "$exe" "$tmp/$name" >/dev/null 2>"$tmp/err" || rc=$?
  if [ "$rc" = 2 ]; then
    echo "ok    rejects $name: $(sed 's/^.*: //' "$tmp/err")"
  else
    echo "FAIL  $name: exit status $rc, expected 2" >&2
    fail=1
  fi
done

if [ "$fail" != 0 ]; then
  echo "examples/c: FAILED" >&2
  exit 1
fi
echo "examples/c: OK (C ABI output matches the Python package)"
