//! Network interfaces: byte counters and rates over the last sampling interval.
//!
//! Rates are computed here, not by sysinfo, from the counter totals and the measured time
//! between two samples, so an irregular interval still gives bytes per second.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Instant;

use sitewatch_proto::payload::NetInterface;
use sysinfo::{NetworkData, Networks};

/// Counters of the previous sample, to compute rates.
#[derive(Debug, Default)]
pub struct NetRates {
    previous: HashMap<String, (u64, u64)>,
    previous_at: Option<Instant>,
}

impl NetRates {
    /// One entry per non-loopback interface of a refreshed [`Networks`], sorted by name.
    /// Rates are absent on the first sample and for interfaces new since the last one.
    pub fn sample(&mut self, networks: &Networks, now: Instant) -> Vec<NetInterface> {
        let elapsed_s = self
            .previous_at
            .map(|t| now.saturating_duration_since(t).as_secs_f64());
        let mut out: Vec<NetInterface> = networks
            .iter()
            .filter(|(name, data)| !is_loopback(&name.to_string_lossy(), &addresses(data)))
            .map(|(name, data)| {
                let name = name.to_string_lossy().into_owned();
                let (rx, tx) = (data.total_received(), data.total_transmitted());
                let prev = self.previous.get(&name);
                NetInterface {
                    rx_bps: elapsed_s.and_then(|e| rate(prev.map(|p| p.0), rx, e)),
                    tx_bps: elapsed_s.and_then(|e| rate(prev.map(|p| p.1), tx, e)),
                    name,
                    rx_bytes: rx,
                    tx_bytes: tx,
                    ..Default::default()
                }
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

/// The IP addresses of an interface.
pub fn addresses(data: &NetworkData) -> Vec<IpAddr> {
    data.ip_networks().iter().map(|n| n.addr).collect()
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
}
