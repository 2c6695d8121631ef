//! The guard enforces `max_connections` itself with CONNACK 3, so rumqttd's own limit (whose
//! refusal poisons its listener when the same client id tries twice) is never reached, and
//! a freed slot is usable again.

mod common;

use std::time::Duration;

use common::{
    Client, STEP, TestBroker, closed_without_answer, connect_packet, connect_with_keep_alive,
    handshake, read_connack, send_raw,
};
use sitewatch_broker::BrokerConfig;
use tokio::time::{Instant, sleep};

const SERVER_UNAVAILABLE: u8 = 3;

#[tokio::test]
async fn connection_over_the_limit_gets_server_unavailable_and_freed_slot_is_reused() {
    let broker = TestBroker::start(BrokerConfig {
        max_connections: 2,
        ..BrokerConfig::default()
    })
    .await;
    let addr = broker.addr();
    let first = Client::connect(addr, "node-1").await;
    let mut second = Client::connect(addr, "node-2").await;

    for attempt in 1..=2 {
        assert_eq!(
            handshake(addr, &connect_packet("node-3")).await,
            Some(SERVER_UNAVAILABLE),
            "attempt {attempt} over the limit"
        );
    }
    assert_eq!(broker.broker.stats().rejected_server_full, 2);

    first.kill().await;
    let deadline = Instant::now() + STEP;
    while broker.broker.stats().active > 1 {
        assert!(
            Instant::now() < deadline,
            "the slot of node-1 is never released"
        );
        sleep(Duration::from_millis(10)).await;
    }

    // The id refused twice above connects now, and the broker still routes messages.
    let mut third = Client::connect(addr, "node-3").await;
    third.subscribe("n/#").await;
    second.publish("n/2", "hi", false).await;
    assert_eq!(&third.next_publish().await.payload[..], b"hi");

    second.kill().await;
    third.kill().await;
    broker.stop().await;
}

/// A client that goes silent (a Pi that lost power: no FIN, no RST) is dropped by rumqttd
/// after 1.5 × keep-alive; the guard must then close its side too and free the slot, even
/// though the dead peer never closes its socket.
#[tokio::test]
async fn silent_client_past_its_keep_alive_frees_its_slot() {
    let broker = TestBroker::start(BrokerConfig {
        max_connections: 1,
        ..BrokerConfig::default()
    })
    .await;
    let addr = broker.addr();
    let mut sleepy = send_raw(addr, &connect_with_keep_alive("sleepy", 1)).await;
    assert_eq!(
        read_connack(&mut sleepy).await,
        Some([0x20, 0x02, 0x00, 0x00])
    );
    assert_eq!(broker.broker.stats().active, 1);

    // Never send anything again, and keep the socket open.
    let deadline = Instant::now() + STEP;
    while broker.broker.stats().active > 0 {
        assert!(
            Instant::now() < deadline,
            "the silent client keeps its slot forever"
        );
        sleep(Duration::from_millis(20)).await;
    }
    assert!(closed_without_answer(&mut sleepy).await);

    let next = Client::connect(addr, "next").await;
    next.kill().await;
    broker.stop().await;
}
