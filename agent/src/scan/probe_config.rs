//! `[probes]` of the agent config: latency probe targets and pacing, and their validation.

use std::net::IpAddr;
use std::time::Duration;

use serde::Deserialize;

use super::config::{KeyProblem, range};

const MAX_PROBE_TARGETS: usize = 16;

/// `[probes]`: latency to a few targets, measured during every metrics interval.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ProbesConfig {
    /// IP addresses, host names or `gateway` (the default route's gateway). Absent: the
    /// gateway only; empty: no probes.
    #[serde(default)]
    pub targets: Option<Vec<String>>,
    /// Echo requests per target and metrics interval.
    #[serde(default = "d_count")]
    pub count: u32,
    /// Milliseconds between two echo requests to one target.
    #[serde(default = "d_probe_interval")]
    pub interval_ms: u64,
    /// How long each echo request waits for its reply.
    #[serde(default = "d_probe_timeout")]
    pub timeout_ms: u64,
}

pub const DEFAULT_PROBE_COUNT: u32 = 5;
pub const DEFAULT_PROBE_INTERVAL_MS: u64 = 200;
pub const DEFAULT_PROBE_TIMEOUT_MS: u64 = 1_000;

fn d_count() -> u32 {
    DEFAULT_PROBE_COUNT
}
fn d_probe_interval() -> u64 {
    DEFAULT_PROBE_INTERVAL_MS
}
fn d_probe_timeout() -> u64 {
    DEFAULT_PROBE_TIMEOUT_MS
}

impl Default for ProbesConfig {
    fn default() -> Self {
        Self {
            targets: None,
            count: DEFAULT_PROBE_COUNT,
            interval_ms: DEFAULT_PROBE_INTERVAL_MS,
            timeout_ms: DEFAULT_PROBE_TIMEOUT_MS,
        }
    }
}

/// One probe target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeTarget {
    /// The default route's gateway, looked up at every round.
    Gateway,
    Ip(IpAddr),
    /// A host name, resolved at every round.
    Host(String),
}

impl ProbeTarget {
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("gateway") {
            return Ok(ProbeTarget::Gateway);
        }
        if let Ok(ip) = s.parse::<IpAddr>() {
            return Ok(ProbeTarget::Ip(ip));
        }
        let valid = !s.is_empty()
            && s.len() <= 253
            && s.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            });
        if valid {
            Ok(ProbeTarget::Host(s.to_owned()))
        } else {
            Err(format!(
                "{s:?} is not an IP address, a host name or `gateway`"
            ))
        }
    }

    /// The `target` reported in metrics: `gateway`, or as configured.
    pub fn label(&self) -> String {
        match self {
            ProbeTarget::Gateway => "gateway".into(),
            ProbeTarget::Ip(ip) => ip.to_string(),
            ProbeTarget::Host(h) => h.clone(),
        }
    }
}

impl ProbesConfig {
    /// The targets: as configured, or the gateway when the key is absent.
    pub fn targets(&self) -> Vec<ProbeTarget> {
        match &self.targets {
            None => vec![ProbeTarget::Gateway],
            Some(list) => list
                .iter()
                .filter_map(|t| ProbeTarget::parse(t).ok())
                .collect(),
        }
    }

    /// How long one round (every echo to one target) may take.
    pub fn round_time(&self) -> Duration {
        Duration::from_millis(
            u64::from(self.count.saturating_sub(1)) * self.interval_ms + self.timeout_ms,
        )
    }
}

/// Checks a `[probes]` section; a round must fit in one metrics interval.
pub fn validate_probes(p: &ProbesConfig, metrics_interval_s: u64) -> Result<(), KeyProblem> {
    range("probes.count", p.count, 1, 100, DEFAULT_PROBE_COUNT)?;
    range(
        "probes.interval-ms",
        p.interval_ms,
        10,
        60_000,
        DEFAULT_PROBE_INTERVAL_MS,
    )?;
    range(
        "probes.timeout-ms",
        p.timeout_ms,
        50,
        30_000,
        DEFAULT_PROBE_TIMEOUT_MS,
    )?;
    if let Some(targets) = &p.targets {
        if targets.len() > MAX_PROBE_TARGETS {
            return Err((
                "probes.targets",
                format!("{} targets; at most {MAX_PROBE_TARGETS}", targets.len()),
            ));
        }
        for t in targets {
            ProbeTarget::parse(t).map_err(|e| ("probes.targets", e))?;
        }
    }
    let round = p.round_time();
    if round >= Duration::from_secs(metrics_interval_s) {
        return Err((
            "probes.count",
            format!(
                "a round of {} echoes {} ms apart plus a {} ms timeout takes {} ms, longer than \
                 metrics-interval-s ({metrics_interval_s} s); lower count or interval-ms",
                p.count,
                p.interval_ms,
                p.timeout_ms,
                round.as_millis()
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_targets() {
        let p: ProbesConfig = toml::from_str("").unwrap();
        assert_eq!(p.targets(), [ProbeTarget::Gateway]);
        let p: ProbesConfig =
            toml::from_str("targets = [\"gateway\", \"1.1.1.1\", \"router.lan\"]").unwrap();
        assert_eq!(
            p.targets(),
            [
                ProbeTarget::Gateway,
                ProbeTarget::Ip("1.1.1.1".parse().unwrap()),
                ProbeTarget::Host("router.lan".into())
            ]
        );
        let p: ProbesConfig = toml::from_str("targets = []").unwrap();
        assert!(p.targets().is_empty());
        let p: ProbesConfig = toml::from_str("targets = [\"bad host!\"]").unwrap();
        let (key, problem) = validate_probes(&p, 30).unwrap_err();
        assert_eq!(key, "probes.targets");
        assert!(problem.contains("not an IP address"), "{problem}");
    }

    #[test]
    fn a_probe_round_fits_in_a_metrics_interval() {
        let p = ProbesConfig::default();
        assert!(validate_probes(&p, 30).is_ok());
        let (key, problem) = validate_probes(&p, 1).unwrap_err();
        assert_eq!(key, "probes.count");
        assert!(problem.contains("1800 ms"), "{problem}");
    }
}
