#!/bin/sh
# Builds and runs the hub: embedded MQTT broker on :1883, dashboard and API on
# http://127.0.0.1:8080, database in ./data, and an agent for this machine.
# Extra arguments go to sitewatch-hub (try --help).
set -eu
cd "$(dirname "$0")/.."
scripts/install-deps.sh
PATH="$HOME/.cargo/bin:$PATH"
cargo build --release --locked -p sitewatch-hub
exec target/release/sitewatch-hub --data-dir ./data "$@"
