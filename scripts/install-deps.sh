#!/bin/sh
# Installs what building and testing sitewatch needs on Debian/Ubuntu, idempotently.
#   scripts/install-deps.sh          build prerequisites only (Rust toolchain, C compiler)
#   scripts/install-deps.sh --test   also the test prerequisites (mosquitto, mosquitto-clients)
# Safe to re-run: it installs only what is missing.
set -eu

want_test=0
[ "${1:-}" = "--test" ] && want_test=1

if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi

missing=""
need_pkg() { dpkg -s "$1" >/dev/null 2>&1 || missing="$missing $1"; }

command -v cc >/dev/null 2>&1 || need_pkg build-essential
command -v curl >/dev/null 2>&1 || need_pkg curl
need_pkg ca-certificates
fresh_mosquitto=0
if [ "$want_test" -eq 1 ]; then
    dpkg -s mosquitto >/dev/null 2>&1 || fresh_mosquitto=1
    need_pkg mosquitto
    need_pkg mosquitto-clients
fi

if [ -n "$missing" ]; then
    echo "install-deps: installing$missing" >&2
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

# Debian starts a system mosquitto on port 1883 when the package is installed; the tests
# start their own on free ports, and the hub wants 1883. Stop the one we just caused.
if [ "$fresh_mosquitto" -eq 1 ] && command -v systemctl >/dev/null 2>&1; then
    $SUDO systemctl disable --now mosquitto >/dev/null 2>&1 || true
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
fi
