//! Counters of what the guard let through and what it refused, by reason.
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
}

impl GuardStats {
    /// Every connection the guard turned away, whatever the reason.
    pub fn rejected_total(&self) -> u64 {
        self.rejected_client_id
            + self.rejected_protocol_version
            + self.rejected_server_full
            + self.rejected_malformed
            + self.rejected_too_large
            + self.connect_timeouts
            + self.closed_before_connect
            + self.upstream_failures
    }
}

/// Why the guard turned a connection away.
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
}

impl RejectReason {
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
        }
    }
}

/// The live counters behind [`GuardStats`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    relayed: AtomicU64,
    active: AtomicU64,
    client_id: AtomicU64,
    protocol_version: AtomicU64,
    server_full: AtomicU64,
    malformed: AtomicU64,
    too_large: AtomicU64,
    connect_timeout: AtomicU64,
    closed_before_connect: AtomicU64,
    upstream: AtomicU64,
}

impl Counters {
    pub(crate) fn reject(&self, reason: RejectReason) {
        let counter = match reason {
            RejectReason::ClientId => &self.client_id,
            RejectReason::ProtocolVersion => &self.protocol_version,
            RejectReason::ServerFull => &self.server_full,
            RejectReason::Malformed => &self.malformed,
            RejectReason::TooLarge => &self.too_large,
            RejectReason::ConnectTimeout => &self.connect_timeout,
            RejectReason::ClosedBeforeConnect => &self.closed_before_connect,
            RejectReason::UpstreamUnavailable => &self.upstream,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a relayed connection; it stays `active` until the returned guard is dropped.
    pub(crate) fn relay_started(&self) -> ActiveRelay<'_> {
        self.relayed.fetch_add(1, Ordering::Relaxed);
        self.active.fetch_add(1, Ordering::Relaxed);
        ActiveRelay(&self.active)
    }

    pub(crate) fn snapshot(&self) -> GuardStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        GuardStats {
            relayed: get(&self.relayed),
            active: get(&self.active),
            rejected_client_id: get(&self.client_id),
            rejected_protocol_version: get(&self.protocol_version),
            rejected_server_full: get(&self.server_full),
            rejected_malformed: get(&self.malformed),
            rejected_too_large: get(&self.too_large),
            connect_timeouts: get(&self.connect_timeout),
            closed_before_connect: get(&self.closed_before_connect),
            upstream_failures: get(&self.upstream),
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
        let reasons = [
            RejectReason::ClientId,
            RejectReason::ProtocolVersion,
            RejectReason::ServerFull,
            RejectReason::Malformed,
            RejectReason::TooLarge,
            RejectReason::ConnectTimeout,
            RejectReason::ClosedBeforeConnect,
            RejectReason::UpstreamUnavailable,
        ];
        for reason in reasons {
            counters.reject(reason);
        }
        counters.reject(RejectReason::ClientId);
        let stats = counters.snapshot();
        assert_eq!(stats.rejected_client_id, 2);
        assert_eq!(stats.upstream_failures, 1);
        assert_eq!(stats.rejected_total(), 9);
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
