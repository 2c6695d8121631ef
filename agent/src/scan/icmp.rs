//! ICMP echo through surge-ping, and the one error that says how to allow it.
//!
//! Linux lets a process ping in two ways: a raw ICMP socket (needs CAP_NET_RAW) or an
//! unprivileged datagram ICMP socket (its group id must lie in `net.ipv4.ping_group_range`).
//! [`open`] tries the datagram socket first, then the raw one (surge-ping does both); when
//! neither is allowed it returns [`IcmpError::NotPermitted`], whose message lists the three
//! ways to grant it.

use std::io;
use std::net::IpAddr;
use std::time::Duration;

use surge_ping::{Client, Config, ICMP, IcmpPacket, PingIdentifier, PingSequence, SurgeError};

/// Bytes of payload in each echo request (as `ping -s 16`).
const PAYLOAD: [u8; 16] = *b"sitewatch-agent!";

/// Why no ICMP socket could be opened.
#[derive(Debug, thiserror::Error)]
pub enum IcmpError {
    #[error(
        "cannot ping: the agent may open neither a raw ICMP socket (it lacks CAP_NET_RAW) nor \
         an unprivileged one (its group {gid} is outside net.ipv4.ping_group_range = {range}). \
         Grant one of them: `setcap cap_net_raw+ep {exe}`, or AmbientCapabilities=CAP_NET_RAW \
         in its systemd unit, or `sysctl -w net.ipv4.ping_group_range=\"{gid} {gid}\"` (made \
         permanent in /etc/sysctl.d/)"
    )]
    NotPermitted {
        gid: u32,
        range: String,
        exe: String,
    },
    #[error("cannot open an ICMP socket: {0}")]
    Socket(#[source] io::Error),
}

/// A surge-ping client (one socket, one receive task) for IPv4 or IPv6 echoes.
pub fn open(v6: bool) -> Result<Client, IcmpError> {
    let config = if v6 {
        Config::builder().kind(ICMP::V6).build()
    } else {
        Config::default()
    };
    Client::new(&config).map_err(|err| {
        if err.kind() == io::ErrorKind::PermissionDenied {
            not_permitted()
        } else {
            IcmpError::Socket(err)
        }
    })
}

fn not_permitted() -> IcmpError {
    // SAFETY: getegid has no preconditions and cannot fail.
    let gid = unsafe { libc::getegid() };
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ping_group_range")
        .map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into());
    let exe = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "/usr/local/bin/sitewatch-agent".into());
    IcmpError::NotPermitted { gid, range, exe }
}

/// A random identifier for this client's echoes (raw sockets see every reply on the host;
/// the kernel picks its own for datagram sockets).
pub fn identifier() -> PingIdentifier {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    PingIdentifier((nanos ^ std::process::id()) as u16)
}

/// Sends one echo request and waits up to `timeout` for its reply: `Some(rtt)` for an echo
/// reply, `None` for a timeout or an ICMP error (unreachable, …) in its place.
pub async fn echo(
    client: &Client,
    ip: IpAddr,
    ident: PingIdentifier,
    seq: u16,
    timeout: Duration,
) -> Result<Option<Duration>, SurgeError> {
    let mut pinger = client.pinger(ip, ident).await;
    pinger.timeout(timeout);
    match pinger.ping(PingSequence(seq), &PAYLOAD).await {
        Ok((packet, rtt)) => Ok(is_echo_reply(&packet).then_some(rtt)),
        Err(SurgeError::Timeout { .. }) => Ok(None),
        Err(err) => Err(err),
    }
}

fn is_echo_reply(packet: &IcmpPacket) -> bool {
    match packet {
        IcmpPacket::V4(p) => p.get_icmp_type().0 == 0,
        IcmpPacket::V6(p) => p.get_icmpv6_type().0 == 129,
    }
}
