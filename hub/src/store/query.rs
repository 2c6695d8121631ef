//! History queries: which tier answers a range (a pure plan), reading it, and exports.
//!
//! A range is answered from raw frames, 1-minute or 1-hour rollups: the coarsest tier no
//! wider than the step the caller needs, moved coarser while it would read more than
//! [`ROW_BUDGET`] rows or does not reach back to `from`. Points are aggregated into buckets
//! of the chosen step, so a response never holds more than `max_points` points. Frames not
//! yet folded into the rollups (the last few seconds) are folded in on the fly.

use std::collections::BTreeMap;

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use super::StoreError;
use super::codec::{self, Agg};
use super::maintain::{Retention, bucket_of, rollup_cursor};

/// Most rows one range query reads from a tier (frames or rollup buckets).
pub const ROW_BUDGET: i64 = 20_000;
/// Points returned per series when the caller does not say.
pub const DEFAULT_MAX_POINTS: i64 = 2_000;
/// Metrics interval assumed for a node whose `info` is unknown.
const DEFAULT_INTERVAL_MS: i64 = 10_000;
/// Frames at most this old may not be folded into the rollups yet.
const UNFOLDED_WINDOW_MS: i64 = 5 * 60_000;

/// A storage tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    Raw,
    #[serde(rename = "1m")]
    Minute,
    #[serde(rename = "1h")]
    Hour,
}

impl Tier {
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Raw => "raw",
            Tier::Minute => "1m",
            Tier::Hour => "1h",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "raw" => Some(Tier::Raw),
            "1m" => Some(Tier::Minute),
            "1h" => Some(Tier::Hour),
            _ => None,
        }
    }

    /// Rollup bucket width in seconds (`None` for raw).
    fn rollup_s(self) -> Option<i64> {
        match self {
            Tier::Raw => None,
            Tier::Minute => Some(60),
            Tier::Hour => Some(3600),
        }
    }

    fn retention_ms(self, r: &Retention) -> i64 {
        match self {
            Tier::Raw => r.raw_ms,
            Tier::Minute => r.minute_ms,
            Tier::Hour => r.hour_ms,
        }
    }
}

/// Which aggregate of each bucket a point carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AggKind {
    Avg,
    Min,
    Max,
    Last,
}

impl AggKind {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "avg" => Some(AggKind::Avg),
            "min" => Some(AggKind::Min),
            "max" => Some(AggKind::Max),
            "last" => Some(AggKind::Last),
            _ => None,
        }
    }

    fn pick(self, a: &Agg) -> f64 {
        match self {
            AggKind::Avg => a.avg(),
            AggKind::Min => a.min,
            AggKind::Max => a.max,
            AggKind::Last => a.last,
        }
    }
}

/// How a range will be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub tier: Tier,
    /// Width of the returned buckets, ms.
    pub step_ms: i64,
}

/// The widest bucket of any tier (an hour).
const MAX_GRAIN_MS: i64 = 3_600_000;

/// Chooses the tier and step for `[from_ms, to_ms]` (pure).
pub fn plan(
    from_ms: i64,
    to_ms: i64,
    step_ms: Option<i64>,
    max_points: i64,
    raw_interval_ms: i64,
    now_ms: i64,
    retention: &Retention,
) -> Plan {
    let range = (to_ms - from_ms).max(1);
    // Two points at least: a range across a bucket boundary always touches two buckets.
    let max_points = max_points.max(2);
    let min_step = (range + max_points - 1) / max_points;
    // A step beyond the range gives the same one or two buckets; capping it keeps the
    // rounding below from overflowing (found by the api_query fuzz target).
    let step = step_ms
        .unwrap_or(0)
        .min(range.saturating_add(MAX_GRAIN_MS))
        .max(min_step)
        .max(1000);
    let width = |t: Tier| t.rollup_s().map_or(raw_interval_ms.max(1000), |s| s * 1000);
    let reaches = |t: Tier| from_ms >= now_ms - t.retention_ms(retention);
    let tiers = [Tier::Raw, Tier::Minute, Tier::Hour];
    let mut i = tiers
        .iter()
        .rposition(|&t| width(t) <= step && reaches(t))
        .or_else(|| tiers.iter().position(|&t| reaches(t)))
        .unwrap_or(tiers.len() - 1);
    // Raw frames of one node lie on a page each (they are stored in arrival order, which
    // keeps ingest cheap), so reading many is slow when they are not cached: past twice the
    // points wanted, the minute rollups answer instead.
    let budget = |t: Tier| match t {
        Tier::Raw => (2 * max_points).min(ROW_BUDGET),
        _ => ROW_BUDGET,
    };
    while i + 1 < tiers.len() && (range / width(tiers[i]) > budget(tiers[i]) || !reaches(tiers[i]))
    {
        i += 1;
    }
    let tier = tiers[i];
    // Buckets are aligned to multiples of the step, so a range touches at most
    // range / step + 2 of them: a step of at least range / (max_points - 1) keeps the
    // answer within max_points whatever the alignment.
    let grain = tier.rollup_s().map_or(1000, |s| s * 1000);
    let fit = (range + max_points - 2) / (max_points - 1);
    let step = step.max(fit);
    let step = (step + grain - 1) / grain * grain;
    Plan {
        tier,
        step_ms: step,
    }
}

/// One series of a node, as returned by a range query.
#[derive(Debug, Clone, Serialize)]
pub struct SeriesPoints {
    pub metric: String,
    pub labels: String,
    /// `[bucket start ms, value]` pairs in time order.
    pub points: Vec<(i64, f64)>,
}

/// A range query on one metric of one node.
#[derive(Debug, Clone)]
pub struct RangeQuery {
    pub site: String,
    pub node: String,
    pub metric: String,
    /// Exact label set wanted; `None` returns every label set of the metric.
    pub labels: Option<String>,
    pub from_ms: i64,
    pub to_ms: i64,
    pub step_ms: Option<i64>,
    pub max_points: i64,
    pub agg: AggKind,
    pub now_ms: i64,
}

/// The answer to a [`RangeQuery`].
#[derive(Debug, Clone, Serialize)]
pub struct RangeAnswer {
    pub tier: Tier,
    pub step_ms: i64,
    pub agg: AggKind,
    pub series: Vec<SeriesPoints>,
}

/// Node row id and metrics interval (from its latest `info`), if the node is known.
fn node_row(conn: &Connection, site: &str, node: &str) -> Result<Option<(i64, i64)>, StoreError> {
    let row: Option<(i64, Option<String>)> = conn
        .prepare_cached("SELECT id, info_json FROM nodes WHERE site = ?1 AND node = ?2")?
        .query_row(params![site, node], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    Ok(row.map(|(id, info)| {
        let interval = info
            .and_then(|j| serde_json::from_str::<serde_json::Value>(&j).ok())
            .and_then(|v| v.get("metrics_interval_s").and_then(|x| x.as_i64()))
            .filter(|s| *s > 0)
            .map_or(DEFAULT_INTERVAL_MS, |s| s * 1000);
        (id, interval)
    }))
}

/// Series of `node_id` named `metric` (and `labels`), sorted by id.
fn series_ids(
    conn: &Connection,
    node_id: i64,
    metric: Option<&str>,
    labels: Option<&str>,
) -> Result<Vec<(i64, String, String)>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, metric, labels FROM series WHERE node_id = ?1
         AND (?2 IS NULL OR metric = ?2) AND (?3 IS NULL OR labels = ?3) ORDER BY id",
    )?;
    let rows = stmt
        .query_map(params![node_id, metric, labels], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// Aggregates of every wanted series per bucket of a tier, in time order: calls `each` with
/// (bucket or sample time, index of the series in `ids`, aggregate) until it returns false.
#[allow(clippy::too_many_arguments)]
fn scan_tier(
    conn: &Connection,
    node_id: i64,
    tier: Tier,
    ids: &[i64],
    from_ms: i64,
    to_ms: i64,
    now_ms: i64,
    include_unfolded: bool,
    mut each: impl FnMut(i64, usize, Agg) -> bool,
) -> Result<(), StoreError> {
    let mut found = Vec::new();
    let Some(tier_s) = tier.rollup_s() else {
        let mut stmt = conn.prepare_cached(
            "SELECT ts_ms, data FROM frames WHERE node_id = ?1 AND ts_ms BETWEEN ?2 AND ?3
             ORDER BY ts_ms",
        )?;
        let mut rows = stmt.query(params![node_id, from_ms, to_ms])?;
        while let Some(r) = rows.next()? {
            let ts: i64 = r.get(0)?;
            codec::frame_values(r.get_ref(1)?.as_blob()?, ids, &mut found)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            for &(i, v) in &found {
                if !each(ts, i, Agg::one(v, ts)) {
                    return Ok(());
                }
            }
        }
        return Ok(());
    };
    let first = bucket_of(from_ms, tier_s);
    let mut stmt = conn.prepare_cached(
        "SELECT bucket_ms, data FROM rollups
         WHERE tier = ?1 AND node_id = ?2 AND bucket_ms BETWEEN ?3 AND ?4 ORDER BY bucket_ms",
    )?;
    let mut rows = stmt.query(params![tier_s, node_id, first, to_ms])?;
    let mut aggs = Vec::new();
    while let Some(r) = rows.next()? {
        let bucket: i64 = r.get(0)?;
        codec::rollup_values(bucket, r.get_ref(1)?.as_blob()?, ids, &mut aggs)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        for &(i, a) in &aggs {
            if !each(bucket, i, a) {
                return Ok(());
            }
        }
    }
    if !include_unfolded {
        return Ok(());
    }
    // Frames the writer has not folded yet.
    let cursor = rollup_cursor(conn)?;
    let mut stmt = conn.prepare_cached(
        "SELECT ts_ms, data FROM frames WHERE node_id = ?1 AND ts_ms BETWEEN ?2 AND ?3
         AND id > ?4",
    )?;
    let since = from_ms.max(now_ms - UNFOLDED_WINDOW_MS);
    let mut rows = stmt.query(params![node_id, since, to_ms, cursor])?;
    while let Some(r) = rows.next()? {
        let ts: i64 = r.get(0)?;
        codec::frame_values(r.get_ref(1)?.as_blob()?, ids, &mut found)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        for &(i, v) in &found {
            if !each(bucket_of(ts, tier_s), i, Agg::one(v, ts)) {
                return Ok(());
            }
        }
    }
    Ok(())
}

/// Points of a metric for one node; `None` if the node is unknown.
pub fn range(
    conn: &Connection,
    q: &RangeQuery,
    retention: &Retention,
) -> Result<Option<RangeAnswer>, StoreError> {
    let Some((node_id, interval)) = node_row(conn, &q.site, &q.node)? else {
        return Ok(None);
    };
    let p = plan(
        q.from_ms,
        q.to_ms,
        q.step_ms,
        q.max_points,
        interval,
        q.now_ms,
        retention,
    );
    let series = series_ids(conn, node_id, Some(&q.metric), q.labels.as_deref())?;
    let ids: Vec<i64> = series.iter().map(|s| s.0).collect();
    // Raw points at or below the sample interval are returned as they are.
    let bucketed = p.tier != Tier::Raw || p.step_ms > interval;
    let mut buckets: Vec<BTreeMap<i64, Agg>> = vec![BTreeMap::new(); ids.len()];
    let step = p.step_ms;
    scan_tier(
        conn,
        node_id,
        p.tier,
        &ids,
        q.from_ms,
        q.to_ms,
        q.now_ms,
        true,
        |ts, i, a| {
            let key = if bucketed {
                ts.div_euclid(step) * step
            } else {
                ts
            };
            if let Some(b) = buckets.get_mut(i) {
                b.entry(key).and_modify(|x| x.merge(&a)).or_insert(a);
            }
            true
        },
    )?;
    let series = series
        .into_iter()
        .zip(buckets)
        .map(|((_, metric, labels), b)| SeriesPoints {
            metric,
            labels,
            points: b.into_iter().map(|(t, a)| (t, q.agg.pick(&a))).collect(),
        })
        .collect();
    Ok(Some(RangeAnswer {
        tier: p.tier,
        step_ms: p.step_ms,
        agg: q.agg,
        series,
    }))
}

/// One exported row.
#[derive(Debug, Clone, Serialize)]
pub struct ExportRow<'a> {
    pub ts_ms: i64,
    pub metric: &'a str,
    pub labels: &'a str,
    pub count: u64,
    pub min: f64,
    pub avg: f64,
    pub max: f64,
    pub last: f64,
}

/// Streams every sample (raw) or bucket (rollups) of a node in a range to `each`, in time
/// order, optionally for one metric, until `each` returns false. Rollup tiers include what
/// the writer has folded (they lag raw data by at most its rollup interval). Returns `None`
/// if the node is unknown.
#[allow(clippy::too_many_arguments)]
pub fn export(
    conn: &Connection,
    site: &str,
    node: &str,
    metric: Option<&str>,
    tier: Tier,
    from_ms: i64,
    to_ms: i64,
    now_ms: i64,
    mut each: impl FnMut(&ExportRow<'_>) -> bool,
) -> Result<Option<()>, StoreError> {
    let Some((node_id, _)) = node_row(conn, site, node)? else {
        return Ok(None);
    };
    let series = series_ids(conn, node_id, metric, None)?;
    let ids: Vec<i64> = series.iter().map(|s| s.0).collect();
    scan_tier(
        conn,
        node_id,
        tier,
        &ids,
        from_ms,
        to_ms,
        now_ms,
        false,
        |ts, i, a| {
            let Some((_, m, l)) = series.get(i) else {
                return true;
            };
            each(&ExportRow {
                ts_ms: ts,
                metric: m,
                labels: l,
                count: a.count,
                min: a.min,
                avg: a.avg(),
                max: a.max,
                last: a.last,
            })
        },
    )?;
    Ok(Some(()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3_600_000;
    const D: i64 = 24 * H;

    fn p(range: i64, step: Option<i64>) -> Plan {
        let now = 100 * D + 12_345;
        let plan = plan(
            now - range,
            now,
            step,
            2000,
            10_000,
            now,
            &Retention::default(),
        );
        let buckets = now / plan.step_ms - (now - range) / plan.step_ms + 1;
        assert!(buckets <= 2000, "{plan:?} gives {buckets} points");
        plan
    }

    fn raw(step_ms: i64) -> Plan {
        Plan {
            tier: Tier::Raw,
            step_ms,
        }
    }

    /// Found by the api_query fuzz target: a step near i64::MAX overflowed while being
    /// rounded to the tier's grain.
    #[test]
    fn a_huge_step_gives_one_or_two_buckets() {
        let (from, to) = (372_036_854_775_808, 922_036_854_775_808);
        let plan = plan(
            from,
            to,
            Some(9_223_372_036_854_765_808),
            2000,
            10_000,
            1_800_000_000_000,
            &Retention::default(),
        );
        assert!(plan.step_ms >= to - from);
        assert!(
            to / plan.step_ms - from / plan.step_ms < 2,
            "one or two buckets"
        );
        assert_eq!(p(H, Some(i64::MAX)).step_ms % 1000, 0);
    }

    #[test]
    fn plans_pick_the_tier_that_fits() {
        // One hour: raw, points as stored (the step is below the 10 s interval).
        assert_eq!(p(H, None), raw(2000));
        // 8 h: 2,880 raw frames bucketed by 15 s.
        assert_eq!(p(8 * H, None), raw(15_000));
        // 24 h: 8,640 raw frames would be read for 2,000 points; minute rollups are cheaper.
        let d = p(D, None);
        assert_eq!((d.tier, d.step_ms), (Tier::Minute, 60_000));
        // 7 days: minute rollups, 6-minute buckets.
        let w = p(7 * D, None);
        assert_eq!((w.tier, w.step_ms), (Tier::Minute, 360_000));
        // 30 days: hourly rollups.
        let m = p(30 * D, None);
        assert_eq!((m.tier, m.step_ms), (Tier::Hour, H));
        // An explicit coarse step uses the coarsest tier that resolves it.
        let h = p(D, Some(H));
        assert_eq!((h.tier, h.step_ms), (Tier::Hour, H));
        let f = p(D, Some(300_000));
        assert_eq!((f.tier, f.step_ms), (Tier::Minute, 300_000));
        // Too fine a step is raised so the answer stays under max points.
        assert_eq!(p(30 * D, Some(60_000)).step_ms, H);
    }

    #[test]
    fn any_range_fits_the_points_asked_for() {
        // Found by fuzzing: a range across zero with one point asked for looped for ever.
        let now = 1_800_000_000_000;
        let r = Retention::default();
        for (from, to, mp) in [
            (now - 30_001 * D, now - 1_700_000, 1),
            (-(1 << 50), 1 << 50, 2),
            (now - 1, now, 2000),
            (now - 40 * D, now - 39 * D, 7),
        ] {
            let plan = plan(from, to, Some(1), mp, 10_000, now, &r);
            let buckets = to.div_euclid(plan.step_ms) - from.div_euclid(plan.step_ms) + 1;
            assert!(buckets <= mp.max(2), "{plan:?}: {buckets} buckets for {mp}");
        }
    }

    #[test]
    fn old_ranges_move_to_tiers_that_still_hold_them() {
        let now = 100 * D;
        let r = Retention::default();
        // One hour, 3 days ago: raw is gone (48 h), minutes remain.
        let q = plan(now - 3 * D - H, now - 3 * D, None, 2000, 10_000, now, &r);
        assert_eq!(q.tier, Tier::Minute);
        // 40 days ago: only hours.
        let q = plan(now - 40 * D - H, now - 40 * D, None, 2000, 10_000, now, &r);
        assert_eq!(q.tier, Tier::Hour);
    }
}
