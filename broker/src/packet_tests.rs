//! Tests of the packet framing and PUBLISH/SUBSCRIBE readers: packets encoded by rumqttc,
//! hand-built edge cases, every prefix, and garbage.

use bytes::BytesMut;
use proptest::prelude::*;
use rumqttc::QoS;

use super::*;

const MAX: usize = 1024 * 1024;

fn publish(topic: &str, qos: QoS, payload: &[u8]) -> Vec<u8> {
    let mut p = rumqttc::Publish::new(topic, qos, payload.to_vec());
    if qos != QoS::AtMostOnce {
        p.pkid = 7;
    }
    let mut buf = BytesMut::new();
    p.write(&mut buf).expect("encode PUBLISH");
    buf.to_vec()
}

fn subscribe(filters: &[&str]) -> Vec<u8> {
    let mut s = rumqttc::Subscribe::new_many(
        filters
            .iter()
            .map(|f| rumqttc::SubscribeFilter::new((*f).to_owned(), QoS::AtLeastOnce)),
    );
    s.pkid = 3;
    let mut buf = BytesMut::new();
    s.write(&mut buf).expect("encode SUBSCRIBE");
    buf.to_vec()
}

fn other_packets() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = BytesMut::new();
    rumqttc::PubAck::new(5).write(&mut buf).unwrap();
    out.push(buf.split().to_vec());
    rumqttc::PingReq.write(&mut buf).unwrap();
    out.push(buf.split().to_vec());
    rumqttc::Unsubscribe::new("a/b").write(&mut buf).unwrap();
    out.push(buf.split().to_vec());
    rumqttc::Disconnect.write(&mut buf).unwrap();
    out.push(buf.split().to_vec());
    out
}

#[test]
fn a_publish_is_decided_from_its_topic_alone() {
    let bytes = publish("sitewatch/v1/a/b/metrics", QoS::AtLeastOnce, &[7; 5000]);
    let peeked = peek(&bytes, MAX, false).unwrap().unwrap();
    let Peeked::Publish {
        header,
        topic,
        inspected,
    } = peeked
    else {
        panic!("not a publish: {peeked:?}");
    };
    assert_eq!(topic, "sitewatch/v1/a/b/metrics");
    assert_eq!(header.packet_len(), bytes.len());
    assert_eq!(inspected, header.header_len + 2 + topic.len());
    // The payload does not have to be there yet.
    assert_eq!(
        peek(&bytes[..inspected], MAX, false)
            .unwrap()
            .unwrap()
            .inspected(),
        inspected
    );
    assert_eq!(peek(&bytes[..inspected - 1], MAX, false), Ok(None));
}

#[test]
fn subscribe_filters_are_read_only_when_asked() {
    let bytes = subscribe(&["x/ack", "x/alerts"]);
    assert_eq!(
        peek(&bytes, MAX, true).unwrap().unwrap(),
        Peeked::Subscribe {
            header: fixed_header(&bytes, MAX).unwrap().unwrap(),
            filters: vec!["x/ack", "x/alerts"],
        }
    );
    assert!(matches!(
        peek(&bytes, MAX, false).unwrap().unwrap(),
        Peeked::Other { .. }
    ));
    for end in 0..bytes.len() {
        assert_eq!(peek(&bytes[..end], MAX, true), Ok(None), "prefix {end}");
    }
}

#[test]
fn the_size_limit_is_on_the_remaining_length() {
    let bytes = publish("t", QoS::AtMostOnce, &[0; 100]);
    let remaining = bytes.len() - 2;
    assert!(peek(&bytes, remaining, false).is_ok());
    assert_eq!(
        peek(&bytes[..2], remaining - 1, false),
        Err(PacketError::TooLarge {
            len: remaining,
            max: remaining - 1
        })
    );
    let huge = subscribe(&["a".repeat(60_000).as_str(), "b".repeat(10_000).as_str()]);
    assert!(matches!(
        peek(&huge, MAX, true),
        Err(PacketError::SubscribeTooLarge { .. })
    ));
}

#[test]
fn broken_packets_are_named() {
    let cases: [(&[u8], &str); 9] = [
        (&[0x00, 0x00], "reserved packet type"),
        (&[0xF0, 0x00], "reserved packet type"),
        (&[0x36, 0x05, 0, 1, b't', 0, 1], "QoS 3"),
        (&[0x30, 0x01, 0x00], "without a topic"),
        (&[0x30, 0x03, 0x00, 0x05, b't'], "longer than the packet"),
        (&[0x32, 0x03, 0x00, 0x01, b't'], "longer than the packet"),
        (&[0x30, 0x03, 0x00, 0x01, b'+'], "wildcard"),
        (&[0x30, 0x02, 0x00, 0x00], "empty"),
        (&[0x30, 0x03, 0x00, 0x01, 0xFF], "not UTF-8"),
    ];
    for (bytes, what) in cases {
        match peek(bytes, MAX, true) {
            Err(err) => assert!(err.to_string().contains(what), "{bytes:02x?}: {err}"),
            Ok(other) => panic!("{bytes:02x?} accepted: {other:?}"),
        }
    }
    let subscribes: [(&[u8], &str); 5] = [
        (&[0x80, 0x02, 0, 1], "flags"),
        (&[0x82, 0x02, 0, 1], "without filters"),
        (&[0x82, 0x01, 0], "packet id"),
        (&[0x82, 0x06, 0, 1, 0, 1, b'a', 3], "not a QoS"),
        (&[0x82, 0x05, 0, 1, 0, 2, b'a'], "truncated"),
    ];
    for (bytes, what) in subscribes {
        match peek(bytes, MAX, true) {
            Err(err) => assert!(err.to_string().contains(what), "{bytes:02x?}: {err}"),
            Ok(other) => panic!("{bytes:02x?} accepted: {other:?}"),
        }
    }
    assert_eq!(
        peek(&[0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01], usize::MAX, false),
        Err(PacketError::BadRemainingLength)
    );
}

#[test]
fn other_packets_are_decided_from_their_header() {
    for bytes in other_packets() {
        let peeked = peek(&bytes, MAX, true).unwrap().unwrap();
        assert!(matches!(peeked, Peeked::Other { .. }), "{bytes:02x?}");
        assert_eq!(peeked.header().packet_len(), bytes.len());
        assert_eq!(peeked.inspected(), peeked.header().header_len);
    }
}

fn arb_qos() -> impl Strategy<Value = QoS> {
    prop_oneof![
        Just(QoS::AtMostOnce),
        Just(QoS::AtLeastOnce),
        Just(QoS::ExactlyOnce)
    ]
}

proptest! {
    #[test]
    fn whatever_rumqttc_publishes_peeks_back(
        topic in "[a-z0-9/_ -]{1,80}",
        qos in arb_qos(),
        payload in prop::collection::vec(any::<u8>(), 0..3000),
    ) {
        let bytes = publish(&topic, qos, &payload);
        let peeked = peek(&bytes, MAX, true).unwrap().unwrap();
        prop_assert_eq!(peeked.header().packet_len(), bytes.len());
        let Peeked::Publish { topic: t, inspected, .. } = peeked else {
            return Err(TestCaseError::fail("not a publish"));
        };
        prop_assert_eq!(t, topic.as_str());
        for end in 0..inspected {
            prop_assert_eq!(peek(&bytes[..end], MAX, true), Ok(None));
        }
    }

    #[test]
    fn whatever_rumqttc_subscribes_peeks_back(filters in prop::collection::vec("[a-z0-9/+#]{1,40}", 1..8)) {
        let refs: Vec<&str> = filters.iter().map(String::as_str).collect();
        let bytes = subscribe(&refs);
        let Some(Peeked::Subscribe { header, filters: got }) = peek(&bytes, MAX, true).unwrap() else {
            return Err(TestCaseError::fail("not a subscribe"));
        };
        prop_assert_eq!(header.packet_len(), bytes.len());
        prop_assert_eq!(got, refs);
    }

    #[test]
    fn garbage_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..300), max in 0usize..400, look in any::<bool>()) {
        if let Ok(Some(peeked)) = peek(&bytes, max, look) {
            prop_assert!(peeked.inspected() <= bytes.len());
            prop_assert!(peeked.inspected() <= peeked.header().packet_len());
            prop_assert!(peeked.header().remaining_len <= max);
        }
    }
}
