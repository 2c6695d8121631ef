#!/bin/sh
# Footprint benchmark: the agent beside collectd, in one run on this machine.
#
#   bench/footprint.sh [--reuse] [--window SECS] [--warmup SECS]
#
#   --reuse     use the agents already in dist/ (from cross/build.sh) instead of building
#   --window    measuring window, default 120 s
#   --warmup    time both run before the window opens, default 30 s
#
# Prints:
# 1. the stripped size of the agent for every target (cross/build.sh, profile release-small);
# 2. one table, the x86_64 agent and collectd side by side, both sampling every 10 s and
#    publishing over MQTT to the same Mosquitto on 127.0.0.1 (the hub subscribes there and
#    acknowledges the agent's messages, as in production, so its outbox stays empty):
#    - binary size: the agent's static binary; collectd's daemon plus its 7 plugins (shared
#      libraries such as libc and libmosquitto not counted);
#    - RSS: VmRSS from /proc/PID/status sampled every second over the window; "steady" is the
#      median of those samples, the maximum is shown beside it;
#    - CPU: nanoseconds on CPU from /proc/PID/task/TID/schedstat (first field), summed over
#      every thread of the process (collectd runs several; threads that appear during the
#      window count from 0), divided by the window's wall time: % of one core;
#    - messages each published during the window (counted by mosquitto_sub), so a tool that
#      stalled cannot look cheap.
# collectd: Debian's collectd-core with cpu, memory, df, interface, load, thermal and the mqtt
# write plugin, Interval 10. Agent: --heartbeat-interval 10 --metrics-interval 10.
#
# Everything runs on loopback; every process started here is stopped by its own PID at exit.
# Takes about 2.5 min plus the builds (scripts/install-deps.sh --cross --bench installs
# collectd-core, mosquitto and the cross-build tools).
set -eu
cd "$(dirname "$0")/.."
PATH="$HOME/.cargo/bin:$PATH"

reuse=0 window=120 warmup=30
while [ $# -gt 0 ]; do
    case "$1" in
        --reuse) reuse=1; shift ;;
        --window) window="$2"; shift 2 ;;
        --warmup) warmup="$2"; shift 2 ;;
        -h|--help) sed -n '2,/^set -eu/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "bench/footprint.sh: unknown option $1 (try --help)" >&2; exit 2 ;;
    esac
done
interval=10
targets="aarch64-unknown-linux-musl armv7-unknown-linux-musleabihf arm-unknown-linux-musleabihf x86_64-unknown-linux-musl"
collectd_plugins="cpu memory df interface load thermal mqtt"
collectd_plugin_dir=/usr/lib/collectd

scripts/install-deps.sh --cross --bench
echo "== building" >&2
if [ "$reuse" -eq 0 ]; then
    cross/build.sh $targets >&2
else
    for t in $targets; do
        [ -f "dist/sitewatch-agent-$t" ] || {
            echo "bench/footprint.sh: dist/sitewatch-agent-$t missing: run cross/build.sh or drop --reuse" >&2
            exit 1
        }
    done
fi
cargo build --release --locked -p sitewatch-hub >&2
agent_bin=dist/sitewatch-agent-x86_64-unknown-linux-musl
hub_bin=target/release/sitewatch-hub
collectd_bin=/usr/sbin/collectd
mosquitto_bin=$(command -v mosquitto || echo /usr/sbin/mosquitto)

tmp=$(mktemp -d "${TMPDIR:-/tmp}/sitewatch-footprint.XXXXXX")
pids=""
cleanup() {
    for p in $pids; do kill "$p" 2>/dev/null || true; done
    for p in $pids; do wait "$p" 2>/dev/null || true; done
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
mqtt_port=$(free_port)
http_port=$(free_port)

cat >"$tmp/mosquitto.conf" <<EOF
listener $mqtt_port 127.0.0.1
allow_anonymous true
persistence false
log_dest stderr
EOF
"$mosquitto_bin" -c "$tmp/mosquitto.conf" 2>"$tmp/mosquitto.log" &
pids="$pids $!"

mkdir "$tmp/hub"
RUST_LOG=warn "$hub_bin" --allow-unsigned --broker "mqtt://127.0.0.1:$mqtt_port" --http-listen "127.0.0.1:$http_port" \
    --data-dir "$tmp/hub" --no-local-agent 2>"$tmp/hub.log" &
pids="$pids $!"

cat >"$tmp/agent.toml" <<EOF
site = "bench"
node = "sitewatch-agent"
broker = "mqtt://127.0.0.1:$mqtt_port"
heartbeat-interval-s = $interval
metrics-interval-s = $interval
EOF
{
    echo "Hostname \"bench\""
    echo "FQDNLookup false"
    echo "Interval $interval"
    echo "BaseDir \"$tmp\""
    echo "PIDFile \"$tmp/collectd.pid\""
    echo "PluginDir \"$collectd_plugin_dir\""
    echo "TypesDB \"/usr/share/collectd/types.db\""
    for p in $collectd_plugins; do echo "LoadPlugin $p"; done
    echo "<Plugin mqtt>"
    echo "  <Publish \"bench\">"
    echo "    Host \"127.0.0.1\""
    echo "    Port \"$mqtt_port\""
    echo "    ClientId \"collectd-bench\""
    echo "  </Publish>"
    echo "</Plugin>"
} >"$tmp/collectd.conf"

sleep 1 # the broker listens
"$agent_bin" --config "$tmp/agent.toml" 2>"$tmp/agent.log" &
agent_pid=$!
pids="$pids $agent_pid"
"$collectd_bin" -f -C "$tmp/collectd.conf" >"$tmp/collectd.log" 2>&1 &
collectd_pid=$!
pids="$pids $collectd_pid"

echo "== warm-up ${warmup} s (agent pid $agent_pid, collectd pid $collectd_pid)" >&2
# Each tool's messages during the window, counted by a subscriber on the same broker.
count_messages() { # TOPIC OUT
    timeout "$((warmup + window + 5))" mosquitto_sub -h 127.0.0.1 -p "$mqtt_port" -t "$1" -v \
        >"$2" 2>/dev/null &
    pids="$pids $!"
}
count_messages 'sitewatch/v1/bench/#' "$tmp/agent.msgs"
count_messages 'collectd/#' "$tmp/collectd.msgs"
sleep "$warmup"
for p in $agent_pid $collectd_pid; do
    kill -0 "$p" 2>/dev/null || {
        echo "bench/footprint.sh: pid $p exited during warm-up; logs:" >&2
        tail -n 20 "$tmp/agent.log" "$tmp/collectd.log" >&2
        exit 1
    }
done
[ -s "$tmp/agent.msgs" ] || { echo "bench/footprint.sh: the agent published nothing; its log:" >&2; tail -n 20 "$tmp/agent.log" >&2; exit 1; }
[ -s "$tmp/collectd.msgs" ] || { echo "bench/footprint.sh: collectd published nothing; its log:" >&2; tail -n 20 "$tmp/collectd.log" >&2; exit 1; }
# The hub's own messages under the node (ack, alerts) are not the agent's.
agent_published() { grep -cvE '^[^ ]*/(ack|alerts) ' "$tmp/agent.msgs" || true; }
agent_msgs0=$(agent_published)
collectd_msgs0=$(wc -l <"$tmp/collectd.msgs")

# One line per thread: "NOW_NS PID TID RUN_NS"; one per process: "NOW_NS PID rss KB".
sample() { # PID
    now=$(date +%s%N)
    for f in /proc/"$1"/task/*/schedstat; do
        if read -r ns _ 2>/dev/null <"$f"; then
            tid=${f#/proc/"$1"/task/}
            echo "$now $1 ${tid%/schedstat} $ns"
        fi
    done >>"$tmp/cpu.log"
    while read -r key kb _; do
        if [ "$key" = "VmRSS:" ]; then echo "$now $1 rss $kb"; fi
    done <"/proc/$1/status" >>"$tmp/rss.log"
}

echo "== measuring ${window} s" >&2
start=$(date +%s)
while :; do
    sample "$agent_pid"
    sample "$collectd_pid"
    if [ $(($(date +%s) - start)) -ge "$window" ]; then break; fi
    sleep 1
done
agent_msgs=$(($(agent_published) - agent_msgs0))
collectd_msgs=$(($(wc -l <"$tmp/collectd.msgs") - collectd_msgs0))

cpu_pct() { # PID -> % of one core over the window, all threads
    awk -v pid="$1" '$2 == pid {
            if (t0 == "") t0 = $1
            t1 = $1
            # A thread already there when the window opened counts from its value then,
            # one started later from 0.
            if (!($3 in first)) first[$3] = ($1 == t0 ? $4 : 0)
            last[$3] = $4
        }
        END {
            for (t in last) run += last[t] - first[t]
            printf "%.4f", run / (t1 - t0) * 100
        }' "$tmp/cpu.log"
}
rss_mib() { # PID median|max
    awk -v pid="$1" '$2 == pid && $3 == "rss" { print $4 }' "$tmp/rss.log" | sort -n |
        awk -v what="$2" '{ v[NR] = $1 } END {
            x = (what == "max") ? v[NR] : (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2)
            printf "%.2f", x / 1024
        }'
}
mib() { awk -v s="$1" 'BEGIN { printf "%.2f", s / 1048576 }'; }

agent_size=$(stat -c %s "$agent_bin")
collectd_size=$(stat -c %s "$collectd_bin")
for p in $collectd_plugins; do
    collectd_size=$((collectd_size + $(stat -c %s "$collectd_plugin_dir/$p.so")))
done
collectd_version=$("$collectd_bin" -h 2>&1 | sed -n 's/^collectd \([0-9][0-9.]*[0-9]\).*/\1/p' | head -n 1)

echo
echo "sitewatch-agent binaries (cross/build.sh, profile release-small: static musl, stripped, with TLS)"
printf '%-32s %10s %8s\n' target bytes MiB
for t in $targets; do
    s=$(stat -c %s "dist/sitewatch-agent-$t")
    printf '%-32s %10d %8s\n' "$t" "$s" "$(mib "$s")"
done
echo
echo "Footprint on $(nproc) cores, $interval s interval, ${window} s window after ${warmup} s warm-up, MQTT to 127.0.0.1"
printf '%-30s %12s %16s %14s %12s %9s\n' tool "binary MiB" "RSS MiB median" "RSS MiB max" "CPU % 1 core" "MQTT msgs"
printf '%-30s %12s %16s %14s %12s %9s\n' "sitewatch-agent (x86_64 musl)" "$(mib "$agent_size")" \
    "$(rss_mib "$agent_pid" median)" "$(rss_mib "$agent_pid" max)" "$(cpu_pct "$agent_pid")" "$agent_msgs"
printf '%-30s %12s %16s %14s %12s %9s\n' "collectd ${collectd_version} (+7 plugins)" "$(mib "$collectd_size")" \
    "$(rss_mib "$collectd_pid" median)" "$(rss_mib "$collectd_pid" max)" "$(cpu_pct "$collectd_pid")" "$collectd_msgs"
