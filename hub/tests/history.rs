//! Stored history as a user reads it: three hours of samples go through the real writer
//! (frames, rollups, retention), then the HTTP API answers ranges from the right tier with
//! the right values, exports them, and reports the storage.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::Value;
use sitewatch_hub::api::{AppState, app};
use sitewatch_hub::ingest::IngestStats;
use sitewatch_hub::store::{self, Retention, WriteOp, WriterConfig};
use sitewatch_proto::payload::Cpu;
use sitewatch_proto::{Metrics, NodeId, SiteId};
use tokio::sync::{mpsc, watch};
use tower::ServiceExt;

const STEP_MS: i64 = 10_000;
const FRAMES: i64 = 1080; // three hours at 10 s

async fn get_raw(state: &AppState, uri: &str) -> (StatusCode, String) {
    let resp = app(state.clone())
        .oneshot(Request::get(uri).body(Body::empty()).expect("request"))
        .await
        .expect("response");
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), 64 << 20)
        .await
        .expect("body");
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

async fn get(state: &AppState, uri: &str) -> Value {
    let (code, body) = get_raw(state, uri).await;
    assert_eq!(code, StatusCode::OK, "{uri}: {body}");
    serde_json::from_str(&body).expect("json")
}

/// The value sample `i` carries: a saw tooth, so bucket averages are easy to predict.
fn value(i: i64) -> f64 {
    (i % 60) as f64
}

struct Fixture {
    _dir: tempfile::TempDir,
    state: AppState,
    start_ms: i64,
}

/// Stores three hours of 10-second samples ending now through a writer with `retention`,
/// and waits until the rollups have caught up.
async fn stored(retention: Retention) -> Fixture {
    let dir = tempfile::tempdir().expect("tmp");
    let path = store::init(dir.path()).expect("init");
    let (ctx, mut crx) = mpsc::channel(1024);
    let writer = store::spawn_writer(
        path.clone(),
        1024,
        ctx,
        WriterConfig {
            retention,
            rollup_every: Duration::ZERO,
            retention_every: Duration::ZERO,
        },
    )
    .expect("writer");
    tokio::spawn(async move { while crx.recv().await.is_some() {} });
    let now = sitewatch_hub::clock::now_ms() as i64;
    // Aligned to the hour so bucket contents are predictable.
    let start_ms = (now - FRAMES * STEP_MS) / 3_600_000 * 3_600_000;
    for i in 0..FRAMES {
        let m = Metrics {
            ts: (start_ms + i * STEP_MS) as u64,
            session: "s1".into(),
            seq: i as u64 + 1,
            cpu: Some(Cpu {
                usage_pct: value(i),
                ..Default::default()
            }),
            ..Default::default()
        };
        writer
            .tx
            .send(WriteOp::Metrics {
                site: SiteId::new("club").expect("id"),
                node: NodeId::new("pi").expect("id"),
                recv_ms: now as u64,
                json: serde_json::to_string(&m).expect("json"),
                metrics: Box::new(m),
            })
            .await
            .expect("send");
    }
    let (_snap_tx, snapshot) = watch::channel(Arc::new(Vec::new()));
    let (_conn_tx, mqtt_connected) = watch::channel(true);
    let state = AppState::new(
        store::Reader::new(path.clone()),
        snapshot,
        mqtt_connected,
        Arc::new(IngestStats::default()),
        writer.health.clone(),
        retention,
    );
    // Drive the background steps until every frame is folded.
    for _ in 0..200 {
        writer.tx.send(WriteOp::Tick).await.expect("tick");
        tokio::time::sleep(Duration::from_millis(20)).await;
        let s = store::Reader::new(path.clone())
            .with(move |c| store::storage_stats(c, std::path::Path::new(""), &retention))
            .await
            .expect("stats");
        if s.rows.get("metric_messages") == Some(&(FRAMES as u64)) && s.rollup_backlog_frames == 0 {
            break;
        }
    }
    // A few more rounds so retention has run after the last fold.
    for _ in 0..5 {
        writer.tx.send(WriteOp::Tick).await.expect("tick");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    std::mem::forget(writer); // stays up for the test's queries
    Fixture {
        _dir: dir,
        state,
        start_ms,
    }
}

fn points(v: &Value) -> Vec<(i64, f64)> {
    v["series"][0]["points"]
        .as_array()
        .expect("points")
        .iter()
        .map(|p| (p[0].as_i64().expect("ts"), p[1].as_f64().expect("value")))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ranges_are_answered_from_the_tier_that_fits() {
    let f = stored(Retention::default()).await;
    let base = "/api/v1/nodes/club/pi/series?metric=cpu.usage_pct";
    let to = f.start_ms + FRAMES * STEP_MS - 1;

    // The last 10 minutes: raw samples as stored.
    let from = to + 1 - 600_000;
    let v = get(&f.state, &format!("{base}&from={from}&to={to}")).await;
    assert_eq!(v["tier"], "raw", "{v}");

    let p = points(&v);
    assert_eq!(p.len(), 60);
    let first_i = (from - f.start_ms) / STEP_MS;
    assert_eq!(p[0], (from, value(first_i)));

    // The whole range with a 1-hour step: hourly rollups, each the exact average.
    let v = get(
        &f.state,
        &format!("{base}&from={}&to={to}&step=1h", f.start_ms),
    )
    .await;
    assert_eq!(v["tier"], "1h");
    assert_eq!(v["step_ms"], 3_600_000);
    let p = points(&v);
    assert_eq!(p.len(), 3, "{v}");
    for (k, (ts, avg)) in p.iter().enumerate() {
        assert_eq!(*ts, f.start_ms + k as i64 * 3_600_000);
        assert!((avg - 29.5).abs() < 1e-9, "hour {k}: {avg}");
    }

    // 5-minute buckets of maxima from the minute rollups.
    let v = get(
        &f.state,
        &format!("{base}&from={}&to={to}&step=5m&agg=max", f.start_ms),
    )
    .await;
    assert_eq!(v["tier"], "1m");
    let p = points(&v);
    assert_eq!(p.len(), 36);
    // The saw tooth climbs 0..59 over 10 minutes: 5-minute maxima alternate 29 and 59.
    for (k, (_, m)) in p.iter().enumerate() {
        assert_eq!(*m, if k % 2 == 0 { 29.0 } else { 59.0 }, "{p:?}");
    }

    // The same range with no step: at most max_points points.
    let v = get(
        &f.state,
        &format!("{base}&from={}&to={to}&max_points=100", f.start_ms),
    )
    .await;
    assert!(points(&v).len() <= 100);

    // Relative times and unknown metrics.
    let v = get(&f.state, &format!("{base}&from=-5h")).await;
    assert!(!points(&v).is_empty());
    let v = get(
        &f.state,
        "/api/v1/nodes/club/pi/series?metric=nope&from=-3h",
    )
    .await;
    assert_eq!(v["series"], serde_json::json!([]));

    // Export: every raw sample of one metric as CSV, and the hourly rollups as JSON.
    let (code, csv) = get_raw(
        &f.state,
        &format!(
            "/api/v1/nodes/club/pi/export?format=csv&metric=cpu.usage_pct&from={}&to={to}",
            f.start_ms
        ),
    )
    .await;
    assert_eq!(code, StatusCode::OK);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "ts_ms,metric,labels,value");
    assert_eq!(lines.len() as i64, FRAMES + 1);
    assert_eq!(lines[1], format!("{},cpu.usage_pct,,0", f.start_ms));
    let v = get(
        &f.state,
        &format!(
            "/api/v1/nodes/club/pi/export?format=json&tier=1h&metric=cpu.usage_pct&from={}&to={to}",
            f.start_ms
        ),
    )
    .await;
    let rows = v.as_array().expect("array");
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0]["count"], 360);
    assert_eq!(rows[0]["max"], 59.0);

    // Storage report.
    let v = get(&f.state, "/api/v1/storage").await;
    assert_eq!(v["health"]["state"], "ok");
    assert_eq!(v["tiers"][0]["tier"], "raw");
    assert_eq!(v["tiers"][0]["rows"], FRAMES);
    assert_eq!(v["tiers"][1]["rows"], 180);
    assert_eq!(v["tiers"][2]["rows"], 3);
    assert!(v["bytes"].as_u64().is_some_and(|b| b > 0), "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_raw_samples_leave_their_rollups() {
    let f = stored(Retention {
        raw_ms: 2 * 3_600_000,
        ..Retention::default()
    })
    .await;
    let v = get(&f.state, "/api/v1/storage").await;
    let raw = v["tiers"][0]["rows"].as_i64().expect("rows");
    let oldest = v["tiers"][0]["oldest_ms"].as_i64().expect("oldest");
    let horizon = sitewatch_hub::clock::now_ms() as i64 - 2 * 3_600_000;
    assert!(raw > 0 && raw < FRAMES, "raw rows after retention: {raw}");
    assert!(
        oldest >= horizon - 60_000,
        "a raw sample older than 2 h is left: {oldest}"
    );
    // The rollups still cover the whole three hours.
    assert_eq!(v["tiers"][1]["rows"], 180);
    // The first hour is gone from raw but still answered, from the minute rollups.
    let to = f.start_ms + 600_000;
    let v = get(
        &f.state,
        &format!(
            "/api/v1/nodes/club/pi/series?metric=cpu.usage_pct&from={}&to={to}",
            f.start_ms
        ),
    )
    .await;
    assert_eq!(v["tier"], "1m");
    assert_eq!(points(&v).len(), 11);

    let (code, body) = get_raw(&f.state, "/api/v1/nodes/club/pi/export?format=xml").await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert!(body.contains("csv or json"), "{body}");
    let (code, body) = get_raw(
        &f.state,
        "/api/v1/nodes/club/pi/series?metric=cpu.usage_pct&step=fast",
    )
    .await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert!(body.contains("10s"), "{body}");
}
