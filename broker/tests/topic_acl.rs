//! Topic rules for clients bound to a node (rumqttd has no ACLs, the guard enforces them):
//! an agent publishing or subscribing outside its node's topics is cut off before the
//! packet reaches rumqttd — each case twice — its will announces it offline, nothing it
//! tried is routed, and afterwards agents and dashboards still work.

mod common;

use std::time::Duration;

use common::{
    Client, TestBroker, TestUsers, agent_options, closed_without_answer, login_options,
    login_packet, publish_packet, raw_session, send_raw, subscribe_packet,
};
use sitewatch_broker::BrokerConfig;
use tokio::io::AsyncWriteExt;

const STATUS: &str = "sitewatch/v1/club-a/pi-1/status";

fn agent_connect() -> Vec<u8> {
    login_packet(
        "sw.club-a.pi-1",
        Some(("pi-1", "secret-1")),
        Some((STATUS, "offline")),
    )
}

/// Twice over, a new session opened with `connect` publishes "forged" on `topic`: the guard
/// must close it without an answer.
async fn assert_publish_cut_off(addr: std::net::SocketAddr, connect: &[u8], topic: &str) {
    for attempt in 1..=2 {
        let mut session = raw_session(addr, connect).await;
        session
            .write_all(&publish_packet(topic, b"forged", 1))
            .await
            .expect("write");
        assert!(
            closed_without_answer(&mut session).await,
            "publish to {topic}, attempt {attempt}"
        );
    }
}

#[tokio::test]
async fn an_agent_is_cut_off_outside_its_topics_and_others_keep_working() {
    let users = TestUsers::new(Duration::ZERO);
    let broker = TestBroker::start_with(BrokerConfig::default(), users.options()).await;
    let addr = broker.addr();
    let mut dash = Client::connect_with(login_options(addr, "dash-1", "dash", "dash")).await;
    dash.subscribe("#").await;

    let publishes = [
        "sitewatch/v1/club-b/pi-2/metrics",
        "sitewatch/v1/club-a/pi-2/heartbeat",
        "sitewatch/v1/club-a/pi-1/ack",
        "sitewatch/v1/club-a/status",
        "homeassistant/sensor/x/config",
    ];
    for topic in publishes {
        assert_publish_cut_off(addr, &agent_connect(), topic).await;
    }
    let filters = [
        "#",
        "sitewatch/v1/#",
        "sitewatch/v1/club-b/pi-2/ack",
        "sitewatch/v1/club-a/+/ack",
    ];
    for filter in filters {
        for attempt in 1..=2 {
            let mut session = raw_session(addr, &agent_connect()).await;
            session
                .write_all(&subscribe_packet(filter))
                .await
                .expect("write");
            assert!(
                closed_without_answer(&mut session).await,
                "subscribe to {filter}, attempt {attempt}"
            );
        }
    }
    // A forged publish pipelined in the same segment as the CONNECT is checked too.
    for attempt in 1..=2 {
        let mut bytes = agent_connect();
        bytes.extend(publish_packet(
            "sitewatch/v1/club-b/pi-2/metrics",
            b"forged",
            0,
        ));
        let mut session = send_raw(addr, &bytes).await;
        let mut connack = [0u8; 4];
        tokio::io::AsyncReadExt::read_exact(&mut session, &mut connack)
            .await
            .expect("CONNACK");
        assert_eq!(connack, [0x20, 0x02, 0x00, 0x00]);
        assert!(
            closed_without_answer(&mut session).await,
            "pipelined, attempt {attempt}"
        );
    }

    // Nothing forged was routed; each cut-off session fired the agent's will.
    let seen = dash.publishes_within(Duration::from_millis(500)).await;
    assert!(
        seen.iter().all(|p| &p.payload[..] != b"forged"),
        "forged messages were routed: {seen:?}"
    );
    assert!(
        seen.iter()
            .any(|p| p.topic == STATUS && &p.payload[..] == b"offline"),
        "no will seen: {seen:?}"
    );

    // The agent itself still works, and so does everyone else.
    let mut agent = Client::connect_with(agent_options(addr)).await;
    agent.subscribe("sitewatch/v1/club-a/pi-1/ack").await;
    agent.subscribe("sitewatch/v1/club-a/pi-1/alerts").await;
    agent
        .publish("sitewatch/v1/club-a/pi-1/heartbeat", "{\"seq\":7}", false)
        .await;
    let beat = loop {
        let p = dash.next_publish().await;
        if p.topic.ends_with("/heartbeat") {
            break p;
        }
    };
    assert_eq!(&beat.payload[..], b"{\"seq\":7}");
    // The application (trusted) acks; an integration's account like `dash` could not.
    let mut app = Client::connect_with(login_options(addr, "app-1", "hub", "hub")).await;
    app.publish("sitewatch/v1/club-a/pi-1/ack", "{\"seq\":7}", true)
        .await;
    assert_eq!(
        agent.next_publish().await.topic,
        "sitewatch/v1/club-a/pi-1/ack"
    );

    let stats = broker.broker.stats();
    assert_eq!(
        stats.disconnected_publish_denied,
        2 * publishes.len() as u64 + 2
    );
    assert_eq!(
        stats.disconnected_subscribe_denied,
        2 * filters.len() as u64
    );
    assert_eq!(stats.active, 3);
    dash.kill().await;
    agent.kill().await;
    app.kill().await;
    broker.stop().await;
}

#[tokio::test]
async fn integrations_read_everything_and_write_only_outside_the_namespace() {
    let users = TestUsers::new(Duration::ZERO);
    let broker = TestBroker::start_with(BrokerConfig::default(), users.options()).await;
    let addr = broker.addr();
    let mut dash = Client::connect_with(login_options(addr, "dash-1", "dash", "dash")).await;
    dash.subscribe("#").await;
    dash.publish_qos0("homeassistant/status", "online").await;
    dash.publish_qos0("anything/else", "{}").await;
    let seen = dash.publishes_within(Duration::from_millis(500)).await;
    assert_eq!(seen.len(), 2, "{seen:?}");
    // The agent's status, the hub's ack, a site's status: each cuts the session off
    // (twice over, then a good client still connects), and nothing is routed.
    let mut watcher = Client::connect_with(login_options(addr, "app-1", "hub", "hub")).await;
    watcher.subscribe("sitewatch/#").await;
    let forged = [
        "sitewatch/v1/club-a/pi-1/status",
        "sitewatch/v1/club-b/pi-2/ack",
        "sitewatch/v1/club-a/status",
    ];
    let dash_connect = login_packet("dash-2", Some(("dash", "dash")), None);
    for topic in forged {
        assert_publish_cut_off(addr, &dash_connect, topic).await;
    }
    let seen = watcher.publishes_within(Duration::from_millis(500)).await;
    assert!(seen.is_empty(), "forged messages were routed: {seen:?}");
    assert_eq!(
        broker.broker.stats().disconnected_publish_denied,
        2 * forged.len() as u64
    );
    let mut again = Client::connect_with(login_options(addr, "dash-3", "dash", "dash")).await;
    again.publish_qos0("anything/else", "{}").await;
    dash.kill().await;
    watcher.kill().await;
    again.kill().await;
    broker.stop().await;
}
