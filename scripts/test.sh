#!/usr/bin/env bash
# The whole test suite, as CI runs it: Rust (fmt, clippy, tests), a bounded fuzzing run, the C
# header and C example, Python (ruff, mypy, pytest) and the benchmarks in quick mode.
# Expects scripts/setup.sh first.
set -euo pipefail
cd "$(dirname "$0")/.."
step() { printf '\n== %s\n' "$*"; }

step "rustfmt"
cargo fmt --manifest-path native/Cargo.toml --check

step "clippy -D warnings"
cargo clippy --manifest-path native/Cargo.toml --all-targets --release -q -- -D warnings

step "cargo test"
cargo test --manifest-path native/Cargo.toml --profile ci -q

step "fuzzing the bundle parser (bounded)"
./scripts/fuzz.sh "${FUZZ_SECONDS:-60}"

step "C header drift"
./scripts/check-header.sh

step "C example"
./examples/c/run.sh

step "ruff, mypy"
.venv/bin/ruff check python tests bench examples
.venv/bin/ruff format --check python tests bench examples
.venv/bin/mypy

step "pytest"
.venv/bin/pytest -q

step "benchmarks (quick)"
.venv/bin/python bench/run.py --quick
