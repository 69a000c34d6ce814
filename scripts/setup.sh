#!/usr/bin/env bash
# Creates .venv, installs the pinned tools and builds the native core into it (release mode).
# Idempotent: a second run only rebuilds what changed.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -r requirements-dev.txt
if ! log=$(VIRTUAL_ENV="$PWD/.venv" .venv/bin/maturin develop --release 2>&1); then
  echo "$log" >&2
  exit 1
fi
.venv/bin/python -c "import hashguard; print('hashguard', hashguard.__version__, 'kernel', hashguard.kernel())"
