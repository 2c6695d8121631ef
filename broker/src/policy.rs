//! What a client may do with topics: the rules the guard enforces for agents (bound to one
//! node) and for integrations' accounts (read everything, never write in the namespace).
//!
//! rumqttd has no ACLs, so the guard applies these itself, at CONNECT (client id and last
//! will) and on every PUBLISH and SUBSCRIBE it relays. Pure: built from the topic prefix and
//! the binding the authenticator returned; unit- and property-tested.

use sitewatch_proto::{NodeId, NodeTopic, Prefix, SiteId, Topic};

/// Client ids starting with this belong to agents: `sw.{site}.{node}` (what
/// `sitewatch-agent` uses, see `agent/src/topics.rs`). When an authenticator is configured,
/// only the client bound to that node may use its id, so nobody else can take over (and
/// thereby disconnect) an agent's session.
pub const AGENT_CLIENT_ID_PREFIX: &str = "sw.";

/// The node topics an agent publishes. `ack` and `alerts` are the hub's: an agent that could
/// publish them could fake its own alert list for third-party readers. A fixed list also
/// bounds how many topics (and so rumqttd logs and retained messages) one node can create.
pub const AGENT_PUBLISHES: [NodeTopic; 5] = [
    NodeTopic::Status,
    NodeTopic::Info,
    NodeTopic::Heartbeat,
    NodeTopic::Metrics,
    NodeTopic::Scan,
];

/// The node topics an agent may subscribe to: the hub's acknowledgements and alert list for
/// that node, each as an exact topic (no wildcards). It may also subscribe to the hub's
/// `_hub/status`, which is the same for every node.
pub const AGENT_SUBSCRIBES: [NodeTopic; 2] = [NodeTopic::Ack, NodeTopic::Alerts];

/// The node an authenticated client speaks for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NodeBinding {
    /// The node's site.
    pub site: SiteId,
    /// The node.
    pub node: NodeId,
}

impl NodeBinding {
    /// A binding to `node` of `site`.
    pub fn new(site: SiteId, node: NodeId) -> Self {
        NodeBinding { site, node }
    }

    /// The MQTT client id this node must connect with: `sw.{site}.{node}`.
    pub fn client_id(&self) -> String {
        format!("{AGENT_CLIENT_ID_PREFIX}{}.{}", self.site, self.node)
    }
}

impl std::fmt::Display for NodeBinding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.site, self.node)
    }
}

/// The topic rules of one bound client, with every topic name built once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodePolicy {
    client_id: String,
    status: String,
    publish: Vec<String>,
    subscribe: Vec<String>,
}

impl NodePolicy {
    /// The rules for `binding` under `prefix`.
    pub fn new(prefix: &Prefix, binding: &NodeBinding) -> Self {
        let topic = |kind| Topic::node(&binding.site, &binding.node, kind).format(prefix);
        NodePolicy {
            client_id: binding.client_id(),
            status: topic(NodeTopic::Status),
            publish: AGENT_PUBLISHES.into_iter().map(topic).collect(),
            subscribe: AGENT_SUBSCRIBES
                .into_iter()
                .map(topic)
                .chain([Topic::HubStatus.format(prefix)])
                .collect(),
        }
    }

    /// Whether the client may connect with this client id (only its own).
    pub fn allows_client_id(&self, client_id: &str) -> bool {
        client_id == self.client_id
    }

    /// The client id the node must use, for error messages.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// Whether the client may register this last will topic (only its own status topic:
    /// the `offline` that tells everyone it died).
    pub fn allows_will(&self, topic: &str) -> bool {
        topic == self.status
    }

    /// The node's status topic, for error messages.
    pub fn status_topic(&self) -> &str {
        &self.status
    }

    /// Whether the client may publish to `topic` (one of [`AGENT_PUBLISHES`] of its node).
    pub fn allows_publish(&self, topic: &str) -> bool {
        self.publish.iter().any(|t| t == topic)
    }

    /// Whether the client may subscribe to `filter` (one of [`AGENT_SUBSCRIBES`] of its
    /// node, or the hub's status, exactly).
    pub fn allows_subscribe(&self, filter: &str) -> bool {
        self.subscribe.iter().any(|t| t == filter)
    }
}

/// An integration's account ([`Access::Client`](crate::Access::Client) when clients
/// authenticate: Home Assistant, Node-RED, scripts): it reads any topic, and publishes
/// anywhere but under the topic prefix, where the agents' and the hub's topics live, so a
/// leaked integration password cannot fake a node's `status`, its alerts or its acks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReaderPolicy {
    /// The prefix followed by `/`.
    namespace: String,
}

impl ReaderPolicy {
    /// The rules under `prefix`.
    pub fn new(prefix: &Prefix) -> Self {
        ReaderPolicy {
            namespace: format!("{}/", prefix.as_str()),
        }
    }

    /// Whether the client may publish to `topic` (or register a will on it).
    pub fn allows_publish(&self, topic: &str) -> bool {
        !topic.starts_with(&self.namespace) && topic != self.prefix()
    }

    /// The prefix, for error messages.
    pub fn prefix(&self) -> &str {
        &self.namespace[..self.namespace.len() - 1]
    }
}

/// The topic rules of one relayed client, if it has any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TopicPolicy {
    /// An agent: its node's topics only.
    Node(NodePolicy),
    /// An integration: reads everything, writes outside the namespace.
    Reader(ReaderPolicy),
}

impl TopicPolicy {
    /// Whether the client may publish to `topic`.
    pub fn allows_publish(&self, topic: &str) -> bool {
        match self {
            TopicPolicy::Node(p) => p.allows_publish(topic),
            TopicPolicy::Reader(p) => p.allows_publish(topic),
        }
    }

    /// Whether the client may subscribe to `filter`.
    pub fn allows_subscribe(&self, filter: &str) -> bool {
        match self {
            TopicPolicy::Node(p) => p.allows_subscribe(filter),
            TopicPolicy::Reader(_) => true,
        }
    }

    /// Whether SUBSCRIBE packets need to be looked into at all.
    pub fn checks_subscribe(&self) -> bool {
        matches!(self, TopicPolicy::Node(_))
    }
}

/// Whether a client that is *not* bound to a node may use `client_id` when an authenticator
/// is configured: agent ids (`sw.…`) are reserved for the agents bound to them.
pub fn unbound_may_use_client_id(client_id: &str) -> bool {
    !client_id.starts_with(AGENT_CLIENT_ID_PREFIX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn binding(site: &str, node: &str) -> NodeBinding {
        NodeBinding::new(SiteId::new(site).unwrap(), NodeId::new(node).unwrap())
    }

    fn policy(site: &str, node: &str) -> NodePolicy {
        NodePolicy::new(&Prefix::default(), &binding(site, node))
    }

    #[test]
    fn every_node_topic_has_an_owner() {
        // A new NodeTopic must be classified here: published by agents, or by the hub.
        for kind in NodeTopic::ALL {
            let agent = AGENT_PUBLISHES.contains(&kind);
            let hub = AGENT_SUBSCRIBES.contains(&kind);
            assert!(
                agent != hub,
                "{kind:?} must be either the agent's or the hub's"
            );
        }
    }

    #[test]
    fn an_agent_uses_its_own_topics_only() {
        let p = policy("club-a", "pi-1");
        for kind in ["status", "info", "heartbeat", "metrics", "scan"] {
            assert!(p.allows_publish(&format!("sitewatch/v1/club-a/pi-1/{kind}")));
        }
        for topic in [
            "sitewatch/v1/club-a/pi-1/ack",
            "sitewatch/v1/club-a/pi-1/alerts",
            "sitewatch/v1/club-a/pi-1/metrics/x",
            "sitewatch/v1/club-a/pi-2/metrics",
            "sitewatch/v1/club-b/pi-1/metrics",
            "sitewatch/v1/club-a/status",
            "sitewatch/v1/_hub/status",
            "other/v1/club-a/pi-1/metrics",
            "homeassistant/sensor/x/config",
        ] {
            assert!(!p.allows_publish(topic), "{topic}");
        }
        assert!(p.allows_subscribe("sitewatch/v1/club-a/pi-1/ack"));
        assert!(p.allows_subscribe("sitewatch/v1/club-a/pi-1/alerts"));
        assert!(p.allows_subscribe("sitewatch/v1/_hub/status"));
        for filter in [
            "sitewatch/v1/_hub/#",
            "sitewatch/v1/_hub/storage",
            "sitewatch/v1/#",
            "sitewatch/v1/club-a/pi-1/#",
            "sitewatch/v1/club-a/+/ack",
            "sitewatch/v1/club-a/pi-2/ack",
            "#",
        ] {
            assert!(!p.allows_subscribe(filter), "{filter}");
        }
        assert!(p.allows_will("sitewatch/v1/club-a/pi-1/status"));
        assert!(!p.allows_will("sitewatch/v1/club-a/pi-2/status"));
        assert!(p.allows_client_id("sw.club-a.pi-1"));
        assert!(!p.allows_client_id("sw.club-a.pi-2"));
    }

    #[test]
    fn the_prefix_is_configurable() {
        let p = NodePolicy::new(&Prefix::new("acme/t").unwrap(), &binding("s", "n"));
        assert!(p.allows_publish("acme/t/s/n/metrics"));
        assert!(!p.allows_publish("sitewatch/v1/s/n/metrics"));
        assert_eq!(p.status_topic(), "acme/t/s/n/status");
    }

    #[test]
    fn an_integration_reads_everything_and_writes_outside_the_namespace() {
        let p = TopicPolicy::Reader(ReaderPolicy::new(&Prefix::default()));
        for topic in [
            "sitewatch/v1/club-a/pi-1/status",
            "sitewatch/v1/club-a/pi-1/metrics",
            "sitewatch/v1/club-a/pi-1/alerts",
            "sitewatch/v1/club-a/status",
            "sitewatch/v1/_hub/status",
            "sitewatch/v1",
        ] {
            assert!(!p.allows_publish(topic), "{topic}");
        }
        for topic in [
            "homeassistant/status",
            "homeassistant/sensor/x/config",
            "sitewatch/v2/x",
            "sitewatch/v10/x",
            "node-red/out",
        ] {
            assert!(p.allows_publish(topic), "{topic}");
        }
        for filter in ["#", "sitewatch/v1/#", "sitewatch/v1/+/+/metrics"] {
            assert!(p.allows_subscribe(filter), "{filter}");
        }
        assert!(!p.checks_subscribe());
        let custom = ReaderPolicy::new(&Prefix::new("acme/t").unwrap());
        assert!(!custom.allows_publish("acme/t/s/n/status"));
        assert!(custom.allows_publish("sitewatch/v1/s/n/status"));
    }

    #[test]
    fn agent_client_ids_are_reserved() {
        assert!(!unbound_may_use_client_id("sw.club-a.pi-1"));
        assert!(unbound_may_use_client_id("sw-hub.1234"));
        assert!(unbound_may_use_client_id("node-red"));
    }

    proptest! {
        /// Two different nodes never share a topic they may publish or subscribe to (but the
        /// hub's status, which they all read), nor a client id: one node cannot speak for
        /// another.
        #[test]
        fn nodes_never_share_a_topic(
            a in ("[a-z0-9][a-z0-9_-]{0,8}", "[a-z0-9][a-z0-9_-]{0,8}"),
            b in ("[a-z0-9][a-z0-9_-]{0,8}", "[a-z0-9][a-z0-9_-]{0,8}"),
        ) {
            prop_assume!(a != b);
            let (pa, pb) = (policy(&a.0, &a.1), policy(&b.0, &b.1));
            let hub_status = Topic::HubStatus.format(&Prefix::default());
            for topic in pa.publish.iter().chain(&pa.subscribe).filter(|t| **t != hub_status) {
                prop_assert!(!pb.allows_publish(topic) && !pb.allows_subscribe(topic), "{}", topic);
                prop_assert!(!pb.allows_will(topic));
            }
            prop_assert!(!pb.allows_client_id(pa.client_id()));
        }
    }
}
