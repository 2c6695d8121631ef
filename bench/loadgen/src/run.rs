//! A whole run: start the agents (staggered, phases spread), warm up, measure a window,
//! drain, close every connection, write the acked file and build the report.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use sitewatch_proto::Prefix;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::agent::{self, AgentSpec, CLOSE_GRACE, Controls};
use crate::cli::RunArgs;
use crate::link::Endpoint;
use crate::payload::{self, steady_sample_count};
use crate::probe::{self, DbFiles, DbSize, Process};
use crate::record::{self, SessionRecord};
use crate::report::{DbUsage, HubUsage, RawComparison, Report};
use crate::rng::Rng;
use crate::stats::{Counters, Stats};

/// How often progress is logged.
const PROGRESS_EVERY: Duration = Duration::from_secs(10);

fn secs(v: f64, flag: &str) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(v).map_err(|_| anyhow::anyhow!("{flag} {v} is not a duration"))
}

/// Runs the load described by `args` until its window is over (or `interrupt` fires, which
/// ends the window early) and returns the report. Bounded: warmup + duration + drain + a
/// few seconds to close.
pub async fn run(
    args: RunArgs,
    interrupt: CancellationToken,
) -> anyhow::Result<(Report, Vec<SessionRecord>)> {
    anyhow::ensure!(args.agents > 0, "--agents must be at least 1");
    anyhow::ensure!(
        args.interval_s >= 0.01,
        "--interval-s must be at least 0.01"
    );
    anyhow::ensure!(args.duration_s > 0.0, "--duration-s must be above 0");
    anyhow::ensure!(args.heartbeat_s >= 1, "--heartbeat-s must be at least 1");
    let interval = secs(args.interval_s, "--interval-s")?;
    let warmup = secs(args.warmup_s, "--warmup-s")?;
    let duration = secs(args.duration_s, "--duration-s")?;
    let drain = secs(args.drain_s, "--drain-s")?;
    let ramp = secs(args.ramp_s.unwrap_or(args.warmup_s.min(10.0)), "--ramp-s")?;
    if ramp > warmup {
        warn!(
            ?ramp,
            ?warmup,
            "the ramp is longer than the warmup: the window includes connects"
        );
    }
    let prefix = Prefix::new(args.prefix.clone()).map_err(|e| anyhow::anyhow!("--prefix: {e}"))?;
    let sites = args.sites.unwrap_or(args.agents.div_ceil(20)).max(1);
    let limit = crate::rlimit::raise_nofile().context("cannot read RLIMIT_NOFILE")?;
    crate::rlimit::check_fits(args.agents, limit)?;
    let hub = args.hub_pid.map(Process::new).transpose()?;
    let db = args.db.as_deref().map(DbFiles::new);
    if let Some(db) = &db
        && !db.db.exists()
    {
        warn!(path = %db.db.display(), "database file not found (yet); check --db");
    }
    let addr = format!("{}:{}", args.broker.host, args.broker.port);
    tokio::time::timeout(
        Duration::from_secs(3),
        tokio::net::TcpStream::connect(&addr),
    )
    .await
    .map_err(|_| anyhow::anyhow!("timed out"))
    .and_then(|r| r.map_err(anyhow::Error::from))
    .with_context(|| {
        format!(
            "cannot reach the broker at {}: is the hub running and listening there? \
                 (pass --broker)",
            args.broker
        )
    })?;
    let endpoint = Endpoint {
        host: args.broker.host.clone(),
        port: args.broker.port,
        keepalive: Duration::from_secs(args.keepalive_s.max(1)),
    };
    info!(
        agents = args.agents,
        sites,
        interval_s = args.interval_s,
        samples_per_message = steady_sample_count(args.extra_series),
        broker = %args.broker,
        "starting simulated agents"
    );

    let stats = Arc::new(Stats::new());
    let controls = Controls {
        produce: CancellationToken::new(),
        stop: CancellationToken::new(),
        kill_style: args.kill_style,
    };
    let t0 = Instant::now() + Duration::from_millis(100);
    let mut seeds = Rng::from_os(args.agents as u64);
    let mut handles: Vec<JoinHandle<SessionRecord>> = Vec::with_capacity(args.agents);
    for i in 0..args.agents {
        let (site, node) = payload::ids(&args.site_prefix, i, sites)?;
        let frac = i as f64 / args.agents as f64;
        let connect_at = t0 + ramp.mul_f64(frac);
        let spec = AgentSpec {
            site,
            node,
            prefix: prefix.clone(),
            endpoint: endpoint.clone(),
            metrics_every: interval,
            heartbeat_every: Duration::from_secs(args.heartbeat_s),
            connect_at,
            first_metrics: first_tick(t0, connect_at, interval, frac),
            extra_series: args.extra_series,
            outbox_max: args.outbox_max,
            reconnect_max: Duration::from_secs(args.reconnect_max_s.max(1)),
            resend_after: Duration::from_secs(args.resend_after_s.max(1)),
            seed: seeds.next_u64(),
        };
        handles.push(tokio::spawn(agent::run(
            spec,
            controls.clone(),
            stats.clone(),
        )));
    }

    // Warm up.
    let window_start = t0 + warmup;
    wait_logging(window_start, &stats, &interrupt, t0).await;

    // The measured window.
    let me = Process::current();
    let c0 = stats.counters();
    let hub_ticks0 = hub.and_then(hub_ticks);
    let me_ticks0 = me.cpu_ticks()?;
    let db0 = db.as_ref().map(DbFiles::size);
    stats.set_window(true);
    let started = Instant::now();
    let end = started + duration;
    let mut rss = Vec::new();
    let mut rss_failed = false;
    let mut next_progress = started + PROGRESS_EVERY;
    loop {
        if let Some(h) = hub {
            match h.rss_bytes() {
                Ok(b) => rss.push(b),
                Err(err) if !rss_failed => {
                    rss_failed = true;
                    warn!(cause = %err, "cannot read the hub's RSS (did it exit?)");
                }
                Err(_) => {}
            }
        }
        let now = Instant::now();
        if now >= next_progress {
            progress(&stats, now.duration_since(t0));
            next_progress += PROGRESS_EVERY;
        }
        let next = (now + Duration::from_secs(1)).min(end);
        if now >= end || !sleep_until(next, &interrupt).await {
            break;
        }
    }
    let window = started.elapsed();
    let c1 = stats.counters();
    stats.set_window(false);
    let latency = stats.latency();
    let outstanding = stats.outstanding_now();
    let connected = stats.connected_now();
    let hub_ticks1 = hub.and_then(hub_ticks);
    let me_ticks1 = me.cpu_ticks()?;
    let db1 = db.as_ref().map(DbFiles::size);

    // Drain: no new messages, give outstanding acks a moment.
    controls.produce.cancel();
    let drain_end = Instant::now() + drain;
    while stats.outstanding_now() > 0 && Instant::now() < drain_end {
        if !sleep_until(Instant::now() + Duration::from_millis(100), &interrupt).await {
            break;
        }
    }
    controls.stop.cancel();
    let records = collect(handles).await;

    let w = window.as_secs_f64().max(1e-9);
    let d = c1 - c0;
    let tps = probe::ticks_per_second();
    let cpu_pct = |a: u64, b: u64| 100.0 * (b.saturating_sub(a)) as f64 / tps / w;
    let report = Report {
        agents: args.agents,
        sites,
        interval_s: args.interval_s,
        heartbeat_s: args.heartbeat_s,
        samples_per_message: if d.messages > 0 {
            d.samples as f64 / d.messages as f64
        } else {
            steady_sample_count(args.extra_series) as f64
        },
        window_s: w,
        connected_at_end: connected,
        messages_published_per_s: d.messages as f64 / w,
        samples_published_per_s: d.samples as f64 / w,
        heartbeats_per_s: d.heartbeats as f64 / w,
        messages_stored_per_s: d.acked_messages as f64 / w,
        samples_stored_per_s: d.acked_samples as f64 / w,
        latency,
        outstanding_unacked_end: outstanding,
        resent_messages: d.resent,
        dropped_messages: d.dropped,
        connects: d.connacks,
        connection_failures: d.connection_failures,
        loadgen_cpu_pct: cpu_pct(me_ticks0, me_ticks1),
        hub: match (hub, hub_ticks0, hub_ticks1) {
            (Some(h), Some(a), Some(b)) => Some(HubUsage {
                pid: h.pid,
                rss_median_bytes: probe::median(&rss),
                rss_max_bytes: rss.iter().copied().max().unwrap_or(0),
                cpu_pct: cpu_pct(a, b),
            }),
            _ => None,
        },
        db: match (db0, db1) {
            (Some(a), Some(b)) => Some(db_usage(a, b, args.agents, w)),
            _ => None,
        },
        raw: args.raw_samples_per_s.map(|raw| RawComparison {
            raw_samples_per_s: raw,
            stored_over_raw: d.acked_samples as f64 / w / raw.max(1e-9),
        }),
    };
    if let Some(path) = &args.acked_out {
        record::write(path, &records)?;
    }
    Ok((report, records))
}

/// The hub's CPU ticks, or None (logged) when it cannot be read (the hub exited).
fn hub_ticks(hub: Process) -> Option<u64> {
    hub.cpu_ticks()
        .inspect_err(|err| warn!(cause = %err, "cannot read the hub's CPU time (did it exit?)"))
        .ok()
}

/// First metrics tick of an agent whose phase is `frac` of the interval: ticks of all
/// agents fall at `t0 + (k + frac) × interval`, uniform in time whatever the ramp.
fn first_tick(t0: Instant, connect_at: Instant, interval: Duration, frac: f64) -> Instant {
    let phase = interval.mul_f64(frac);
    let mut t = t0 + phase;
    if connect_at > t {
        let behind = connect_at.duration_since(t).as_secs_f64();
        let k = (behind / interval.as_secs_f64()).ceil();
        t += interval.mul_f64(k);
    }
    t
}

fn db_usage(a: DbSize, b: DbSize, agents: usize, window_s: f64) -> DbUsage {
    let growth = b.total().saturating_sub(a.total()) as f64;
    DbUsage {
        db_bytes_start: a.db_bytes,
        wal_bytes_start: a.wal_bytes,
        db_bytes_end: b.db_bytes,
        wal_bytes_end: b.wal_bytes,
        bytes_per_node_day: growth / window_s / agents as f64 * 86_400.0,
    }
}

/// Sleeps until `at`; false when interrupted first.
async fn sleep_until(at: Instant, interrupt: &CancellationToken) -> bool {
    tokio::select! {
        _ = tokio::time::sleep_until(at) => true,
        _ = interrupt.cancelled() => false,
    }
}

async fn wait_logging(until: Instant, stats: &Stats, interrupt: &CancellationToken, t0: Instant) {
    let mut next = Instant::now() + PROGRESS_EVERY;
    while Instant::now() < until {
        if !sleep_until(next.min(until), interrupt).await {
            return;
        }
        if Instant::now() >= next {
            progress(stats, Instant::now().duration_since(t0));
            next += PROGRESS_EVERY;
        }
    }
}

fn progress(stats: &Stats, elapsed: Duration) {
    let Counters {
        messages,
        acked_messages,
        connection_failures,
        ..
    } = stats.counters();
    info!(
        elapsed_s = elapsed.as_secs(),
        connected = stats.connected_now(),
        published = messages,
        acked = acked_messages,
        outstanding = stats.outstanding_now(),
        connection_failures,
        "progress"
    );
}

/// Waits for every agent to close and return its record (bounded).
async fn collect(handles: Vec<JoinHandle<SessionRecord>>) -> Vec<SessionRecord> {
    let deadline = Instant::now() + CLOSE_GRACE + Duration::from_secs(5);
    let mut records = Vec::with_capacity(handles.len());
    let mut lost = 0usize;
    for h in handles {
        let abort = h.abort_handle();
        match tokio::time::timeout_at(deadline, h).await {
            Ok(Ok(r)) => records.push(r),
            Ok(Err(_)) => lost += 1,
            Err(_) => {
                abort.abort();
                lost += 1;
            }
        }
    }
    if lost > 0 {
        warn!(
            lost,
            "some agents did not finish in time; their sessions are missing from --acked-out"
        );
    }
    records
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_ticks_keep_their_phase_after_the_connect() {
        let t0 = Instant::now();
        let i = Duration::from_secs(1);
        assert_eq!(first_tick(t0, t0, i, 0.25), t0 + Duration::from_millis(250));
        let later = t0 + Duration::from_millis(2600);
        assert_eq!(
            first_tick(t0, later, i, 0.25),
            t0 + Duration::from_millis(3250)
        );
        let exact = t0 + Duration::from_millis(1250);
        assert_eq!(first_tick(t0, exact, i, 0.25), exact);
    }

    #[test]
    fn database_growth_is_scaled_to_a_node_day() {
        let a = DbSize {
            db_bytes: 1000,
            wal_bytes: 0,
        };
        let b = DbSize {
            db_bytes: 1000 + 8640,
            wal_bytes: 0,
        };
        // 8640 bytes in 10 s over 2 nodes: 432 B/node/s, 37,324,800 B/node-day.
        let u = db_usage(a, b, 2, 10.0);
        assert!((u.bytes_per_node_day - 37_324_800.0).abs() < 1.0);
    }
}
