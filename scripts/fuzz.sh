#!/bin/sh
# Runs every cargo-fuzz target for SECONDS each (default 600) on its committed corpus
# (fuzz/corpus/<target>, which grows with what the fuzzer finds) and prints executions per
# target. Needs cargo-fuzz (installed here if missing) and builds with the stable toolchain
# through RUSTC_BOOTSTRAP=1 (cargo-fuzz needs -Z flags for the sanitizer).
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
set -eu
cd "$(dirname "$0")/.."
PATH="$HOME/.cargo/bin:$PATH"
seconds="${1:-600}"
[ $# -gt 0 ] && shift
targets="${*:-payload topic config api_query codec}"
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked
export RUSTC_BOOTSTRAP=1
cargo fuzz build -O
printf '%-10s %12s %10s %s\n' target executions exec/s result
for t in $targets; do
    log=$(mktemp)
    if cargo fuzz run -O "$t" "fuzz/corpus/$t" -- -max_total_time="$seconds" -print_final_stats=1 \
        > "$log" 2>&1; then
        result=ok
    else
        result="CRASH (see fuzz/artifacts/$t)"
    fi
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo 0)
    rate=$(grep -o 'exec/s: *[0-9]*' "$log" | tail -1 | grep -o '[0-9]*$' || echo 0)
    printf '%-10s %12s %10s %s\n' "$t" "$runs" "$rate" "$result"
    [ "$result" = ok ] || { tail -40 "$log" >&2; rm -f "$log"; exit 1; }
    rm -f "$log"
done
