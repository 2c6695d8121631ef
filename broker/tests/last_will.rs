//! Retained messages and last wills go through the guard to rumqttd and back: the guard
//! relays bytes, it must not swallow the end of a session (which is what fires the will).

mod common;

use common::{Client, TestBroker, connect_with_will, read_connack, send_raw};
use sitewatch_broker::BrokerConfig;

#[tokio::test]
async fn retained_will_of_an_abruptly_dropped_client_reaches_subscribers() {
    let broker = TestBroker::start(BrokerConfig::default()).await;
    let addr = broker.addr();
    let mut watcher = Client::connect(addr, "watcher").await;
    watcher.subscribe("x/status").await;

    let mut agent = send_raw(
        addr,
        &connect_with_will("agent-a", 2, "x/status", "offline"),
    )
    .await;
    assert_eq!(
        read_connack(&mut agent).await,
        Some([0x20, 0x02, 0x00, 0x00])
    );
    // Reset the connection, as a crashed process or a lost link would: no DISCONNECT.
    agent.set_zero_linger().expect("SO_LINGER 0");
    drop(agent);

    let will = watcher.next_publish().await;
    assert_eq!(
        (will.topic.as_str(), &will.payload[..]),
        ("x/status", &b"offline"[..])
    );

    // The will was retained: a client subscribing later still gets it, flagged retained.
    let mut late = Client::connect(addr, "late-subscriber").await;
    late.subscribe("x/#").await;
    let retained = late.next_publish().await;
    assert_eq!(retained.topic, "x/status");
    assert_eq!(&retained.payload[..], b"offline");
    assert!(
        retained.retain,
        "a late subscriber gets the will as a retained message"
    );

    watcher.kill().await;
    late.kill().await;
    broker.stop().await;
}

#[tokio::test]
async fn retained_publish_is_kept_for_later_subscribers() {
    let broker = TestBroker::start(BrokerConfig::default()).await;
    let addr = broker.addr();
    let mut publisher = Client::connect(addr, "publisher").await;
    publisher.publish("r/site-a/status", "online", true).await;
    publisher.kill().await;

    let mut subscriber = Client::connect(addr, "subscriber").await;
    subscriber.subscribe("r/+/status").await;
    let retained = subscriber.next_publish().await;
    assert_eq!(retained.topic, "r/site-a/status");
    assert_eq!(&retained.payload[..], b"online");
    assert!(retained.retain);

    subscriber.kill().await;
    broker.stop().await;
}
