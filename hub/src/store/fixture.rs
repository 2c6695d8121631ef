//! Builds a database holding a fleet's history — N nodes × D days, at the default
//! retention: raw frames for the last 48 hours, 1-minute rollups for 30 days, 1-hour rollups
//! for all D days — with the same schema and encodings as the writer, much faster than
//! replaying it through MQTT. Used by `bench/history.sh` to time history queries.

use std::path::{Path, PathBuf};

use rusqlite::params;

use super::codec::{self, Agg};
use super::{Retention, StoreError};

/// What to build.
#[derive(Debug, Clone)]
pub struct FixtureSpec {
    pub nodes: usize,
    pub days: i64,
    /// Series per node (a Pi sends 60 to 120 depending on its disks and interfaces).
    pub series_per_node: usize,
    pub interval_ms: i64,
    /// The fixture's "now"; history ends there.
    pub now_ms: i64,
    pub retention: Retention,
}

/// Metric names the fixture's series use, cycling with a label when there are more series.
const METRICS: [&str; 12] = [
    "cpu.usage_pct",
    "cpu.load_1",
    "memory.used_pct",
    "memory.available_bytes",
    "fs.used_pct",
    "fs.free_bytes",
    "net.rx_bps",
    "net.tx_bps",
    "temp_c",
    "disk.read_bps",
    "disk.write_bps",
    "system.processes",
];

/// A deterministic, plausible value of series `s` at `ts`: slow daily waves plus noise,
/// percentages with decimals, byte counts and rates as integers.
fn value(node: usize, s: usize, ts: i64) -> f64 {
    let phase = (ts as f64 / 86_400_000.0) * std::f64::consts::TAU + node as f64;
    let noise = ((ts / 1000 + (s * 7919 + node * 104_729) as i64) % 1000) as f64 / 1000.0;
    match s % METRICS.len() {
        0 | 2 | 4 => 40.0 + 25.0 * phase.sin() + 5.0 * noise,
        1 => 0.5 + 0.4 * phase.sin().abs() + noise / 10.0,
        8 => 45.0 + 8.0 * phase.sin() + noise,
        3 | 5 => (2_000_000_000.0 + 5e8 * phase.cos() + 1e6 * noise).round(),
        11 => (180.0 + 20.0 * noise).round(),
        _ => (1e5 * (1.0 + phase.sin()) + 1e4 * noise).round(),
    }
}

/// Creates `dir/sitewatch.db` (which must not exist) and fills it; returns its path.
/// `progress` is called with a fraction done.
pub fn build(
    dir: &Path,
    spec: &FixtureSpec,
    mut progress: impl FnMut(f64),
) -> Result<PathBuf, StoreError> {
    let path = super::init(dir)?;
    let mut conn = rusqlite::Connection::open(&path)?;
    conn.pragma_update(None, "synchronous", "OFF")?;
    conn.pragma_update(None, "cache_size", -262_144)?;
    let now = spec.now_ms;
    let minute = 60_000i64;
    let hour = 3_600_000i64;
    let raw_from = now - spec.retention.raw_ms.min(spec.days * 24 * hour);
    let minute_from = now - spec.retention.minute_ms.min(spec.days * 24 * hour);
    let hour_from = (now - spec.days * 24 * hour) / hour * hour;

    // Nodes and series.
    let mut series: Vec<Vec<i64>> = Vec::with_capacity(spec.nodes);
    {
        let tx = conn.transaction()?;
        for n in 0..spec.nodes {
            let node_id: i64 = tx.query_row(
                "INSERT INTO nodes (site, node, first_seen_ms, status, status_since_ms,
                                    last_seen_ms, info_json, info_recv_ms)
                 VALUES (?1, ?2, ?3, 'offline', ?4, ?4, ?5, ?4) RETURNING id",
                params![
                    format!("site-{}", n / 10),
                    format!("pi-{n}"),
                    hour_from,
                    now,
                    format!(
                        r#"{{"ts":{now},"session":"fixture","agent_version":"0.1.0","hostname":"pi-{n}","os":"Debian GNU/Linux 12","kernel":"6.6","arch":"aarch64","heartbeat_interval_s":10,"metrics_interval_s":{},"keepalive_s":30}}"#,
                        spec.interval_ms / 1000
                    )
                ],
                |r| r.get(0),
            )?;
            let mut ids = Vec::with_capacity(spec.series_per_node);
            for s in 0..spec.series_per_node {
                let metric = METRICS[s % METRICS.len()];
                let labels = match s / METRICS.len() {
                    0 => String::new(),
                    k => format!("dev=d{k}"),
                };
                tx.execute(
                    "INSERT INTO series (node_id, metric, labels) VALUES (?1, ?2, ?3)",
                    params![node_id, metric, labels],
                )?;
                ids.push(tx.last_insert_rowid());
            }
            series.push(ids);
        }
        tx.commit()?;
    }

    let total = (spec.nodes as f64)
        * (((now - raw_from) / spec.interval_ms) as f64
            + ((now - minute_from) / minute) as f64
            + ((now - hour_from) / hour) as f64);
    let mut done = 0f64;
    let per_minute = (minute / spec.interval_ms).max(1);

    // Hourly and minute rollups from the values the samples would have had (sampled at
    // every interval for minutes; at every minute for hours, to keep building fast).
    for (tier, from, width) in [(3600i64, hour_from, hour), (60, minute_from, minute)] {
        let tx = conn.transaction()?;
        {
            let mut insert = tx.prepare(
                "INSERT INTO rollups (tier, node_id, bucket_ms, data) VALUES (?1, ?2, ?3, ?4)",
            )?;
            let mut aggs: Vec<(i64, Agg)> = Vec::new();
            let mut bucket = from / width * width;
            while bucket < now {
                let step = if tier == 60 { spec.interval_ms } else { minute };
                for (n, ids) in series.iter().enumerate() {
                    aggs.clear();
                    for (s, id) in ids.iter().enumerate() {
                        let mut a: Option<Agg> = None;
                        let mut t = bucket;
                        while t < bucket + width {
                            let one = Agg::one(value(n, s, t), t);
                            match a.as_mut() {
                                Some(x) => x.merge(&one),
                                None => a = Some(one),
                            }
                            t += step;
                        }
                        if let Some(mut a) = a {
                            if tier == 3600 {
                                // Each minute stood for `per_minute` samples.
                                a.count *= per_minute as u64;
                                a.sum *= per_minute as f64;
                            }
                            aggs.push((*id, a));
                        }
                    }
                    let node_id = n as i64 + 1;
                    insert.execute(params![
                        tier,
                        node_id,
                        bucket,
                        codec::encode_rollup(bucket, &mut aggs)
                    ])?;
                    done += 1.0;
                }
                progress(done / total);
                bucket += width;
            }
        }
        tx.commit()?;
    }

    // Raw frames, time-major like a live fleet.
    {
        let tx = conn.transaction()?;
        {
            let mut insert =
                tx.prepare("INSERT INTO frames (node_id, ts_ms, data) VALUES (?1, ?2, ?3)")?;
            let mut frame: Vec<(i64, f64)> = Vec::new();
            let mut ts = raw_from / spec.interval_ms * spec.interval_ms;
            let mut k = 0u64;
            while ts < now {
                for (n, ids) in series.iter().enumerate() {
                    frame.clear();
                    frame.extend(ids.iter().enumerate().map(|(s, id)| (*id, value(n, s, ts))));
                    insert.execute(params![n as i64 + 1, ts, codec::encode_frame(&mut frame)])?;
                    done += 1.0;
                }
                k += 1;
                if k % 100 == 0 {
                    progress(done / total);
                }
                ts += spec.interval_ms;
            }
        }
        // Everything is folded already.
        tx.execute(
            "INSERT INTO meta (key, value) VALUES ('rollup_cursor', (SELECT coalesce(max(id), 0) FROM frames))
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [],
        )?;
        tx.commit()?;
    }
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE); ANALYZE;")?;
    progress(1.0);
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_fixture_answers_like_a_live_database() {
        let dir = tempfile::tempdir().unwrap();
        let now = 1_800_000_000_000i64;
        let spec = FixtureSpec {
            nodes: 2,
            days: 3,
            series_per_node: 20,
            interval_ms: 10_000,
            now_ms: now,
            retention: Retention::default(),
        };
        let path = build(dir.path(), &spec, |_| {}).unwrap();
        let conn = rusqlite::Connection::open(&path).unwrap();
        let q = |from: i64| super::super::query::RangeQuery {
            site: "site-0".into(),
            node: "pi-1".into(),
            metric: "cpu.usage_pct".into(),
            labels: None,
            from_ms: from,
            to_ms: now,
            step_ms: None,
            max_points: 2000,
            agg: super::super::AggKind::Avg,
            now_ms: now,
        };
        let day = super::super::query::range(&conn, &q(now - 86_400_000), &spec.retention)
            .unwrap()
            .unwrap();
        assert_eq!(day.tier, super::super::Tier::Minute);
        let pts = &day.series[0].points;
        assert!(pts.len() >= 1440 && pts.len() <= 1441, "{}", pts.len());
        assert!(pts.iter().all(|(_, v)| (10.0..=75.0).contains(v)));
        let three = super::super::query::range(&conn, &q(now - 3 * 86_400_000), &spec.retention)
            .unwrap()
            .unwrap();
        assert_eq!(three.tier, super::super::Tier::Minute);
        assert!(!three.series[0].points.is_empty());
    }
}
