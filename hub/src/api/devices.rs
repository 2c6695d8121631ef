//! `/api/v1/sites/{site}/devices`: a site's LAN device inventory, and naming a device or
//! marking it known (`PATCH …/devices/{key}`, key = MAC address or `ip:<address>`).

use axum::Json;
use axum::extract::{Path, State};
use sitewatch_proto::SiteId;
use tokio::sync::oneshot;

use super::{ApiError, AppState};
use crate::alerting::Command;
use crate::inventory::{Device, DevicePatch};
use crate::store;

fn site_id(site: String) -> Result<SiteId, ApiError> {
    SiteId::new(site).map_err(|e| ApiError::BadRequest(e.to_string()))
}

pub async fn list(
    State(state): State<AppState>,
    Path(site): Path<String>,
) -> Result<Json<Vec<Device>>, ApiError> {
    let site = site_id(site)?;
    let s = site.to_string();
    let devices = state
        .reader
        .with(move |c| store::site_devices(c, &s))
        .await?;
    Ok(Json(devices))
}

pub async fn patch(
    State(state): State<AppState>,
    Path((site, key)): Path<(String, String)>,
    body: Result<Json<DevicePatch>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Device>, ApiError> {
    let site = site_id(site)?;
    let Json(patch) = body.map_err(|e| {
        ApiError::BadRequest(format!(
            "{}; expected {{\"name\": \"Printer\", \"known\": true}} (either or both)",
            e.body_text()
        ))
    })?;
    let tx = state
        .alert_commands
        .as_ref()
        .ok_or_else(|| ApiError::Unavailable("the inventory is not running in this hub".into()))?;
    let (reply, answer) = oneshot::channel();
    tx.send(Command::PatchDevice {
        site,
        key,
        patch,
        reply,
    })
    .await
    .map_err(|_| ApiError::Unavailable("the hub is shutting down".into()))?;
    let device = answer
        .await
        .map_err(|_| ApiError::Unavailable("the hub is shutting down".into()))?
        .map_err(|e| {
            if e.starts_with("no device") {
                ApiError::NotFound(e)
            } else {
                ApiError::BadRequest(e)
            }
        })?;
    Ok(Json(device))
}
