//! The MQTT connection: client options, and the task that drives rumqttc's event loop.
//!
//! The event loop runs in its own task and is never cancelled mid-poll (a dropped poll can
//! cut a packet in half). It reconnects by itself with exponential backoff and tells the
//! publisher about each successful connect through a [`Notify`].

use std::sync::Arc;
use std::time::Duration;

use rumqttc::{
    ConnectReturnCode, ConnectionError, Event, EventLoop, LastWill, MqttOptions, Outgoing, Packet,
    QoS,
};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::config::AgentConfig;

/// Largest MQTT packet sent or accepted (a LAN scan result is far above rumqttc's 10 KiB).
pub const MAX_PACKET_BYTES: usize = 1024 * 1024;

/// Payload of the status topic and of the last will when the node goes away.
pub const OFFLINE: &str = "offline";

/// Client options: MQTT 3.1.1, client id `sw.{site}.{node}`, clean session, the retained
/// `offline` last will on `status_topic`, credentials when configured.
pub fn options(config: &AgentConfig, client_id: &str, status_topic: &str) -> MqttOptions {
    let mut o = MqttOptions::new(client_id, config.broker.host(), config.broker.port());
    // Validated to 1..=65535 at config load; rumqttc asserts a non-zero keepalive >= 1 s.
    o.set_keep_alive(Duration::from_secs(config.keepalive_s.max(1)));
    o.set_clean_session(true);
    o.set_last_will(LastWill::new(status_topic, OFFLINE, QoS::AtLeastOnce, true));
    o.set_max_packet_size(MAX_PACKET_BYTES, MAX_PACKET_BYTES);
    if let Some(user) = &config.username {
        o.set_credentials(user, config.password.as_deref().unwrap_or_default());
    }
    o
}

/// Exponential backoff between reconnect attempts: 1 s, doubling, at most 30 s.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
}

impl Backoff {
    pub const FIRST: Duration = Duration::from_secs(1);
    pub const MAX: Duration = Duration::from_secs(30);

    pub fn new() -> Self {
        Self { next: Self::FIRST }
    }

    /// The delay to wait now; the following one doubles, up to [`Self::MAX`].
    pub fn next_delay(&mut self) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(Self::MAX);
        d
    }

    /// Back to the first delay, after a successful connect.
    pub fn reset(&mut self) {
        self.next = Self::FIRST;
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new()
    }
}

/// How the event loop task ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// The DISCONNECT the publisher queued was sent: everything before it went out.
    Disconnected,
    /// Shutting down and the broker could not be reached (anymore).
    Unreachable,
}

/// Polls `eventloop` until it has sent the DISCONNECT the publisher asked for, or until
/// `closing` is cancelled and the connection fails. Every successful CONNACK wakes
/// `connected`. Network errors are logged with advice, then retried after a backoff;
/// they never end the task while the agent runs.
pub async fn drive(
    mut eventloop: EventLoop,
    broker: String,
    connected: Arc<Notify>,
    closing: CancellationToken,
) -> Ending {
    let mut backoff = Backoff::new();
    let mut failures: u64 = 0;
    let mut connects: u64 = 0;
    loop {
        match eventloop.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                connects += 1;
                if connects > 1 {
                    info!(%broker, failed_attempts = failures, "reconnected to the MQTT broker");
                } else {
                    info!(%broker, failed_attempts = failures, "connected to the MQTT broker");
                }
                failures = 0;
                backoff.reset();
                debug!(session_present = ack.session_present, "connack");
                connected.notify_one();
            }
            Ok(Event::Outgoing(Outgoing::Disconnect)) => {
                debug!("disconnect sent");
                return Ending::Disconnected;
            }
            Ok(event) => debug!(?event, "mqtt"),
            Err(err) => {
                if closing.is_cancelled() {
                    debug!(cause = %err, "connection ended while shutting down");
                    return Ending::Unreachable;
                }
                failures += 1;
                let delay = backoff.next_delay();
                warn!(
                    %broker,
                    cause = %err,
                    retry_in_s = delay.as_secs(),
                    "MQTT connection failed; {}",
                    advice(&err)
                );
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = closing.cancelled() => {}
                }
            }
        }
    }
}

/// What the operator should check for a given connection error.
fn advice(err: &ConnectionError) -> &'static str {
    match err {
        ConnectionError::ConnectionRefused(
            ConnectReturnCode::BadUserNamePassword | ConnectReturnCode::NotAuthorized,
        ) => "check `username` and `password` (or SITEWATCH_MQTT_USERNAME / _PASSWORD)",
        ConnectionError::ConnectionRefused(ConnectReturnCode::BadClientId) => {
            "the broker refused the client id sw.{site}.{node}; check site and node ids"
        }
        ConnectionError::ConnectionRefused(_) => {
            "the broker refused the connection; check its logs"
        }
        ConnectionError::Io(_) | ConnectionError::NetworkTimeout => {
            "check that the broker runs and that `broker` (or --broker) points to it"
        }
        ConnectionError::MqttState(_) | ConnectionError::FlushTimeout => {
            "the connection to the broker was lost; check the network and the broker's logs"
        }
        _ => "check the broker's logs and that `broker` (or --broker) points to an MQTT broker",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_caps_and_resets() {
        let mut b = Backoff::new();
        let secs: Vec<u64> = (0..7).map(|_| b.next_delay().as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 30, 30]);
        b.reset();
        assert_eq!(b.next_delay(), Backoff::FIRST);
    }

    #[test]
    fn options_follow_the_contract() {
        let mut c = AgentConfig::new("club-1".parse().unwrap());
        c.keepalive_s = 2;
        c.username = Some("agent".into());
        c.password = Some("pw".into());
        let o = options(&c, "sw.club-1.pi", "sitewatch/v1/club-1/pi/status");
        assert_eq!(o.client_id(), "sw.club-1.pi");
        assert_eq!(o.keep_alive(), Duration::from_secs(2));
        assert!(o.clean_session());
        assert_eq!(o.max_packet_size(), MAX_PACKET_BYTES);
        let will = o.last_will().unwrap();
        assert_eq!(will.topic, "sitewatch/v1/club-1/pi/status");
        assert_eq!(&will.message[..], b"offline");
        assert!(will.retain && will.qos == QoS::AtLeastOnce);
        assert!(o.credentials().is_some());
    }
}
