//! HTTP API handlers driven with `oneshot` (no socket): what a script or browser gets back,
//! including for bad requests.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::Value;
use sitewatch_hub::api::{AppState, app};
use sitewatch_hub::ingest::IngestStats;
use sitewatch_hub::store;
use tokio::sync::watch;
use tower::ServiceExt;

async fn get(state: &AppState, uri: &str) -> (StatusCode, Value) {
    let resp = app(state.clone())
        .oneshot(Request::get(uri).body(Body::empty()).expect("request"))
        .await
        .expect("response");
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .expect("body");
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

fn state(dir: &tempfile::TempDir) -> AppState {
    let path = store::init(dir.path()).expect("init db");
    let (_snap_tx, snapshot) = watch::channel(Arc::new(Vec::new()));
    let (_conn_tx, mqtt_connected) = watch::channel(true);
    let (_health_tx, health) = watch::channel(sitewatch_proto::StorageHealth {
        since: 0,
        state: sitewatch_proto::StorageState::Ok,
        detail: None,
        failed_batches: 0,
        notice: None,
    });
    AppState::new(
        store::Reader::new(path),
        snapshot,
        mqtt_connected,
        Arc::new(IngestStats::default()),
        health,
        store::Retention::default(),
    )
}

#[tokio::test]
async fn healthz_and_empty_node_list() {
    let dir = tempfile::tempdir().expect("tmp");
    let s = state(&dir);
    let (code, body) = get(&s, "/healthz").await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(body["status"], "ok");
    let (code, body) = get(&s, "/api/v1/nodes").await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(body, serde_json::json!([]));
}

#[tokio::test]
async fn bad_requests_say_what_to_fix() {
    let dir = tempfile::tempdir().expect("tmp");
    let s = state(&dir);

    let (code, body) = get(&s, "/api/v1/nodes/Bad%20Site/pi").await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("site id") && e.contains("a-z")),
        "{body}"
    );

    let (code, body) = get(&s, "/api/v1/nodes/club/pi").await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("/api/v1/nodes")),
        "{body}"
    );

    let (code, body) = get(&s, "/api/v1/nodes/club/pi/series").await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("metric=")),
        "{body}"
    );

    let (code, body) = get(
        &s,
        "/api/v1/nodes/club/pi/series?metric=cpu.usage_pct&from=abc",
    )
    .await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("Unix milliseconds") && e.contains("-24h")),
        "{body}"
    );

    let (code, body) = get(&s, "/api/v1/nodes/club/pi/series?metric=m&from=10&to=5").await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert!(
        body["error"].as_str().is_some_and(|e| e.contains("after")),
        "{body}"
    );

    let (code, body) = get(&s, "/api/v1/nope").await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    assert!(body["error"].is_string());
}

#[tokio::test]
async fn dashboard_assets_are_served() {
    let dir = tempfile::tempdir().expect("tmp");
    let s = state(&dir);
    let resp = app(s.clone())
        .oneshot(
            Request::get("/assets/app.js")
                .body(Body::empty())
                .expect("request"),
        )
        .await
        .expect("response");
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .is_ok_and(|c| c.starts_with("text/javascript"))
    );
}

#[tokio::test]
async fn healthz_is_503_while_the_broker_self_probe_fails() {
    let dir = tempfile::tempdir().expect("tmp");
    let (probe_tx, probe_rx) = watch::channel(false);
    let s = state(&dir).with_broker_probe(probe_rx);
    let (code, body) = get(&s, "/healthz").await;
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["status"], "broker_unavailable");
    probe_tx.send_replace(true);
    let (code, _) = get(&s, "/healthz").await;
    assert_eq!(code, StatusCode::OK);
}
