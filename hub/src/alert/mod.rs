//! The alert engine: a pure core. No I/O and no clock: it is fed metrics, fleet events
//! (`state::FleetEvent`), LAN events and `now_ms`, and returns what changed (for history,
//! the API and the retained MQTT state) and what to notify.
//!
//! An alert is keyed by the fingerprint of its labels (rule, site, node and the series,
//! check, flag or device it is about). It goes pending when its condition starts holding,
//! firing once it held for the rule's `for`, and resolved when it stops holding (for metric
//! rules: once the value crosses back over `clear`). A firing alert is notified once, again
//! every `repeat-interval` until acknowledged, and once more when it resolves. Silences
//! and inhibition (a firing site-offline alert mutes that site's node alerts) mute both.
//! Event rules (agent rebooted, new LAN device) fire on the event and resolve silently
//! after the repeat interval.

pub mod config;
mod engine;
pub mod matcher;

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use sitewatch_proto::{NodeId, SiteId};

pub use config::{AlertConfigError, AlertsConfig, Dur, Op, Rule, RuleConfig, RuleKind};
pub use engine::{AlertError, Engine};
pub use matcher::{Matcher, Silence};

/// How urgent an alert is; notifiers route on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where an alert is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertState {
    /// The condition holds, for less than the rule's `for`.
    Pending,
    Firing,
    /// The condition stopped holding (a pending alert that never fired also ends here,
    /// with `fired_ms` unset).
    Resolved,
}

impl AlertState {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Pending => "pending",
            AlertState::Firing => "firing",
            AlertState::Resolved => "resolved",
        }
    }
}

/// One alert, as stored in history, returned by the API and sent to notifiers.
/// `(fingerprint, started_ms)` names one occurrence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// 16 hex digits, a stable hash of `labels`.
    pub fingerprint: String,
    pub rule: String,
    pub kind: RuleKind,
    pub severity: Severity,
    pub site: SiteId,
    /// None for site-wide alerts.
    pub node: Option<NodeId>,
    /// The identifying labels: `rule`, `site`, `node` and what the alert is about
    /// (`mount`, `sensor`, `check`, `flag`, `mac`…).
    pub labels: BTreeMap<String, String>,
    pub state: AlertState,
    /// The latest value seen (metric value; clock skew in seconds).
    pub value: Option<f64>,
    /// Metric rules: the series selector, comparison and threshold.
    pub series: Option<String>,
    pub op: Option<Op>,
    pub threshold: Option<f64>,
    /// What the source said: a failed check's explanation, a device, boot ids.
    pub detail: Option<String>,
    /// The rule's `summary`.
    pub summary: Option<String>,
    /// When the condition started holding.
    pub started_ms: u64,
    pub fired_ms: Option<u64>,
    pub resolved_ms: Option<u64>,
    /// Last time the value or state changed.
    pub updated_ms: u64,
    /// Last firing or repeat notification; None while none was sent.
    pub notified_ms: Option<u64>,
    /// Notifications sent for this occurrence (firing, repeats, resolved).
    pub notifications: u32,
    pub acked_by: Option<String>,
    pub acked_ms: Option<u64>,
    /// The silence muting it now, if any.
    pub silenced_by: Option<String>,
    /// Muted by a firing site-offline alert of its site.
    pub inhibited: bool,
}

/// What a notifier is asked to say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NotificationKind {
    Firing,
    /// Still firing after the repeat interval.
    Repeat,
    Resolved,
}

impl NotificationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            NotificationKind::Firing => "firing",
            NotificationKind::Repeat => "repeat",
            NotificationKind::Resolved => "resolved",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    pub kind: NotificationKind,
    pub alert: Alert,
    pub at_ms: u64,
}

/// What one call to the engine produced.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outcome {
    /// Every alert whose state, mute or acknowledgement changed, after the change: store
    /// it (history keyed by fingerprint and `started_ms`), show it, and re-publish the
    /// retained alert list of its node.
    pub changes: Vec<Alert>,
    /// What to send, in order.
    pub notifications: Vec<Notification>,
}

impl Outcome {
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty() && self.notifications.is_empty()
    }

    /// Appends another call's outcome (e.g. a tick's after a batch of events).
    pub fn extend(&mut self, other: Outcome) {
        self.changes.extend(other.changes);
        self.notifications.extend(other.notifications);
    }
}

/// A LAN scan finding (the scanner comes later; the engine already takes its events).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LanEvent {
    pub site: SiteId,
    /// The node that scanned.
    pub node: NodeId,
    pub change: LanChange,
    pub mac: String,
    pub ip: Option<String>,
    /// Reverse DNS or vendor name, when known.
    pub name: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LanChange {
    /// Never seen before on that network.
    New,
    /// Known, no longer answers.
    Gone,
    /// Known, answers again after being gone.
    Back,
}

#[cfg(test)]
mod proptests;
