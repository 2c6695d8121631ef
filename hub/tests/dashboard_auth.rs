//! Accounts of the dashboard and the API, over HTTP: what is reachable without logging in
//! on a public listener and on loopback, the session cookie's flags, CSRF on writes, viewer
//! accounts, bearer tokens, the login rate limit (handlers driven with `oneshot`); and, with
//! the real binary, the first admin password printed once and the `user`/`token` commands.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use serde_json::{Value, json};
use sitewatch_hub::api::{AppState, app};
use sitewatch_hub::auth::{AuthConfig, Gate, Role, accounts};
use sitewatch_hub::ingest::IngestStats;
use sitewatch_hub::store::{self, auth::AuthDb};
use tokio::sync::watch;
use tower::ServiceExt;

const ADMIN_PW: &str = "admin-password-1";
const VIEWER_PW: &str = "viewer-password-1";

/// A hub's HTTP side over a fresh database with an admin and a viewer, its listener on
/// `listen`.
fn hub(dir: &tempfile::TempDir, listen: &str, config: AuthConfig) -> AppState {
    let path = store::init(dir.path()).expect("init db");
    let db = AuthDb::new(path.clone());
    accounts::create_user(&db, "admin", Role::Admin, Some(ADMIN_PW.into()), 1).expect("admin");
    accounts::create_user(&db, "viewer", Role::Viewer, Some(VIEWER_PW.into()), 1).expect("viewer");
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
    .with_auth(Gate::new(db, &config, listen.parse().expect("addr")))
}

struct Resp {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    json: Value,
}

async fn send(state: &AppState, req: Request<Body>) -> Resp {
    let resp = app(state.clone()).oneshot(req).await.expect("response");
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .expect("body");
    Resp {
        status,
        headers,
        json: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    }
}

/// A request with `Host: hub.example:8080` unless `headers` name another.
fn get(uri: &str, headers: &[(&str, &str)]) -> Request<Body> {
    let mut r = Request::get(uri);
    if !headers.iter().any(|(k, _)| *k == "host") {
        r = r.header(header::HOST, "hub.example:8080");
    }
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    r.body(Body::empty()).expect("request")
}

fn post(uri: &str, headers: &[(&str, &str)], body: Value) -> Request<Body> {
    let mut r = Request::post(uri).header(header::CONTENT_TYPE, "application/json");
    if !headers.iter().any(|(k, _)| *k == "host") {
        r = r.header(header::HOST, "hub.example:8080");
    }
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    r.body(Body::from(body.to_string())).expect("request")
}

/// Logs in; returns the `Cookie` header value and the CSRF token.
async fn login(state: &AppState, user: &str, password: &str) -> (String, String) {
    let r = send(
        state,
        post(
            "/api/v1/auth/login",
            &[],
            json!({"user": user, "password": password}),
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    let set = r.headers[header::SET_COOKIE].to_str().expect("ascii");
    let cookie = set.split(';').next().expect("pair").to_owned();
    (cookie, r.json["csrf"].as_str().expect("csrf").to_owned())
}

#[tokio::test]
async fn off_loopback_only_the_login_page_and_healthz_are_open() {
    let dir = tempfile::tempdir().expect("tmp");
    let s = hub(&dir, "0.0.0.0:8080", AuthConfig::default());
    for open in [
        "/healthz",
        "/login",
        "/assets/public/style.css",
        "/assets/public/login.js",
    ] {
        assert_eq!(
            send(&s, get(open, &[])).await.status,
            StatusCode::OK,
            "{open}"
        );
    }
    let page = send(&s, get("/login", &[])).await;
    let csp = page.headers[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .expect("csp");
    assert!(csp.contains("script-src 'self'"), "{csp}");
    // The application page sends the browser to the login page.
    let r = send(&s, get("/", &[("accept", "text/html")])).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.headers[header::LOCATION], "/login");
    for closed in [
        "/api/v1/nodes",
        "/api/v1/alerts",
        "/api/v1/events",
        "/assets/app.js",
        "/api/v1/users",
        "/no/such/page",
    ] {
        let r = send(&s, get(closed, &[])).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{closed}");
        assert!(
            r.json["error"]
                .as_str()
                .is_some_and(|e| e.contains("log in"))
        );
    }
    // Even from 127.0.0.1 itself: the listener is not loopback-only.
    let r = send(&s, get("/api/v1/nodes", &[("host", "127.0.0.1:8080")])).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn sessions_need_csrf_on_writes_and_viewers_only_read() {
    let dir = tempfile::tempdir().expect("tmp");
    let s = hub(&dir, "0.0.0.0:8080", AuthConfig::default());
    let wrong = send(
        &s,
        post(
            "/api/v1/auth/login",
            &[],
            json!({"user": "admin", "password": "nope nope nope"}),
        ),
    )
    .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.headers.get(header::SET_COOKIE).is_none());

    let r = send(
        &s,
        post(
            "/api/v1/auth/login",
            &[],
            json!({"user": "admin", "password": ADMIN_PW}),
        ),
    )
    .await;
    let set = r.headers[header::SET_COOKIE].to_str().expect("ascii");
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set.contains(flag), "{set}");
    }
    assert!(!set.contains("Secure"), "plain HTTP: {set}");
    let (cookie, csrf) = login(&s, "admin", ADMIN_PW).await;
    let ok = send(&s, get("/api/v1/nodes", &[("cookie", &cookie)])).await;
    assert_eq!(ok.status, StatusCode::OK);
    let me = send(&s, get("/api/v1/auth/me", &[("cookie", &cookie)])).await;
    assert_eq!(
        (me.json["user"].as_str(), me.json["role"].as_str()),
        (Some("admin"), Some("admin"))
    );

    let silence = json!({"matchers": [{"label": "site", "value": "x"}], "duration_s": 60, "created_by": "admin"});
    let no_csrf = send(
        &s,
        post("/api/v1/silences", &[("cookie", &cookie)], silence.clone()),
    )
    .await;
    assert_eq!(no_csrf.status, StatusCode::FORBIDDEN);
    assert!(
        no_csrf.json["error"]
            .as_str()
            .is_some_and(|e| e.contains("CSRF"))
    );
    let cross = send(
        &s,
        post(
            "/api/v1/silences",
            &[
                ("cookie", &cookie),
                ("x-csrf-token", &csrf),
                ("origin", "https://evil.example"),
            ],
            silence.clone(),
        ),
    )
    .await;
    assert_eq!(cross.status, StatusCode::FORBIDDEN);
    // Through the gate: this test hub has no alert engine, which answers 503.
    let through = send(
        &s,
        post(
            "/api/v1/silences",
            &[
                ("cookie", &cookie),
                ("x-csrf-token", &csrf),
                ("origin", "http://hub.example:8080"),
            ],
            silence.clone(),
        ),
    )
    .await;
    assert_eq!(
        through.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        through.json
    );

    let (vcookie, vcsrf) = login(&s, "viewer", VIEWER_PW).await;
    assert_eq!(
        send(&s, get("/api/v1/alerts", &[("cookie", &vcookie)]))
            .await
            .status,
        StatusCode::OK
    );
    let refused = send(
        &s,
        post(
            "/api/v1/silences",
            &[("cookie", &vcookie), ("x-csrf-token", &vcsrf)],
            silence,
        ),
    )
    .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(
        refused.json["error"]
            .as_str()
            .is_some_and(|e| e.contains("read-only"))
    );
    assert_eq!(
        send(&s, get("/api/v1/users", &[("cookie", &vcookie)]))
            .await
            .status,
        StatusCode::FORBIDDEN
    );

    // Logging out ends the session.
    let out = send(
        &s,
        post(
            "/api/v1/auth/logout",
            &[("cookie", &vcookie), ("x-csrf-token", &vcsrf)],
            json!({}),
        ),
    )
    .await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    assert_eq!(
        send(&s, get("/api/v1/alerts", &[("cookie", &vcookie)]))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn bearer_tokens_work_until_revoked() {
    let dir = tempfile::tempdir().expect("tmp");
    let s = hub(&dir, "0.0.0.0:8080", AuthConfig::default());
    let (cookie, csrf) = login(&s, "admin", ADMIN_PW).await;
    let made = send(
        &s,
        post(
            "/api/v1/tokens",
            &[("cookie", &cookie), ("x-csrf-token", &csrf)],
            json!({"name": "nightly export", "role": "viewer"}),
        ),
    )
    .await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.json);
    let token = made.json["token"].as_str().expect("token").to_owned();
    let id = made.json["id"].as_str().expect("id").to_owned();
    let bearer = format!("Bearer {token}");
    assert_eq!(
        send(&s, get("/api/v1/nodes", &[("authorization", &bearer)]))
            .await
            .status,
        StatusCode::OK
    );
    // A viewer token reads only; no CSRF is asked of a token, the role decides.
    let w = send(
        &s,
        post(
            "/api/v1/silences",
            &[("authorization", &bearer)],
            json!({"matchers": [], "duration_s": 1, "created_by": "x"}),
        ),
    )
    .await;
    assert_eq!(w.status, StatusCode::FORBIDDEN);
    let listed = send(&s, get("/api/v1/tokens", &[("cookie", &cookie)])).await;
    assert!(listed.json.to_string().contains("nightly export"));
    assert!(
        !listed.json.to_string().contains(&token),
        "secrets are never listed"
    );
    let revoke = Request::delete(format!("/api/v1/tokens/{id}"))
        .header("host", "hub.example:8080")
        .header("cookie", &cookie)
        .header("x-csrf-token", &csrf)
        .body(Body::empty())
        .expect("request");
    assert_eq!(send(&s, revoke).await.status, StatusCode::NO_CONTENT);
    let gone = send(&s, get("/api/v1/nodes", &[("authorization", &bearer)])).await;
    assert_eq!(gone.status, StatusCode::UNAUTHORIZED);
    let forged = send(
        &s,
        get(
            "/api/v1/nodes",
            &[("authorization", "Bearer swt_0011aabbccdd_00ff")],
        ),
    )
    .await;
    assert_eq!(forged.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn loopback_may_stay_open_but_not_through_a_proxy_or_a_foreign_host() {
    let dir = tempfile::tempdir().expect("tmp");
    let s = hub(&dir, "127.0.0.1:8080", AuthConfig::default());
    let local = [("host", "127.0.0.1:8080")];
    assert_eq!(
        send(&s, get("/api/v1/nodes", &local)).await.status,
        StatusCode::OK
    );
    let me = send(&s, get("/api/v1/auth/me", &local)).await;
    assert_eq!(me.json["via"], "local");
    for headers in [
        vec![
            ("host", "127.0.0.1:8080"),
            ("x-forwarded-for", "203.0.113.7"),
        ],
        vec![("host", "127.0.0.1:8080"), ("forwarded", "for=203.0.113.7")],
        vec![("host", "rebound.example:8080")],
    ] {
        let r = send(&s, get("/api/v1/nodes", &headers)).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{headers:?}");
    }
    // The secure flag follows the proxy's word.
    let r = send(
        &s,
        post(
            "/api/v1/auth/login",
            &[("x-forwarded-proto", "https")],
            json!({"user": "admin", "password": ADMIN_PW}),
        ),
    )
    .await;
    assert!(
        r.headers[header::SET_COOKIE]
            .to_str()
            .expect("ascii")
            .contains("; Secure")
    );

    // `open-on-loopback = false` closes it.
    let dir2 = tempfile::tempdir().expect("tmp");
    let closed = hub(
        &dir2,
        "127.0.0.1:8080",
        AuthConfig {
            open_on_loopback: false,
            ..AuthConfig::default()
        },
    );
    assert_eq!(
        send(&closed, get("/api/v1/nodes", &local)).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn repeated_failed_logins_are_slowed_down() {
    let dir = tempfile::tempdir().expect("tmp");
    let s = hub(&dir, "0.0.0.0:8080", AuthConfig::default());
    let attempt = || {
        post(
            "/api/v1/auth/login",
            &[],
            json!({"user": "admin", "password": "guess guess guess"}),
        )
    };
    for _ in 0..sitewatch_hub::auth::limiter::MAX_FAILURES {
        assert_eq!(send(&s, attempt()).await.status, StatusCode::UNAUTHORIZED);
    }
    let r = send(&s, attempt()).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(r.headers.contains_key(header::RETRY_AFTER));
}

#[test]
fn first_start_prints_a_generated_admin_password_once_and_the_cli_manages_accounts() {
    let data = tempfile::tempdir().expect("tmp");
    let dir = data.path().to_str().expect("utf-8").to_owned();
    let start = || {
        let (mqtt, http) = (common::free_port(), common::free_port());
        let mut child = Command::new(common::hub_bin())
            .args([
                "--mqtt-listen",
                &format!("127.0.0.1:{mqtt}"),
                "--http-listen",
                &format!("127.0.0.1:{http}"),
                "--data-dir",
                &dir,
                "--no-local-agent",
            ])
            .env("RUST_LOG", "warn")
            .env_remove("SITEWATCH_ADMIN_PASSWORD")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start hub");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let url = format!("http://127.0.0.1:{http}");
        common::wait_for("hub /healthz", Duration::from_secs(30), || {
            common::get_json(&format!("{url}/healthz"))
        });
        let proc = common::Proc {
            child,
            name: "sitewatch-hub".into(),
        };
        (proc, rx, url)
    };
    let (mut first, lines, url) = start();
    let password = common::wait_for("the printed password", Duration::from_secs(10), || {
        let mut seen = false;
        while let Ok(line) = lines.try_recv() {
            if seen && !line.trim().is_empty() {
                return Some(line.trim().to_owned());
            }
            seen |= line.contains("created the dashboard account \"admin\"");
        }
        None
    });
    assert_eq!(password.len(), 23, "{password}");
    let login = |user: &str, pw: &str| {
        ureq::post(&format!("{url}/api/v1/auth/login"))
            .send_json(json!({"user": user, "password": pw}))
            .map(|r| r.status().as_u16())
            .unwrap_or(401)
    };
    assert_eq!(login("admin", &password), 200);
    first.kill9();
    let (mut second, lines, url2) = start();
    std::thread::sleep(Duration::from_millis(300));
    let again: Vec<String> = lines.try_iter().collect();
    assert!(
        !again
            .iter()
            .any(|l| l.contains("created the dashboard account")),
        "printed only at the first start: {again:?}"
    );

    // `sitewatch-hub user add` and `token add` on the same data directory, while it runs.
    let mut add = Command::new(common::hub_bin())
        .args([
            "--data-dir",
            &dir,
            "user",
            "add",
            "alice",
            "--password-stdin",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("user add");
    use std::io::Write;
    add.stdin
        .take()
        .expect("stdin")
        .write_all(b"alice-password-1\n")
        .expect("write");
    assert!(add.wait().expect("wait").success());
    let r = ureq::post(&format!("{url2}/api/v1/auth/login"))
        .send_json(json!({"user": "alice", "password": "alice-password-1"}))
        .expect("alice logs in");
    assert_eq!(r.status().as_u16(), 200);
    let out = Command::new(common::hub_bin())
        .args(["--data-dir", &dir, "token", "add", "cron job"])
        .output()
        .expect("token add");
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let token = stdout
        .lines()
        .find(|l| l.starts_with("swt_"))
        .expect("token printed");
    // As through a reverse proxy: loopback is not open then, the token is needed.
    let status = |auth: Option<&str>| {
        let mut r =
            ureq::get(&format!("{url2}/api/v1/nodes")).header("X-Forwarded-For", "203.0.113.1");
        if let Some(a) = auth {
            r = r.header("Authorization", a);
        }
        match r.call() {
            Ok(resp) => resp.status().as_u16(),
            Err(ureq::Error::StatusCode(code)) => code,
            Err(e) => panic!("request failed: {e}"),
        }
    };
    assert_eq!(status(None), 401);
    assert_eq!(status(Some(&format!("Bearer {token}"))), 200);
    second.kill9();
}
