//! The hub's LAN device inventory fed by scan messages on the bus (published here with
//! Mosquitto's own `mosquitto_pub`, as an agent's scanner would): the first scan is a
//! silent baseline, a new host gives exactly one new-device event (alert notification), a
//! host that stops answering gives one gone event after the absence window, and users name
//! devices through the API.

mod common;
#[path = "support/hook.rs"]
mod hook;

use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use hook::Hook;
use serde_json::{Value, json};

fn publish_scan(hub: &Hub, seq: u64, hosts: &[(&str, &str)]) {
    let pubbin = require_program("mosquitto_pub", "mosquitto-clients");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let body = json!({
        "ts": now, "session": "lab", "seq": seq, "networks": ["10.231.0.0/24"],
        "duration_ms": 800,
        "hosts": hosts.iter().map(|(ip, mac)| json!({
            "ip": ip, "mac": mac, "vendor": "Raspberry Pi Trading Ltd", "found_by": ["icmp"]
        })).collect::<Vec<_>>(),
    });
    let status = Command::new(pubbin)
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &hub.mqtt_port.to_string(),
            "-q",
            "1",
        ])
        .args([
            "-t",
            "sitewatch/v1/club/scanner/scan",
            "-m",
            &body.to_string(),
        ])
        .status()
        .expect("mosquitto_pub");
    assert!(status.success());
}

const A: (&str, &str) = ("10.231.0.10", "b8:27:eb:00:00:0a");
const B: (&str, &str) = ("10.231.0.11", "b8:27:eb:00:00:0b");
const C: (&str, &str) = ("10.231.0.12", "B8:27:EB:00:00:0C");

#[test]
fn new_and_gone_devices_raise_one_event_each_and_users_name_them() {
    let hook = Hook::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("hub.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[local-agent]
enabled = false
[inventory]
absent-after-s = 4
[alerts]
default-rules = false
[[alerts.rules]]
name = "new-device"
kind = "lan-device-new"
[[alerts.rules]]
name = "device-gone"
kind = "lan-device-gone"
[[alerts.notifiers]]
name = "hook"
kind = "webhook"
url = "http://127.0.0.1:{}/lan"
send-resolved = false
"#,
            hook.port
        ),
    )
    .expect("write config");
    let cfg = config.to_str().expect("utf-8").to_owned();
    let hub = start_hub(&["--config", &cfg]);
    let devices = || hub.get("/api/v1/sites/club/devices").unwrap_or(Value::Null);

    // The first scan of the site is its baseline: listed, no event.
    publish_scan(&hub, 1, &[A, B]);
    wait_for("two devices listed", Duration::from_secs(10), || {
        (devices().as_array().map(Vec::len) == Some(2)).then_some(())
    });
    hook.nothing_more(Duration::from_secs(2));

    // A third host appears: exactly one new-device notification, even over several scans.
    publish_scan(&hub, 2, &[A, B, C]);
    let web = hook.next();
    assert_eq!(web["alert"]["rule"], "new-device", "{web}");
    assert!(
        web["text"]
            .as_str()
            .is_some_and(|t| t.contains("b8:27:eb:00:00:0c")),
        "{web}"
    );
    publish_scan(&hub, 3, &[A, B, C]);

    // C stops answering while A and B keep answering: one gone event after 4 s.
    let start = Instant::now();
    let mut seq = 4;
    let gone = loop {
        publish_scan(&hub, seq, &[A, B]);
        seq += 1;
        if let Ok(v) = hook_next_within(&hook, Duration::from_secs(1)) {
            break v;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "no gone event");
    };
    assert_eq!(gone["alert"]["rule"], "device-gone", "{gone}");
    assert!(
        gone["text"]
            .as_str()
            .is_some_and(|t| t.contains("b8:27:eb:00:00:0c")),
        "{gone}"
    );
    assert!(
        start.elapsed() >= Duration::from_secs(3),
        "gone before the absence window"
    );
    publish_scan(&hub, seq, &[A, B]);
    hook.nothing_more(Duration::from_secs(2));
    let list = devices();
    let c = list
        .as_array()
        .and_then(|l| l.iter().find(|d| d["key"] == "b8:27:eb:00:00:0c"))
        .cloned()
        .expect("C still listed");
    assert_eq!(c["present"], false, "{c}");

    // Naming and marking known.
    let url = hub.url("/api/v1/sites/club/devices/b8:27:eb:00:00:0a");
    let d: Value = ureq::patch(&url)
        .send_json(json!({"name": "Caisse 1", "known": true}))
        .expect("patch")
        .body_mut()
        .read_json()
        .expect("json");
    assert_eq!(
        (d["name"].clone(), d["known"].clone()),
        (json!("Caisse 1"), json!(true))
    );
    wait_for("name stored", Duration::from_secs(5), || {
        devices()
            .as_array()?
            .iter()
            .any(|d| d["name"] == "Caisse 1")
            .then_some(())
    });
    let missing = ureq::patch(&hub.url("/api/v1/sites/club/devices/00:00:00:00:00:00"))
        .send_json(json!({"known": true}));
    assert!(
        matches!(missing, Err(ureq::Error::StatusCode(404))),
        "{missing:?}"
    );
    let bad = ureq::patch(&url).send_json(json!({"colour": "red"}));
    assert!(matches!(bad, Err(ureq::Error::StatusCode(400))), "{bad:?}");
}

fn hook_next_within(hook: &Hook, wait: Duration) -> Result<Value, ()> {
    hook.try_next(wait).ok_or(())
}
