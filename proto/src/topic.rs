//! Topic names of the v1 contract: building and parsing.
//!
//! Every topic is `{prefix}/{site}/{node}/{kind}`, `{prefix}/{site}/status` or
//! `{prefix}/_hub/status`. The prefix defaults to `sitewatch/v1`. `_hub` can never collide
//! with a site because site ids cannot start with `_`.

use std::fmt;

use crate::id::{IdError, NodeId, SiteId};

/// Default topic prefix.
pub const DEFAULT_PREFIX: &str = "sitewatch/v1";

/// Topic level reserved for the hub's own topics.
pub const HUB_LEVEL: &str = "_hub";

/// Why a topic or prefix is not part of the contract.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopicError {
    #[error("topic {0:?} does not start with the prefix {1:?}")]
    OutsidePrefix(String, String),
    #[error("topic {0:?} has an unknown shape; expected {{prefix}}/{{site}}/{{node}}/{{kind}}")]
    Shape(String),
    #[error("topic {topic:?} has an unknown kind {kind:?}")]
    UnknownKind { topic: String, kind: String },
    #[error("topic {topic:?}: {source}")]
    Id {
        topic: String,
        #[source]
        source: IdError,
    },
    #[error(
        "topic prefix {0:?} is invalid: use non-empty levels separated by '/', \
         without '+', '#', spaces, a leading '$' or '/', or a trailing '/'"
    )]
    BadPrefix(String),
}

/// A validated topic prefix such as `sitewatch/v1`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Prefix(String);

impl Prefix {
    pub fn new(s: impl Into<String>) -> Result<Self, TopicError> {
        let s = s.into();
        let bad = s.is_empty()
            || s.starts_with('$')
            || s.split('/').any(|level| level.is_empty())
            || s.contains(['+', '#', ' ', '\0'])
            || s.chars().any(char::is_control);
        if bad {
            return Err(TopicError::BadPrefix(s));
        }
        Ok(Self(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Subscription filter matching every topic of the contract: `{prefix}/#`.
    pub fn filter_all(&self) -> String {
        format!("{}/#", self.0)
    }
}

impl Default for Prefix {
    fn default() -> Self {
        Self(DEFAULT_PREFIX.to_owned())
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The per-node topics, by their last level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NodeTopic {
    /// Retained `online`/`offline`; the agent's last will is `offline`.
    Status,
    /// Retained JSON description of the node, re-published on every connect.
    Info,
    /// JSON liveness beacon.
    Heartbeat,
    /// JSON metrics sample.
    Metrics,
    /// JSON LAN scan result.
    Scan,
    /// Retained JSON, published by the hub: highest seq durably stored, per session.
    Ack,
    /// Retained JSON list of firing alerts, published by the hub.
    Alerts,
}

impl NodeTopic {
    pub const ALL: [NodeTopic; 7] = [
        NodeTopic::Status,
        NodeTopic::Info,
        NodeTopic::Heartbeat,
        NodeTopic::Metrics,
        NodeTopic::Scan,
        NodeTopic::Ack,
        NodeTopic::Alerts,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            NodeTopic::Status => "status",
            NodeTopic::Info => "info",
            NodeTopic::Heartbeat => "heartbeat",
            NodeTopic::Metrics => "metrics",
            NodeTopic::Scan => "scan",
            NodeTopic::Ack => "ack",
            NodeTopic::Alerts => "alerts",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Whether messages on this topic are published with the retain flag.
    pub fn retained(self) -> bool {
        matches!(
            self,
            NodeTopic::Status | NodeTopic::Info | NodeTopic::Ack | NodeTopic::Alerts
        )
    }
}

/// A topic of the contract.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Topic {
    Node {
        site: SiteId,
        node: NodeId,
        kind: NodeTopic,
    },
    /// Retained site rollup `online`/`degraded`/`offline`, published by the hub.
    SiteStatus { site: SiteId },
    /// Retained hub availability (the hub's last will is `offline`).
    HubStatus,
    /// Retained JSON health of the hub's database (`ok`, `disk_full`, `locked`, `corrupt`,
    /// `error`), published when it changes.
    HubStorage,
}

impl Topic {
    pub fn node(site: &SiteId, node: &NodeId, kind: NodeTopic) -> Self {
        Topic::Node {
            site: site.clone(),
            node: node.clone(),
            kind,
        }
    }

    /// The full topic name under `prefix`.
    pub fn format(&self, prefix: &Prefix) -> String {
        match self {
            Topic::Node { site, node, kind } => {
                format!("{prefix}/{site}/{node}/{}", kind.as_str())
            }
            Topic::SiteStatus { site } => format!("{prefix}/{site}/status"),
            Topic::HubStatus => format!("{prefix}/{HUB_LEVEL}/status"),
            Topic::HubStorage => format!("{prefix}/{HUB_LEVEL}/storage"),
        }
    }

    /// Parses a topic received under `prefix`.
    pub fn parse(prefix: &Prefix, topic: &str) -> Result<Self, TopicError> {
        let rest = topic
            .strip_prefix(prefix.as_str())
            .and_then(|r| r.strip_prefix('/'))
            .ok_or_else(|| TopicError::OutsidePrefix(topic.to_owned(), prefix.to_string()))?;
        let levels: Vec<&str> = rest.split('/').collect();
        let id_err = |source| TopicError::Id {
            topic: topic.to_owned(),
            source,
        };
        match levels.as_slice() {
            [HUB_LEVEL, "status"] => Ok(Topic::HubStatus),
            [HUB_LEVEL, "storage"] => Ok(Topic::HubStorage),
            [site, "status"] => Ok(Topic::SiteStatus {
                site: SiteId::new(*site).map_err(id_err)?,
            }),
            [site, node, kind] => {
                let kind = NodeTopic::parse(kind).ok_or_else(|| TopicError::UnknownKind {
                    topic: topic.to_owned(),
                    kind: (*kind).to_owned(),
                })?;
                Ok(Topic::Node {
                    site: SiteId::new(*site).map_err(id_err)?,
                    node: NodeId::new(*node).map_err(id_err)?,
                    kind,
                })
            }
            _ => Err(TopicError::Shape(topic.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ids() -> (SiteId, NodeId) {
        (
            SiteId::new("club-1").unwrap(),
            NodeId::new("pi-gate").unwrap(),
        )
    }

    #[test]
    fn formats_every_topic_of_the_contract() {
        let p = Prefix::default();
        let (s, n) = ids();
        let got: Vec<String> = NodeTopic::ALL
            .iter()
            .map(|k| Topic::node(&s, &n, *k).format(&p))
            .collect();
        assert_eq!(
            got,
            [
                "sitewatch/v1/club-1/pi-gate/status",
                "sitewatch/v1/club-1/pi-gate/info",
                "sitewatch/v1/club-1/pi-gate/heartbeat",
                "sitewatch/v1/club-1/pi-gate/metrics",
                "sitewatch/v1/club-1/pi-gate/scan",
                "sitewatch/v1/club-1/pi-gate/ack",
                "sitewatch/v1/club-1/pi-gate/alerts",
            ]
        );
        assert_eq!(
            Topic::SiteStatus { site: s }.format(&p),
            "sitewatch/v1/club-1/status"
        );
        assert_eq!(Topic::HubStatus.format(&p), "sitewatch/v1/_hub/status");
        assert_eq!(Topic::HubStorage.format(&p), "sitewatch/v1/_hub/storage");
        assert_eq!(p.filter_all(), "sitewatch/v1/#");
    }

    #[test]
    fn rejects_foreign_and_malformed_topics() {
        let p = Prefix::default();
        for bad in [
            "other/v1/a/b/status",
            "sitewatch/v1",
            "sitewatch/v1/",
            "sitewatch/v1/a/b/c/d",
            "sitewatch/v1/a/b/unknown",
            "sitewatch/v1/A/b/status",
            "sitewatch/v1/a//status",
            "sitewatch/v1/_other/status",
            "sitewatch/v10/a/b/status",
        ] {
            assert!(Topic::parse(&p, bad).is_err(), "{bad} parsed");
        }
    }

    #[test]
    fn prefix_validation() {
        assert!(Prefix::new("acme/monitoring/v1").is_ok());
        for bad in ["", "/a", "a/", "a//b", "a/+", "a/#", "$SYS", "a b"] {
            assert!(Prefix::new(bad).is_err(), "{bad:?}");
        }
    }

    fn id_strategy() -> impl Strategy<Value = String> {
        "[a-z0-9][a-z0-9_-]{0,62}"
    }

    fn kind_strategy() -> impl Strategy<Value = NodeTopic> {
        proptest::sample::select(NodeTopic::ALL.to_vec())
    }

    proptest! {
        #[test]
        fn format_then_parse_is_identity(site in id_strategy(), node in id_strategy(),
                                         kind in kind_strategy(),
                                         prefix in "[a-z]{1,8}(/[a-z0-9]{1,8}){0,2}") {
            let p = Prefix::new(prefix).unwrap();
            let site = SiteId::new(site).unwrap();
            let node = NodeId::new(node).unwrap();
            for t in [Topic::node(&site, &node, kind), Topic::SiteStatus { site: site.clone() }, Topic::HubStatus, Topic::HubStorage] {
                prop_assert_eq!(Topic::parse(&p, &t.format(&p)).unwrap(), t);
            }
        }

        #[test]
        fn parse_never_panics_and_parsed_topics_round_trip(topic in ".{0,120}") {
            let p = Prefix::default();
            if let Ok(t) = Topic::parse(&p, &topic) {
                prop_assert_eq!(t.format(&p), topic);
            }
        }

        #[test]
        fn invalid_ids_never_produce_a_topic(site in ".{0,70}", node in ".{0,70}") {
            // The only way to a Topic is through validated ids, so an invalid id must fail there.
            let s = SiteId::new(site.clone());
            let n = NodeId::new(node.clone());
            if let (Ok(s), Ok(n)) = (&s, &n) {
                let t = Topic::node(s, n, NodeTopic::Metrics).format(&Prefix::default());
                prop_assert_eq!(t.matches('/').count(), 4);
                prop_assert!(!t.contains(['+', '#', ' ']));
            } else {
                let raw = format!("sitewatch/v1/{site}/{node}/metrics");
                prop_assert!(Topic::parse(&Prefix::default(), &raw).is_err(), "{} parsed", raw);
            }
        }
    }
}
