//! Home Assistant MQTT discovery published by the hub for the fleet: every discovery payload
//! the hub emits (for a real agent, a node whose filesystems change, the sites and the hub
//! itself) is checked against an equivalent schema check written from Home Assistant's MQTT
//! documentation (`support/ha_discovery_schema.rs`, named so because Home Assistant's own
//! schema needs Python ≥ 3.12 for device discovery); each `value_template` is rendered with
//! a Jinja implementation (minijinja) against the payloads the agent really sent; and the
//! availability topic named in the configs follows the agent: `offline` after `kill -9`,
//! `online` after a restart. Also: re-publication on Home Assistant's birth message,
//! removal on revocation, and the per-entity mode.

mod common;
#[path = "support/ha_discovery_schema.rs"]
mod ha_discovery_schema;

use std::collections::HashMap;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use rumqttc::{Client, Event, MqttOptions, Packet, QoS};
use serde_json::Value;

const DISCOVERY: &str = "homeassistant";

/// Every message seen on `homeassistant/#` and `sitewatch/v1/#`, in order.
#[derive(Clone, Default)]
struct Bus(Arc<Mutex<Vec<(String, String)>>>);

impl Bus {
    fn all(&self) -> Vec<(String, String)> {
        self.0.lock().expect("bus lock").clone()
    }

    fn latest(&self, topic: &str) -> Option<String> {
        self.all()
            .into_iter()
            .rev()
            .find(|(t, _)| t == topic)
            .map(|(_, p)| p)
    }

    fn count(&self, topic: &str) -> usize {
        self.all().iter().filter(|(t, _)| t == topic).count()
    }

    fn latest_json(&self, topic: &str) -> Option<Value> {
        serde_json::from_str(&self.latest(topic)?).ok()
    }

    /// Discovery configs (not Home Assistant's own status topic).
    fn discovery(&self) -> Vec<(String, String)> {
        self.all()
            .into_iter()
            .filter(|(t, _)| t.starts_with("homeassistant/") && t != "homeassistant/status")
            .collect()
    }
}

/// Subscribes to the hub's embedded broker (anonymous, from loopback) on a thread.
fn listen(hub: &Hub, id: &str) -> (Client, Bus) {
    let mut opts = MqttOptions::new(id, "127.0.0.1", hub.mqtt_port);
    opts.set_max_packet_size(1 << 20, 1 << 20);
    opts.set_keep_alive(Duration::from_secs(5));
    let (client, mut connection) = Client::new(opts, 64);
    let bus = Bus::default();
    let seen = bus.clone();
    let sub = client.clone();
    std::thread::spawn(move || {
        for event in connection.iter() {
            match event {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    let _ = sub.subscribe("homeassistant/#", QoS::AtLeastOnce);
                    let _ = sub.subscribe("sitewatch/v1/#", QoS::AtLeastOnce);
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let payload = String::from_utf8_lossy(&p.payload).into_owned();
                    seen.0.lock().expect("bus lock").push((p.topic, payload));
                }
                Ok(_) => {}
                Err(_) => std::thread::sleep(Duration::from_millis(200)),
            }
        }
    });
    (client, bus)
}

fn device_topic(site: &str, node: &str) -> String {
    format!("{DISCOVERY}/device/sitewatch_{site}_{node}/config")
}

/// The discovery config of a node once it has the given components.
fn wait_components(bus: &Bus, topic: &str, keys: &[&str]) -> Value {
    wait_for(
        &format!("{topic} with {keys:?}"),
        Duration::from_secs(30),
        || {
            let doc = bus.latest_json(topic)?;
            keys.iter()
                .all(|k| doc["cmps"][k]["unique_id"].is_string())
                .then_some(doc)
        },
    )
}

/// Every discovery payload seen so far passes the schema check.
fn assert_all_valid(bus: &Bus) -> usize {
    let all = bus.discovery();
    let mut errors = Vec::new();
    for (topic, payload) in &all {
        if let Err(e) = ha_discovery_schema::check(DISCOVERY, topic, payload) {
            errors.push(format!("{topic}: {e:#?}\n{payload}"));
        }
    }
    assert!(
        errors.is_empty(),
        "invalid discovery payloads:\n{}",
        errors.join("\n")
    );
    all.len()
}

/// Renders a component's `value_template` (Jinja, as Home Assistant does) on a payload.
fn render(template: &str, payload: &str) -> String {
    let value_json: Value = serde_json::from_str(payload).expect("JSON payload");
    let env = minijinja::Environment::new();
    let value_json = minijinja::Value::from(minijinja::value::Serde(value_json));
    env.render_str(template, minijinja::context! { value_json })
        .unwrap_or_else(|e| panic!("template {template:?} fails on {payload}: {e}"))
}

/// Adds the `mac` key a signed agent appends: templates must not care.
fn signed_like(payload: &str) -> String {
    let mut v: Value = serde_json::from_str(payload).expect("metrics JSON");
    v["mac"] = Value::String("0".repeat(64));
    v.to_string()
}

/// Each component of a device config reading `…/metrics` renders to a number (sensor) or
/// ON/OFF (binary sensor) on the latest metrics, with and without a `mac` key; those
/// reading `…/alerts` render on an empty and a non-empty alert list.
fn assert_templates_render(bus: &Bus, doc: &Value) {
    let cmps = doc["cmps"].as_object().expect("cmps");
    let alerts_sample = r#"[{"fingerprint":"c7","rule":"temperature","kind":"metric","severity":"critical","value":78.5,"detail":null,"since_ms":1,"acknowledged":false,"silenced":false}]"#;
    for (key, c) in cmps {
        let (Some(template), Some(topic)) =
            (c["value_template"].as_str(), c["state_topic"].as_str())
        else {
            continue;
        };
        let binary = c["p"] == "binary_sensor";
        let payloads: Vec<String> = if topic.ends_with("/metrics") {
            let latest = bus.latest(topic).expect("a metrics payload");
            vec![signed_like(&latest), latest]
        } else if topic.ends_with("/alerts") {
            vec!["[]".into(), alerts_sample.into()]
        } else {
            continue;
        };
        for p in payloads {
            let out = render(template, &p);
            if binary {
                assert!(out == "ON" || out == "OFF", "{key}: {out:?}");
            } else {
                assert!(
                    out.trim().parse::<f64>().is_ok(),
                    "{key}: {template} gave {out:?} on {p}"
                );
            }
        }
        if let Some(attrs) = c["json_attributes_template"].as_str() {
            let out = render(attrs, alerts_sample);
            let v: Value = serde_json::from_str(&out).expect("attributes are JSON");
            assert!(v.is_object(), "attributes must be a JSON object: {out}");
        }
    }
}

fn publish_fake_metrics(client: &Client, seq: u64, mounts: &[&str]) {
    let fs: Vec<Value> = mounts
        .iter()
        .map(|m| {
            serde_json::json!({"mount": m, "device": "/dev/sda1", "fs_type": "ext4", "total_bytes": 100,
                "used_bytes": 40, "available_bytes": 60, "used_pct": 40.0})
        })
        .collect();
    let metrics = serde_json::json!({
        "ts": 1_795_325_982_321u64, "session": "fa4efa4efa4efa4e", "seq": seq,
        "cpu": {"usage_pct": 3.5, "load_1": 0.1, "load_5": 0.2, "load_15": 0.3, "freq_mhz": 1500.0},
        "filesystems": fs, "network": [], "temperatures": [{"label": "cpu-thermal", "temp_c": 51.2}],
        "wifi": [{"interface": "wlan0", "link_quality_pct": 80.0, "signal_dbm": -52.0}],
        "pi": {"under_voltage_now": false, "freq_capped_now": false, "throttled_now": false,
               "soft_temp_limit_now": false, "under_voltage_occurred": true, "freq_capped_occurred": false,
               "throttled_occurred": false, "soft_temp_limit_occurred": false},
        "uptime_s": 100
    });
    client
        .publish(
            "sitewatch/v1/ha-site/fake/metrics",
            QoS::AtLeastOnce,
            false,
            metrics.to_string(),
        )
        .expect("publish metrics");
}

fn hub_cli(data: &Path, args: &[&str]) {
    let out = std::process::Command::new(hub_bin())
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run sitewatch-hub");
    assert!(out.status.success(), "sitewatch-hub {args:?}: {out:?}");
}

#[test]
fn hub_publishes_valid_device_discovery_that_follows_the_fleet() {
    let hub = start_hub(&[]);
    let (client, bus) = listen(&hub, "ha-test");
    let mut agent = start_agent(&hub.broker_url(), "ha-site", "pi-1");
    let real = device_topic("ha-site", "pi-1");
    let doc = wait_components(
        &bus,
        &real,
        &[
            "connectivity",
            "alerts",
            "cpu_usage",
            "memory_used",
            "fs_root_used",
            "uptime",
        ],
    );

    // The device block: model, agent version, MACs, via the hub's device.
    let dev = &doc["dev"];
    assert_eq!(dev["identifiers"][0], "sitewatch_ha-site_pi-1");
    assert!(
        dev["sw_version"].is_string() && dev["model"].is_string(),
        "{dev}"
    );
    assert!(
        dev["via_device"]
            .as_str()
            .is_some_and(|v| v.starts_with("sitewatch_hub_"))
    );
    let hub_device = format!(
        "{DISCOVERY}/device/{}/config",
        dev["via_device"].as_str().unwrap_or_default()
    );
    wait_for("the hub's device config", Duration::from_secs(10), || {
        bus.latest_json(&hub_device)
    });
    let site_doc = wait_for("the site's device config", Duration::from_secs(10), || {
        bus.latest_json(&format!("{DISCOVERY}/device/sitewatch_site_ha-site/config"))
    });
    assert_eq!(
        site_doc["cmps"]["status"]["state_topic"],
        "sitewatch/v1/ha-site/status"
    );
    let cpu = &doc["cmps"]["cpu_usage"];
    assert_eq!(cpu["unit_of_measurement"], "%");
    assert_eq!(cpu["state_class"], "measurement");

    // A node whose filesystems change: /data is reported, then no longer.
    client
        .publish(
            "sitewatch/v1/ha-site/fake/info",
            QoS::AtLeastOnce,
            true,
            r#"{"ts":1,"session":"fa4efa4efa4efa4e","agent_version":"9.9.9","hostname":"fake","os":"Raspbian","kernel":"6.6",
                "arch":"aarch64","board_model":"Raspberry Pi 4 Model B Rev 1.4","serial":"10000000deadbeef","ips":[],
                "macs":["DC:A6:32:01:02:03"],"heartbeat_interval_s":10,"metrics_interval_s":30,"keepalive_s":10}"#,
        )
        .expect("publish info");
    publish_fake_metrics(&client, 1, &["/", "/data"]);
    let fake = device_topic("ha-site", "fake");
    let fake_doc = wait_components(
        &bus,
        &fake,
        &[
            "fs_root_used",
            "fs_data_used",
            "temp_cpu_thermal",
            "wifi_wlan0_signal",
            "under_voltage",
        ],
    );
    assert_eq!(fake_doc["dev"]["model"], "Raspberry Pi 4 Model B Rev 1.4");
    assert_eq!(fake_doc["dev"]["serial_number"], "10000000deadbeef");
    assert_eq!(
        fake_doc["dev"]["connections"],
        serde_json::json!([["mac", "dc:a6:32:01:02:03"]])
    );
    assert_eq!(
        fake_doc["cmps"]["temp_cpu_thermal"]["device_class"],
        "temperature"
    );
    assert_eq!(
        fake_doc["cmps"]["temp_cpu_thermal"]["unit_of_measurement"],
        "°C"
    );
    assert_templates_render(&bus, &fake_doc);
    let published = bus.count(&fake);
    publish_fake_metrics(&client, 2, &["/", "/data"]);
    publish_fake_metrics(&client, 3, &["/"]);
    wait_for("fs_data_used removed", Duration::from_secs(10), || {
        let doc = bus.latest_json(&fake)?;
        (doc["cmps"]["fs_data_used"] == serde_json::json!({"p": "sensor"})).then_some(())
    });
    assert_eq!(
        bus.count(&fake),
        published + 1,
        "same entities must not re-publish"
    );

    // Templates on the real agent's metrics (several samples in, so rates are present).
    wait_for("three metrics samples", Duration::from_secs(15), || {
        (bus.count("sitewatch/v1/ha-site/pi-1/metrics") >= 3).then_some(())
    });
    let doc = bus.latest_json(&real).expect("config");
    assert_templates_render(&bus, &doc);

    // Availability from the node's status topic.
    let avty = doc["cmps"]["cpu_usage"]["availability_topic"]
        .as_str()
        .expect("availability")
        .to_owned();
    assert_eq!(avty, "sitewatch/v1/ha-site/pi-1/status");
    assert_eq!(doc["cmps"]["connectivity"]["state_topic"], avty.as_str());
    assert_eq!(bus.latest(&avty).as_deref(), Some("online"));
    agent.kill9();
    wait_for(
        "availability offline after kill -9",
        Duration::from_secs(20),
        || (bus.latest(&avty).as_deref() == Some("offline")).then_some(()),
    );
    let _agent = start_agent(&hub.broker_url(), "ha-site", "pi-1");
    wait_for(
        "availability online after restart",
        Duration::from_secs(20),
        || (bus.latest(&avty).as_deref() == Some("online")).then_some(()),
    );

    // Home Assistant restarts: everything is published again.
    let before = bus.count(&real);
    client
        .publish("homeassistant/status", QoS::AtLeastOnce, false, "online")
        .expect("publish birth");
    wait_for(
        "configs re-published on birth",
        Duration::from_secs(10),
        || (bus.count(&real) > before && bus.count(&fake) > published + 1).then_some(()),
    );

    // Revocation: the node's config is emptied (retained), and stays so.
    hub_cli(hub.data.path(), &["node", "add", "ha-site", "pi-1"]);
    // The hub re-reads credentials every 2 s, discovery looks every 2 s.
    std::thread::sleep(Duration::from_secs(5));
    hub_cli(hub.data.path(), &["node", "revoke", "ha-site", "pi-1"]);
    wait_for(
        "config emptied on revocation",
        Duration::from_secs(15),
        || (bus.latest(&real).as_deref() == Some("")).then_some(()),
    );
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        bus.latest(&real).as_deref(),
        Some(""),
        "a revoked node is not re-announced"
    );

    let n = assert_all_valid(&bus);
    assert!(n >= 8, "only {n} discovery payloads");
}

#[test]
fn entity_mode_publishes_one_valid_config_per_entity() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("hub.toml");
    std::fs::write(&config, "[homeassistant]\nmode = \"entity\"\n").expect("write config");
    let hub = start_hub(&["--config", config.to_str().expect("utf-8")]);
    let (_client, bus) = listen(&hub, "ha-test-entity");
    let _agent = start_agent(&hub.broker_url(), "ha-site", "pi-2");
    let cpu = format!("{DISCOVERY}/sensor/sitewatch_ha-site_pi-2/cpu_usage/config");
    let doc = wait_for("per-entity cpu config", Duration::from_secs(30), || {
        bus.latest_json(&cpu)
    });
    assert_eq!(doc["device"]["identifiers"][0], "sitewatch_ha-site_pi-2");
    assert_eq!(
        doc["availability_topic"],
        "sitewatch/v1/ha-site/pi-2/status"
    );
    wait_for("connectivity config", Duration::from_secs(10), || {
        bus.latest_json(&format!(
            "{DISCOVERY}/binary_sensor/sitewatch_ha-site_pi-2/connectivity/config"
        ))
    });
    assert!(
        bus.latest(&device_topic("ha-site", "pi-2")).is_none(),
        "no device config in entity mode"
    );
    let n = assert_all_valid(&bus);
    assert!(n >= 8, "only {n} discovery payloads");
    let by_topic: HashMap<String, String> = bus.discovery().into_iter().collect();
    assert!(
        by_topic
            .keys()
            .all(|t| !t.starts_with("homeassistant/device/"))
    );
}

/// `[homeassistant] nodes = "opted-in"`: only the agent whose config says
/// `home-assistant = true` is announced; one saying nothing is not.
#[test]
fn only_agents_that_opt_in_are_announced_when_the_hub_asks_for_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("hub.toml");
    std::fs::write(&config, "[homeassistant]\nnodes = \"opted-in\"\n").expect("write config");
    let hub = start_hub(&[
        "--no-local-agent",
        "--config",
        config.to_str().expect("utf-8"),
    ]);
    let (_client, bus) = listen(&hub, "ha-test-opt-in");
    let agent = |node: &str, extra: &str| {
        let conf = write_agent_config(dir.path(), "opt", node, &hub.broker_url(), extra);
        spawn(
            "sitewatch-agent",
            agent_bin(),
            &["--config", conf.to_str().expect("utf-8")],
            Stdio::null(),
        )
    };
    let _quiet = agent("quiet", "");
    let _yes = agent("yes", "home-assistant = true\n");
    wait_components(&bus, &device_topic("opt", "yes"), &["cpu_usage"]);
    // The other one sent metrics all along (so it would have had its config by now).
    wait_for("the quiet node's data", Duration::from_secs(10), || {
        hub.node("opt", "quiet")
            .filter(|n| n["metrics"].is_object())
    });
    assert!(bus.latest(&device_topic("opt", "quiet")).is_none());
    assert_all_valid(&bus);
}
