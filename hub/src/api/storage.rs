//! `GET /api/v1/storage`: database health, size and rows per tier.

use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use sitewatch_proto::StorageHealth;

use super::{ApiError, AppState};
use crate::store::{self, StorageStats};

/// Row counts walk whole indexes; a cached answer this fresh is served instead.
pub const STATS_TTL: Duration = Duration::from_secs(15);

#[derive(Debug, Clone, Serialize)]
pub struct StorageResponse {
    pub health: StorageHealth,
    #[serde(flatten)]
    pub stats: StorageStats,
}

pub async fn get(State(state): State<AppState>) -> Result<Json<StorageResponse>, ApiError> {
    let health = state.storage.borrow().clone();
    let cached = state.stats_cache.lock().ok().and_then(|c| {
        c.as_ref()
            .filter(|(t, _)| t.elapsed() < STATS_TTL)
            .map(|(_, s)| s.clone())
    });
    let stats = match cached {
        Some(s) => s,
        None => {
            let retention = state.retention;
            let path = state.reader.path().to_owned();
            let s = state
                .reader
                .with(move |c| store::storage_stats(c, &path, &retention))
                .await?;
            if let Ok(mut c) = state.stats_cache.lock() {
                *c = Some((Instant::now(), s.clone()));
            }
            s
        }
    };
    Ok(Json(StorageResponse { health, stats }))
}
