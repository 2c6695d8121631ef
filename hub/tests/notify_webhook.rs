//! Webhook notifier against a real HTTP receiver: an axum server on 127.0.0.1, port 0,
//! started by the test. Checks the JSON and its `text`, the HMAC-SHA256 signature, custom
//! headers, retries after 500s, no retry after a 400, and that a stuck receiver never
//! blocks the caller (drops are counted).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::routing::post;
use serde_json::Value;
use sitewatch_hub::alert::{AlertsConfig, Engine, Notification};
use sitewatch_hub::notify::{self, Dispatcher, NotifierConfig};
use sitewatch_proto::payload::Filesystem;
use sitewatch_proto::{Metrics, NodeId, SiteId};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// What the receiver got: path, headers, body.
type Received = Arc<Mutex<Vec<(String, HeaderMap, Bytes)>>>;

#[derive(Clone, Default)]
struct Receiver {
    got: Received,
    flaky_calls: Arc<Mutex<u32>>,
}

async fn record(
    State(r): State<Receiver>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let path = uri.path().to_owned();
    if let Ok(mut got) = r.got.lock() {
        got.push((path.clone(), headers, body));
    }
    match path.as_str() {
        "/flaky" => {
            let mut calls = r.flaky_calls.lock().unwrap_or_else(|e| e.into_inner());
            *calls += 1;
            if *calls <= 2 {
                StatusCode::INTERNAL_SERVER_ERROR
            } else {
                StatusCode::NO_CONTENT
            }
        }
        "/reject" => StatusCode::BAD_REQUEST,
        "/slow" => {
            tokio::time::sleep(Duration::from_secs(30)).await;
            StatusCode::OK
        }
        _ => StatusCode::OK,
    }
}

/// Starts the receiver on 127.0.0.1:0; returns its base URL.
async fn receiver() -> (String, Receiver) {
    let r = Receiver::default();
    let app = Router::new()
        .route("/{*path}", post(record))
        .with_state(r.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}"), r)
}

async fn wait_for_requests(r: &Receiver, n: usize) -> Vec<(String, HeaderMap, Bytes)> {
    let start = Instant::now();
    loop {
        let got = r.got.lock().map(|g| g.clone()).unwrap_or_default();
        if got.len() >= n {
            return got;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the receiver got {} requests within 20 s, expected {n}",
            got.len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn notifier(toml_text: &str) -> NotifierConfig {
    toml::from_str(toml_text).unwrap_or_else(|e| panic!("{e}\n{toml_text}"))
}

fn start(cfgs: &[NotifierConfig]) -> (Dispatcher, TaskTracker, CancellationToken) {
    let tracker = TaskTracker::new();
    let stop = CancellationToken::new();
    let d = notify::spawn(cfgs, &Default::default(), None, &tracker, stop.clone())
        .expect("notifiers start");
    (d, tracker, stop)
}

/// The root filesystem of club-1/pi-gate fills past 90 %: the engine's notification.
fn disk_full() -> Notification {
    let mut e = Engine::new(AlertsConfig::default().compile().expect("built-in rules"));
    let m = Metrics {
        filesystems: vec![Filesystem {
            mount: "/".into(),
            used_pct: 93.4,
            ..Default::default()
        }],
        ..Default::default()
    };
    let site = SiteId::new("club-1").expect("id");
    let node = NodeId::new("pi-gate").expect("id");
    let mut o = e.on_metrics(&site, &node, &m, 1_733_322_922_000);
    assert_eq!(o.notifications.len(), 1);
    o.notifications.remove(0)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_text_signature_and_custom_headers() {
    let (base, r) = receiver().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let secret_file = dir.path().join("webhook.key");
    std::fs::write(&secret_file, "topsecret\n").expect("write key");
    let cfg = notifier(&format!(
        "name = \"chat\"\nkind = \"webhook\"\nurl = \"{base}/hooks/T1/B2?x=1\"\n\
         secret-file = {:?}\nheaders = {{ \"Authorization\" = \"Bearer abc\", \"X-Team\" = \"ops\" }}\n",
        secret_file.to_str().expect("utf-8")
    ));
    let (d, tracker, stop) = start(&[cfg]);
    d.dispatch(&disk_full());
    let got = wait_for_requests(&r, 1).await;
    let (path, headers, body) = &got[0];
    assert_eq!(path, "/hooks/T1/B2");
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(headers["authorization"], "Bearer abc");
    assert_eq!(headers["x-team"], "ops");
    assert!(
        headers["user-agent"]
            .to_str()
            .unwrap_or("")
            .starts_with("sitewatch-hub/")
    );

    // The signature is HMAC-SHA256 of the exact body with the key from the file.
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"topsecret");
    let expected = format!("sha256={}", hex(ring::hmac::sign(&key, body).as_ref()));
    assert_eq!(headers["x-sitewatch-signature"], expected.as_str());

    let v: Value = serde_json::from_slice(body).expect("JSON body");
    let text = v["text"].as_str().expect("text");
    assert!(
        text.contains("[WARNING] club-1/pi-gate: disk / used 93.4 % > 90 %"),
        "{text}"
    );
    assert!(text.contains("rule disk-full"), "{text}");
    assert!(text.contains("2024-12-04 14:35:22 UTC"), "{text}");
    assert_eq!(v["content"], v["text"]);
    assert_eq!(v["status"], "firing");
    assert_eq!(v["alert"]["rule"], "disk-full");
    assert_eq!(v["alert"]["site"], "club-1");
    assert_eq!(v["alert"]["node"], "pi-gate");
    assert_eq!(v["alert"]["labels"]["mount"], "/");
    assert_eq!(v["alert"]["value"], 93.4);
    assert_eq!(v["alert"]["state"], "firing");
    stop.cancel();
    tracker.close();
    tracker.wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_after_the_receiver_answers_500_twice() {
    let (base, r) = receiver().await;
    let cfg = notifier(&format!(
        "name = \"chat\"\nkind = \"webhook\"\nurl = \"{base}/flaky\"\n\
         retry-min = \"50ms\"\nretry-max = \"200ms\"\nmax-attempts = 5\n"
    ));
    let (d, tracker, stop) = start(&[cfg]);
    d.dispatch(&disk_full());
    let got = wait_for_requests(&r, 3).await;
    // The same notification each time.
    assert_eq!(got[0].2, got[2].2);
    let start_wait = Instant::now();
    while d.stats()[0].sent == 0 && start_wait.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let s = &d.stats()[0];
    assert_eq!((s.sent, s.retries, s.failed), (1, 2, 0), "{s:?}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        r.got.lock().map(|g| g.len()).unwrap_or(0),
        3,
        "no request after the 204"
    );
    stop.cancel();
    tracker.close();
    tracker.wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_400_is_not_retried() {
    let (base, r) = receiver().await;
    let cfg = notifier(&format!(
        "name = \"chat\"\nkind = \"webhook\"\nurl = \"{base}/reject\"\nretry-min = \"50ms\"\n"
    ));
    let (d, tracker, stop) = start(&[cfg]);
    d.dispatch(&disk_full());
    wait_for_requests(&r, 1).await;
    let start_wait = Instant::now();
    while d.stats()[0].failed == 0 && start_wait.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let s = &d.stats()[0];
    assert_eq!((s.sent, s.retries, s.failed), (0, 0, 1), "{s:?}");
    assert_eq!(r.got.lock().map(|g| g.len()).unwrap_or(0), 1);
    stop.cancel();
    tracker.close();
    tracker.wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_receiver_never_blocks_the_caller() {
    let (base, r) = receiver().await;
    let cfg = notifier(&format!(
        "name = \"chat\"\nkind = \"webhook\"\nurl = \"{base}/slow\"\nqueue = 1\ntimeout = \"60s\"\n"
    ));
    let (d, tracker, stop) = start(&[cfg]);
    let n = disk_full();
    d.dispatch(&n);
    wait_for_requests(&r, 1).await;
    // One in flight, one queued, the rest dropped at once.
    let t = Instant::now();
    for _ in 0..5 {
        d.dispatch(&n);
    }
    assert!(t.elapsed() < Duration::from_millis(100), "dispatch waited");
    assert_eq!(d.stats()[0].dropped, 4);
    stop.cancel();
    tracker.close();
    tracker.wait().await;
}
