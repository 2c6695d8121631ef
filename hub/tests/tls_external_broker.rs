//! The hub against an external broker over TLS: Debian's Mosquitto with a test CA made by
//! `openssl`; hub and agent both connect with `mqtts://` and `[tls] ca-file`, and the hub
//! stores the agent's metrics. Loopback only.

mod common;
#[path = "../../agent/tests/support/pki.rs"]
mod pki;

use std::process::Stdio;
use std::time::Duration;

use common::*;
use pki::Pki;

#[test]
fn hub_and_agent_over_mqtts_to_mosquitto() {
    let openssl = require_program("openssl", "openssl");
    let dir = tempfile::tempdir().expect("temp dir");
    let pki = Pki::generate(&openssl, dir.path());
    let port = free_port();
    let _broker = start_mosquitto(
        dir.path(),
        port,
        &format!(
            "user root\npersistence false\nlistener {port} 127.0.0.1\nallow_anonymous true\n\
         cafile {}\ncertfile {}\nkeyfile {}\n",
            pki.ca.display(),
            pki.server_cert.display(),
            pki.server_key.display()
        ),
    );
    let url = format!("mqtts://127.0.0.1:{port}");
    let ca = pki.ca.to_str().expect("utf-8");

    let hub_conf = dir.path().join("hub.toml");
    std::fs::write(
        &hub_conf,
        format!("broker = {url:?}\n[tls]\nca-file = {ca:?}\n"),
    )
    .expect("write hub.toml");
    let hub = start_hub(&[
        "--no-local-agent",
        "--config",
        hub_conf.to_str().expect("utf-8"),
    ]);

    let agent_conf = dir.path().join("agent.toml");
    std::fs::write(
        &agent_conf,
        format!(
            "site = \"club-tls\"\nnode = \"pi-tls\"\nbroker = {url:?}\nheartbeat-interval-s = 1\n\
             metrics-interval-s = 1\nkeepalive-s = 2\n[tls]\nca-file = {ca:?}\n"
        ),
    )
    .expect("write agent.toml");
    let _agent = spawn(
        "sitewatch-agent",
        agent_bin(),
        &["--config", agent_conf.to_str().expect("utf-8")],
        Stdio::null(),
    );
    wait_for("pi-tls online via mqtts", Duration::from_secs(20), || {
        hub.node("club-tls", "pi-tls")
            .filter(|n| n["status"] == "online")
    });
    wait_for("stored cpu points", Duration::from_secs(20), || {
        hub.get("/api/v1/nodes/club-tls/pi-tls/series?metric=cpu.usage_pct")
            .filter(|s| {
                s["series"][0]["points"]
                    .as_array()
                    .is_some_and(|p| !p.is_empty())
            })
    });
}

/// A hub told to use TLS with an unreadable CA file refuses to start and names the key.
#[test]
fn hub_refuses_a_missing_ca_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let conf = dir.path().join("hub.toml");
    std::fs::write(
        &conf,
        "broker = \"mqtts://127.0.0.1:8883\"\n[tls]\nca-file = \"/nonexistent/ca.pem\"\n",
    )
    .expect("write hub.toml");
    let out = std::process::Command::new(hub_bin())
        .args([
            "--config",
            conf.to_str().expect("utf-8"),
            "--data-dir",
            dir.path().to_str().expect("utf-8"),
        ])
        .output()
        .expect("run hub");
    assert_eq!(out.status.code(), Some(78), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("ca-file") && err.contains("/nonexistent/ca.pem"),
        "{err}"
    );
}
