//! The LAN scanner (`[scan]`) and latency probes (`[probes]`).
//!
//! A scan ([`scan_once`]) sweeps every host address of the configured networks with ICMP
//! echo ([`sweep`], surge-ping), then reads the kernel's neighbour table ([`neighbours`])
//! to add the hosts that answered ARP but dropped the ping and to give every on-link host
//! its MAC, names vendors from the IEEE registry ([`oui`]), and optionally looks up names
//! ([`names`]) and tries TCP ports ([`ports`]). The result is a `sitewatch_proto::Scan`,
//! published on `…/scan` by the periodic task of [`schedule`]. Latency probes to the
//! default gateway ([`route`]) or configured targets are in [`probes`].
//!
//! Pure parts (CIDR expansion, neighbour and route tables, OUI lookup, result assembly,
//! probe statistics) are unit-tested; `agent/tests/scan_lab.rs` runs the real binary in the
//! network-namespace lab of `scripts/lab.sh`.

pub mod cidr;
pub mod config;
pub mod icmp;
pub mod names;
pub mod neighbours;
pub mod oui;
pub mod ports;
pub mod probe_config;
pub mod probes;
pub mod route;
pub mod schedule;
pub mod sweep;

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use sitewatch_proto::{Scan, ScanHost};

pub use cidr::Ipv4Net;
pub use config::ScanConfig;
pub use icmp::IcmpError;
pub use neighbours::Neighbour;
pub use probe_config::{ProbeTarget, ProbesConfig};
pub use probes::Prober;

use crate::session::now_ms;

/// Why a scan could not run.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error(transparent)]
    Icmp(#[from] IcmpError),
    #[error(
        "nothing to scan: set `networks` in [scan] (e.g. [\"192.168.1.0/24\"]) or pass --network"
    )]
    NoNetworks,
}

/// Runs one scan of `config.networks`. The result's `session` is empty and its `seq` 0:
/// the publisher numbers it when it goes into the outbox.
pub async fn scan_once(config: &ScanConfig) -> Result<Scan, ScanError> {
    if !config.enabled() {
        return Err(ScanError::NoNetworks);
    }
    let started = Instant::now();
    let targets = sweep::dedup(config.networks.iter().flat_map(|n| n.hosts()));
    let client = icmp::open(false)?;
    let pace = sweep::Pace {
        concurrency: config.concurrency,
        rate_per_s: config.rate_per_s,
        timeout: config.timeout(),
        retries: config.retries,
    };
    let swept = sweep::sweep(&client, &targets, pace, neighbours::read).await;
    drop(client);
    let mut hosts = assemble(
        &config.networks,
        &swept.replies,
        &neighbours::read(),
        &local_macs(),
    );
    enrich(config, &mut hosts).await;
    let scan = Scan {
        ts: now_ms(),
        networks: config.networks.iter().map(|n| n.to_string()).collect(),
        duration_ms: started.elapsed().as_millis() as u64,
        hosts,
        ..Default::default()
    };
    tracing::info!(
        networks = ?scan.networks,
        addresses = targets.len(),
        hosts = scan.hosts.len(),
        by_icmp = count_found_by(&scan, "icmp"),
        by_arp_only = count_found_by(&scan, "arp"),
        echoes_sent = swept.sent,
        send_errors = swept.send_errors,
        duration_ms = scan.duration_ms,
        "LAN scan done"
    );
    Ok(scan)
}

/// [`scan_once`] on a runtime of its own, numbered as the first message of a fresh
/// session and encoded as JSON (the `scan` command).
pub fn scan_once_blocking(config: &ScanConfig) -> anyhow::Result<String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut scan = runtime.block_on(scan_once(config))?;
    let session = crate::session::Session::new();
    scan.session = session.id().to_owned();
    scan.seq = session.next_seq();
    Ok(serde_json::to_string(&scan)?)
}

fn count_found_by(scan: &Scan, how: &str) -> usize {
    scan.hosts
        .iter()
        .filter(|h| h.found_by.iter().any(|f| f == how))
        .count()
}

/// The hosts of a scan, sorted by address: those that answered the echo (`icmp`, with
/// their round trip) and those only in the neighbour table with a complete entry (`arp`),
/// within `networks`. MACs come from the neighbour table, or for the agent's own addresses
/// from its interfaces (`local`).
pub fn assemble(
    networks: &[Ipv4Net],
    replies: &BTreeMap<Ipv4Addr, Duration>,
    neighbours: &BTreeMap<Ipv4Addr, Neighbour>,
    local: &BTreeMap<Ipv4Addr, String>,
) -> Vec<ScanHost> {
    let in_scope = |ip: &Ipv4Addr| networks.iter().any(|n| n.contains(*ip));
    let complete = neighbours.iter().filter_map(|(ip, n)| match n {
        Neighbour::Complete(mac) => Some((*ip, mac)),
        Neighbour::Unresolved => None,
    });
    let mut found: BTreeSet<Ipv4Addr> = replies.keys().copied().filter(in_scope).collect();
    found.extend(complete.clone().map(|(ip, _)| ip).filter(in_scope));
    let macs: BTreeMap<Ipv4Addr, &String> = complete.collect();
    found
        .into_iter()
        .map(|ip| {
            let rtt = replies.get(&ip);
            ScanHost {
                ip: ip.to_string(),
                mac: macs
                    .get(&ip)
                    .map(|m| m.to_string())
                    .or_else(|| local.get(&ip).cloned()),
                rtt_ms: rtt.map(|d| probes::ms(*d)),
                found_by: vec![if rtt.is_some() { "icmp" } else { "arp" }.to_owned()],
                ..Default::default()
            }
        })
        .collect()
}

/// Vendors, then (when configured) names and open TCP ports.
async fn enrich(config: &ScanConfig, hosts: &mut [ScanHost]) {
    let vendors = oui::vendors(
        &config.oui_file,
        hosts.iter().filter_map(|h| h.mac.as_deref()),
    );
    for host in hosts.iter_mut() {
        host.vendor = host
            .mac
            .as_deref()
            .and_then(oui::oui_of)
            .and_then(|o| vendors.get(&o).cloned());
    }
    let ips: Vec<Ipv4Addr> = hosts.iter().filter_map(|h| h.ip.parse().ok()).collect();
    if config.reverse_dns {
        let names = names::reverse_names(&ips).await;
        for host in hosts.iter_mut() {
            host.hostname = host.ip.parse().ok().and_then(|ip| names.get(&ip).cloned());
        }
    }
    if !config.tcp_ports.is_empty() {
        let open = ports::open_ports(&ips, &config.tcp_ports, config.timeout()).await;
        for host in hosts.iter_mut() {
            if let Some(list) = host.ip.parse().ok().and_then(|ip: Ipv4Addr| open.get(&ip)) {
                host.open_ports = list.clone();
                host.found_by.push("tcp".into());
            }
        }
    }
}

/// The MAC of each of this machine's own IPv4 addresses (its neighbour table has none).
fn local_macs() -> BTreeMap<Ipv4Addr, String> {
    let mut out = BTreeMap::new();
    for (iface, addrs) in crate::collect::network::interface_addresses() {
        let Some(mac) = std::fs::read_to_string(format!("/sys/class/net/{iface}/address"))
            .ok()
            .and_then(|s| neighbours::normalise_mac(s.trim()))
            .filter(|m| m != "00:00:00:00:00:00")
        else {
            continue;
        };
        for (ip, _) in addrs {
            if let IpAddr::V4(ip) = ip {
                out.insert(ip, mac.clone());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_from_replies_and_complete_neighbours_sorted_and_in_scope() {
        let ip = |d| Ipv4Addr::new(10, 231, 0, d);
        let networks = ["10.231.0.0/24".parse().unwrap()];
        let replies = BTreeMap::from([
            (ip(10), Duration::from_micros(410)),
            (ip(1), Duration::from_micros(30)),
            (Ipv4Addr::new(192, 168, 9, 9), Duration::from_micros(1)),
        ]);
        let neighbours = BTreeMap::from([
            (ip(10), Neighbour::Complete("b8:27:eb:00:00:0a".into())),
            (ip(2), Neighbour::Complete("dc:a6:32:00:00:02".into())),
            (ip(3), Neighbour::Unresolved),
            (
                Ipv4Addr::new(192, 168, 9, 1),
                Neighbour::Complete("aa:aa:aa:aa:aa:aa".into()),
            ),
        ]);
        let local = BTreeMap::from([(ip(1), "02:5a:57:0a:e7:01".to_owned())]);
        let hosts = assemble(&networks, &replies, &neighbours, &local);
        let summary: Vec<_> = hosts
            .iter()
            .map(|h| {
                (
                    h.ip.as_str(),
                    h.mac.as_deref(),
                    h.rtt_ms,
                    h.found_by.join(","),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                (
                    "10.231.0.1",
                    Some("02:5a:57:0a:e7:01"),
                    Some(0.03),
                    "icmp".to_owned()
                ),
                (
                    "10.231.0.2",
                    Some("dc:a6:32:00:00:02"),
                    None,
                    "arp".to_owned()
                ),
                (
                    "10.231.0.10",
                    Some("b8:27:eb:00:00:0a"),
                    Some(0.41),
                    "icmp".to_owned()
                ),
            ]
        );
    }
}
