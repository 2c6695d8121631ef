//! What the guard does with connections that do not start with an acceptable CONNECT, and
//! with MQTT 3.1 clients, which rumqttd alone would drop without a word.

mod common;

use std::time::Duration;

use common::{STEP, TestBroker, closed_without_answer, handshake, send_raw};
use sitewatch_broker::BrokerConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::timeout;

/// An MQTT 3.1 CONNECT (`MQIsdp`, level 3), clean session, keep-alive 10 s.
fn mqtt31_connect(id: &str) -> Vec<u8> {
    let mut body = vec![0x00, 0x06];
    body.extend_from_slice(b"MQIsdp");
    body.extend_from_slice(&[0x03, 0x02, 0x00, 0x0A]);
    body.extend_from_slice(&(id.len() as u16).to_be_bytes());
    body.extend_from_slice(id.as_bytes());
    let mut packet = vec![0x10, body.len() as u8];
    packet.extend_from_slice(&body);
    packet
}

#[tokio::test]
async fn mqtt_31_client_is_served_as_311() {
    let broker = TestBroker::start(BrokerConfig::default()).await;
    let mut stream = send_raw(broker.addr(), &mqtt31_connect("old-client")).await;
    let mut connack = [0u8; 4];
    timeout(STEP, stream.read_exact(&mut connack))
        .await
        .expect("CONNACK in time")
        .expect("CONNACK");
    assert_eq!(connack, [0x20, 0x02, 0x00, 0x00]);
    // The session works: PINGREQ gets PINGRESP.
    stream.write_all(&[0xC0, 0x00]).await.expect("PINGREQ");
    let mut pingresp = [0u8; 2];
    timeout(STEP, stream.read_exact(&mut pingresp))
        .await
        .expect("PINGRESP in time")
        .expect("PINGRESP");
    assert_eq!(pingresp, [0xD0, 0x00]);
    broker.stop().await;
}

#[tokio::test]
async fn non_mqtt_and_silent_connections_are_closed_and_counted() {
    let broker = TestBroker::start(BrokerConfig {
        connect_timeout: Duration::from_millis(300),
        ..BrokerConfig::default()
    })
    .await;
    let addr = broker.addr();

    let mut http = send_raw(addr, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(closed_without_answer(&mut http).await);
    let mut huge = send_raw(addr, &[0x10, 0xFF, 0xFF, 0xFF, 0x7F]).await;
    assert!(closed_without_answer(&mut huge).await);
    let mut silent = send_raw(addr, &[]).await;
    assert!(closed_without_answer(&mut silent).await);
    let mut half = send_raw(addr, &[0x10, 0x20, 0x00]).await;
    assert!(closed_without_answer(&mut half).await);

    // None of that cost the broker its health.
    assert_eq!(
        handshake(addr, &common::connect_packet("fine")).await,
        Some(0)
    );

    let stats = broker.broker.stats();
    assert_eq!(stats.rejected_malformed, 1);
    assert_eq!(stats.rejected_too_large, 1);
    assert_eq!(stats.connect_timeouts, 2);
    broker.stop().await;
}

/// Keep-alive 0 is passed through on purpose: rumqttd refuses it (closing without CONNACK)
/// before it registers the client anywhere, so repeating it does no harm.
#[tokio::test]
async fn zero_keep_alive_is_refused_by_rumqttd_without_harm() {
    let broker = TestBroker::start(BrokerConfig::default()).await;
    let addr = broker.addr();
    for _ in 0..2 {
        let mut stream = send_raw(addr, &common::connect_with_keep_alive("forever", 0)).await;
        assert!(closed_without_answer(&mut stream).await);
    }
    assert_eq!(
        handshake(addr, &common::connect_packet("forever")).await,
        Some(0)
    );
    assert_eq!(broker.broker.stats().relayed, 3);
    broker.stop().await;
}
