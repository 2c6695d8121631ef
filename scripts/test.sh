#!/bin/sh
# The whole test suite, as CI runs it (.ci/run calls this): prerequisites, format, lints,
# then every test of the workspace against real binaries and real brokers on loopback,
# including the aarch64, armv7 and armv6 agents run under qemu-user-static
# (hub/tests/cross_agents.rs).
set -eu
cd "$(dirname "$0")/.."
scripts/install-deps.sh --test --cross
PATH="$HOME/.cargo/bin:$PATH"

# A clean CI clone builds once: incremental caches would only add gigabytes to the disk.
if [ "${CI:-}" = true ]; then
    export CARGO_INCREMENTAL=0
fi

# A clean run writes about 3.6 GB under target/ (debug, cross and release agents). Say so now
# rather than let the linker die with a bus error half-way through the build.
target_dir=${CARGO_TARGET_DIR:-target}
mkdir -p "$target_dir"
need_kb=$((6 * 1024 * 1024))
have_kb=$(( $(df -Pk "$target_dir" | awk 'NR == 2 { print $4 }') + $(du -sk "$target_dir" | cut -f1) ))
if [ "$have_kb" -lt "$need_kb" ]; then
    echo "scripts/test.sh: $target_dir needs about $((need_kb / 1024 / 1024)) GB (free space plus" \
        "what it already holds), it has $((have_kb / 1024 / 1024)) GB: free some disk" \
        "(cargo clean, old clones) or point CARGO_TARGET_DIR at a bigger disk" >&2
    exit 1
fi

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
