//! Range checks of numeric settings and whole-section checks (`[outbox]`, `[tls]`,
//! `[[checks]]`) run when a configuration is finished, so `validate`, startup and a SIGHUP
//! reload reject the same mistakes with the same messages.

use super::{AgentConfig, ConfigError, OutboxConfig};

/// Allowed values and default of one numeric setting.
pub(super) struct Range {
    pub key: &'static str,
    pub default: u64,
    pub min: u64,
    pub max: u64,
    pub text: &'static str,
}

pub(super) const HEARTBEAT: Range = Range {
    key: "heartbeat-interval-s",
    default: super::DEFAULT_HEARTBEAT_INTERVAL_S,
    min: 1,
    max: 86_400,
    text: "1..=86400 seconds",
};
pub(super) const METRICS: Range = Range {
    key: "metrics-interval-s",
    default: super::DEFAULT_METRICS_INTERVAL_S,
    min: 1,
    max: 86_400,
    text: "1..=86400 seconds",
};
pub(super) const KEEPALIVE: Range = Range {
    key: "keepalive-s",
    default: super::DEFAULT_KEEPALIVE_S,
    min: 1,
    max: u16::MAX as u64,
    text: "1..=65535 seconds (the MQTT limit)",
};
pub(super) const RECONNECT_MAX: Range = Range {
    key: "reconnect-max-s",
    default: super::DEFAULT_RECONNECT_MAX_S,
    min: 1,
    max: 3_600,
    text: "1..=3600 seconds",
};

impl Range {
    /// `value`, or the default when absent; an error naming `origin` and the key when out
    /// of range (negative values included).
    pub fn check(&self, origin: &str, value: Option<i64>) -> Result<u64, ConfigError> {
        match value {
            None => Ok(self.default),
            Some(v) if v >= 0 && (self.min..=self.max).contains(&(v as u64)) => Ok(v as u64),
            Some(v) => Err(ConfigError::OutOfRange {
                origin: origin.to_owned(),
                key: self.key,
                value: v,
                range: self.text,
            }),
        }
    }
}

/// Smallest useful spill file: a few metrics messages.
const MIN_SPILL_BYTES: u64 = 64 * 1024;

/// Checks the sections that need more than their types: outbox limits and spill
/// directory, TLS files, checks.
pub(super) fn sections(origin: &str, c: &AgentConfig) -> Result<(), ConfigError> {
    outbox(origin, &c.outbox)?;
    crate::tls::validate(&c.tls, c.broker.is_tls()).map_err(|source| ConfigError::Tls {
        origin: origin.to_owned(),
        source,
    })?;
    crate::checks::validate(&c.checks).map_err(|problem| ConfigError::Checks {
        origin: origin.to_owned(),
        problem,
    })?;
    let invalid = |(key, problem)| ConfigError::Invalid {
        origin: origin.to_owned(),
        key,
        problem,
    };
    crate::scan::config::validate_scan(&c.scan).map_err(invalid)?;
    if let Some(probes) = &c.probes {
        crate::scan::probe_config::validate_probes(probes, c.metrics_interval_s)
            .map_err(invalid)?;
    }
    Ok(())
}

fn outbox(origin: &str, o: &OutboxConfig) -> Result<(), ConfigError> {
    let invalid = |key, problem: String| ConfigError::Invalid {
        origin: origin.to_owned(),
        key,
        problem,
    };
    if o.max_messages == 0 {
        return Err(invalid(
            "outbox.max-messages",
            "must be at least 1 (2000 by default)".into(),
        ));
    }
    if o.resend_after_s == 0 {
        return Err(invalid(
            "outbox.resend-after-s",
            "must be at least 1 (60 by default)".into(),
        ));
    }
    if let Some(path) = &o.spill_file {
        if o.spill_max_bytes < MIN_SPILL_BYTES {
            return Err(invalid(
                "outbox.spill-max-bytes",
                format!(
                    "{} is too small; use at least {MIN_SPILL_BYTES} (16 MiB by default)",
                    o.spill_max_bytes
                ),
            ));
        }
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => std::path::Path::new("."),
        };
        if !dir.is_dir() {
            return Err(invalid(
                "outbox.spill-file",
                format!(
                    "directory {} does not exist — create it (writable by the agent's user) \
                     or choose another path",
                    dir.display()
                ),
            ));
        }
        if path.is_dir() {
            return Err(invalid(
                "outbox.spill-file",
                format!("{} is a directory; name a file in it", path.display()),
            ));
        }
    }
    Ok(())
}

/// One line describing a valid configuration, for `validate`.
pub fn summary(c: &AgentConfig) -> String {
    let mut s = format!("site {}, node {}, broker {}", c.site, c.node_id(), c.broker);
    if c.broker.is_tls() {
        match &c.tls.ca_file {
            Some(ca) => s.push_str(&format!(" (TLS, CA file {}", ca.display())),
            None => s.push_str(" (TLS, system CA certificates"),
        }
        if c.tls.client_cert.is_some() {
            s.push_str(", client certificate");
        }
        s.push(')');
    }
    if let Some(user) = &c.username {
        s.push_str(&format!(", user {user}"));
    }
    s.push_str(&format!(
        ", heartbeat every {} s, metrics every {} s, keepalive {} s, {} check{}, outbox {} \
         messages in memory",
        c.heartbeat_interval_s,
        c.metrics_interval_s,
        c.keepalive_s,
        c.checks.len(),
        if c.checks.len() == 1 { "" } else { "s" },
        c.outbox.max_messages,
    ));
    if let Some(spill) = &c.outbox.spill_file {
        s.push_str(&format!(
            " + spill file {} (up to {} bytes)",
            spill.display(),
            c.outbox.spill_max_bytes
        ));
    }
    if c.scan.enabled() {
        let nets: Vec<String> = c.scan.networks.iter().map(|n| n.to_string()).collect();
        s.push_str(&format!(
            ", LAN scan of {} every {} s",
            nets.join(" "),
            c.scan.interval_s
        ));
    }
    if let Some(p) = &c.probes {
        let targets: Vec<String> = p.targets().iter().map(|t| t.label()).collect();
        if !targets.is_empty() {
            s.push_str(&format!(
                ", latency probes to {} ({} echoes per sample)",
                targets.join(" "),
                p.count
            ));
        }
    }
    s
}
