//! IPv4 networks as written in `[scan] networks` (`192.168.1.0/24`) and the host addresses
//! a sweep visits. Pure.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use serde::{Deserialize, Deserializer};

/// An IPv4 network: an address with no host bits set and a prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ipv4Net {
    addr: Ipv4Addr,
    len: u8,
}

impl Ipv4Net {
    /// The network, or an error when `addr` has host bits set for `len`.
    pub fn new(addr: Ipv4Addr, len: u8) -> Result<Self, String> {
        if len > 32 {
            return Err(format!("prefix length /{len} is over 32"));
        }
        let net = Self { addr, len };
        if net.network() != addr {
            return Err(format!(
                "{addr}/{len} has host bits set; did you mean {}/{len}?",
                net.network()
            ));
        }
        Ok(net)
    }

    pub fn prefix_len(&self) -> u8 {
        self.len
    }

    fn mask(&self) -> u32 {
        match self.len {
            0 => 0,
            n => u32::MAX << (32 - u32::from(n)),
        }
    }

    /// The network address (host bits cleared).
    pub fn network(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) & self.mask())
    }

    /// Whether `ip` lies inside this network.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask() == u32::from(self.addr)
    }

    /// Every address of the network (2^(32-len)).
    pub fn size(&self) -> u64 {
        1u64 << (32 - u32::from(self.len))
    }

    /// The addresses a sweep visits, in order: every address but the network and
    /// broadcast ones (as `fping -g` does); a /31 has two hosts (RFC 3021) and a /32 one.
    pub fn hosts(&self) -> impl Iterator<Item = Ipv4Addr> + use<> {
        let first = u64::from(u32::from(self.addr));
        let (start, end) = match self.len {
            32 => (first, first),
            31 => (first, first + 1),
            _ => (first + 1, first + self.size() - 2),
        };
        (start..=end).filter_map(|n| u32::try_from(n).ok().map(Ipv4Addr::from))
    }

    /// How many addresses [`hosts`](Self::hosts) yields.
    pub fn host_count(&self) -> u64 {
        match self.len {
            32 => 1,
            31 => 2,
            _ => self.size() - 2,
        }
    }
}

impl fmt::Display for Ipv4Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

impl FromStr for Ipv4Net {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let (addr, len) = s.split_once('/').ok_or_else(|| {
            format!("{s:?} is not a network; write it as ADDRESS/PREFIX, e.g. 192.168.1.0/24")
        })?;
        let addr: Ipv4Addr = addr.parse().map_err(|_| {
            format!("{s:?}: {addr:?} is not an IPv4 address (only IPv4 networks are scanned)")
        })?;
        let len: u8 = len
            .parse()
            .map_err(|_| format!("{s:?}: prefix length {len:?} is not a number from 0 to 32"))?;
        Self::new(addr, len)
    }
}

impl<'de> Deserialize<'de> for Ipv4Net {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Ipv4Net {
        s.parse().unwrap()
    }

    #[test]
    fn a_slash_24_has_254_hosts_without_network_and_broadcast() {
        let n = net("192.168.1.0/24");
        let hosts: Vec<_> = n.hosts().collect();
        assert_eq!(hosts.len(), 254);
        assert_eq!(n.host_count(), 254);
        assert_eq!(hosts[0], Ipv4Addr::new(192, 168, 1, 1));
        assert_eq!(hosts[253], Ipv4Addr::new(192, 168, 1, 254));
        assert!(n.contains(Ipv4Addr::new(192, 168, 1, 255)));
        assert!(!n.contains(Ipv4Addr::new(192, 168, 2, 1)));
    }

    #[test]
    fn small_prefixes() {
        assert_eq!(
            net("10.0.0.7/32").hosts().collect::<Vec<_>>(),
            [Ipv4Addr::new(10, 0, 0, 7)]
        );
        assert_eq!(
            net("10.0.0.6/31").hosts().collect::<Vec<_>>(),
            [Ipv4Addr::new(10, 0, 0, 6), Ipv4Addr::new(10, 0, 0, 7)]
        );
        assert_eq!(net("10.0.0.4/30").hosts().count(), 2);
        assert_eq!(net("10.0.0.0/22").host_count(), 1022);
    }

    #[test]
    fn the_end_of_the_address_space_does_not_overflow() {
        let n = net("255.255.255.0/24");
        assert_eq!(n.hosts().last(), Some(Ipv4Addr::new(255, 255, 255, 254)));
        assert_eq!(net("0.0.0.0/0").size(), 1 << 32);
    }

    #[test]
    fn mistakes_are_explained() {
        let err = |s: &str| s.parse::<Ipv4Net>().unwrap_err();
        assert!(err("192.168.1.10/24").contains("did you mean 192.168.1.0/24"));
        assert!(err("192.168.1.0").contains("ADDRESS/PREFIX"));
        assert!(err("fd00::/64").contains("IPv4"));
        assert!(err("10.0.0.0/33").contains("over 32"));
        assert!(err("10.0.0.0/x").contains("prefix length"));
    }

    #[test]
    fn displays_as_written() {
        assert_eq!(net(" 10.231.0.0/24 ").to_string(), "10.231.0.0/24");
    }
}
