//! The hub's own health in `/metrics`: ingest counters, queues, storage, notifiers,
//! alerts and the embedded broker's guard. Pure: [`HubHealth`] is read by the handler.

use sitewatch_broker::GuardStats;
use sitewatch_proto::StorageState;

use super::exposition::{Families, Kind};
use crate::notify::NotifierStats;

/// Everything the hub part of a scrape shows, read at scrape time.
#[derive(Debug, Clone, Default)]
pub struct HubHealth {
    pub mqtt_connected: bool,
    /// `IngestStats`, see `crate::ingest`.
    pub received: u64,
    pub malformed: u64,
    pub unsigned: u64,
    pub bad_signature: u64,
    pub unknown_node: u64,
    pub duplicates: u64,
    /// `(queue, messages waiting, capacity)` of the bounded channels inside the hub.
    pub queues: Vec<(&'static str, u64, u64)>,
    pub storage: Option<StorageState>,
    pub failed_batches: u64,
    /// Database file and its write-ahead log.
    pub database_bytes: u64,
    pub wal_bytes: u64,
    pub notifiers: Vec<NotifierStats>,
    /// Firing alerts per severity.
    pub alerts_firing: Vec<(&'static str, u64)>,
    /// Embedded broker only: whether the self-probe connects, and the guard's counters.
    pub broker: Option<(bool, GuardStats)>,
}

const STORAGE_STATES: [StorageState; 5] = [
    StorageState::Ok,
    StorageState::DiskFull,
    StorageState::Locked,
    StorageState::Corrupt,
    StorageState::Error,
];

pub fn render(out: &mut Families, h: &HubHealth) {
    out.sample(
        "sitewatch_hub_info",
        Kind::Gauge,
        "Always 1; the label is the hub's version.",
        &[("version", env!("CARGO_PKG_VERSION"))],
        1.0,
    );
    out.sample(
        "sitewatch_hub_mqtt_connected",
        Kind::Gauge,
        "1 while the hub's MQTT client is connected to the broker.",
        &[],
        f64::from(u8::from(h.mqtt_connected)),
    );
    let counter = |out: &mut Families, name: &str, help: &str, value: u64| {
        out.sample(name, Kind::Counter, help, &[], value as f64);
    };
    counter(
        out,
        "sitewatch_hub_messages_received_total",
        "Messages the hub's MQTT client received from the bus (rate() of it is the ingest rate).",
        h.received,
    );
    for (reason, n) in [
        ("malformed", h.malformed),
        ("unsigned", h.unsigned),
        ("bad_signature", h.bad_signature),
        ("unknown_node", h.unknown_node),
    ] {
        out.sample(
            "sitewatch_hub_messages_dropped_total",
            Kind::Counter,
            "Messages ingest dropped: malformed (topic or payload), unsigned (while \
             signatures are required), bad_signature, unknown_node (signed, no credentials).",
            &[("reason", reason)],
            n as f64,
        );
    }
    counter(
        out,
        "sitewatch_hub_messages_duplicate_total",
        "Messages whose (session, seq) had arrived already: resent data (stored once) and \
         replayed heartbeats (dropped).",
        h.duplicates,
    );
    for (queue, depth, capacity) in &h.queues {
        out.sample(
            "sitewatch_hub_queue_depth",
            Kind::Gauge,
            "Messages waiting in a queue inside the hub: ingest (from MQTT), store (to the \
             SQLite writer). Near capacity means the hub cannot keep up.",
            &[("queue", queue)],
            *depth as f64,
        );
        out.sample(
            "sitewatch_hub_queue_capacity",
            Kind::Gauge,
            "Capacity of the queue; a full queue slows the MQTT client down (backpressure).",
            &[("queue", queue)],
            *capacity as f64,
        );
    }
    if let Some(state) = h.storage {
        for s in STORAGE_STATES {
            out.sample(
                "sitewatch_hub_storage_state",
                Kind::Gauge,
                "1 for the database's state (ok, disk_full, locked, corrupt, error), 0 for \
                 the others.",
                &[("state", s.as_str())],
                f64::from(u8::from(s == state)),
            );
        }
    }
    counter(
        out,
        "sitewatch_hub_storage_failed_batches_total",
        "Write batches that could not be stored (not acked: agents resend them).",
        h.failed_batches,
    );
    out.sample(
        "sitewatch_hub_database_bytes",
        Kind::Gauge,
        "Size of the SQLite database file plus its write-ahead log.",
        &[],
        (h.database_bytes + h.wal_bytes) as f64,
    );
    out.sample(
        "sitewatch_hub_database_wal_bytes",
        Kind::Gauge,
        "Size of the SQLite write-ahead log.",
        &[],
        h.wal_bytes as f64,
    );
    for n in &h.notifiers {
        let labels = [("notifier", n.name.as_str()), ("kind", n.kind)];
        for (name, help, value) in [
            (
                "sitewatch_hub_notifications_sent_total",
                "Notifications the notifier delivered.",
                n.sent,
            ),
            (
                "sitewatch_hub_notifications_failed_total",
                "Notifications the notifier gave up on (every attempt failed, or refused).",
                n.failed,
            ),
            (
                "sitewatch_hub_notifications_retries_total",
                "Delivery attempts the notifier retried.",
                n.retries,
            ),
            (
                "sitewatch_hub_notifications_dropped_total",
                "Notifications dropped because the notifier's queue was full.",
                n.dropped,
            ),
        ] {
            out.sample(name, Kind::Counter, help, &labels, value as f64);
        }
    }
    for (severity, n) in &h.alerts_firing {
        out.sample(
            "sitewatch_alerts_firing",
            Kind::Gauge,
            "Alerts firing now, by severity (silenced ones included).",
            &[("severity", severity)],
            *n as f64,
        );
    }
    if let Some((accepting, g)) = &h.broker {
        render_broker(out, *accepting, g);
    }
}

fn render_broker(out: &mut Families, accepting: bool, g: &GuardStats) {
    out.sample(
        "sitewatch_broker_accepting",
        Kind::Gauge,
        "1 while the hub's self-probe can connect to the embedded broker.",
        &[],
        f64::from(u8::from(accepting)),
    );
    out.sample(
        "sitewatch_broker_connections_active",
        Kind::Gauge,
        "MQTT connections the embedded broker's guard relays now.",
        &[],
        g.active as f64,
    );
    out.sample(
        "sitewatch_broker_connections_relayed_total",
        Kind::Counter,
        "MQTT connections whose CONNECT passed every check of the guard.",
        &[],
        g.relayed as f64,
    );
    for (reason, n) in [
        ("client_id", g.rejected_client_id),
        ("protocol_version", g.rejected_protocol_version),
        ("server_full", g.rejected_server_full),
        ("malformed", g.rejected_malformed),
        ("too_large", g.rejected_too_large),
        ("connect_timeout", g.connect_timeouts),
        ("closed_before_connect", g.closed_before_connect),
        ("upstream_failure", g.upstream_failures),
        ("bad_credentials", g.rejected_bad_credentials),
        ("not_authorized", g.rejected_not_authorized),
        ("auth_unavailable", g.auth_unavailable),
        ("tls_handshake_failure", g.tls_handshake_failures),
        ("tls_handshake_timeout", g.tls_handshake_timeouts),
    ] {
        out.sample(
            "sitewatch_broker_connections_rejected_total",
            Kind::Counter,
            "Connections the embedded broker's guard turned away before relaying them, by \
             reason (docs/BROKER.md).",
            &[("reason", reason)],
            n as f64,
        );
    }
    for (reason, n) in [
        ("too_large", g.disconnected_too_large),
        ("malformed", g.disconnected_malformed),
        ("publish_denied", g.disconnected_publish_denied),
        ("subscribe_denied", g.disconnected_subscribe_denied),
        ("rate", g.disconnected_rate),
        ("revoked", g.disconnected_revoked),
    ] {
        out.sample(
            "sitewatch_broker_clients_disconnected_total",
            Kind::Counter,
            "Connected clients the guard cut off, by reason: a broken rule, or credentials \
             revoked or rotated while connected.",
            &[("reason", reason)],
            n as f64,
        );
    }
    out.sample(
        "sitewatch_broker_publishes_throttled_total",
        Kind::Counter,
        "Publishes held back until the client's rate allowed them.",
        &[],
        g.publishes_throttled as f64,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hub_health_lists_counters_queues_storage_and_notifiers() {
        let mut f = Families::new();
        render(
            &mut f,
            &HubHealth {
                mqtt_connected: true,
                received: 42,
                malformed: 3,
                queues: vec![("ingest", 5, 8192)],
                storage: Some(StorageState::DiskFull),
                database_bytes: 1000,
                wal_bytes: 24,
                notifiers: vec![NotifierStats {
                    name: "ops \"mail\"".into(),
                    kind: "email",
                    sent: 1,
                    failed: 2,
                    retries: 3,
                    dropped: 4,
                }],
                alerts_firing: vec![("critical", 1)],
                broker: Some((true, GuardStats::default())),
                ..Default::default()
            },
        );
        let text = f.finish();
        for line in [
            "sitewatch_hub_mqtt_connected 1\n",
            "sitewatch_hub_messages_received_total 42\n",
            "sitewatch_hub_messages_dropped_total{reason=\"malformed\"} 3\n",
            "sitewatch_hub_queue_depth{queue=\"ingest\"} 5\n",
            "sitewatch_hub_storage_state{state=\"disk_full\"} 1\n",
            "sitewatch_hub_storage_state{state=\"ok\"} 0\n",
            "sitewatch_hub_database_bytes 1024\n",
            "sitewatch_hub_notifications_failed_total{notifier=\"ops \\\"mail\\\"\",kind=\"email\"} 2\n",
            "sitewatch_alerts_firing{severity=\"critical\"} 1\n",
            "sitewatch_broker_connections_rejected_total{reason=\"bad_credentials\"} 0\n",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
    }

    #[test]
    fn without_embedded_broker_there_are_no_broker_families() {
        let mut f = Families::new();
        render(&mut f, &HubHealth::default());
        assert!(!f.finish().contains("sitewatch_broker_"));
    }
}
