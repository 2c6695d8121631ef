//! History of one node: a metric's points over a range (`…/series`) and every sample of a
//! range as CSV or JSON (`…/export`, streamed).

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use sitewatch_proto::{NodeId, SiteId};
use tokio::sync::mpsc;

use super::timeparam::{duration_ms, instant_ms};
use super::{ApiError, AppState};
use crate::clock::now_ms;
use crate::store::query::{self, DEFAULT_MAX_POINTS, ExportRow, SeriesPoints};
use crate::store::{AggKind, Tier};

/// Largest `max_points` a caller may ask for.
const MAX_POINTS_LIMIT: i64 = 10_000;
/// Range used when `from` is not given.
const DEFAULT_RANGE_MS: i64 = 3_600_000;

pub(super) fn ids(site: String, node: String) -> Result<(SiteId, NodeId), ApiError> {
    let site = SiteId::new(site).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let node = NodeId::new(node).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    Ok((site, node))
}

pub(super) fn unknown(site: &SiteId, node: &NodeId) -> ApiError {
    ApiError::NotFound(format!(
        "node {site}/{node} is unknown to this hub; GET /api/v1/nodes lists known nodes"
    ))
}

const TIME_HELP: &str = "from/to are Unix milliseconds, `now`, or relative like -24h; \
                         step is milliseconds or 10s, 5m, 1h, 1d";

fn range(from: Option<&str>, to: Option<&str>) -> Result<(i64, i64, i64), ApiError> {
    let now = now_ms() as i64;
    let bad =
        |what: &str, v: &str| ApiError::BadRequest(format!("invalid {what}={v:?}; {TIME_HELP}"));
    let to = match to {
        Some(v) => instant_ms(v, now).ok_or_else(|| bad("to", v))?,
        None => now,
    };
    let from = match from {
        Some(v) => instant_ms(v, now).ok_or_else(|| bad("from", v))?,
        None => to - DEFAULT_RANGE_MS,
    };
    if from > to {
        return Err(ApiError::BadRequest(format!(
            "from ({from}) is after to ({to}); {TIME_HELP}"
        )));
    }
    Ok((from, to, now))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeriesParams {
    metric: Option<String>,
    labels: Option<String>,
    from: Option<String>,
    to: Option<String>,
    step: Option<String>,
    agg: Option<String>,
    max_points: Option<i64>,
}

#[derive(Debug, serde::Serialize)]
pub struct SeriesResponse {
    site: SiteId,
    node: NodeId,
    metric: String,
    from: i64,
    to: i64,
    /// `raw`, `1m` or `1h`: where the points come from.
    tier: Tier,
    /// Width of each point's bucket, ms (raw points at or below the sample interval are
    /// returned as stored).
    step_ms: i64,
    agg: AggKind,
    series: Vec<SeriesPoints>,
}

const SERIES_HELP: &str = "expected ?metric=NAME[&labels=K=V][&from=…][&to=…][&step=…]\
                           [&agg=avg|min|max|last][&max_points=N]";

pub async fn series(
    State(state): State<AppState>,
    Path((site, node)): Path<(String, String)>,
    query: Result<Query<SeriesParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<SeriesResponse>, ApiError> {
    let Query(q) =
        query.map_err(|e| ApiError::BadRequest(format!("{}; {SERIES_HELP}", e.body_text())))?;
    let (site, node) = ids(site, node)?;
    let metric = q.metric.filter(|m| !m.is_empty()).ok_or_else(|| {
        ApiError::BadRequest(
            "missing ?metric=, e.g. ?metric=cpu.usage_pct (GET /api/v1/nodes/{site}/{node} lists a node's series)".into(),
        )
    })?;
    let (from, to, now) = range(q.from.as_deref(), q.to.as_deref())?;
    let step = match q.step.as_deref() {
        Some(v) => Some(
            duration_ms(v)
                .filter(|d| *d > 0)
                .ok_or_else(|| ApiError::BadRequest(format!("invalid step={v:?}; {TIME_HELP}")))?,
        ),
        None => None,
    };
    let agg = match q.agg.as_deref() {
        Some(v) => AggKind::parse(v).ok_or_else(|| {
            ApiError::BadRequest(format!("invalid agg={v:?}; use avg, min, max or last"))
        })?,
        None => AggKind::Avg,
    };
    let max_points = q.max_points.unwrap_or(DEFAULT_MAX_POINTS);
    if !(2..=MAX_POINTS_LIMIT).contains(&max_points) {
        return Err(ApiError::BadRequest(format!(
            "max_points must be between 2 and {MAX_POINTS_LIMIT}"
        )));
    }
    let rq = query::RangeQuery {
        site: site.to_string(),
        node: node.to_string(),
        metric: metric.clone(),
        labels: q.labels,
        from_ms: from,
        to_ms: to,
        step_ms: step,
        max_points,
        agg,
        now_ms: now,
    };
    let retention = state.retention;
    let found = state
        .reader
        .with(move |c| query::range(c, &rq, &retention))
        .await?;
    let answer = found.ok_or_else(|| unknown(&site, &node))?;
    Ok(Json(SeriesResponse {
        site,
        node,
        metric,
        from,
        to,
        tier: answer.tier,
        step_ms: answer.step_ms,
        agg: answer.agg,
        series: answer.series,
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportParams {
    format: Option<String>,
    metric: Option<String>,
    from: Option<String>,
    to: Option<String>,
    tier: Option<String>,
}

/// Bytes per streamed chunk.
const CHUNK: usize = 64 * 1024;

fn csv_field(out: &mut String, s: &str) {
    if s.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&s.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(s);
    }
}

fn write_row(out: &mut String, csv: bool, raw: bool, first: bool, r: &ExportRow<'_>) {
    use std::fmt::Write;
    if csv {
        let _ = write!(out, "{},", r.ts_ms);
        csv_field(out, r.metric);
        out.push(',');
        csv_field(out, r.labels);
        if raw {
            let _ = writeln!(out, ",{}", r.last);
        } else {
            let _ = writeln!(out, ",{},{},{},{},{}", r.count, r.min, r.avg, r.max, r.last);
        }
    } else {
        if !first {
            out.push_str(",\n");
        }
        let v = if raw {
            serde_json::json!({"ts_ms": r.ts_ms, "metric": r.metric, "labels": r.labels, "value": r.last})
        } else {
            serde_json::json!({"ts_ms": r.ts_ms, "metric": r.metric, "labels": r.labels,
                "count": r.count, "min": r.min, "avg": r.avg, "max": r.max, "last": r.last})
        };
        out.push_str(&v.to_string());
    }
}

pub async fn export(
    State(state): State<AppState>,
    Path((site, node)): Path<(String, String)>,
    query: Result<Query<ExportParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = query.map_err(|e| {
        ApiError::BadRequest(format!(
            "{}; expected ?format=csv|json[&metric=NAME][&from=…][&to=…][&tier=raw|1m|1h]",
            e.body_text()
        ))
    })?;
    let (site, node) = ids(site, node)?;
    let csv = match q.format.as_deref().unwrap_or("csv") {
        "csv" => true,
        "json" => false,
        other => {
            return Err(ApiError::BadRequest(format!(
                "invalid format={other:?}; use csv or json"
            )));
        }
    };
    let (from, to, now) = range(q.from.as_deref(), q.to.as_deref())?;
    let retention = state.retention;
    let tier = match q.tier.as_deref() {
        Some(v) => Tier::parse(v).ok_or_else(|| {
            ApiError::BadRequest(format!("invalid tier={v:?}; use raw, 1m or 1h"))
        })?,
        // The finest tier still holding `from`.
        None if from >= now - retention.raw_ms => Tier::Raw,
        None if from >= now - retention.minute_ms => Tier::Minute,
        None => Tier::Hour,
    };
    let raw = tier == Tier::Raw;
    // The node must exist before the response starts streaming.
    let (s, n) = (site.to_string(), node.to_string());
    let known = state
        .reader
        .with(move |c| Ok(crate::store::node_detail(c, &s, &n)?.is_some()))
        .await?;
    if !known {
        return Err(unknown(&site, &node));
    }
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    let (s, n, metric) = (site.to_string(), node.to_string(), q.metric.clone());
    let reader = state.reader.clone();
    tokio::spawn(async move {
        let err_tx = tx.clone();
        let res = reader
            .with(move |c| {
                let mut buf = String::with_capacity(CHUNK + 1024);
                if csv {
                    buf.push_str(if raw {
                        "ts_ms,metric,labels,value\n"
                    } else {
                        "ts_ms,metric,labels,count,min,avg,max,last\n"
                    });
                } else {
                    buf.push_str("[\n");
                }
                let mut first = true;
                query::export(c, &s, &n, metric.as_deref(), tier, from, to, now, |r| {
                    write_row(&mut buf, csv, raw, first, r);
                    first = false;
                    if buf.len() >= CHUNK {
                        let chunk = Bytes::from(std::mem::take(&mut buf));
                        // The client went away: stop reading.
                        return tx.blocking_send(Ok(chunk)).is_ok();
                    }
                    true
                })?;
                if !csv {
                    buf.push_str("\n]\n");
                }
                let _ = tx.blocking_send(Ok(Bytes::from(buf)));
                Ok(())
            })
            .await;
        if let Err(err) = res {
            tracing::error!(cause = %err, "export failed while streaming");
            let _ = err_tx
                .send(Err(std::io::Error::other(
                    "export failed; see the hub's log",
                )))
                .await;
        }
    });
    let body = Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx));
    let (ctype, ext) = if csv {
        ("text/csv; charset=utf-8", "csv")
    } else {
        ("application/json", "json")
    };
    let disposition = format!(
        "attachment; filename=\"{site}-{node}-{}-{from}-{to}.{ext}\"",
        tier.as_str()
    );
    Ok((
        [
            (header::CONTENT_TYPE, ctype.to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        body,
    )
        .into_response())
}
