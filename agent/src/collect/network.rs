//! Network interfaces: byte, error and drop counters, rates over the last sampling
//! interval, and addresses with their prefix length.
//!
//! Counters come from `/proc/net/dev` (one read for every interface). Rates are computed
//! here from the counter totals and the measured time between two samples, so an
//! irregular interval still gives bytes per second. Addresses come from `getifaddrs(3)`
//! ([`interface_addresses`]), the one call here that is not a file read.

use std::collections::HashMap;
use std::ffi::CStr;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Instant;

use sitewatch_proto::payload::NetInterface;
use sysinfo::NetworkData;

use super::kernel::SysRoot;

/// Addresses with prefix length per interface name.
pub type Addresses = HashMap<String, Vec<(IpAddr, u8)>>;

/// The counters of one `/proc/net/dev` line that the agent reports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IfCounters {
    pub name: String,
    pub rx_bytes: u64,
    pub rx_errors: u64,
    pub rx_dropped: u64,
    pub tx_bytes: u64,
    pub tx_errors: u64,
    pub tx_dropped: u64,
}

/// The interface lines of `/proc/net/dev`: `name: ` then 8 receive and 8 transmit
/// counters (bytes packets errs drop fifo frame compressed multicast | bytes packets errs
/// drop fifo colls carrier compressed). The two header lines have no `:` and no numbers.
pub fn parse_net_dev(text: &str) -> Vec<IfCounters> {
    text.lines()
        .filter_map(|line| {
            let (name, rest) = line.split_once(':')?;
            let f: Vec<u64> = rest
                .split_whitespace()
                .map(str::parse)
                .collect::<Result<_, _>>()
                .ok()?;
            if f.len() < 16 {
                return None;
            }
            Some(IfCounters {
                name: name.trim().to_owned(),
                rx_bytes: f[0],
                rx_errors: f[2],
                rx_dropped: f[3],
                tx_bytes: f[8],
                tx_errors: f[10],
                tx_dropped: f[11],
            })
        })
        .collect()
}

/// The interfaces of `/proc/net/dev` under `root`; empty when unreadable.
pub fn read_net_dev(root: &SysRoot) -> Vec<IfCounters> {
    std::fs::read_to_string(root.proc("net/dev"))
        .map(|t| parse_net_dev(&t))
        .unwrap_or_default()
}

/// Counters of the previous sample, to compute rates.
#[derive(Debug, Default)]
pub struct NetRates {
    previous: HashMap<String, (u64, u64)>,
    previous_at: Option<Instant>,
}

impl NetRates {
    /// One entry per non-loopback interface, sorted by name. Rates are absent on the first
    /// sample and for interfaces new since the last one.
    pub fn sample(
        &mut self,
        counters: Vec<IfCounters>,
        addresses: &Addresses,
        now: Instant,
    ) -> Vec<NetInterface> {
        let elapsed_s = self
            .previous_at
            .map(|t| now.saturating_duration_since(t).as_secs_f64());
        let none = Vec::new();
        let mut out: Vec<NetInterface> = counters
            .into_iter()
            .filter_map(|c| {
                let addrs = addresses.get(&c.name).unwrap_or(&none);
                let ips: Vec<IpAddr> = addrs.iter().map(|a| a.0).collect();
                if is_loopback(&c.name, &ips) {
                    return None;
                }
                let prev = self.previous.get(&c.name);
                Some(NetInterface {
                    rx_bps: elapsed_s.and_then(|e| rate(prev.map(|p| p.0), c.rx_bytes, e)),
                    tx_bps: elapsed_s.and_then(|e| rate(prev.map(|p| p.1), c.tx_bytes, e)),
                    addresses: addrs.iter().map(|(ip, p)| format!("{ip}/{p}")).collect(),
                    name: c.name,
                    rx_bytes: c.rx_bytes,
                    tx_bytes: c.tx_bytes,
                    rx_errors: c.rx_errors,
                    tx_errors: c.tx_errors,
                    rx_dropped: c.rx_dropped,
                    tx_dropped: c.tx_dropped,
                })
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        self.previous = out
            .iter()
            .map(|n| (n.name.clone(), (n.rx_bytes, n.tx_bytes)))
            .collect();
        self.previous_at = Some(now);
        out
    }
}

/// Bytes per second between two counter readings `elapsed_s` apart. `None` without a
/// previous reading, for a zero interval, or when the counter went backwards (interface
/// re-created or counter reset), where no honest rate exists.
pub fn rate(previous: Option<u64>, current: u64, elapsed_s: f64) -> Option<f64> {
    let previous = previous?;
    if elapsed_s.is_nan() || elapsed_s <= 0.0 || current < previous {
        return None;
    }
    Some((current - previous) as f64 / elapsed_s)
}

/// Whether an interface is a loopback: named `lo`, or all its addresses are loopback ones.
pub fn is_loopback(name: &str, addrs: &[IpAddr]) -> bool {
    name == "lo" || (!addrs.is_empty() && addrs.iter().all(IpAddr::is_loopback))
}

/// The IP addresses of a sysinfo interface (used by the `info` payload).
pub fn addresses(data: &NetworkData) -> Vec<IpAddr> {
    data.ip_networks().iter().map(|n| n.addr).collect()
}

/// The prefix length of a netmask (`255.255.255.0` → 24); counts the set bits, which is
/// the prefix for every mask the kernel hands out.
pub fn prefix_len(mask: IpAddr) -> u8 {
    let ones = match mask {
        IpAddr::V4(m) => m.to_bits().count_ones(),
        IpAddr::V6(m) => m.to_bits().count_ones(),
    };
    ones as u8
}

/// Adds one `getifaddrs` entry; legacy alias labels (`eth0:1`) count for their interface.
/// Each list ends sorted, IPv4 first.
pub fn add_address(out: &mut Addresses, label: &str, ip: IpAddr, mask: Option<IpAddr>) {
    let name = label.split_once(':').map_or(label, |(base, _)| base);
    let prefix = mask.map_or(if ip.is_ipv4() { 32 } else { 128 }, prefix_len);
    let list = out.entry(name.to_owned()).or_default();
    if !list.contains(&(ip, prefix)) {
        list.push((ip, prefix));
        list.sort_by_key(|(ip, _)| (ip.is_ipv6(), *ip));
    }
}

/// Every IPv4/IPv6 address of every interface, from `getifaddrs(3)`; empty if it fails.
pub fn interface_addresses() -> Addresses {
    let mut out = Addresses::new();
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs writes a list head into `list` and returns 0 on success.
    if unsafe { libc::getifaddrs(&mut list) } != 0 {
        return out;
    }
    let mut cur = list;
    while !cur.is_null() {
        // SAFETY: `cur` is a node of the list getifaddrs returned, not freed until below.
        let ifa = unsafe { &*cur };
        cur = ifa.ifa_next;
        if ifa.ifa_name.is_null() {
            continue;
        }
        // SAFETY: the pointers come from the same node; null ones are handled in `ip_of`.
        let (ip, mask) = unsafe { (ip_of(ifa.ifa_addr), ip_of(ifa.ifa_netmask)) };
        if let Some(ip) = ip {
            // SAFETY: ifa_name is a NUL-terminated string owned by the list.
            let label = unsafe { CStr::from_ptr(ifa.ifa_name) }.to_string_lossy();
            add_address(&mut out, &label, ip, mask);
        }
    }
    // SAFETY: `list` came from a successful getifaddrs and is freed exactly once.
    unsafe { libc::freeifaddrs(list) };
    out
}

/// The IP address in a socket address, for the IPv4 and IPv6 families.
///
/// # Safety
/// `sa` is null or points to a socket address valid for its family's length.
unsafe fn ip_of(sa: *const libc::sockaddr) -> Option<IpAddr> {
    if sa.is_null() {
        return None;
    }
    // SAFETY: the caller guarantees a valid socket address; reads tolerate any alignment.
    unsafe {
        match i32::from((*sa).sa_family) {
            libc::AF_INET => {
                let sin = std::ptr::read_unaligned(sa.cast::<libc::sockaddr_in>());
                Some(Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)).into())
            }
            libc::AF_INET6 => {
                let sin6 = std::ptr::read_unaligned(sa.cast::<libc::sockaddr_in6>());
                Some(Ipv6Addr::from(sin6.sin6_addr.s6_addr).into())
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_is_delta_over_elapsed_time() {
        assert_eq!(rate(Some(1_000), 31_000, 30.0), Some(1_000.0));
        assert_eq!(rate(Some(500), 500, 10.0), Some(0.0));
        assert_eq!(rate(Some(0), 1_500, 1.5), Some(1_000.0));
    }

    #[test]
    fn no_rate_without_history_time_or_on_counter_reset() {
        assert_eq!(rate(None, 100, 10.0), None);
        assert_eq!(rate(Some(100), 200, 0.0), None);
        assert_eq!(rate(Some(100), 200, f64::NAN), None);
        assert_eq!(rate(Some(1_000), 10, 10.0), None);
    }

    #[test]
    fn loopback_detection() {
        let lo4: IpAddr = "127.0.0.1".parse().unwrap();
        let lan: IpAddr = "192.168.1.5".parse().unwrap();
        assert!(is_loopback("lo", &[]));
        assert!(is_loopback("lo0", &[lo4]));
        assert!(!is_loopback("eth0", &[lan]));
        assert!(!is_loopback("wlan0", &[]));
    }

    #[test]
    fn net_dev_lines_including_glued_names() {
        let text = "\
Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
  eth0:4294967296 21872 3 7 0 0 0 0 1189380 14789 1 2 0 0 0 0
  bad: 1 2 3
";
        let got = parse_net_dev(text);
        assert_eq!(got.len(), 1);
        let e = &got[0];
        assert_eq!(e.name, "eth0");
        assert_eq!(
            (e.rx_bytes, e.rx_errors, e.rx_dropped),
            (4_294_967_296, 3, 7)
        );
        assert_eq!((e.tx_bytes, e.tx_errors, e.tx_dropped), (1_189_380, 1, 2));
    }

    #[test]
    fn addresses_get_prefixes_and_aliases_merge() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let mut a = Addresses::new();
        add_address(
            &mut a,
            "eth0",
            ip("fe80::1"),
            Some(ip("ffff:ffff:ffff:ffff::")),
        );
        add_address(
            &mut a,
            "eth0",
            ip("192.168.1.20"),
            Some(ip("255.255.255.0")),
        );
        add_address(&mut a, "eth0:1", ip("10.0.0.2"), Some(ip("255.255.0.0")));
        add_address(&mut a, "tun0", ip("10.8.0.2"), None);
        assert_eq!(
            a["eth0"],
            [
                (ip("10.0.0.2"), 16),
                (ip("192.168.1.20"), 24),
                (ip("fe80::1"), 64)
            ]
        );
        assert_eq!(a["tun0"], [(ip("10.8.0.2"), 32)]);

        let counters = vec![
            IfCounters {
                name: "lo".into(),
                ..Default::default()
            },
            IfCounters {
                name: "eth0".into(),
                rx_bytes: 10,
                ..Default::default()
            },
        ];
        let got = NetRates::default().sample(counters, &a, Instant::now());
        assert_eq!(got.len(), 1);
        assert_eq!(
            got[0].addresses,
            ["10.0.0.2/16", "192.168.1.20/24", "fe80::1/64"]
        );
    }

    #[test]
    fn getifaddrs_yields_sane_prefixes() {
        for (name, list) in interface_addresses() {
            assert!(!name.is_empty() && !name.contains(':'));
            for (ip, prefix) in list {
                assert!(
                    prefix <= if ip.is_ipv4() { 32 } else { 128 },
                    "{ip}/{prefix}"
                );
            }
        }
    }
}
