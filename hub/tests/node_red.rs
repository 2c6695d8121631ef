//! The example Node-RED flows in real Node-RED (npm packages `node-red` and
//! `@flowfuse/node-red-dashboard`, installed in `hub/tests/node-red` by
//! `scripts/install-deps.sh --test`) against a real hub and agent. `flow-dashboard.json` is
//! checked to be `flow.json` (core nodes only) plus a Dashboard 2.0 gauge, and runs: a
//! metrics sample goes through the CPU change node to the gauge, read in headless Chromium;
//! the node's alert list goes through the notification path; after `kill -9` of the site's
//! only agent the site-offline trigger fires. The flow's own `GET /sitewatch/latest`
//! endpoint shows what went through. Node-RED listens on loopback only, with a temporary
//! user directory and its editor disabled.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
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

/// Node types of Node-RED's own palette: `flow.json` uses only these, so it runs in any
/// Node-RED (any other type would leave the flows stopped, "missing types").
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

/// What `flow-dashboard.json` adds, from the `@flowfuse/node-red-dashboard` palette.
const DASHBOARD: &[&str] = &["ui-base", "ui-theme", "ui-page", "ui-group", "ui-gauge"];

fn read_flow(name: &str) -> Vec<Value> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy/node-red")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
    match serde_json::from_str(&text) {
        Ok(Value::Array(nodes)) => nodes,
        other => panic!("{name} is not a list of nodes: {other:?}"),
    }
}

/// `flow-dashboard.json` with its broker node pointed at `port` on loopback, after checking
/// that it is `flow.json` (core nodes only) plus the gauge: the two files cannot drift
/// apart, and running this one runs every node of the other.
fn flow_for(port: u16) -> String {
    let core = read_flow("flow.json");
    let mut flow = read_flow("flow-dashboard.json");
    for n in &core {
        let t = n["type"].as_str().unwrap_or_default();
        assert!(
            CORE.contains(&t),
            "flow.json: node type {t} needs an extra palette"
        );
        let twin = flow
            .iter()
            .find(|d| d["id"] == n["id"])
            .unwrap_or_else(|| panic!("flow-dashboard.json lacks node {}", n["id"]));
        for (key, value) in n.as_object().expect("a node is an object") {
            match key.as_str() {
                // Its own description, and the CPU value also wired to the gauge.
                "info" => {}
                "wires" => {
                    let wired = |v: &Value| -> Vec<String> {
                        v.as_array()
                            .into_iter()
                            .flatten()
                            .flat_map(|out| out.as_array().into_iter().flatten())
                            .filter_map(|w| w.as_str().map(str::to_owned))
                            .collect()
                    };
                    let extra = wired(&twin[key]);
                    assert!(
                        wired(value).iter().all(|w| extra.contains(w)),
                        "flow-dashboard.json rewired node {}",
                        n["id"]
                    );
                }
                _ => assert_eq!(&twin[key], value, "node {} differs in {key}", n["id"]),
            }
        }
    }
    for n in &flow {
        let t = n["type"].as_str().unwrap_or_default();
        assert!(
            CORE.contains(&t) || DASHBOARD.contains(&t),
            "flow-dashboard.json: unexpected node type {t}"
        );
    }
    let mut brokers = 0;
    for n in flow.iter_mut().filter(|n| n["type"] == "mqtt-broker") {
        n["broker"] = "127.0.0.1".into();
        n["port"] = port.to_string().into();
        brokers += 1;
    }
    assert_eq!(brokers, 1, "the example flow has one broker node");
    Value::Array(flow).to_string()
}

/// What the flow's CPU gauge shows in headless Chromium (`gauge.mjs`).
fn gauge(port: u16, node: &Path) -> Value {
    let chromium = std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    assert!(
        chromium.is_file(),
        "{} is missing (Debian package chromium): run scripts/install-deps.sh --test",
        chromium.display()
    );
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/node-red");
    let out = Command::new(node)
        .arg("gauge.mjs")
        .arg(format!("http://127.0.0.1:{port}/dashboard/sitewatch"))
        .arg(&chromium)
        .current_dir(&dir)
        .output()
        .expect("run gauge.mjs");
    assert!(
        out.status.success(),
        "gauge.mjs failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("gauge.mjs prints JSON")
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
    // The same CPU values on the Dashboard 2.0 gauge, as a browser shows it.
    let shown = gauge(port, &node);
    assert_eq!(
        (&shown["title"], &shown["unit"]),
        (&"CPU".into(), &"%".into()),
        "{shown}"
    );
    let value = shown["value"].as_f64().unwrap_or(-1.0);
    assert!((0.0..=100.0).contains(&value), "{shown}");

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
