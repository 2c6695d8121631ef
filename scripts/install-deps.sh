#!/bin/sh
# Installs what building and testing sitewatch needs on Debian/Ubuntu, idempotently.
#   scripts/install-deps.sh           build prerequisites only (Rust toolchain, C compiler)
#   scripts/install-deps.sh --test    also the test prerequisites (mosquitto, mosquitto-clients,
#                                     python3-aiosmtpd, libfaketime; systemd's systemd-analyze
#                                     and debootstrap for hub/tests/deploy.rs; for the scanner
#                                     lab of scripts/lab.sh: iproute2, python3, util-linux's
#                                     setpriv; chromium and Node.js with the browser tests' npm
#                                     packages, `npm ci` in hub/tests/browser; Node-RED, `npm ci`
#                                     in hub/tests/node-red)
#   scripts/install-deps.sh --cross   also what cross/build.sh and the qemu tests need: the
#                                     aarch64/x86_64 musl rust targets, Debian's aarch64 C cross
#                                     compiler (for ring), rust-src plus zig and cargo-zigbuild
#                                     from PyPI (armv7/armv6: rustup has no std for them) and
#                                     qemu-user-static
#   scripts/install-deps.sh --bench   also what bench/footprint.sh compares against:
#                                     collectd-core and mosquitto; and bench/scan.sh's peers
#                                     fping, nmap and arp-scan (plus the lab's iproute2 and
#                                     python3)
# Flags combine (scripts/test.sh passes --test --cross). Safe to re-run: it installs only
# what is missing, and any install that fails fails the script.
set -eu

want_test=0 want_cross=0 want_bench=0
for arg in "$@"; do
    case "$arg" in
        --test) want_test=1 ;;
        --cross) want_cross=1 ;;
        --bench) want_bench=1 ;;
        *) echo "install-deps: unknown option $arg (use --test, --cross, --bench)" >&2; exit 2 ;;
    esac
done

# Rust targets whose std rustup ships; cross/build.sh builds std itself for the two ARM
# 32-bit targets. Zig and cargo-zigbuild are pinned to the versions cross/build.sh was
# tested with.
RUSTUP_TARGETS="aarch64-unknown-linux-musl x86_64-unknown-linux-musl"
PIP_PKGS="ziglang==0.17.1 cargo-zigbuild==0.24.0"

if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi

missing=""
need_pkg() { dpkg -s "$1" >/dev/null 2>&1 || missing="$missing $1"; }

command -v cc >/dev/null 2>&1 || need_pkg build-essential
command -v curl >/dev/null 2>&1 || need_pkg curl
need_pkg ca-certificates
fresh_mosquitto=0
if [ "$want_test" -eq 1 ] || [ "$want_bench" -eq 1 ]; then
    dpkg -s mosquitto >/dev/null 2>&1 || fresh_mosquitto=1
    need_pkg mosquitto
    need_pkg mosquitto-clients
    need_pkg python3-aiosmtpd # the SMTP server of hub/tests/notify_email.rs
    # The scanner lab (scripts/lab.sh, agent/tests/scan_lab.rs): namespaces, veths and a
    # bridge; the late hosts' responder; setpriv to run the agent unprivileged.
    need_pkg iproute2
    need_pkg python3
    need_pkg util-linux
fi
if [ "$want_test" -eq 1 ]; then
    # hub/tests/faults.rs moves an agent's wall clock with libfaketime (LD_PRELOAD).
    need_pkg libfaketime
    # The dashboard's browser tests (hub/tests/dashboard_browser.rs): Debian's Chromium,
    # driven by playwright-core on Node.js (the machine's own Node.js when it has one).
    need_pkg chromium
    # hub/tests/deploy.rs: `systemd-analyze verify` of the units, install-agent.sh in a
    # debootstrap chroot (it also needs root and Debian's mirror once).
    command -v systemd-analyze >/dev/null 2>&1 || need_pkg systemd
    need_pkg debootstrap
    command -v node >/dev/null 2>&1 || need_pkg nodejs
    command -v npm >/dev/null 2>&1 || need_pkg npm
    # promtool checks the hub's /metrics (hub/tests/prometheus.rs). Debian ships it only
    # in the server package, whose service the tests do not use.
    need_pkg prometheus
fi
if [ "$want_cross" -eq 1 ]; then
    need_pkg gcc-aarch64-linux-gnu
    need_pkg libc6-dev-arm64-cross # ring includes <stdint.h> etc.
    need_pkg qemu-user-static
    command -v python3 >/dev/null 2>&1 || need_pkg python3
    python3 -m pip --version >/dev/null 2>&1 || need_pkg python3-pip
fi
fresh_collectd=0
if [ "$want_bench" -eq 1 ]; then
    dpkg -s collectd-core >/dev/null 2>&1 || fresh_collectd=1
    need_pkg collectd-core
    # bench/scan.sh: the sweep's peers, and the lab they run in.
    need_pkg fping
    need_pkg nmap
    need_pkg arp-scan
    need_pkg iproute2
    need_pkg python3
fi

if [ -n "$missing" ]; then
    echo "install-deps: installing$missing" >&2
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

# Debian starts a system mosquitto on port 1883 when the package is installed; the tests
# start their own on free ports, and the hub wants 1883. Stop the one we just caused.
# Likewise collectd-core's daemon: the benchmark runs its own with its own config.
if command -v systemctl >/dev/null 2>&1; then
    if [ "$fresh_mosquitto" -eq 1 ]; then
        $SUDO systemctl disable --now mosquitto >/dev/null 2>&1 || true
    fi
    if [ "$fresh_collectd" -eq 1 ]; then
        $SUDO systemctl disable --now collectd >/dev/null 2>&1 || true
    fi
fi

if ! command -v cargo >/dev/null 2>&1; then
    if [ -x "$HOME/.cargo/bin/cargo" ]; then
        :
    else
        echo "install-deps: installing the Rust toolchain with rustup" >&2
        curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
    fi
fi
PATH="$HOME/.cargo/bin:$PATH"
if command -v rustup >/dev/null 2>&1; then
    for c in rustfmt clippy; do
        rustup component list --installed 2>/dev/null | grep -q "^$c" || rustup component add "$c" >/dev/null
    done
    if [ "$want_cross" -eq 1 ]; then
        installed=$(rustup target list --installed)
        for t in $RUSTUP_TARGETS; do
            echo "$installed" | grep -qx "$t" || rustup target add "$t" >/dev/null
        done
        rustup component list --installed | grep -q '^rust-src' || rustup component add rust-src >/dev/null
    fi
elif [ "$want_cross" -eq 1 ]; then
    echo "install-deps: cross builds need rustup (to add the musl targets); this Rust" \
        "toolchain was not installed by rustup — install rustup or add the targets yourself" >&2
    exit 1
fi

if [ "$want_test" -eq 1 ]; then
    browser_dir="$(dirname "$0")/../hub/tests/browser"
    want=$(sed -n 's/.*"playwright-core": "\(.*\)".*/\1/p' "$browser_dir/package.json" | head -n 1)
    have=$(sed -n 's/^  "version": "\(.*\)",$/\1/p' "$browser_dir/node_modules/playwright-core/package.json" 2>/dev/null || true)
    if [ "$want" != "$have" ]; then
        echo "install-deps: npm ci in hub/tests/browser (playwright-core)" >&2
        (cd "$browser_dir" && npm ci --no-audit --no-fund --loglevel=error)
    fi
    # Real Node-RED and its Dashboard 2.0 palette for hub/tests/node_red.rs
    # (deploy/node-red/*.json): installed again whenever the lockfile changes.
    nodered_dir="$(dirname "$0")/../hub/tests/node-red"
    want=$(sha256sum "$nodered_dir/package-lock.json" | cut -d' ' -f1)
    have=$(cat "$nodered_dir/node_modules/.sitewatch-lock-sha256" 2>/dev/null || true)
    if [ "$want" != "$have" ]; then
        echo "install-deps: npm ci in hub/tests/node-red (node-red, @flowfuse/node-red-dashboard)" >&2
        (cd "$nodered_dir" && npm ci --no-audit --no-fund --loglevel=error)
        echo "$want" >"$nodered_dir/node_modules/.sitewatch-lock-sha256"
    fi
fi

if [ "$want_cross" -eq 1 ]; then
    pip_missing=""
    for spec in $PIP_PKGS; do
        have=$(python3 -m pip show "${spec%%==*}" 2>/dev/null | sed -n 's/^Version: //p')
        [ "$have" = "${spec#*==}" ] || pip_missing="$pip_missing $spec"
    done
    if [ -n "$pip_missing" ]; then
        echo "install-deps: installing from PyPI$pip_missing" >&2
        # A Debian system python refuses plain installs (PEP 668): fall back to the user site.
        python3 -m pip install --quiet --disable-pip-version-check $pip_missing 2>/dev/null ||
            python3 -m pip install --quiet --disable-pip-version-check --user --break-system-packages $pip_missing
    fi
fi
