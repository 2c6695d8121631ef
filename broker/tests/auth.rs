//! Authentication in the guard: refused logins get CONNACK 4 or 5 (each twice, as a repeated
//! refusal is what poisons a bare rumqttd), and afterwards good clients still connect and
//! exchange messages; a flood of slow logins does not stall connected clients; successful
//! logins are cached.

mod common;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::{
    Client, TestBroker, TestUsers, agent_options, handshake, login_options, login_packet,
};
use sitewatch_broker::BrokerConfig;

/// Client id, login, will, expected CONNACK code, and what the case is.
type Case<'a> = (
    &'a str,
    Option<(&'a str, &'a str)>,
    Option<(&'a str, &'a str)>,
    u8,
    &'a str,
);

const BAD_CREDENTIALS: u8 = 4;
const NOT_AUTHORIZED: u8 = 5;

#[tokio::test]
async fn refused_logins_get_4_or_5_twice_and_good_clients_still_work() {
    let users = TestUsers::new(Duration::from_millis(20));
    let broker = TestBroker::start_with(BrokerConfig::default(), users.options()).await;
    let addr = broker.addr();
    let own_will = ("sitewatch/v1/club-a/pi-1/status", "offline");
    let cases: [Case; 7] = [
        (
            "sw.club-a.pi-1",
            Some(("pi-1", "wrong")),
            Some(own_will),
            BAD_CREDENTIALS,
            "wrong password",
        ),
        (
            "x",
            Some(("nobody", "x")),
            None,
            BAD_CREDENTIALS,
            "unknown user",
        ),
        (
            "x",
            Some(("revoked", "revoked")),
            None,
            NOT_AUTHORIZED,
            "revoked",
        ),
        ("anonymous", None, None, NOT_AUTHORIZED, "anonymous"),
        (
            "sw.club-a.pi-9",
            Some(("pi-1", "secret-1")),
            None,
            NOT_AUTHORIZED,
            "someone else's client id",
        ),
        (
            "sw.club-a.pi-1",
            Some(("pi-1", "secret-1")),
            Some(("sitewatch/v1/club-b/pi-2/status", "offline")),
            NOT_AUTHORIZED,
            "a will on another node",
        ),
        (
            "sw.club-b.pi-2",
            Some(("dash", "dash")),
            None,
            NOT_AUTHORIZED,
            "an agent's id, unbound",
        ),
    ];
    for (id, login, will, code, what) in cases {
        for attempt in 1..=2 {
            assert_eq!(
                handshake(addr, &login_packet(id, login, will)).await,
                Some(code),
                "{what}, attempt {attempt}"
            );
        }
    }

    // Good clients: a dashboard reads everything, the agent publishes its own topics and
    // receives the ack the (trusted) hub publishes for it.
    let mut dash = Client::connect_with(login_options(addr, "dash-1", "dash", "dash")).await;
    dash.subscribe("sitewatch/v1/#").await;
    let mut agent = Client::connect_with(agent_options(addr)).await;
    agent.subscribe("sitewatch/v1/club-a/pi-1/ack").await;
    agent
        .publish("sitewatch/v1/club-a/pi-1/metrics", "{\"seq\":1}", false)
        .await;
    let seen = dash.next_publish().await;
    assert_eq!(seen.topic, "sitewatch/v1/club-a/pi-1/metrics");
    let mut hub = Client::connect_with(login_options(addr, "sw-hub.test", "hub", "hub")).await;
    hub.publish("sitewatch/v1/club-a/pi-1/ack", "{\"seq\":1}", true)
        .await;
    let ack = agent.next_publish().await;
    assert_eq!(
        (ack.topic.as_str(), &ack.payload[..]),
        ("sitewatch/v1/club-a/pi-1/ack", &b"{\"seq\":1}"[..])
    );

    let stats = broker.broker.stats();
    assert_eq!(stats.rejected_bad_credentials, 4);
    assert_eq!(stats.rejected_not_authorized, 10);
    assert_eq!(stats.relayed, 3);
    for client in [dash, agent, hub] {
        client.kill().await;
    }
    broker.stop().await;
}

#[tokio::test]
async fn anonymous_clients_only_when_allowed() {
    let users = TestUsers::new(Duration::ZERO);
    let broker = TestBroker::start_with(
        BrokerConfig {
            allow_anonymous: true,
            ..BrokerConfig::default()
        },
        users.options(),
    )
    .await;
    let addr = broker.addr();
    assert_eq!(
        handshake(addr, &login_packet("anon", None, None)).await,
        Some(0)
    );
    // Credentials, when given, are still checked.
    assert_eq!(
        handshake(addr, &login_packet("anon", Some(("dash", "wrong")), None)).await,
        Some(BAD_CREDENTIALS)
    );
    assert_eq!(users.calls.load(Ordering::SeqCst), 1);
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_slow_logins_does_not_stall_connected_clients() {
    const FLOOD: usize = 40;
    let users = TestUsers::new(Duration::from_millis(50));
    let broker = TestBroker::start_with(
        BrokerConfig {
            auth_concurrency: 2,
            ..BrokerConfig::default()
        },
        users.options(),
    )
    .await;
    let addr = broker.addr();
    let mut dash = Client::connect_with(login_options(addr, "dash-1", "dash", "dash")).await;
    dash.subscribe("probe/#").await;

    let started = Instant::now();
    let flood: Vec<_> = (0..FLOOD)
        .map(|i| {
            let packet = login_packet(&format!("attacker-{i}"), Some(("dash", "guess")), None);
            tokio::spawn(async move { handshake(addr, &packet).await })
        })
        .collect();
    // While 40 × 50 ms of password checks queue up two at a time, a connected client's
    // round trip through the broker is not delayed by them.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let round_trip = Instant::now();
    dash.publish("probe/1", "x", false).await;
    dash.next_publish().await;
    let round_trip = round_trip.elapsed();
    for refused in flood {
        assert_eq!(refused.await.unwrap(), Some(BAD_CREDENTIALS));
    }
    let flood_time = started.elapsed();
    println!(
        "auth flood: {FLOOD} logins × 50 ms, 2 at a time, refused in {flood_time:?}; \
         connected client's round trip meanwhile: {round_trip:?}"
    );
    assert!(round_trip < Duration::from_millis(500), "{round_trip:?}");
    assert_eq!(users.max_running.load(Ordering::SeqCst), 2);
    assert!(flood_time >= Duration::from_millis(50 * FLOOD as u64 / 2));
    assert_eq!(broker.broker.stats().rejected_bad_credentials, FLOOD as u64);
    dash.kill().await;
    broker.stop().await;
}

#[tokio::test]
async fn a_reconnecting_client_is_not_checked_again_until_logins_are_forgotten() {
    let users = TestUsers::new(Duration::from_millis(20));
    let broker = TestBroker::start_with(BrokerConfig::default(), users.options()).await;
    let addr = broker.addr();
    for _ in 0..3 {
        let agent = Client::connect_with(agent_options(addr)).await;
        agent.kill().await;
    }
    let stats = broker.broker.stats();
    assert_eq!((stats.auth_checks, stats.auth_cache_hits), (1, 2));
    broker.broker.handle().forget_logins();
    let agent = Client::connect_with(agent_options(addr)).await;
    agent.kill().await;
    assert_eq!(broker.broker.stats().auth_checks, 2);
    assert_eq!(users.calls.load(Ordering::SeqCst), 2);
    broker.stop().await;
}
