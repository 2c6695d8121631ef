#!/bin/sh
# The whole test suite, as CI runs it (.ci/run calls this): prerequisites, format, lints,
# then every test of the workspace against real binaries and real brokers on loopback,
# including the aarch64, armv7 and armv6 agents run under qemu-user-static
# (hub/tests/cross_agents.rs).
set -eu
cd "$(dirname "$0")/.."
scripts/install-deps.sh --test --cross
PATH="$HOME/.cargo/bin:$PATH"

echo "== cargo fmt --check" >&2
cargo fmt --all -- --check
echo "== cargo clippy" >&2
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo build (binaries used by integration tests)" >&2
cargo build --workspace --bins --locked
echo "== deploy/agent.toml is a valid agent config" >&2
cargo run --quiet --locked -p sitewatch-agent -- validate --config deploy/agent.toml
echo "== cross/build.sh (aarch64, armv7 and armv6 agents for the qemu tests)" >&2
cross_start=$(date +%s)
cross/build.sh --profile cross-test --no-dist aarch64-unknown-linux-musl \
    armv7-unknown-linux-musleabihf arm-unknown-linux-musleabihf
echo "cross builds took $(($(date +%s) - cross_start)) s" >&2
echo "== cargo test" >&2
cargo test --workspace --locked -- --test-threads=2
echo "all tests passed" >&2
