//! Home Assistant MQTT discovery for the whole fleet, published by the hub (agents cannot
//! publish under `homeassistant/` on the embedded broker: their logins are bound to their
//! own topics).
//!
//! Ingest hands this module each node's `info` and, when the set of values in its metrics
//! changes, the new [`Shape`] (a cheap fingerprint decides; most messages cost one hash).
//! A task owns the [`Discovery`] state and publishes retained configs through the hub's
//! `Publisher`: one device config per node (`<prefix>/device/<object_id>/config`, Home
//! Assistant ≥ 2024.11) or, with `mode = "entity"`, one config per entity. Configs are
//! re-published when Home Assistant announces `online` on `<prefix>/status`, and emptied
//! when a node's credentials are revoked.

pub mod discovery;
pub mod entities;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use sitewatch_proto::{NodeId, SiteId};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub use discovery::{Discovery, Publish};
pub use entities::{Context, Shape};

use crate::ingest::Decoded;

/// Capacity of the channel from ingest to the discovery task. Events are rare (an `info`
/// per connect, a shape when entities change); when full, ingest forgets the fingerprint
/// and sends again with the node's next message.
const EVENT_QUEUE: usize = 1024;

/// Pending changes are published together at most this often, so a node's `info` and first
/// metrics (a second apart) give one config, not two.
const FLUSH_EVERY: Duration = Duration::from_secs(1);

/// How often the task looks for revoked credentials (the registry reloads every 2 s).
const REVOCATION_CHECK_EVERY: Duration = Duration::from_secs(2);

/// `[homeassistant]` of hub.toml.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Config {
    /// Publish discovery configs for every node, site and the hub.
    #[serde(default = "d_true")]
    pub enabled: bool,
    /// Home Assistant's discovery prefix (its MQTT integration's setting).
    #[serde(default = "d_prefix")]
    pub discovery_prefix: String,
    /// `device`: one config per node (HA ≥ 2024.11); `entity`: one per entity (older HA).
    #[serde(default)]
    pub mode: Mode,
    /// Which nodes: `all` (but those whose agent says `home-assistant = false`) or
    /// `opted-in` (only those whose agent says `home-assistant = true`).
    #[serde(default)]
    pub nodes: Nodes,
}

/// Which nodes are announced to Home Assistant; each agent may opt in or out in its config
/// (`home-assistant`, sent in its `info`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Nodes {
    /// Every node but those that opt out.
    #[default]
    All,
    /// Only the nodes that opt in.
    OptedIn,
}

impl Nodes {
    /// Whether a node whose agent said `choice` (`None`: nothing, or no info yet) is
    /// announced.
    pub fn admits(self, choice: Option<bool>) -> bool {
        match (self, choice) {
            (_, Some(choice)) => choice,
            (Nodes::All, None) => true,
            (Nodes::OptedIn, None) => false,
        }
    }
}

fn d_true() -> bool {
    true
}
fn d_prefix() -> String {
    "homeassistant".into()
}

impl Default for Config {
    fn default() -> Self {
        Config {
            enabled: true,
            discovery_prefix: d_prefix(),
            mode: Mode::Device,
            nodes: Nodes::All,
        }
    }
}

impl Config {
    pub fn validate(&self) -> Result<(), String> {
        let p = &self.discovery_prefix;
        if p.is_empty()
            || p.starts_with('/')
            || p.ends_with('/')
            || p.contains("//")
            || p.chars()
                .any(|c| matches!(c, '+' | '#' | '\0') || c.is_whitespace())
        {
            return Err(format!(
                "[homeassistant] discovery-prefix {p:?} is not a valid topic prefix: use \
                 Home Assistant's (\"homeassistant\" unless you changed it), without \
                 wildcards, spaces or a leading/trailing '/'"
            ));
        }
        Ok(())
    }

    /// The topic Home Assistant announces itself on (`online` after a start).
    pub fn status_topic(&self) -> String {
        format!("{}/status", self.discovery_prefix)
    }
}

/// Discovery mode.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    #[default]
    Device,
    Entity,
}

/// What ingest tells the discovery task.
#[derive(Debug)]
pub enum Event {
    Info(SiteId, NodeId, Box<sitewatch_proto::Info>),
    Shape(SiteId, NodeId, Shape),
    /// Home Assistant's birth message (`online` on its status topic).
    Birth,
}

/// Ingest's end: never waits, sends only what changes discovery.
#[derive(Debug)]
pub struct Feed {
    tx: mpsc::Sender<Event>,
    status_topic: String,
    fingerprints: HashMap<(SiteId, NodeId), u64>,
}

impl Feed {
    /// Takes Home Assistant's status messages; true when `topic` was one.
    pub fn birth(&self, topic: &str, payload: &[u8]) -> bool {
        if topic != self.status_topic {
            return false;
        }
        if payload.trim_ascii() == b"online" {
            self.send(Event::Birth);
        }
        true
    }

    /// Looks at a decoded agent message (retained replays included).
    pub fn observe(&mut self, site: &SiteId, node: &NodeId, decoded: &Decoded) {
        match decoded {
            Decoded::Info(info, _) => {
                self.send(Event::Info(site.clone(), node.clone(), info.clone()));
            }
            Decoded::Metrics(m, _) => {
                let fp = Shape::fingerprint(m);
                let id = (site.clone(), node.clone());
                if self.fingerprints.get(&id) == Some(&fp) {
                    return;
                }
                if self.send(Event::Shape(site.clone(), node.clone(), Shape::of(m))) {
                    self.fingerprints.insert(id, fp);
                }
            }
            _ => {}
        }
    }

    fn send(&self, event: Event) -> bool {
        match self.tx.try_send(event) {
            Ok(()) => true,
            Err(_) => {
                tracing::debug!(
                    "Home Assistant discovery queue full; retrying with the next message"
                );
                false
            }
        }
    }
}

/// Starts the discovery task; returns ingest's end, or `None` when disabled.
pub fn spawn(
    config: &Config,
    ctx: Context,
    publisher: crate::mqtt::Publisher,
    registry: Arc<crate::nodes::Registry>,
    tracker: &tokio_util::task::TaskTracker,
    stop: CancellationToken,
) -> Option<Feed> {
    if !config.enabled {
        return None;
    }
    let (tx, rx) = mpsc::channel(EVENT_QUEUE);
    let discovery =
        Discovery::new(ctx, config.mode, config.discovery_prefix.clone()).with_nodes(config.nodes);
    tracker.spawn(run(discovery, rx, publisher, registry, stop));
    Some(Feed {
        tx,
        status_topic: config.status_topic(),
        fingerprints: HashMap::new(),
    })
}

async fn run(
    mut discovery: Discovery,
    mut rx: mpsc::Receiver<Event>,
    publisher: crate::mqtt::Publisher,
    registry: Arc<crate::nodes::Registry>,
    stop: CancellationToken,
) {
    let mut flush = tokio::time::interval(FLUSH_EVERY);
    let mut check = tokio::time::interval(REVOCATION_CHECK_EVERY);
    let mut credentials = registry.current();
    let send = |batch: Vec<Publish>| {
        for p in batch {
            tracing::debug!(topic = %p.topic, removed = p.payload.is_empty(), "Home Assistant discovery");
            publisher.publish_to(&p.topic, true, p.payload);
        }
    };
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            event = rx.recv() => match event {
                None => break,
                Some(Event::Info(site, node, info)) => discovery.info(site, node, info),
                Some(Event::Shape(site, node, shape)) => discovery.shape(site, node, shape),
                Some(Event::Birth) => {
                    let all = discovery.rebirth();
                    tracing::info!(configs = all.len(), "Home Assistant started: re-publishing discovery configs");
                    send(all);
                }
            },
            _ = flush.tick() => send(discovery.flush()),
            _ = check.tick() => {
                let now = registry.current();
                if Arc::ptr_eq(&now, &credentials) {
                    continue;
                }
                let nodes: Vec<(SiteId, NodeId)> = discovery.nodes().cloned().collect();
                for (site, node) in nodes {
                    let had = credentials.has_node(site.as_str(), node.as_str());
                    let has = now.has_node(site.as_str(), node.as_str());
                    if had && !has {
                        tracing::info!(%site, %node, "credentials revoked: removing the node from Home Assistant");
                        send(discovery.revoke(&site, &node));
                    }
                }
                // Nodes revoked earlier and added again.
                for (site, node) in now.node_ids() {
                    if !credentials.has_node(site.as_str(), node.as_str()) {
                        discovery.credentialed(&site, &node);
                    }
                }
                credentials = now;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_defaults_and_validation() {
        let c: Config = toml::from_str("").unwrap();
        assert!(c.enabled);
        assert_eq!(c.discovery_prefix, "homeassistant");
        assert_eq!(c.mode, Mode::Device);
        let c: Config = toml::from_str("mode = \"entity\"\ndiscovery-prefix = \"ha\"").unwrap();
        assert_eq!(c.mode, Mode::Entity);
        assert_eq!(c.status_topic(), "ha/status");
        assert!(c.validate().is_ok());
        for bad in ["", "ha/#", "/ha", "ha/", "h a"] {
            let c = Config {
                discovery_prefix: bad.into(),
                ..Config::default()
            };
            assert!(c.validate().is_err(), "{bad:?}");
        }
        assert!(toml::from_str::<Config>("mode = \"both\"").is_err());
        assert!(toml::from_str::<Config>("prefix = \"x\"").is_err());
    }
}
