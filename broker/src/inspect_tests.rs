//! Tests of the stream inspector: fed in arbitrary pieces, it forwards exactly the bytes of
//! the packets it accepts, and stops at the first packet that breaks a rule, before any
//! byte of it is forwarded.

use std::time::{Duration, Instant};

use bytes::BytesMut;
use proptest::prelude::*;
use rumqttc::QoS;
use sitewatch_proto::{NodeId, Prefix, SiteId};

use super::*;
use crate::policy::{NodeBinding, NodePolicy};

const MAX: usize = 64 * 1024;

fn publish(topic: &str, payload_len: usize) -> Vec<u8> {
    let mut p = rumqttc::Publish::new(topic, QoS::AtLeastOnce, vec![b'x'; payload_len]);
    p.pkid = 1;
    let mut buf = BytesMut::new();
    p.write(&mut buf).unwrap();
    buf.to_vec()
}

fn subscribe(filter: &str) -> Vec<u8> {
    let mut s = rumqttc::Subscribe::new(filter, QoS::AtLeastOnce);
    s.pkid = 2;
    let mut buf = BytesMut::new();
    s.write(&mut buf).unwrap();
    buf.to_vec()
}

fn ping() -> Vec<u8> {
    vec![0xC0, 0x00]
}

fn node_policy() -> NodePolicy {
    let binding = NodeBinding::new(SiteId::new("club").unwrap(), NodeId::new("pi").unwrap());
    NodePolicy::new(&Prefix::default(), &binding)
}

/// What a relay would do with `input` arriving in `chunks`-sized pieces at time `now`:
/// the bytes forwarded and how it ended (`None`: input exhausted, waiting for more).
fn drive(
    inspector: &mut Inspector,
    input: &[u8],
    chunk: usize,
    now: Instant,
) -> (Vec<u8>, Option<Step>) {
    let mut buf: Vec<u8> = Vec::new();
    let mut fed = 0;
    let mut out = Vec::new();
    loop {
        match inspector.step(&buf, now) {
            Step::Forward(n) => {
                assert!(n > 0 && n <= buf.len(), "forward {n} of {}", buf.len());
                out.extend_from_slice(&buf[..n]);
                buf.drain(..n);
            }
            Step::NeedMore => {
                if fed == input.len() {
                    return (out, None);
                }
                let end = (fed + chunk.max(1)).min(input.len());
                buf.extend_from_slice(&input[fed..end]);
                fed = end;
            }
            other => return (out, Some(other)),
        }
    }
}

#[test]
fn an_agent_session_passes_untouched() {
    let p = node_policy();
    let mut input = subscribe("sitewatch/v1/club/pi/ack");
    input.extend(publish("sitewatch/v1/club/pi/status", 6));
    input.extend(publish("sitewatch/v1/club/pi/metrics", 20_000));
    input.extend(ping());
    input.extend(subscribe("sitewatch/v1/club/pi/alerts"));
    for chunk in [1, 7, 1000, usize::MAX] {
        let mut inspector = Inspector::new(
            MAX,
            Some(TopicPolicy::Node(p.clone())),
            None,
            Instant::now(),
        );
        assert_eq!(
            drive(&mut inspector, &input, chunk, Instant::now()),
            (input.clone(), None)
        );
    }
}

#[test]
fn a_bound_client_is_stopped_before_a_foreign_topic() {
    let good = publish("sitewatch/v1/club/pi/heartbeat", 10);
    let cases = [
        (
            publish("sitewatch/v1/club/other/metrics", 10),
            Violation::PublishDenied("sitewatch/v1/club/other/metrics".into()),
        ),
        (
            subscribe("sitewatch/v1/#"),
            Violation::SubscribeDenied("sitewatch/v1/#".into()),
        ),
        (
            publish("sitewatch/v1/club/pi/ack", 10),
            Violation::PublishDenied("sitewatch/v1/club/pi/ack".into()),
        ),
    ];
    for (bad, violation) in cases {
        let mut input = good.clone();
        input.extend(&bad);
        input.extend(&good);
        let mut inspector = Inspector::new(
            MAX,
            Some(TopicPolicy::Node(node_policy())),
            None,
            Instant::now(),
        );
        let (out, end) = drive(&mut inspector, &input, 3, Instant::now());
        assert_eq!(out, good, "only the packet before the bad one is forwarded");
        assert_eq!(end, Some(Step::Stop(violation)));
    }
}

#[test]
fn unbound_clients_may_use_any_topic_but_not_break_mqtt() {
    let mut input = subscribe("#");
    input.extend(publish("anything/at/all", 10));
    let mut inspector = Inspector::new(MAX, None, None, Instant::now());
    assert_eq!(
        drive(&mut inspector, &input, 5, Instant::now()),
        (input.clone(), None)
    );
    // A second CONNECT, and an oversized packet, end any session.
    let mut inspector = Inspector::new(MAX, None, None, Instant::now());
    let (_, end) = drive(&mut inspector, &[0x10, 0x00], 5, Instant::now());
    assert_eq!(end, Some(Step::Stop(Violation::SecondConnect)));
    let mut inspector = Inspector::new(MAX, None, None, Instant::now());
    let (out, end) = drive(&mut inspector, &publish("t", MAX), 100, Instant::now());
    assert!(out.is_empty());
    assert!(matches!(
        end,
        Some(Step::Stop(Violation::Packet(PacketError::TooLarge { .. })))
    ));
}

#[test]
fn the_rate_throttles_or_disconnects() {
    let t0 = Instant::now();
    let one = publish("t", 1);
    let input: Vec<u8> = (0..3).flat_map(|_| one.clone()).collect();
    let rate = |over_rate| PublishRate {
        per_second: 10,
        burst: 2,
        over_rate,
    };

    let mut inspector = Inspector::new(MAX, None, Some(rate(OverRate::Throttle)), t0);
    let (out, end) = drive(&mut inspector, &input, usize::MAX, t0);
    assert_eq!(out.len(), 2 * one.len());
    let Some(Step::Throttle(wait)) = end else {
        panic!("expected a throttle, got {end:?}");
    };
    assert!(wait <= Duration::from_millis(101), "{wait:?}");
    // After the wait the third publish goes through; pings are never limited.
    let mut rest = one.clone();
    rest.extend(ping());
    assert_eq!(
        drive(&mut inspector, &rest, usize::MAX, t0 + wait),
        (rest, None)
    );

    let mut inspector = Inspector::new(MAX, None, Some(rate(OverRate::Disconnect)), t0);
    let (out, end) = drive(&mut inspector, &input, usize::MAX, t0);
    assert_eq!(out.len(), 2 * one.len());
    assert_eq!(end, Some(Step::Stop(Violation::RateExceeded)));
}

#[test]
fn violations_name_their_counter() {
    use crate::stats::DisconnectReason as R;
    assert_eq!(Violation::RateExceeded.reason(), R::RateExceeded);
    assert_eq!(Violation::SecondConnect.reason(), R::Malformed);
    assert_eq!(
        Violation::Packet(PacketError::TooLarge { len: 2, max: 1 }).reason(),
        R::TooLarge
    );
    let long = Violation::PublishDenied("x".repeat(500)).to_string();
    assert!(long.len() < 200, "{long}");
}

fn arb_packet() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        ("[a-z/]{1,30}", 0usize..3000).prop_map(|(t, n)| publish(&t, n)),
        "[a-z/+#]{1,30}".prop_map(|f| subscribe(&f)),
        Just(ping()),
        Just(vec![0x40, 0x02, 0x00, 0x01]), // PUBACK
    ]
}

proptest! {
    /// An unbound, unlimited client's valid stream is forwarded byte for byte, however it
    /// is cut into pieces.
    #[test]
    fn valid_streams_pass_byte_for_byte(
        packets in prop::collection::vec(arb_packet(), 0..20),
        chunk in 1usize..5000,
    ) {
        let input: Vec<u8> = packets.concat();
        let mut inspector = Inspector::new(MAX, None, None, Instant::now());
        let (out, end) = drive(&mut inspector, &input, chunk, Instant::now());
        prop_assert_eq!(end, None);
        prop_assert_eq!(out, input);
    }

    /// Whatever the bytes, the inspector never panics, only forwards a prefix of its input,
    /// and never forwards a foreign topic for a bound client.
    #[test]
    fn garbage_never_panics_and_only_forwards_a_prefix(
        input in prop::collection::vec(any::<u8>(), 0..2000),
        chunk in 1usize..300,
        bound in any::<bool>(),
    ) {
        let policy = bound.then(|| TopicPolicy::Node(node_policy()));
        let mut inspector = Inspector::new(1000, policy, None, Instant::now());
        let (out, _) = drive(&mut inspector, &input, chunk, Instant::now());
        prop_assert!(input.starts_with(&out));
    }

    /// A bound client's stream is cut exactly before its first foreign packet.
    #[test]
    fn bound_clients_are_cut_before_the_first_foreign_packet(
        own in prop::collection::vec(prop::sample::select(vec!["status", "info", "heartbeat", "metrics", "scan"]), 0..10),
        foreign in "[a-z/]{1,30}",
        chunk in 1usize..500,
    ) {
        let mut input: Vec<u8> = own.iter().flat_map(|k| publish(&format!("sitewatch/v1/club/pi/{k}"), 50)).collect();
        let allowed = input.len();
        input.extend(publish(&foreign, 50));
        let mut inspector = Inspector::new(MAX, Some(TopicPolicy::Node(node_policy())), None, Instant::now());
        let (out, end) = drive(&mut inspector, &input, chunk, Instant::now());
        prop_assert_eq!(out.len(), allowed);
        prop_assert_eq!(end, Some(Step::Stop(Violation::PublishDenied(foreign))));
    }
}
