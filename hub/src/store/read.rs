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

/// Points of one series in a time range.
#[derive(Debug, Clone, Serialize)]
pub struct SeriesPoints {
    pub metric: String,
    pub labels: String,
    /// `[ts_ms, value]` pairs in time order.
    pub points: Vec<(i64, f64)>,
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

/// A range query on one metric of one node.
#[derive(Debug, Clone)]
pub struct SeriesQuery {
    pub site: String,
    pub node: String,
    pub metric: String,
    /// Exact label set wanted; `None` returns every label set of the metric.
    pub labels: Option<String>,
    pub from_ms: i64,
    pub to_ms: i64,
    /// Most points per series; the most recent ones are kept when there are more.
    pub limit: usize,
}

/// Points of a metric for one node in `[from_ms, to_ms]`; `None` if the node is unknown.
pub fn series(conn: &Connection, q: &SeriesQuery) -> Result<Option<Vec<SeriesPoints>>, StoreError> {
    let SeriesQuery {
        site,
        node,
        metric,
        labels,
        from_ms,
        to_ms,
        limit,
    } = q;
    let (from_ms, to_ms, limit, metric) = (*from_ms, *to_ms, *limit, metric.as_str());
    let node_id: Option<i64> = conn
        .query_row(
            "SELECT id FROM nodes WHERE site = ?1 AND node = ?2",
            params![site, node],
            |r| r.get(0),
        )
        .optional()?;
    let Some(node_id) = node_id else {
        return Ok(None);
    };
    let mut list = conn.prepare(
        "SELECT id, labels FROM series WHERE node_id = ?1 AND metric = ?2
         AND (?3 IS NULL OR labels = ?3) ORDER BY labels",
    )?;
    let ids: Vec<(i64, String)> = list
        .query_map(params![node_id, metric, labels], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?
        .collect::<Result<_, _>>()?;
    let mut points = conn.prepare(
        "SELECT ts_ms, value FROM (
             SELECT ts_ms, value FROM samples
             WHERE series_id = ?1 AND ts_ms BETWEEN ?2 AND ?3
             ORDER BY ts_ms DESC LIMIT ?4)
         ORDER BY ts_ms",
    )?;
    let mut out = Vec::with_capacity(ids.len());
    for (id, labels) in ids {
        let pts = points
            .query_map(params![id, from_ms, to_ms, limit as i64], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?
            .collect::<Result<_, _>>()?;
        out.push(SeriesPoints {
            metric: metric.to_owned(),
            labels,
            points: pts,
        });
    }
    Ok(Some(out))
}
