#!/bin/sh
# install-agent.sh: installs the sitewatch agent on a Raspberry Pi (or any Linux machine) as
# the systemd service sitewatch-agent. Run it as root:
#
#   sh install-agent.sh --link URL
#       everything from the hub: the agent binary for this CPU, its config, and (once) the
#       node's credentials. The link comes from the hub:
#         sitewatch-hub node install-link SITE NODE --hub-url URL --broker-url URL
#       (the hub serves this script too: curl -fsSL HUB_URL/install/agent.sh | sh -s -- --link URL)
#   sh install-agent.sh --link URL --binary FILE
#       the same with a binary you copied (cross/build.sh's dist/sitewatch-agent-TARGET)
#   sh install-agent.sh --binary FILE --config agent.toml [--env agent.env]
#       without a link: the files you prepared from what `sitewatch-hub node add` printed
#   sh install-agent.sh --uninstall
#       stops the service and removes everything this script installs
#
# It writes /usr/local/bin/sitewatch-agent, /etc/sitewatch/agent.toml (0644, no secrets),
# /etc/sitewatch/agent.env (0600: SITEWATCH_MQTT_USERNAME, SITEWATCH_MQTT_PASSWORD,
# SITEWATCH_SIGNING_KEY) and /etc/systemd/system/sitewatch-agent.service (the unit of
# deploy/sitewatch-agent.service; it runs the agent as a dynamic user systemd makes, so
# there is no user to create), then enables and starts the service when systemd runs.
# Needs curl or wget for --link. POSIX sh.
set -eu

BIN=/usr/local/bin/sitewatch-agent
CONF_DIR=/etc/sitewatch
CONF=$CONF_DIR/agent.toml
ENV_FILE=$CONF_DIR/agent.env
UNIT=/etc/systemd/system/sitewatch-agent.service
SERVICE=sitewatch-agent

say() { printf 'install-agent: %s\n' "$*" >&2; }
die() {
    printf 'install-agent: error: %s\n' "$*" >&2
    exit 1
}

usage() {
    cat <<'USAGE'
usage: install-agent.sh --link URL [--binary FILE]
       install-agent.sh --binary FILE --config agent.toml [--env agent.env]
       install-agent.sh --uninstall
USAGE
}

# The unit, as deploy/sitewatch-agent.service (hub/tests/deploy.rs checks they are equal).
write_unit() {
    cat >"$1" <<'UNIT'
# systemd unit of the sitewatch agent. deploy/install-agent.sh installs it (see README,
# "Installing the agent on a Pi"); by hand:
#   install -m 0755 sitewatch-agent /usr/local/bin/
#   install -D -m 0644 agent.toml /etc/sitewatch/agent.toml
#   install -m 0600 agent.env /etc/sitewatch/agent.env
#   install -m 0644 sitewatch-agent.service /etc/systemd/system/
#   systemctl daemon-reload && systemctl enable --now sitewatch-agent
# Logs: journalctl -u sitewatch-agent. Re-read the config: systemctl reload sitewatch-agent.
[Unit]
Description=sitewatch agent (metrics and heartbeats over MQTT)
After=network-online.target
Wants=network-online.target

[Service]
# The agent tells systemd when it runs (sd_notify READY=1), reloads and stops.
Type=notify
# A broken config stops here with the key at fault in the journal, not in a restart loop.
ExecStartPre=/usr/local/bin/sitewatch-agent validate --config /etc/sitewatch/agent.toml
ExecStart=/usr/local/bin/sitewatch-agent --config /etc/sitewatch/agent.toml
# SIGHUP re-reads the config; an invalid one is logged and the running one kept.
ExecReload=/bin/kill -HUP $MAINPID
# MQTT credentials and signing key, kept out of agent.toml (chmod 0600, owned by root, read
# by systemd before it drops privileges; the lines `sitewatch-hub node add` prints):
#   SITEWATCH_MQTT_USERNAME=sw.club-1.pi-gate
#   SITEWATCH_MQTT_PASSWORD=...
#   SITEWATCH_SIGNING_KEY=...
EnvironmentFile=-/etc/sitewatch/agent.env
TimeoutStartSec=30
# SIGTERM publishes `offline` and exits; give it time to reach the broker.
TimeoutStopSec=10
Restart=always
RestartSec=2
# Exit code 78 is a configuration error: restarting will not fix it.
RestartPreventExitStatus=78

# A user of its own, made by systemd for the service's lifetime (nothing to create or
# remove). The agent only reads /proc and /sys, opens outgoing connections and, when
# [outbox] spill-file is set, writes under /var/lib/sitewatch-agent (StateDirectory).
DynamicUser=yes
StateDirectory=sitewatch-agent
StateDirectoryMode=0700
UMask=0077
NoNewPrivileges=yes
# ICMP for the opt-in LAN scanner and latency probes ([scan], [probes]); nothing else.
AmbientCapabilities=CAP_NET_RAW
CapabilityBoundingSet=CAP_NET_RAW
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
PrivateDevices=yes
ProtectHostname=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
# AF_NETLINK: interface addresses; AF_UNIX: systemd checks (systemctl) and sd_notify.
RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX AF_NETLINK
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
MemoryDenyWriteExecute=yes
SystemCallArchitectures=native
SystemCallFilter=@system-service
# Read-only adjtimex(2): whether the clock is synchronised (setting it needs CAP_SYS_TIME,
# which the bounding set lacks; ProtectClock= would deny the call outright).
SystemCallFilter=adjtimex
SystemCallErrorNumber=EPERM

[Install]
WantedBy=multi-user.target
UNIT
}

link="" binary="" config="" envfile="" uninstall=0
while [ $# -gt 0 ]; do
    case "$1" in
    --link | --binary | --config | --env)
        [ $# -ge 2 ] || die "$1 needs a value"
        case "$1" in
        --link) link=$2 ;;
        --binary) binary=$2 ;;
        --config) config=$2 ;;
        --env) envfile=$2 ;;
        esac
        shift 2
        ;;
    --uninstall) uninstall=1 && shift ;;
    -h | --help) usage && exit 0 ;;
    *)
        usage >&2
        die "unknown argument: $1"
        ;;
    esac
done

[ "$(id -u)" -eq 0 ] || die "run it as root (sudo sh install-agent.sh ...): it installs $BIN, $CONF_DIR and a systemd unit"

# Booted with systemd (sd_booted(3)): not in a chroot, nor in most containers.
systemd_running() {
    [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1
}

uninstall_agent() {
    site=$(sed -n 's/^site = "\(.*\)"$/\1/p' "$CONF" 2>/dev/null | head -n 1 || true)
    node=$(sed -n 's/^node = "\(.*\)"$/\1/p' "$CONF" 2>/dev/null | head -n 1 || true)
    if systemd_running; then
        systemctl disable --now "$SERVICE" >/dev/null 2>&1 || true
    elif command -v systemctl >/dev/null 2>&1; then
        systemctl disable "$SERVICE" >/dev/null 2>&1 || true
    fi
    rm -f "$UNIT" "$BIN" "$BIN.new" "$CONF" "$ENV_FILE"
    rmdir "$CONF_DIR" 2>/dev/null || true
    # The state directory of the unit's dynamic user (outbox spill file).
    rm -rf /var/lib/sitewatch-agent /var/lib/private/sitewatch-agent
    if systemd_running; then
        systemctl daemon-reload
    fi
    say "removed the sitewatch agent ($BIN, $CONF, $ENV_FILE, $UNIT)"
    if [ -n "$site" ] && [ -n "$node" ]; then
        say "on the hub, \`sitewatch-hub node revoke $site $node\` deletes its credentials"
    fi
}

# The musl build for this CPU (README, "Building for a Pi").
target_triple() {
    case "$(uname -m)" in
    aarch64 | arm64) echo aarch64-unknown-linux-musl ;;
    armv7l | armv8l) echo armv7-unknown-linux-musleabihf ;;
    armv6l) echo arm-unknown-linux-musleabihf ;;
    x86_64 | amd64) echo x86_64-unknown-linux-musl ;;
    *) return 1 ;;
    esac
}

# fetch GET|POST URL FILE: the answer's body into FILE; an HTTP error ends the script
# with the hub's own explanation.
fetch() {
    method=$1 url=$2 out=$3
    what=${url#"$link"}
    if command -v curl >/dev/null 2>&1; then
        set --
        [ "$method" = POST ] && set -- -X POST
        code=$(curl -sS --connect-timeout 10 --max-time 600 "$@" -o "$out" -w '%{http_code}' "$url") ||
            die "cannot reach the hub at ${link%%/install/*} (curl failed, see above): check the link and this machine's network"
    elif command -v wget >/dev/null 2>&1; then
        set --
        [ "$method" = POST ] && set -- --post-data=
        rc=0
        wget -q -T 30 --content-on-error -O "$out" "$@" "$url" || rc=$?
        case $rc in
        0) code=200 ;;
        8) code="an error" ;;
        *) die "cannot reach the hub at ${link%%/install/*} (wget exit $rc): check the link and this machine's network" ;;
        esac
    else
        die "--link needs curl or wget: apt-get install curl (or copy the binary and use --binary FILE --config FILE)"
    fi
    if [ "$code" != 200 ]; then
        detail=$(head -c 1000 "$out" 2>/dev/null || true)
        die "the hub answered $code for ${what#/}: ${detail:-no details}"
    fi
}

install_agent() {
    if [ -z "$link" ] && { [ -z "$binary" ] || [ -z "$config" ]; }; then
        usage >&2
        die "give --link URL (from \`sitewatch-hub node install-link\`), or --binary FILE and --config FILE"
    fi
    if [ -n "$link" ]; then
        link=${link%/}
        case "$link" in
        http://*/install/swi_* | https://*/install/swi_*) ;;
        *) die "--link $link does not look like an install link (http(s)://HUB/install/swi_...)" ;;
        esac
    fi
    triple=$(target_triple) ||
        die "no sitewatch agent is built for this CPU ($(uname -m)); there are builds for aarch64, armv7l, armv6l and x86_64"

    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    trap 'exit 130' INT TERM
    umask 077

    if [ -n "$binary" ]; then
        [ -f "$binary" ] || die "--binary $binary: no such file"
        cp "$binary" "$tmp/sitewatch-agent"
    else
        say "downloading the agent for $triple"
        fetch GET "$link/agent/$triple" "$tmp/sitewatch-agent"
    fi
    chmod 0755 "$tmp/sitewatch-agent"
    version=$("$tmp/sitewatch-agent" --version 2>/dev/null) ||
        die "the agent binary does not run on this machine ($(uname -m)): it must be the $triple build"

    if [ -n "$config" ]; then
        [ -f "$config" ] || die "--config $config: no such file"
        cp "$config" "$tmp/agent.toml"
    else
        fetch GET "$link/agent.toml" "$tmp/agent.toml"
    fi
    # Before the credentials: a config that does not load must not use the link up.
    env -u SITEWATCH_CONFIG "$tmp/sitewatch-agent" validate --config "$tmp/agent.toml" >/dev/null ||
        die "the agent's config does not validate (the error is above); nothing was installed"

    if [ -n "$envfile" ]; then
        [ -f "$envfile" ] || die "--env $envfile: no such file"
        cp "$envfile" "$tmp/agent.env"
    elif [ -n "$link" ]; then
        say "fetching the node's credentials (this uses the link up)"
        fetch POST "$link/agent.env" "$tmp/agent.env"
    else
        : >"$tmp/agent.env"
    fi
    bad=$(grep -nEv '^(#.*|SITEWATCH_[A-Z0-9_]+=[A-Za-z0-9._:/@+=-]*|)$' "$tmp/agent.env" | cut -d: -f1 | tr '\n' ' ' || true)
    [ -z "$bad" ] || die "the credentials file has unexpected lines ($bad): want SITEWATCH_NAME=value lines only"
    # shellcheck disable=SC2046 # one word per line by the check above
    summary=$(env -u SITEWATCH_CONFIG $(grep '^SITEWATCH_' "$tmp/agent.env" || true) \
        "$tmp/sitewatch-agent" validate --config "$tmp/agent.toml") ||
        die "the agent's config does not validate with its credentials (the error is above); nothing was installed"

    conf_mode=0644
    if grep -Eq '^[[:space:]]*(password|signing-key)[[:space:]]*=' "$tmp/agent.toml"; then
        conf_mode=0600
        say "agent.toml holds secrets: installed readable by root only (better: move them to $ENV_FILE)"
    fi

    active=0
    if systemd_running && systemctl is-active --quiet "$SERVICE"; then
        active=1
    fi
    install -d -m 0755 /usr/local/bin "$CONF_DIR" /etc/systemd/system
    # A new file renamed over the old one: a running agent keeps its binary until restarted.
    install -m 0755 "$tmp/sitewatch-agent" "$BIN.new"
    mv -f "$BIN.new" "$BIN"
    install -m "$conf_mode" "$tmp/agent.toml" "$CONF"
    install -m 0600 "$tmp/agent.env" "$ENV_FILE"
    write_unit "$UNIT.new"
    chmod 0644 "$UNIT.new"
    mv -f "$UNIT.new" "$UNIT"
    say "installed $version ($triple): $BIN, $CONF, $ENV_FILE, $UNIT"
    say "$summary"

    if systemd_running; then
        systemctl daemon-reload
        systemctl enable "$SERVICE" >/dev/null 2>&1 || die "systemctl enable $SERVICE failed"
        [ "$active" -eq 1 ] && say "restarting the running agent"
        if ! systemctl restart "$SERVICE"; then
            journalctl -u "$SERVICE" -n 20 --no-pager >&2 || true
            die "$SERVICE did not start (its log is above); fix it, then: systemctl restart $SERVICE"
        fi
        say "$SERVICE is running and starts at boot; its log: journalctl -u $SERVICE -f"
    else
        if command -v systemctl >/dev/null 2>&1 && systemctl enable "$SERVICE" >/dev/null 2>&1; then
            say "systemd is not running here (a chroot or a container?): $SERVICE is enabled and starts at the next boot"
        else
            say "systemd is not running here (a chroot or a container?), and the service could not be enabled:"
            say "on the booted system run: systemctl daemon-reload && systemctl enable --now $SERVICE"
        fi
        say "to run it by hand now: (set -a; . $ENV_FILE; exec $BIN --config $CONF)"
    fi
}

if [ "$uninstall" -eq 1 ]; then
    uninstall_agent
else
    install_agent
fi
