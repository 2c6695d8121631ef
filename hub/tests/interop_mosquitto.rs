//! Interop with Debian's Mosquitto: its clients on our embedded broker, and our hub on a
//! real Mosquitto server (`--broker`).

mod common;

use std::collections::HashSet;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;

/// `mosquitto_sub -t 'sitewatch/v1/#' -v` on the hub's embedded broker sees an agent's
/// status, info, heartbeat and metrics, and the hub's ack.
#[test]
fn mosquitto_sub_sees_agent_messages_on_embedded_broker() {
    let sub_bin = require_program("mosquitto_sub", "mosquitto-clients");
    let hub = start_hub(&["--no-local-agent"]);
    let port = hub.mqtt_port.to_string();
    let mut sub = spawn(
        "mosquitto_sub",
        &sub_bin,
        &[
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-V",
            "mqttv311",
            "-t",
            "sitewatch/v1/#",
            "-v",
        ],
        Stdio::piped(),
    );
    let lines = sub.stdout_lines();
    let _agent = start_agent(&hub.broker_url(), "club-3", "pi-sub");

    let wanted = ["status", "info", "heartbeat", "metrics", "ack"];
    let mut seen = HashSet::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while seen.len() < wanted.len() {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = lines
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("mosquitto_sub saw only {seen:?} within 20 s"));
        let Some((topic, payload)) = line.split_once(' ') else {
            continue;
        };
        let Some(kind) = topic.strip_prefix("sitewatch/v1/club-3/pi-sub/") else {
            continue;
        };
        match kind {
            "status" => assert_eq!(payload, "online"),
            "info" | "heartbeat" | "metrics" | "ack" => {
                let v: serde_json::Value = serde_json::from_str(payload)
                    .unwrap_or_else(|e| panic!("{kind} payload is not JSON ({e}): {payload}"));
                assert!(v["ts"].is_u64(), "{kind} has no ts: {payload}");
            }
            _ => continue,
        }
        seen.insert(kind.to_owned());
    }
}

/// The hub in `--broker` mode against a real Mosquitto stores an agent's metrics.
#[test]
fn hub_with_external_mosquitto_stores_metrics() {
    stores_metrics_via_mosquitto("", "club-4");
}

/// With `$share/…` subscriptions (what a clustered broker spreads over its nodes): the
/// per-message topics still arrive, and the retained `info` too (plain subscription).
#[test]
fn hub_with_shared_subscriptions_on_mosquitto_stores_metrics() {
    let node =
        stores_metrics_via_mosquitto("shared-subscription-group = \"sitewatch\"\n", "club-5");
    assert!(
        node["hostname"].as_str().is_some_and(|h| !h.is_empty()),
        "{node}"
    );
}

/// Runs the hub (with `hub_toml`) against a Mosquitto, one agent of `site`; returns its
/// node entry once its metrics are stored.
fn stores_metrics_via_mosquitto(hub_toml: &str, site: &str) -> serde_json::Value {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let _broker = start_mosquitto(
        dir.path(),
        port,
        &format!("listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"),
    );
    let url = format!("mqtt://127.0.0.1:{port}");

    let hub_conf = dir.path().join("hub.toml");
    std::fs::write(&hub_conf, hub_toml).expect("hub.toml");
    let hub = start_hub(&[
        "--no-local-agent",
        "--broker",
        &url,
        "--config",
        hub_conf.to_str().expect("utf-8"),
    ]);
    let _agent = start_agent(&url, site, "pi-ext");
    wait_for(
        "pi-ext online via mosquitto",
        Duration::from_secs(20),
        || hub.node(site, "pi-ext").filter(|n| n["status"] == "online"),
    );
    let series = wait_for("stored memory points", Duration::from_secs(20), || {
        hub.get(&format!(
            "/api/v1/nodes/{site}/pi-ext/series?metric=memory.used_pct"
        ))
        .filter(|s| {
            s["series"][0]["points"]
                .as_array()
                .is_some_and(|p| !p.is_empty())
        })
    });
    let v = series["series"][0]["points"][0][1].as_f64().expect("value");
    assert!((0.0..=100.0).contains(&v), "memory.used_pct {v}");
    wait_for("the node's info", Duration::from_secs(10), || {
        hub.node(site, "pi-ext")
            .filter(|n| n["hostname"].is_string())
    })
}
