//! The run's result: one table for people, one JSON object for scripts.

use std::fmt::Write as _;

use serde::Serialize;

use crate::stats::Latency;

/// What a run measured over its window.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub agents: usize,
    pub sites: usize,
    pub interval_s: f64,
    pub heartbeat_s: u64,
    /// Average over the messages published in the window (`Metrics::samples` count).
    pub samples_per_message: f64,
    pub window_s: f64,
    pub connected_at_end: i64,
    pub messages_published_per_s: f64,
    pub samples_published_per_s: f64,
    pub heartbeats_per_s: f64,
    /// Metrics messages newly covered by acks in the window, per second.
    pub messages_stored_per_s: f64,
    /// Their samples per second: what the hub durably stored.
    pub samples_stored_per_s: f64,
    /// Publish-to-ack latency of the messages acked in the window.
    pub latency: Latency,
    pub outstanding_unacked_end: i64,
    pub resent_messages: u64,
    pub dropped_messages: u64,
    pub connects: u64,
    pub connection_failures: u64,
    pub loadgen_cpu_pct: f64,
    pub hub: Option<HubUsage>,
    pub db: Option<DbUsage>,
    pub raw: Option<RawComparison>,
}

/// The hub process over the window.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct HubUsage {
    pub pid: u32,
    pub rss_median_bytes: u64,
    pub rss_max_bytes: u64,
    /// CPU time over wall time, % of one core.
    pub cpu_pct: f64,
}

/// The database files over the window.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct DbUsage {
    pub db_bytes_start: u64,
    pub wal_bytes_start: u64,
    pub db_bytes_end: u64,
    pub wal_bytes_end: u64,
    /// Growth of db + WAL, scaled to one node over 86,400 s.
    pub bytes_per_node_day: f64,
}

/// The stored rate next to the raw SQLite insert rate of the same machine.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct RawComparison {
    pub raw_samples_per_s: f64,
    pub stored_over_raw: f64,
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// `12345.6` as `12,346`.
pub fn thousands(v: f64) -> String {
    let n = v.round().max(0.0) as u64;
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

impl Report {
    /// The report as an aligned two-column table.
    pub fn table(&self) -> String {
        let mut rows: Vec<(&str, String)> = vec![
            (
                "load",
                format!(
                    "{} agents on {} sites, metrics every {} s, heartbeat every {} s",
                    self.agents, self.sites, self.interval_s, self.heartbeat_s
                ),
            ),
            (
                "samples per message",
                format!("{:.1}", self.samples_per_message),
            ),
            ("measured window", format!("{:.1} s", self.window_s)),
            (
                "connected at end",
                format!("{} of {}", self.connected_at_end, self.agents),
            ),
            (
                "published",
                format!(
                    "{:.1} msg/s, {} samples/s (+ {:.1} heartbeats/s)",
                    self.messages_published_per_s,
                    thousands(self.samples_published_per_s),
                    self.heartbeats_per_s
                ),
            ),
            (
                "stored (acked after commit)",
                format!(
                    "{:.1} msg/s, {} samples/s",
                    self.messages_stored_per_s,
                    thousands(self.samples_stored_per_s)
                ),
            ),
            (
                "publish-to-stored latency",
                format!(
                    "p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms ({} messages)",
                    self.latency.p50_ms,
                    self.latency.p99_ms,
                    self.latency.max_ms,
                    self.latency.count
                ),
            ),
            (
                "unacked at end of window",
                format!("{} messages", self.outstanding_unacked_end),
            ),
            (
                "resent / dropped",
                format!("{} / {}", self.resent_messages, self.dropped_messages),
            ),
            (
                "connects / failures in window",
                format!("{} / {}", self.connects, self.connection_failures),
            ),
        ];
        match &self.hub {
            Some(h) => {
                rows.push((
                    "hub RSS",
                    format!(
                        "median {}, max {}",
                        mib(h.rss_median_bytes),
                        mib(h.rss_max_bytes)
                    ),
                ));
                rows.push(("hub CPU", format!("{:.0} % of one core", h.cpu_pct)));
            }
            None => rows.push(("hub RSS / CPU", "not measured (pass --hub-pid)".to_owned())),
        }
        rows.push((
            "loadgen CPU",
            format!("{:.0} % of one core (same machine)", self.loadgen_cpu_pct),
        ));
        match &self.db {
            Some(d) => {
                rows.push((
                    "database files",
                    format!(
                        "db {} + wal {} at start; db {} + wal {} at end",
                        mib(d.db_bytes_start),
                        mib(d.wal_bytes_start),
                        mib(d.db_bytes_end),
                        mib(d.wal_bytes_end)
                    ),
                ));
                rows.push((
                    "database per node-day",
                    format!("{} (at this interval)", mib(d.bytes_per_node_day as u64)),
                ));
            }
            None => rows.push(("database growth", "not measured (pass --db)".to_owned())),
        }
        if let Some(r) = &self.raw {
            rows.push((
                "raw SQLite insert rate",
                format!("{} samples/s", thousands(r.raw_samples_per_s)),
            ));
            rows.push((
                "stored / raw",
                format!("{:.1} %", 100.0 * r.stored_over_raw),
            ));
        }
        let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        let mut out = String::new();
        for (k, v) in rows {
            let _ = writeln!(out, "{k:<width$}  {v}");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0.4), "0");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(thousands(55_440.2), "55,440");
        assert_eq!(thousands(1_234_567.0), "1,234,567");
    }
}
