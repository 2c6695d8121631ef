//! HTTP API and dashboard (axum). `app(state)` builds the router so tests can drive it with
//! `tower::ServiceExt::oneshot` and no socket.

mod dashboard;
mod error;
mod events;
mod nodes;

use std::sync::Arc;

use axum::{Json, Router, routing::get};
use serde_json::json;
use tokio::sync::watch;

pub use error::ApiError;

use crate::ingest::IngestStats;
use crate::state::NodeView;
use crate::store::Reader;

/// Shared state of every handler.
#[derive(Clone)]
pub struct AppState {
    pub reader: Reader,
    /// Latest fleet snapshot from ingest; handlers and SSE streams read it, never lock.
    pub snapshot: watch::Receiver<Arc<Vec<NodeView>>>,
    pub mqtt_connected: watch::Receiver<bool>,
    pub stats: Arc<IngestStats>,
}

pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/", get(dashboard::index))
        .route("/assets/{file}", get(dashboard::asset))
        .route("/healthz", get(healthz))
        .route("/api/v1/nodes", get(nodes::list))
        .route("/api/v1/nodes/{site}/{node}", get(nodes::detail))
        .route("/api/v1/nodes/{site}/{node}/series", get(nodes::series))
        .route("/api/v1/events", get(events::stream))
        .fallback(|| async {
            ApiError::NotFound("no such endpoint; see docs/ARCHITECTURE.md for the API".into())
        })
        .with_state(state)
}

async fn healthz(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> Json<serde_json::Value> {
    use std::sync::atomic::Ordering::Relaxed;
    Json(json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "mqtt_connected": *state.mqtt_connected.borrow(),
        "messages_received": state.stats.received.load(Relaxed),
        "messages_malformed": state.stats.malformed.load(Relaxed),
    }))
}
