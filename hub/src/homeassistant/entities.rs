//! The entities of a node, site and hub as Home Assistant MQTT discovery components: pure
//! functions of a node's `info` and the shape of its metrics (which groups, filesystems,
//! interfaces and sensors it reports). Values are read by Home Assistant itself from the
//! sitewatch topics with `value_template`s; the hub only describes them.

use std::collections::BTreeSet;
use std::hash::{Hash, Hasher};

use serde_json::{Map, Value, json};
use sitewatch_proto::{Info, Metrics, NodeId, NodeTopic, Prefix, SiteId, Topic};

/// What a node's metrics contain: the set of sensors it gets. Labels are sorted, so two
/// samples with the same groups give equal shapes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Shape {
    pub cpu: bool,
    pub cpu_freq: bool,
    pub memory: bool,
    pub swap: bool,
    pub uptime: bool,
    pub pi: bool,
    pub filesystems: BTreeSet<String>,
    pub network: BTreeSet<String>,
    pub temperatures: BTreeSet<String>,
    pub wifi: BTreeSet<String>,
}

impl Shape {
    pub fn of(m: &Metrics) -> Shape {
        Shape {
            cpu: m.cpu.is_some(),
            cpu_freq: m.cpu.as_ref().is_some_and(|c| c.freq_mhz.is_some()),
            memory: m.memory.is_some(),
            // A machine without swap reports a zero total: no sensor for it.
            swap: m.swap.as_ref().is_some_and(|s| s.total_bytes > 0),
            uptime: m.uptime_s.is_some(),
            pi: m.pi.is_some(),
            filesystems: m.filesystems.iter().map(|f| f.mount.clone()).collect(),
            network: m.network.iter().map(|n| n.name.clone()).collect(),
            temperatures: m.temperatures.iter().map(|t| t.label.clone()).collect(),
            wifi: m.wifi.iter().map(|w| w.interface.clone()).collect(),
        }
    }

    /// A hash of `Shape::of(m)` computed without allocating, so ingest can tell cheaply
    /// whether a metrics message changes a node's entities. Order-independent for labels.
    pub fn fingerprint(m: &Metrics) -> u64 {
        let labels = |it: &mut dyn Iterator<Item = &str>| -> u64 {
            // Sum of per-label hashes: independent of the order the agent lists them in.
            it.map(|s| {
                let mut h = std::collections::hash_map::DefaultHasher::new();
                s.hash(&mut h);
                h.finish()
            })
            .fold(0u64, u64::wrapping_add)
        };
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (
            m.cpu.is_some(),
            m.cpu.as_ref().is_some_and(|c| c.freq_mhz.is_some()),
            m.memory.is_some(),
            m.swap.as_ref().is_some_and(|s| s.total_bytes > 0),
            m.uptime_s.is_some(),
            m.pi.is_some(),
        )
            .hash(&mut h);
        labels(&mut m.filesystems.iter().map(|f| f.mount.as_str())).hash(&mut h);
        labels(&mut m.network.iter().map(|n| n.name.as_str())).hash(&mut h);
        labels(&mut m.temperatures.iter().map(|t| t.label.as_str())).hash(&mut h);
        labels(&mut m.wifi.iter().map(|w| w.interface.as_str())).hash(&mut h);
        h.finish()
    }
}

/// One discovery component: its key in the device's `cmps` (also the last part of its
/// `unique_id`), its platform and its options (long names; `p` is added by the caller).
#[derive(Debug, Clone, PartialEq)]
pub struct Component {
    pub key: String,
    pub platform: &'static str,
    pub config: Map<String, Value>,
}

/// Names that do not change while the hub runs.
#[derive(Debug, Clone)]
pub struct Context {
    pub prefix: Prefix,
    /// Object id and identifier of the hub's own device (`sitewatch_hub_<host>`).
    pub hub_id: String,
    pub hub_version: String,
}

impl Context {
    fn hub_status(&self) -> String {
        Topic::HubStatus.format(&self.prefix)
    }

    /// The `o` (origin) block of every discovery payload.
    pub fn origin(&self) -> Value {
        json!({
            "name": "sitewatch",
            "sw_version": self.hub_version,
        })
    }
}

/// Object id (and device identifier) of a node: `sitewatch_<site>_<node>`. Site and node
/// ids are `[a-z0-9][a-z0-9_-]*`, which Home Assistant accepts in topics and ids.
pub fn node_object_id(site: &SiteId, node: &NodeId) -> String {
    format!("sitewatch_{site}_{node}")
}

pub fn site_object_id(site: &SiteId) -> String {
    format!("sitewatch_site_{site}")
}

/// A Jinja string literal holding `s` (mounts and labels come from agents).
fn jinja_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// A component key from a label: lowercase ASCII letters, digits and `_`.
fn key_part(label: &str) -> String {
    if label == "/" {
        return "root".into();
    }
    let mut out = String::new();
    for c in label.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('_') {
            out.push('_');
        }
    }
    let trimmed = out.trim_matches('_');
    if trimmed.is_empty() {
        "x".into()
    } else {
        trimmed.to_owned()
    }
}

/// Keys for the labels of one group, unique even when two labels sanitise alike
/// (`/a-b`, `/a_b`): the later one (in sorted order) gets a numeric suffix.
fn keyed(labels: &BTreeSet<String>) -> Vec<(String, &str)> {
    let mut used = BTreeSet::new();
    let mut out = Vec::new();
    for label in labels {
        let base = key_part(label);
        let mut key = base.clone();
        let mut n = 2;
        while !used.insert(key.clone()) {
            key = format!("{base}_{n}");
            n += 1;
        }
        out.push((key, label.as_str()));
    }
    out
}

/// A value template reading a field of one entry of a list group, `None` (unknown in
/// Home Assistant) when the entry or field is absent.
fn list_template(group: &str, by: &str, label: &str, field: &str) -> String {
    format!(
        "{{{{ value_json.{group} | selectattr('{by}', 'equalto', {}) | map(attribute='{field}') | first | default(None) }}}}",
        jinja_str(label)
    )
}

struct Sensor<'a> {
    name: String,
    template: String,
    unit: Option<&'a str>,
    device_class: Option<&'a str>,
    precision: u8,
    icon: Option<&'a str>,
    diagnostic: bool,
}

fn sensor(uid: &str, key: String, state_topic: &str, avty: &str, s: Sensor<'_>) -> Component {
    let mut c = Map::new();
    c.insert("name".into(), s.name.into());
    c.insert("unique_id".into(), format!("{uid}_{key}").into());
    c.insert("state_topic".into(), state_topic.into());
    c.insert("value_template".into(), s.template.into());
    c.insert("availability_topic".into(), avty.into());
    if let Some(dc) = s.device_class {
        c.insert("device_class".into(), dc.into());
    }
    c.insert("state_class".into(), "measurement".into());
    if let Some(unit) = s.unit {
        c.insert("unit_of_measurement".into(), unit.into());
    }
    c.insert("suggested_display_precision".into(), s.precision.into());
    if let Some(icon) = s.icon {
        c.insert("icon".into(), icon.into());
    }
    if s.diagnostic {
        c.insert("entity_category".into(), "diagnostic".into());
    }
    Component {
        key,
        platform: "sensor",
        config: c,
    }
}

/// The components of a node: connectivity, alerts, and one sensor per value its metrics
/// carry. `shape` is `None` until its first metrics message.
pub fn node_components(
    ctx: &Context,
    site: &SiteId,
    node: &NodeId,
    shape: Option<&Shape>,
) -> Vec<Component> {
    let uid = node_object_id(site, node);
    let topic = |kind| Topic::node(site, node, kind).format(&ctx.prefix);
    let status = topic(NodeTopic::Status);
    let metrics = topic(NodeTopic::Metrics);
    let alerts = topic(NodeTopic::Alerts);
    let hub_status = ctx.hub_status();
    let mut out = vec![
        // The node's own status topic is the state: no availability, it must show
        // "disconnected" exactly when the node is gone.
        Component {
            key: "connectivity".into(),
            platform: "binary_sensor",
            config: obj(json!({
                "name": "Connectivity",
                "unique_id": format!("{uid}_connectivity"),
                "device_class": "connectivity",
                "state_topic": status,
                "payload_on": "online",
                "payload_off": "offline",
            })),
        },
        // Alerts come from the hub: available while the hub is.
        Component {
            key: "alerts".into(),
            platform: "sensor",
            config: obj(json!({
                "name": "Firing alerts",
                "unique_id": format!("{uid}_alerts"),
                "state_topic": alerts,
                "value_template": "{{ value_json | length }}",
                "state_class": "measurement",
                "suggested_display_precision": 0,
                "json_attributes_topic": alerts,
                "json_attributes_template": "{{ {'alerts': value_json} | tojson }}",
                "availability_topic": hub_status,
                "icon": "mdi:alert",
            })),
        },
        Component {
            key: "problem".into(),
            platform: "binary_sensor",
            config: obj(json!({
                "name": "Problem",
                "unique_id": format!("{uid}_problem"),
                "device_class": "problem",
                "state_topic": alerts,
                "value_template":
                    "{{ 'ON' if value_json | rejectattr('silenced') | list | length > 0 else 'OFF' }}",
                "availability_topic": hub_status,
            })),
        },
    ];
    let Some(shape) = shape else { return out };
    let mut add = |key: String, s: Sensor<'_>| out.push(sensor(&uid, key, &metrics, &status, s));
    let pct = |name: String, template: String, icon| Sensor {
        name,
        template,
        unit: Some("%"),
        device_class: None,
        precision: 1,
        icon: Some(icon),
        diagnostic: false,
    };
    if shape.cpu {
        add(
            "cpu_usage".into(),
            pct(
                "CPU usage".into(),
                "{{ value_json.cpu.usage_pct }}".into(),
                "mdi:cpu-64-bit",
            ),
        );
        for (n, label) in [(1, "1 min"), (5, "5 min"), (15, "15 min")] {
            add(
                format!("load_{n}"),
                Sensor {
                    name: format!("Load ({label})"),
                    template: format!("{{{{ value_json.cpu.load_{n} }}}}"),
                    unit: None,
                    device_class: None,
                    precision: 2,
                    icon: Some("mdi:gauge"),
                    diagnostic: false,
                },
            );
        }
    }
    if shape.cpu_freq {
        add(
            "cpu_frequency".into(),
            Sensor {
                name: "CPU frequency".into(),
                template: "{{ value_json.cpu.freq_mhz | default(None) }}".into(),
                unit: Some("MHz"),
                device_class: Some("frequency"),
                precision: 0,
                icon: None,
                diagnostic: true,
            },
        );
    }
    if shape.memory {
        add(
            "memory_used".into(),
            pct(
                "Memory used".into(),
                "{{ value_json.memory.used_pct }}".into(),
                "mdi:memory",
            ),
        );
    }
    if shape.swap {
        add(
            "swap_used".into(),
            pct(
                "Swap used".into(),
                "{{ value_json.swap.used_pct }}".into(),
                "mdi:memory",
            ),
        );
    }
    if shape.uptime {
        add(
            "uptime".into(),
            Sensor {
                name: "Uptime".into(),
                template: "{{ value_json.uptime_s }}".into(),
                unit: Some("s"),
                device_class: Some("duration"),
                precision: 0,
                icon: None,
                diagnostic: true,
            },
        );
    }
    for (key, mount) in keyed(&shape.filesystems) {
        add(
            format!("fs_{key}_used"),
            pct(
                format!("Disk {mount} used"),
                list_template("filesystems", "mount", mount, "used_pct"),
                "mdi:harddisk",
            ),
        );
    }
    for (key, label) in keyed(&shape.temperatures) {
        add(
            format!("temp_{key}"),
            Sensor {
                name: format!("Temperature {label}"),
                template: list_template("temperatures", "label", label, "temp_c"),
                unit: Some("°C"),
                device_class: Some("temperature"),
                precision: 1,
                icon: None,
                diagnostic: false,
            },
        );
    }
    for (key, iface) in keyed(&shape.network) {
        for (dir, field, word) in [("rx", "rx_bps", "received"), ("tx", "tx_bps", "sent")] {
            add(
                format!("net_{key}_{dir}"),
                Sensor {
                    name: format!("Network {iface} {word}"),
                    template: list_template("network", "name", iface, field),
                    unit: Some("B/s"),
                    device_class: Some("data_rate"),
                    precision: 0,
                    icon: None,
                    diagnostic: false,
                },
            );
        }
    }
    for (key, iface) in keyed(&shape.wifi) {
        add(
            format!("wifi_{key}_signal"),
            Sensor {
                name: format!("WiFi {iface} signal"),
                template: list_template("wifi", "interface", iface, "signal_dbm"),
                unit: Some("dBm"),
                device_class: Some("signal_strength"),
                precision: 0,
                icon: None,
                diagnostic: true,
            },
        );
    }
    if shape.pi {
        for (key, name, field) in [
            ("under_voltage", "Under-voltage", "under_voltage_now"),
            ("throttled", "Throttled", "throttled_now"),
        ] {
            out.push(Component {
                key: key.into(),
                platform: "binary_sensor",
                config: obj(json!({
                    "name": name,
                    "unique_id": format!("{uid}_{key}"),
                    "device_class": "problem",
                    "state_topic": metrics,
                    "value_template": format!("{{{{ 'ON' if value_json.pi.{field} else 'OFF' }}}}"),
                    "availability_topic": status,
                    "entity_category": "diagnostic",
                })),
            });
        }
    }
    out
}

/// The `dev` block of a node: its board, serial, MACs and agent version, via the hub.
pub fn node_device(ctx: &Context, site: &SiteId, node: &NodeId, info: Option<&Info>) -> Value {
    let mut dev = obj(json!({
        "identifiers": [node_object_id(site, node)],
        "name": node.as_str(),
        "manufacturer": "sitewatch",
        "via_device": ctx.hub_id,
    }));
    if let Some(info) = info {
        let model = match &info.board_model {
            Some(board) => board.clone(),
            None => format!("{} ({})", info.os, info.arch),
        };
        dev.insert("model".into(), model.into());
        dev.insert("sw_version".into(), info.agent_version.clone().into());
        if let Some(serial) = &info.serial {
            dev.insert("serial_number".into(), serial.clone().into());
        }
        let macs: BTreeSet<String> = info
            .macs
            .iter()
            .map(|m| m.to_ascii_lowercase())
            .filter(|m| m != "00:00:00:00:00:00")
            .collect();
        if !macs.is_empty() {
            let cns: Vec<Value> = macs.into_iter().map(|m| json!(["mac", m])).collect();
            dev.insert("connections".into(), cns.into());
        }
    }
    dev.insert("suggested_area".into(), site.as_str().into());
    Value::Object(dev)
}

/// A site's device: its rollup status as an enum sensor.
pub fn site_components(ctx: &Context, site: &SiteId) -> (Value, Vec<Component>) {
    let uid = site_object_id(site);
    let dev = json!({
        "identifiers": [uid],
        "name": format!("Site {site}"),
        "manufacturer": "sitewatch",
        "model": "Site",
        "via_device": ctx.hub_id,
    });
    let status = Component {
        key: "status".into(),
        platform: "sensor",
        config: obj(json!({
            "name": "Status",
            "unique_id": format!("{uid}_status"),
            "device_class": "enum",
            "options": ["online", "degraded", "offline"],
            "state_topic": Topic::SiteStatus { site: site.clone() }.format(&ctx.prefix),
            "availability_topic": ctx.hub_status(),
            "icon": "mdi:map-marker-check",
        })),
    };
    (dev, vec![status])
}

/// The hub's own device (the `via_device` of every other one): its connectivity.
pub fn hub_components(ctx: &Context) -> (Value, Vec<Component>) {
    let dev = json!({
        "identifiers": [ctx.hub_id],
        "name": "sitewatch hub",
        "manufacturer": "sitewatch",
        "model": "Hub",
        "sw_version": ctx.hub_version,
    });
    let conn = Component {
        key: "connectivity".into(),
        platform: "binary_sensor",
        config: obj(json!({
            "name": "Connectivity",
            "unique_id": format!("{}_connectivity", ctx.hub_id),
            "device_class": "connectivity",
            "state_topic": ctx.hub_status(),
            "payload_on": "online",
            "payload_off": "offline",
        })),
    };
    (dev, vec![conn])
}

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> Context {
        Context {
            prefix: Prefix::new("sitewatch/v1").unwrap(),
            hub_id: "sitewatch_hub_box".into(),
            hub_version: "0.1.0".into(),
        }
    }

    fn metrics(json: &str) -> Metrics {
        serde_json::from_str(json).unwrap()
    }

    const SAMPLE: &str = r#"{"ts":1,"session":"s","seq":2,
        "cpu":{"usage_pct":5.0,"load_1":0.1,"load_5":0.2,"load_15":0.3},
        "memory":{"total_bytes":10,"used_bytes":5,"available_bytes":5,"used_pct":50.0},
        "swap":{"total_bytes":0,"used_bytes":0,"used_pct":0.0},
        "filesystems":[{"mount":"/boot/firmware","device":"/dev/x","fs_type":"vfat","total_bytes":1,"used_bytes":1,"available_bytes":0,"used_pct":1.0},
                       {"mount":"/","device":"/dev/y","fs_type":"ext4","total_bytes":1,"used_bytes":1,"available_bytes":0,"used_pct":9.0}],
        "network":[{"name":"eth0","rx_bytes":1,"tx_bytes":1}],
        "temperatures":[{"label":"cpu-thermal","temp_c":48.2}],
        "uptime_s":5}"#;

    fn keys(c: &[Component]) -> Vec<&str> {
        c.iter().map(|c| c.key.as_str()).collect()
    }

    #[test]
    fn a_node_gets_one_sensor_per_value_it_reports() {
        let site = SiteId::new("club-1").unwrap();
        let node = NodeId::new("pi-gate").unwrap();
        let shape = Shape::of(&metrics(SAMPLE));
        let c = node_components(&ctx(), &site, &node, Some(&shape));
        assert_eq!(
            keys(&c),
            [
                "connectivity",
                "alerts",
                "problem",
                "cpu_usage",
                "load_1",
                "load_5",
                "load_15",
                "memory_used",
                "uptime",
                "fs_root_used",
                "fs_boot_firmware_used",
                "temp_cpu_thermal",
                "net_eth0_rx",
                "net_eth0_tx"
            ]
        );
        let temp = &c
            .iter()
            .find(|c| c.key == "temp_cpu_thermal")
            .unwrap()
            .config;
        assert_eq!(temp["device_class"], "temperature");
        assert_eq!(temp["unit_of_measurement"], "°C");
        assert_eq!(
            temp["availability_topic"],
            "sitewatch/v1/club-1/pi-gate/status"
        );
        assert_eq!(temp["state_topic"], "sitewatch/v1/club-1/pi-gate/metrics");
        assert_eq!(
            temp["unique_id"],
            "sitewatch_club-1_pi-gate_temp_cpu_thermal"
        );
        let conn = &c[0].config;
        assert_eq!(conn["state_topic"], "sitewatch/v1/club-1/pi-gate/status");
        assert!(conn.get("availability_topic").is_none());
        // No metrics yet: connectivity and alerts only.
        assert_eq!(keys(&node_components(&ctx(), &site, &node, None)).len(), 3);
    }

    #[test]
    fn fingerprint_follows_the_shape_not_the_values_or_order() {
        let a = metrics(SAMPLE);
        let mut b = a.clone();
        b.filesystems.reverse();
        b.cpu.as_mut().unwrap().usage_pct = 99.0;
        assert_eq!(Shape::fingerprint(&a), Shape::fingerprint(&b));
        assert_eq!(Shape::of(&a), Shape::of(&b));
        b.filesystems.pop();
        assert_ne!(Shape::fingerprint(&a), Shape::fingerprint(&b));
        assert_ne!(Shape::of(&a), Shape::of(&b));
    }

    #[test]
    fn labels_that_sanitise_alike_get_distinct_keys_and_quoted_templates() {
        let labels: BTreeSet<String> = ["/a-b", "/a_b", "/", "/it's"]
            .into_iter()
            .map(String::from)
            .collect();
        let k: Vec<_> = keyed(&labels).into_iter().map(|(k, _)| k).collect();
        assert_eq!(k, ["root", "a_b", "a_b_2", "it_s"]);
        assert_eq!(
            list_template("filesystems", "mount", "/it's", "used_pct"),
            "{{ value_json.filesystems | selectattr('mount', 'equalto', '/it\\'s') | map(attribute='used_pct') | first | default(None) }}"
        );
    }

    #[test]
    fn device_block_names_board_serial_macs_and_the_hub() {
        let info: Info = serde_json::from_str(
            r#"{"ts":1,"session":"s","agent_version":"0.1.0","hostname":"pi","os":"Debian","kernel":"6","arch":"aarch64",
                "board_model":"Raspberry Pi 4 Model B Rev 1.4","serial":"10000000abcdef",
                "ips":[],"macs":["DC:A6:32:00:00:01","00:00:00:00:00:00"],"heartbeat_interval_s":10,"metrics_interval_s":30,"keepalive_s":10}"#,
        )
        .unwrap();
        let site = SiteId::new("club-1").unwrap();
        let node = NodeId::new("pi-gate").unwrap();
        let dev = node_device(&ctx(), &site, &node, Some(&info));
        assert_eq!(dev["model"], "Raspberry Pi 4 Model B Rev 1.4");
        assert_eq!(dev["serial_number"], "10000000abcdef");
        assert_eq!(dev["sw_version"], "0.1.0");
        assert_eq!(dev["connections"], json!([["mac", "dc:a6:32:00:00:01"]]));
        assert_eq!(dev["via_device"], "sitewatch_hub_box");
        assert_eq!(dev["identifiers"], json!(["sitewatch_club-1_pi-gate"]));
    }
}
