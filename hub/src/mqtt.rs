//! The hub's MQTT client: subscribes to agent topics, hands each message to ingest, and
//! publishes what the hub owns (`ack`, site status, `_hub/status`).

use std::time::Duration;

use rumqttc::{
    AsyncClient, Event, EventLoop, LastWill, MqttOptions, Packet, QoS, TlsConfiguration, Transport,
};
use sitewatch_proto::{NodeTopic, Prefix, Topic};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::clock::now_ms;

/// A message received from the bus, with the hub's receive time.
#[derive(Debug)]
pub struct Inbound {
    pub topic: String,
    pub payload: bytes::Bytes,
    pub recv_ms: u64,
    /// Set on a retained message replayed by the broker because we subscribed: old news
    /// about the node, not a sign that it is alive now.
    pub retained: bool,
}

/// Where and how the hub connects.
#[derive(Debug, Clone)]
pub struct MqttSettings {
    pub host: String,
    pub port: u16,
    pub client_id: String,
    pub username: Option<String>,
    pub password: Option<String>,
    pub prefix: Prefix,
    /// TLS toward an `mqtts://` broker; `None` for plain MQTT.
    pub tls: Option<TlsConfiguration>,
}

/// Agent topics the hub subscribes to. The hub's own topics (`ack`, `alerts`, site status)
/// are left out so it does not receive its own publications back.
const AGENT_TOPICS: [NodeTopic; 5] = [
    NodeTopic::Status,
    NodeTopic::Info,
    NodeTopic::Heartbeat,
    NodeTopic::Metrics,
    NodeTopic::Scan,
];

/// Cheap handle used by tasks that publish.
#[derive(Clone)]
pub struct Publisher {
    client: AsyncClient,
    prefix: Prefix,
}

impl Publisher {
    pub fn prefix(&self) -> &Prefix {
        &self.prefix
    }

    /// Queues a publish without waiting; when the client queue is full (broker down for
    /// long), the message is dropped and logged — retained state is re-published later.
    pub fn publish(&self, topic: &Topic, retain: bool, payload: impl Into<Vec<u8>>) {
        self.publish_to(&topic.format(&self.prefix), retain, payload);
    }

    /// Publishes to a topic name already formatted (alert events, retained alert lists).
    pub fn publish_to(&self, name: &str, retain: bool, payload: impl Into<Vec<u8>>) {
        if let Err(err) = self
            .client
            .try_publish(name, QoS::AtLeastOnce, retain, payload.into())
        {
            tracing::warn!(topic = %name, cause = %err, "dropped a publish: MQTT client queue full or closed");
        }
    }
}

pub fn connect(settings: &MqttSettings) -> (Publisher, EventLoop) {
    let mut opts = MqttOptions::new(&settings.client_id, &settings.host, settings.port);
    opts.set_keep_alive(Duration::from_secs(10));
    opts.set_clean_session(true);
    opts.set_max_packet_size(4 * 1024 * 1024, 1024 * 1024);
    opts.set_last_will(LastWill::new(
        Topic::HubStatus.format(&settings.prefix),
        "offline",
        QoS::AtLeastOnce,
        true,
    ));
    if let (Some(u), Some(p)) = (&settings.username, &settings.password) {
        opts.set_credentials(u, p);
    }
    if let Some(tls) = &settings.tls {
        opts.set_transport(Transport::tls_with_config(tls.clone()));
    }
    let (client, eventloop) = AsyncClient::new(opts, 4096);
    (
        Publisher {
            client,
            prefix: settings.prefix.clone(),
        },
        eventloop,
    )
}

/// Drives the event loop: (re)subscribes on every CONNACK, forwards publishes to `tx`,
/// backs off on errors. Returns when `shutdown` fires. `subscribed` turns true once every
/// agent topic is subscribed (it opens the embedded broker's gate). `extra` are further
/// filters (Home Assistant's status topic), forwarded to `tx` like the rest.
pub async fn run(
    mut eventloop: EventLoop,
    publisher: Publisher,
    tx: mpsc::Sender<Inbound>,
    (connected, subscribed): (watch::Sender<bool>, watch::Sender<bool>),
    shared_group: Option<String>,
    extra: Vec<String>,
    shutdown: CancellationToken,
) {
    let mut subacks = 0usize;
    let mut filters = filters(&publisher.prefix, shared_group.as_deref());
    filters.extend(extra);
    let mut backoff = Duration::from_millis(500);
    loop {
        let event = tokio::select! {
            _ = shutdown.cancelled() => break,
            ev = eventloop.poll() => ev,
        };
        match event {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                backoff = Duration::from_millis(500);
                tracing::info!("connected to the MQTT broker");
                connected.send_replace(true);
                subacks = 0;
                for f in &filters {
                    if let Err(err) = publisher.client.try_subscribe(f, QoS::AtLeastOnce) {
                        tracing::error!(filter = %f, cause = %err, "cannot subscribe");
                    }
                }
            }
            Ok(Event::Incoming(Packet::Publish(p))) => {
                let msg = Inbound {
                    topic: p.topic,
                    payload: p.payload,
                    recv_ms: now_ms(),
                    retained: p.retain,
                };
                if tx.send(msg).await.is_err() {
                    break;
                }
            }
            Ok(Event::Incoming(Packet::SubAck(_))) => {
                subacks += 1;
                if subacks == filters.len() {
                    tracing::debug!("subscribed to every agent topic");
                    subscribed.send_replace(true);
                    // Only now: agents resend what the hub missed when they see it
                    // (PROTOCOL.md, hub status), which must find the subscriptions in place.
                    publisher.publish(&Topic::HubStatus, true, "online");
                }
            }
            Ok(_) => {}
            Err(err) => {
                connected.send_replace(false);
                if shutdown.is_cancelled() {
                    // The embedded broker closes every connection as the hub stops.
                    tracing::debug!(cause = %err, "MQTT connection closed while stopping");
                    break;
                }
                tracing::warn!(
                    cause = %err, retry_in = ?backoff,
                    "MQTT connection to the broker failed; check that the broker is running and reachable"
                );
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
    }
    // Clean goodbye: mark the hub offline ourselves, since a clean disconnect sends no will.
    publisher.publish(&Topic::HubStatus, true, "offline");
    let _ = publisher.client.try_disconnect();
    let drain = async {
        while let Ok(ev) = eventloop.poll().await {
            if matches!(ev, Event::Outgoing(rumqttc::Outgoing::Disconnect)) {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(2), drain).await;
    connected.send_replace(false);
}

/// The hub's subscriptions. With a shared-subscription group (`$share/GROUP/…`, for a
/// clustered broker such as EMQX), the per-message topics are shared; `status` and `info`
/// stay plain subscriptions because brokers send no retained messages to shared ones, and
/// the hub needs the retained `info` and `offline` of every node when it starts.
pub fn filters(prefix: &Prefix, shared_group: Option<&str>) -> Vec<String> {
    AGENT_TOPICS
        .iter()
        .map(|k| {
            let filter = format!("{prefix}/+/+/{}", k.as_str());
            match (shared_group, k.retained()) {
                (Some(group), false) => format!("$share/{group}/{filter}"),
                _ => filter,
            }
        })
        .collect()
}

impl crate::notify::mqtt::PublishSink for Publisher {
    fn publish(&self, p: crate::notify::mqtt::Publish) {
        self.publish_to(&p.topic, p.retain, p.payload);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_subscriptions_leave_retained_topics_plain() {
        let p = Prefix::default();
        assert_eq!(
            filters(&p, None),
            [
                "sitewatch/v1/+/+/status",
                "sitewatch/v1/+/+/info",
                "sitewatch/v1/+/+/heartbeat",
                "sitewatch/v1/+/+/metrics",
                "sitewatch/v1/+/+/scan"
            ]
        );
        assert_eq!(
            filters(&p, Some("sitewatch")),
            [
                "sitewatch/v1/+/+/status",
                "sitewatch/v1/+/+/info",
                "$share/sitewatch/sitewatch/v1/+/+/heartbeat",
                "$share/sitewatch/sitewatch/v1/+/+/metrics",
                "$share/sitewatch/sitewatch/v1/+/+/scan"
            ]
        );
    }
}
