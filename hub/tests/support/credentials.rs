//! Helpers of the tests that use node credentials: `sitewatch-hub node add` and its
//! printed lines, agents started from them, what the hub stored, `/healthz` counters and
//! signed payloads (`common::publish_with` sends them).
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};
use sitewatch_proto::NodeKey;

use crate::common::*;

/// What `node add` printed.
pub struct Creds {
    pub username: String,
    pub password: String,
    pub key: String,
    pub snippet: String,
}

pub fn hub_cli(data: &Path, args: &[&str]) -> Output {
    Command::new(hub_bin())
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run sitewatch-hub")
}

pub fn node_add(data: &Path, site: &str, node: &str, broker: &str) -> Creds {
    let out = hub_cli(data, &["node", "add", site, node, "--broker-url", broker]);
    assert!(out.status.success(), "node add: {out:?}");
    let text = String::from_utf8(out.stdout).expect("utf-8");
    let value = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{key} = \"")))
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or_else(|| panic!("no {key} in {text}"))
            .to_owned()
    };
    let snippet: String = text
        .lines()
        .filter(|l| l.contains(" = "))
        .map(|l| format!("{l}\n"))
        .collect();
    Creds {
        username: value("username"),
        password: value("password"),
        key: value("signing-key"),
        snippet,
    }
}

/// Starts an agent from `node add`'s lines plus short intervals.
pub fn start_agent_with(dir: &Path, name: &str, snippet: &str, extra: &str) -> Proc {
    let conf = dir.join(format!("{name}.toml"));
    std::fs::write(
        &conf,
        format!(
            "{snippet}heartbeat-interval-s = 1\nmetrics-interval-s = 1\nkeepalive-s = 2\n{extra}"
        ),
    )
    .expect("agent config");
    spawn(
        "sitewatch-agent",
        agent_bin(),
        &["--config", conf.to_str().expect("utf-8")],
        Stdio::null(),
    )
}

/// Metrics messages the hub stored for a node.
pub fn stored(data: &Path, site: &str, node: &str) -> i64 {
    let conn =
        Connection::open_with_flags(data.join("sitewatch.db"), OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("open the hub's database");
    conn.query_row(
        "SELECT count(*) FROM metric_messages m JOIN nodes n ON n.id = m.node_id
         WHERE n.site = ?1 AND n.node = ?2",
        [site, node],
        |r| r.get(0),
    )
    .expect("count stored messages")
}

pub fn counter(hub: &Hub, name: &str) -> u64 {
    hub.get("/healthz")
        .and_then(|h| h[name].as_u64())
        .unwrap_or_else(|| panic!("/healthz has no {name}"))
}

/// Waits until `/healthz` counter `name` exceeds `above`.
pub fn wait_counter(hub: &Hub, name: &str, above: u64) -> u64 {
    wait_for(name, Duration::from_secs(15), || {
        Some(counter(hub, name)).filter(|n| *n > above)
    })
}

pub fn signed(key: &str, topic: &str, body: &str) -> String {
    let sealed = NodeKey::from_hex(key)
        .expect("key")
        .seal(topic, body.as_bytes())
        .expect("seal");
    String::from_utf8(sealed).expect("utf-8")
}

pub fn metrics_body(session: &str, seq: u64) -> String {
    let ts = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis();
    format!(r#"{{"ts":{ts},"session":"{session}","seq":{seq},"uptime_s":42}}"#)
}

/// `sitewatch-hub mqtt-user add NAME --password-stdin` on the data directory `data`.
pub fn mqtt_user_add(data: &Path, name: &str, password: &str) {
    use std::io::Write;
    let mut add = Command::new(hub_bin())
        .args(["mqtt-user", "add", name, "--password-stdin", "--data-dir"])
        .arg(data)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("mqtt-user add");
    add.stdin
        .take()
        .expect("stdin")
        .write_all(format!("{password}\n").as_bytes())
        .expect("password");
    assert!(add.wait().expect("mqtt-user add").success());
}
