#!/usr/bin/env bash
# Fuzzes the list-bundle loader for a bounded time: every target in native/fuzz runs for
# SECONDS (default 60), starting from the committed seeds (native/fuzz/seeds/<target>) and the
# local corpus (native/fuzz/corpus/<target>, git-ignored, where new inputs are kept). Prints
# one summary line per target and exits non-zero if any target crashed; libFuzzer writes the
# reproducer under native/fuzz/artifacts/<target>/ and the log is native/fuzz/artifacts/<target>.log.
#
#   scripts/fuzz.sh [SECONDS]
#   FUZZ_JOBS=N   targets fuzzed at once (default: the number of CPUs), one core each
#
# Stable toolchain: cargo-fuzz's default build adds AddressSanitizer through `-Zsanitizer`, which
# only nightly accepts. `--sanitizer none` leaves it out, and every remaining flag
# (-Cpasses=sancov-module, -Cllvm-args=-sanitizer-coverage-*, -Cdebug-assertions) is stable, so
# no RUSTC_BOOTSTRAP is needed. The crate is safe Rust, so ASan would add little; debug
# assertions (and with them overflow checks) stay on, so an integer overflow is a crash too.
set -euo pipefail
cd "$(dirname "$0")/../native"

duration=${1:-60}
cargo_fuzz_version=0.13.2
jobs=${FUZZ_JOBS:-$(nproc 2>/dev/null || echo 1)}

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz $cargo_fuzz_version"
    cargo install cargo-fuzz --version "$cargo_fuzz_version" --locked
fi

echo "== building fuzz targets ($(cargo fuzz --version))"
cargo fuzz build --sanitizer none

targets=$(cargo fuzz list)
mkdir -p fuzz/artifacts
for t in $targets; do
    mkdir -p "fuzz/corpus/$t"
    rm -f "fuzz/artifacts/$t.log" "fuzz/artifacts/$t.rc"
done

fuzz_one() {
    local t=$1 start rc
    start=$(date +%s)
    set +e
    # -timeout: a single input running 10 s is a hang; -rss_limit_mb (default 2048) also
    # bounds every malloc, so an input that makes the parser allocate much is a crash too.
    cargo fuzz run --sanitizer none "$t" "fuzz/corpus/$t" "fuzz/seeds/$t" -- \
        -max_total_time="$duration" -timeout=10 -print_final_stats=1 \
        >"fuzz/artifacts/$t.log" 2>&1
    rc=$?
    set -e
    echo "$rc $(($(date +%s) - start))" >"fuzz/artifacts/$t.rc"
}

echo "== fuzzing for $duration s per target, $jobs at once: $(echo $targets)"
running=0
for t in $targets; do
    if [ "$running" -ge "$jobs" ]; then
        wait -n || true
        running=$((running - 1))
    fi
    fuzz_one "$t" &
    running=$((running + 1))
done
wait || true

failed=0
for t in $targets; do
    log="fuzz/artifacts/$t.log"
    read -r rc elapsed <"fuzz/artifacts/$t.rc"
    # libFuzzer's final statistics (-print_final_stats=1), printed after a crash as well.
    execs=$(awk '/^stat::number_of_executed_units:/ { n = $2 } END { print n }' "$log")
    if [ -z "$execs" ]; then
        execs=$(sed -n 's/^Done \([0-9]*\) runs in .*/\1/p' "$log" | tail -n 1)
    fi
    secs=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -n 1)
    secs=${secs:-$elapsed}
    rate=$(awk '/^stat::average_exec_per_sec:/ { n = $2 } END { print n }' "$log")
    if [ "$rc" -eq 0 ]; then
        echo "fuzz $t: ${execs:-?} execs in $secs s (${rate:-?}/s), no crash"
    else
        failed=1
        reproducer=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
        reproducer=${reproducer:-<input>}
        echo "fuzz $t: ${execs:-?} execs in $secs s, CRASH (exit $rc); reproducer: $reproducer; log: native/$log"
        grep -m 1 -A 1 -E "panicked at|ERROR: libFuzzer" "$log" | sed 's/^/    /' || true
        echo "    reproduce: (cd native && cargo fuzz run --sanitizer none $t $reproducer)"
    fi
done
exit "$failed"
