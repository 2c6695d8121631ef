//! Limits enforced in the guard's relay: packet size (before any byte reaches rumqttd) and
//! the per-connection publish rate, throttled or disconnected. Each rejection happens twice,
//! then a good client still connects and gets a round trip through the broker.

mod common;

use std::time::{Duration, Instant};

use common::{
    Client, TestBroker, closed_without_answer, connect_packet, publish_packet, raw_session,
};
use sitewatch_broker::{BrokerConfig, Gate, OverRate, PublishRate, StartOptions};
use tokio::io::AsyncWriteExt;

#[tokio::test]
async fn oversized_packets_are_cut_off_before_rumqttd() {
    let broker = TestBroker::start(BrokerConfig {
        max_payload_bytes: 2048,
        ..BrokerConfig::default()
    })
    .await;
    let addr = broker.addr();
    let mut watcher = Client::connect(addr, "watcher").await;
    watcher.subscribe("big/#").await;
    for attempt in 1..=2 {
        let mut session = raw_session(addr, &connect_packet("big-sender")).await;
        session
            .write_all(&publish_packet("big/one", &[b'x'; 4000], 1))
            .await
            .expect("write");
        assert!(
            closed_without_answer(&mut session).await,
            "attempt {attempt}"
        );
    }
    // A packet just under the limit goes through.
    let mut sender = Client::connect(addr, "big-sender").await;
    let fits = "y".repeat(1900);
    sender.publish("big/fits", &fits, false).await;
    let got = watcher.next_publish().await;
    assert_eq!((got.topic.as_str(), got.payload.len()), ("big/fits", 1900));
    let stats = broker.broker.stats();
    assert_eq!(stats.disconnected_too_large, 2);
    sender.kill().await;
    watcher.kill().await;
    broker.stop().await;
}

#[tokio::test]
async fn a_client_over_its_rate_is_disconnected_when_so_configured() {
    let broker = TestBroker::start(BrokerConfig {
        publish_rate: Some(PublishRate {
            per_second: 10,
            burst: 5,
            over_rate: OverRate::Disconnect,
        }),
        ..BrokerConfig::default()
    })
    .await;
    let addr = broker.addr();
    let mut watcher = Client::connect(addr, "watcher").await;
    watcher.subscribe("flood/#").await;
    for attempt in 1..=2 {
        let mut session = raw_session(addr, &connect_packet("flooder")).await;
        let burst: Vec<u8> = (0..20)
            .flat_map(|i| publish_packet(&format!("flood/{i}"), b"x", 0))
            .collect();
        session.write_all(&burst).await.expect("write");
        assert!(
            closed_without_answer(&mut session).await,
            "attempt {attempt}"
        );
    }
    let routed = watcher.publishes_within(Duration::from_millis(300)).await;
    assert_eq!(routed.len(), 2 * 5, "only each burst allowance was routed");
    let mut good = Client::connect(addr, "flooder").await;
    good.publish("flood/ok", "fine", false).await;
    assert_eq!(watcher.next_publish().await.topic, "flood/ok");
    assert_eq!(broker.broker.stats().disconnected_rate, 2);
    good.kill().await;
    watcher.kill().await;
    broker.stop().await;
}

#[tokio::test]
async fn a_client_over_its_rate_is_slowed_down_and_loses_nothing() {
    const MESSAGES: usize = 60;
    let broker = TestBroker::start(BrokerConfig {
        publish_rate: Some(PublishRate {
            per_second: 100,
            burst: 10,
            over_rate: OverRate::Throttle,
        }),
        ..BrokerConfig::default()
    })
    .await;
    let addr = broker.addr();
    let mut watcher = Client::connect(addr, "watcher").await;
    watcher.subscribe("fast/#").await;
    let mut session = raw_session(addr, &connect_packet("fast")).await;
    let started = Instant::now();
    let burst: Vec<u8> = (0..MESSAGES)
        .flat_map(|i| publish_packet(&format!("fast/{i}"), b"x", 0))
        .collect();
    session.write_all(&burst).await.expect("write");
    let mut routed = Vec::new();
    while routed.len() < MESSAGES {
        routed.push(watcher.next_publish().await.topic);
    }
    let took = started.elapsed();
    println!("throttle: {MESSAGES} publishes at 100/s after a burst of 10 took {took:?}");
    let expected: Vec<String> = (0..MESSAGES).map(|i| format!("fast/{i}")).collect();
    assert_eq!(routed, expected, "all delivered, in order");
    // (60 - 10) / 100 per second = 0.5 s at least.
    assert!(took >= Duration::from_millis(450), "{took:?}");
    let stats = broker.broker.stats();
    assert_eq!(stats.disconnected_total(), 0);
    assert!(stats.publishes_throttled >= 40, "{stats:?}");
    // The throttled session is still alive: PINGREQ gets PINGRESP.
    session.write_all(&[0xC0, 0x00]).await.expect("PINGREQ");
    let mut pingresp = [0u8; 2];
    tokio::time::timeout(
        common::STEP,
        tokio::io::AsyncReadExt::read_exact(&mut session, &mut pingresp),
    )
    .await
    .expect("PINGRESP in time")
    .expect("PINGRESP");
    assert_eq!(pingresp, [0xD0, 0x00]);
    watcher.kill().await;
    broker.stop().await;
}

/// Without an authenticator, the application's own client (the gate's bypass prefix) is
/// trusted: the hub publishes an ack per node and batch, far over an agent's rate.
#[tokio::test]
async fn the_gate_owner_is_not_rate_limited() {
    let (_open, open_rx) = tokio::sync::watch::channel(true);
    let broker = TestBroker::start_with(
        BrokerConfig {
            publish_rate: Some(PublishRate {
                per_second: 10,
                burst: 2,
                over_rate: OverRate::Disconnect,
            }),
            ..BrokerConfig::default()
        },
        StartOptions {
            gate: Some(Gate {
                open: open_rx,
                bypass_prefix: "sw-hub.".to_owned(),
                max_wait: Duration::from_secs(1),
            }),
            ..StartOptions::default()
        },
    )
    .await;
    let addr = broker.addr();
    let burst: Vec<u8> = (0..20)
        .flat_map(|i| publish_packet(&format!("acks/{i}"), b"x", 0))
        .collect();
    let mut hub = raw_session(addr, &connect_packet("sw-hub.1")).await;
    hub.write_all(&burst).await.expect("write");
    let mut other = raw_session(addr, &connect_packet("other")).await;
    other.write_all(&burst).await.expect("write");
    assert!(closed_without_answer(&mut other).await);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let stats = broker.broker.stats();
    assert_eq!((stats.disconnected_rate, stats.active), (1, 1));
    broker.stop().await;
}
