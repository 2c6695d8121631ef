//! Read queries used by the state loader and the HTTP API.

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use super::StoreError;

/// A node as stored, for restoring state at start-up.
#[derive(Debug, Clone)]
pub struct NodeRow {
    pub site: String,
    pub node: String,
    pub status: String,
    pub status_since_ms: Option<u64>,
    pub last_seen_ms: Option<u64>,
    pub info_json: Option<String>,
    pub latest_metrics_json: Option<String>,
}

/// Everything known about one node, for `GET /api/v1/nodes/{site}/{node}`.
#[derive(Debug, Clone, Serialize)]
pub struct NodeDetail {
    pub site: String,
    pub node: String,
    pub status: String,
    pub status_since_ms: Option<u64>,
    pub last_seen_ms: Option<u64>,
    pub first_seen_ms: u64,
    pub info: Option<serde_json::Value>,
    pub info_recv_ms: Option<u64>,
    pub latest: Option<serde_json::Value>,
    /// Every series this node has, as `metric` + `labels`.
    pub series: Vec<SeriesName>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SeriesName {
    pub metric: String,
    pub labels: String,
}

fn opt_u64(v: Option<i64>) -> Option<u64> {
    v.and_then(|x| u64::try_from(x).ok())
}

fn parse_json(s: Option<String>) -> Option<serde_json::Value> {
    s.and_then(|s| serde_json::from_str(&s).ok())
}

pub fn load_nodes(conn: &Connection) -> Result<Vec<NodeRow>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT site, node, status, status_since_ms, last_seen_ms, info_json, latest_metrics_json
         FROM nodes ORDER BY site, node",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(NodeRow {
            site: r.get(0)?,
            node: r.get(1)?,
            status: r.get(2)?,
            status_since_ms: opt_u64(r.get(3)?),
            last_seen_ms: opt_u64(r.get(4)?),
            info_json: r.get(5)?,
            latest_metrics_json: r.get(6)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn node_detail(
    conn: &Connection,
    site: &str,
    node: &str,
) -> Result<Option<NodeDetail>, StoreError> {
    let row = conn
        .query_row(
            "SELECT id, status, status_since_ms, last_seen_ms, first_seen_ms, info_json,
                    info_recv_ms, latest_metrics_json
             FROM nodes WHERE site = ?1 AND node = ?2",
            params![site, node],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    NodeDetail {
                        site: site.to_owned(),
                        node: node.to_owned(),
                        status: r.get(1)?,
                        status_since_ms: opt_u64(r.get(2)?),
                        last_seen_ms: opt_u64(r.get(3)?),
                        first_seen_ms: opt_u64(r.get(4)?).unwrap_or(0),
                        info: parse_json(r.get(5)?),
                        info_recv_ms: opt_u64(r.get(6)?),
                        latest: parse_json(r.get(7)?),
                        series: Vec::new(),
                    },
                ))
            },
        )
        .optional()?;
    let Some((id, mut detail)) = row else {
        return Ok(None);
    };
    let mut stmt = conn
        .prepare("SELECT metric, labels FROM series WHERE node_id = ?1 ORDER BY metric, labels")?;
    detail.series = stmt
        .query_map([id], |r| {
            Ok(SeriesName {
                metric: r.get(0)?,
                labels: r.get(1)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(Some(detail))
}

/// Size and content of the database, for `GET /api/v1/storage`.
#[derive(Debug, Clone, Serialize)]
pub struct StorageStats {
    pub path: String,
    /// Database file plus its write-ahead log.
    pub bytes: u64,
    pub file_bytes: u64,
    pub wal_bytes: u64,
    pub page_size: u64,
    pub free_pages: u64,
    pub tiers: Vec<TierStats>,
    /// Rows per table of the other kinds of data.
    pub rows: std::collections::BTreeMap<&'static str, u64>,
    /// Frames stored but not yet folded into the rollups.
    pub rollup_backlog_frames: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct TierStats {
    pub tier: &'static str,
    pub rows: u64,
    pub oldest_ms: Option<i64>,
    pub retention_ms: i64,
}

pub fn storage_stats(
    conn: &Connection,
    path: &std::path::Path,
    retention: &super::Retention,
) -> Result<StorageStats, StoreError> {
    let count = |sql: &str| -> Result<u64, StoreError> {
        Ok(conn.query_row(sql, [], |r| r.get::<_, i64>(0))?.max(0) as u64)
    };
    let file_len = |p: &std::path::Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    let (file_bytes, wal_bytes) = (file_len(path), file_len(std::path::Path::new(&wal)));
    let page_size = conn.pragma_query_value(None, "page_size", |r| r.get::<_, i64>(0))?;
    let free_pages = conn.pragma_query_value(None, "freelist_count", |r| r.get::<_, i64>(0))?;
    let cursor = super::maintain::rollup_cursor(conn)?;
    let mut tiers = vec![TierStats {
        tier: "raw",
        rows: count("SELECT count(*) FROM frames")?,
        oldest_ms: conn.query_row("SELECT min(ts_ms) FROM frames", [], |r| r.get(0))?,
        retention_ms: retention.raw_ms,
    }];
    for (name, tier) in [("1m", 60), ("1h", 3600)] {
        tiers.push(TierStats {
            tier: name,
            rows: conn
                .query_row(
                    "SELECT count(*) FROM rollups WHERE tier = ?1",
                    [tier],
                    |r| r.get::<_, i64>(0),
                )?
                .max(0) as u64,
            oldest_ms: conn.query_row(
                "SELECT min(bucket_ms) FROM rollups WHERE tier = ?1",
                [tier],
                |r| r.get(0),
            )?,
            retention_ms: retention.for_tier(tier),
        });
    }
    let mut rows = std::collections::BTreeMap::new();
    for table in [
        "nodes",
        "series",
        "metric_messages",
        "heartbeats",
        "scans",
        "info_history",
        "node_events",
        "agent_sessions",
    ] {
        rows.insert(table, count(&format!("SELECT count(*) FROM {table}"))?);
    }
    Ok(StorageStats {
        path: path.display().to_string(),
        bytes: file_bytes + wal_bytes,
        file_bytes,
        wal_bytes,
        page_size: page_size.max(0) as u64,
        free_pages: free_pages.max(0) as u64,
        tiers,
        rows,
        rollup_backlog_frames: conn
            .query_row("SELECT count(*) FROM frames WHERE id > ?1", [cursor], |r| {
                r.get::<_, i64>(0)
            })?
            .max(0) as u64,
    })
}

/// Alerts not resolved yet, to restore the engine at start-up. Rows that no longer decode
/// (written by another version) are skipped with a warning.
pub fn open_alerts(conn: &Connection) -> Result<Vec<crate::alert::Alert>, StoreError> {
    let mut stmt = conn.prepare("SELECT json FROM alerts WHERE state != 'resolved'")?;
    let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
    Ok(rows
        .filter_map(|r| r.ok())
        .filter_map(|j| match serde_json::from_str(&j) {
            Ok(a) => Some(a),
            Err(err) => {
                tracing::warn!(cause = %err, "skipping a stored alert that does not decode");
                None
            }
        })
        .collect())
}

/// Silences still in force at `now_ms`, or starting later.
pub fn live_silences(
    conn: &Connection,
    now_ms: u64,
) -> Result<Vec<crate::alert::matcher::Silence>, StoreError> {
    let mut stmt = conn.prepare("SELECT json FROM silences WHERE ends_ms > ?1")?;
    let rows = stmt.query_map([now_ms as i64], |r| r.get::<_, String>(0))?;
    Ok(rows
        .filter_map(|r| r.ok())
        .filter_map(|j| serde_json::from_str(&j).ok())
        .collect())
}

/// Alert history, newest first: `state` = None for every state.
pub fn alert_history(
    conn: &Connection,
    state: Option<&str>,
    site: Option<&str>,
    limit: usize,
) -> Result<Vec<crate::alert::Alert>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT json FROM alerts WHERE (?1 IS NULL OR state = ?1) AND (?2 IS NULL OR site = ?2)
         ORDER BY updated_ms DESC LIMIT ?3",
    )?;
    let rows = stmt.query_map(params![state, site, limit as i64], |r| {
        r.get::<_, String>(0)
    })?;
    Ok(rows
        .filter_map(|r| r.ok())
        .filter_map(|j| serde_json::from_str(&j).ok())
        .collect())
}

/// Every device of the inventory, for restoring it at start-up: (site, device).
pub fn load_devices(
    conn: &Connection,
) -> Result<Vec<(String, crate::inventory::Device)>, StoreError> {
    let mut stmt = conn.prepare("SELECT site, json FROM devices ORDER BY site, key")?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
    Ok(rows
        .filter_map(|r| r.ok())
        .filter_map(|(site, j)| serde_json::from_str(&j).ok().map(|d| (site, d)))
        .collect())
}

/// The devices of one site, for the API.
pub fn site_devices(
    conn: &Connection,
    site: &str,
) -> Result<Vec<crate::inventory::Device>, StoreError> {
    let mut stmt = conn.prepare("SELECT json FROM devices WHERE site = ?1 ORDER BY key")?;
    let rows = stmt.query_map([site], |r| r.get::<_, String>(0))?;
    Ok(rows
        .filter_map(|r| r.ok())
        .filter_map(|j| serde_json::from_str(&j).ok())
        .collect())
}
