#!/bin/sh
# Ingest benchmark: how many metric samples per second the hub stores durably on this
# machine, next to the raw SQLite insert rate of the same machine (the limit of the design).
#
#   bench/ingest.sh [--agents N] [--interval-s F] [--extra-series K] [--duration-s D]
#                   [--warmup-s W] [--raw-seconds S] [--no-build]
#
#   --agents        simulated agents, one MQTT connection each (default 840)
#   --interval-s    seconds between metrics messages of one agent (default 1.0)
#   --extra-series  more filesystems and temperature sensors per payload (default 0: 66
#                   samples per message); 840 agents x 66 samples / 1 s = 55,440 samples/s
#   --duration-s    measured window (default 60)
#   --warmup-s      load before the window opens (default 20)
#   --raw-seconds   length of the raw SQLite measurement (default 10)
#   --no-build      use the release binaries already in the target directory
#
# Steps: builds the release hub and load generator; measures raw SQLite batched inserts
# (`sitewatch-loadgen sqlite-limit`, i.e. sitewatch_hub::store::bench: the hub's schema,
# pragmas and frame encoding, 1000-frame transactions of as many samples as one payload) on the filesystem of the hub's data;
# starts target/release/sitewatch-hub with a temporary data directory, its embedded broker
# and HTTP API on free 127.0.0.1 ports (its own local agent stays on, as in production);
# waits for /healthz; runs `sitewatch-loadgen run` against it (samples/s stored = samples
# of the messages newly covered by the hub's acks, which it publishes only after the SQLite
# commit; latency = publish to covering ack; hub RSS and CPU from /proc; database growth);
# prints the table. The load generator runs on the same 2 cores as the hub, and so does
# anything else running on the machine (other builds): its own CPU share is printed.
#
# Everything stays on loopback; every process started here is stopped by its PID at exit.
# Takes about 2 minutes plus the build.
set -eu
cd "$(dirname "$0")/.."
PATH="$HOME/.cargo/bin:$PATH"

agents=840 interval=1.0 extra=0 duration=60 warmup=20 raw_seconds=10 build=1
while [ $# -gt 0 ]; do
    case "$1" in
        --agents) agents="$2"; shift 2 ;;
        --interval-s) interval="$2"; shift 2 ;;
        --extra-series) extra="$2"; shift 2 ;;
        --duration-s) duration="$2"; shift 2 ;;
        --warmup-s) warmup="$2"; shift 2 ;;
        --raw-seconds) raw_seconds="$2"; shift 2 ;;
        --no-build) build=0; shift ;;
        -h|--help) sed -n '2,/^set -eu/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "bench/ingest.sh: unknown option $1 (try --help)" >&2; exit 2 ;;
    esac
done

target="${CARGO_TARGET_DIR:-target}"
hub_bin="$target/release/sitewatch-hub"
loadgen_bin="$target/release/sitewatch-loadgen"
if [ "$build" -eq 1 ]; then
    echo "== building release binaries (hub, loadgen)" >&2
    cargo build --release --locked -p sitewatch-hub -p sitewatch-loadgen >&2
fi
for b in "$hub_bin" "$loadgen_bin"; do
    [ -x "$b" ] || { echo "bench/ingest.sh: $b missing: run without --no-build" >&2; exit 1; }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/sitewatch-ingest.XXXXXX")
hub_pid=""
cleanup() {
    if [ -n "$hub_pid" ] && kill -0 "$hub_pid" 2>/dev/null; then
        kill -TERM "$hub_pid" 2>/dev/null || true
        i=0
        while kill -0 "$hub_pid" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
        kill -KILL "$hub_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A loopback port nobody listens on (ss, from iproute2).
free_port() {
    while :; do
        p=$(( 20000 + $(od -An -N2 -tu2 /dev/urandom | tr -d ' ') % 40000 ))
        if ! ss -Hltn "sport = :$p" 2>/dev/null | grep -q .; then
            echo "$p"
            return
        fi
    done
}

spm=$("$loadgen_bin" payload --count --extra-series "$extra")
echo "== raw SQLite batched-insert rate (${raw_seconds} s, $spm samples per frame)" >&2
raw_json=$("$loadgen_bin" sqlite-limit --dir "$work/raw" --samples-per-frame "$spm" \
    --seconds "$raw_seconds" --json)
raw=$(printf '%s\n' "$raw_json" | sed -n 's/.*"samples_per_s":\([0-9.e+]*\).*/\1/p')
[ -n "$raw" ] || { echo "bench/ingest.sh: no rate in: $raw_json" >&2; exit 1; }

mqtt_port=$(free_port)
http_port=$(free_port)
while [ "$http_port" = "$mqtt_port" ]; do http_port=$(free_port); done
echo "== starting the hub (mqtt 127.0.0.1:$mqtt_port, http 127.0.0.1:$http_port, data $work/data)" >&2
RUST_LOG="warn,rumqttd=off" "$hub_bin" --allow-unsigned --mqtt-listen "127.0.0.1:$mqtt_port" \
    --http-listen "127.0.0.1:$http_port" --data-dir "$work/data" 2>"$work/hub.log" &
hub_pid=$!
i=0
until curl -fsS "http://127.0.0.1:$http_port/healthz" 2>/dev/null | grep -q '"mqtt_connected":true'; do
    i=$((i + 1))
    if [ $i -gt 300 ] || ! kill -0 "$hub_pid" 2>/dev/null; then
        echo "bench/ingest.sh: the hub did not become healthy; its log:" >&2
        cat "$work/hub.log" >&2
        exit 1
    fi
    sleep 0.1
done

echo "== sitewatch-loadgen: $agents agents, metrics every $interval s, warmup $warmup s, window $duration s" >&2
echo "   (cores: $(nproc); load average before: $(cut -d' ' -f1-3 /proc/loadavg))" >&2
"$loadgen_bin" run --broker "mqtt://127.0.0.1:$mqtt_port" --agents "$agents" \
    --interval-s "$interval" --extra-series "$extra" --duration-s "$duration" \
    --warmup-s "$warmup" --hub-pid "$hub_pid" --db "$work/data/sitewatch.db" \
    --raw-samples-per-s "$raw" >"$work/report.txt"
echo
echo "sitewatch ingest benchmark ($(nproc) cores, $(uname -m), $(date -u +%Y-%m-%dT%H:%MZ))"
cat "$work/report.txt"
if grep -q . "$work/hub.log"; then
    echo "(hub warnings: $(wc -l <"$work/hub.log") lines, first ones below)" >&2
    head -5 "$work/hub.log" >&2
fi
