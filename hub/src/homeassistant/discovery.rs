//! What to publish, and when: the fleet as the discovery task knows it (each node's info and
//! metrics shape, the sites) and the retained configs already published. Pure: callers
//! feed it events and publish the `(topic, payload)` pairs it returns.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use serde_json::{Map, Value};
use sitewatch_proto::{Info, NodeId, SiteId};

use super::entities::{self, Component, Context, Shape};
use super::{Mode, Nodes};

/// One retained publish; an empty payload removes what the topic had discovered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publish {
    pub topic: String,
    pub payload: String,
}

#[derive(Debug, Default)]
struct NodeState {
    info: Option<Box<Info>>,
    shape: Option<Shape>,
}

/// The discovery state of the whole fleet.
#[derive(Debug)]
pub struct Discovery {
    ctx: Context,
    mode: Mode,
    discovery_prefix: String,
    nodes: BTreeMap<(SiteId, NodeId), NodeState>,
    /// Nodes whose credentials were revoked: not re-announced until they get new ones.
    revoked: HashSet<(SiteId, NodeId)>,
    /// Topic → payload of every config published (retained on the broker).
    published: BTreeMap<String, String>,
    /// Per device topic (device mode): keys and platforms of components it ever had, so
    /// one that disappears is sent as `{"p": …}` alone, Home Assistant's removal marker.
    known_components: BTreeMap<String, BTreeMap<String, &'static str>>,
    /// Per node: the entity topics it had (entity mode), to empty the ones that go.
    entity_topics: BTreeMap<(SiteId, NodeId), BTreeSet<String>>,
    dirty: BTreeSet<(SiteId, NodeId)>,
    hub_done: bool,
    /// Which nodes are announced (agents opt in or out in their `info`).
    policy: Nodes,
}

impl Discovery {
    pub fn new(ctx: Context, mode: Mode, discovery_prefix: String) -> Self {
        Discovery {
            ctx,
            mode,
            discovery_prefix,
            nodes: BTreeMap::new(),
            revoked: HashSet::new(),
            published: BTreeMap::new(),
            known_components: BTreeMap::new(),
            entity_topics: BTreeMap::new(),
            dirty: BTreeSet::new(),
            hub_done: false,
            policy: Nodes::All,
        }
    }

    /// Announces only the nodes `policy` admits.
    pub fn with_nodes(mut self, policy: Nodes) -> Self {
        self.policy = policy;
        self
    }

    /// The nodes announced (or about to be).
    pub fn nodes(&self) -> impl Iterator<Item = &(SiteId, NodeId)> {
        self.nodes.keys()
    }

    pub fn info(&mut self, site: SiteId, node: NodeId, info: Box<Info>) {
        let id = (site, node);
        self.nodes.entry(id.clone()).or_default().info = Some(info);
        self.dirty.insert(id);
    }

    pub fn shape(&mut self, site: SiteId, node: NodeId, shape: Shape) {
        let id = (site, node);
        self.nodes.entry(id.clone()).or_default().shape = Some(shape);
        self.dirty.insert(id);
    }

    /// The configs that changed since the last flush (new nodes, sites, entities).
    pub fn flush(&mut self) -> Vec<Publish> {
        let mut out = Vec::new();
        if !self.hub_done {
            self.hub_done = true;
            let (dev, comps) = entities::hub_components(&self.ctx);
            let id = self.ctx.hub_id.clone();
            self.device(&id, dev, comps, None, &mut out);
        }
        let dirty = std::mem::take(&mut self.dirty);
        let mut sites = BTreeSet::new();
        for id in dirty {
            if self.revoked.contains(&id) {
                continue;
            }
            let Some(state) = self.nodes.get(&id) else {
                continue;
            };
            let choice = state.info.as_ref().and_then(|i| i.home_assistant);
            if !self.policy.admits(choice) {
                // Opted out (or not in): withdraw what was announced before.
                out.extend(self.withdraw(&id));
                continue;
            }
            let (site, node) = &id;
            sites.insert(site.clone());
            let dev = entities::node_device(&self.ctx, site, node, state.info.as_deref());
            let comps = entities::node_components(&self.ctx, site, node, state.shape.as_ref());
            let obj = entities::node_object_id(site, node);
            self.device(&obj, dev, comps, Some(&id), &mut out);
        }
        for site in sites {
            let (dev, comps) = entities::site_components(&self.ctx, &site);
            self.device(&entities::site_object_id(&site), dev, comps, None, &mut out);
        }
        out
    }

    /// Home Assistant (re)started: every config again, whether it changed or not.
    pub fn rebirth(&mut self) -> Vec<Publish> {
        self.published
            .iter()
            .filter(|(_, payload)| !payload.is_empty())
            .map(|(topic, payload)| Publish {
                topic: topic.clone(),
                payload: payload.clone(),
            })
            .collect()
    }

    /// A node lost its credentials: empty every config it had and forget it.
    pub fn revoke(&mut self, site: &SiteId, node: &NodeId) -> Vec<Publish> {
        let id = (site.clone(), node.clone());
        self.nodes.remove(&id);
        self.dirty.remove(&id);
        self.revoked.insert(id.clone());
        self.withdraw(&id)
    }

    /// Empties every config a node had announced (nothing when it had none).
    fn withdraw(&mut self, id: &(SiteId, NodeId)) -> Vec<Publish> {
        let (site, node) = id;
        let topics: Vec<String> = match self.mode {
            Mode::Device => {
                let t = self.device_topic(&entities::node_object_id(site, node));
                self.known_components.remove(&t);
                vec![t]
            }
            Mode::Entity => self
                .entity_topics
                .remove(id)
                .into_iter()
                .flatten()
                .collect(),
        };
        let announced: Vec<String> = topics
            .into_iter()
            .filter(|t| self.published.contains_key(t))
            .collect();
        announced
            .into_iter()
            .filter_map(|t| self.set(t, String::new()))
            .collect()
    }

    /// A node has credentials again (re-added): announce it at its next message.
    pub fn credentialed(&mut self, site: &SiteId, node: &NodeId) {
        self.revoked.remove(&(site.clone(), node.clone()));
    }

    fn device_topic(&self, object_id: &str) -> String {
        format!("{}/device/{object_id}/config", self.discovery_prefix)
    }

    /// Records `payload` for `topic`; returns the publish when it differs from the last.
    fn set(&mut self, topic: String, payload: String) -> Option<Publish> {
        if self.published.get(&topic) == Some(&payload) {
            return None;
        }
        self.published.insert(topic.clone(), payload.clone());
        Some(Publish { topic, payload })
    }

    fn device(
        &mut self,
        object_id: &str,
        dev: Value,
        comps: Vec<Component>,
        node: Option<&(SiteId, NodeId)>,
        out: &mut Vec<Publish>,
    ) {
        match self.mode {
            Mode::Device => {
                let topic = self.device_topic(object_id);
                let known = self.known_components.entry(topic.clone()).or_default();
                let mut cmps = Map::new();
                for c in &comps {
                    known.insert(c.key.clone(), c.platform);
                }
                let present: BTreeSet<&str> = comps.iter().map(|c| c.key.as_str()).collect();
                for (key, platform) in known.iter() {
                    if !present.contains(key.as_str()) {
                        let mut gone = Map::new();
                        gone.insert("p".into(), (*platform).into());
                        cmps.insert(key.clone(), Value::Object(gone));
                    }
                }
                for c in comps {
                    let mut config = Map::new();
                    config.insert("p".into(), c.platform.into());
                    config.extend(c.config);
                    cmps.insert(c.key, Value::Object(config));
                }
                let mut doc = Map::new();
                doc.insert("dev".into(), dev);
                doc.insert("o".into(), self.ctx.origin());
                doc.insert("cmps".into(), Value::Object(cmps));
                let payload = Value::Object(doc).to_string();
                out.extend(self.set(topic, payload));
            }
            Mode::Entity => {
                let mut topics = BTreeSet::new();
                for c in comps {
                    let topic = format!(
                        "{}/{}/{object_id}/{}/config",
                        self.discovery_prefix, c.platform, c.key
                    );
                    let mut config = c.config;
                    config.insert("device".into(), dev.clone());
                    config.insert("origin".into(), self.ctx.origin());
                    topics.insert(topic.clone());
                    out.extend(self.set(topic, Value::Object(config).to_string()));
                }
                if let Some(id) = node {
                    let before = self.entity_topics.insert(id.clone(), topics.clone());
                    for gone in before.unwrap_or_default().difference(&topics) {
                        out.extend(self.set(gone.clone(), String::new()));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sitewatch_proto::{Metrics, Prefix};

    fn discovery(mode: Mode) -> Discovery {
        Discovery::new(
            Context {
                prefix: Prefix::new("sitewatch/v1").unwrap(),
                hub_id: "sitewatch_hub_box".into(),
                hub_version: "0.1.0".into(),
            },
            mode,
            "homeassistant".into(),
        )
    }

    fn shape(mounts: &[&str]) -> Shape {
        let fs: Vec<String> = mounts
            .iter()
            .map(|m| {
                format!(
                    r#"{{"mount":"{m}","device":"d","fs_type":"ext4","total_bytes":1,"used_bytes":1,"available_bytes":0,"used_pct":1.0}}"#
                )
            })
            .collect();
        let m: Metrics = serde_json::from_str(&format!(
            r#"{{"ts":1,"session":"s","seq":1,"filesystems":[{}]}}"#,
            fs.join(",")
        ))
        .unwrap();
        Shape::of(&m)
    }

    fn ids() -> (SiteId, NodeId) {
        (SiteId::new("club-1").unwrap(), NodeId::new("pi").unwrap())
    }

    fn doc(p: &Publish) -> Value {
        serde_json::from_str(&p.payload).unwrap()
    }

    #[test]
    fn device_mode_publishes_hub_node_and_site_once_until_something_changes() {
        let mut d = discovery(Mode::Device);
        let (site, node) = ids();
        d.shape(site.clone(), node.clone(), shape(&["/", "/data"]));
        let first = d.flush();
        let topics: Vec<&str> = first.iter().map(|p| p.topic.as_str()).collect();
        assert_eq!(
            topics,
            [
                "homeassistant/device/sitewatch_hub_box/config",
                "homeassistant/device/sitewatch_club-1_pi/config",
                "homeassistant/device/sitewatch_site_club-1/config",
            ]
        );
        let node_doc = doc(&first[1]);
        assert_eq!(node_doc["cmps"]["fs_data_used"]["p"], "sensor");
        assert_eq!(node_doc["o"]["name"], "sitewatch");
        // Same shape again: nothing to publish.
        d.shape(site.clone(), node.clone(), shape(&["/", "/data"]));
        assert!(d.flush().is_empty());
        // Home Assistant restarted: all three again.
        assert_eq!(d.rebirth().len(), 3);
        // /data unmounted: the component is sent as a bare platform, HA's removal marker.
        d.shape(site.clone(), node.clone(), shape(&["/"]));
        let changed = d.flush();
        assert_eq!(changed.len(), 1);
        let gone = &doc(&changed[0])["cmps"]["fs_data_used"];
        assert_eq!(gone, &serde_json::json!({"p": "sensor"}));
    }

    #[test]
    fn revocation_empties_the_config_and_keeps_the_node_out() {
        let mut d = discovery(Mode::Device);
        let (site, node) = ids();
        d.shape(site.clone(), node.clone(), shape(&["/"]));
        d.flush();
        let removed = d.revoke(&site, &node);
        assert_eq!(
            removed,
            [Publish {
                topic: "homeassistant/device/sitewatch_club-1_pi/config".into(),
                payload: String::new()
            }]
        );
        // Still sending (unsigned allowed): not announced again.
        d.shape(site.clone(), node.clone(), shape(&["/"]));
        assert!(d.flush().is_empty());
        assert_eq!(d.rebirth().len(), 2, "hub and site only");
        d.credentialed(&site, &node);
        d.shape(site.clone(), node.clone(), shape(&["/"]));
        assert_eq!(d.flush().len(), 1);
    }

    #[test]
    fn entity_mode_publishes_one_config_per_entity_and_empties_the_ones_that_go() {
        let mut d = discovery(Mode::Entity);
        let (site, node) = ids();
        d.shape(site.clone(), node.clone(), shape(&["/", "/data"]));
        let first = d.flush();
        let fs = first
            .iter()
            .find(|p| p.topic == "homeassistant/sensor/sitewatch_club-1_pi/fs_data_used/config")
            .expect("per-entity topic");
        let config = doc(fs);
        assert_eq!(config["device"]["identifiers"][0], "sitewatch_club-1_pi");
        assert_eq!(config["origin"]["name"], "sitewatch");
        assert!(
            first.iter().any(|p| p.topic
                == "homeassistant/binary_sensor/sitewatch_club-1_pi/connectivity/config")
        );
        d.shape(site.clone(), node.clone(), shape(&["/"]));
        let changed = d.flush();
        assert_eq!(
            changed,
            [Publish {
                topic: fs.topic.clone(),
                payload: String::new()
            }]
        );
        let removed = d.revoke(&site, &node);
        assert!(removed.iter().all(|p| p.payload.is_empty()));
        assert!(removed.len() >= 4);
    }

    fn info(choice: Option<bool>) -> Box<Info> {
        Box::new(Info {
            hostname: "pi".into(),
            home_assistant: choice,
            ..Info::default()
        })
    }

    #[test]
    fn agents_opt_in_or_out() {
        let device = "homeassistant/device/sitewatch_club-1_pi/config";
        // The default (all nodes): an agent that opts out is withdrawn, and back when it
        // opts in again.
        let mut d = discovery(Mode::Device);
        let (site, node) = ids();
        d.info(site.clone(), node.clone(), info(None));
        assert!(d.flush().iter().any(|p| p.topic == device));
        d.info(site.clone(), node.clone(), info(Some(false)));
        assert_eq!(
            d.flush(),
            [Publish {
                topic: device.into(),
                payload: String::new()
            }]
        );
        d.info(site.clone(), node.clone(), info(Some(true)));
        assert!(
            d.flush()
                .iter()
                .any(|p| p.topic == device && !p.payload.is_empty())
        );
        // `opted-in`: only agents that say so; nothing to withdraw for the others.
        let mut d = discovery(Mode::Device).with_nodes(Nodes::OptedIn);
        d.info(site.clone(), node.clone(), info(None));
        d.shape(site.clone(), node.clone(), shape(&["/"]));
        assert!(d.flush().iter().all(|p| p.topic != device));
        d.info(site.clone(), node.clone(), info(Some(true)));
        assert!(d.flush().iter().any(|p| p.topic == device));
    }
}
