//! What an operator can tune about the broker, with the defaults a small fleet needs.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use crate::error::BrokerError;

/// Largest accepted `max_connections`.
///
/// rumqttd preallocates its connection tables for its own limit (ours plus a margin), so an
/// absurd value would allocate gigabytes before the first client arrives.
pub const MAX_CONNECTIONS_LIMIT: usize = 1_000_000;

/// Smallest accepted `max_payload_bytes`: below this even a CONNECT with a will or a
/// subscription list may not fit.
pub const MIN_PAYLOAD_BYTES: usize = 1024;

/// Settings of the embedded broker and of the guard in front of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerConfig {
    /// Public address MQTT clients connect to. Port 0 picks a free port (tests); the real
    /// address is `RunningBroker::local_addr()`. rumqttd itself only listens on 127.0.0.1.
    pub listen: SocketAddr,
    /// Most client connections open at once (including ones still sending CONNECT). The
    /// guard enforces it and answers CONNACK 3 "server unavailable" beyond it, because
    /// rumqttd's own limit poisons a lock when hit twice by the same client id.
    pub max_connections: usize,
    /// Largest MQTT packet a client may send, in bytes (rumqttd's `max_payload_size`). 1 MiB
    /// leaves room for LAN scan results of a /24 and Home Assistant discovery documents.
    pub max_payload_bytes: usize,
    /// How long a new connection may take to send its complete CONNECT before it is closed;
    /// bounds what idle or slow sockets (port scanners, half-open links) cost.
    pub connect_timeout: Duration,
    /// Most packets rumqttd reads from one connection per batch (rumqttd's
    /// `max_inflight_count`); bounds one client's share of a router turn.
    pub max_inflight: usize,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            listen: SocketAddr::from((Ipv4Addr::UNSPECIFIED, 1883)),
            max_connections: 10_000,
            max_payload_bytes: 1024 * 1024,
            connect_timeout: Duration::from_secs(10),
            max_inflight: 100,
        }
    }
}

impl BrokerConfig {
    /// Checks every value is usable; the error says which one is not and why.
    pub fn validate(&self) -> Result<(), BrokerError> {
        let invalid = |msg: String| Err(BrokerError::InvalidConfig(msg));
        if !(1..=MAX_CONNECTIONS_LIMIT).contains(&self.max_connections) {
            return invalid(format!(
                "max_connections is {}, it must be between 1 and {MAX_CONNECTIONS_LIMIT}",
                self.max_connections
            ));
        }
        // 268,435,455 is the largest size MQTT's remaining length can express.
        if !(MIN_PAYLOAD_BYTES..=268_435_455).contains(&self.max_payload_bytes) {
            return invalid(format!(
                "max_payload_bytes is {}, it must be between {MIN_PAYLOAD_BYTES} and 268435455",
                self.max_payload_bytes
            ));
        }
        if self.connect_timeout.is_zero() {
            return invalid("connect_timeout must be longer than zero".to_owned());
        }
        if self.max_inflight == 0 || self.max_inflight > usize::from(u16::MAX) {
            return invalid(format!(
                "max_inflight is {}, it must be between 1 and 65535",
                self.max_inflight
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        let config = BrokerConfig::default();
        assert_eq!(config.listen.to_string(), "0.0.0.0:1883");
        assert!(config.validate().is_ok());
    }

    #[test]
    fn out_of_range_values_are_named() {
        let cases = [
            (
                BrokerConfig {
                    max_connections: 0,
                    ..Default::default()
                },
                "max_connections",
            ),
            (
                BrokerConfig {
                    max_payload_bytes: 10,
                    ..Default::default()
                },
                "max_payload_bytes",
            ),
            (
                BrokerConfig {
                    connect_timeout: Duration::ZERO,
                    ..Default::default()
                },
                "connect_timeout",
            ),
            (
                BrokerConfig {
                    max_inflight: 0,
                    ..Default::default()
                },
                "max_inflight",
            ),
        ];
        for (config, field) in cases {
            let err = config.validate().unwrap_err().to_string();
            assert!(err.contains(field), "{err}");
        }
    }
}
