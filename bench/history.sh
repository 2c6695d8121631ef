#!/bin/sh
# Times history queries on a database holding 100 nodes x 30 days (built once, reused for an
# hour): GET .../series for a 24-hour and a 30-day range of one metric, through the real
# hub's HTTP API on loopback. Extra arguments go to sitewatch-history-bench (--help).
set -eu
cd "$(dirname "$0")/.."
PATH="$HOME/.cargo/bin:$PATH"
cargo build --release --locked -q -p sitewatch-hub -p sitewatch-history-bench
exec target/release/sitewatch-history-bench --hub target/release/sitewatch-hub "$@"
