//! The `sitewatch-broker` binary: exit codes and messages an operator sees.

#[path = "../../agent/tests/support/pki.rs"]
mod pki;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_sitewatch-broker");

#[test]
fn busy_listen_address_exits_1_and_says_what_to_do() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap();
    let out = Command::new(BIN)
        .args(["--listen", &addr.to_string()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(&addr.to_string()), "{stderr}");
    assert!(stderr.contains("another MQTT broker"), "{stderr}");
    assert!(stderr.contains("--listen"), "{stderr}");
}

#[test]
fn invalid_arguments_exit_2() {
    for args in [
        &["--listen", "not-an-address"][..],
        &["--max-connections", "0"],
        &["--max-payload-bytes", "12"],
        &["--no-such-flag"],
        // TLS needs its address, certificate and key together; TLS-only needs TLS.
        &["--tls-listen", "127.0.0.1:0"],
        &["--tls-cert", "c.pem", "--tls-key", "k.pem"],
        &["--no-plain"],
        &["--publish-burst", "0"],
    ] {
        let out = Command::new(BIN).args(args).output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn unreadable_tls_files_exit_1_and_name_the_file() {
    let out = Command::new(BIN)
        .args(["--listen", "127.0.0.1:0", "--tls-listen", "127.0.0.1:0"])
        .args([
            "--tls-cert",
            "/nonexistent/server.pem",
            "--tls-key",
            "/nonexistent/server.key",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("/nonexistent/server.pem"), "{stderr}");
}

/// SIGHUP re-reads the certificate; a broken file is reported and the broker keeps serving
/// with the previous one.
#[test]
fn sighup_reloads_the_tls_certificate() {
    let openssl = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|d| d.join("openssl"))
        .find(|p| p.is_file())
        .expect("openssl not found: install the Debian package openssl");
    let dir = tempfile::tempdir().unwrap();
    let pki = pki::Pki::generate(&openssl, dir.path());
    let mut child = Command::new(BIN)
        .args(["--no-plain", "--tls-listen", "127.0.0.1:0"])
        .arg("--tls-cert")
        .arg(&pki.server_cert)
        .arg("--tls-key")
        .arg(&pki.server_key)
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut wait_for = |wanted: &str| {
        let started = Instant::now();
        loop {
            let line = lines.next().expect("broker logs").unwrap();
            if line.contains(wanted) {
                return line;
            }
            assert!(
                started.elapsed() < Duration::from_secs(15),
                "no {wanted:?} in time"
            );
        }
    };
    wait_for("sitewatch-broker ready");
    let signal = |name: &str| {
        let status = Command::new("kill")
            .args([name, &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    };
    signal("-HUP");
    wait_for("TLS certificate reloaded");
    std::fs::write(&pki.server_key, "garbage").unwrap();
    signal("-HUP");
    let line = wait_for("TLS reload failed");
    assert!(line.contains("server.key"), "{line}");
    signal("-TERM");
    let deadline = Instant::now() + Duration::from_secs(5);
    let code = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status.code();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("broker did not stop within 5 s of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(code, Some(0));
}

#[test]
fn sigterm_stops_the_broker_with_exit_0() {
    let mut child = Command::new(BIN)
        .args(["--listen", "127.0.0.1:0"])
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let started = Instant::now();
    loop {
        let line = lines.next().expect("broker logs until ready").unwrap();
        if line.contains("sitewatch-broker ready") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "not ready in time"
        );
    }
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(5);
    let code = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status.code();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("broker did not stop within 5 s of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(code, Some(0));
}
