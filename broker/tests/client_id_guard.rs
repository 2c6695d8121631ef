//! Regression: rumqttd 0.20 panics on a client id with `/ + # $` and, when the same id
//! connects twice, poisons a lock so its listener refuses every later client (see
//! `embedded::tests::bare_rumqttd_is_poisoned_by_a_repeated_bad_client_id` for the hazard
//! itself). Through the guard, each bad id gets CONNACK 2 — twice — and normal clients
//! still connect, subscribe and receive.

mod common;

use common::{
    Client, TestBroker, connect_packet, handshake, persistent_connect_packet, v5_connect_packet,
};
use sitewatch_broker::BrokerConfig;

const IDENTIFIER_REJECTED: u8 = 2;
const UNACCEPTABLE_PROTOCOL_VERSION: u8 = 1;
const ACCEPTED: u8 = 0;

#[tokio::test]
async fn bad_client_ids_do_not_poison_rumqttd_listener() {
    let broker = TestBroker::start(BrokerConfig::default()).await;
    let addr = broker.addr();

    let long = "x".repeat(300);
    let bad_ids = ["a/b", "+", "#", "$x", long.as_str(), "two words"];
    for id in bad_ids {
        for attempt in 1..=2 {
            assert_eq!(
                handshake(addr, &connect_packet(id)).await,
                Some(IDENTIFIER_REJECTED),
                "id {id:?}, attempt {attempt}"
            );
        }
    }
    // Empty id: refused for a persistent session (MQTT 3.1.1 3.1.3-8), accepted with clean
    // session — rumqttd assigns one, and mosquitto_sub 2.x sends exactly that by default.
    for attempt in 1..=2 {
        assert_eq!(
            handshake(addr, &persistent_connect_packet("")).await,
            Some(IDENTIFIER_REJECTED),
            "empty id, persistent session, attempt {attempt}"
        );
        assert_eq!(
            handshake(addr, &connect_packet("")).await,
            Some(ACCEPTED),
            "empty id, clean session, attempt {attempt}"
        );
    }
    for attempt in 1..=2 {
        assert_eq!(
            handshake(addr, &v5_connect_packet("v5-client")).await,
            Some(UNACCEPTABLE_PROTOCOL_VERSION),
            "MQTT 5 CONNECT, attempt {attempt}"
        );
    }

    let mut subscriber = Client::connect(addr, "subscriber").await;
    subscriber.subscribe("t/#").await;
    let mut publisher = Client::connect(addr, "publisher").await;
    publisher.publish("t/hello", "world", false).await;
    let received = subscriber.next_publish().await;
    assert_eq!(received.topic, "t/hello");
    assert_eq!(&received.payload[..], b"world");

    let stats = broker.broker.stats();
    assert_eq!(stats.rejected_client_id, 2 * (bad_ids.len() as u64 + 1));
    assert_eq!(stats.rejected_protocol_version, 2);
    assert_eq!(stats.relayed, 2 + 2);
    assert_eq!(stats.active, 2);

    subscriber.kill().await;
    publisher.kill().await;
    broker.stop().await;
}
