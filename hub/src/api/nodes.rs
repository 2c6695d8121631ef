//! `/api/v1/nodes…`: the node list and one node's detail (history is in `history.rs`).

use axum::Json;
use axum::extract::{Path, State};

use super::history::{ids, unknown};
use super::{ApiError, AppState};
use crate::state::NodeView;
use crate::store::{self, NodeDetail};

pub async fn list(State(state): State<AppState>) -> Json<Vec<NodeView>> {
    Json(state.snapshot.borrow().as_ref().clone())
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
