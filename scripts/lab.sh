#!/bin/sh
# A LAN lab in network namespaces, for the scanner's tests and benchmark (bench/scan.sh).
#
#   scripts/lab.sh up [--hosts-ping N] [--hosts-arp-only N] [--hosts-late N] [--delay-ms MS]
#   scripts/lab.sh down
#   scripts/lab.sh status            exit 0 when the lab is up, 3 when it is not
#   scripts/lab.sh hosts             one line per test host: IP MAC CLASS NAMESPACE
#   scripts/lab.sh add [--class ping|arp-only]    one more host; prints "IP MAC"
#   scripts/lab.sh remove IP         takes one host away (and flushes its ARP entry in lab-scan)
#   scripts/lab.sh exec CMD [ARG...] runs CMD in the scanner namespace (lab-scan)
#
# Layout (subnet 10.231.0.0/24, no default route, no link to anything outside the lab):
#
#   lab-scan (10.231.0.1, lab0) ──┐
#   lab-h2   (10.231.0.2, eth0) ──┤
#   lab-h3   (10.231.0.3, eth0) ──┼── br0 in lab-br (no address)
#   ...                            │
#   lab-hN   (10.231.0.N, eth0) ──┘
#
# Every host is its own namespace with one veth and its own MAC, so its kernel answers ARP
# for exactly its address. Classes, in address order:
#   ping      answers ping (MAC b8:27:eb:0a:e7:NN, an OUI of the Raspberry Pi Foundation)
#   arp-only  net.ipv4.icmp_echo_ignore_all=1: answers ARP, drops ping (MAC dc:a6:32:0a:e7:NN,
#             Raspberry Pi Trading Ltd)
#   late      ignores ping in its kernel; scripts/lab-late-responder.py answers each echo
#             --delay-ms later (this kernel has no tc netem) (MAC 02:5a:57:0a:e7:NN,
#             locally administered: no vendor)
# Defaults: 150 ping, 80 arp-only, 20 late (the acceptance lab of issue 6), delay 200 ms.
#
# Names: /etc/netns/lab-scan/hosts (bind-mounted over /etc/hosts by `ip netns exec`) names
# every host lab-hN, so reverse DNS has answers, and /etc/netns/lab-scan/resolv.conf names
# no server, so no DNS query leaves the lab either.
#
# Needs root, iproute2 and python3. `up` is idempotent (an identical lab is left alone; a
# different one is rebuilt) and `down` removes every namespace, link and process `up`
# created (the responder by the PID it wrote); both are safe to re-run. State lives in
# /run/sitewatch-lab. Only addresses of this lab are ever scanned: run scanners with
# `scripts/lab.sh exec ...` (= ip netns exec lab-scan ...): that namespace has no route out.
set -eu

SUBNET=10.231.0
CIDR=$SUBNET.0/24
SCANNER_IP=$SUBNET.1
SCANNER_MAC=02:5a:57:0a:e7:01
STATE=/run/sitewatch-lab
ETC=/etc/netns/lab-scan
HERE=$(cd "$(dirname "$0")" && pwd)
RESPONDER=$HERE/lab-late-responder.py

die() { echo "lab.sh: $*" >&2; exit 1; }
usage() { sed -n '2,/^set -eu/p' "$0" | sed '$d; s/^# \{0,1\}//'; }

need_root() {
    [ "$(id -u)" -eq 0 ] || die "needs root (network namespaces): run it with sudo"
    command -v ip >/dev/null 2>&1 || die "ip not found — install iproute2 (scripts/install-deps.sh --test)"
}

hex() { printf '%02x' "$1"; }
mac_of() { # CLASS LAST_OCTET
    case "$1" in
        ping) echo "b8:27:eb:0a:e7:$(hex "$2")" ;;
        arp-only) echo "dc:a6:32:0a:e7:$(hex "$2")" ;;
        late) echo "02:5a:57:0a:e7:$(hex "$2")" ;;
    esac
}

# Our namespaces only: lab-br, lab-scan and lab-h<N>.
lab_namespaces() {
    ip netns list 2>/dev/null | awk '{print $1}' | grep -E '^lab-(br|scan|h[0-9]+)$' || true
}

responder_pid() { # prints the PID when the responder we started is alive
    [ -f "$STATE/responder.pid" ] || return 1
    pid=$(cat "$STATE/responder.pid")
    case "$pid" in '' | *[!0-9]*) return 1 ;; esac
    [ -r "/proc/$pid/cmdline" ] || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q 'lab-late-responder.py' || return 1
    echo "$pid"
}

stop_responder() {
    if pid=$(responder_pid); then
        kill "$pid" 2>/dev/null || true
        i=0
        while [ $i -lt 50 ] && [ -d "/proc/$pid" ]; do sleep 0.1; i=$((i + 1)); done
    fi
    rm -f "$STATE/responder.pid"
}

start_responder() { # NAMESPACE...
    [ $# -gt 0 ] || return 0
    command -v python3 >/dev/null 2>&1 || die "python3 not found (it answers for the late hosts) — install python3"
    rm -f "$STATE/responder.pid"
    python3 "$RESPONDER" --delay-ms "$DELAY_MS" --guard lab-scan \
        --pid-file "$STATE/responder.pid" "$@" </dev/null >"$STATE/responder.log" 2>&1 &
    i=0
    while [ $i -lt 100 ] && [ ! -s "$STATE/responder.pid" ]; do sleep 0.05; i=$((i + 1)); done
    responder_pid >/dev/null || die "the late-host responder did not start: $(cat "$STATE/responder.log")"
}

down() {
    stop_responder
    nss=$(lab_namespaces)
    if [ -n "$nss" ]; then
        echo "$nss" | sed 's/^/netns del /' | ip -batch - 2>/dev/null || true
        # A namespace some process still holds survives `netns del` of another; retry singly.
        for ns in $(lab_namespaces); do ip netns del "$ns" 2>/dev/null || true; done
    fi
    rm -rf "$STATE" "$ETC"
}

# /etc/hosts of the scanner namespace from the hosts list.
write_names() {
    mkdir -p "$ETC"
    {
        printf '127.0.0.1 localhost\n%s lab-scan\n' "$SCANNER_IP"
        awk '{print $1, $4}' "$STATE/hosts"
    } >"$ETC/hosts"
    printf '# lab: no DNS server (names come from hosts)\noptions timeout:1 attempts:1\n' >"$ETC/resolv.conf"
}

# Creates host namespaces for the "IP MAC CLASS NS" lines on stdin (bridge already up).
add_hosts() {
    lines=$(cat)
    [ -n "$lines" ] || return 0
    echo "$lines" | awk '{print "netns add " $4}' | ip -batch -
    echo "$lines" | awk '{print "link add eth0 netns " $4 " address " $2 " type veth peer name " \
        substr($4, 5) " netns lab-br"}' | ip -batch -
    echo "$lines" | awk '{n = substr($4, 5); print "link set " n " master br0"; print "link set " n " up"}' |
        ip -n lab-br -batch -
    echo "$lines" | while read -r addr _mac class ns; do
        printf 'link set lo up\nlink set eth0 addrgenmode none\naddr add %s/24 dev eth0\nlink set eth0 up\n' \
            "$addr" | ip -n "$ns" -batch -
        if [ "$class" != ping ]; then
            ip netns exec "$ns" sh -c 'echo 1 > /proc/sys/net/ipv4/icmp_echo_ignore_all'
        fi
    done
    echo "$lines" >>"$STATE/hosts"
    write_names
}

up() {
    total=$((PING + ARP + LATE))
    [ "$total" -ge 1 ] && [ "$total" -le 253 ] || die "between 1 and 253 hosts fit in $CIDR (asked for $total)"
    shape="ping=$PING arp-only=$ARP late=$LATE delay-ms=$DELAY_MS"
    if [ -f "$STATE/shape" ] && [ "$(cat "$STATE/shape")" = "$shape" ] &&
        [ "$(lab_namespaces | wc -l)" -eq $((total + 2)) ] &&
        { [ "$LATE" -eq 0 ] || responder_pid >/dev/null; }; then
        echo "lab already up ($shape)" >&2
        return 0
    fi
    down
    mkdir -p "$STATE"
    : >"$STATE/hosts"
    start=$(date +%s%N)

    ip netns add lab-br
    ip netns add lab-scan
    printf 'link set lo up\nlink add br0 type bridge stp_state 0 forward_delay 0 mcast_snooping 0\nlink set br0 up\n' |
        ip -n lab-br -batch -
    ip link add lab0 netns lab-scan address "$SCANNER_MAC" type veth peer name scan netns lab-br
    printf 'link set scan master br0\nlink set scan up\n' | ip -n lab-br -batch -
    printf 'link set lo up\nlink set lab0 addrgenmode none\naddr add %s/24 dev lab0\nlink set lab0 up\n' \
        "$SCANNER_IP" | ip -n lab-scan -batch -

    n=2
    hosts=""
    for spec in "ping $PING" "arp-only $ARP" "late $LATE"; do
        set -- $spec
        i=0
        while [ $i -lt "$2" ]; do
            hosts="$hosts$SUBNET.$n $(mac_of "$1" $n) $1 lab-h$n
"
            n=$((n + 1))
            i=$((i + 1))
        done
    done
    printf '%s' "$hosts" | add_hosts
    start_responder $(awk '$3 == "late" {print $4}' "$STATE/hosts")
    echo "$shape" >"$STATE/shape"
    ms=$(($(($(date +%s%N) - start)) / 1000000))
    echo "lab up: $total hosts ($shape) in $CIDR, scanner $SCANNER_IP in lab-scan; took $ms ms" >&2
}

status() {
    if ! ip netns list 2>/dev/null | grep -q '^lab-scan\b'; then
        echo "lab down"
        return 3
    fi
    shape=$(cat "$STATE/shape" 2>/dev/null || echo "unknown shape")
    count=$(wc -l <"$STATE/hosts" 2>/dev/null || echo 0)
    if pid=$(responder_pid); then r="late-host responder pid $pid"; else r="no late-host responder"; fi
    echo "lab up: $count hosts ($shape), $(lab_namespaces | wc -l) namespaces, $r; scanner $SCANNER_IP in lab-scan, subnet $CIDR"
}

add() {
    [ -f "$STATE/hosts" ] || die "the lab is down — run scripts/lab.sh up first"
    case "$CLASS" in ping | arp-only) ;; *) die "add: --class is ping or arp-only" ;; esac
    n=2
    while [ $n -le 254 ] && grep -q "^$SUBNET.$n " "$STATE/hosts"; do n=$((n + 1)); done
    [ $n -le 254 ] || die "no free address left in $CIDR"
    line="$SUBNET.$n $(mac_of "$CLASS" $n) $CLASS lab-h$n"
    echo "$line" | add_hosts
    echo "$line" | awk '{print $1, $2}'
}

remove() {
    [ -f "$STATE/hosts" ] || die "the lab is down"
    ns=$(awk -v ip="$1" '$1 == ip {print $4}' "$STATE/hosts")
    [ -n "$ns" ] || die "no lab host has address $1"
    class=$(awk -v ip="$1" '$1 == ip {print $3}' "$STATE/hosts")
    [ "$class" != late ] || die "late hosts cannot be removed singly (the responder serves them all)"
    ip netns del "$ns"
    # Forget its MAC in the scanner, as the kernel does once its own probes fail (~1 min
    # after the host was last seen): scans right after this see it gone.
    ip -n lab-scan neigh del "$1" dev lab0 2>/dev/null || true
    awk -v ip="$1" '$1 != ip' "$STATE/hosts" >"$STATE/hosts.new"
    mv "$STATE/hosts.new" "$STATE/hosts"
    write_names
}

[ $# -ge 1 ] || { usage >&2; exit 2; }
cmd=$1
shift
PING=150 ARP=80 LATE=20 DELAY_MS=200 CLASS=ping
if [ "$cmd" = up ] || [ "$cmd" = add ]; then
    while [ $# -gt 0 ]; do
        case "$1" in
            --hosts-ping) PING=$2; shift 2 ;;
            --hosts-arp-only) ARP=$2; shift 2 ;;
            --hosts-late) LATE=$2; shift 2 ;;
            --delay-ms) DELAY_MS=$2; shift 2 ;;
            --class) CLASS=$2; shift 2 ;;
            *) die "unknown option $1 (try --help)" ;;
        esac
    done
    for v in "$PING" "$ARP" "$LATE" "$DELAY_MS"; do
        case "$v" in '' | *[!0-9]*) die "counts and --delay-ms are whole numbers (got '$v')" ;; esac
    done
fi
case "$cmd" in
    up) need_root; up ;;
    down) need_root; down; echo "lab down" >&2 ;;
    status) status ;;
    hosts) [ -f "$STATE/hosts" ] || die "the lab is down"; cat "$STATE/hosts" ;;
    add) need_root; add ;;
    remove) need_root; [ $# -eq 1 ] || die "remove IP"; remove "$1" ;;
    exec) need_root; [ $# -ge 1 ] || die "exec CMD [ARG...]"; exec ip netns exec lab-scan "$@" ;;
    -h | --help | help) usage ;;
    *) usage >&2; exit 2 ;;
esac
