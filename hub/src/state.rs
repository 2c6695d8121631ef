//! Node and site state: a pure core fed with observations and the current time.
//!
//! Fast path: the retained last-will `offline` on `…/status`. Source of truth: a node with
//! no heartbeat (or any other message) for `timeout_factor × heartbeat interval` is offline,
//! so a lost or late will changes nothing. After a hub restart every node gets a fresh
//! deadline (a grace period) instead of being judged on how old its last message is.

use std::collections::BTreeMap;

use serde::Serialize;
use sitewatch_proto::{Metrics, NodeId, SiteId, Status};

/// What the hub believes about a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeStatus {
    Online,
    Offline,
    /// Known from the database but not heard from since the hub started.
    Unknown,
}

impl NodeStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            NodeStatus::Online => "online",
            NodeStatus::Offline => "offline",
            NodeStatus::Unknown => "unknown",
        }
    }

    pub fn parse(s: &str) -> Self {
        match s {
            "online" => NodeStatus::Online,
            "offline" => NodeStatus::Offline,
            _ => NodeStatus::Unknown,
        }
    }
}

/// Site rollup published retained on `…/{site}/status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SiteStatus {
    Online,
    Degraded,
    Offline,
}

impl SiteStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SiteStatus::Online => "online",
            SiteStatus::Degraded => "degraded",
            SiteStatus::Offline => "offline",
        }
    }
}

/// Something the hub learnt about a node.
#[derive(Debug, Clone)]
pub enum Observation {
    /// `online`/`offline` on the node's status topic (the will is `offline`).
    Status(Status),
    Heartbeat,
    Info {
        hostname: String,
        heartbeat_interval_s: u64,
    },
    Metrics(KeyMetrics),
}

/// The few latest values shown in node lists.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct KeyMetrics {
    pub ts: u64,
    pub cpu_pct: Option<f64>,
    pub mem_pct: Option<f64>,
    /// Fullest real filesystem.
    pub disk_pct: Option<f64>,
    /// Hottest sensor.
    pub temp_c: Option<f64>,
    pub uptime_s: Option<u64>,
}

impl KeyMetrics {
    pub fn from_metrics(m: &Metrics) -> Self {
        let max = |it: &mut dyn Iterator<Item = f64>| {
            it.filter(|v| v.is_finite())
                .fold(None, |a: Option<f64>, v| Some(a.map_or(v, |a| a.max(v))))
        };
        Self {
            ts: m.ts,
            cpu_pct: m.cpu.as_ref().map(|c| c.usage_pct),
            mem_pct: m.memory.as_ref().map(|x| x.used_pct),
            disk_pct: max(&mut m.filesystems.iter().map(|f| f.used_pct)),
            temp_c: max(&mut m.temperatures.iter().map(|t| t.temp_c)),
            uptime_s: m.uptime_s,
        }
    }
}

/// Why a node changed status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// The agent (or its last will) published on the status topic.
    StatusTopic,
    /// A heartbeat, metrics or info message arrived.
    Message,
    /// No message within the heartbeat timeout.
    HeartbeatTimeout,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::StatusTopic => "status_topic",
            Reason::Message => "message",
            Reason::HeartbeatTimeout => "heartbeat_timeout",
        }
    }
}

/// A status change to persist, publish and show.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    pub site: SiteId,
    pub node: NodeId,
    pub from: NodeStatus,
    pub to: NodeStatus,
    pub at_ms: u64,
    pub reason: Reason,
}

#[derive(Debug, Clone)]
struct NodeState {
    status: NodeStatus,
    since_ms: u64,
    last_seen_ms: Option<u64>,
    heartbeat_interval_s: Option<u64>,
    /// When the node is declared offline if nothing arrives; None once offline.
    deadline_ms: Option<u64>,
    hostname: Option<String>,
    latest: Option<KeyMetrics>,
}

/// One row of the node list (`GET /api/v1/nodes`, dashboard).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeView {
    pub site: SiteId,
    pub node: NodeId,
    pub status: NodeStatus,
    pub status_since_ms: u64,
    pub last_seen_ms: Option<u64>,
    pub hostname: Option<String>,
    pub metrics: Option<KeyMetrics>,
}

/// Tunables of offline detection.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// Offline after this many heartbeat intervals without a message.
    pub factor: u64,
    /// Heartbeat interval assumed until a node's `info` says otherwise.
    pub default_heartbeat_interval_s: u64,
}

/// State of every node the hub knows.
#[derive(Debug, Clone)]
pub struct Fleet {
    nodes: BTreeMap<(SiteId, NodeId), NodeState>,
    timeouts: Timeouts,
}

impl Fleet {
    pub fn new(timeouts: Timeouts) -> Self {
        Self {
            nodes: BTreeMap::new(),
            timeouts,
        }
    }

    fn timeout_ms(&self, hb_interval_s: Option<u64>) -> u64 {
        let hb = hb_interval_s
            .unwrap_or(self.timeouts.default_heartbeat_interval_s)
            .max(1);
        hb.saturating_mul(self.timeouts.factor.max(1))
            .saturating_mul(1000)
    }

    /// Restores a node from storage at start-up. It keeps its stored status but gets a
    /// full timeout from `now_ms` before it can be declared offline (start-up grace).
    #[allow(clippy::too_many_arguments)]
    pub fn restore(
        &mut self,
        site: SiteId,
        node: NodeId,
        status: NodeStatus,
        since_ms: u64,
        last_seen_ms: Option<u64>,
        hostname: Option<String>,
        heartbeat_interval_s: Option<u64>,
        latest: Option<KeyMetrics>,
        now_ms: u64,
    ) {
        let deadline_ms = (status != NodeStatus::Offline)
            .then(|| now_ms.saturating_add(self.timeout_ms(heartbeat_interval_s)));
        self.nodes.insert(
            (site, node),
            NodeState {
                status,
                since_ms,
                last_seen_ms,
                heartbeat_interval_s,
                deadline_ms,
                hostname,
                latest,
            },
        );
    }

    /// Records a node's identity from a retained `info` replayed by the broker, without
    /// taking it as a sign of life (the node may have died while the hub was away).
    pub fn note_info(
        &mut self,
        site: &SiteId,
        node: &NodeId,
        hostname: String,
        heartbeat_interval_s: u64,
        now_ms: u64,
    ) {
        let timeout = self.timeout_ms(Some(heartbeat_interval_s));
        let state = self
            .nodes
            .entry((site.clone(), node.clone()))
            .or_insert_with(|| NodeState {
                status: NodeStatus::Unknown,
                since_ms: now_ms,
                last_seen_ms: None,
                heartbeat_interval_s: None,
                deadline_ms: Some(now_ms.saturating_add(timeout)),
                hostname: None,
                latest: None,
            });
        state.hostname = Some(hostname);
        state.heartbeat_interval_s = Some(heartbeat_interval_s);
    }

    /// Applies one observation; returns the transition it caused, if any.
    pub fn observe(
        &mut self,
        site: &SiteId,
        node: &NodeId,
        obs: Observation,
        now_ms: u64,
    ) -> Option<Transition> {
        let default_timeout = self.timeout_ms(None);
        let key = (site.clone(), node.clone());
        let state = self.nodes.entry(key).or_insert_with(|| NodeState {
            status: NodeStatus::Unknown,
            since_ms: now_ms,
            last_seen_ms: None,
            heartbeat_interval_s: None,
            deadline_ms: Some(now_ms.saturating_add(default_timeout)),
            hostname: None,
            latest: None,
        });
        let (target, reason) = match obs {
            Observation::Status(Status::Offline) => {
                state.deadline_ms = None;
                (NodeStatus::Offline, Reason::StatusTopic)
            }
            Observation::Status(Status::Online) => (NodeStatus::Online, Reason::StatusTopic),
            Observation::Heartbeat => (NodeStatus::Online, Reason::Message),
            Observation::Info {
                hostname,
                heartbeat_interval_s,
            } => {
                state.hostname = Some(hostname);
                state.heartbeat_interval_s = Some(heartbeat_interval_s);
                (NodeStatus::Online, Reason::Message)
            }
            Observation::Metrics(key) => {
                state.latest = Some(key);
                (NodeStatus::Online, Reason::Message)
            }
        };
        if target == NodeStatus::Online {
            state.last_seen_ms = Some(now_ms);
            let hb = state.heartbeat_interval_s;
            let hb = hb
                .unwrap_or(self.timeouts.default_heartbeat_interval_s)
                .max(1);
            let timeout = hb
                .saturating_mul(self.timeouts.factor.max(1))
                .saturating_mul(1000);
            state.deadline_ms = Some(now_ms.saturating_add(timeout));
        }
        if state.status == target {
            return None;
        }
        let from = state.status;
        state.status = target;
        state.since_ms = now_ms;
        Some(Transition {
            site: site.clone(),
            node: node.clone(),
            from,
            to: target,
            at_ms: now_ms,
            reason,
        })
    }

    /// Declares offline every node whose deadline has passed.
    pub fn tick(&mut self, now_ms: u64) -> Vec<Transition> {
        let mut out = Vec::new();
        for ((site, node), state) in &mut self.nodes {
            if let Some(deadline) = state.deadline_ms
                && now_ms >= deadline
            {
                state.deadline_ms = None;
                if state.status != NodeStatus::Offline {
                    out.push(Transition {
                        site: site.clone(),
                        node: node.clone(),
                        from: state.status,
                        to: NodeStatus::Offline,
                        at_ms: now_ms,
                        reason: Reason::HeartbeatTimeout,
                    });
                    state.status = NodeStatus::Offline;
                    state.since_ms = now_ms;
                }
            }
        }
        out
    }

    /// Rollup of one site: offline when all its nodes are, degraded when some are.
    pub fn site_status(&self, site: &SiteId) -> Option<SiteStatus> {
        let mut total = 0;
        let mut offline = 0;
        for ((s, _), st) in &self.nodes {
            if s == site {
                total += 1;
                if st.status == NodeStatus::Offline {
                    offline += 1;
                }
            }
        }
        match (total, offline) {
            (0, _) => None,
            (t, o) if o == t => Some(SiteStatus::Offline),
            (_, 0) => Some(SiteStatus::Online),
            _ => Some(SiteStatus::Degraded),
        }
    }

    pub fn snapshot(&self) -> Vec<NodeView> {
        self.nodes
            .iter()
            .map(|((site, node), s)| NodeView {
                site: site.clone(),
                node: node.clone(),
                status: s.status,
                status_since_ms: s.since_ms,
                last_seen_ms: s.last_seen_ms,
                hostname: s.hostname.clone(),
                metrics: s.latest.clone(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(s: &str, n: &str) -> (SiteId, NodeId) {
        (SiteId::new(s).unwrap(), NodeId::new(n).unwrap())
    }

    fn fleet() -> Fleet {
        Fleet::new(Timeouts {
            factor: 3,
            default_heartbeat_interval_s: 10,
        })
    }

    #[test]
    fn heartbeat_timeout_is_the_source_of_truth() {
        let mut f = fleet();
        let (s, n) = ids("club", "pi");
        let t = f.observe(&s, &n, Observation::Heartbeat, 1_000).unwrap();
        assert_eq!((t.from, t.to), (NodeStatus::Unknown, NodeStatus::Online));
        assert!(f.tick(30_999).is_empty());
        let t = f.tick(31_000);
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].reason, Reason::HeartbeatTimeout);
        assert!(f.tick(90_000).is_empty(), "offline is reported once");
        assert_eq!(f.site_status(&s), Some(SiteStatus::Offline));
    }

    #[test]
    fn info_interval_sets_the_timeout() {
        let mut f = fleet();
        let (s, n) = ids("club", "pi");
        f.observe(
            &s,
            &n,
            Observation::Info {
                hostname: "pi".into(),
                heartbeat_interval_s: 2,
            },
            0,
        );
        assert!(f.tick(5_999).is_empty());
        assert_eq!(f.tick(6_000).len(), 1);
    }

    #[test]
    fn last_will_is_the_fast_path_and_a_message_brings_it_back() {
        let mut f = fleet();
        let (s, n) = ids("club", "pi");
        f.observe(&s, &n, Observation::Heartbeat, 0);
        let t = f
            .observe(&s, &n, Observation::Status(Status::Offline), 500)
            .unwrap();
        assert_eq!((t.to, t.reason), (NodeStatus::Offline, Reason::StatusTopic));
        assert!(f.tick(100_000).is_empty());
        let t = f
            .observe(&s, &n, Observation::Status(Status::Online), 100_500)
            .unwrap();
        assert_eq!(t.to, NodeStatus::Online);
    }

    #[test]
    fn retained_info_names_a_node_without_reviving_it() {
        let mut f = fleet();
        let (s, n) = ids("club", "pi");
        f.observe(&s, &n, Observation::Status(Status::Offline), 0);
        f.note_info(&s, &n, "pi-host".into(), 5, 10);
        let v = &f.snapshot()[0];
        assert_eq!(
            (v.status, v.hostname.as_deref()),
            (NodeStatus::Offline, Some("pi-host"))
        );
        // A node first known through a replay is unknown, then offline if nothing arrives.
        let (_, m) = ids("club", "ghost");
        f.note_info(&s, &m, "ghost".into(), 5, 0);
        let t = f.tick(15_000);
        assert_eq!(t.len(), 1);
        assert_eq!(
            (t[0].from, t[0].to),
            (NodeStatus::Unknown, NodeStatus::Offline)
        );
    }

    #[test]
    fn site_rollup() {
        let mut f = fleet();
        let (s, a) = ids("club", "a");
        let (_, b) = ids("club", "b");
        f.observe(&s, &a, Observation::Heartbeat, 0);
        f.observe(&s, &b, Observation::Heartbeat, 0);
        assert_eq!(f.site_status(&s), Some(SiteStatus::Online));
        f.observe(&s, &a, Observation::Status(Status::Offline), 1);
        assert_eq!(f.site_status(&s), Some(SiteStatus::Degraded));
        assert_eq!(f.site_status(&SiteId::new("other").unwrap()), None);
    }

    #[test]
    fn restart_grants_a_grace_period() {
        let mut f = fleet();
        let (s, n) = ids("club", "pi");
        // Stored as online, last seen long ago: not declared offline at once after restart.
        f.restore(
            s,
            n,
            NodeStatus::Online,
            0,
            Some(0),
            None,
            Some(10),
            None,
            1_000_000,
        );
        assert!(f.tick(1_000_001).is_empty());
        assert_eq!(f.tick(1_030_000).len(), 1);
    }
}
