//! The MQTT connection: client options, and the task that drives rumqttc's event loop.
//!
//! The event loop runs in its own task and is never cancelled mid-poll (a dropped poll can
//! cut a packet in half). It reconnects by itself after a jittered backoff and reports what
//! the publisher needs as [`LinkEvent`]s: each CONNACK, each lost connection, each PUBACK
//! (the publisher's in-flight window) and each message received (the hub's `ack`).

use std::time::Duration;

use bytes::Bytes;
use rumqttc::{
    ConnectReturnCode, ConnectionError, Event, EventLoop, LastWill, MqttOptions, Outgoing, Packet,
    QoS, TlsConfiguration, Transport,
};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

pub use crate::backoff::Backoff;
use crate::config::AgentConfig;
use crate::tls::{self, TlsError};

/// Largest MQTT packet sent or accepted (a LAN scan result is far above rumqttc's 10 KiB).
pub const MAX_PACKET_BYTES: usize = 1024 * 1024;

/// Payload of the status topic and of the last will when the node goes away.
pub const OFFLINE: &str = "offline";

/// Client options: MQTT 3.1.1, client id `sw.{site}.{node}`, clean session, the retained
/// `offline` last will on `status_topic`, credentials when configured, TLS for `mqtts://`.
pub fn options(
    config: &AgentConfig,
    client_id: &str,
    status_topic: &str,
) -> Result<MqttOptions, TlsError> {
    let mut o = MqttOptions::new(client_id, config.broker.host(), config.broker.port());
    // Validated to 1..=65535 at config load; rumqttc asserts a non-zero keepalive >= 1 s.
    o.set_keep_alive(Duration::from_secs(config.keepalive_s.max(1)));
    o.set_clean_session(true);
    o.set_last_will(LastWill::new(status_topic, OFFLINE, QoS::AtLeastOnce, true));
    o.set_max_packet_size(MAX_PACKET_BYTES, MAX_PACKET_BYTES);
    if let Some(user) = &config.username {
        o.set_credentials(user, config.password.as_deref().unwrap_or_default());
    }
    if config.broker.is_tls() {
        let tls = tls::client_config(&config.tls)?;
        o.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(tls)));
    }
    Ok(o)
}

/// What the event loop reports to the publisher, in the order it happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkEvent {
    /// A CONNACK: the session is new (clean session), nothing queued before survives.
    Connected,
    /// The connection failed; rumqttc dropped whatever it had not delivered.
    Lost,
    /// The broker acknowledged one QoS 1 publish.
    PubAck,
    /// A message on a subscribed topic; `retained` when the broker sent it from its store
    /// because of a new subscription, not because somebody just published it.
    Message {
        topic: String,
        payload: Bytes,
        retained: bool,
    },
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
/// `closing` is cancelled and the connection fails. Events go to `events`; once its receiver
/// is gone they are dropped. Network errors are logged with advice, then retried after
/// `backoff`; they never end the task while the agent runs.
pub async fn drive(
    mut eventloop: EventLoop,
    broker: String,
    events: mpsc::Sender<LinkEvent>,
    closing: CancellationToken,
    mut backoff: Backoff,
) -> Ending {
    let mut failures: u64 = 0;
    let mut connects: u64 = 0;
    loop {
        let event = match eventloop.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                connects += 1;
                let what = if connects > 1 {
                    "reconnected to the MQTT broker"
                } else {
                    "connected to the MQTT broker"
                };
                info!(%broker, failed_attempts = failures, "{what}");
                debug!(session_present = ack.session_present, "connack");
                failures = 0;
                backoff.reset();
                LinkEvent::Connected
            }
            Ok(Event::Incoming(Packet::PubAck(_))) => LinkEvent::PubAck,
            Ok(Event::Incoming(Packet::Publish(p))) => LinkEvent::Message {
                topic: p.topic,
                payload: p.payload,
                retained: p.retain,
            },
            Ok(Event::Outgoing(Outgoing::Disconnect)) => {
                debug!("disconnect sent");
                return Ending::Disconnected;
            }
            Ok(event) => {
                debug!(?event, "mqtt");
                continue;
            }
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
                    retry_in_ms = delay.as_millis() as u64,
                    "MQTT connection failed; {}",
                    advice(&err)
                );
                // The publisher stops queueing once it sees `Lost`.
                let _ = events.send(LinkEvent::Lost).await;
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = closing.cancelled() => {}
                }
                if !closing.is_cancelled() {
                    // Requests queued before the publisher saw `Lost` belong to the dead
                    // connection: move them to rumqttc's pending list, which the next
                    // (clean-session) CONNACK clears, so nothing overtakes the announcement.
                    eventloop.clean();
                }
                continue;
            }
        };
        // A publisher that went away (shutting down, reconnecting) no longer needs events.
        let _ = events.send(event).await;
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
        ConnectionError::Tls(_) => {
            "TLS handshake failed: check that `tls.ca-file` holds the CA that signed the \
             broker's certificate, that the certificate names the host in `broker`, and \
             `tls.client-cert` / `tls.client-key` if the broker requires a client certificate"
        }
        ConnectionError::Io(_) | ConnectionError::NetworkTimeout => {
            "check that the broker runs and that `broker` (or --broker) points to it"
        }
        // With TLS 1.3 the broker checks the client certificate after the client finished
        // its handshake, so a refusal arrives as an alert on the first read.
        ConnectionError::MqttState(e) if e.to_string().contains("fatal alert") => {
            "the broker ended the TLS session with an alert: if it requires client \
             certificates, set `tls.client-cert` and `tls.client-key` to a certificate signed \
             by a CA it trusts (and check the broker's log)"
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
    fn options_follow_the_contract() {
        let mut c = AgentConfig::new("club-1".parse().unwrap());
        c.keepalive_s = 2;
        c.username = Some("agent".into());
        c.password = Some("pw".into());
        let o = options(&c, "sw.club-1.pi", "sitewatch/v1/club-1/pi/status").unwrap();
        assert_eq!(o.client_id(), "sw.club-1.pi");
        assert_eq!(o.keep_alive(), Duration::from_secs(2));
        assert!(o.clean_session());
        assert_eq!(o.max_packet_size(), MAX_PACKET_BYTES);
        let will = o.last_will().unwrap();
        assert_eq!(will.topic, "sitewatch/v1/club-1/pi/status");
        assert_eq!(&will.message[..], b"offline");
        assert!(will.retain && will.qos == QoS::AtLeastOnce);
        assert!(o.credentials().is_some());
        assert!(matches!(o.transport(), Transport::Tcp));
    }

    #[test]
    fn mqtts_uses_tls_and_a_bad_ca_file_is_an_error() {
        let mut c = AgentConfig::new("club-1".parse().unwrap());
        c.broker = "mqtts://hub.lan".parse().unwrap();
        c.tls.ca_file = Some("/nonexistent/ca.pem".into());
        let e = options(&c, "sw.club-1.pi", "t").unwrap_err().to_string();
        assert!(e.contains("/nonexistent/ca.pem"), "{e}");
    }
}
