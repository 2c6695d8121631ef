//! An EQUIVALENT SCHEMA CHECK of Home Assistant MQTT discovery payloads, written from Home
//! Assistant's documentation (https://www.home-assistant.io/integrations/mqtt/ — "MQTT
//! Discovery": topic format, device-based discovery with `dev`/`o`/`cmps`, the abbreviation
//! tables; the MQTT `sensor` and `binary_sensor` pages; the sensor device classes page with
//! the units and state classes each class accepts). It is not Home Assistant's own
//! voluptuous schema: the `homeassistant` PyPI releases that know device-based discovery
//! (2024.11 and later) need Python ≥ 3.12, and this project's machines have 3.11.
//!
//! It is stricter than Home Assistant in one way: an option it does not know is an error
//! (Home Assistant drops unknown keys silently, which hides typos), and so is a sensor
//! device class whose unit table is not written down here.

#![allow(dead_code)]

use serde_json::{Map, Value};

/// Components a device config may hold (`p`), and the platforms of per-entity topics.
const PLATFORMS: &[&str] = &[
    "alarm_control_panel",
    "binary_sensor",
    "button",
    "camera",
    "climate",
    "cover",
    "device_automation",
    "device_tracker",
    "event",
    "fan",
    "humidifier",
    "image",
    "lawn_mower",
    "light",
    "lock",
    "notify",
    "number",
    "scene",
    "select",
    "sensor",
    "siren",
    "switch",
    "tag",
    "text",
    "update",
    "vacuum",
    "valve",
    "water_heater",
];

/// Abbreviations of entity options (the ones of the platforms checked here).
const ABBREVIATIONS: &[(&str, &str)] = &[
    ("avty", "availability"),
    ("avty_mode", "availability_mode"),
    ("avty_t", "availability_topic"),
    ("avty_tpl", "availability_template"),
    ("cmps", "components"),
    ("def_ent_id", "default_entity_id"),
    ("dev", "device"),
    ("dev_cla", "device_class"),
    ("e", "encoding"),
    ("en", "enabled_by_default"),
    ("ent_cat", "entity_category"),
    ("ent_pic", "entity_picture"),
    ("exp_aft", "expire_after"),
    ("frc_upd", "force_update"),
    ("ic", "icon"),
    ("json_attr_t", "json_attributes_topic"),
    ("json_attr_tpl", "json_attributes_template"),
    ("lrst_val_tpl", "last_reset_value_template"),
    ("o", "origin"),
    ("obj_id", "object_id"),
    ("off_dly", "off_delay"),
    ("ops", "options"),
    ("p", "platform"),
    ("pl_avail", "payload_available"),
    ("pl_not_avail", "payload_not_available"),
    ("pl_off", "payload_off"),
    ("pl_on", "payload_on"),
    ("stat_cla", "state_class"),
    ("stat_t", "state_topic"),
    ("sug_dsp_prc", "suggested_display_precision"),
    ("uniq_id", "unique_id"),
    ("unit_of_meas", "unit_of_measurement"),
    ("val_tpl", "value_template"),
];

const DEVICE_ABBREVIATIONS: &[(&str, &str)] = &[
    ("cu", "configuration_url"),
    ("cns", "connections"),
    ("ids", "identifiers"),
    ("mf", "manufacturer"),
    ("mdl", "model"),
    ("mdl_id", "model_id"),
    ("hw", "hw_version"),
    ("sw", "sw_version"),
    ("sa", "suggested_area"),
    ("sn", "serial_number"),
];

const ORIGIN_ABBREVIATIONS: &[(&str, &str)] = &[("sw", "sw_version"), ("url", "support_url")];

const AVAILABILITY_ABBREVIATIONS: &[(&str, &str)] = &[
    ("t", "topic"),
    ("val_tpl", "value_template"),
    ("pl_avail", "payload_available"),
    ("pl_not_avail", "payload_not_available"),
];

/// Options shared at the top of a device config and inherited by its components.
const SHARED: &[&str] = &[
    "availability",
    "availability_mode",
    "availability_topic",
    "availability_template",
    "payload_available",
    "payload_not_available",
    "state_topic",
    "command_topic",
    "qos",
    "encoding",
];

/// Options every MQTT entity accepts.
const ENTITY_OPTIONS: &[&str] = &[
    "platform",
    "name",
    "unique_id",
    "object_id",
    "default_entity_id",
    "icon",
    "entity_picture",
    "entity_category",
    "enabled_by_default",
    "availability",
    "availability_mode",
    "availability_topic",
    "availability_template",
    "payload_available",
    "payload_not_available",
    "json_attributes_topic",
    "json_attributes_template",
    "qos",
    "encoding",
    "device",
    "origin",
];

const SENSOR_OPTIONS: &[&str] = &[
    "state_topic",
    "value_template",
    "device_class",
    "state_class",
    "unit_of_measurement",
    "suggested_display_precision",
    "expire_after",
    "force_update",
    "last_reset_value_template",
    "options",
];

const BINARY_SENSOR_OPTIONS: &[&str] = &[
    "state_topic",
    "value_template",
    "device_class",
    "payload_on",
    "payload_off",
    "expire_after",
    "force_update",
    "off_delay",
];

const SENSOR_DEVICE_CLASSES: &[&str] = &[
    "absolute_humidity",
    "apparent_power",
    "aqi",
    "area",
    "atmospheric_pressure",
    "battery",
    "blood_glucose_concentration",
    "carbon_dioxide",
    "carbon_monoxide",
    "conductivity",
    "current",
    "data_rate",
    "data_size",
    "date",
    "distance",
    "duration",
    "energy",
    "energy_distance",
    "energy_storage",
    "enum",
    "frequency",
    "gas",
    "humidity",
    "illuminance",
    "irradiance",
    "moisture",
    "monetary",
    "nitrogen_dioxide",
    "nitrogen_monoxide",
    "nitrous_oxide",
    "ozone",
    "ph",
    "pm1",
    "pm10",
    "pm25",
    "power_factor",
    "power",
    "precipitation",
    "precipitation_intensity",
    "pressure",
    "reactive_power",
    "signal_strength",
    "sound_pressure",
    "speed",
    "sulphur_dioxide",
    "temperature",
    "timestamp",
    "volatile_organic_compounds",
    "volatile_organic_compounds_parts",
    "voltage",
    "volume",
    "volume_flow_rate",
    "volume_storage",
    "water",
    "weight",
    "wind_direction",
    "wind_speed",
];

const STATE_CLASSES: &[&str] = &[
    "measurement",
    "measurement_angle",
    "total",
    "total_increasing",
];

/// Units each device class accepts, and the state classes it allows (sensor device class
/// documentation). Only the classes written down here pass.
fn device_class_rules(dc: &str) -> Option<(&'static [&'static str], &'static [&'static str])> {
    const ALL: &[&str] = &["measurement", "total", "total_increasing"];
    Some(match dc {
        "temperature" => (&["°C", "°F", "K"], &["measurement"]),
        "data_rate" => (
            &[
                "bit/s", "kbit/s", "Mbit/s", "Gbit/s", "B/s", "kB/s", "MB/s", "GB/s", "KiB/s",
                "MiB/s", "GiB/s",
            ],
            &["measurement"],
        ),
        "data_size" => (
            &[
                "bit", "kbit", "Mbit", "Gbit", "B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB",
                "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB",
            ],
            ALL,
        ),
        "duration" => (&["d", "h", "min", "s", "ms", "µs"], ALL),
        "frequency" => (&["Hz", "kHz", "MHz", "GHz"], &["measurement"]),
        "signal_strength" => (&["dB", "dBm"], &["measurement"]),
        "battery" | "humidity" | "moisture" => (&["%"], &["measurement"]),
        "power_factor" => (&["%", ""], &["measurement"]),
        "voltage" => (&["V", "mV", "µV", "kV", "MV"], &["measurement"]),
        _ => return None,
    })
}

const BINARY_SENSOR_DEVICE_CLASSES: &[&str] = &[
    "battery",
    "battery_charging",
    "carbon_monoxide",
    "cold",
    "connectivity",
    "door",
    "garage_door",
    "gas",
    "heat",
    "light",
    "lock",
    "moisture",
    "motion",
    "moving",
    "occupancy",
    "opening",
    "plug",
    "power",
    "presence",
    "problem",
    "running",
    "safety",
    "smoke",
    "sound",
    "tamper",
    "update",
    "vibration",
    "window",
];

fn expand(
    obj: &Map<String, Value>,
    table: &[(&str, &str)],
    errors: &mut Vec<String>,
    at: &str,
) -> Map<String, Value> {
    let mut out = Map::new();
    for (k, v) in obj {
        let long = table
            .iter()
            .find(|(short, _)| short == k)
            .map(|(_, long)| *long)
            .unwrap_or(k.as_str());
        if out.insert(long.to_owned(), v.clone()).is_some() {
            errors.push(format!("{at}: {long} given twice (abbreviated and not)"));
        }
    }
    out
}

fn valid_id(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

fn valid_topic(v: &Value) -> bool {
    v.as_str()
        .is_some_and(|t| !t.is_empty() && !t.contains(['+', '#', '\0']))
}

fn is_template(v: &Value) -> bool {
    v.as_str()
        .is_some_and(|t| t.contains("{{") || t.contains("{%"))
}

/// Checks one retained discovery message. An empty payload (a removal) is valid.
pub fn check(discovery_prefix: &str, topic: &str, payload: &str) -> Result<(), Vec<String>> {
    let mut errors = Vec::new();
    let Some(rest) = topic
        .strip_prefix(discovery_prefix)
        .and_then(|r| r.strip_prefix('/'))
        .and_then(|r| r.strip_suffix("/config"))
    else {
        return Err(vec![format!(
            "{topic}: not <prefix>/<component>/[<node_id>/]<object_id>/config"
        )]);
    };
    let parts: Vec<&str> = rest.split('/').collect();
    if !(2..=3).contains(&parts.len()) || !parts[1..].iter().all(|p| valid_id(p)) {
        errors.push(format!(
            "{topic}: node_id and object_id must be [a-zA-Z0-9_-]+"
        ));
    }
    let component = parts[0];
    if payload.is_empty() {
        return if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        };
    }
    let doc: Map<String, Value> = match serde_json::from_str(payload) {
        Ok(Value::Object(m)) => m,
        _ => return Err(vec![format!("{topic}: payload is not a JSON object")]),
    };
    let doc = expand(&doc, ABBREVIATIONS, &mut errors, topic);
    if component == "device" {
        check_device_config(topic, &doc, &mut errors);
    } else if PLATFORMS.contains(&component) {
        check_entity(topic, component, &doc, false, &mut errors);
    } else {
        errors.push(format!("{topic}: unknown component {component:?}"));
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

fn check_device_config(topic: &str, doc: &Map<String, Value>, errors: &mut Vec<String>) {
    for k in doc.keys() {
        if !matches!(k.as_str(), "device" | "origin" | "components")
            && !SHARED.contains(&k.as_str())
        {
            errors.push(format!("{topic}: {k:?} is not a device-config option"));
        }
    }
    match doc.get("device") {
        Some(Value::Object(dev)) => check_device(topic, dev, errors),
        _ => errors.push(format!("{topic}: device (dev) is required")),
    }
    match doc.get("origin") {
        Some(Value::Object(o)) => check_origin(topic, o, errors),
        _ => errors.push(format!(
            "{topic}: origin (o) is required for device discovery"
        )),
    }
    let Some(Value::Object(cmps)) = doc.get("components") else {
        errors.push(format!("{topic}: components (cmps) is required"));
        return;
    };
    if cmps.is_empty() {
        errors.push(format!("{topic}: components (cmps) is empty"));
    }
    for (key, c) in cmps {
        let at = format!("{topic} cmps.{key}");
        if !valid_id(key) {
            errors.push(format!("{at}: component id must be [a-zA-Z0-9_-]+"));
        }
        let Value::Object(c) = c else {
            errors.push(format!("{at}: not an object"));
            continue;
        };
        let c = expand(c, ABBREVIATIONS, errors, &at);
        let Some(platform) = c.get("platform").and_then(Value::as_str) else {
            errors.push(format!("{at}: platform (p) is required"));
            continue;
        };
        if !PLATFORMS.contains(&platform) {
            errors.push(format!("{at}: unknown platform {platform:?}"));
            continue;
        }
        if c.len() == 1 {
            continue; // `{"p": …}` alone: the documented way to remove a component
        }
        if c.contains_key("device") || c.contains_key("origin") {
            errors.push(format!(
                "{at}: device/origin belong at the top of a device config"
            ));
        }
        if !c.contains_key("unique_id") {
            errors.push(format!(
                "{at}: unique_id is required in device-based discovery"
            ));
        }
        // Shared options are inherited unless the component sets its own.
        let mut merged = c.clone();
        for k in SHARED {
            if let Some(v) = doc.get(*k) {
                merged.entry(k.to_string()).or_insert_with(|| v.clone());
            }
        }
        check_entity(&at, platform, &merged, true, errors);
    }
}

fn check_device(at: &str, dev: &Map<String, Value>, errors: &mut Vec<String>) {
    let dev = expand(dev, DEVICE_ABBREVIATIONS, errors, at);
    const KEYS: &[&str] = &[
        "configuration_url",
        "connections",
        "identifiers",
        "manufacturer",
        "model",
        "model_id",
        "hw_version",
        "sw_version",
        "suggested_area",
        "serial_number",
        "name",
        "via_device",
    ];
    for k in dev.keys() {
        if !KEYS.contains(&k.as_str()) {
            errors.push(format!("{at}: {k:?} is not a device option"));
        }
    }
    let ids_ok = match dev.get("identifiers") {
        None => false,
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Array(a)) => {
            !a.is_empty() && a.iter().all(|v| v.as_str().is_some_and(|s| !s.is_empty()))
        }
        Some(_) => {
            errors.push(format!(
                "{at}: device identifiers must be a string or a list of strings"
            ));
            false
        }
    };
    let cns_ok = match dev.get("connections") {
        None => false,
        Some(Value::Array(a)) => {
            let ok = a.iter().all(|pair| {
                pair.as_array().is_some_and(|p| {
                    p.len() == 2 && p.iter().all(|v| v.as_str().is_some_and(|s| !s.is_empty()))
                })
            });
            if !ok {
                errors.push(format!(
                    "{at}: device connections must be [[type, value], …]"
                ));
            }
            for pair in a.iter().filter_map(Value::as_array) {
                if pair.first().and_then(Value::as_str) == Some("mac") {
                    let mac = pair.get(1).and_then(Value::as_str).unwrap_or("");
                    let ok = mac.len() == 17
                        && mac
                            .split(':')
                            .all(|b| b.len() == 2 && b.chars().all(|c| c.is_ascii_hexdigit()));
                    if !ok {
                        errors.push(format!("{at}: {mac:?} is not a MAC address"));
                    }
                }
            }
            !a.is_empty()
        }
        Some(_) => {
            errors.push(format!("{at}: device connections must be a list"));
            false
        }
    };
    if !ids_ok && !cns_ok {
        errors.push(format!("{at}: a device needs identifiers or connections"));
    }
    for k in KEYS
        .iter()
        .filter(|k| !matches!(**k, "identifiers" | "connections"))
    {
        if let Some(v) = dev.get(*k)
            && !v.is_string()
        {
            errors.push(format!("{at}: device {k} must be a string"));
        }
    }
}

fn check_origin(at: &str, o: &Map<String, Value>, errors: &mut Vec<String>) {
    let o = expand(o, ORIGIN_ABBREVIATIONS, errors, at);
    for k in o.keys() {
        if !matches!(k.as_str(), "name" | "sw_version" | "support_url") {
            errors.push(format!("{at}: {k:?} is not an origin option"));
        }
    }
    let named = o
        .get("name")
        .and_then(Value::as_str)
        .is_some_and(|s| !s.is_empty());
    if !named {
        errors.push(format!("{at}: origin name is required"));
    }
    if let Some(url) = o.get("support_url")
        && !url
            .as_str()
            .is_some_and(|u| u.starts_with("http://") || u.starts_with("https://"))
    {
        errors.push(format!("{at}: origin support_url must be an http(s) URL"));
    }
}

fn check_entity(
    at: &str,
    platform: &str,
    c: &Map<String, Value>,
    in_device: bool,
    errors: &mut Vec<String>,
) {
    let own: &[&str] = match platform {
        "sensor" => SENSOR_OPTIONS,
        "binary_sensor" => BINARY_SENSOR_OPTIONS,
        other => {
            errors.push(format!(
                "{at}: platform {other} is not covered by this check"
            ));
            return;
        }
    };
    for k in c.keys() {
        if !ENTITY_OPTIONS.contains(&k.as_str()) && !own.contains(&k.as_str()) {
            errors.push(format!("{at}: {k:?} is not a {platform} option"));
        }
    }
    if in_device && c.contains_key("device") {
        errors.push(format!("{at}: device given inside a component"));
    }
    if !in_device {
        if c.contains_key("device") && !c.contains_key("unique_id") {
            errors.push(format!("{at}: an entity with a device needs a unique_id"));
        }
        if let Some(Value::Object(dev)) = c.get("device") {
            check_device(at, dev, errors);
        }
        if let Some(Value::Object(o)) = c.get("origin") {
            check_origin(at, o, errors);
        }
    }
    // Common options.
    if !c.get("state_topic").is_some_and(valid_topic) {
        errors.push(format!(
            "{at}: state_topic is required and must be a topic without wildcards"
        ));
    }
    for k in ["availability_topic", "json_attributes_topic"] {
        if let Some(v) = c.get(k)
            && !valid_topic(v)
        {
            errors.push(format!("{at}: {k} must be a topic without wildcards"));
        }
    }
    if c.contains_key("availability_topic") && c.contains_key("availability") {
        errors.push(format!(
            "{at}: availability_topic and availability are exclusive"
        ));
    }
    if let Some(av) = c.get("availability") {
        match av {
            Value::Array(list) if !list.is_empty() => {
                for a in list {
                    let Value::Object(a) = a else {
                        errors.push(format!("{at}: availability entries are objects"));
                        continue;
                    };
                    let a = expand(a, AVAILABILITY_ABBREVIATIONS, errors, at);
                    if !a.get("topic").is_some_and(valid_topic) {
                        errors.push(format!("{at}: availability entry without a topic"));
                    }
                }
            }
            _ => errors.push(format!("{at}: availability must be a non-empty list")),
        }
    }
    if let Some(m) = c.get("availability_mode")
        && !matches!(m.as_str(), Some("all" | "any" | "latest"))
    {
        errors.push(format!(
            "{at}: availability_mode must be all, any or latest"
        ));
    }
    for k in [
        "value_template",
        "json_attributes_template",
        "availability_template",
        "last_reset_value_template",
    ] {
        if let Some(v) = c.get(k)
            && !is_template(v)
        {
            errors.push(format!("{at}: {k} must be a template"));
        }
    }
    for k in [
        "name",
        "unique_id",
        "object_id",
        "default_entity_id",
        "payload_available",
        "payload_not_available",
        "payload_on",
        "payload_off",
        "encoding",
    ] {
        if let Some(v) = c.get(k)
            && !(v.is_string() || (k == "name" && v.is_null()))
        {
            errors.push(format!("{at}: {k} must be a string"));
        }
    }
    if let Some(icon) = c.get("icon")
        && !icon.as_str().is_some_and(|i| {
            i.split_once(':')
                .is_some_and(|(a, b)| !a.is_empty() && !b.is_empty())
        })
    {
        errors.push(format!("{at}: icon must be like mdi:name"));
    }
    if let Some(cat) = c.get("entity_category") {
        let allowed: &[&str] = if platform == "sensor" || platform == "binary_sensor" {
            &["diagnostic"]
        } else {
            &["diagnostic", "config"]
        };
        if !cat.as_str().is_some_and(|s| allowed.contains(&s)) {
            errors.push(format!(
                "{at}: entity_category must be one of {allowed:?} for {platform}"
            ));
        }
    }
    if let Some(q) = c.get("qos")
        && q.as_u64().is_none_or(|q| q > 2)
    {
        errors.push(format!("{at}: qos must be 0, 1 or 2"));
    }
    for k in ["enabled_by_default", "force_update"] {
        if let Some(v) = c.get(k)
            && !v.is_boolean()
        {
            errors.push(format!("{at}: {k} must be a boolean"));
        }
    }
    for k in ["expire_after", "off_delay"] {
        if let Some(v) = c.get(k)
            && !v.is_u64()
        {
            errors.push(format!("{at}: {k} must be a non-negative integer"));
        }
    }
    match platform {
        "sensor" => check_sensor(at, c, errors),
        _ => {
            if let Some(dc) = c.get("device_class")
                && !dc
                    .as_str()
                    .is_some_and(|d| BINARY_SENSOR_DEVICE_CLASSES.contains(&d))
            {
                errors.push(format!("{at}: {dc} is not a binary_sensor device class"));
            }
        }
    }
}

/// The sensor rules of Home Assistant's MQTT sensor: device class, state class, unit and
/// options must agree.
fn check_sensor(at: &str, c: &Map<String, Value>, errors: &mut Vec<String>) {
    let dc = c.get("device_class").and_then(Value::as_str);
    let sc = c.get("state_class").and_then(Value::as_str);
    let unit = c.get("unit_of_measurement").and_then(Value::as_str);
    if c.get("device_class").is_some_and(|v| !v.is_string()) {
        errors.push(format!("{at}: device_class must be a string"));
    }
    if let Some(dc) = dc
        && !SENSOR_DEVICE_CLASSES.contains(&dc)
    {
        errors.push(format!("{at}: {dc:?} is not a sensor device class"));
    }
    if let Some(sc) = sc
        && !STATE_CLASSES.contains(&sc)
    {
        errors.push(format!("{at}: {sc:?} is not a state class"));
    }
    if let Some(p) = c.get("suggested_display_precision")
        && !p.is_u64()
    {
        errors.push(format!(
            "{at}: suggested_display_precision must be a non-negative integer"
        ));
    }
    if c.contains_key("last_reset_value_template") && sc != Some("total") {
        errors.push(format!(
            "{at}: last_reset_value_template needs state_class total"
        ));
    }
    match dc {
        Some("enum") => {
            if unit.is_some() || sc.is_some() {
                errors.push(format!(
                    "{at}: an enum sensor has no unit and no state class"
                ));
            }
            let ok = c
                .get("options")
                .and_then(Value::as_array)
                .is_some_and(|o| !o.is_empty() && o.iter().all(Value::is_string));
            if !ok {
                errors.push(format!("{at}: an enum sensor lists its options (strings)"));
            }
        }
        Some("timestamp" | "date") => {
            if unit.is_some() || sc.is_some() {
                errors.push(format!(
                    "{at}: a {dc:?} sensor has no unit and no state class"
                ));
            }
        }
        Some(dc) => {
            if c.contains_key("options") {
                errors.push(format!("{at}: options need device_class enum"));
            }
            match device_class_rules(dc) {
                None => errors.push(format!(
                    "{at}: device class {dc} is not covered by this check"
                )),
                Some((units, states)) => {
                    if !units.contains(&unit.unwrap_or("")) {
                        errors.push(format!("{at}: unit {unit:?} is not valid with device class {dc} (allowed {units:?})"));
                    }
                    if let Some(sc) = sc
                        && !states.contains(&sc)
                    {
                        errors.push(format!("{at}: state class {sc} is not valid with device class {dc} (allowed {states:?})"));
                    }
                }
            }
        }
        None => {
            if c.contains_key("options") && (unit.is_some() || sc.is_some()) {
                errors.push(format!(
                    "{at}: a sensor with options has no unit and no state class"
                ));
            }
        }
    }
}

#[cfg(test)]
mod self_test {
    use super::check;

    #[test]
    fn the_check_accepts_the_documented_example_and_rejects_common_mistakes() {
        // The device-discovery example of Home Assistant's MQTT documentation.
        let example = r#"{"dev":{"ids":"ea334450945afc","name":"Kitchen","mf":"Bla electronics","mdl":"xya","sw":"1.0","sn":"ea334450945afc","hw":"1.0rev2"},
            "o":{"name":"bla2mqtt","sw":"2.1","url":"https://bla2mqtt.example.com/support"},
            "cmps":{"some_unique_component_id1":{"p":"sensor","device_class":"temperature","unit_of_measurement":"°C","value_template":"{{ value_json.temperature}}","unique_id":"temp01ae_t"},
                    "some_unique_id2":{"p":"sensor","device_class":"humidity","unit_of_measurement":"%","value_template":"{{ value_json.humidity}}","unique_id":"temp01ae_h"}},
            "state_topic":"sensorBedroom/state","qos":2}"#;
        check(
            "homeassistant",
            "homeassistant/device/0AFFD2/config",
            example,
        )
        .unwrap();
        let bad = example.replace("°C", "C");
        assert!(check("homeassistant", "homeassistant/device/0AFFD2/config", &bad).is_err());
        let bad = example.replace(r#""o":{"name":"bla2mqtt","#, r#""o":{"#);
        assert!(check("homeassistant", "homeassistant/device/0AFFD2/config", &bad).is_err());
        let bad = example.replace(r#","unique_id":"temp01ae_h""#, "");
        assert!(check("homeassistant", "homeassistant/device/0AFFD2/config", &bad).is_err());
        let bad = example.replace("device_class\":\"humidity", "device_class\":\"humidty");
        assert!(check("homeassistant", "homeassistant/device/0AFFD2/config", &bad).is_err());
        assert!(check("homeassistant", "homeassistant/device/a b/config", "").is_err());
        check("homeassistant", "homeassistant/sensor/x/config", "").unwrap();
    }
}
