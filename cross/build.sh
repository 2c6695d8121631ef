#!/bin/sh
# Builds static, stripped sitewatch-agent binaries for the Pi and VM targets into dist/.
#   cross/build.sh [TARGET...]   default: all four targets below
# Needs only rustup (targets are added as needed) and rust-lld, which ships with Rust.
set -eu
cd "$(dirname "$0")/.."
targets="${*:-aarch64-unknown-linux-musl armv7-unknown-linux-musleabihf arm-unknown-linux-musleabihf x86_64-unknown-linux-musl}"
mkdir -p dist
for t in $targets; do
    rustup target list --installed | grep -qx "$t" || rustup target add "$t"
    env_name=$(echo "CARGO_TARGET_${t}_LINKER" | tr 'a-z-' 'A-Z_')
    env "$env_name=rust-lld" cargo build --locked --profile release-small -p sitewatch-agent --target "$t"
    cp "target/$t/release-small/sitewatch-agent" "dist/sitewatch-agent-$t"
    echo "$t: $(stat -c %s "dist/sitewatch-agent-$t") bytes -> dist/sitewatch-agent-$t"
done
