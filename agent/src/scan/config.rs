//! `[scan]` of the agent config, and its validation (`[probes]` is in `probe_config.rs`).
//!
//! The scanner is opt-in: without `networks` it scans nothing. Defaults are tuned so that a
//! /24 is swept in one window (every echo sent within ~130 ms, then one timeout) and hosts
//! answering 200–300 ms late are still counted; see `deploy/agent.toml`.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::cidr::Ipv4Net;

pub const DEFAULT_INTERVAL_S: u64 = 600;
pub const DEFAULT_CONCURRENCY: usize = 256;
pub const DEFAULT_RATE_PER_S: u32 = 2_000;
pub const DEFAULT_TIMEOUT_MS: u64 = 500;
pub const DEFAULT_RETRIES: u32 = 1;
pub const DEFAULT_OUI_FILE: &str = "/usr/share/sitewatch/oui.txt";
/// Largest network scanned without `allow-large` (/22: 1022 addresses).
pub const MAX_PREFIX_WITHOUT_OVERRIDE: u8 = 22;
/// Largest network scanned at all (/16: 65534 addresses), whatever the override.
pub const MAX_PREFIX: u8 = 16;
const MAX_NETWORKS: usize = 16;
const MAX_TCP_PORTS: usize = 64;

/// `[scan]`: periodic LAN scans of the configured networks.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ScanConfig {
    /// IPv4 networks to sweep (`192.168.1.0/24`); empty: the scanner is off.
    #[serde(default)]
    pub networks: Vec<Ipv4Net>,
    /// Seconds between scans.
    #[serde(default = "d_interval")]
    pub interval_s: u64,
    /// Echo requests awaiting their reply at once.
    #[serde(default = "d_concurrency")]
    pub concurrency: usize,
    /// Echo requests sent per second at most.
    #[serde(default = "d_rate")]
    pub rate_per_s: u32,
    /// How long each echo request waits for its reply.
    #[serde(default = "d_timeout")]
    pub timeout_ms: u64,
    /// Further echo requests to an address that gave no sign of life (see `sweep.rs`).
    #[serde(default = "d_retries")]
    pub retries: u32,
    /// Look up each host's name (PTR), with a short timeout.
    #[serde(default)]
    pub reverse_dns: bool,
    /// TCP ports tried on every host found; those that accept are reported.
    #[serde(default)]
    pub tcp_ports: Vec<u16>,
    /// Allow networks larger than /22 (up to /16).
    #[serde(default)]
    pub allow_large: bool,
    /// The MAC vendor table (`scripts/update-oui.sh`); vendors are left out when missing.
    #[serde(default = "d_oui_file")]
    pub oui_file: PathBuf,
}

fn d_interval() -> u64 {
    DEFAULT_INTERVAL_S
}
fn d_concurrency() -> usize {
    DEFAULT_CONCURRENCY
}
fn d_rate() -> u32 {
    DEFAULT_RATE_PER_S
}
fn d_timeout() -> u64 {
    DEFAULT_TIMEOUT_MS
}
fn d_retries() -> u32 {
    DEFAULT_RETRIES
}
fn d_oui_file() -> PathBuf {
    PathBuf::from(DEFAULT_OUI_FILE)
}

impl Default for ScanConfig {
    fn default() -> Self {
        Self {
            networks: Vec::new(),
            interval_s: DEFAULT_INTERVAL_S,
            concurrency: DEFAULT_CONCURRENCY,
            rate_per_s: DEFAULT_RATE_PER_S,
            timeout_ms: DEFAULT_TIMEOUT_MS,
            retries: DEFAULT_RETRIES,
            reverse_dns: false,
            tcp_ports: Vec::new(),
            allow_large: false,
            oui_file: d_oui_file(),
        }
    }
}

impl ScanConfig {
    /// Whether anything is to be scanned.
    pub fn enabled(&self) -> bool {
        !self.networks.is_empty()
    }

    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }
}

/// A problem with one key: the dotted key and what is wrong, for `ConfigError::Invalid`.
pub type KeyProblem = (&'static str, String);

pub(super) fn range<T: PartialOrd + std::fmt::Display + Copy>(
    key: &'static str,
    v: T,
    min: T,
    max: T,
    default: T,
) -> Result<(), KeyProblem> {
    if v < min || v > max {
        return Err((
            key,
            format!("{v} is out of range; use {min} to {max} ({default} by default)"),
        ));
    }
    Ok(())
}

/// Checks a `[scan]` section.
pub fn validate_scan(c: &ScanConfig) -> Result<(), KeyProblem> {
    range(
        "scan.interval-s",
        c.interval_s,
        10,
        86_400,
        DEFAULT_INTERVAL_S,
    )?;
    range(
        "scan.concurrency",
        c.concurrency,
        1,
        4_096,
        DEFAULT_CONCURRENCY,
    )?;
    range(
        "scan.rate-per-s",
        c.rate_per_s,
        1,
        100_000,
        DEFAULT_RATE_PER_S,
    )?;
    range(
        "scan.timeout-ms",
        c.timeout_ms,
        50,
        30_000,
        DEFAULT_TIMEOUT_MS,
    )?;
    range("scan.retries", c.retries, 0, 10, DEFAULT_RETRIES)?;
    if c.networks.len() > MAX_NETWORKS {
        return Err((
            "scan.networks",
            format!("{} networks; at most {MAX_NETWORKS}", c.networks.len()),
        ));
    }
    for net in &c.networks {
        let first = net.network().octets()[0];
        if first == 0 || first >= 224 {
            return Err((
                "scan.networks",
                format!("{net} is not a unicast network; name the LAN's own, e.g. 192.168.1.0/24"),
            ));
        }
        if net.prefix_len() < MAX_PREFIX {
            return Err((
                "scan.networks",
                format!(
                    "{net} has {} addresses; the largest network scanned is a /{MAX_PREFIX} \
                     — split it into the subnets that really hold devices",
                    net.size()
                ),
            ));
        }
        if net.prefix_len() < MAX_PREFIX_WITHOUT_OVERRIDE && !c.allow_large {
            return Err((
                "scan.networks",
                format!(
                    "{net} has {} addresses; networks larger than /{MAX_PREFIX_WITHOUT_OVERRIDE} \
                     (1022 hosts) are refused unless `allow-large = true` is set in [scan]",
                    net.size()
                ),
            ));
        }
    }
    if c.tcp_ports.len() > MAX_TCP_PORTS {
        return Err((
            "scan.tcp-ports",
            format!("{} ports; at most {MAX_TCP_PORTS}", c.tcp_ports.len()),
        ));
    }
    if c.tcp_ports.contains(&0) {
        return Err((
            "scan.tcp-ports",
            "port 0 cannot be probed; use 1 to 65535".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(toml: &str) -> Result<ScanConfig, String> {
        let c: ScanConfig = toml::from_str(toml).map_err(|e| e.to_string())?;
        validate_scan(&c).map_err(|(k, p)| format!("{k}: {p}"))?;
        Ok(c)
    }

    #[test]
    fn defaults() {
        let c = scan("").unwrap();
        assert!(!c.enabled());
        assert_eq!(c, ScanConfig::default());
        assert_eq!((c.interval_s, c.timeout_ms, c.retries), (600, 500, 1));
    }

    #[test]
    fn large_networks_need_the_override() {
        let err = scan("networks = [\"10.0.0.0/16\"]").unwrap_err();
        assert!(
            err.starts_with("scan.networks: 10.0.0.0/16 has 65536 addresses"),
            "{err}"
        );
        assert!(err.contains("allow-large = true"), "{err}");
        assert!(scan("networks = [\"10.0.0.0/16\"]\nallow-large = true").is_ok());
        assert!(scan("networks = [\"10.0.0.0/22\"]").is_ok());
        let err = scan("networks = [\"10.0.0.0/8\"]\nallow-large = true").unwrap_err();
        assert!(err.contains("largest network scanned is a /16"), "{err}");
    }

    #[test]
    fn odd_networks_are_refused() {
        for bad in ["224.0.0.0/24", "0.0.0.0/24", "255.255.255.255/32"] {
            let err = scan(&format!("networks = [\"{bad}\"]")).unwrap_err();
            assert!(err.contains("not a unicast network"), "{err}");
        }
        let err = scan("networks = [\"192.168.1.1/24\"]").unwrap_err();
        assert!(err.contains("did you mean 192.168.1.0/24"), "{err}");
    }

    #[test]
    fn ranges_name_their_key() {
        let err = scan("timeout-ms = 10").unwrap_err();
        assert!(
            err.starts_with("scan.timeout-ms: 10 is out of range"),
            "{err}"
        );
        assert!(scan("tcp-ports = [0]").unwrap_err().contains("port 0"));
        assert!(
            scan("concurrency = 0")
                .unwrap_err()
                .starts_with("scan.concurrency")
        );
        assert!(
            scan("frobnicate = 1")
                .unwrap_err()
                .contains("unknown field")
        );
    }
}
