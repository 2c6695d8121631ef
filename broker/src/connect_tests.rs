//! Tests for the CONNECT parser: packets encoded by rumqttc's own encoder, hand-built
//! edge cases, every prefix of a valid packet, and arbitrary garbage.

use super::*;
use bytes::BytesMut;
use proptest::prelude::*;
use rumqttc::{LastWill, QoS};

const MAX: usize = MAX_CONNECT_PACKET_BYTES;

fn encode(connect: &rumqttc::Connect) -> Vec<u8> {
    let mut buf = BytesMut::new();
    connect
        .write(&mut buf)
        .expect("rumqttc encodes the CONNECT");
    buf.to_vec()
}

fn simple(id: &str) -> Vec<u8> {
    encode(&rumqttc::Connect::new(id))
}

/// A CONNECT with the given protocol name, level and body after the level byte.
fn raw_connect(name: &[u8], level: u8, rest: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&(name.len() as u16).to_be_bytes());
    body.extend_from_slice(name);
    body.push(level);
    body.extend_from_slice(rest);
    let mut out = vec![0x10];
    write_remaining_length(&mut out, body.len());
    out.extend_from_slice(&body);
    out
}

/// Flags, keep-alive and client id after the protocol level.
fn rest(flags: u8, keep_alive: u16, id: &[u8]) -> Vec<u8> {
    let mut out = vec![flags];
    out.extend_from_slice(&keep_alive.to_be_bytes());
    out.extend_from_slice(&(id.len() as u16).to_be_bytes());
    out.extend_from_slice(id);
    out
}

#[test]
fn parses_a_plain_v311_connect() {
    let bytes = simple("club-a-pi-01");
    let c = parse_connect(&bytes, MAX).unwrap().unwrap();
    assert_eq!(c.version, ProtocolVersion::V311);
    assert_eq!(c.client_id, b"club-a-pi-01");
    assert_eq!(c.keep_alive, 10);
    assert!(c.clean_session);
    assert_eq!(c.will, None);
    assert_eq!(c.packet_len, bytes.len());
    assert_eq!(c.header_len, 2);
}

#[test]
fn parses_will_and_login() {
    let mut connect = rumqttc::Connect::new("agent");
    connect.keep_alive = 2;
    connect.clean_session = false;
    connect.last_will = Some(LastWill::new("x/status", "offline", QoS::AtLeastOnce, true));
    connect.set_login("user", "secret");
    let bytes = encode(&connect);
    let c = parse_connect(&bytes, MAX).unwrap().unwrap();
    assert_eq!(c.keep_alive, 2);
    assert!(!c.clean_session);
    assert_eq!(
        c.will,
        Some(Will {
            topic: "x/status",
            payload: b"offline",
            qos: 1,
            retain: true
        })
    );
    assert_eq!(c.username, Some("user"));
    assert_eq!(c.password, Some(&b"secret"[..]));
    assert!(
        !format!("{c:?}").contains("secret"),
        "Debug hides the password"
    );
}

#[test]
fn bytes_pipelined_after_connect_are_not_part_of_it() {
    let mut bytes = simple("a");
    let len = bytes.len();
    bytes.extend_from_slice(&[0xC0, 0x00]); // PINGREQ
    let c = parse_connect(&bytes, MAX).unwrap().unwrap();
    assert_eq!(c.packet_len, len);
}

#[test]
fn mqtt_5_is_refused_by_level() {
    let mut connect = rumqttc::Connect::new("v5-client");
    connect.protocol = rumqttc::Protocol::V5;
    assert_eq!(
        parse_connect(&encode(&connect), MAX),
        Err(ConnectError::UnsupportedProtocolLevel(5))
    );
    assert_eq!(
        parse_connect(&raw_connect(b"MQTT", 3, &rest(2, 10, b"a")), MAX),
        Err(ConnectError::UnsupportedProtocolLevel(3))
    );
}

#[test]
fn mqtt_31_is_accepted_and_upgraded() {
    let bytes = raw_connect(b"MQIsdp", 3, &rest(0x02, 30, b"old-client"));
    let c = parse_connect(&bytes, MAX).unwrap().unwrap();
    assert_eq!(c.version, ProtocolVersion::V31);
    assert_eq!(c.client_id, b"old-client");

    let upgraded = encode_for_rumqttd(&c);
    assert_eq!(upgraded, simple_with(b"old-client", 30));
    let u = parse_connect(&upgraded, MAX).unwrap().unwrap();
    assert_eq!(u.version, ProtocolVersion::V311);
    assert_eq!(
        (u.client_id, u.keep_alive, u.clean_session),
        (&b"old-client"[..], 30, true)
    );
}

fn simple_with(id: &[u8], keep_alive: u16) -> Vec<u8> {
    raw_connect(b"MQTT", 4, &rest(0x02, keep_alive, id))
}

#[test]
fn unknown_protocols_and_packets_are_refused() {
    assert_eq!(
        parse_connect(&raw_connect(b"HTTP", 4, &rest(2, 10, b"a")), MAX),
        Err(ConnectError::UnknownProtocolName)
    );
    assert_eq!(
        parse_connect(b"GET / HTTP/1.1\r\n", MAX),
        Err(ConnectError::NotConnect(4))
    );
    assert_eq!(
        parse_connect(&[0xC0, 0x00], MAX),
        Err(ConnectError::NotConnect(12))
    );
    assert_eq!(
        parse_connect(&[0x12, 0x00], MAX),
        Err(ConnectError::HeaderFlags(2))
    );
}

#[test]
fn remaining_length_is_at_most_four_bytes() {
    assert_eq!(parse_connect(&[0x10, 0xFF, 0xFF, 0xFF], MAX), Ok(None));
    assert_eq!(
        parse_connect(&[0x10, 0xFF, 0xFF, 0xFF, 0xFF], MAX),
        Err(ConnectError::BadRemainingLength)
    );
    // The largest legal length is refused for size from the header alone.
    assert_eq!(
        parse_connect(&[0x10, 0xFF, 0xFF, 0xFF, 0x7F], MAX),
        Err(ConnectError::TooLarge {
            len: 5 + 268_435_455,
            max: MAX
        })
    );
}

#[test]
fn size_cap_applies_to_the_whole_packet() {
    let bytes = simple("abc");
    assert!(parse_connect(&bytes, bytes.len()).unwrap().is_some());
    assert_eq!(
        parse_connect(&bytes, bytes.len() - 1),
        Err(ConnectError::TooLarge {
            len: bytes.len(),
            max: bytes.len() - 1
        })
    );
}

#[test]
fn malformed_flags_and_fields_are_refused() {
    let cases: [(u8, &str); 4] = [
        (0x03, "reserved connect flag is set"),
        (0x1E, "will QoS is 3"),
        (0x22, "will QoS or retain set without a will"),
        (0x42, "password without user name"),
    ];
    for (flags, why) in cases {
        assert_eq!(
            parse_connect(&raw_connect(b"MQTT", 4, &rest(flags, 10, b"a")), MAX),
            Err(ConnectError::Malformed(why)),
            "flags {flags:#04x}"
        );
    }
    // Client id length pointing past the packet.
    let mut short = rest(0x02, 10, b"abc");
    short.truncate(short.len() - 1);
    assert_eq!(
        parse_connect(&raw_connect(b"MQTT", 4, &short), MAX),
        Err(ConnectError::Malformed("truncated client id"))
    );
    // Trailing garbage inside the packet.
    let mut long = rest(0x02, 10, b"abc");
    long.push(0);
    assert_eq!(
        parse_connect(&raw_connect(b"MQTT", 4, &long), MAX),
        Err(ConnectError::Malformed(
            "bytes after the last CONNECT field"
        ))
    );
    // A will on a wildcard topic.
    let mut will = rest(0x06, 10, b"abc");
    will.extend_from_slice(&[0, 3, b'a', b'/', b'#', 0, 0]);
    assert_eq!(
        parse_connect(&raw_connect(b"MQTT", 4, &will), MAX),
        Err(ConnectError::Malformed(
            "will topic is empty or has a wildcard"
        ))
    );
}

#[test]
fn client_id_bytes_are_returned_raw() {
    let bytes = raw_connect(b"MQTT", 4, &rest(0x02, 10, b"\xff/\n"));
    let c = parse_connect(&bytes, MAX).unwrap().unwrap();
    assert_eq!(c.client_id, b"\xff/\n");
    let empty = simple("");
    assert_eq!(parse_connect(&empty, MAX).unwrap().unwrap().client_id, b"");
}

#[test]
fn remaining_length_encoding_round_trips() {
    for len in [
        0,
        1,
        127,
        128,
        16_383,
        16_384,
        2_097_151,
        2_097_152,
        268_435_455,
    ] {
        let mut out = Vec::new();
        write_remaining_length(&mut out, len);
        assert_eq!(
            read_remaining_length(&out),
            Ok(Some((len, out.len()))),
            "{len}"
        );
    }
}

fn arb_qos() -> impl Strategy<Value = QoS> {
    prop_oneof![
        Just(QoS::AtMostOnce),
        Just(QoS::AtLeastOnce),
        Just(QoS::ExactlyOnce)
    ]
}

prop_compose! {
    fn arb_connect()(
        id in ".{0,40}",
        keep_alive in any::<u16>(),
        clean_session in any::<bool>(),
        will in prop::option::of(("[a-z/]{1,30}", prop::collection::vec(any::<u8>(), 0..300), arb_qos(), any::<bool>())),
        // rumqttc leaves out an empty user name; MQTT 3.1.1 forbids a password without one.
        login in prop::option::of(("[ -~]{1,20}", "[ -~]{0,20}")),
    ) -> rumqttc::Connect {
        let mut c = rumqttc::Connect::new(id);
        c.keep_alive = keep_alive;
        c.clean_session = clean_session;
        c.last_will = will.map(|(t, p, q, r)| LastWill::new(t, p, q, r));
        if let Some((u, p)) = login {
            c.set_login(u, p);
        }
        c
    }
}

proptest! {
    #[test]
    fn whatever_rumqttc_encodes_parses_back(connect in arb_connect()) {
        let bytes = encode(&connect);
        let c = parse_connect(&bytes, MAX).unwrap().unwrap();
        prop_assert_eq!(c.version, ProtocolVersion::V311);
        prop_assert_eq!(c.packet_len, bytes.len());
        prop_assert_eq!(c.client_id, connect.client_id.as_bytes());
        prop_assert_eq!(c.keep_alive, connect.keep_alive);
        prop_assert_eq!(c.clean_session, connect.clean_session);
        prop_assert_eq!(c.username, connect.login.as_ref().map(|l| l.username.as_str()));
        let password = connect.login.as_ref().map(|l| l.password.as_bytes()).filter(|p| !p.is_empty());
        prop_assert_eq!(c.password, password);
        let will = c.will.map(|w| (w.topic.to_owned(), w.payload.to_vec(), w.qos, w.retain));
        let expected = connect.last_will.map(|w| (w.topic, w.message.to_vec(), w.qos as u8, w.retain));
        prop_assert_eq!(will, expected);
    }

    /// What rumqttd receives is the client's CONNECT minus its credentials: every other
    /// field survives, and a CONNECT without credentials passes byte for byte.
    #[test]
    fn rumqttd_gets_the_same_connect_without_credentials(connect in arb_connect()) {
        let bytes = encode(&connect);
        let c = parse_connect(&bytes, MAX).unwrap().unwrap();
        let forwarded = encode_for_rumqttd(&c);
        let f = parse_connect(&forwarded, MAX).unwrap().unwrap();
        prop_assert_eq!(f.packet_len, forwarded.len());
        prop_assert_eq!((f.username, f.password), (None, None));
        prop_assert_eq!(f.client_id, c.client_id);
        prop_assert_eq!(f.keep_alive, c.keep_alive);
        prop_assert_eq!(f.clean_session, c.clean_session);
        prop_assert_eq!(&f.will, &c.will);
        if connect.login.is_none() {
            prop_assert_eq!(forwarded, bytes);
        }
    }

    #[test]
    fn every_strict_prefix_asks_for_more(connect in arb_connect()) {
        let bytes = encode(&connect);
        for end in 0..bytes.len() {
            prop_assert_eq!(parse_connect(&bytes[..end], MAX), Ok(None), "prefix of {} bytes", end);
        }
    }

    #[test]
    fn garbage_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..600), max in 0usize..1000) {
        if let Ok(Some(c)) = parse_connect(&bytes, max) {
            prop_assert!(c.packet_len <= bytes.len() && c.packet_len <= max);
        }
    }

    #[test]
    fn corrupted_connects_never_panic(connect in arb_connect(), index in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let mut bytes = encode(&connect);
        let i = index.index(bytes.len());
        bytes[i] = byte;
        if let Ok(Some(c)) = parse_connect(&bytes, MAX) {
            prop_assert!(c.packet_len <= bytes.len());
        }
        // Truncations of the corrupted packet never panic either.
        for end in 0..bytes.len() {
            let _ = parse_connect(&bytes[..end], MAX);
        }
    }

    #[test]
    fn v31_upgrade_keeps_every_field(id in "[a-z0-9]{1,23}", keep_alive in any::<u16>(), flags in prop::sample::select(vec![0u8, 2, 0x80, 0x82, 0xC2])) {
        let mut fields = rest(flags, keep_alive, id.as_bytes());
        if flags & 0x80 != 0 { fields.extend_from_slice(&[0, 1, b'u']); }
        if flags & 0x40 != 0 { fields.extend_from_slice(&[0, 1, b'p']); }
        let old = raw_connect(b"MQIsdp", 3, &fields);
        let c = parse_connect(&old, MAX).unwrap().unwrap();
        let new = encode_for_rumqttd(&c);
        let credentials = 3 * usize::from(flags & 0x80 != 0) + 3 * usize::from(flags & 0x40 != 0);
        prop_assert_eq!(new.len(), old.len() - 2 - credentials);
        let u = parse_connect(&new, MAX).unwrap().unwrap();
        prop_assert_eq!(u.version, ProtocolVersion::V311);
        prop_assert_eq!(u.client_id, c.client_id);
        prop_assert_eq!(u.keep_alive, c.keep_alive);
        prop_assert_eq!(u.clean_session, c.clean_session);
        prop_assert_eq!((u.username, u.password), (None, None));
    }
}
