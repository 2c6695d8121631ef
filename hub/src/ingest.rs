//! Ingest: decodes what arrives from the bus, feeds the node-state core and the store
//! writer, and publishes site rollups. Malformed input is counted, logged at most once per
//! node per minute, and dropped; it never stops ingest.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sitewatch_proto::{
    Envelope, Heartbeat, Info, Metrics, NodeId, NodeTopic, PayloadError, Prefix, SiteId, Status,
    Topic, payload::from_json,
};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::clock::now_ms;
use crate::mqtt::{Inbound, Publisher};
use crate::state::{Fleet, KeyMetrics, NodeView, Observation, SiteStatus, Transition};
use crate::store::WriteOp;

/// A decoded agent message.
#[derive(Debug)]
pub enum Decoded {
    Status(Status),
    Info(Box<Info>, String),
    Heartbeat(Heartbeat),
    Metrics(Box<Metrics>, String),
    /// A LAN scan result: stored verbatim, acked, and folded into the device inventory.
    Scan(Box<sitewatch_proto::Scan>, String),
    /// A topic the hub publishes itself (acks, alerts).
    Ignored,
}

#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("payload is not UTF-8")]
    NotUtf8,
    #[error(transparent)]
    Payload(#[from] PayloadError),
}

/// Pure decoding of one payload for a node topic.
pub fn decode(kind: NodeTopic, payload: &[u8]) -> Result<Decoded, DecodeError> {
    let text = || std::str::from_utf8(payload).map_err(|_| DecodeError::NotUtf8);
    Ok(match kind {
        NodeTopic::Status => Decoded::Status(Status::parse(payload)?),
        NodeTopic::Info => Decoded::Info(Box::new(from_json(payload)?), text()?.to_owned()),
        NodeTopic::Heartbeat => Decoded::Heartbeat(from_json(payload)?),
        NodeTopic::Metrics => Decoded::Metrics(Box::new(from_json(payload)?), text()?.to_owned()),
        NodeTopic::Scan => Decoded::Scan(Box::new(from_json(payload)?), text()?.to_owned()),
        NodeTopic::Ack | NodeTopic::Alerts => Decoded::Ignored,
    })
}

/// Counters exposed on `/healthz`.
#[derive(Debug, Default)]
pub struct IngestStats {
    pub received: AtomicU64,
    pub malformed: AtomicU64,
    /// Dropped: no signature while `[security] require-signed` is on.
    pub unsigned: AtomicU64,
    /// Dropped: a signature that is not the MAC of the topic's node key.
    pub bad_signature: AtomicU64,
    /// Dropped: signed, but the topic's node has no credentials.
    pub unknown_node: AtomicU64,
    /// Messages whose `(session, seq)` had arrived already (resends and replays): a
    /// heartbeat is dropped, data goes to the store, which does not store it twice.
    pub duplicates: AtomicU64,
}

/// Everything the ingest loop needs.
pub struct Ingest {
    /// Node keys, for signed telemetry.
    pub registry: Arc<crate::nodes::Registry>,
    /// Drop unsigned agent data messages.
    pub require_signed: bool,
    pub prefix: Prefix,
    pub fleet: Fleet,
    pub writer: mpsc::Sender<WriteOp>,
    pub publisher: Publisher,
    pub snapshot: watch::Sender<Arc<Vec<NodeView>>>,
    pub stats: Arc<IngestStats>,
    pub alerting: crate::alerting::Alerting,
    /// Home Assistant discovery (`[homeassistant]`), when enabled.
    pub homeassistant: Option<crate::homeassistant::Feed>,
}

/// Absent devices are looked for every this many 250 ms ticks (5 s).
const INVENTORY_TICK_EVERY: u64 = 20;

/// Minimum time between two "malformed payload" logs for one node.
const MALFORMED_LOG_EVERY_MS: u64 = 60_000;

impl Ingest {
    pub async fn run(
        mut self,
        mut rx: mpsc::Receiver<Inbound>,
        mut commands: mpsc::Receiver<crate::alerting::Command>,
        shutdown: CancellationToken,
    ) {
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut site_published: HashMap<SiteId, SiteStatus> = HashMap::new();
        let mut malformed_logged: HashMap<String, u64> = HashMap::new();
        let mut seen = crate::replay::SeenMessages::default();
        self.publish_snapshot();
        self.alerting.refresh();
        let mut ticks = 0u64;
        loop {
            let (transitions, ticked) = tokio::select! {
                _ = shutdown.cancelled() => break,
                msg = rx.recv() => {
                    let Some(msg) = msg else { break };
                    self.stats.received.fetch_add(1, Ordering::Relaxed);
                    (self.handle(msg, &mut malformed_logged, &mut seen).await, false)
                }
                Some(cmd) = commands.recv() => {
                    self.alerting.command(cmd, now_ms()).await;
                    (Vec::new(), false)
                }
                _ = tick.tick() => (self.fleet.tick(now_ms()), true),
            };
            let changed = !transitions.is_empty();
            for t in transitions {
                self.record(&t, &mut site_published).await;
            }
            if changed {
                self.publish_snapshot();
            }
            let now = now_ms();
            self.alerting.on_fleet(&mut self.fleet, now).await;
            if ticked {
                self.alerting.tick(now).await;
                ticks += 1;
                if ticks % INVENTORY_TICK_EVERY == 0 {
                    self.alerting.tick_inventory(now).await;
                }
            }
        }
    }

    fn publish_snapshot(&self) {
        self.snapshot.send_replace(Arc::new(self.fleet.snapshot()));
    }

    async fn handle(
        &mut self,
        msg: Inbound,
        malformed_logged: &mut HashMap<String, u64>,
        seen: &mut crate::replay::SeenMessages,
    ) -> Vec<Transition> {
        if let Some(ha) = &self.homeassistant
            && ha.birth(&msg.topic, &msg.payload)
        {
            return Vec::new();
        }
        let (site, node, kind) = match Topic::parse(&self.prefix, &msg.topic) {
            Ok(Topic::Node { site, node, kind }) => (site, node, kind),
            Ok(_) => return Vec::new(),
            Err(err) => {
                self.malformed(&msg.topic, &err.to_string(), msg.recv_ms, malformed_logged);
                return Vec::new();
            }
        };
        let payload = match kind {
            NodeTopic::Info | NodeTopic::Heartbeat | NodeTopic::Metrics | NodeTopic::Scan => {
                match crate::nodes::check_signature(
                    &self.registry,
                    self.require_signed,
                    site.as_str(),
                    node.as_str(),
                    &msg.topic,
                    &msg.payload,
                ) {
                    Ok(body) => body,
                    Err(refusal) => {
                        self.refused(
                            &site,
                            &node,
                            &msg.topic,
                            refusal,
                            msg.recv_ms,
                            malformed_logged,
                        );
                        return Vec::new();
                    }
                }
            }
            _ => std::borrow::Cow::Borrowed(&msg.payload[..]),
        };
        let decoded = match decode(kind, &payload) {
            Ok(d) => d,
            Err(err) => {
                self.malformed(
                    &format!("{site}/{node}"),
                    &format!("{}: {err}", msg.topic),
                    msg.recv_ms,
                    malformed_logged,
                );
                return Vec::new();
            }
        };
        let recv_ms = msg.recv_ms;
        // `status` cannot be signed (plain text for Home Assistant; the broker publishes the
        // will). With signatures required, only a node with credentials may be declared
        // offline by it, and `online` is left to its signed heartbeat.
        if self.require_signed
            && let Decoded::Status(status) = &decoded
            && (*status == Status::Online
                || self.registry.key(site.as_str(), node.as_str()).is_none())
        {
            return Vec::new();
        }
        if let Some(ha) = &mut self.homeassistant {
            ha.observe(&site, &node, &decoded);
        }
        if msg.retained {
            return self.replayed(site, node, decoded, recv_ms).await;
        }
        let id = match &decoded {
            Decoded::Heartbeat(hb) => Some((hb.session.as_str(), hb.seq, true)),
            Decoded::Metrics(m, _) => Some((m.session.as_str(), m.seq, false)),
            Decoded::Scan(s, _) => Some((s.session.as_str(), s.seq, false)),
            _ => None,
        };
        if let Some((session, seq, heartbeat)) = id {
            use crate::replay::Seen;
            match seen.observe(&site, &node, session, seq) {
                Seen::New => {}
                Seen::Duplicate => {
                    self.stats.duplicates.fetch_add(1, Ordering::Relaxed);
                    if heartbeat {
                        return Vec::new();
                    }
                }
                // Heartbeats are never resent: one this old is a replay.
                Seen::TooOld if heartbeat => {
                    self.stats.duplicates.fetch_add(1, Ordering::Relaxed);
                    return Vec::new();
                }
                Seen::TooOld => {}
            }
        }
        let (obs, op) = match decoded {
            Decoded::Status(s) => (Observation::Status(s), None),
            Decoded::Info(info, json) => (
                Observation::Info {
                    hostname: info.hostname.clone(),
                    heartbeat_interval_s: info.heartbeat_interval_s,
                },
                Some(WriteOp::Info {
                    site: site.clone(),
                    node: node.clone(),
                    recv_ms,
                    json,
                }),
            ),
            Decoded::Heartbeat(hb) => (
                Observation::Heartbeat { ts_ms: hb.ts },
                Some(WriteOp::Heartbeat {
                    site: site.clone(),
                    node: node.clone(),
                    recv_ms,
                    heartbeat: hb,
                }),
            ),
            Decoded::Metrics(m, json) => {
                self.alerting.on_metrics(&site, &node, &m, recv_ms).await;
                (
                    Observation::Metrics(KeyMetrics::from_metrics(&m)),
                    Some(WriteOp::Metrics {
                        site: site.clone(),
                        node: node.clone(),
                        recv_ms,
                        metrics: m,
                        json,
                    }),
                )
            }
            Decoded::Scan(scan, json) => {
                self.alerting.on_scan(&site, &node, &scan, recv_ms).await;
                let envelope = Envelope {
                    ts: scan.ts,
                    session: scan.session.clone(),
                    seq: scan.seq,
                    seq_floor: scan.seq_floor,
                };
                (
                    Observation::Activity,
                    Some(WriteOp::Scan {
                        site: site.clone(),
                        node: node.clone(),
                        recv_ms,
                        envelope,
                        json,
                    }),
                )
            }
            Decoded::Ignored => return Vec::new(),
        };
        if let Some(op) = op
            && self.writer.send(op).await.is_err()
        {
            tracing::error!("store writer stopped; data is no longer stored");
        }
        let metrics = matches!(obs, Observation::Metrics(_));
        let t = self.fleet.observe(&site, &node, obs, recv_ms);
        if t.is_none() && metrics {
            // New values for the list view even without a status change.
            self.publish_snapshot();
        }
        t.into_iter().collect()
    }

    /// A retained message replayed on subscribe: store the identity it carries, believe a
    /// retained `offline` (the will fired while the hub was away), ignore claims of life.
    async fn replayed(
        &mut self,
        site: SiteId,
        node: NodeId,
        decoded: Decoded,
        recv_ms: u64,
    ) -> Vec<Transition> {
        match decoded {
            Decoded::Info(info, json) => {
                self.fleet.note_info(
                    &site,
                    &node,
                    info.hostname.clone(),
                    info.heartbeat_interval_s,
                    recv_ms,
                );
                let op = WriteOp::Info {
                    site,
                    node,
                    recv_ms,
                    json,
                };
                if self.writer.send(op).await.is_err() {
                    tracing::error!("store writer stopped; data is no longer stored");
                }
                self.publish_snapshot();
                Vec::new()
            }
            Decoded::Status(Status::Offline) => self
                .fleet
                .observe(&site, &node, Observation::Status(Status::Offline), recv_ms)
                .into_iter()
                .collect(),
            _ => Vec::new(),
        }
    }

    /// Counts a message refused by the signature check; logs it at most once a minute per
    /// node and reason.
    fn refused(
        &self,
        site: &SiteId,
        node: &NodeId,
        topic: &str,
        refusal: crate::nodes::Refusal,
        now: u64,
        logged: &mut HashMap<String, u64>,
    ) {
        use crate::nodes::Refusal;
        let (counter, advice) = match refusal {
            Refusal::Unsigned => (
                &self.stats.unsigned,
                "the agent has no signing-key: give it the lines of `sitewatch-hub node add`, \
                 or set [security] require-signed = false while agents are migrated",
            ),
            Refusal::BadSignature => (
                &self.stats.bad_signature,
                "not signed with this node's key: forged, sent by another node, or the agent \
                 still has a key that was rotated",
            ),
            Refusal::UnknownNode => (
                &self.stats.unknown_node,
                "signed, but this node has no credentials (revoked, or not added with \
                 `sitewatch-hub node add`)",
            ),
        };
        counter.fetch_add(1, Ordering::Relaxed);
        let key = format!("{site}/{node} {}", refusal.as_str());
        let last = logged.get(&key).copied().unwrap_or(0);
        if last == 0 || now.saturating_sub(last) >= MALFORMED_LOG_EVERY_MS {
            logged.insert(key, now);
            tracing::warn!(
                %site, %node, topic, reason = refusal.as_str(), advice,
                "dropped a message that failed the signature check (logged at most once a \
                 minute per node)"
            );
        }
    }

    fn malformed(&self, key: &str, what: &str, now: u64, logged: &mut HashMap<String, u64>) {
        self.stats.malformed.fetch_add(1, Ordering::Relaxed);
        let last = logged.get(key).copied().unwrap_or(0);
        if last == 0 || now.saturating_sub(last) >= MALFORMED_LOG_EVERY_MS {
            logged.insert(key.to_owned(), now);
            tracing::warn!(
                source = key,
                cause = what,
                "dropped a malformed message (logged at most once a minute per node)"
            );
        }
    }

    async fn record(&mut self, t: &Transition, site_published: &mut HashMap<SiteId, SiteStatus>) {
        tracing::info!(
            site = %t.site, node = %t.node, from = t.from.as_str(), to = t.to.as_str(),
            reason = t.reason.as_str(), "node status changed"
        );
        let op = WriteOp::Status {
            site: t.site.clone(),
            node: t.node.clone(),
            at_ms: t.at_ms,
            status: t.to,
            reason: t.reason.as_str(),
        };
        if self.writer.send(op).await.is_err() {
            tracing::error!("store writer stopped; status change not stored");
        }
        if let Some(status) = self.fleet.site_status(&t.site)
            && site_published.get(&t.site) != Some(&status)
        {
            site_published.insert(t.site.clone(), status);
            tracing::info!(site = %t.site, status = status.as_str(), "site status");
            let op = WriteOp::SiteStatus {
                site: t.site.clone(),
                at_ms: t.at_ms,
                status: status.as_str(),
            };
            if self.writer.send(op).await.is_err() {
                tracing::error!("store writer stopped; site status change not stored");
            }
            self.publisher.publish(
                &Topic::SiteStatus {
                    site: t.site.clone(),
                },
                true,
                status.as_str(),
            );
        }
    }
}

/// Restores the fleet from storage rows (start-up).
pub fn restore_fleet(fleet: &mut Fleet, rows: Vec<crate::store::NodeRow>, now: u64) {
    for row in rows {
        let (Ok(site), Ok(node)) = (SiteId::new(row.site.clone()), NodeId::new(row.node.clone()))
        else {
            tracing::warn!(site = %row.site, node = %row.node, "skipping a stored node with an invalid id");
            continue;
        };
        let info: Option<Info> = row
            .info_json
            .as_deref()
            .and_then(|j| serde_json::from_str(j).ok());
        let latest = row
            .latest_metrics_json
            .as_deref()
            .and_then(|j| serde_json::from_str::<Metrics>(j).ok())
            .map(|m| KeyMetrics::from_metrics(&m));
        fleet.restore(
            site,
            node,
            crate::state::NodeStatus::parse(&row.status),
            row.status_since_ms.unwrap_or(now),
            row.last_seen_ms,
            info.as_ref().map(|i| i.hostname.clone()),
            info.as_ref().map(|i| i.heartbeat_interval_s),
            latest,
            now,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_rejects_garbage_without_panicking() {
        assert!(decode(NodeTopic::Metrics, b"{").is_err());
        assert!(decode(NodeTopic::Status, b"maybe").is_err());
        assert!(matches!(
            decode(NodeTopic::Status, b"offline"),
            Ok(Decoded::Status(Status::Offline))
        ));
        assert!(decode(NodeTopic::Scan, b"anything").is_err());
        assert!(matches!(
            decode(
                NodeTopic::Scan,
                br#"{"ts":1,"session":"s","seq":3,"networks":[],"duration_ms":5,"hosts":[]}"#
            ),
            Ok(Decoded::Scan(s, _)) if s.seq == 3
        ));
        assert!(matches!(
            decode(NodeTopic::Ack, b"anything"),
            Ok(Decoded::Ignored)
        ));
    }
}
