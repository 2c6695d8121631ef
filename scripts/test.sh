#!/bin/sh
# The whole test suite, as CI runs it (.ci/run calls this): prerequisites, format, lints,
# then every test of the workspace against real binaries and real brokers on loopback.
set -eu
cd "$(dirname "$0")/.."
scripts/install-deps.sh --test
PATH="$HOME/.cargo/bin:$PATH"

echo "== cargo fmt --check" >&2
cargo fmt --all -- --check
echo "== cargo clippy" >&2
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo build (binaries used by integration tests)" >&2
cargo build --workspace --bins --locked
echo "== cargo test" >&2
cargo test --workspace --locked -- --test-threads=2
echo "all tests passed" >&2
