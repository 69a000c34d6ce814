#!/usr/bin/env bash
# The README's main command: publish a demo list (throwaway keys) from some sample photos, then
# scan a folder of transformed copies and unrelated files against it (examples/demo.py).
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/python examples/demo.py build/demo
