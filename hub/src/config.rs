//! `hub.toml`: kebab-case keys, unknown keys rejected, every default documented in
//! `deploy/hub.toml`. CLI flags override the file (see `cli.rs`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use sitewatch_agent::config::{BrokerUrl, TlsConfig};
use sitewatch_proto::{NodeId, Prefix, SiteId};

/// Configuration errors; the message names the file, the key and the fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source} — check the path or pass --config")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid configuration in {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

fn d_mqtt_listen() -> SocketAddr {
    SocketAddr::from(([0, 0, 0, 0], 1883))
}
fn d_http_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}
fn d_data_dir() -> PathBuf {
    PathBuf::from("/var/lib/sitewatch")
}
fn d_factor() -> u64 {
    3
}
fn d_hb() -> u64 {
    10
}
fn d_true() -> bool {
    true
}
fn d_site() -> SiteId {
    SiteId::new("hub").unwrap_or_else(|_| unreachable!("literal is a valid id"))
}

/// The hub's configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct HubConfig {
    /// Where the embedded MQTT broker listens (ignored with `broker`).
    #[serde(default = "d_mqtt_listen")]
    pub mqtt_listen: SocketAddr,
    /// Where the HTTP API and dashboard listen. Loopback by default; off loopback every
    /// request but the login page and `/healthz` needs a login or a token (`[auth]`).
    #[serde(default = "d_http_listen")]
    pub http_listen: SocketAddr,
    /// Directory holding `sitewatch.db`; created if missing.
    #[serde(default = "d_data_dir")]
    pub data_dir: PathBuf,
    /// `mqtt://host:port` of an external broker (Mosquitto, EMQX). When set, no embedded
    /// broker is started.
    #[serde(default)]
    pub broker: Option<BrokerUrl>,
    /// `[tls]`: CA file and optional client certificate for an `mqtts://` external broker
    /// (the same keys as the agent's `[tls]`).
    #[serde(default)]
    pub tls: TlsConfig,
    /// Credentials toward an external broker.
    #[serde(default)]
    pub mqtt_username: Option<String>,
    #[serde(default)]
    pub mqtt_password: Option<String>,
    /// With an external clustered broker (EMQX): subscribe to the per-message agent topics
    /// as `$share/GROUP/…` so the cluster spreads them; see docs/EXTERNAL_BROKERS.md.
    #[serde(default)]
    pub shared_subscription_group: Option<String>,
    /// Topic prefix shared with every agent.
    #[serde(default)]
    pub topic_prefix: PrefixField,
    /// A node is offline after this many heartbeat intervals without a message.
    #[serde(default = "d_factor")]
    pub heartbeat_timeout_factor: u64,
    /// Heartbeat interval assumed for a node until its `info` says otherwise.
    #[serde(default = "d_hb")]
    pub default_heartbeat_interval_s: u64,
    /// The agent the hub runs in-process for its own machine.
    #[serde(default)]
    pub local_agent: LocalAgentConfig,
    /// `[retention]`: how long each kind of history is kept.
    #[serde(default)]
    pub retention: RetentionConfig,
    /// `[alerts]`: rules and notifiers (`deploy/alerts.toml` documents every key).
    #[serde(default)]
    pub alerts: crate::alert::AlertsConfig,
    /// `[detection]`: start-up grace, clock skew and flapping thresholds.
    #[serde(default)]
    pub detection: crate::state::Detection,
    /// `[inventory]`: the LAN device inventory fed by agents' scans.
    #[serde(default)]
    pub inventory: InventoryConfig,
    /// `[auth]`: accounts of the dashboard and the API, and who may skip logging in.
    #[serde(default)]
    pub auth: crate::auth::AuthConfig,
    /// `[embedded-broker]`: limits of the embedded broker.
    #[serde(default)]
    pub embedded_broker: EmbeddedBrokerConfig,
    /// `[security]`: who may connect to the embedded broker, signed telemetry, TLS.
    #[serde(default)]
    pub security: SecurityConfig,
    /// `[downloads]`: agent binaries served through install links, and how long links work.
    #[serde(default)]
    pub downloads: crate::install_links::DownloadsConfig,
    /// `[homeassistant]`: MQTT discovery of the fleet for Home Assistant (on by default).
    #[serde(default)]
    pub homeassistant: crate::homeassistant::Config,
}

/// Who may use the embedded broker without credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Anonymous {
    /// Nobody: every client logs in (node credentials or an MQTT user).
    Nobody,
    /// Clients on the hub's own machine (127.0.0.0/8, ::1): demos and local tools.
    Loopback,
    /// Everybody, as rate-limited clients (agents without credentials included): a trusted
    /// network only.
    Everyone,
}

/// `[security]` of hub.toml.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct SecurityConfig {
    /// Drop agent data messages (heartbeat, metrics, scan, info) that carry no valid
    /// signature of their node's key. Signed messages are always checked.
    #[serde(default = "d_true")]
    pub require_signed: bool,
    /// Clients without credentials on the embedded broker.
    #[serde(default = "d_anonymous")]
    pub anonymous: Anonymous,
    /// Address of the embedded broker's MQTT-over-TLS listener (usually 0.0.0.0:8883).
    #[serde(default)]
    pub tls_listen: Option<SocketAddr>,
    /// PEM certificate chain of that listener (leaf first); re-read on SIGHUP.
    #[serde(default)]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of `tls-cert`; re-read on SIGHUP.
    #[serde(default)]
    pub tls_key: Option<PathBuf>,
    /// CA of client certificates; when set every TLS client must present one it signed.
    #[serde(default)]
    pub tls_client_ca: Option<PathBuf>,
}

fn d_anonymous() -> Anonymous {
    Anonymous::Loopback
}

impl Default for SecurityConfig {
    fn default() -> Self {
        Self {
            require_signed: true,
            anonymous: d_anonymous(),
            tls_listen: None,
            tls_cert: None,
            tls_key: None,
            tls_client_ca: None,
        }
    }
}

impl SecurityConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        match (&self.tls_listen, &self.tls_cert, &self.tls_key) {
            (None, None, None) if self.tls_client_ca.is_none() => Ok(()),
            (Some(_), Some(_), Some(_)) => Ok(()),
            _ => Err(ConfigError::Invalid(
                "[security] tls-listen, tls-cert and tls-key go together: set all three to \
                 serve MQTT over TLS (tls-client-ca is optional), or none"
                    .into(),
            )),
        }
    }
}

/// `[embedded-broker]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct EmbeddedBrokerConfig {
    /// Most MQTT connections open at once (agents, the hub's own, other clients); beyond it
    /// clients are refused with CONNACK 3 and retry.
    #[serde(default = "d_max_connections")]
    pub max_connections: usize,
}

fn d_max_connections() -> usize {
    10_000
}

impl Default for EmbeddedBrokerConfig {
    fn default() -> Self {
        Self {
            max_connections: d_max_connections(),
        }
    }
}

/// `[inventory]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct InventoryConfig {
    /// A device no scan has seen for this long is gone (three scans at the agent's default
    /// 10-minute interval, so one missed scan is not an absence).
    #[serde(default = "d_absent_after")]
    pub absent_after_s: u64,
}

fn d_absent_after() -> u64 {
    1800
}

impl Default for InventoryConfig {
    fn default() -> Self {
        Self {
            absent_after_s: d_absent_after(),
        }
    }
}

/// `[retention]`: raw samples, rollup tiers and the other stored messages.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RetentionConfig {
    /// Raw samples (every value as sent), in hours.
    #[serde(default = "d_raw_hours")]
    pub raw_hours: u64,
    /// 1-minute min/avg/max/last rollups, in days.
    #[serde(default = "d_minute_days")]
    pub minute_days: u64,
    /// 1-hour rollups, in days.
    #[serde(default = "d_hour_days")]
    pub hour_days: u64,
    /// Heartbeats, in days.
    #[serde(default = "d_heartbeat_days")]
    pub heartbeat_days: u64,
    /// LAN scan results, in days.
    #[serde(default = "d_scan_days")]
    pub scan_days: u64,
    /// History of node `info` changes, in days.
    #[serde(default = "d_year")]
    pub info_days: u64,
    /// Node status changes, in days.
    #[serde(default = "d_year")]
    pub event_days: u64,
}

fn d_raw_hours() -> u64 {
    48
}
fn d_minute_days() -> u64 {
    30
}
fn d_hour_days() -> u64 {
    730
}
fn d_heartbeat_days() -> u64 {
    7
}
fn d_scan_days() -> u64 {
    30
}
fn d_year() -> u64 {
    365
}

impl Default for RetentionConfig {
    fn default() -> Self {
        Self {
            raw_hours: d_raw_hours(),
            minute_days: d_minute_days(),
            hour_days: d_hour_days(),
            heartbeat_days: d_heartbeat_days(),
            scan_days: d_scan_days(),
            info_days: d_year(),
            event_days: d_year(),
        }
    }
}

impl RetentionConfig {
    /// Longest accepted retention (100 years), so milliseconds never overflow.
    const MAX_DAYS: u64 = 36_500;

    fn validate(&self) -> Result<(), ConfigError> {
        let days = [
            ("raw-hours", self.raw_hours.div_ceil(24)),
            ("minute-days", self.minute_days),
            ("hour-days", self.hour_days),
            ("heartbeat-days", self.heartbeat_days),
            ("scan-days", self.scan_days),
            ("info-days", self.info_days),
            ("event-days", self.event_days),
        ];
        for (key, v) in days {
            if v == 0 || v > Self::MAX_DAYS {
                return Err(ConfigError::Invalid(format!(
                    "[retention] {key} must be at least 1 and at most {} days",
                    Self::MAX_DAYS
                )));
            }
        }
        if self.raw_hours < 2 {
            return Err(ConfigError::Invalid(
                "[retention] raw-hours must be at least 2 (rollups are built from raw samples)"
                    .into(),
            ));
        }
        Ok(())
    }

    pub fn to_retention(&self) -> crate::store::Retention {
        const H: i64 = 3_600_000;
        let d = |days: u64| days as i64 * 24 * H;
        crate::store::Retention {
            raw_ms: self.raw_hours as i64 * H,
            minute_ms: d(self.minute_days),
            hour_ms: d(self.hour_days),
            heartbeat_ms: d(self.heartbeat_days),
            scan_ms: d(self.scan_days),
            info_ms: d(self.info_days),
            event_ms: d(self.event_days),
        }
    }
}

/// `[local-agent]`: monitoring of the hub's own machine.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct LocalAgentConfig {
    #[serde(default = "d_true")]
    pub enabled: bool,
    #[serde(default = "d_site")]
    pub site: SiteId,
    /// Defaults to the hostname, sanitised.
    #[serde(default)]
    pub node: Option<NodeId>,
    #[serde(default = "d_hb")]
    pub heartbeat_interval_s: u64,
    #[serde(default = "d_metrics")]
    pub metrics_interval_s: u64,
}

fn d_metrics() -> u64 {
    30
}

impl Default for LocalAgentConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            site: d_site(),
            node: None,
            heartbeat_interval_s: d_hb(),
            metrics_interval_s: d_metrics(),
        }
    }
}

/// A topic prefix that validates while deserializing.
#[derive(Debug, Clone, Default)]
pub struct PrefixField(pub Prefix);

impl<'de> Deserialize<'de> for PrefixField {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Prefix::new(s)
            .map(PrefixField)
            .map_err(serde::de::Error::custom)
    }
}

impl Default for HubConfig {
    fn default() -> Self {
        // An empty document yields every default.
        Self::from_toml_str("").unwrap_or_else(|_| unreachable!("defaults are valid"))
    }
}

impl HubConfig {
    pub fn from_toml_str(s: &str) -> Result<Self, ConfigError> {
        let cfg: HubConfig = toml::from_str(s).map_err(|e| ConfigError::Parse {
            path: PathBuf::from("<string>"),
            message: e.to_string(),
        })?;
        cfg.validate()?;
        Ok(cfg)
    }

    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let cfg: HubConfig = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        // Settings that depend on `broker` are checked once flags are applied (--broker).
        cfg.validate_values()?;
        Ok(cfg)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.heartbeat_timeout_factor < 2 {
            return Err(ConfigError::Invalid(
                "heartbeat-timeout-factor must be at least 2 (one late heartbeat must not mark a node offline)".into(),
            ));
        }
        if self.default_heartbeat_interval_s == 0
            || self.local_agent.heartbeat_interval_s == 0
            || self.local_agent.metrics_interval_s == 0
        {
            return Err(ConfigError::Invalid(
                "intervals must be at least 1 second".into(),
            ));
        }
        self.retention.validate()?;
        self.validate_values()?;
        if self.shared_subscription_group.is_some() && self.broker.is_none() {
            return Err(ConfigError::Invalid(
                "shared-subscription-group is for an external broker (`broker = ...`); the \
                 embedded broker has one hub"
                    .into(),
            ));
        }
        self.homeassistant
            .validate()
            .map_err(ConfigError::Invalid)?;
        if self.broker.is_some() && self.security.tls_listen.is_some() {
            return Err(ConfigError::Invalid(
                "[security] tls-listen is for the embedded broker; with an external `broker` \
                 configure TLS there"
                    .into(),
            ));
        }
        Ok(())
    }

    /// Every check that does not depend on another setting a flag may change.
    fn validate_values(&self) -> Result<(), ConfigError> {
        self.security.validate()?;
        if let Some(group) = &self.shared_subscription_group {
            let ok = !group.is_empty()
                && group.len() <= 64
                && group
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'));
            if !ok {
                return Err(ConfigError::Invalid(format!(
                    "shared-subscription-group {group:?}: use 1-64 letters, digits, `-` or `_`"
                )));
            }
        }
        if !(2..=sitewatch_broker::config::MAX_CONNECTIONS_LIMIT)
            .contains(&self.embedded_broker.max_connections)
        {
            return Err(ConfigError::Invalid(format!(
                "[embedded-broker] max-connections must be between 2 and {}",
                sitewatch_broker::config::MAX_CONNECTIONS_LIMIT
            )));
        }
        if self.inventory.absent_after_s == 0 {
            return Err(ConfigError::Invalid(
                "[inventory] absent-after-s must be at least 1 (1800 by default)".into(),
            ));
        }
        self.detection
            .validate()
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        self.auth.validate().map_err(ConfigError::Invalid)?;
        self.downloads.validate().map_err(ConfigError::Invalid)?;
        self.alerts
            .compile()
            .map_err(|e| ConfigError::Invalid(format!("[alerts]: {e}")))?;
        let tls = self.broker.as_ref().is_some_and(BrokerUrl::is_tls);
        sitewatch_agent::tls::validate(&self.tls, tls)
            .map_err(|e| ConfigError::Invalid(format!("[tls]: {e}")))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_gives_documented_defaults() {
        let c = HubConfig::from_toml_str("").unwrap();
        assert_eq!(c.mqtt_listen.to_string(), "0.0.0.0:1883");
        assert_eq!(c.http_listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.heartbeat_timeout_factor, 3);
        assert!(c.local_agent.enabled);
        assert_eq!(c.topic_prefix.0.as_str(), "sitewatch/v1");
        assert_eq!(
            c.retention.to_retention(),
            crate::store::Retention::default()
        );
    }

    #[test]
    fn unknown_keys_and_bad_values_are_named() {
        let e = HubConfig::from_toml_str("mqtt-listn = \"x\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("mqtt-listn"), "{e}");
        let e = HubConfig::from_toml_str("[local-agent]\nsite = \"Bad Site\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("Bad Site"), "{e}");
        let e = HubConfig::from_toml_str("topic-prefix = \"a/#\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("prefix"), "{e}");
        let e = HubConfig::from_toml_str("broker = \"tcp://x\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("mqtt://HOST"), "{e}");
        let e = HubConfig::from_toml_str("heartbeat-timeout-factor = 1")
            .unwrap_err()
            .to_string();
        assert!(e.contains("at least 2"), "{e}");
        let e = HubConfig::from_toml_str("[retention]\nminute-days = 0")
            .unwrap_err()
            .to_string();
        assert!(e.contains("minute-days"), "{e}");
        let e = HubConfig::from_toml_str("[retention]\nraw-days = 3")
            .unwrap_err()
            .to_string();
        assert!(e.contains("raw-days"), "{e}");
        let e = HubConfig::from_toml_str("[auth]\nadmin-user = \"a b\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("admin-user"), "{e}");
        let c = HubConfig::from_toml_str(
            "[auth]\nopen-on-loopback = false\nsecure-cookie = \"always\"\nsession-hours = 12",
        )
        .unwrap();
        assert!(!c.auth.open_on_loopback);
        assert_eq!(c.auth.secure_cookie, crate::auth::SecureCookie::Always);
    }

    #[test]
    fn security_defaults_and_mistakes() {
        let c = HubConfig::from_toml_str("").unwrap();
        assert!(c.security.require_signed);
        assert_eq!(c.security.anonymous, Anonymous::Loopback);
        assert!(c.security.tls_listen.is_none());
        let c = HubConfig::from_toml_str(
            "[security]\nrequire-signed = false\nanonymous = \"nobody\"\n\
             tls-listen = \"0.0.0.0:8883\"\ntls-cert = \"/c.pem\"\ntls-key = \"/k.pem\"\n",
        )
        .unwrap();
        assert!(!c.security.require_signed);
        assert_eq!(c.security.anonymous, Anonymous::Nobody);
        let e = HubConfig::from_toml_str("[security]\ntls-listen = \"0.0.0.0:8883\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("tls-cert") && e.contains("together"), "{e}");
        let e = HubConfig::from_toml_str("[security]\nanonymous = \"yes\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("nobody") && e.contains("loopback"), "{e}");
        let e = HubConfig::from_toml_str(
            "broker = \"mqtt://10.0.0.1:1883\"\n[security]\ntls-listen = \"0.0.0.0:8883\"\n\
             tls-cert = \"/c\"\ntls-key = \"/k\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("embedded broker"), "{e}");
    }
}
