//! Background work of the writer thread, in bounded steps between ingest batches: folding
//! new frames into the 1-minute and 1-hour rollups, and removing data older than its
//! retention. Each step is one short transaction, so ingest never waits long.

use std::collections::HashMap;

use rusqlite::{Connection, OptionalExtension, params};

use super::StoreError;
use super::codec::{self, Agg};

/// Rollup tiers: bucket width in seconds.
pub const TIERS: [i64; 2] = [60, 3600];

/// Frames folded per rollup step.
const ROLLUP_FRAMES_PER_STEP: i64 = 4000;
/// Rows deleted per table per retention step.
const DELETE_ROWS_PER_STEP: i64 = 2000;

const CURSOR_KEY: &str = "rollup_cursor";

/// How long each kind of data is kept, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    pub raw_ms: i64,
    pub minute_ms: i64,
    pub hour_ms: i64,
    pub heartbeat_ms: i64,
    pub scan_ms: i64,
    pub info_ms: i64,
    pub event_ms: i64,
}

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;

impl Default for Retention {
    fn default() -> Self {
        Self {
            raw_ms: 48 * HOUR_MS,
            minute_ms: 30 * DAY_MS,
            hour_ms: 730 * DAY_MS,
            heartbeat_ms: 7 * DAY_MS,
            scan_ms: 30 * DAY_MS,
            info_ms: 365 * DAY_MS,
            event_ms: 365 * DAY_MS,
        }
    }
}

impl Retention {
    pub fn for_tier(&self, tier_s: i64) -> i64 {
        if tier_s >= 3600 {
            self.hour_ms
        } else {
            self.minute_ms
        }
    }
}

/// Frames with an id at or below this are folded into every rollup tier.
pub fn rollup_cursor(conn: &Connection) -> Result<i64, StoreError> {
    Ok(conn
        .query_row("SELECT value FROM meta WHERE key = ?1", [CURSOR_KEY], |r| {
            r.get(0)
        })
        .optional()?
        .unwrap_or(0))
}

pub fn bucket_of(ts_ms: i64, tier_s: i64) -> i64 {
    let w = tier_s * 1000;
    ts_ms.div_euclid(w) * w
}

/// Folds up to [`ROLLUP_FRAMES_PER_STEP`] frames past the cursor into the rollups, in one
/// transaction with the cursor move, so each frame is counted exactly once. Returns whether
/// frames remain.
pub fn rollup_step(conn: &mut Connection) -> Result<bool, StoreError> {
    let tx = conn.transaction()?;
    let cursor = rollup_cursor(&tx)?;
    // (tier, node, bucket) → series → aggregate of the new frames.
    let mut fold: HashMap<(i64, i64, i64), HashMap<i64, Agg>> = HashMap::new();
    let mut last_id = cursor;
    let mut n = 0i64;
    {
        let mut stmt = tx.prepare_cached(
            "SELECT id, node_id, ts_ms, data FROM frames WHERE id > ?1 ORDER BY id LIMIT ?2",
        )?;
        let mut rows = stmt.query(params![cursor, ROLLUP_FRAMES_PER_STEP])?;
        while let Some(r) = rows.next()? {
            let (id, node, ts): (i64, i64, i64) = (r.get(0)?, r.get(1)?, r.get(2)?);
            last_id = id;
            n += 1;
            let blob = r.get_ref(3)?.as_blob()?;
            let values = match codec::decode_frame(blob) {
                Ok(v) => v,
                Err(err) => {
                    tracing::warn!(frame = id, cause = %err, "skipping an undecodable frame");
                    continue;
                }
            };
            for tier in TIERS {
                let aggs = fold.entry((tier, node, bucket_of(ts, tier))).or_default();
                for &(series, v) in &values {
                    let a = Agg::one(v, ts);
                    aggs.entry(series).and_modify(|x| x.merge(&a)).or_insert(a);
                }
            }
        }
    }
    if n == 0 {
        return Ok(false);
    }
    {
        let mut get = tx.prepare_cached(
            "SELECT data FROM rollups WHERE tier = ?1 AND node_id = ?2 AND bucket_ms = ?3",
        )?;
        let mut put = tx.prepare_cached(
            "INSERT INTO rollups (tier, node_id, bucket_ms, data) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (tier, node_id, bucket_ms) DO UPDATE SET data = excluded.data",
        )?;
        for ((tier, node, bucket), mut aggs) in fold {
            let old: Option<Vec<u8>> = get
                .query_row(params![tier, node, bucket], |r| r.get(0))
                .optional()?;
            if let Some(old) = old {
                match codec::decode_rollup(bucket, &old) {
                    Ok(prev) => {
                        for (series, a) in prev {
                            aggs.entry(series).and_modify(|x| x.merge(&a)).or_insert(a);
                        }
                    }
                    Err(err) => tracing::warn!(
                        tier, node, bucket, cause = %err,
                        "replacing an undecodable rollup"
                    ),
                }
            }
            let mut list: Vec<(i64, Agg)> = aggs.into_iter().collect();
            put.execute(params![
                tier,
                node,
                bucket,
                codec::encode_rollup(bucket, &mut list)
            ])?;
        }
    }
    tx.execute(
        "INSERT INTO meta (key, value) VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        params![CURSOR_KEY, last_id],
    )?;
    tx.commit()?;
    Ok(n == ROLLUP_FRAMES_PER_STEP)
}

/// Deletes at most [`DELETE_ROWS_PER_STEP`] rows per kind of data older than its retention.
/// Frames are removed only once folded into the rollups. Returns whether rows remain.
pub fn retention_step(
    conn: &mut Connection,
    retention: &Retention,
    now_ms: i64,
) -> Result<bool, StoreError> {
    let tx = conn.transaction()?;
    let cursor = rollup_cursor(&tx)?;
    let limit = DELETE_ROWS_PER_STEP;
    let mut more = false;
    let raw_horizon = now_ms - retention.raw_ms;

    // Frames, node by node through the (node_id, ts_ms) index.
    let nodes: Vec<i64> = tx
        .prepare_cached("SELECT id FROM nodes")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let mut budget = limit;
    for node in nodes {
        if budget <= 0 {
            break;
        }
        let n = tx.execute(
            "DELETE FROM frames WHERE id IN (
                 SELECT id FROM frames WHERE node_id = ?1 AND ts_ms < ?2 AND id <= ?3 LIMIT ?4)",
            params![node, raw_horizon, cursor, budget],
        )? as i64;
        budget -= n;
    }

    for tier in TIERS {
        let horizon = now_ms - retention.for_tier(tier);
        let n = tx.execute(
            "DELETE FROM rollups WHERE rowid IN (
                 SELECT rowid FROM rollups WHERE tier = ?1 AND bucket_ms < ?2 LIMIT ?3)",
            params![tier, horizon, limit],
        )? as i64;
        more |= n == limit;
    }
    let mut delete = |sql: &str, horizon: i64| -> Result<(), StoreError> {
        let n = tx.execute(sql, params![horizon, limit])? as i64;
        more |= n == limit;
        Ok(())
    };
    delete(
        "DELETE FROM heartbeats WHERE (node_id, session, seq) IN (
             SELECT node_id, session, seq FROM heartbeats WHERE recv_ms < ?1 LIMIT ?2)",
        now_ms - retention.heartbeat_ms,
    )?;
    // Message ids guard against storing a resend twice; above a session's ack watermark
    // they are still needed, so only those the watermark covers go.
    delete(
        "DELETE FROM metric_messages WHERE (node_id, session, seq) IN (
             SELECT m.node_id, m.session, m.seq FROM metric_messages m
             JOIN agent_sessions a ON a.node_id = m.node_id AND a.session = m.session
             WHERE m.recv_ms < ?1 AND m.seq <= a.acked_seq LIMIT ?2)",
        raw_horizon,
    )?;
    delete(
        "DELETE FROM scans WHERE id IN (SELECT id FROM scans WHERE recv_ms < ?1 LIMIT ?2)",
        now_ms - retention.scan_ms,
    )?;
    delete(
        "DELETE FROM info_history WHERE rowid IN (
             SELECT rowid FROM info_history WHERE recv_ms < ?1 LIMIT ?2)",
        now_ms - retention.info_ms,
    )?;
    delete(
        "DELETE FROM node_events WHERE rowid IN (
             SELECT rowid FROM node_events WHERE ts_ms < ?1 LIMIT ?2)",
        now_ms - retention.event_ms,
    )?;
    delete(
        "DELETE FROM device_events WHERE rowid IN (
             SELECT rowid FROM device_events WHERE ts_ms < ?1 LIMIT ?2)",
        now_ms - retention.event_ms,
    )?;
    delete(
        "DELETE FROM site_events WHERE rowid IN (
             SELECT rowid FROM site_events WHERE ts_ms < ?1 LIMIT ?2)",
        now_ms - retention.event_ms,
    )?;
    delete(
        "DELETE FROM alerts WHERE rowid IN (
             SELECT rowid FROM alerts WHERE state = 'resolved' AND updated_ms < ?1 LIMIT ?2)",
        now_ms - retention.event_ms,
    )?;
    delete(
        "DELETE FROM silences WHERE id IN (SELECT id FROM silences WHERE ends_ms < ?1 LIMIT ?2)",
        now_ms - retention.event_ms,
    )?;
    // A session's watermark outlives every message an agent could still resend.
    delete(
        "DELETE FROM agent_sessions WHERE (node_id, session) IN (
             SELECT node_id, session FROM agent_sessions WHERE updated_ms < ?1 LIMIT ?2)",
        now_ms
            - retention
                .raw_ms
                .max(retention.heartbeat_ms)
                .max(30 * DAY_MS),
    )?;
    more |= budget <= 0;
    tx.commit()?;
    Ok(more)
}
