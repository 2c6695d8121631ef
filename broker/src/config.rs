//! What an operator can tune about the broker, with the defaults a small fleet needs.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use sitewatch_proto::Prefix;

use crate::error::BrokerError;

/// Largest accepted `max_connections`.
///
/// rumqttd preallocates its connection tables for its own limit (ours plus a margin), so an
/// absurd value would allocate gigabytes before the first client arrives.
pub const MAX_CONNECTIONS_LIMIT: usize = 1_000_000;

/// Smallest accepted `max_payload_bytes`: below this even a CONNECT with a will or a
/// subscription list may not fit.
pub const MIN_PAYLOAD_BYTES: usize = 1024;

/// Largest accepted `auth_concurrency`.
pub const MAX_AUTH_CONCURRENCY: usize = 256;

/// Settings of the embedded broker and of the guard in front of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerConfig {
    /// Public plain-TCP address MQTT clients connect to, if any. Port 0 picks a free port
    /// (tests); the real address is `RunningBroker::local_addr()`. rumqttd itself only
    /// listens on 127.0.0.1.
    pub listen: Option<SocketAddr>,
    /// Public MQTT-over-TLS address, if any (usually port 8883); needs `tls`. TLS is
    /// terminated by the guard, never by rumqttd (whose TLS listener handshakes inside its
    /// accept loop, so one idle socket stalls every new client).
    pub tls_listen: Option<SocketAddr>,
    /// Certificate, key and optional client CA of the TLS listener.
    pub tls: Option<TlsFiles>,
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
    /// Topic prefix of the wire contract; clients bound to a node may only use
    /// `{prefix}/{site}/{node}/…` (see `policy.rs`).
    pub topic_prefix: Prefix,
    /// Publish rate limit of every connection but trusted ones (the application's own
    /// client); `None` for no limit.
    pub publish_rate: Option<PublishRate>,
    /// With an authenticator: let clients without a user name in as unrestricted,
    /// rate-limited clients (`Access::Local`: any topic, any client id but the
    /// application's) instead of refusing them (CONNACK 5). For demos on a trusted network.
    /// Without an authenticator everyone is anonymous anyway.
    pub allow_anonymous: bool,
    /// With an authenticator: let clients without a user name that connect from a loopback
    /// address (127.0.0.0/8, ::1) in, with any client id but the application's
    /// (`Access::Local`). For demos and tools on the broker's own machine; anything that
    /// reaches the broker through a local proxy counts as local too.
    pub anonymous_loopback: bool,
    /// Most authenticator checks running at once (each on tokio's blocking pool). A slow
    /// password hash (argon2: ~50 ms of one core) times this is the CPU an authentication
    /// flood can take.
    pub auth_concurrency: usize,
    /// How long a successful login is remembered, keyed by a salted SHA-256 of client id,
    /// user name, password and peer address, so a reconnecting client does not pay the
    /// password hash again. Zero disables the cache; `BrokerHandle::forget_logins` empties it.
    pub auth_cache_ttl: Duration,
}

/// The per-connection publish rate: a token bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublishRate {
    /// Publishes per second, on average.
    pub per_second: u32,
    /// Publishes allowed at once after a quiet period.
    pub burst: u32,
    /// What happens to a client over the rate.
    pub over_rate: OverRate,
}

impl Default for PublishRate {
    /// 50/s with bursts of 200: two orders of magnitude above an agent's steady rate (a
    /// message every few seconds), yet it bounds what one client can make rumqttd route.
    fn default() -> Self {
        PublishRate {
            per_second: 50,
            burst: 200,
            over_rate: OverRate::Throttle,
        }
    }
}

/// What the guard does with a client that publishes faster than its rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OverRate {
    /// Stop reading from it until the bucket refills: TCP back-pressure slows the client to
    /// the rate, nothing is lost and nobody is disconnected. The default, because an agent
    /// resending its outbox after a hub outage legitimately bursts (16 in flight at LAN
    /// speed) and must not be cut off and made to start again.
    Throttle,
    /// Close the connection (counted as `disconnected_rate`). For deployments that prefer to
    /// shed a misbehaving client over slowing it.
    Disconnect,
}

/// PEM files of the TLS listener. Read at start and by every reload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The server certificate chain (leaf first).
    pub cert: PathBuf,
    /// The private key of `cert` (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// CA certificates client certificates must chain to; when set, every TLS client must
    /// present one.
    pub client_ca: Option<PathBuf>,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            listen: Some(SocketAddr::from((Ipv4Addr::UNSPECIFIED, 1883))),
            tls_listen: None,
            tls: None,
            max_connections: 10_000,
            max_payload_bytes: 1024 * 1024,
            connect_timeout: Duration::from_secs(10),
            max_inflight: 100,
            topic_prefix: Prefix::default(),
            publish_rate: Some(PublishRate::default()),
            allow_anonymous: false,
            anonymous_loopback: false,
            auth_concurrency: 2,
            auth_cache_ttl: Duration::from_secs(60),
        }
    }
}

impl BrokerConfig {
    /// Checks every value is usable; the error says which one is not and why.
    pub fn validate(&self) -> Result<(), BrokerError> {
        let invalid = |msg: String| Err(BrokerError::InvalidConfig(msg));
        if self.listen.is_none() && self.tls_listen.is_none() {
            return invalid("neither listen nor tls_listen is set: enable at least one".to_owned());
        }
        match (&self.tls_listen, &self.tls) {
            (Some(_), None) => {
                return invalid(
                    "tls_listen needs tls (certificate and key files): set both or neither"
                        .to_owned(),
                );
            }
            (None, Some(_)) => {
                return invalid(
                    "tls (certificate and key files) is set but tls_listen is not: set both or \
                     neither"
                        .to_owned(),
                );
            }
            _ => {}
        }
        if let Some(rate) = &self.publish_rate
            && (rate.per_second == 0 || rate.burst == 0)
        {
            return invalid(format!(
                "publish_rate is {}/s with bursts of {}: both must be at least 1 (or no limit)",
                rate.per_second, rate.burst
            ));
        }
        if !(1..=MAX_AUTH_CONCURRENCY).contains(&self.auth_concurrency) {
            return invalid(format!(
                "auth_concurrency is {}, it must be between 1 and {MAX_AUTH_CONCURRENCY}",
                self.auth_concurrency
            ));
        }
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
        assert_eq!(config.listen, Some("0.0.0.0:1883".parse().unwrap()));
        assert_eq!(config.tls_listen, None);
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
            (
                BrokerConfig {
                    listen: None,
                    ..Default::default()
                },
                "tls_listen",
            ),
            (
                BrokerConfig {
                    tls_listen: Some("127.0.0.1:8883".parse().unwrap()),
                    ..Default::default()
                },
                "tls_listen needs tls",
            ),
            (
                BrokerConfig {
                    tls: Some(TlsFiles {
                        cert: "c.pem".into(),
                        key: "k.pem".into(),
                        client_ca: None,
                    }),
                    ..Default::default()
                },
                "tls_listen is not",
            ),
            (
                BrokerConfig {
                    publish_rate: Some(PublishRate {
                        burst: 0,
                        ..PublishRate::default()
                    }),
                    ..Default::default()
                },
                "publish_rate",
            ),
            (
                BrokerConfig {
                    auth_concurrency: 0,
                    ..Default::default()
                },
                "auth_concurrency",
            ),
        ];
        for (config, field) in cases {
            let err = config.validate().unwrap_err().to_string();
            assert!(err.contains(field), "{err}");
        }
    }
}
