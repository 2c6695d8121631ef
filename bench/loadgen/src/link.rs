//! One simulated agent's MQTT connection: client options like the agent's, and the task
//! that drives rumqttc's event loop (never cancelled mid-poll: a dropped poll can cut a
//! packet in half) and reports what the agent needs.

use std::time::Duration;

use rumqttc::{Event, EventLoop, LastWill, MqttOptions, Outgoing, Packet, QoS};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use crate::backoff::Backoff;
use crate::stats::Stats;

/// Largest MQTT packet sent or accepted (as the agent; bigger payloads with --extra-series).
pub const MAX_PACKET_BYTES: usize = 1024 * 1024;

/// Payload of the status topic and the last will.
pub const OFFLINE: &str = "offline";

/// Where and how a simulated agent connects.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
    pub keepalive: Duration,
}

/// MQTT 3.1.1 options: clean session, keepalive, the retained `offline` will on `status`.
pub fn options(endpoint: &Endpoint, client_id: &str, status_topic: &str) -> MqttOptions {
    let mut o = MqttOptions::new(client_id, endpoint.host.clone(), endpoint.port);
    o.set_keep_alive(endpoint.keepalive.max(Duration::from_secs(1)));
    o.set_clean_session(true);
    o.set_last_will(LastWill::new(status_topic, OFFLINE, QoS::AtLeastOnce, true));
    o.set_max_packet_size(MAX_PACKET_BYTES, MAX_PACKET_BYTES);
    o
}

/// What the event loop reports, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkEvent {
    /// A CONNACK (clean session: nothing of the previous connection survives).
    Connected,
    /// The connection failed; a reconnect follows after a backoff.
    Lost,
    /// The broker acknowledged one QoS 1 publish.
    PubAck,
    /// A message on the `ack` subscription.
    Message(Vec<u8>),
}

/// Polls `eventloop` until the DISCONNECT the agent queued has been sent, or until `closing`
/// is cancelled and the connection fails. Reconnects after `backoff` delays meanwhile.
pub async fn drive(
    mut eventloop: EventLoop,
    events: mpsc::Sender<LinkEvent>,
    closing: CancellationToken,
    mut backoff: Backoff,
    stats: std::sync::Arc<Stats>,
) {
    loop {
        let event = match eventloop.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                backoff.reset();
                stats.connack();
                LinkEvent::Connected
            }
            Ok(Event::Incoming(Packet::PubAck(_))) => LinkEvent::PubAck,
            Ok(Event::Incoming(Packet::Publish(p))) => LinkEvent::Message(p.payload.to_vec()),
            Ok(Event::Outgoing(Outgoing::Disconnect)) => return,
            Ok(_) => continue,
            Err(err) => {
                if closing.is_cancelled() {
                    return;
                }
                stats.connection_failed();
                let delay = backoff.next_delay();
                debug!(cause = %err, retry_in_ms = delay.as_millis() as u64, "connection failed");
                let _ = events.send(LinkEvent::Lost).await;
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = closing.cancelled() => return,
                }
                // Requests queued for the dead connection must not overtake the announcement
                // of the next one: rumqttc's pending list is cleared by a clean CONNACK.
                eventloop.clean();
                continue;
            }
        };
        // While the agent closes it no longer reads events; keep polling until the
        // DISCONNECT is out.
        let _ = events.send(event).await;
    }
}
