#!/bin/sh
# Builds static (musl), stripped sitewatch-agent binaries for the Pi and VM targets, with TLS,
# without Docker, and prints their sizes.
#
#   cross/build.sh [--profile NAME] [--no-dist] [TARGET...]
#
#   TARGET      default: all four below
#   --profile   cargo profile; default release-small (size-first, see Cargo.toml). CI's
#               tests use cross-test (quick to compile, not for shipping).
#   --no-dist   leave the binaries in target/TARGET/PROFILE/ only; by default they are also
#               copied to dist/sitewatch-agent-TARGET.
#
# | target                          | machines                                   |
# |---------------------------------|--------------------------------------------|
# | aarch64-unknown-linux-musl      | Pi 3/4/5, Zero 2 W on a 64-bit OS; ARM VMs |
# | armv7-unknown-linux-musleabihf  | Pi 2/3/4 on a 32-bit OS                    |
# | arm-unknown-linux-musleabihf    | Pi Zero/Zero W/1 (ARMv6, ARM1176)          |
# | x86_64-unknown-linux-musl       | x86 VMs and PCs                            |
#
# How (scripts/install-deps.sh --cross installs every prerequisite):
# - aarch64 and x86_64: rustup's prebuilt std for the target; ring's C and assembly are
#   compiled by Debian's aarch64-linux-gnu-gcc (host cc for x86_64) and everything is linked
#   by rust-lld, which ships with Rust, against the musl that ships with rustup's std.
# - armv7 and armv6: rustup has no prebuilt std for these two targets (the 1.94 and 1.95
#   release manifests mark their rust-std unavailable; `rustup target add` fails with a 404),
#   so std is compiled from rust-src (-Z build-std, enabled on stable with RUSTC_BOOTSTRAP=1,
#   see below), and cargo-zigbuild uses zig (PyPI ziglang) as C compiler and linker: zig
#   brings musl and libunwind and builds them for the exact CPU (ARMv6 + VFPv2 for the Pi
#   Zero/1, ARMv7 + VFPv3-D16 for armv7). The first build on a machine spends ~2 min per
#   target on that; zig caches it in ~/.cache/zig.
#
# With Docker, `cross` works too: see cross/Cross.toml.
set -eu
cd "$(dirname "$0")/.."
PATH="$HOME/.cargo/bin:$PATH"

profile=release-small
dist=1
targets=""
while [ $# -gt 0 ]; do
    case "$1" in
        --profile) profile="$2"; shift 2 ;;
        --profile=*) profile="${1#--profile=}"; shift ;;
        --no-dist) dist=0; shift ;;
        -h|--help) sed -n '2,/^set -eu/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        -*) echo "cross/build.sh: unknown option $1 (try --help)" >&2; exit 2 ;;
        *) targets="$targets $1"; shift ;;
    esac
done
targets="${targets:-aarch64-unknown-linux-musl armv7-unknown-linux-musleabihf arm-unknown-linux-musleabihf x86_64-unknown-linux-musl}"

die() {
    echo "cross/build.sh: $* — run scripts/install-deps.sh --cross" >&2
    exit 1
}
need_cmd() { command -v "$1" >/dev/null 2>&1 || die "$1 not found ($2)"; }

# Upper-case env-var form of a target triple: aarch64-unknown-linux-musl -> AARCH64_UNKNOWN_LINUX_MUSL
env_of() { echo "$1" | tr 'a-z-' 'A-Z_'; }

# Where pip put cargo-zigbuild (pyenv shims or ~/.local/bin may not be on PATH).
zigbuild() {
    if command -v cargo-zigbuild >/dev/null 2>&1; then
        command cargo-zigbuild "$@"
    else
        scripts=$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))' 2>/dev/null || true)
        [ -x "$scripts/cargo-zigbuild" ] || die "cargo-zigbuild not found (PyPI cargo-zigbuild)"
        "$scripts/cargo-zigbuild" "$@"
    fi
}

build_with_rustup_std() { # TARGET CC
    t=$1 cc=$2
    need_cmd "$cc" "C compiler for ring on $t"
    rustup target list --installed | grep -qx "$t" || die "rust target $t is not installed"
    T=$(env_of "$t")
    env "CARGO_TARGET_${T}_LINKER=rust-lld" "CC_$(echo "$t" | tr '-' '_')=$cc" \
        cargo build --locked --profile "$profile" -p sitewatch-agent --target "$t"
}

build_with_zig_std() { # TARGET
    t=$1
    python3 -c 'import ziglang' 2>/dev/null || die "zig not found (PyPI ziglang)"
    rustup component list --installed | grep -q '^rust-src' || die "rust-src is not installed"
    T=$(env_of "$t")
    # zig's linker brings its own crt objects and musl; rustc must not add the (absent)
    # self-contained ones of a rustup std.
    (
        export "CARGO_TARGET_${T}_RUSTFLAGS=-C link-self-contained=no"
        zigbuild build --locked --profile "$profile" -p sitewatch-agent --target "$t" \
            -Z build-std=std,panic_abort
    )
}

# -Z build-std (armv7, armv6) needs RUSTC_BOOTSTRAP=1 on a stable toolchain. It is set for
# every target, not only those two: build scripts such as proc-macro2's depend on it, and
# cargo would rebuild the shared host tools (proc macros, build scripts) whenever it flips
# between two targets of one run.
export RUSTC_BOOTSTRAP=1

built=""
for t in $targets; do
    echo "== cross/build.sh: $t ($profile)" >&2
    case "$t" in
        aarch64-unknown-linux-musl) build_with_rustup_std "$t" aarch64-linux-gnu-gcc ;;
        x86_64-unknown-linux-musl) build_with_rustup_std "$t" cc ;;
        armv7-unknown-linux-musleabihf | arm-unknown-linux-musleabihf) build_with_zig_std "$t" ;;
        *) echo "cross/build.sh: unsupported target $t" >&2; exit 2 ;;
    esac
    built="$built $t"
done

if [ "$dist" -eq 1 ]; then mkdir -p dist; fi
printf '%-32s %10s %9s  %s\n' target bytes MiB binary
for t in $built; do
    bin="target/$t/$profile/sitewatch-agent"
    if [ "$dist" -eq 1 ]; then
        cp "$bin" "dist/sitewatch-agent-$t"
        bin="dist/sitewatch-agent-$t"
    fi
    size=$(stat -c %s "$bin")
    awk -v t="$t" -v s="$size" -v b="$bin" 'BEGIN { printf "%-32s %10d %9.2f  %s\n", t, s, s / 1048576, b }'
done
