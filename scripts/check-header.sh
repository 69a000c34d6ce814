#!/usr/bin/env bash
# Regenerates the C header with cbindgen and fails if it differs from the committed one.
# With --write, updates the committed header instead.
set -euo pipefail
cd "$(dirname "$0")/.."
want=0.29.4
if ! command -v cbindgen >/dev/null || [ "$(cbindgen --version)" != "cbindgen $want" ]; then
  cargo install cbindgen --locked --version "$want" -q
fi
fresh=$(mktemp)
trap 'rm -f "$fresh"' EXIT
(cd native && cbindgen --quiet --config cbindgen.toml --crate hashguard --output "$fresh")
# Only the ABI belongs in the header: every name it defines carries the hg_/HG_ prefix.
if strays=$(grep -E '^(#define|enum|typedef struct) ' "$fresh" | grep -vE ' (HG_|hg_|HASHGUARD_H)'); then
  echo "cbindgen exported items without the hg_/HG_ prefix (make them pub(crate) or exclude them):" >&2
  echo "$strays" >&2
  exit 1
fi
if [ "${1:-}" = "--write" ]; then
  cp "$fresh" native/include/hashguard.h
  echo "native/include/hashguard.h updated"
elif ! diff -u native/include/hashguard.h "$fresh"; then
  echo "native/include/hashguard.h is stale: run scripts/check-header.sh --write" >&2
  exit 1
else
  echo "header matches cbindgen output"
fi
