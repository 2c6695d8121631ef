//! `/api/v1/alerts` (live and history, acknowledgement) and `/api/v1/silences` (CRUD).
//! Live state comes from the ingest task's snapshot; changes go to it as commands, so the
//! alert engine keeps a single owner.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use tokio::sync::oneshot;

use super::{ApiError, AppState};
use crate::alert::{Alert, AlertState, Matcher, Silence};
use crate::alerting::Command;
use crate::clock::now_ms;
use crate::store;

/// Most history rows returned.
const MAX_LIMIT: usize = 1000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertParams {
    state: Option<String>,
    site: Option<String>,
    limit: Option<usize>,
}

pub async fn list(
    State(state): State<AppState>,
    query: Result<Query<AlertParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Vec<Alert>>, ApiError> {
    let Query(q) = query.map_err(|e| {
        ApiError::BadRequest(format!(
            "{}; expected ?state=firing|pending|active|resolved|all[&site=ID][&limit=N]",
            e.body_text()
        ))
    })?;
    let limit = q.limit.unwrap_or(200).clamp(1, MAX_LIMIT);
    let wanted = q.state.as_deref().unwrap_or("active");
    let live = |keep: &dyn Fn(&Alert) -> bool| -> Vec<Alert> {
        state
            .alerts
            .borrow()
            .alerts
            .iter()
            .filter(|a| keep(a))
            .filter(|a| q.site.as_deref().is_none_or(|s| a.site.as_str() == s))
            .take(limit)
            .cloned()
            .collect()
    };
    let out = match wanted {
        "firing" => live(&|a| a.state == AlertState::Firing),
        "pending" => live(&|a| a.state == AlertState::Pending),
        "active" => live(&|_| true),
        "resolved" | "all" => {
            let filter = (wanted == "resolved").then_some("resolved");
            let site = q.site.clone();
            state
                .reader
                .with(move |c| store::alert_history(c, filter, site.as_deref(), limit))
                .await?
        }
        other => {
            return Err(ApiError::BadRequest(format!(
                "invalid state={other:?}; use firing, pending, active (both), resolved or all"
            )));
        }
    };
    Ok(Json(out))
}

async fn ask<T>(
    state: &AppState,
    make: impl FnOnce(oneshot::Sender<Result<T, String>>) -> Command,
) -> Result<T, ApiError> {
    let tx = state
        .alert_commands
        .as_ref()
        .ok_or_else(|| ApiError::Unavailable("alerting is not running in this hub".into()))?;
    let (reply, answer) = oneshot::channel();
    tx.send(make(reply))
        .await
        .map_err(|_| ApiError::Unavailable("the hub is shutting down".into()))?;
    answer
        .await
        .map_err(|_| ApiError::Unavailable("the hub is shutting down".into()))?
        .map_err(ApiError::BadRequest)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AckBody {
    /// Who acknowledges (a name or an e-mail address).
    by: String,
}

pub async fn acknowledge(
    State(state): State<AppState>,
    Path(fingerprint): Path<String>,
    body: Result<Json<AckBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Alert>, ApiError> {
    let Json(body) = body.map_err(|e| {
        ApiError::BadRequest(format!("{}; expected {{\"by\": \"NAME\"}}", e.body_text()))
    })?;
    if body.by.trim().is_empty() {
        return Err(ApiError::BadRequest(
            "by: say who acknowledges (a name or an e-mail address)".into(),
        ));
    }
    let known = state
        .alerts
        .borrow()
        .alerts
        .iter()
        .any(|a| a.fingerprint == fingerprint);
    if !known {
        return Err(ApiError::NotFound(format!(
            "no active alert {fingerprint}; GET /api/v1/alerts lists them"
        )));
    }
    let alert = ask(&state, |reply| Command::Acknowledge {
        fingerprint,
        by: body.by,
        reply,
    })
    .await?;
    Ok(Json(alert))
}

pub async fn silences(State(state): State<AppState>) -> Json<Vec<Silence>> {
    Json(state.alerts.borrow().silences.clone())
}

/// A new silence: `ends_ms` or `duration_s`; `id` and `starts_ms` (now) are optional.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewSilence {
    id: Option<String>,
    matchers: Vec<Matcher>,
    starts_ms: Option<u64>,
    ends_ms: Option<u64>,
    duration_s: Option<u64>,
    created_by: String,
    #[serde(default)]
    comment: String,
}

fn new_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(now_ms());
    format!("{:016x}", h.finish())
}

pub async fn create_silence(
    State(state): State<AppState>,
    body: Result<Json<NewSilence>, axum::extract::rejection::JsonRejection>,
) -> Result<(StatusCode, Json<Silence>), ApiError> {
    const HELP: &str = "expected {\"matchers\": [{\"label\": \"site\", \"value\": \"club-1\"}], \
                        \"duration_s\": 3600, \"created_by\": \"NAME\", \"comment\": \"...\"}";
    let Json(b) = body.map_err(|e| ApiError::BadRequest(format!("{}; {HELP}", e.body_text())))?;
    let now = now_ms();
    let starts_ms = b.starts_ms.unwrap_or(now);
    let ends_ms = match (b.ends_ms, b.duration_s) {
        (Some(e), None) => e,
        (None, Some(d)) => starts_ms.saturating_add(d.saturating_mul(1000)),
        _ => {
            return Err(ApiError::BadRequest(format!(
                "give either ends_ms or duration_s; {HELP}"
            )));
        }
    };
    let silence = Silence {
        id: b.id.filter(|i| !i.trim().is_empty()).unwrap_or_else(new_id),
        matchers: b.matchers,
        starts_ms,
        ends_ms,
        created_by: b.created_by,
        comment: b.comment,
    };
    silence.validate().map_err(ApiError::BadRequest)?;
    let stored = ask(&state, |reply| Command::SetSilence(silence, reply)).await?;
    Ok((StatusCode::CREATED, Json(stored)))
}

pub async fn delete_silence(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Silence>, ApiError> {
    let known = state.alerts.borrow().silences.iter().any(|s| s.id == id);
    if !known {
        return Err(ApiError::NotFound(format!(
            "no silence {id} in force; GET /api/v1/silences lists them"
        )));
    }
    Ok(Json(
        ask(&state, |reply| Command::ExpireSilence(id, reply)).await?,
    ))
}
