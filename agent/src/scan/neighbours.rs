//! The kernel's IPv4 neighbour (ARP) table, `/proc/net/arp`.
//!
//! After a sweep, every on-link address the kernel tried to reach has an entry: complete
//! (flag `ATF_COM`, 0x2: the host answered ARP, so it is there even if it dropped the ping)
//! or not (incomplete or failed: nobody answered). Only complete entries count, and they
//! give each host's MAC. The file shows a stale entry (a host that answered within the last
//! minutes) as complete too, so a host that just left may be reported by one more scan.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

/// `ATF_COM` in `/proc/net/arp`'s flags column: the hardware address is known.
const ATF_COM: u32 = 0x2;

/// What the table says about one address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Neighbour {
    /// The host answered ARP: its MAC, lower-case `aa:bb:cc:dd:ee:ff`.
    Complete(String),
    /// The kernel asked and nobody answered (yet): incomplete or failed.
    Unresolved,
}

/// Parses the text of `/proc/net/arp`. Lines that do not parse are skipped; an address on
/// several interfaces keeps its complete entry.
pub fn parse_proc_net_arp(text: &str) -> BTreeMap<Ipv4Addr, Neighbour> {
    let mut table = BTreeMap::new();
    for line in text.lines().skip(1) {
        let mut cols = line.split_whitespace();
        let (Some(ip), Some(_hw_type), Some(flags), Some(mac)) =
            (cols.next(), cols.next(), cols.next(), cols.next())
        else {
            continue;
        };
        let (Ok(ip), Some(flags)) = (ip.parse::<Ipv4Addr>(), parse_hex(flags)) else {
            continue;
        };
        let entry = match normalise_mac(mac) {
            Some(mac) if flags & ATF_COM != 0 && mac != "00:00:00:00:00:00" => {
                Neighbour::Complete(mac)
            }
            _ => Neighbour::Unresolved,
        };
        match table.get(&ip) {
            Some(Neighbour::Complete(_)) => {}
            _ => {
                table.insert(ip, entry);
            }
        }
    }
    table
}

fn parse_hex(s: &str) -> Option<u32> {
    u32::from_str_radix(s.strip_prefix("0x").unwrap_or(s), 16).ok()
}

/// `AA:bb:0C:…` (six hex octets separated by `:`) to lower case; `None` when not a MAC.
pub fn normalise_mac(s: &str) -> Option<String> {
    let octets: Vec<&str> = s.split(':').collect();
    if octets.len() != 6
        || !octets
            .iter()
            .all(|o| o.len() == 2 && o.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        return None;
    }
    Some(s.to_ascii_lowercase())
}

/// Reads and parses `/proc/net/arp` of the agent's network namespace; an unreadable file
/// is an empty table (hosts are then found by ping only, without MACs).
pub fn read() -> BTreeMap<Ipv4Addr, Neighbour> {
    match std::fs::read_to_string("/proc/net/arp") {
        Ok(text) => parse_proc_net_arp(&text),
        Err(err) => {
            tracing::warn!(cause = %err, "cannot read /proc/net/arp; hosts that drop ping are not found and no MAC is reported");
            BTreeMap::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
IP address       HW type     Flags       HW address            Mask     Device
10.231.0.2       0x1         0x2         B8:27:EB:0A:E7:02     *        lab0
10.231.0.200     0x1         0x0         00:00:00:00:00:00     *        lab0
10.231.0.9       0x1         0x6         dc:a6:32:0a:e7:09     *        lab0
10.231.0.3       0x1         0x2         dc:a6:32:0a:e7:03     *        eth1
10.231.0.3       0x1         0x0         00:00:00:00:00:00     *        eth0
garbage line
300.1.1.1        0x1         0x2         dc:a6:32:0a:e7:03     *        eth0
10.231.0.4       0x1         0xZZ        dc:a6:32:0a:e7:04     *        eth0
";

    #[test]
    fn complete_entries_give_macs_and_others_are_unresolved() {
        let t = parse_proc_net_arp(SAMPLE);
        let ip = |d| Ipv4Addr::new(10, 231, 0, d);
        assert_eq!(
            t.get(&ip(2)),
            Some(&Neighbour::Complete("b8:27:eb:0a:e7:02".into()))
        );
        assert_eq!(t.get(&ip(200)), Some(&Neighbour::Unresolved));
        // Permanent (0x4 | 0x2) counts.
        assert_eq!(
            t.get(&ip(9)),
            Some(&Neighbour::Complete("dc:a6:32:0a:e7:09".into()))
        );
        // A complete entry on one interface wins over an unresolved one on another.
        assert_eq!(
            t.get(&ip(3)),
            Some(&Neighbour::Complete("dc:a6:32:0a:e7:03".into()))
        );
        assert_eq!(t.get(&ip(4)), None);
        assert_eq!(t.len(), 4);
    }

    #[test]
    fn empty_or_header_only_tables() {
        assert!(parse_proc_net_arp("").is_empty());
        assert!(parse_proc_net_arp(SAMPLE.lines().next().unwrap()).is_empty());
    }

    #[test]
    fn macs_are_checked_and_lower_cased() {
        assert_eq!(
            normalise_mac("AA:BB:CC:00:11:22").as_deref(),
            Some("aa:bb:cc:00:11:22")
        );
        assert_eq!(normalise_mac("aa:bb:cc:00:11"), None);
        assert_eq!(normalise_mac("aa:bb:cc:00:11:2g"), None);
        assert_eq!(normalise_mac("aabbcc001122"), None);
    }
}
