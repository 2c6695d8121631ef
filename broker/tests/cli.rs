//! The `sitewatch-broker` binary: exit codes and messages an operator sees.

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
