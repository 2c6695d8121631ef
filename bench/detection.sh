#!/bin/sh
# Offline detection latency: how long from an agent's death to the node-offline alert
# leaving the hub (a webhook received by a local receiver), over N agents killed with
# SIGKILL (the kernel closes the socket: the broker fires the last will at once) and N
# stopped with SIGSTOP (silent: no FIN, no keepalive; found by the broker's keepalive
# timeout, 1.5 x keepalive, or the hub's heartbeat timeout, 3 x heartbeat interval,
# whichever comes first). Prints p50/p99/max per case next to the budget of the issue:
# 1.5 x keepalive + 2 s, and heartbeat timeout + 2 s.
#
#   bench/detection.sh [--kills N] [--heartbeat-s S] [--keepalive-s S] [--no-build]
#
# Everything runs on 127.0.0.1; every process started here is stopped by its PID.
set -eu
cd "$(dirname "$0")/.."
PATH="$HOME/.cargo/bin:$PATH"
kills=20 hb=2 keepalive=4 build=1
while [ $# -gt 0 ]; do
    case "$1" in
        --kills) kills="$2"; shift 2 ;;
        --heartbeat-s) hb="$2"; shift 2 ;;
        --keepalive-s) keepalive="$2"; shift 2 ;;
        --no-build) build=0; shift ;;
        -h|--help) sed -n '2,/^set -eu/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "bench/detection.sh: unknown option $1 (try --help)" >&2; exit 2 ;;
    esac
done
target="${CARGO_TARGET_DIR:-target}"
if [ "$build" -eq 1 ]; then
    cargo build --release --locked -q -p sitewatch-hub -p sitewatch-agent
fi
hub_bin="$target/release/sitewatch-hub"
agent_bin="$target/release/sitewatch-agent"

work=$(mktemp -d "${TMPDIR:-/tmp}/sitewatch-detect.XXXXXX")
pids=""
cleanup() {
    for p in $pids; do kill -9 "$p" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
now_ms() { python3 -c 'import time; print(int(time.time()*1000))'; }

hook_port=$(free_port); mqtt_port=$(free_port); http_port=$(free_port)
# Webhook receiver: one line "<receive ms> <status> <node>" per POST.
cat > "$work/recv.py" <<'PY'
import http.server, json, sys, time
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        t = int(time.time() * 1000)
        self.send_response(200); self.send_header("Content-Length", "0"); self.end_headers()
        try:
            v = json.loads(body)
            print(t, v.get("status"), (v.get("alert") or {}).get("node"), flush=True)
        except Exception:
            pass
    def log_message(self, *a):
        pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PY
python3 "$work/recv.py" "$hook_port" > "$work/hooks.log" &
pids="$pids $!"

cat > "$work/hub.toml" <<TOML
mqtt-listen = "127.0.0.1:$mqtt_port"
http-listen = "127.0.0.1:$http_port"
data-dir = "$work/data"
[local-agent]
enabled = false
[alerts]
default-rules = false
[[alerts.rules]]
name = "node-offline"
kind = "node-offline"
severity = "critical"
[[alerts.notifiers]]
name = "hook"
kind = "webhook"
url = "http://127.0.0.1:$hook_port/alerts"
send-resolved = false
TOML
RUST_LOG=warn "$hub_bin" --config "$work/hub.toml" --allow-unsigned > "$work/hub.log" 2>&1 &
pids="$pids $!"
i=0
until curl -fs "http://127.0.0.1:$http_port/healthz" | grep -q '"mqtt_connected":true'; do
    i=$((i + 1)); [ "$i" -lt 150 ] || { echo "hub did not start; see $work/hub.log" >&2; cat "$work/hub.log" >&2; exit 1; }
    sleep 0.2
done

status_of() {
    curl -fs "http://127.0.0.1:$http_port/api/v1/nodes" |
        python3 -c 'import json,sys; n=sys.argv[1]; print(next((x["status"] for x in json.load(sys.stdin) if x["node"]==n), "none"))' "$1"
}

run_case() { # $1 = kill | stop
    : > "$work/$1.ms"
    n=1
    while [ "$n" -le "$kills" ]; do
        node="$1-$n"
        RUST_LOG=warn "$agent_bin" --broker "mqtt://127.0.0.1:$mqtt_port" --site bench --node "$node" \
            --heartbeat-interval "$hb" --metrics-interval 30 --keepalive "$keepalive" > /dev/null 2>&1 &
        apid=$!
        pids="$pids $apid"
        j=0
        until [ "$(status_of "$node")" = online ]; do
            j=$((j + 1)); [ "$j" -lt 100 ] || { echo "agent $node never online" >&2; exit 1; }
            sleep 0.1
        done
        # Let it settle into its heartbeat rhythm, at a random phase.
        sleep "$(python3 -c 'import random; print(1 + random.random() * 2)')"
        t0=$(now_ms)
        if [ "$1" = kill ]; then kill -9 "$apid"; else kill -STOP "$apid"; fi
        j=0
        until line=$(grep " firing $node\$" "$work/hooks.log"); do
            j=$((j + 1)); [ "$j" -lt 400 ] || { echo "no offline alert for $node within 40 s" >&2; exit 1; }
            sleep 0.05
        done
        t1=${line%% *}
        echo $((t1 - t0)) >> "$work/$1.ms"
        kill -9 "$apid" 2>/dev/null || true
        n=$((n + 1))
    done
}
echo "== $kills agents killed (SIGKILL), then $kills stopped (SIGSTOP); heartbeat ${hb} s, keepalive ${keepalive} s" >&2
run_case kill
run_case stop

python3 - "$work/kill.ms" "$work/stop.ms" "$hb" "$keepalive" "$(nproc)" <<'PY'
import sys
def pct(v, p):
    v = sorted(v); return v[min(len(v) - 1, int(round((len(v) - 1) * p)))]
hb, ka = float(sys.argv[3]), float(sys.argv[4])
rows = [("SIGKILL (socket closed)", sys.argv[1], 1.5 * ka + 2),
        ("SIGSTOP (silent)", sys.argv[2], 3 * hb + 2)]
print(f"offline detection to notification (webhook received), {sys.argv[5]} cores")
print(f"{'case':<26}{'n':>4}{'p50 s':>8}{'p99 s':>8}{'max s':>8}{'budget s':>10}")
for name, f, budget in rows:
    v = [int(x) / 1000 for x in open(f).read().split()]
    print(f"{name:<26}{len(v):>4}{pct(v,.5):>8.2f}{pct(v,.99):>8.2f}{max(v):>8.2f}{budget:>10.1f}")
PY
