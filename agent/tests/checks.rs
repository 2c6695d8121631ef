//! `checks::run_all` against real things: HTTP servers and closed ports on loopback, files
//! in a temp dir, this test's own process, a server that never answers, and systemd when
//! present. Traffic goes to 127.0.0.1 only.

use std::time::{Duration, Instant};

use sitewatch_agent::checks::{CheckConfig, CheckKind, run_all};
use sitewatch_proto::payload::CheckResult;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

fn check(name: &str, kind: CheckKind, timeout_ms: Option<u64>) -> CheckConfig {
    CheckConfig {
        name: name.into(),
        kind,
        timeout_ms,
    }
}

fn http(name: &str, port: u16, expect_status: u16, timeout_ms: u64) -> CheckConfig {
    let url = format!("http://127.0.0.1:{port}/health");
    let kind = CheckKind::Http { url, expect_status };
    check(name, kind, Some(timeout_ms))
}

/// An HTTP server on 127.0.0.1:0 answering every request with `status_line`; returns its
/// port. It lives as long as the test's runtime.
async fn http_server(status_line: &'static str) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("local addr").port();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let response = format!("{status_line}\r\nContent-Length: 2\r\n\r\nok");
                let _ = stream.write_all(response.as_bytes()).await;
            });
        }
    });
    port
}

/// A server that accepts connections and never answers (nor closes them).
async fn silent_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("local addr").port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    port
}

/// A port nothing listens on: bound, then released.
async fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    listener.local_addr().expect("local addr").port()
}

fn by_name<'a>(results: &'a [CheckResult], name: &str) -> &'a CheckResult {
    results
        .iter()
        .find(|r| r.name == name)
        .unwrap_or_else(|| panic!("no result named {name}: {results:?}"))
}

#[tokio::test]
async fn http_checks_report_status_and_latency() {
    let ok_port = http_server("HTTP/1.1 200 OK").await;
    let down_port = http_server("HTTP/1.1 503 Service Unavailable").await;
    let results = run_all(&[
        http("web", ok_port, 200, 2_000),
        http("api", down_port, 200, 2_000),
        http("maintenance", down_port, 503, 2_000),
    ])
    .await;

    let names: Vec<&str> = results.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["web", "api", "maintenance"], "config order");

    let web = &results[0];
    assert!(web.ok, "{web:?}");
    assert_eq!((web.kind.as_str(), web.state.as_str()), ("http", "200"));
    assert!(
        web.latency_ms.is_some_and(|ms| ms > 0.0 && ms < 2_000.0),
        "{web:?}"
    );

    let api = &results[1];
    assert!(!api.ok);
    assert_eq!(api.state, "503");
    assert_eq!(
        api.detail.as_deref(),
        Some("expected status 200, got 503 Service Unavailable")
    );
    assert!(api.latency_ms.is_some());

    assert!(results[2].ok, "503 was expected: {:?}", results[2]);
}

#[tokio::test]
async fn closed_ports_are_refused_for_tcp_and_http() {
    let open = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let open_port = open.local_addr().expect("addr").port();
    let closed = closed_port().await;
    let tcp = |name: &str, port| {
        let kind = CheckKind::Tcp {
            host: "127.0.0.1".into(),
            port,
        };
        check(name, kind, Some(2_000))
    };
    let results = run_all(&[
        tcp("open", open_port),
        tcp("closed", closed),
        http("web-down", closed, 200, 2_000),
    ])
    .await;

    let open = by_name(&results, "open");
    assert!(open.ok && open.state == "open", "{open:?}");
    assert!(open.latency_ms.is_some());
    for name in ["closed", "web-down"] {
        let r = by_name(&results, name);
        assert!(!r.ok, "{r:?}");
        assert_eq!(r.state, "refused", "{r:?}");
        assert!(r.detail.as_deref().is_some_and(|d| d.contains("127.0.0.1")));
    }
}

#[tokio::test]
async fn path_checks_say_application_missing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let present = dir.path().join("app");
    std::fs::write(&present, b"#!/bin/sh\n").expect("write");
    let absent = dir.path().join("videos");
    let path = |name: &str, p: &std::path::Path| {
        let kind = CheckKind::Path {
            path: p.display().to_string(),
        };
        check(name, kind, None)
    };
    let results = run_all(&[path("app", &present), path("videos", &absent)]).await;

    assert!(results[0].ok);
    assert_eq!(results[0].state, "present");
    assert!(!results[1].ok);
    assert_eq!(results[1].state, "missing");
    assert_eq!(
        results[1].detail,
        Some(format!(
            "application missing: {} not found",
            absent.display()
        ))
    );
}

#[tokio::test]
async fn process_checks_find_this_test_by_comm_and_full_name() {
    let comm = std::fs::read_to_string("/proc/self/comm").expect("read /proc/self/comm");
    let comm = comm.trim_end_matches('\n').to_owned();
    // The test binary is `checks-<hash>`: longer than the 15 bytes `comm` keeps, so the
    // full name can only be found through `cmdline`.
    let exe = std::env::current_exe().expect("current exe");
    let full = exe
        .file_name()
        .and_then(|n| n.to_str())
        .expect("utf-8 exe name")
        .to_owned();
    let process = |name: &str, process: &str| {
        let kind = CheckKind::Process {
            process: process.into(),
        };
        check(name, kind, None)
    };
    let results = run_all(&[
        process("comm", &comm),
        process("full", &full),
        process("bogus", "sitewatch-no-such-process"),
    ])
    .await;

    for r in &results[..2] {
        assert!(r.ok, "{r:?}");
        assert_eq!(r.state, "running");
        assert!(
            r.detail.as_deref().is_some_and(|d| d.contains("process")),
            "{r:?}"
        );
    }
    assert!(!results[2].ok);
    assert_eq!(results[2].state, "missing");
}

#[tokio::test]
async fn a_hung_check_times_out_without_delaying_the_others() {
    const TIMEOUT_MS: u64 = 300;
    let silent = silent_server().await;
    let fast = http_server("HTTP/1.1 200 OK").await;
    // Four hung checks: run one after another they would take 4 × 300 ms.
    let mut checks: Vec<CheckConfig> = (0..4)
        .map(|i| http(&format!("slow-{i}"), silent, 200, TIMEOUT_MS))
        .collect();
    checks.push(http("fast", fast, 200, 2_000));

    let started = Instant::now();
    // An outer bound so a missing timeout fails the test instead of hanging it.
    let results = tokio::time::timeout(Duration::from_secs(10), run_all(&checks))
        .await
        .expect("run_all did not return: a hung check was not timed out");
    let elapsed = started.elapsed();

    for r in &results[..4] {
        assert!(!r.ok, "{r:?}");
        assert_eq!(r.state, "timeout", "{r:?}");
        let detail = r.detail.as_deref().unwrap_or_default();
        assert!(detail.contains("300 ms"), "{detail}");
    }
    let fast = by_name(&results, "fast");
    assert!(fast.ok && fast.state == "200", "{fast:?}");
    assert!(
        elapsed >= Duration::from_millis(TIMEOUT_MS),
        "returned before the timeout: {elapsed:?}"
    );
    // Generous: this asserts concurrency, not speed.
    assert!(
        elapsed < Duration::from_millis(TIMEOUT_MS * 3),
        "checks did not run concurrently: {elapsed:?}"
    );
}

#[tokio::test]
async fn https_is_unsupported_and_systemd_results_are_well_formed() {
    let results = run_all(&[
        check(
            "tls",
            CheckKind::Http {
                url: "https://127.0.0.1/".into(),
                expect_status: 200,
            },
            None,
        ),
        check(
            "unit",
            CheckKind::Systemd {
                unit: "sitewatch-no-such-unit.service".into(),
            },
            Some(3_000),
        ),
    ])
    .await;

    assert_eq!(results[0].state, "unsupported");
    assert!(!results[0].ok);

    // systemd may not run here (containers): any failure state is fine, but a unit that
    // does not exist is never ok, and a failure always says why.
    let unit = &results[1];
    assert_eq!(unit.kind, "systemd");
    assert!(!unit.ok, "{unit:?}");
    assert!(!unit.state.is_empty());
    assert!(
        ["not-found", "inactive", "unknown", "timeout"].contains(&unit.state.as_str()),
        "{unit:?}"
    );
    assert!(unit.detail.as_deref().is_some_and(|d| !d.is_empty()));
}

#[tokio::test]
async fn no_checks_give_no_results() {
    assert!(run_all(&[]).await.is_empty());
}
