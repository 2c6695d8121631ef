//! Alerting end to end with real processes: a real agent whose metric crosses a rule's
//! threshold makes the real hub send exactly one e-mail to a real SMTP server (aiosmtpd) and
//! one webhook to a local HTTP receiver; when it clears, one resolved message each. Also:
//! a killed agent raises node-offline in time; a hub restart raises nothing new and does not
//! re-notify an alert still firing.

mod common;
#[path = "support/hook.rs"]
mod hook;
#[path = "support/smtp.rs"]
mod smtp;

use std::time::{Duration, Instant};

use common::*;
use hook::Hook;
use serde_json::Value;
use smtp::Smtp;

fn hub_config(dir: &std::path::Path, smtp: u16, hook: u16, rules: &str) -> std::path::PathBuf {
    let path = dir.join("hub.toml");
    std::fs::write(
        &path,
        format!(
            r#"
[local-agent]
enabled = false

[alerts]
default-rules = false
{rules}

[[alerts.notifiers]]
name = "mail"
kind = "email"
smtp-host = "127.0.0.1"
smtp-port = {smtp}
smtp-tls = "none"
from = "sitewatch <hub@example.test>"
to = ["ops@example.test"]

[[alerts.notifiers]]
name = "hook"
kind = "webhook"
url = "http://127.0.0.1:{hook}/alerts"
"#
        ),
    )
    .expect("write hub.toml");
    path
}

fn agent_config(dir: &std::path::Path, hub: &Hub, marker: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("agent.toml");
    std::fs::write(
        &path,
        format!(
            "site = \"club\"\nnode = \"pi\"\nbroker = \"{}\"\n\
             heartbeat-interval-s = 1\nmetrics-interval-s = 1\nkeepalive-s = 2\n\
             [[checks]]\nname = \"marker\"\nkind = \"path\"\npath = \"{}\"\n",
            hub.broker_url(),
            marker.display()
        ),
    )
    .expect("write agent.toml");
    path
}

#[test]
fn a_crossed_threshold_sends_one_email_and_one_webhook_then_one_resolved_each() {
    let smtp = Smtp::start(&[]);
    let hook = Hook::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let config = hub_config(
        dir.path(),
        smtp.port,
        hook.port,
        r#"
[[alerts.rules]]
name = "app-files"
kind = "metric"
series = "check.ok{check=marker}"
op = "<"
threshold = 1
severity = "critical"
summary = "The application's files are missing."
"#,
    );
    let marker = dir.path().join("marker");
    std::fs::write(&marker, "here").expect("marker");
    let cfg = config.to_str().expect("utf-8").to_owned();
    let hub = start_hub(&["--config", &cfg]);
    let (_agent, _samples, _lines) = start_logged_agent(&agent_config(dir.path(), &hub, &marker));
    wait_for("node online", Duration::from_secs(20), || {
        hub.node("club", "pi").filter(|n| n["status"] == "online")
    });
    std::thread::sleep(Duration::from_secs(2));

    // The value crosses the threshold.
    std::fs::remove_file(&marker).expect("remove marker");
    let mail = smtp.next();
    let subject = mail["subject"].as_str().unwrap_or("");
    assert!(
        subject.contains("club/pi") && subject.contains("CRITICAL"),
        "{mail}"
    );
    let body = mail["body"].as_str().unwrap_or("");
    assert!(
        body.contains("app-files") && body.contains("check.ok"),
        "{body}"
    );
    let web = hook.next();
    assert_eq!(web["status"], "firing", "{web}");
    assert!(
        web["text"].as_str().is_some_and(|t| t.contains("club/pi")),
        "{web}"
    );
    let firing = hub
        .get("/api/v1/alerts?state=firing")
        .expect("alerts answer");
    assert_eq!(firing.as_array().map(Vec::len), Some(1), "{firing}");
    // Still failing for a while: no second message.
    smtp.nothing_more();
    hook.nothing_more(Duration::from_secs(3));

    // It clears.
    std::fs::write(&marker, "back").expect("marker back");
    let mail = smtp.next();
    let subject = mail["subject"].as_str().unwrap_or("").to_lowercase();
    assert!(subject.contains("resolved"), "{mail}");
    let web = hook.next();
    assert_eq!(web["status"], "resolved", "{web}");
    smtp.nothing_more();
    hook.nothing_more(Duration::from_secs(3));
    let resolved = hub
        .get("/api/v1/alerts?state=resolved")
        .expect("alerts answer");
    assert_eq!(resolved.as_array().map(Vec::len), Some(1), "{resolved}");
}

#[test]
fn node_offline_is_notified_in_time_and_a_hub_restart_does_not_renotify() {
    let smtp = Smtp::start(&[]);
    let hook = Hook::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let config = hub_config(
        dir.path(),
        smtp.port,
        hook.port,
        r#"
[[alerts.rules]]
name = "node-offline"
kind = "node-offline"
severity = "critical"
"#,
    );
    let cfg = config.to_str().expect("utf-8").to_owned();
    let data = tempfile::tempdir().expect("data dir");
    let data_path = data.path().to_owned();
    let mut hub = start_hub_in(data, &["--config", &cfg]);
    let mut a = start_agent(&hub.broker_url(), "club", "a");
    let _b = start_agent(&hub.broker_url(), "club", "b");
    for n in ["a", "b"] {
        wait_for("nodes online", Duration::from_secs(20), || {
            hub.node("club", n).filter(|v| v["status"] == "online")
        });
    }

    // Killed: the will fires when the broker sees the connection drop.
    let killed = Instant::now();
    a.kill9();
    let web = hook.next();
    let took = killed.elapsed();
    assert_eq!(web["status"], "firing", "{web}");
    assert_eq!(web["alert"]["node"], "a", "{web}");
    // keepalive 2 s: 1.5 × 2 s + 2 s.
    assert!(
        took <= Duration::from_secs(5),
        "offline notified after {took:?}"
    );
    let _ = smtp.next();

    // The site's rollup went to degraded, and that is kept in the database.
    wait_for("site degraded stored", Duration::from_secs(10), || {
        let conn = rusqlite::Connection::open_with_flags(
            data_path.join("sitewatch.db"),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .ok()?;
        let n: i64 = conn
            .query_row(
                "SELECT count(*) FROM site_events WHERE site = 'club' AND status = 'degraded'",
                [],
                |r| r.get(0),
            )
            .ok()?;
        (n >= 1).then_some(())
    });

    // The hub restarts while a is still down and b online: nothing new, no repeat.
    let mqtt_port = hub.mqtt_port;
    let http_port = hub.http_port;
    hub.proc.kill9();
    let restarted = restart_hub_at(&data_path, mqtt_port, http_port, &cfg);
    wait_for("b online again", Duration::from_secs(30), || {
        restarted
            .node("club", "b")
            .filter(|v| v["status"] == "online")
    });
    let firing = restarted
        .get("/api/v1/alerts?state=firing")
        .expect("alerts answer");
    let names: Vec<&str> = firing
        .as_array()
        .map(|v| v.iter().filter_map(|a| a["node"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(names, ["a"], "{firing}");
    hook.nothing_more(Duration::from_secs(8));
    smtp.nothing_more();

    // Acknowledge it, and silence the site, through the API.
    let fp = firing[0]["fingerprint"]
        .as_str()
        .expect("fingerprint")
        .to_owned();
    let acked: Value = ureq::post(&restarted.url(&format!("/api/v1/alerts/{fp}/ack")))
        .send_json(serde_json::json!({"by": "alice"}))
        .expect("ack")
        .body_mut()
        .read_json()
        .expect("json");
    assert_eq!(acked["acked_by"], "alice", "{acked}");
    let silence: Value = ureq::post(&restarted.url("/api/v1/silences"))
        .send_json(serde_json::json!({
            "matchers": [{"label": "site", "value": "club"}],
            "duration_s": 3600, "created_by": "alice", "comment": "maintenance"
        }))
        .expect("create silence")
        .body_mut()
        .read_json()
        .expect("json");
    let id = silence["id"].as_str().expect("id").to_owned();
    let list = restarted.get("/api/v1/silences").expect("silences");
    assert_eq!(list[0]["id"], id.as_str(), "{list}");
    let bad = ureq::post(&restarted.url("/api/v1/silences"))
        .send_json(serde_json::json!({"matchers": [], "duration_s": 60, "created_by": "x"}));
    assert!(
        matches!(bad, Err(ureq::Error::StatusCode(400))),
        "an empty matcher list is refused: {bad:?}"
    );
    ureq::delete(&restarted.url(&format!("/api/v1/silences/{id}")))
        .call()
        .expect("end silence");
    let list = restarted.get("/api/v1/silences").expect("silences");
    assert_eq!(list, serde_json::json!([]));
}

/// A node that goes silent (SIGSTOP: no FIN, no keepalive, no heartbeat) is found by the
/// heartbeat timeout (3 × 1 s) or the broker's keepalive timeout (1.5 × 2 s), and its alert
/// leaves the hub within heartbeat timeout + 2 s.
#[test]
fn a_silently_stopped_agent_is_notified_within_the_heartbeat_timeout() {
    let smtp = Smtp::start(&[]);
    let hook = Hook::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let config = hub_config(
        dir.path(),
        smtp.port,
        hook.port,
        "[[alerts.rules]]\nname = \"node-offline\"\nkind = \"node-offline\"\n",
    );
    let cfg = config.to_str().expect("utf-8").to_owned();
    let hub = start_hub(&["--config", &cfg]);
    let agent = start_agent(&hub.broker_url(), "club", "quiet");
    wait_for("node online", Duration::from_secs(20), || {
        hub.node("club", "quiet")
            .filter(|v| v["status"] == "online")
    });
    std::thread::sleep(Duration::from_millis(1500));
    let stopped = Instant::now();
    let status = std::process::Command::new("kill")
        .args(["-STOP", &agent.pid().to_string()])
        .status()
        .expect("kill -STOP");
    assert!(status.success());
    let web = hook.next();
    let took = stopped.elapsed();
    assert_eq!(web["status"], "firing", "{web}");
    assert_eq!(web["alert"]["node"], "quiet", "{web}");
    assert!(
        took <= Duration::from_secs(5),
        "a silent node was notified after {took:?} (budget: 3 s timeout + 2 s)"
    );
    let _ = smtp.next();
    drop(agent); // SIGKILL ends the stopped process too
}
