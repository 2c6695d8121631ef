//! `docs/PROTOCOL.md` is the contract's documentation: every example topic in it must parse
//! with `Topic::parse`, and every payload with the type that topic carries.

use sitewatch_proto::payload::from_json;
use sitewatch_proto::{
    Ack, Heartbeat, Info, Metrics, NodeTopic, Prefix, Status, StorageHealth, Topic,
};

#[test]
fn every_example_in_protocol_md_parses() {
    let doc = include_str!("../../docs/PROTOCOL.md");
    let prefix = Prefix::default();
    let mut checked = Vec::new();
    let mut rest = doc;
    while let Some(start) = rest.find("topic `") {
        let after = &rest[start + "topic `".len()..];
        let end = after.find('`').expect("closing backtick");
        let topic_name = &after[..end];
        let fence = after.find("```").expect("a code block after each topic");
        let block = &after[fence + 3..];
        let block = &block[block.find('\n').expect("fence line") + 1..];
        let close = block.find("```").expect("closing fence");
        let payload = block[..close].trim().as_bytes();
        rest = &block[close + 3..];

        // Home Assistant discovery is Home Assistant's format (checked against a schema in
        // hub/tests/homeassistant.rs): here only that the example is a JSON object.
        if topic_name.starts_with("homeassistant/") {
            let value: serde_json::Value = serde_json::from_slice(payload)
                .unwrap_or_else(|e| panic!("example payload for {topic_name}: {e}"));
            assert!(value.is_object(), "example payload for {topic_name}");
            checked.push("homeassistant".to_owned());
            continue;
        }
        let topic = Topic::parse(&prefix, topic_name)
            .unwrap_or_else(|e| panic!("example topic {topic_name}: {e}"));
        let ok = match &topic {
            Topic::Node { kind, .. } => match kind {
                NodeTopic::Status => Status::parse(payload).is_ok(),
                NodeTopic::Info => from_json::<Info>(payload).is_ok(),
                NodeTopic::Heartbeat => from_json::<Heartbeat>(payload).is_ok(),
                NodeTopic::Metrics => from_json::<Metrics>(payload).is_ok(),
                NodeTopic::Ack => from_json::<Ack>(payload).is_ok(),
                NodeTopic::Scan => from_json::<sitewatch_proto::Scan>(payload).is_ok(),
                NodeTopic::Alerts => true,
            },
            Topic::SiteStatus { .. } => {
                matches!(payload, b"online" | b"degraded" | b"offline")
            }
            Topic::HubStatus => Status::parse(payload).is_ok(),
            Topic::HubStorage => from_json::<StorageHealth>(payload).is_ok(),
        };
        assert!(
            ok,
            "example payload for {topic_name} does not parse: {}",
            String::from_utf8_lossy(payload)
        );
        checked.push(topic_name.rsplit('/').next().unwrap_or_default().to_owned());
    }
    for kind in ["status", "info", "heartbeat", "metrics", "ack", "storage"] {
        assert!(
            checked.iter().any(|k| k == kind),
            "PROTOCOL.md has no {kind} example"
        );
    }
}

/// The signed example verifies with the key the document gives, and fails with another.
#[test]
fn the_signed_example_verifies() {
    let doc = include_str!("../../docs/PROTOCOL.md");
    let key_line = doc
        .lines()
        .find(|l| l.starts_with("With the key `"))
        .expect("the example key");
    let hex = key_line
        .trim_start_matches("With the key `")
        .split('`')
        .next()
        .expect("key");
    let key = sitewatch_proto::NodeKey::from_hex(hex).expect("valid key");
    let payload = doc
        .lines()
        .find(|l| l.starts_with('{') && l.contains(r#","mac":""#))
        .expect("the signed example");
    let signed = sitewatch_proto::sign::split(payload.as_bytes()).expect("signed");
    let topic = "sitewatch/v1/club-1/pi-gate/heartbeat";
    assert!(key.verify(topic, &signed.body, &signed.mac));
    assert!(!key.verify(
        "sitewatch/v1/club-2/pi-gate/heartbeat",
        &signed.body,
        &signed.mac
    ));
    assert!(from_json::<Heartbeat>(&signed.body).is_ok());
}
