//! The example Node-RED flow (`deploy/node-red/flow.json`) in real Node-RED (npm package
//! `node-red`, installed in `hub/tests/node-red` by `scripts/install-deps.sh --test`)
//! against a real hub and agent: a metrics sample goes through the CPU change node, the
//! node's alert list through the notification path, and after `kill -9` of the site's only
//! agent the site-offline trigger fires. The flow's own `GET /sitewatch/latest` endpoint
//! shows what went through. Node-RED listens on loopback only, with a temporary user
//! directory and its editor disabled.

mod common;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use common::*;
use serde_json::Value;

fn node_red_js() -> PathBuf {
    let js = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/node-red/node_modules/node-red/red.js");
    assert!(
        js.is_file(),
        "{} is missing: run scripts/install-deps.sh --test (npm ci in hub/tests/node-red)",
        js.display()
    );
    js
}

/// The example flow with its broker node pointed at `port` on loopback.
fn flow_for(port: u16) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/node-red/flow.json");
    let text = std::fs::read_to_string(&path).expect("deploy/node-red/flow.json");
    let mut flow: Value = serde_json::from_str(&text).expect("flow.json is JSON");
    let nodes = flow.as_array_mut().expect("a flow is a list of nodes");
    let mut brokers = 0;
    for n in nodes.iter_mut().filter(|n| n["type"] == "mqtt-broker") {
        n["broker"] = "127.0.0.1".into();
        n["port"] = port.to_string().into();
        brokers += 1;
    }
    assert_eq!(brokers, 1, "the example flow has one broker node");
    // Only core nodes: Node-RED would leave any other type stopped ("missing types").
    const CORE: &[&str] = &[
        "tab",
        "mqtt-broker",
        "mqtt in",
        "debug",
        "change",
        "switch",
        "http in",
        "http response",
    ];
    for n in nodes.iter() {
        let t = n["type"].as_str().unwrap_or_default();
        assert!(CORE.contains(&t), "node type {t} needs an extra palette");
    }
    flow.to_string()
}

fn latest(port: u16) -> Option<Value> {
    get_json(&format!("http://127.0.0.1:{port}/sitewatch/latest"))
}

#[test]
fn example_flow_passes_sitewatch_messages_through_real_node_red() {
    let node = require_program("node", "nodejs");
    let red = node_red_js();
    let hub = start_hub(&[]);
    let mut agent = start_agent(&hub.broker_url(), "nr-site", "nr-1");

    let user = tempfile::tempdir().expect("temp dir");
    std::fs::write(user.path().join("flows.json"), flow_for(hub.mqtt_port)).expect("flows");
    let port = free_port();
    std::fs::write(
        user.path().join("settings.js"),
        format!(
            "module.exports = {{ uiHost: \"127.0.0.1\", uiPort: {port}, flowFile: \"flows.json\", \
             credentialSecret: false, httpAdminRoot: false, \
             logging: {{ console: {{ level: \"info\" }} }} }};\n"
        ),
    )
    .expect("settings");
    let dir = user.path().to_str().expect("utf-8 path");
    let settings = user.path().join("settings.js");
    let _red = spawn(
        "node-red",
        &node,
        &[
            red.to_str().expect("utf-8 path"),
            "--userDir",
            dir,
            "--settings",
            settings.to_str().expect("utf-8 path"),
        ],
        Stdio::null(),
    );

    // A metrics sample through the "CPU % (gauge value)" change node, and the node's alert
    // list (retained, `[]` or not) through the notification formatter.
    let seen = wait_for(
        "a metrics value through Node-RED",
        Duration::from_secs(45),
        || {
            latest(port)
                .filter(|v| v["cpu"]["node"] == "nr-site/nr-1" && v["cpu"]["cpu_pct"].is_number())
        },
    );
    let cpu = seen["cpu"]["cpu_pct"].as_f64().unwrap_or(-1.0);
    assert!((0.0..=100.0).contains(&cpu), "{seen}");
    assert!(
        seen["site_offline"].is_null(),
        "no site is offline yet: {seen}"
    );

    // The site-offline trigger: its only node dies.
    agent.kill9();
    wait_for("the site-offline trigger", Duration::from_secs(30), || {
        latest(port).filter(|v| v["site_offline"] == "nr-site")
    });
    // The node-offline alert, through the notification path.
    wait_for(
        "the node-offline notification",
        Duration::from_secs(30),
        || {
            latest(port).filter(|v| {
                v["alert"]
                    .as_str()
                    .is_some_and(|a| a.contains("on nr-site/nr-1") && a.contains("node-offline"))
            })
        },
    );
}
