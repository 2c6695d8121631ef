//! `GET /metrics` of the real hub with a real agent: Prometheus' own `promtool check
//! metrics` accepts it, it shows what a user checks first (the node up, its CPU and memory
//! labelled by site and node, messages received), every metric the Grafana dashboard in
//! `deploy/grafana/` queries exists, and a bearer token opens it when loopback is not open.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Hub, publish, require_program, start_agent, start_hub, wait_for};
use sitewatch_proto::Metrics;
use sitewatch_proto::payload::{Cpu, Filesystem, Memory, PiHealth, Temperature, Wifi};

const SITE: &str = "prom-site";
const NODE: &str = "prom-node";

/// One sample line: metric name, labels, value.
type Sample = (String, BTreeMap<String, String>, f64);

/// A deliberately small parser of the text format (promtool checks the format itself).
fn parse(text: &str) -> Vec<Sample> {
    let mut out = Vec::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (series, value) = line.rsplit_once(' ').expect("`series value` line");
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("value of {line}"));
        let (name, labels) = match series.split_once('{') {
            None => (series.to_owned(), BTreeMap::new()),
            Some((name, rest)) => {
                let body = rest.strip_suffix('}').expect("closing brace");
                let mut labels = BTreeMap::new();
                // Values in these assertions hold no `",` sequence, so splitting there works.
                for pair in body.split("\",") {
                    let (k, v) = pair.split_once("=\"").expect("label pair");
                    labels.insert(k.to_owned(), v.trim_end_matches('"').to_owned());
                }
                (name.to_owned(), labels)
            }
        };
        out.push((name, labels, value));
    }
    out
}

fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples
        .iter()
        .find(|(n, l, _)| {
            n == name
                && labels
                    .iter()
                    .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|(_, _, v)| *v)
}

/// GET `/metrics`: status, content type, body.
fn scrape(hub: &Hub, headers: &[(&str, &str)]) -> (u16, String, String) {
    let mut req = ureq::get(&hub.url("/metrics"));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    match req.call() {
        Ok(mut resp) => {
            let ct = resp
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned();
            let body = resp.body_mut().read_to_string().expect("read /metrics");
            (resp.status().as_u16(), ct, body)
        }
        Err(ureq::Error::StatusCode(code)) => (code, String::new(), String::new()),
        Err(e) => panic!("GET /metrics failed: {e}"),
    }
}

/// A Raspberry Pi's sample, with the groups this machine's agent may not have
/// (temperatures, Wi-Fi, Pi health), published by `mosquitto_pub` as node `fake-pi`.
fn publish_fake_pi(hub: &Hub) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let heartbeat = serde_json::json!({"ts": now, "session": "fake", "seq": 1, "uptime_s": 60});
    let metrics = Metrics {
        ts: now,
        session: "fake".into(),
        seq: 2,
        cpu: Some(Cpu {
            usage_pct: 7.0,
            load_1: 0.1,
            ..Default::default()
        }),
        memory: Some(Memory {
            total_bytes: 1 << 30,
            used_bytes: 1 << 28,
            available_bytes: 3 << 28,
            used_pct: 25.0,
        }),
        filesystems: vec![Filesystem {
            mount: "/".into(),
            used_pct: 50.0,
            ..Default::default()
        }],
        temperatures: vec![Temperature {
            label: "cpu_thermal".into(),
            temp_c: 48.3,
            crit_c: None,
        }],
        wifi: vec![Wifi {
            interface: "wlan0".into(),
            link_quality_pct: 70.0,
            signal_dbm: -61.0,
            noise_dbm: None,
        }],
        pi: Some(PiHealth::default()),
        uptime_s: Some(60),
        ..Default::default()
    };
    let metrics = serde_json::to_string(&metrics).expect("metrics JSON");
    for (kind, body) in [("heartbeat", heartbeat.to_string()), ("metrics", metrics)] {
        let topic = format!("sitewatch/v1/{SITE}/fake-pi/{kind}");
        let out = publish(hub.mqtt_port, None, &topic, &body);
        assert!(out.status.success(), "mosquitto_pub {kind}: {out:?}");
    }
}

/// Every `sitewatch_…` metric name in the `expr` of the dashboard's queries.
fn dashboard_metric_names() -> BTreeSet<String> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/grafana/sitewatch.json"
    );
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let dashboard: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path} is not JSON: {e}"));
    fn walk(v: &serde_json::Value, exprs: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, v) in m {
                    match (k.as_str(), v) {
                        ("expr" | "query", serde_json::Value::String(s)) => exprs.push(s.clone()),
                        _ => walk(v, exprs),
                    }
                }
            }
            serde_json::Value::Array(a) => a.iter().for_each(|v| walk(v, exprs)),
            _ => {}
        }
    }
    let mut exprs = Vec::new();
    walk(&dashboard, &mut exprs);
    assert!(
        exprs.len() >= 10,
        "the dashboard has {} queries",
        exprs.len()
    );
    let mut names = BTreeSet::new();
    for e in &exprs {
        let mut rest = e.as_str();
        while let Some(i) = rest.find("sitewatch_") {
            let tail = &rest[i..];
            let end = tail
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(tail.len());
            names.insert(tail[..end].to_owned());
            rest = &tail[end..];
        }
    }
    names
}

#[test]
fn metrics_pass_promtool_and_show_the_fleet_and_the_hub() {
    let promtool = require_program("promtool", "prometheus");
    // A notifier, so that the notifier families exist (nothing fires in this test).
    let config = tempfile::NamedTempFile::new().expect("temp config");
    std::fs::write(
        config.path(),
        "[[alerts.notifiers]]\nname = \"bus\"\nkind = \"mqtt\"\n",
    )
    .expect("write config");
    let config_path = config.path().to_str().expect("utf-8 path");
    let hub = start_hub(&["--config", config_path, "--no-local-agent"]);
    let _agent = start_agent(&hub.broker_url(), SITE, NODE);
    publish_fake_pi(&hub);

    // The agent's first metrics reach the database; the fleet part is re-read every 2 s.
    let (content_type, text) = wait_for(
        "the agent's CPU in /metrics",
        Duration::from_secs(30),
        || {
            let (code, ct, body) = scrape(&hub, &[]);
            let cpu = format!("sitewatch_cpu_usage_pct{{site=\"{SITE}\",node=\"{NODE}\"}}");
            let pi = "sitewatch_temp_celsius{site=\"prom-site\",node=\"fake-pi\"";
            (code == 200 && body.contains(&cpu) && body.contains(pi)).then_some((ct, body))
        },
    );
    assert_eq!(content_type, "text/plain; version=0.0.4; charset=utf-8");

    // Prometheus' own linter and parser: format, HELP/TYPE, names and units.
    let mut check = Command::new(&promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool");
    check
        .stdin
        .take()
        .expect("promtool stdin")
        .write_all(text.as_bytes())
        .expect("write to promtool");
    let out = check.wait_with_output().expect("promtool output");
    assert!(
        out.status.success(),
        "promtool check metrics failed ({}):\n{}{}\n--- /metrics ---\n{text}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // What a user checks first.
    let samples = parse(&text);
    let me = [("site", SITE), ("node", NODE)];
    assert_eq!(
        value(&samples, "sitewatch_node_up", &me),
        Some(1.0),
        "{text}"
    );
    let cpu = value(&samples, "sitewatch_cpu_usage_pct", &me).expect("cpu gauge");
    assert!((0.0..=100.0).contains(&cpu), "cpu {cpu}");
    let mem = value(&samples, "sitewatch_memory_used_pct", &me).expect("memory gauge");
    assert!(mem > 0.0 && mem <= 100.0, "memory {mem}");
    assert!(value(&samples, "sitewatch_memory_total_bytes", &me).expect("memory total") > 0.0);
    assert!(value(&samples, "sitewatch_uptime_seconds", &me).expect("uptime") > 0.0);
    let pi = [
        ("site", SITE),
        ("node", "fake-pi"),
        ("sensor", "cpu_thermal"),
    ];
    assert_eq!(value(&samples, "sitewatch_temp_celsius", &pi), Some(48.3));
    assert_eq!(
        value(
            &samples,
            "sitewatch_site_status",
            &[("site", SITE), ("status", "online")]
        ),
        Some(1.0)
    );
    assert!(value(&samples, "sitewatch_hub_messages_received_total", &[]).expect("received") > 0.0);
    assert!(
        value(
            &samples,
            "sitewatch_hub_queue_depth",
            &[("queue", "ingest")]
        )
        .is_some()
    );
    assert!(value(&samples, "sitewatch_hub_database_bytes", &[]).expect("db size") > 0.0);
    assert!(value(&samples, "sitewatch_broker_connections_active", &[]).expect("broker") >= 1.0);
    assert_eq!(
        value(
            &samples,
            "sitewatch_hub_notifications_failed_total",
            &[("notifier", "bus")]
        ),
        Some(0.0)
    );
    // No sample carries a timestamp: after the series comes the value alone.
    for l in text.lines().filter(|l| !l.starts_with('#')) {
        let after = match l.rsplit_once('}') {
            Some((_, after)) => after,
            None => l.split_once(' ').map_or("", |(_, after)| after),
        };
        assert_eq!(after.split_whitespace().count(), 1, "{l}");
    }

    // The Grafana dashboard queries only metrics the hub exports.
    let families: BTreeSet<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    let missing: Vec<String> = dashboard_metric_names()
        .into_iter()
        .filter(|n| !families.contains(n.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "deploy/grafana/sitewatch.json queries metrics /metrics does not have: {missing:?}"
    );

    // Behind a proxy, loopback is not open: Prometheus needs a token (`authorization`).
    let forwarded = ("X-Forwarded-For", "203.0.113.7");
    assert_eq!(scrape(&hub, &[forwarded]).0, 401);
    let dir = hub.data.path().to_str().expect("utf-8 data dir");
    let out = Command::new(common::hub_bin())
        .args(["--data-dir", dir, "token", "add", "prometheus"])
        .output()
        .expect("token add");
    assert!(out.status.success(), "token add failed");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let token = stdout
        .lines()
        .find(|l| l.starts_with("swt_"))
        .expect("token printed");
    let bearer = format!("Bearer {token}");
    let (code, _, body) = scrape(&hub, &[forwarded, ("Authorization", &bearer)]);
    assert_eq!(code, 200);
    assert!(body.contains("sitewatch_node_up{"));
}
