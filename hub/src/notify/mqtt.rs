//! MQTT sink: publish requests for the hub's MQTT client. Two kinds:
//!
//! - retained `{prefix}/{site}/{node}/alerts`: the JSON list of the node's firing alerts
//!   (`[]` when clear), from the engine's state ([`state_publishes`], called by the hub
//!   with each [`crate::alert::Outcome`]'s changes, whatever the routing);
//! - `{prefix}/_hub/alerts/events` (not retained): one JSON object per notification
//!   routed to a `kind = "mqtt"` notifier.
//!
//! Nothing here does I/O: the hub forwards each [`Publish`] to its MQTT client.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde::Serialize;
use sitewatch_proto::{NodeId, NodeTopic, Prefix, SiteId, Topic, topic::HUB_LEVEL};

use super::DeliveryError;
use super::template::{Lang, render};
use crate::alert::{Alert, Engine, Notification, RuleKind, Severity};

/// One MQTT publish to make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publish {
    pub topic: String,
    pub payload: Vec<u8>,
    pub retain: bool,
}

/// Where publish requests go: the hub's MQTT client (`mqtt::Publisher`), a channel, a test.
/// Must not block.
pub trait PublishSink: Send + Sync + 'static {
    fn publish(&self, p: Publish);
}

impl<F: Fn(Publish) + Send + Sync + 'static> PublishSink for F {
    fn publish(&self, p: Publish) {
        self(p)
    }
}

/// `{prefix}/_hub/alerts/events`.
pub fn events_topic(prefix: &Prefix) -> String {
    format!("{prefix}/{HUB_LEVEL}/alerts/events")
}

/// One entry of the retained per-node list.
#[derive(Debug, Serialize)]
pub struct NodeAlert<'a> {
    pub fingerprint: &'a str,
    pub rule: &'a str,
    pub kind: RuleKind,
    pub severity: Severity,
    pub value: Option<f64>,
    pub detail: Option<&'a str>,
    pub since_ms: u64,
    pub acknowledged: bool,
    pub silenced: bool,
}

/// The retained list of a node's firing alerts.
pub fn node_state(prefix: &Prefix, site: &SiteId, node: &NodeId, alerts: &[&Alert]) -> Publish {
    let list: Vec<NodeAlert<'_>> = alerts
        .iter()
        .map(|a| NodeAlert {
            fingerprint: &a.fingerprint,
            rule: &a.rule,
            kind: a.kind,
            severity: a.severity,
            value: a.value,
            detail: a.detail.as_deref(),
            since_ms: a.fired_ms.unwrap_or(a.started_ms),
            acknowledged: a.acked_ms.is_some(),
            silenced: a.silenced_by.is_some() || a.inhibited,
        })
        .collect();
    Publish {
        topic: Topic::node(site, node, NodeTopic::Alerts).format(prefix),
        payload: serde_json::to_vec(&list).unwrap_or_else(|_| b"[]".to_vec()),
        retain: true,
    }
}

/// The retained lists to re-publish after `changes`: one per node they touch.
pub fn state_publishes(prefix: &Prefix, engine: &Engine, changes: &[Alert]) -> Vec<Publish> {
    let nodes: BTreeSet<(&SiteId, &NodeId)> = changes
        .iter()
        .filter_map(|a| a.node.as_ref().map(|n| (&a.site, n)))
        .collect();
    nodes
        .into_iter()
        .map(|(site, node)| node_state(prefix, site, node, &engine.node_alerts(site, node)))
        .collect()
}

/// The event published for one notification.
#[derive(Debug, Serialize)]
struct Event<'a> {
    status: &'static str,
    text: &'a str,
    at_ms: u64,
    alert: &'a Alert,
}

pub fn event(prefix: &Prefix, n: &Notification, lang: Lang) -> Publish {
    let r = render(n, lang);
    let e = Event {
        status: n.kind.as_str(),
        text: &r.text,
        at_ms: n.at_ms,
        alert: &n.alert,
    };
    Publish {
        topic: events_topic(prefix),
        payload: serde_json::to_vec(&e).unwrap_or_default(),
        retain: false,
    }
}

/// A `kind = "mqtt"` notifier.
pub struct MqttSink {
    pub prefix: Prefix,
    pub lang: Lang,
    pub out: Arc<dyn PublishSink>,
}

impl MqttSink {
    pub async fn deliver(&self, n: &Notification) -> Result<(), DeliveryError> {
        self.out.publish(event(&self.prefix, n, self.lang));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::AlertsConfig;
    use crate::notify::template::tests::temperature_alert;

    #[test]
    fn events_and_retained_state() {
        let prefix = Prefix::default();
        let n = temperature_alert();
        let p = event(&prefix, &n, Lang::En);
        assert_eq!(p.topic, "sitewatch/v1/_hub/alerts/events");
        assert!(!p.retain);
        let v: serde_json::Value = serde_json::from_slice(&p.payload).unwrap();
        assert_eq!(v["status"], "firing");
        assert_eq!(v["alert"]["node"], "pi-gate");

        let site = SiteId::new("club-1").unwrap();
        let node = NodeId::new("pi-gate").unwrap();
        let s = node_state(&prefix, &site, &node, &[&n.alert]);
        assert_eq!(s.topic, "sitewatch/v1/club-1/pi-gate/alerts");
        assert!(s.retain);
        let v: serde_json::Value = serde_json::from_slice(&s.payload).unwrap();
        assert_eq!(v[0]["rule"], "temperature");
        assert_eq!(v[0]["severity"], "critical");
        assert_eq!(node_state(&prefix, &site, &node, &[]).payload, b"[]");
    }

    #[test]
    fn state_follows_the_engine() {
        let prefix = Prefix::default();
        let mut e = Engine::new(AlertsConfig::default().compile().unwrap());
        let site = SiteId::new("club").unwrap();
        let node = NodeId::new("pi").unwrap();
        let full = sitewatch_proto::Metrics {
            filesystems: vec![sitewatch_proto::payload::Filesystem {
                mount: "/".into(),
                used_pct: 97.0,
                ..Default::default()
            }],
            ..Default::default()
        };
        let o = e.on_metrics(&site, &node, &full, 0);
        let p = state_publishes(&prefix, &e, &o.changes);
        assert_eq!(p.len(), 1);
        let v: serde_json::Value = serde_json::from_slice(&p[0].payload).unwrap();
        assert_eq!(v[0]["rule"], "disk-full");
        let mut ok = full.clone();
        ok.filesystems[0].used_pct = 10.0;
        let o = e.on_metrics(&site, &node, &ok, 1);
        assert_eq!(state_publishes(&prefix, &e, &o.changes)[0].payload, b"[]");
    }
}
