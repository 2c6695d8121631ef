#!/bin/sh
# LAN sweep benchmark: the agent's scan against fping, nmap and arp-scan, in the same lab
# (scripts/lab.sh) and the same run, each inside the lab's scanner namespace.
#
#   bench/scan.sh [--hosts-ping N] [--hosts-arp-only N] [--hosts-late N] [--runs N]
#                 [--agent PATH] [--keep]
#
#   defaults      150 hosts answering ping, 80 answering only ARP, 20 answering ping 200 ms
#                 late, in 10.231.0.0/24 (the acceptance lab of issue 6); 3 runs per tool
#   --agent       agent binary to time (default: cargo build --release, then that one)
#   --keep        leave the lab up afterwards (default: torn down, also on failure)
#
# Peers, with the flags of the acceptance (fping tuned: one retry, 300 ms timeout, 1 ms
# between probes):
#   fping -a -q -r 1 -t 300 -i 1 -g CIDR     ICMP only
#   nmap -sn -n CIDR                         as root on a local LAN: ARP requests
#   arp-scan -I lab0 -q -x CIDR              ARP requests
# Before every run of every tool the scanner namespace's neighbour table is flushed, so each
# starts cold (the agent's ARP-only hosts must come from its own sweep). Prints, per tool,
# the median wall time over the runs and the hosts found per class in its slowest run.
# Needs root, iproute2, python3, fping, nmap, arp-scan (scripts/install-deps.sh --bench).
set -eu
cd "$(dirname "$0")/.."
PATH="$HOME/.cargo/bin:$PATH"

PING=150 ARP=80 LATE=20 RUNS=3 AGENT="" KEEP=0
while [ $# -gt 0 ]; do
    case "$1" in
        --hosts-ping) PING=$2; shift 2 ;;
        --hosts-arp-only) ARP=$2; shift 2 ;;
        --hosts-late) LATE=$2; shift 2 ;;
        --runs) RUNS=$2; shift 2 ;;
        --agent) AGENT=$2; shift 2 ;;
        --keep) KEEP=1; shift ;;
        -h | --help) sed -n '2,/^set -eu/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "bench/scan.sh: unknown option $1 (try --help)" >&2; exit 2 ;;
    esac
done
[ "$(id -u)" -eq 0 ] || { echo "bench/scan.sh: needs root (network namespaces)" >&2; exit 1; }
for tool in fping nmap arp-scan python3; do
    command -v "$tool" >/dev/null 2>&1 ||
        { echo "bench/scan.sh: $tool not found — run scripts/install-deps.sh --bench" >&2; exit 1; }
done

if [ -z "$AGENT" ]; then
    cargo build --quiet --release --locked -p sitewatch-agent
    AGENT="${CARGO_TARGET_DIR:-target}/release/sitewatch-agent"
fi
[ -x "$AGENT" ] || { echo "bench/scan.sh: no agent binary at $AGENT" >&2; exit 1; }

CIDR=10.231.0.0/24
work=$(mktemp -d)
cleanup() {
    rm -rf "$work"
    [ "$KEEP" -eq 1 ] || scripts/lab.sh down >/dev/null 2>&1 || true
}
trap cleanup EXIT INT TERM

scripts/lab.sh up --hosts-ping "$PING" --hosts-arp-only "$ARP" --hosts-late "$LATE"
scripts/lab.sh hosts >"$work/hosts"

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# run TOOL RUN COMMAND...: flushes the neighbour table, times COMMAND in lab-scan, keeps
# its output in $work/TOOL.RUN.out and the wall time in $work/TOOL.RUN.ms.
run() {
    tool=$1 n=$2
    shift 2
    ip -n lab-scan neigh flush all
    start=$(now_ms)
    ip netns exec lab-scan "$@" >"$work/$tool.$n.out" 2>"$work/$tool.$n.err" || true
    echo $(($(now_ms) - start)) >"$work/$tool.$n.ms"
}

n=1
while [ "$n" -le "$RUNS" ]; do
    run agent "$n" "$AGENT" scan --network "$CIDR"
    run fping "$n" fping -a -q -r 1 -t 300 -i 1 -g "$CIDR"
    run nmap "$n" nmap -sn -n -oG - "$CIDR"
    run arp-scan "$n" arp-scan -I lab0 -q -x "$CIDR"
    n=$((n + 1))
done

python3 - "$work" "$RUNS" <<'PY'
import json, re, statistics, sys

work, runs = sys.argv[1], int(sys.argv[2])
hosts = {}
for line in open(f"{work}/hosts"):
    ip, mac, cls, _ns = line.split()
    hosts[ip] = (mac.lower(), cls)
classes = ["ping", "arp-only", "late"]
total = {c: sum(1 for _, k in hosts.values() if k == c) for c in classes}

def found(tool, text):
    """{ip: mac or None} of lab hosts the tool reported."""
    out = {}
    if tool == "agent":
        scan = json.loads(text) if text.strip() else {"hosts": []}
        for h in scan["hosts"]:
            out[h["ip"]] = h.get("mac")
    elif tool == "fping":
        for line in text.split():
            out[line.strip()] = None
    elif tool == "nmap":
        for m in re.finditer(r"^Host: (\S+) .*Status: Up", text, re.M):
            out[m.group(1)] = None
    elif tool == "arp-scan":
        for line in text.splitlines():
            f = line.split()
            if len(f) >= 2:
                out[f[0]] = f[1].lower()
    return {ip: mac for ip, mac in out.items() if ip in hosts}

print(f"\nLAN sweep of 10.231.0.0/24: {total['ping']} hosts answer ping, {total['arp-only']} only ARP, "
      f"{total['late']} ping 200 ms late; median of {runs} run(s), neighbour table flushed before each\n")
head = f"{'tool':<10} {'wall ms':>8}  {'ping':>9} {'arp-only':>9} {'late':>9} {'total':>9} {'right MAC':>9}"
print(head)
print("-" * len(head))
for tool in ["agent", "fping", "nmap", "arp-scan"]:
    times, worst = [], None
    for n in range(1, runs + 1):
        times.append(int(open(f"{work}/{tool}.{n}.ms").read()))
        got = found(tool, open(f"{work}/{tool}.{n}.out").read())
        if worst is None or len(got) < len(worst):
            worst = got
    per = {c: sum(1 for ip in worst if hosts[ip][1] == c) for c in classes}
    macs = sum(1 for ip, mac in worst.items() if mac == hosts[ip][0])
    mac_col = f"{macs}" if tool in ("agent", "arp-scan") else "-"
    print(f"{tool:<10} {statistics.median(times):>8.0f}  "
          + " ".join(f"{per[c]:>4}/{total[c]:<4}" for c in classes)
          + f" {len(worst):>4}/{len(hosts):<4} {mac_col:>9}")
err = open(f"{work}/agent.1.err").read().strip().splitlines()
if err:
    print(f"\nagent log (run 1): {err[-1]}")
PY
