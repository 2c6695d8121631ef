//! Counters of what the guard let through, refused and cut off, by reason.
//!
//! The guard updates them with relaxed atomics from every connection task; callers read a
//! consistent-enough [`GuardStats`] copy through `RunningBroker::stats()`.

use std::sync::atomic::{AtomicU64, Ordering};

/// A snapshot of the guard's counters since start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct GuardStats {
    /// Connections handed to rumqttd after their CONNECT passed every check.
    pub relayed: u64,
    /// Connections being relayed right now.
    pub active: u64,
    /// CONNECTs refused with return code 2 because of their client id.
    pub rejected_client_id: u64,
    /// CONNECTs refused with return code 1 (MQTT 5 or another unsupported level).
    pub rejected_protocol_version: u64,
    /// CONNECTs refused with return code 3 because `max_connections` were in use.
    pub rejected_server_full: u64,
    /// Connections closed because their first packet was not a valid MQTT CONNECT.
    pub rejected_malformed: u64,
    /// Connections closed because their CONNECT was larger than the guard reads.
    pub rejected_too_large: u64,
    /// Connections closed because no complete CONNECT arrived within `connect_timeout`.
    pub connect_timeouts: u64,
    /// Connections the peer closed before sending a complete CONNECT (port checks, scanners).
    pub closed_before_connect: u64,
    /// CONNECTs refused with return code 3 because the embedded rumqttd did not answer.
    pub upstream_failures: u64,
    /// CONNECTs refused with return code 4: unknown user name or wrong password.
    pub rejected_bad_credentials: u64,
    /// CONNECTs refused with return code 5: anonymous, or not allowed (revoked, someone
    /// else's client id, a last will outside its node).
    pub rejected_not_authorized: u64,
    /// CONNECTs refused with return code 3 because no authenticator check could run in time
    /// (too many at once) or the authenticator panicked.
    pub auth_unavailable: u64,
    /// TLS connections whose handshake failed (bad client certificate, not TLS, …).
    pub tls_handshake_failures: u64,
    /// TLS connections whose handshake did not finish within `connect_timeout`.
    pub tls_handshake_timeouts: u64,
    /// Connected clients cut off for sending a packet over `max_payload_bytes`.
    pub disconnected_too_large: u64,
    /// Connected clients cut off for sending something that is not MQTT 3.1.1.
    pub disconnected_malformed: u64,
    /// Clients bound to a node cut off for publishing outside its topics.
    pub disconnected_publish_denied: u64,
    /// Clients bound to a node cut off for subscribing outside its topics.
    pub disconnected_subscribe_denied: u64,
    /// Clients cut off for publishing over their rate (`OverRate::Disconnect` only).
    pub disconnected_rate: u64,
    /// Clients cut off because the application withdrew their login
    /// ([`BrokerHandle::disconnect_users`](crate::BrokerHandle::disconnect_users)).
    pub disconnected_revoked: u64,
    /// Publishes held back until the client's rate allowed them (`OverRate::Throttle`).
    pub publishes_throttled: u64,
    /// Calls to the authenticator.
    pub auth_checks: u64,
    /// Logins accepted from the cache without calling the authenticator.
    pub auth_cache_hits: u64,
}

impl GuardStats {
    /// Every connection the guard turned away before relaying it, whatever the reason.
    pub fn rejected_total(&self) -> u64 {
        self.rejected_client_id
            + self.rejected_protocol_version
            + self.rejected_server_full
            + self.rejected_malformed
            + self.rejected_too_large
            + self.connect_timeouts
            + self.closed_before_connect
            + self.upstream_failures
            + self.rejected_bad_credentials
            + self.rejected_not_authorized
            + self.auth_unavailable
            + self.tls_handshake_failures
            + self.tls_handshake_timeouts
    }

    /// Every relayed connection the guard cut off: for breaking a rule, or because its
    /// login was withdrawn.
    pub fn disconnected_total(&self) -> u64 {
        self.disconnected_too_large
            + self.disconnected_malformed
            + self.disconnected_publish_denied
            + self.disconnected_subscribe_denied
            + self.disconnected_rate
            + self.disconnected_revoked
    }
}

/// Why the guard turned a connection away before relaying it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RejectReason {
    ClientId,
    ProtocolVersion,
    ServerFull,
    Malformed,
    TooLarge,
    ConnectTimeout,
    ClosedBeforeConnect,
    UpstreamUnavailable,
    BadCredentials,
    NotAuthorized,
    AuthUnavailable,
    TlsHandshake,
    TlsTimeout,
}

impl RejectReason {
    const ALL: [RejectReason; 13] = [
        RejectReason::ClientId,
        RejectReason::ProtocolVersion,
        RejectReason::ServerFull,
        RejectReason::Malformed,
        RejectReason::TooLarge,
        RejectReason::ConnectTimeout,
        RejectReason::ClosedBeforeConnect,
        RejectReason::UpstreamUnavailable,
        RejectReason::BadCredentials,
        RejectReason::NotAuthorized,
        RejectReason::AuthUnavailable,
        RejectReason::TlsHandshake,
        RejectReason::TlsTimeout,
    ];

    /// Short name used as the `reason` field of log events.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            RejectReason::ClientId => "client_id",
            RejectReason::ProtocolVersion => "protocol_version",
            RejectReason::ServerFull => "server_full",
            RejectReason::Malformed => "malformed",
            RejectReason::TooLarge => "too_large",
            RejectReason::ConnectTimeout => "connect_timeout",
            RejectReason::ClosedBeforeConnect => "closed_before_connect",
            RejectReason::UpstreamUnavailable => "upstream_unavailable",
            RejectReason::BadCredentials => "bad_credentials",
            RejectReason::NotAuthorized => "not_authorized",
            RejectReason::AuthUnavailable => "auth_unavailable",
            RejectReason::TlsHandshake => "tls_handshake",
            RejectReason::TlsTimeout => "tls_timeout",
        }
    }
}

/// Why the guard cut off a relayed connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisconnectReason {
    /// A packet over `max_payload_bytes`.
    TooLarge,
    /// Not MQTT 3.1.1 (bad framing, invalid topic, second CONNECT).
    Malformed,
    /// A bound client published outside its node's topics.
    PublishDenied,
    /// A bound client subscribed outside its node's topics.
    SubscribeDenied,
    /// Over the publish rate, with `OverRate::Disconnect`.
    RateExceeded,
    /// The application withdrew the login (credentials revoked or rotated).
    Revoked,
}

impl DisconnectReason {
    const ALL: [DisconnectReason; 6] = [
        DisconnectReason::TooLarge,
        DisconnectReason::Malformed,
        DisconnectReason::PublishDenied,
        DisconnectReason::SubscribeDenied,
        DisconnectReason::RateExceeded,
        DisconnectReason::Revoked,
    ];

    /// Short name used as the `reason` field of log events.
    pub fn as_str(self) -> &'static str {
        match self {
            DisconnectReason::TooLarge => "too_large",
            DisconnectReason::Malformed => "malformed",
            DisconnectReason::PublishDenied => "publish_denied",
            DisconnectReason::SubscribeDenied => "subscribe_denied",
            DisconnectReason::RateExceeded => "rate_exceeded",
            DisconnectReason::Revoked => "revoked",
        }
    }
}

/// The live counters behind [`GuardStats`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    relayed: AtomicU64,
    active: AtomicU64,
    rejected: [AtomicU64; RejectReason::ALL.len()],
    disconnected: [AtomicU64; DisconnectReason::ALL.len()],
    throttled: AtomicU64,
    auth_checks: AtomicU64,
    auth_cache_hits: AtomicU64,
}

impl Counters {
    pub(crate) fn reject(&self, reason: RejectReason) {
        self.rejected[reason as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn disconnect(&self, reason: DisconnectReason) {
        self.disconnected[reason as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn throttled(&self) {
        self.throttled.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn auth_check(&self) {
        self.auth_checks.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn auth_cache_hit(&self) {
        self.auth_cache_hits.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a relayed connection; it stays `active` until the returned guard is dropped.
    pub(crate) fn relay_started(&self) -> ActiveRelay<'_> {
        self.relayed.fetch_add(1, Ordering::Relaxed);
        self.active.fetch_add(1, Ordering::Relaxed);
        ActiveRelay(&self.active)
    }

    pub(crate) fn snapshot(&self) -> GuardStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let rejected = |r: RejectReason| get(&self.rejected[r as usize]);
        let disconnected = |r: DisconnectReason| get(&self.disconnected[r as usize]);
        GuardStats {
            relayed: get(&self.relayed),
            active: get(&self.active),
            rejected_client_id: rejected(RejectReason::ClientId),
            rejected_protocol_version: rejected(RejectReason::ProtocolVersion),
            rejected_server_full: rejected(RejectReason::ServerFull),
            rejected_malformed: rejected(RejectReason::Malformed),
            rejected_too_large: rejected(RejectReason::TooLarge),
            connect_timeouts: rejected(RejectReason::ConnectTimeout),
            closed_before_connect: rejected(RejectReason::ClosedBeforeConnect),
            upstream_failures: rejected(RejectReason::UpstreamUnavailable),
            rejected_bad_credentials: rejected(RejectReason::BadCredentials),
            rejected_not_authorized: rejected(RejectReason::NotAuthorized),
            auth_unavailable: rejected(RejectReason::AuthUnavailable),
            tls_handshake_failures: rejected(RejectReason::TlsHandshake),
            tls_handshake_timeouts: rejected(RejectReason::TlsTimeout),
            disconnected_too_large: disconnected(DisconnectReason::TooLarge),
            disconnected_malformed: disconnected(DisconnectReason::Malformed),
            disconnected_publish_denied: disconnected(DisconnectReason::PublishDenied),
            disconnected_subscribe_denied: disconnected(DisconnectReason::SubscribeDenied),
            disconnected_rate: disconnected(DisconnectReason::RateExceeded),
            disconnected_revoked: disconnected(DisconnectReason::Revoked),
            publishes_throttled: get(&self.throttled),
            auth_checks: get(&self.auth_checks),
            auth_cache_hits: get(&self.auth_cache_hits),
        }
    }
}

/// Decrements the `active` gauge when a relay ends, however it ends.
pub(crate) struct ActiveRelay<'a>(&'a AtomicU64);

impl Drop for ActiveRelay<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_reason_has_its_own_counter() {
        let counters = Counters::default();
        for reason in RejectReason::ALL {
            counters.reject(reason);
        }
        counters.reject(RejectReason::ClientId);
        for reason in DisconnectReason::ALL {
            counters.disconnect(reason);
        }
        let stats = counters.snapshot();
        assert_eq!(stats.rejected_client_id, 2);
        assert_eq!(stats.upstream_failures, 1);
        assert_eq!(stats.tls_handshake_timeouts, 1);
        assert_eq!(stats.rejected_total(), RejectReason::ALL.len() as u64 + 1);
        assert_eq!(stats.disconnected_rate, 1);
        assert_eq!(
            stats.disconnected_total(),
            DisconnectReason::ALL.len() as u64
        );
    }

    #[test]
    fn reasons_index_their_own_slot() {
        for (i, reason) in RejectReason::ALL.into_iter().enumerate() {
            assert_eq!(reason as usize, i, "{}", reason.as_str());
        }
        for (i, reason) in DisconnectReason::ALL.into_iter().enumerate() {
            assert_eq!(reason as usize, i, "{}", reason.as_str());
        }
    }

    #[test]
    fn active_gauge_follows_relays() {
        let counters = Counters::default();
        let a = counters.relay_started();
        let b = counters.relay_started();
        assert_eq!(counters.snapshot().active, 2);
        drop(a);
        let stats = counters.snapshot();
        assert_eq!((stats.active, stats.relayed), (1, 2));
        drop(b);
        assert_eq!(counters.snapshot().active, 0);
    }
}
