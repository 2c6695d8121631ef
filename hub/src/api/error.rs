//! One error type for every handler: a JSON body `{"error": "..."}` with a message that says
//! what to fix; 5xx details are logged, never sent to the client.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Unavailable(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (code, msg) = match &self {
            ApiError::BadRequest(m) => (StatusCode::BAD_REQUEST, m.clone()),
            ApiError::NotFound(m) => (StatusCode::NOT_FOUND, m.clone()),
            ApiError::Unavailable(m) => (StatusCode::SERVICE_UNAVAILABLE, m.clone()),
            ApiError::Store(err) => {
                tracing::error!(cause = %err, "request failed on the database");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal error reading the database; see the hub's log".to_owned(),
                )
            }
        };
        (code, Json(json!({ "error": msg }))).into_response()
    }
}
