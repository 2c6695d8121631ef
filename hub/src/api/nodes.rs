//! `/api/v1/nodes…`: the node list, one node's detail, and a metric's points.

use axum::Json;
use axum::extract::{Path, Query, State};
use serde::Deserialize;
use sitewatch_proto::{NodeId, SiteId};

use super::{ApiError, AppState};
use crate::clock::now_ms;
use crate::state::NodeView;
use crate::store::{self, NodeDetail, SeriesPoints};

/// Most points returned per series.
const MAX_POINTS: usize = 10_000;
/// Range used when `from` is not given.
const DEFAULT_RANGE_MS: i64 = 3_600_000;

pub async fn list(State(state): State<AppState>) -> Json<Vec<NodeView>> {
    Json(state.snapshot.borrow().as_ref().clone())
}

fn ids(site: String, node: String) -> Result<(SiteId, NodeId), ApiError> {
    let site = SiteId::new(site).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let node = NodeId::new(node).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    Ok((site, node))
}

fn unknown(site: &SiteId, node: &NodeId) -> ApiError {
    ApiError::NotFound(format!(
        "node {site}/{node} is unknown to this hub; GET /api/v1/nodes lists known nodes"
    ))
}

pub async fn detail(
    State(state): State<AppState>,
    Path((site, node)): Path<(String, String)>,
) -> Result<Json<NodeDetail>, ApiError> {
    let (site, node) = ids(site, node)?;
    let (s, n) = (site.to_string(), node.to_string());
    let found = state
        .reader
        .with(move |c| store::node_detail(c, &s, &n))
        .await?;
    let mut detail = found.ok_or_else(|| unknown(&site, &node))?;
    // The live status is the one ingest holds; the database may lag by one batch.
    if let Some(v) = state
        .snapshot
        .borrow()
        .iter()
        .find(|v| v.site == site && v.node == node)
    {
        detail.status = v.status.as_str().to_owned();
        detail.status_since_ms = Some(v.status_since_ms);
        detail.last_seen_ms = v.last_seen_ms.or(detail.last_seen_ms);
    }
    Ok(Json(detail))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeriesQuery {
    metric: Option<String>,
    labels: Option<String>,
    from: Option<i64>,
    to: Option<i64>,
}

#[derive(Debug, serde::Serialize)]
pub struct SeriesResponse {
    site: SiteId,
    node: NodeId,
    metric: String,
    from: i64,
    to: i64,
    series: Vec<SeriesPoints>,
}

pub async fn series(
    State(state): State<AppState>,
    Path((site, node)): Path<(String, String)>,
    query: Result<Query<SeriesQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<SeriesResponse>, ApiError> {
    let Query(q) = query.map_err(|e| {
        ApiError::BadRequest(format!(
            "{}; expected ?metric=NAME[&labels=K=V][&from=UNIX_MS][&to=UNIX_MS]",
            e.body_text()
        ))
    })?;
    let (site, node) = ids(site, node)?;
    let metric = q.metric.filter(|m| !m.is_empty()).ok_or_else(|| {
        ApiError::BadRequest(
            "missing ?metric=, e.g. ?metric=cpu.usage_pct (GET /api/v1/nodes/{site}/{node} lists a node's series)".into(),
        )
    })?;
    let to = q.to.unwrap_or(now_ms() as i64);
    let from = q.from.unwrap_or(to - DEFAULT_RANGE_MS);
    if from > to {
        return Err(ApiError::BadRequest(format!(
            "from ({from}) is after to ({to}); both are Unix milliseconds"
        )));
    }
    let query = store::SeriesQuery {
        site: site.to_string(),
        node: node.to_string(),
        metric: metric.clone(),
        labels: q.labels,
        from_ms: from,
        to_ms: to,
        limit: MAX_POINTS,
    };
    let found = state.reader.with(move |c| store::series(c, &query)).await?;
    let series = found.ok_or_else(|| unknown(&site, &node))?;
    Ok(Json(SeriesResponse {
        site,
        node,
        metric,
        from,
        to,
        series,
    }))
}
