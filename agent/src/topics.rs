//! The MQTT names of one node: its client id and its topics under the configured prefix.

use sitewatch_proto::{NodeId, NodeTopic, Topic};

use crate::config::AgentConfig;

/// Client id and full topic names of this node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topics {
    /// `sw.{site}.{node}`: ids are validated, so it never holds `/ + # $` or spaces.
    pub client_id: String,
    pub status: String,
    pub info: String,
    pub heartbeat: String,
    pub metrics: String,
    pub scan: String,
    /// Where the hub publishes (retained) what it has stored.
    pub ack: String,
    /// The hub's `online` / `offline` (retained; `offline` is its will).
    pub hub_status: String,
}

impl Topics {
    pub fn new(config: &AgentConfig, node: &NodeId) -> Self {
        let t = |kind| Topic::node(&config.site, node, kind).format(&config.topic_prefix);
        Self {
            client_id: format!("sw.{}.{}", config.site, node),
            status: t(NodeTopic::Status),
            info: t(NodeTopic::Info),
            heartbeat: t(NodeTopic::Heartbeat),
            metrics: t(NodeTopic::Metrics),
            scan: t(NodeTopic::Scan),
            ack: t(NodeTopic::Ack),
            hub_status: Topic::HubStatus.format(&config.topic_prefix),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_follow_the_contract() {
        let mut c = AgentConfig::new("club-1".parse().unwrap());
        c.topic_prefix = sitewatch_proto::Prefix::new("acme/v1").unwrap();
        let t = Topics::new(&c, &"pi-gate".parse().unwrap());
        assert_eq!(t.client_id, "sw.club-1.pi-gate");
        assert_eq!(t.status, "acme/v1/club-1/pi-gate/status");
        assert_eq!(t.info, "acme/v1/club-1/pi-gate/info");
        assert_eq!(t.heartbeat, "acme/v1/club-1/pi-gate/heartbeat");
        assert_eq!(t.metrics, "acme/v1/club-1/pi-gate/metrics");
        assert_eq!(t.scan, "acme/v1/club-1/pi-gate/scan");
        assert_eq!(t.ack, "acme/v1/club-1/pi-gate/ack");
        assert_eq!(t.hub_status, "acme/v1/_hub/status");
    }
}
