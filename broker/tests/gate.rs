//! The gate: until the application behind the broker has subscribed, other clients are held
//! (and after `max_wait` refused with CONNACK 3, so they retry), while the application's own
//! client passes at once.

mod common;

use std::time::Duration;

use common::{connect_packet, handshake, read_connack, send_raw};
use sitewatch_broker::{BrokerConfig, Gate};
use tokio::sync::watch;
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;

#[tokio::test]
async fn clients_wait_for_the_gate_and_the_owner_passes() {
    let (open_tx, open) = watch::channel(false);
    let shutdown = CancellationToken::new();
    let broker = sitewatch_broker::start_gated(
        BrokerConfig {
            listen: Some("127.0.0.1:0".parse().expect("addr")),
            ..BrokerConfig::default()
        },
        Some(Gate {
            open,
            bypass_prefix: "sw-hub.".into(),
            max_wait: Duration::from_secs(1),
        }),
        shutdown.clone(),
    )
    .await
    .expect("broker starts");
    let addr = broker.local_addr().expect("plain listener");

    // Closed: the owner gets in, an agent waits and is then told to come back (3).
    assert_eq!(
        handshake(addr, &connect_packet("sw-hub.box")).await,
        Some(0)
    );
    assert_eq!(handshake(addr, &connect_packet("club-pi")).await, Some(3));

    // An agent waiting when the gate opens is let in at that moment.
    let mut waiting = send_raw(addr, &connect_packet("club-pi2")).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    open_tx.send_replace(true);
    let connack = timeout(Duration::from_secs(2), read_connack(&mut waiting))
        .await
        .expect("CONNACK once the gate opens")
        .expect("not closed");
    assert_eq!(connack, [0x20, 0x02, 0x00, 0x00]);
    // Open: everyone passes at once.
    assert_eq!(handshake(addr, &connect_packet("club-pi3")).await, Some(0));
    shutdown.cancel();
    broker.join().await;
}
