//! Agent configuration: the TOML file, its defaults, overrides and validation.
//!
//! The file is read into a [`PartialConfig`] (every key optional, unknown keys rejected),
//! overrides from the command line and the environment are laid over it, and
//! [`PartialConfig::finish`] fills defaults and validates the result into an [`AgentConfig`].

mod error;
mod validate;

use std::fmt;
use std::path::Path;

use serde::{Deserialize, Deserializer};
use sitewatch_proto::{NodeId, Prefix, SiteId};

pub use self::error::{ConfigError, key_at};
pub use self::validate::summary;
use self::validate::{HEARTBEAT, KEEPALIVE, METRICS, RECONNECT_MAX};

pub use crate::broker_url::{BrokerUrl, BrokerUrlError};
pub use crate::checks::CheckConfig;
pub use crate::collect::filesystems::FilesystemsConfig;
pub use crate::outbox::OutboxConfig;
pub use crate::scan::{ProbesConfig, ScanConfig};
pub use crate::tls::TlsConfig;

/// Where the agent looks for its config file when `--config` is not given.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/sitewatch/agent.toml";
/// Default broker when none is configured.
pub const DEFAULT_BROKER: &str = "mqtt://127.0.0.1:1883";
pub const DEFAULT_HEARTBEAT_INTERVAL_S: u64 = 10;
pub const DEFAULT_METRICS_INTERVAL_S: u64 = 30;
pub const DEFAULT_KEEPALIVE_S: u64 = 10;
/// Longest wait between two reconnect attempts (the backoff is jittered below it).
pub const DEFAULT_RECONNECT_MAX_S: u64 = 30;

fn deserialize_prefix<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Prefix>, D::Error> {
    let s = String::deserialize(d)?;
    Prefix::new(s).map(Some).map_err(serde::de::Error::custom)
}

/// The validated configuration the agent runs with.
///
/// Deserializing it (e.g. as a section of the hub's config) goes through [`PartialConfig`],
/// so it accepts the same kebab-case keys, rejects unknown ones and fills the same defaults.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "PartialConfig")]
pub struct AgentConfig {
    /// Site this node belongs to; first topic level after the prefix.
    pub site: SiteId,
    /// Node id; `None` means "the sanitised hostname" (see [`AgentConfig::node_id`]).
    pub node: Option<NodeId>,
    /// Broker to publish to.
    pub broker: BrokerUrl,
    /// Topic root, `sitewatch/v1` unless a deployment shares a broker with others.
    pub topic_prefix: Prefix,
    /// Seconds between heartbeats; the hub's offline timeout is a multiple of this.
    pub heartbeat_interval_s: u64,
    /// Seconds between metrics samples.
    pub metrics_interval_s: u64,
    /// MQTT keepalive; the broker publishes the last will after 1.5 × this of silence.
    pub keepalive_s: u64,
    /// Cap of the jittered reconnect backoff.
    pub reconnect_max_s: u64,
    /// MQTT username, when the broker requires authentication.
    pub username: Option<String>,
    /// MQTT password. Never logged; `Debug` redacts it.
    pub password: Option<String>,
    /// Home Assistant discovery of this node by the hub: `Some(true)` opts in, `Some(false)`
    /// out, `None` leaves it to the hub's `[homeassistant] nodes` (sent in `info`).
    pub home_assistant: Option<bool>,
    /// Per-node key the agent signs every heartbeat, metrics, scan and info message with
    /// (`sitewatch-hub node add` prints it); `None`: messages go unsigned.
    pub signing_key: Option<SigningKey>,
    /// `[filesystems]`: which mounts are reported.
    pub filesystems: FilesystemsConfig,
    /// `[[checks]]`: checks run with every metrics sample.
    pub checks: Vec<CheckConfig>,
    /// `[outbox]`: how many unacknowledged messages are kept, and where they spill.
    pub outbox: OutboxConfig,
    /// `[tls]`: certificates for `mqtts://` brokers.
    pub tls: TlsConfig,
    /// `[scan]`: LAN scans; scans nothing unless it names networks.
    pub scan: ScanConfig,
    /// `[probes]`: latency probes run with every metrics sample; `None` (neither a
    /// `[probes]` nor a `[scan]` section): no probes.
    pub probes: Option<ProbesConfig>,
}

impl fmt::Debug for AgentConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AgentConfig")
            .field("site", &self.site)
            .field("node", &self.node)
            .field("broker", &self.broker)
            .field("topic_prefix", &self.topic_prefix)
            .field("heartbeat_interval_s", &self.heartbeat_interval_s)
            .field("metrics_interval_s", &self.metrics_interval_s)
            .field("keepalive_s", &self.keepalive_s)
            .field("reconnect_max_s", &self.reconnect_max_s)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field(
                "signing_key",
                &self.signing_key.as_ref().map(|_| "<redacted>"),
            )
            .field("home_assistant", &self.home_assistant)
            .field("filesystems", &self.filesystems)
            .field("checks", &self.checks)
            .field("outbox", &self.outbox)
            .field("tls", &self.tls)
            .field("scan", &self.scan)
            .field("probes", &self.probes)
            .finish()
    }
}

impl AgentConfig {
    /// A config for `site` with every other setting at its default.
    pub fn new(site: SiteId) -> Self {
        Self {
            site,
            node: None,
            broker: BrokerUrl::default(),
            topic_prefix: Prefix::default(),
            heartbeat_interval_s: DEFAULT_HEARTBEAT_INTERVAL_S,
            metrics_interval_s: DEFAULT_METRICS_INTERVAL_S,
            keepalive_s: DEFAULT_KEEPALIVE_S,
            reconnect_max_s: DEFAULT_RECONNECT_MAX_S,
            username: None,
            password: None,
            signing_key: None,
            home_assistant: None,
            filesystems: FilesystemsConfig::default(),
            checks: Vec::new(),
            outbox: OutboxConfig::default(),
            tls: TlsConfig::default(),
            scan: ScanConfig::default(),
            probes: None,
        }
    }

    /// Parses and validates a config file's content (no overrides applied).
    pub fn from_toml_str(s: &str) -> Result<Self, ConfigError> {
        PartialConfig::from_toml_str(s, "config")?.finish("config")
    }

    /// Reads, parses and validates the config file at `path` (no overrides applied).
    pub fn load(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let path = path.as_ref();
        let origin = format!("config file {}", path.display());
        PartialConfig::load(path)?.finish(&origin)
    }

    /// The node id: the configured one, else the sanitised hostname. Configs returned by
    /// [`load`](Self::load), [`from_toml_str`](Self::from_toml_str) and deserialization
    /// always have `node` set; only a hand-built config on a host whose name sanitises to
    /// nothing falls back to `unnamed` (use [`resolve_node`](Self::resolve_node) to get an
    /// error instead).
    pub fn node_id(&self) -> NodeId {
        self.resolve_node().unwrap_or_else(|_| unnamed_node())
    }

    /// The node id, or an error saying how to set one when the hostname is unusable.
    pub fn resolve_node(&self) -> Result<NodeId, ConfigError> {
        match &self.node {
            Some(node) => Ok(node.clone()),
            None => node_from_hostname(),
        }
    }

    /// One line describing this configuration (printed by `validate`).
    pub fn summary(&self) -> String {
        summary(self)
    }

    /// The configuration as a TOML document, password redacted (for `--check-config`).
    pub fn to_redacted_toml(&self) -> String {
        let mut out = format!(
            "site = {:?}\nnode = {:?}\nbroker = \"{}\"\ntopic-prefix = {:?}\n\
             heartbeat-interval-s = {}\nmetrics-interval-s = {}\nkeepalive-s = {}\n\
             reconnect-max-s = {}\n",
            self.site.as_str(),
            self.node_id().as_str(),
            self.broker,
            self.topic_prefix.as_str(),
            self.heartbeat_interval_s,
            self.metrics_interval_s,
            self.keepalive_s,
            self.reconnect_max_s,
        );
        if let Some(user) = &self.username {
            out.push_str(&format!("username = {user:?}\n"));
        }
        if self.password.is_some() {
            out.push_str("password = \"<redacted>\"\n");
        }
        if self.signing_key.is_some() {
            out.push_str("signing-key = \"<redacted>\"\n");
        }
        out
    }
}

/// A node's signing key as configured: the key, and its hex text to compare configs.
#[derive(Clone)]
pub struct SigningKey {
    hex: String,
    key: sitewatch_proto::NodeKey,
}

impl SigningKey {
    /// Parses the 64 hex digits `sitewatch-hub node add` printed.
    pub fn from_hex(hex: &str) -> Result<Self, sitewatch_proto::SignError> {
        let key = sitewatch_proto::NodeKey::from_hex(hex)?;
        Ok(Self {
            hex: hex.trim().to_ascii_lowercase(),
            key,
        })
    }

    /// The key itself.
    pub fn key(&self) -> &sitewatch_proto::NodeKey {
        &self.key
    }
}

impl PartialEq for SigningKey {
    fn eq(&self, other: &Self) -> bool {
        self.hex == other.hex
    }
}

impl Eq for SigningKey {}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningKey(<redacted>)")
    }
}

fn unnamed_node() -> NodeId {
    NodeId::new("unnamed").unwrap_or_else(|_| unreachable!("`unnamed` is a valid node id"))
}

/// The hostname turned into a node id with [`sitewatch_proto::id::sanitize`].
pub fn node_from_hostname() -> Result<NodeId, ConfigError> {
    let hostname = sysinfo::System::host_name().unwrap_or_default();
    sitewatch_proto::id::sanitize(&hostname)
        .and_then(|s| NodeId::new(s).ok())
        .ok_or(ConfigError::NoNodeId { hostname })
}

/// The config file as written: every key optional, unknown keys rejected. Ids, the broker
/// URL and the prefix are validated while parsing, so the error names the key and line.
/// Numbers are read as signed so that a negative one gets a range error naming its key.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct PartialConfig {
    pub site: Option<SiteId>,
    pub node: Option<NodeId>,
    pub broker: Option<BrokerUrl>,
    #[serde(default, deserialize_with = "deserialize_prefix")]
    pub topic_prefix: Option<Prefix>,
    pub heartbeat_interval_s: Option<i64>,
    pub metrics_interval_s: Option<i64>,
    pub keepalive_s: Option<i64>,
    pub reconnect_max_s: Option<i64>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub signing_key: Option<String>,
    pub home_assistant: Option<bool>,
    pub filesystems: Option<FilesystemsConfig>,
    pub checks: Option<Vec<CheckConfig>>,
    pub outbox: Option<OutboxConfig>,
    pub tls: Option<TlsConfig>,
    pub scan: Option<ScanConfig>,
    pub probes: Option<ProbesConfig>,
}

/// Values given on the command line or in the environment; each `Some` replaces the file's.
/// Strings are validated by [`PartialConfig::apply`], which names the flag in its errors.
#[derive(Default, Clone)]
pub struct Overrides {
    pub site: Option<String>,
    pub node: Option<String>,
    pub broker: Option<String>,
    pub heartbeat_interval_s: Option<u64>,
    pub metrics_interval_s: Option<u64>,
    pub keepalive_s: Option<u64>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub signing_key: Option<String>,
}

impl PartialConfig {
    /// Parses a config file's content; `origin` names it in errors.
    pub fn from_toml_str(s: &str, origin: &str) -> Result<Self, ConfigError> {
        toml::from_str(s).map_err(|source| ConfigError::parse(origin, s, source))
    }

    /// Reads and parses the config file at `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_toml_str(&text, &format!("config file {}", path.display()))
    }

    /// Lays `o` over the file's values.
    pub fn apply(&mut self, o: Overrides) -> Result<(), ConfigError> {
        if let Some(site) = o.site {
            self.site = Some(SiteId::new(site).map_err(|source| ConfigError::InvalidId {
                origin: "--site / SITEWATCH_SITE".to_owned(),
                source,
            })?);
        }
        if let Some(node) = o.node {
            self.node = Some(NodeId::new(node).map_err(|source| ConfigError::InvalidId {
                origin: "--node / SITEWATCH_NODE".to_owned(),
                source,
            })?);
        }
        if let Some(broker) = o.broker {
            self.broker = Some(
                broker
                    .parse()
                    .map_err(|source| ConfigError::InvalidBroker {
                        origin: "--broker / SITEWATCH_BROKER".to_owned(),
                        source,
                    })?,
            );
        }
        for (range, flag, new, old) in [
            (
                &HEARTBEAT,
                "--heartbeat-interval",
                o.heartbeat_interval_s,
                &mut self.heartbeat_interval_s,
            ),
            (
                &METRICS,
                "--metrics-interval",
                o.metrics_interval_s,
                &mut self.metrics_interval_s,
            ),
            (
                &KEEPALIVE,
                "--keepalive",
                o.keepalive_s,
                &mut self.keepalive_s,
            ),
        ] {
            if let Some(v) = new {
                let v = i64::try_from(v).unwrap_or(i64::MAX);
                range.check(flag, Some(v))?;
                *old = Some(v);
            }
        }
        self.username = o.username.or(self.username.take());
        self.password = o.password.or(self.password.take());
        self.signing_key = o.signing_key.or(self.signing_key.take());
        Ok(())
    }

    /// Fills defaults, checks ranges and sections (outbox, TLS files, checks) and resolves
    /// the node id; `origin` names the source in errors.
    pub fn finish(self, origin: &str) -> Result<AgentConfig, ConfigError> {
        let site = self.site.ok_or_else(|| ConfigError::MissingSite {
            origin: origin.to_owned(),
        })?;
        let heartbeat_interval_s = HEARTBEAT.check(origin, self.heartbeat_interval_s)?;
        let metrics_interval_s = METRICS.check(origin, self.metrics_interval_s)?;
        let keepalive_s = KEEPALIVE.check(origin, self.keepalive_s)?;
        let reconnect_max_s = RECONNECT_MAX.check(origin, self.reconnect_max_s)?;
        let node = match self.node {
            Some(node) => node,
            None => node_from_hostname()?,
        };
        let signing_key = match self.signing_key {
            Some(hex) => Some(
                SigningKey::from_hex(&hex).map_err(|e| ConfigError::Invalid {
                    origin: origin.to_owned(),
                    key: "signing-key",
                    problem: e.to_string(),
                })?,
            ),
            None => None,
        };
        let config = AgentConfig {
            site,
            node: Some(node),
            broker: self.broker.unwrap_or_default(),
            topic_prefix: self.topic_prefix.unwrap_or_default(),
            heartbeat_interval_s,
            metrics_interval_s,
            keepalive_s,
            reconnect_max_s,
            username: self.username,
            password: self.password,
            signing_key,
            home_assistant: self.home_assistant,
            filesystems: self.filesystems.unwrap_or_default(),
            checks: self.checks.unwrap_or_default(),
            outbox: self.outbox.unwrap_or_default(),
            tls: self.tls.unwrap_or_default(),
            // Probes run when asked for, and to the gateway by default alongside a scanner.
            probes: match (self.probes, &self.scan) {
                (Some(probes), _) => Some(probes),
                (None, Some(_)) => Some(ProbesConfig::default()),
                (None, None) => None,
            },
            scan: self.scan.unwrap_or_default(),
        };
        validate::sections(origin, &config)?;
        Ok(config)
    }
}

impl TryFrom<PartialConfig> for AgentConfig {
    type Error = ConfigError;

    fn try_from(p: PartialConfig) -> Result<Self, ConfigError> {
        p.finish("agent config")
    }
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
