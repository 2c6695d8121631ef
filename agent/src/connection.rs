//! One MQTT connection as the publisher sees it: the rumqttc client, the task driving its
//! event loop, and the accounting that keeps rumqttc's queue short.
//!
//! Only QoS 1 publishes are sent, and at most [`WINDOW`] of them wait for their PUBACK at
//! any time, so the request queue ([`REQUEST_QUEUE`]) never fills and nothing is dropped by
//! rumqttc; the outbox keeps the rest. Nothing is queued while disconnected (rumqttc would
//! throw it away at the next clean-session CONNACK anyway).

use std::time::Duration;

use rumqttc::{AsyncClient, ClientError, MqttOptions, QoS};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::backoff::Backoff;
use crate::config::AgentConfig;
use crate::link::{self, Ending, LinkEvent};
use crate::tls::TlsError;

/// Capacity of rumqttc's request queue.
pub const REQUEST_QUEUE: usize = 64;

/// Most QoS 1 publishes awaiting their PUBACK; the outbox waits beyond this.
pub const WINDOW: usize = 16;

/// Events buffered between the event loop task and the publisher.
const EVENT_QUEUE: usize = 256;

/// A connection (or the attempts to make one) to the configured broker.
pub struct Connection {
    client: AsyncClient,
    driver: JoinHandle<Ending>,
    events: mpsc::Receiver<LinkEvent>,
    closing: CancellationToken,
    connected: bool,
    in_flight: usize,
}

impl Connection {
    /// Starts connecting to `config.broker` in a new task. Fails only when the TLS files
    /// cannot be used.
    pub fn open(
        config: &AgentConfig,
        client_id: &str,
        status_topic: &str,
    ) -> Result<Self, TlsError> {
        Ok(Self::start(
            link::options(config, client_id, status_topic)?,
            config,
        ))
    }

    /// Starts connecting with prepared `options` (from [`link::options`]).
    pub fn start(options: MqttOptions, config: &AgentConfig) -> Self {
        let (client, eventloop) = AsyncClient::new(options, REQUEST_QUEUE);
        let (tx, events) = mpsc::channel(EVENT_QUEUE);
        let closing = CancellationToken::new();
        let backoff = Backoff::new(Duration::from_secs(config.reconnect_max_s));
        let driver = tokio::spawn(link::drive(
            eventloop,
            config.broker.to_string(),
            tx,
            closing.clone(),
            backoff,
        ));
        Self {
            client,
            driver,
            events,
            closing,
            connected: false,
            in_flight: 0,
        }
    }

    /// The next event; `None` when the event loop task has ended unexpectedly.
    pub async fn next_event(&mut self) -> Option<LinkEvent> {
        let event = self.events.recv().await?;
        match &event {
            LinkEvent::Connected => {
                self.connected = true;
                self.in_flight = 0;
            }
            LinkEvent::Lost => {
                self.connected = false;
                self.in_flight = 0;
            }
            LinkEvent::PubAck => self.in_flight = self.in_flight.saturating_sub(1),
            LinkEvent::Message { .. } => {}
        }
        Some(event)
    }

    /// Why the event loop task ended, once [`next_event`](Self::next_event) returned `None`.
    pub async fn failure(&mut self) -> String {
        match (&mut self.driver).await {
            Ok(ending) => format!("it ended ({ending:?})"),
            Err(err) => err.to_string(),
        }
    }

    pub fn is_connected(&self) -> bool {
        self.connected
    }

    /// Whether another data message may be queued now.
    pub fn has_room(&self) -> bool {
        self.connected && self.in_flight < WINDOW
    }

    /// Queues a QoS 1 publish without waiting.
    pub fn publish(
        &mut self,
        topic: &str,
        retain: bool,
        payload: Vec<u8>,
    ) -> Result<(), ClientError> {
        self.client
            .try_publish(topic, QoS::AtLeastOnce, retain, payload)?;
        self.in_flight += 1;
        Ok(())
    }

    /// Subscribes (QoS 1) to `topic`.
    pub fn subscribe(&mut self, topic: &str) {
        if let Err(err) = self.client.try_subscribe(topic, QoS::AtLeastOnce) {
            warn!(topic, cause = %err, "cannot subscribe; acks will be missed until reconnect");
        }
    }

    /// Ends the connection cleanly: publishes `goodbye` (retained, e.g. `offline` on the
    /// status topic) when given, then DISCONNECT, so the broker discards the last will.
    /// Waits at most `grace` for the event loop to send it all; the connection is unusable
    /// afterwards.
    pub async fn close(&mut self, goodbye: Option<(&str, &str)>, grace: Duration) -> Ending {
        self.connected = false;
        self.closing.cancel();
        // The event loop must not block on a full event queue nobody reads any more.
        self.events.close();
        if let Some((topic, payload)) = goodbye
            && let Err(err) = self
                .client
                .try_publish(topic, QoS::AtLeastOnce, true, payload)
        {
            debug!(cause = %err, "could not queue the goodbye");
        }
        if let Err(err) = self.client.try_disconnect() {
            debug!(cause = %err, "could not queue the disconnect");
        }
        match tokio::time::timeout(grace, &mut self.driver).await {
            Ok(Ok(ending)) => ending,
            Ok(Err(err)) => {
                warn!(cause = %err, "MQTT event loop task failed while closing");
                Ending::Unreachable
            }
            Err(_) => {
                self.driver.abort();
                Ending::Unreachable
            }
        }
    }
}

/// `payload` (a JSON object) with `"seq_floor":floor` added as its first key. Stored
/// payloads never contain the key, so it appears once.
pub fn with_seq_floor(payload: &[u8], floor: u64) -> Vec<u8> {
    let field = format!("\"seq_floor\":{floor}");
    let Some(rest) = payload.strip_prefix(b"{") else {
        return payload.to_vec();
    };
    let mut out = Vec::with_capacity(payload.len() + field.len() + 1);
    out.push(b'{');
    out.extend_from_slice(field.as_bytes());
    if rest.first() != Some(&b'}') {
        out.push(b',');
    }
    out.extend_from_slice(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use sitewatch_proto::Metrics;

    #[test]
    fn seq_floor_is_spliced_into_the_json_object() {
        let m = Metrics {
            ts: 5,
            session: "abc".into(),
            seq: 9,
            ..Default::default()
        };
        let json = serde_json::to_vec(&m).unwrap();
        let back: Metrics = serde_json::from_slice(&with_seq_floor(&json, 7)).unwrap();
        assert_eq!(back.seq_floor, Some(7));
        assert_eq!(
            Metrics {
                seq_floor: None,
                ..back
            },
            m
        );
        assert_eq!(with_seq_floor(b"{}", 0), b"{\"seq_floor\":0}");
        assert_eq!(
            with_seq_floor(b"oops", 1),
            b"oops",
            "not an object: unchanged"
        );
    }
}
