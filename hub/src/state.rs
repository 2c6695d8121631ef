//! Node and site state: a pure core fed with observations and the current time.
//!
//! Fast path: the retained last-will `offline` on `…/status`. Source of truth: a node with
//! no heartbeat (or any other message) for `timeout_factor × heartbeat interval` is offline,
//! so a lost or late will changes nothing. After a hub restart every node gets a fresh
//! deadline (a grace period) instead of being judged on how old its last message is.
//!
//! Two outputs. [`Fleet::observe`] and [`Fleet::tick`] return the raw status
//! [`Transition`]s (what is stored and what the site rollup on MQTT shows). Alongside, the
//! fleet queues [`FleetEvent`]s for the alert engine, drained with [`Fleet::take_events`]:
//! node and site status changes damped for flapping nodes, reboots (a new boot id), clock
//! skew (with hysteresis) and flapping itself. State restored from storage raises no event.

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};
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
    /// A heartbeat. `ts_ms` is the agent's clock when it sent it: heartbeats are never
    /// queued by the agent, so the gap to the hub's receive time is the clock skew.
    Heartbeat {
        ts_ms: u64,
    },
    Info {
        hostname: String,
        heartbeat_interval_s: u64,
    },
    Metrics(KeyMetrics),
    /// Any other message from the node (a LAN scan result): alive, nothing else to learn.
    Activity,
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
    /// `system.boot_id` of the sample, for reboot detection (not shown in lists).
    #[serde(skip)]
    pub boot_id: Option<String>,
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
            boot_id: m
                .system
                .as_ref()
                .and_then(|s| s.boot_id.clone())
                .filter(|id| !id.is_empty()),
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
    /// A flapping node held one status long enough; its settled status is reported.
    FlapSettled,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::StatusTopic => "status_topic",
            Reason::Message => "message",
            Reason::HeartbeatTimeout => "heartbeat_timeout",
            Reason::FlapSettled => "flap_settled",
        }
    }
}

/// A status change to persist, publish and show.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Transition {
    pub site: SiteId,
    pub node: NodeId,
    pub from: NodeStatus,
    pub to: NodeStatus,
    pub at_ms: u64,
    pub reason: Reason,
}

/// A change of a site's rollup, as seen by the alert engine.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SiteTransition {
    pub site: SiteId,
    /// `None` for a site seen for the first time.
    pub from: Option<SiteStatus>,
    pub to: SiteStatus,
    pub at_ms: u64,
}

/// What the alert engine is told about the fleet (see [`Fleet::take_events`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum FleetEvent {
    /// A node status change, damped: none while the node is flapping, and `from` is the
    /// status last reported here (which may differ from the raw previous status).
    Node(Transition),
    /// A site rollup change, computed from the reported (damped) node statuses.
    Site(SiteTransition),
    /// Metrics carried a boot id never seen for this node: it rebooted.
    Rebooted {
        site: SiteId,
        node: NodeId,
        at_ms: u64,
        previous_boot_id: String,
        boot_id: String,
    },
    /// The agent's clock is off by more than `clock-skew-s` (`active`), or back under
    /// `clock-skew-clear-s`. `skew_ms` is agent time minus hub time.
    ClockSkew {
        site: SiteId,
        node: NodeId,
        at_ms: u64,
        skew_ms: i64,
        active: bool,
    },
    /// The node changed status `changes` times within `flap-window-s` (`active`), or held
    /// one status for `flap-settle-s` (not active any more).
    Flapping {
        site: SiteId,
        node: NodeId,
        at_ms: u64,
        changes: u32,
        active: bool,
    },
}

/// Tunables of offline detection.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// Offline after this many heartbeat intervals without a message.
    pub factor: u64,
    /// Heartbeat interval assumed until a node's `info` says otherwise.
    pub default_heartbeat_interval_s: u64,
}

/// Start-up grace, clock-skew and flapping thresholds (`[detection]` in `hub.toml`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct Detection {
    /// After a hub start, nodes restored from storage are not declared offline before this
    /// many seconds (nor before their own heartbeat timeout, whichever is longer).
    pub startup_grace_s: u64,
    /// Clock skew beyond this (either way) raises a `ClockSkew` event; 0 disables.
    pub clock_skew_s: u64,
    /// ...which clears once the skew is back under this (hysteresis).
    pub clock_skew_clear_s: u64,
    /// A node changing status this many times within `flap-window-s` is flapping; 0
    /// disables flapping detection.
    pub flap_changes: u32,
    pub flap_window_s: u64,
    /// A flapping node is back to normal once its status held this long.
    pub flap_settle_s: u64,
}

impl Default for Detection {
    fn default() -> Self {
        Self {
            startup_grace_s: 0,
            clock_skew_s: 30,
            clock_skew_clear_s: 10,
            flap_changes: 6,
            flap_window_s: 600,
            flap_settle_s: 300,
        }
    }
}

/// A `[detection]` value that cannot work; the message names the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("detection.{key}: {reason}")]
pub struct DetectionError {
    pub key: &'static str,
    pub reason: String,
}

impl Detection {
    pub fn validate(&self) -> Result<(), DetectionError> {
        if self.clock_skew_s > 0 && self.clock_skew_clear_s >= self.clock_skew_s {
            return Err(DetectionError {
                key: "clock-skew-clear-s",
                reason: format!(
                    "must be below clock-skew-s ({}) so a skew hovering at the threshold \
                     does not raise and clear on every heartbeat",
                    self.clock_skew_s
                ),
            });
        }
        if self.flap_changes == 1 {
            return Err(DetectionError {
                key: "flap-changes",
                reason: "must be at least 2 (or 0 to disable flapping detection)".into(),
            });
        }
        if self.flap_changes > 0 && (self.flap_window_s == 0 || self.flap_settle_s == 0) {
            return Err(DetectionError {
                key: "flap-window-s",
                reason: "flap-window-s and flap-settle-s must be at least 1 second".into(),
            });
        }
        Ok(())
    }
}

/// Boot ids remembered per node, so an outbox resend from before a reboot (old boot id)
/// is not taken for another reboot.
const BOOT_IDS_KEPT: usize = 4;
/// Heartbeats the skew estimate looks at: the smallest skew of the last few, since a
/// delivery delay only ever adds to one heartbeat's apparent skew.
const SKEW_SAMPLES: usize = 3;
/// Events kept when nobody drains them; the oldest are dropped beyond this.
const EVENTS_KEPT: usize = 4096;

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
    /// Status as last told by the event stream (damped while flapping).
    reported: NodeStatus,
    /// Restored from storage and not heard from since.
    restored: bool,
    /// Recent boot ids, newest last.
    boot_ids: Vec<String>,
    skews: VecDeque<i64>,
    skew_active: bool,
    /// Times of recent online/offline changes, within the flap window.
    changes: VecDeque<u64>,
    flapping: bool,
    last_change_ms: u64,
    last_reason: Reason,
}

impl NodeState {
    fn new(status: NodeStatus, now_ms: u64, deadline_ms: Option<u64>) -> Self {
        Self {
            status,
            since_ms: now_ms,
            last_seen_ms: None,
            heartbeat_interval_s: None,
            deadline_ms,
            hostname: None,
            latest: None,
            reported: status,
            restored: false,
            boot_ids: Vec::new(),
            skews: VecDeque::with_capacity(SKEW_SAMPLES),
            skew_active: false,
            changes: VecDeque::new(),
            flapping: false,
            last_change_ms: now_ms,
            last_reason: Reason::Message,
        }
    }
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

/// State of every node the hub knows.
#[derive(Debug, Clone)]
pub struct Fleet {
    nodes: BTreeMap<(SiteId, NodeId), NodeState>,
    timeouts: Timeouts,
    detection: Detection,
    /// Until then, restored nodes confirming their stored state raise no event.
    grace_until_ms: u64,
    /// Site rollups as last told by the event stream.
    site_reported: BTreeMap<SiteId, SiteStatus>,
    events: VecDeque<FleetEvent>,
    events_dropped: u64,
}

impl Fleet {
    pub fn new(timeouts: Timeouts) -> Self {
        Self {
            nodes: BTreeMap::new(),
            timeouts,
            detection: Detection::default(),
            grace_until_ms: 0,
            site_reported: BTreeMap::new(),
            events: VecDeque::new(),
            events_dropped: 0,
        }
    }

    /// Sets the grace, clock-skew and flapping thresholds (defaults: [`Detection::default`]).
    pub fn with_detection(mut self, detection: Detection) -> Self {
        self.detection = detection;
        self
    }

    fn timeout_ms(&self, hb_interval_s: Option<u64>) -> u64 {
        let hb = hb_interval_s
            .unwrap_or(self.timeouts.default_heartbeat_interval_s)
            .max(1);
        hb.saturating_mul(self.timeouts.factor.max(1))
            .saturating_mul(1000)
    }

    /// The events queued since the last call, oldest first.
    pub fn take_events(&mut self) -> Vec<FleetEvent> {
        self.events.drain(..).collect()
    }

    /// Events dropped because nobody took them (more than 4096 queued).
    pub fn events_dropped(&self) -> u64 {
        self.events_dropped
    }

    fn emit(&mut self, event: FleetEvent) {
        if self.events.len() >= EVENTS_KEPT {
            self.events.pop_front();
            self.events_dropped += 1;
        }
        self.events.push_back(event);
    }

    /// Restores a node from storage at start-up. It keeps its stored status but gets a
    /// full timeout (at least `startup-grace-s`) from `now_ms` before it can be declared
    /// offline, and restoring raises no event.
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
        let grace = self
            .timeout_ms(heartbeat_interval_s)
            .max(self.detection.startup_grace_s.saturating_mul(1000));
        self.grace_until_ms = self.grace_until_ms.max(now_ms.saturating_add(grace));
        let deadline_ms = (status != NodeStatus::Offline).then(|| now_ms.saturating_add(grace));
        let mut state = NodeState::new(status, since_ms, deadline_ms);
        state.last_seen_ms = last_seen_ms;
        state.heartbeat_interval_s = heartbeat_interval_s;
        state.hostname = hostname;
        state.restored = true;
        if let Some(id) = latest.as_ref().and_then(|k| k.boot_id.clone()) {
            state.boot_ids.push(id);
        }
        state.latest = latest;
        self.nodes.insert((site.clone(), node), state);
        if let Some(rollup) = self.rollup(&site, |s| s.reported) {
            self.site_reported.insert(site, rollup);
        }
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
            .or_insert_with(|| {
                NodeState::new(
                    NodeStatus::Unknown,
                    now_ms,
                    Some(now_ms.saturating_add(timeout)),
                )
            });
        state.hostname = Some(hostname);
        state.heartbeat_interval_s = Some(heartbeat_interval_s);
    }

    /// Applies one observation; returns the transition it caused, if any. Events for the
    /// alert engine are queued (see [`Fleet::take_events`]).
    pub fn observe(
        &mut self,
        site: &SiteId,
        node: &NodeId,
        obs: Observation,
        now_ms: u64,
    ) -> Option<Transition> {
        let default_timeout = self.timeout_ms(None);
        let detection = self.detection;
        let key = (site.clone(), node.clone());
        let state = self.nodes.entry(key).or_insert_with(|| {
            NodeState::new(
                NodeStatus::Unknown,
                now_ms,
                Some(now_ms.saturating_add(default_timeout)),
            )
        });
        let was_restored = std::mem::replace(&mut state.restored, false);
        let mut events = Vec::new();
        let (target, reason) = match obs {
            Observation::Status(Status::Offline) => {
                state.deadline_ms = None;
                (NodeStatus::Offline, Reason::StatusTopic)
            }
            Observation::Status(Status::Online) => (NodeStatus::Online, Reason::StatusTopic),
            Observation::Heartbeat { ts_ms } => {
                if let Some(active) = skew_check(state, &detection, ts_ms, now_ms) {
                    events.push(FleetEvent::ClockSkew {
                        site: site.clone(),
                        node: node.clone(),
                        at_ms: now_ms,
                        skew_ms: skew_estimate(&state.skews),
                        active,
                    });
                }
                (NodeStatus::Online, Reason::Message)
            }
            Observation::Info {
                hostname,
                heartbeat_interval_s,
            } => {
                state.hostname = Some(hostname);
                state.heartbeat_interval_s = Some(heartbeat_interval_s);
                (NodeStatus::Online, Reason::Message)
            }
            Observation::Activity => (NodeStatus::Online, Reason::Message),
            Observation::Metrics(key) => {
                if let Some(previous) = boot_check(state, key.boot_id.as_deref()) {
                    events.push(FleetEvent::Rebooted {
                        site: site.clone(),
                        node: node.clone(),
                        at_ms: now_ms,
                        previous_boot_id: previous,
                        boot_id: key.boot_id.clone().unwrap_or_default(),
                    });
                }
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
        let transition = (state.status != target).then(|| {
            let from = state.status;
            state.status = target;
            state.since_ms = now_ms;
            Transition {
                site: site.clone(),
                node: node.clone(),
                from,
                to: target,
                at_ms: now_ms,
                reason,
            }
        });
        for e in events {
            self.emit(e);
        }
        if let Some(t) = &transition {
            // A restored node confirming its stored state during the start-up grace is
            // not news: it raises no event.
            let quiet =
                was_restored && t.from == NodeStatus::Unknown && now_ms < self.grace_until_ms;
            self.after_change(t, quiet);
        }
        transition
    }

    /// Declares offline every node whose deadline has passed, and ends flapping for nodes
    /// that held a status for `flap-settle-s`.
    pub fn tick(&mut self, now_ms: u64) -> Vec<Transition> {
        let mut out = Vec::new();
        let mut settled = Vec::new();
        let settle_ms = self.detection.flap_settle_s.saturating_mul(1000);
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
            if state.flapping && now_ms.saturating_sub(state.last_change_ms) >= settle_ms {
                settled.push((site.clone(), node.clone()));
            }
        }
        for t in &out {
            self.after_change(t, false);
        }
        for (site, node) in settled {
            self.settle(&site, &node, now_ms);
        }
        out
    }

    /// Flapping detection and damped events after a raw status change.
    fn after_change(&mut self, t: &Transition, quiet: bool) {
        let detection = self.detection;
        let Some(state) = self.nodes.get_mut(&(t.site.clone(), t.node.clone())) else {
            return;
        };
        state.last_reason = t.reason;
        if quiet {
            state.reported = t.to;
            return;
        }
        let mut events = Vec::new();
        if detection.flap_changes > 0
            && t.from != NodeStatus::Unknown
            && t.to != NodeStatus::Unknown
        {
            let window = detection.flap_window_s.saturating_mul(1000);
            state.changes.push_back(t.at_ms);
            while state
                .changes
                .front()
                .is_some_and(|&c| t.at_ms.saturating_sub(c) > window)
            {
                state.changes.pop_front();
            }
            state.last_change_ms = t.at_ms;
            let changes = u32::try_from(state.changes.len()).unwrap_or(u32::MAX);
            if !state.flapping && changes >= detection.flap_changes {
                state.flapping = true;
                events.push(FleetEvent::Flapping {
                    site: t.site.clone(),
                    node: t.node.clone(),
                    at_ms: t.at_ms,
                    changes,
                    active: true,
                });
            }
        }
        if !state.flapping && state.reported != t.to {
            let from = std::mem::replace(&mut state.reported, t.to);
            events.push(FleetEvent::Node(Transition { from, ..t.clone() }));
        }
        for e in events {
            self.emit(e);
        }
        self.site_event(&t.site, t.at_ms);
    }

    fn settle(&mut self, site: &SiteId, node: &NodeId, now_ms: u64) {
        let Some(state) = self.nodes.get_mut(&(site.clone(), node.clone())) else {
            return;
        };
        state.flapping = false;
        let changes = u32::try_from(state.changes.len()).unwrap_or(u32::MAX);
        state.changes.clear();
        let mut events = vec![FleetEvent::Flapping {
            site: site.clone(),
            node: node.clone(),
            at_ms: now_ms,
            changes,
            active: false,
        }];
        if state.reported != state.status {
            let from = std::mem::replace(&mut state.reported, state.status);
            events.push(FleetEvent::Node(Transition {
                site: site.clone(),
                node: node.clone(),
                from,
                to: state.status,
                at_ms: now_ms,
                reason: Reason::FlapSettled,
            }));
        }
        for e in events {
            self.emit(e);
        }
        self.site_event(site, now_ms);
    }

    fn site_event(&mut self, site: &SiteId, at_ms: u64) {
        let Some(to) = self.rollup(site, |s| s.reported) else {
            return;
        };
        let from = self.site_reported.insert(site.clone(), to);
        if from != Some(to) {
            self.emit(FleetEvent::Site(SiteTransition {
                site: site.clone(),
                from,
                to,
                at_ms,
            }));
        }
    }

    fn rollup(
        &self,
        site: &SiteId,
        status: impl Fn(&NodeState) -> NodeStatus,
    ) -> Option<SiteStatus> {
        let mut total = 0;
        let mut offline = 0;
        for ((s, _), st) in &self.nodes {
            if s == site {
                total += 1;
                if status(st) == NodeStatus::Offline {
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

    /// Rollup of one site: offline when all its nodes are, degraded when some are.
    pub fn site_status(&self, site: &SiteId) -> Option<SiteStatus> {
        self.rollup(site, |s| s.status)
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

/// Records a boot id; returns the previous one when this one is new (a reboot).
fn boot_check(state: &mut NodeState, boot_id: Option<&str>) -> Option<String> {
    let id = boot_id?;
    if state.boot_ids.iter().any(|b| b == id) {
        return None;
    }
    let previous = state.boot_ids.last().cloned();
    state.boot_ids.push(id.to_owned());
    if state.boot_ids.len() > BOOT_IDS_KEPT {
        state.boot_ids.remove(0);
    }
    previous
}

/// The skew estimate: the smallest (in size) of the recent samples.
fn skew_estimate(skews: &VecDeque<i64>) -> i64 {
    skews
        .iter()
        .copied()
        .min_by_key(|s| s.unsigned_abs())
        .unwrap_or(0)
}

/// Adds a skew sample; returns the new state when it flips (raise or clear).
fn skew_check(state: &mut NodeState, d: &Detection, ts_ms: u64, now_ms: u64) -> Option<bool> {
    if d.clock_skew_s == 0 {
        return None;
    }
    let skew = i64::try_from(ts_ms)
        .unwrap_or(i64::MAX)
        .saturating_sub(i64::try_from(now_ms).unwrap_or(i64::MAX));
    if state.skews.len() == SKEW_SAMPLES {
        state.skews.pop_front();
    }
    state.skews.push_back(skew);
    let size = skew_estimate(&state.skews).unsigned_abs();
    if !state.skew_active && size > d.clock_skew_s.saturating_mul(1000) {
        state.skew_active = true;
        Some(true)
    } else if state.skew_active && size < d.clock_skew_clear_s.saturating_mul(1000) {
        state.skew_active = false;
        Some(false)
    } else {
        None
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
        let t = f
            .observe(&s, &n, Observation::Heartbeat { ts_ms: 0 }, 1_000)
            .unwrap();
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
        f.observe(&s, &n, Observation::Heartbeat { ts_ms: 0 }, 0);
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
        f.observe(&s, &a, Observation::Heartbeat { ts_ms: 0 }, 0);
        f.observe(&s, &b, Observation::Heartbeat { ts_ms: 0 }, 0);
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

    fn hb(f: &mut Fleet, s: &SiteId, n: &NodeId, at: u64) -> Option<Transition> {
        f.observe(s, n, Observation::Heartbeat { ts_ms: at }, at)
    }

    fn metrics_with_boot(boot: &str) -> Observation {
        Observation::Metrics(KeyMetrics {
            boot_id: Some(boot.into()),
            ..Default::default()
        })
    }

    #[test]
    fn site_events_follow_the_rollup() {
        let mut f = fleet();
        let (s, a) = ids("club", "a");
        let (_, b) = ids("club", "b");
        hb(&mut f, &s, &a, 0);
        hb(&mut f, &s, &b, 0);
        f.take_events();
        f.observe(&s, &a, Observation::Status(Status::Offline), 1);
        f.observe(&s, &b, Observation::Status(Status::Offline), 2);
        let sites: Vec<_> = f
            .take_events()
            .into_iter()
            .filter_map(|e| match e {
                FleetEvent::Site(t) => Some((t.from, t.to)),
                _ => None,
            })
            .collect();
        assert_eq!(
            sites,
            vec![
                (Some(SiteStatus::Online), SiteStatus::Degraded),
                (Some(SiteStatus::Degraded), SiteStatus::Offline)
            ]
        );
    }

    #[test]
    fn node_and_site_events_come_in_order_in_one_batch() {
        let mut f = fleet();
        let (s, n) = ids("club", "pi");
        hb(&mut f, &s, &n, 0);
        f.take_events();
        f.tick(30_000);
        let ev = f.take_events();
        assert!(matches!(&ev[0], FleetEvent::Node(t) if t.to == NodeStatus::Offline));
        assert!(matches!(&ev[1], FleetEvent::Site(t) if t.to == SiteStatus::Offline));
        assert_eq!(ev.len(), 2);
    }

    #[test]
    fn a_new_boot_id_is_a_reboot_but_a_resent_old_one_is_not() {
        let mut f = fleet();
        let (s, n) = ids("club", "pi");
        f.observe(&s, &n, metrics_with_boot("boot-a"), 0);
        f.observe(&s, &n, metrics_with_boot("boot-a"), 30_000);
        assert!(
            !f.take_events()
                .iter()
                .any(|e| matches!(e, FleetEvent::Rebooted { .. }))
        );
        f.observe(&s, &n, metrics_with_boot("boot-b"), 60_000);
        // The outbox resends a sample taken before the reboot.
        f.observe(&s, &n, metrics_with_boot("boot-a"), 61_000);
        f.observe(&s, &n, metrics_with_boot("boot-b"), 62_000);
        let reboots: Vec<_> = f
            .take_events()
            .into_iter()
            .filter_map(|e| match e {
                FleetEvent::Rebooted {
                    previous_boot_id,
                    boot_id,
                    ..
                } => Some((previous_boot_id, boot_id)),
                _ => None,
            })
            .collect();
        assert_eq!(reboots, vec![("boot-a".to_string(), "boot-b".to_string())]);
    }

    #[test]
    fn reboot_while_the_hub_was_down_is_seen_from_restored_metrics() {
        let mut f = fleet();
        let (s, n) = ids("club", "pi");
        let latest = KeyMetrics {
            boot_id: Some("boot-a".into()),
            ..Default::default()
        };
        f.restore(
            s.clone(),
            n.clone(),
            NodeStatus::Online,
            0,
            Some(0),
            None,
            Some(10),
            Some(latest),
            1_000,
        );
        f.observe(&s, &n, metrics_with_boot("boot-b"), 2_000);
        assert!(
            f.take_events()
                .iter()
                .any(|e| matches!(e, FleetEvent::Rebooted { .. }))
        );
    }

    #[test]
    fn clock_skew_has_hysteresis_and_ignores_one_late_heartbeat() {
        let mut f = fleet();
        let (s, n) = ids("club", "pi");
        let skew = |f: &mut Fleet, at: u64, off: i64| {
            let ts = (at as i64 + off) as u64;
            f.observe(&s, &n, Observation::Heartbeat { ts_ms: ts }, at);
            f.take_events()
                .into_iter()
                .filter_map(|e| match e {
                    FleetEvent::ClockSkew {
                        active, skew_ms, ..
                    } => Some((active, skew_ms)),
                    _ => None,
                })
                .collect::<Vec<_>>()
        };
        assert!(skew(&mut f, 100_000, 0).is_empty());
        // One heartbeat delivered 40 s late is not a skewed clock.
        assert!(skew(&mut f, 110_000, -40_000).is_empty());
        assert!(skew(&mut f, 120_000, 0).is_empty());
        // A clock 2 minutes ahead, consistently.
        assert!(skew(&mut f, 130_000, 120_000).is_empty());
        assert!(skew(&mut f, 140_000, 120_000).is_empty());
        assert_eq!(skew(&mut f, 150_000, 120_000), vec![(true, 120_000)]);
        // Between the clear and raise thresholds: still skewed, nothing new.
        for i in 0..3 {
            assert!(skew(&mut f, 160_000 + i * 10_000, 20_000).is_empty());
        }
        // NTP fixed it.
        assert_eq!(skew(&mut f, 200_000, 50), vec![(false, 50)]);
    }

    #[test]
    fn flapping_is_reported_once_instead_of_every_change() {
        let mut f = fleet().with_detection(Detection {
            flap_changes: 4,
            flap_window_s: 600,
            flap_settle_s: 300,
            ..Default::default()
        });
        let (s, n) = ids("club", "pi");
        hb(&mut f, &s, &n, 0);
        f.take_events();
        let mut t = 1_000;
        for _ in 0..10 {
            f.observe(&s, &n, Observation::Status(Status::Offline), t);
            hb(&mut f, &s, &n, t + 500);
            t += 10_000;
        }
        let last = t - 10_000 + 500;
        let ev = f.take_events();
        let nodes = ev
            .iter()
            .filter(|e| matches!(e, FleetEvent::Node(_)))
            .count();
        let flaps: Vec<_> = ev
            .iter()
            .filter_map(|e| match e {
                FleetEvent::Flapping { active, .. } => Some(*active),
                _ => None,
            })
            .collect();
        // Three changes pass through before the fourth marks the node as flapping.
        assert_eq!(nodes, 3, "{ev:?}");
        assert_eq!(flaps, vec![true]);
        // Online (last reported: offline) and quiet for the settle time: flapping ends and
        // the settled status is told.
        for at in (last..last + 300_000).step_by(10_000) {
            hb(&mut f, &s, &n, at);
        }
        assert!(f.tick(last + 299_999).is_empty());
        assert!(f.take_events().is_empty());
        f.tick(last + 300_000);
        let ev = f.take_events();
        assert!(
            matches!(ev[0], FleetEvent::Flapping { active: false, .. }),
            "{ev:?}"
        );
        assert!(
            matches!(&ev[1], FleetEvent::Node(x) if x.to == NodeStatus::Online && x.reason == Reason::FlapSettled),
            "{ev:?}"
        );
    }

    #[test]
    fn restart_raises_no_event_for_restored_state() {
        let mut f = fleet();
        let (s, up) = ids("club", "up");
        let (_, down) = ids("club", "down");
        let (_, unk) = ids("club", "unk");
        let now = 1_000_000;
        for (n, st) in [
            (&up, NodeStatus::Online),
            (&down, NodeStatus::Offline),
            (&unk, NodeStatus::Unknown),
        ] {
            f.restore(
                s.clone(),
                n.clone(),
                st,
                0,
                Some(0),
                None,
                Some(10),
                None,
                now,
            );
        }
        // The broker replays the retained `offline` of the dead node; live ones speak.
        f.observe(&s, &down, Observation::Status(Status::Offline), now + 10);
        hb(&mut f, &s, &up, now + 20);
        hb(&mut f, &s, &unk, now + 30);
        assert!(f.tick(now + 29_000).is_empty());
        assert_eq!(
            f.take_events(),
            vec![],
            "restored state confirmed: no event"
        );
        // The dead node coming back is news.
        hb(&mut f, &s, &down, now + 40_000);
        let ev = f.take_events();
        assert!(
            matches!(&ev[0], FleetEvent::Node(t) if t.to == NodeStatus::Online),
            "{ev:?}"
        );
    }

    #[test]
    fn startup_grace_can_be_longer_than_the_timeout() {
        let mut f = fleet().with_detection(Detection {
            startup_grace_s: 120,
            ..Default::default()
        });
        let (s, n) = ids("club", "pi");
        f.restore(
            s,
            n,
            NodeStatus::Online,
            0,
            Some(0),
            None,
            Some(10),
            None,
            0,
        );
        assert!(f.tick(119_999).is_empty());
        assert_eq!(f.tick(120_000).len(), 1);
        assert!(matches!(f.take_events()[0], FleetEvent::Node(_)));
    }

    #[test]
    fn detection_config_is_validated_naming_the_key() {
        assert!(Detection::default().validate().is_ok());
        let d: Detection = toml::from_str("clock-skew-s = 10\nclock-skew-clear-s = 10").unwrap();
        assert_eq!(d.validate().unwrap_err().key, "clock-skew-clear-s");
        let e = toml::from_str::<Detection>("flap-chnages = 3").unwrap_err();
        assert!(e.to_string().contains("flap-chnages"), "{e}");
    }

    #[test]
    fn undrained_events_are_bounded() {
        let mut f = fleet();
        let (s, n) = ids("club", "pi");
        for i in 0..10_000u64 {
            f.observe(&s, &n, metrics_with_boot(&format!("b{i}")), i);
        }
        assert_eq!(f.take_events().len(), EVENTS_KEPT);
        assert!(f.events_dropped() > 0);
    }
}
