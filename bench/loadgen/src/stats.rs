//! Counters every simulated agent updates, and the publish-to-stored latency histogram.
//!
//! Counters only grow; the run reads them at the start and at the end of the measured
//! window and reports the difference. Latencies are recorded only while the window is open.

use std::ops::Sub;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use hdrhistogram::Histogram;

/// Highest latency the histogram resolves (larger values are clamped to it).
const MAX_LATENCY_US: u64 = 3_600_000_000;

/// Shared by every agent task.
#[derive(Debug)]
pub struct Stats {
    window_open: AtomicBool,
    messages: AtomicU64,
    samples: AtomicU64,
    resent: AtomicU64,
    heartbeats: AtomicU64,
    acked_messages: AtomicU64,
    acked_samples: AtomicU64,
    dropped: AtomicU64,
    connacks: AtomicU64,
    connection_failures: AtomicU64,
    /// Messages in every outbox right now.
    outstanding: AtomicI64,
    /// Agents connected right now.
    connected: AtomicI64,
    latency_us: Mutex<Histogram<u64>>,
}

/// A reading of the growing counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Metrics messages published for the first time, and their samples.
    pub messages: u64,
    pub samples: u64,
    /// Metrics messages published again after a reconnect.
    pub resent: u64,
    pub heartbeats: u64,
    /// Metrics messages (and their samples) newly covered by an ack.
    pub acked_messages: u64,
    pub acked_samples: u64,
    /// Metrics messages dropped because an outbox was full.
    pub dropped: u64,
    pub connacks: u64,
    pub connection_failures: u64,
}

impl Sub for Counters {
    type Output = Counters;
    fn sub(self, o: Counters) -> Counters {
        Counters {
            messages: self.messages - o.messages,
            samples: self.samples - o.samples,
            resent: self.resent - o.resent,
            heartbeats: self.heartbeats - o.heartbeats,
            acked_messages: self.acked_messages - o.acked_messages,
            acked_samples: self.acked_samples - o.acked_samples,
            dropped: self.dropped - o.dropped,
            connacks: self.connacks - o.connacks,
            connection_failures: self.connection_failures - o.connection_failures,
        }
    }
}

/// p50, p99 and max of the latencies recorded in the window.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct Latency {
    pub count: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Default for Stats {
    fn default() -> Self {
        Self::new()
    }
}

impl Stats {
    pub fn new() -> Self {
        let histogram = Histogram::new_with_bounds(1, MAX_LATENCY_US, 3)
            .unwrap_or_else(|_| unreachable!("constant bounds are valid"));
        Self {
            window_open: AtomicBool::new(false),
            messages: AtomicU64::new(0),
            samples: AtomicU64::new(0),
            resent: AtomicU64::new(0),
            heartbeats: AtomicU64::new(0),
            acked_messages: AtomicU64::new(0),
            acked_samples: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            connacks: AtomicU64::new(0),
            connection_failures: AtomicU64::new(0),
            outstanding: AtomicI64::new(0),
            connected: AtomicI64::new(0),
            latency_us: Mutex::new(histogram),
        }
    }

    pub fn published(&self, samples: u32) {
        self.messages.fetch_add(1, Relaxed);
        self.samples.fetch_add(u64::from(samples), Relaxed);
    }

    pub fn resent(&self) {
        self.resent.fetch_add(1, Relaxed);
    }

    pub fn heartbeat(&self) {
        self.heartbeats.fetch_add(1, Relaxed);
    }

    /// A message entered an outbox.
    pub fn kept(&self) {
        self.outstanding.fetch_add(1, Relaxed);
    }

    /// A message left an outbox because the outbox was full.
    pub fn dropped(&self) {
        self.dropped.fetch_add(1, Relaxed);
        self.outstanding.fetch_sub(1, Relaxed);
    }

    /// A message left an outbox because an ack covered it, `latency` after its first publish.
    pub fn acked(&self, samples: u32, latency: Option<Duration>) {
        self.acked_messages.fetch_add(1, Relaxed);
        self.acked_samples.fetch_add(u64::from(samples), Relaxed);
        self.outstanding.fetch_sub(1, Relaxed);
        if let Some(l) = latency
            && self.window_open.load(Relaxed)
            && let Ok(mut h) = self.latency_us.lock()
        {
            let us = u64::try_from(l.as_micros()).unwrap_or(u64::MAX);
            h.saturating_record(us.clamp(1, MAX_LATENCY_US));
        }
    }

    pub fn connack(&self) {
        self.connacks.fetch_add(1, Relaxed);
    }

    pub fn connection_failed(&self) {
        self.connection_failures.fetch_add(1, Relaxed);
    }

    /// An agent's connection came up (`true`) or went down (`false`).
    pub fn set_connected(&self, up: bool) {
        self.connected.fetch_add(if up { 1 } else { -1 }, Relaxed);
    }

    pub fn connected_now(&self) -> i64 {
        self.connected.load(Relaxed)
    }

    pub fn outstanding_now(&self) -> i64 {
        self.outstanding.load(Relaxed)
    }

    /// Opens or closes the latency window; opening clears earlier latencies.
    pub fn set_window(&self, open: bool) {
        if open && let Ok(mut h) = self.latency_us.lock() {
            h.reset();
        }
        self.window_open.store(open, Relaxed);
    }

    pub fn counters(&self) -> Counters {
        Counters {
            messages: self.messages.load(Relaxed),
            samples: self.samples.load(Relaxed),
            resent: self.resent.load(Relaxed),
            heartbeats: self.heartbeats.load(Relaxed),
            acked_messages: self.acked_messages.load(Relaxed),
            acked_samples: self.acked_samples.load(Relaxed),
            dropped: self.dropped.load(Relaxed),
            connacks: self.connacks.load(Relaxed),
            connection_failures: self.connection_failures.load(Relaxed),
        }
    }

    pub fn latency(&self) -> Latency {
        let Ok(h) = self.latency_us.lock() else {
            return Latency::default();
        };
        if h.is_empty() {
            return Latency::default();
        }
        let ms = |us: u64| us as f64 / 1000.0;
        Latency {
            count: h.len(),
            p50_ms: ms(h.value_at_quantile(0.50)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            max_ms: ms(h.max()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latencies_count_only_inside_the_window() {
        let s = Stats::new();
        s.kept();
        s.acked(10, Some(Duration::from_millis(5)));
        assert_eq!(s.latency().count, 0);
        s.set_window(true);
        for ms in 1..=100 {
            s.kept();
            s.acked(10, Some(Duration::from_millis(ms)));
        }
        s.set_window(false);
        let l = s.latency();
        assert_eq!(l.count, 100);
        assert!((l.p50_ms - 50.0).abs() < 0.5, "{l:?}");
        assert!((l.p99_ms - 99.0).abs() < 0.5, "{l:?}");
        assert!((l.max_ms - 100.0).abs() < 0.5, "{l:?}");
        assert_eq!(s.outstanding_now(), 0);
        let c = s.counters();
        assert_eq!((c.acked_messages, c.acked_samples), (101, 1010));
    }
}
