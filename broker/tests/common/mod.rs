//! Helpers shared by the integration tests: a broker on 127.0.0.1:0, raw MQTT handshakes,
//! and rumqttc clients whose events arrive on a channel. Every wait is bounded.

#![allow(dead_code)] // each test binary uses a different subset

use std::net::SocketAddr;
use std::time::Duration;

use bytes::BytesMut;
use rumqttc::{AsyncClient, ConnectReturnCode, Event, LastWill, MqttOptions, Packet, Publish, QoS};
use sitewatch_broker::{BrokerConfig, RunningBroker};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;

/// Longest any single step of a test may take.
pub const STEP: Duration = Duration::from_secs(5);

/// A broker on 127.0.0.1:0 and the token that stops it.
pub struct TestBroker {
    pub broker: RunningBroker,
    pub shutdown: CancellationToken,
}

impl TestBroker {
    pub async fn start(config: BrokerConfig) -> TestBroker {
        let shutdown = CancellationToken::new();
        let config = BrokerConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            ..config
        };
        let broker = timeout(
            Duration::from_secs(15),
            sitewatch_broker::start(config, shutdown.clone()),
        )
        .await
        .expect("broker starts in time")
        .expect("broker starts");
        TestBroker { broker, shutdown }
    }

    pub fn addr(&self) -> SocketAddr {
        self.broker.local_addr()
    }

    /// Cancels the token and checks the guard stops promptly.
    pub async fn stop(self) {
        self.shutdown.cancel();
        timeout(STEP, self.broker.join())
            .await
            .expect("broker stops in time");
    }
}

/// A v3.1.1 CONNECT encoded by rumqttc's own encoder.
pub fn connect_packet(id: &str) -> Vec<u8> {
    encode(&rumqttc::Connect::new(id))
}

/// A v3.1.1 CONNECT asking for a persistent session (clean session off).
pub fn persistent_connect_packet(id: &str) -> Vec<u8> {
    let mut connect = rumqttc::Connect::new(id);
    connect.clean_session = false;
    encode(&connect)
}

/// A CONNECT asking for MQTT 5 (level 5).
pub fn v5_connect_packet(id: &str) -> Vec<u8> {
    let mut connect = rumqttc::Connect::new(id);
    connect.protocol = rumqttc::Protocol::V5;
    encode(&connect)
}

/// A v3.1.1 CONNECT with the given keep-alive in seconds.
pub fn connect_with_keep_alive(id: &str, keep_alive: u16) -> Vec<u8> {
    let mut connect = rumqttc::Connect::new(id);
    connect.keep_alive = keep_alive;
    encode(&connect)
}

/// A CONNECT with a retained QoS 1 will.
pub fn connect_with_will(id: &str, keep_alive: u16, topic: &str, payload: &str) -> Vec<u8> {
    let mut connect = rumqttc::Connect::new(id);
    connect.keep_alive = keep_alive;
    connect.last_will = Some(LastWill::new(topic, payload, QoS::AtLeastOnce, true));
    encode(&connect)
}

fn encode(connect: &rumqttc::Connect) -> Vec<u8> {
    let mut buf = BytesMut::new();
    connect.write(&mut buf).expect("encode CONNECT");
    buf.to_vec()
}

/// Opens a TCP connection and sends `packet`.
pub async fn send_raw(addr: SocketAddr, packet: &[u8]) -> TcpStream {
    let mut stream = timeout(STEP, TcpStream::connect(addr))
        .await
        .expect("TCP connect in time")
        .expect("TCP connect");
    stream.write_all(packet).await.expect("write");
    stream
}

/// Reads a 4-byte CONNACK, or `None` if the server closes the connection first.
pub async fn read_connack(stream: &mut TcpStream) -> Option<[u8; 4]> {
    let mut connack = [0u8; 4];
    match timeout(STEP, stream.read_exact(&mut connack)).await {
        Ok(Ok(_)) => Some(connack),
        Ok(Err(_)) => None,
        Err(_) => panic!("no CONNACK and no close within {STEP:?}"),
    }
}

/// Sends `packet` on a fresh connection and returns the CONNACK return code.
pub async fn handshake(addr: SocketAddr, packet: &[u8]) -> Option<u8> {
    let mut stream = send_raw(addr, packet).await;
    let connack = read_connack(&mut stream).await?;
    assert_eq!(
        &connack[..3],
        &[0x20, 0x02, 0x00],
        "not a CONNACK: {connack:02x?}"
    );
    Some(connack[3])
}

/// Whether the server closes `stream` (EOF or reset) within [`STEP`] without sending anything.
pub async fn closed_without_answer(stream: &mut TcpStream) -> bool {
    let mut buf = [0u8; 16];
    match timeout(STEP, stream.read(&mut buf)).await {
        Ok(Ok(0)) | Ok(Err(_)) => true,
        Ok(Ok(_)) => false,
        Err(_) => panic!("server neither answered nor closed within {STEP:?}"),
    }
}

/// A rumqttc v4 client whose event loop runs in a task and reports on a channel.
pub struct Client {
    pub client: AsyncClient,
    events: mpsc::UnboundedReceiver<Result<Event, String>>,
    task: JoinHandle<()>,
}

impl Client {
    /// Connects as `id` and waits for a successful CONNACK.
    pub async fn connect(addr: SocketAddr, id: &str) -> Client {
        let mut options = MqttOptions::new(id, addr.ip().to_string(), addr.port());
        options.set_keep_alive(Duration::from_secs(5));
        let (client, mut eventloop) = AsyncClient::new(options, 16);
        let (tx, events) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            loop {
                let event = eventloop.poll().await.map_err(|e| e.to_string());
                let failed = event.is_err();
                if tx.send(event).is_err() || failed {
                    break; // no reconnect loops in tests
                }
            }
        });
        let mut this = Client {
            client,
            events,
            task,
        };
        this.wait_for(|event| match event {
            Event::Incoming(Packet::ConnAck(ack)) => {
                assert_eq!(ack.code, ConnectReturnCode::Success, "{id} refused");
                true
            }
            _ => false,
        })
        .await;
        this
    }

    /// Subscribes to `filter` at QoS 1 and waits for the SUBACK.
    pub async fn subscribe(&mut self, filter: &str) {
        self.client
            .subscribe(filter, QoS::AtLeastOnce)
            .await
            .expect("queue SUBSCRIBE");
        self.wait_for(|event| matches!(event, Event::Incoming(Packet::SubAck(_))))
            .await;
    }

    /// Publishes at QoS 1 and waits for the PUBACK.
    pub async fn publish(&mut self, topic: &str, payload: &str, retain: bool) {
        self.client
            .publish(topic, QoS::AtLeastOnce, retain, payload.as_bytes().to_vec())
            .await
            .expect("queue PUBLISH");
        self.wait_for(|event| matches!(event, Event::Incoming(Packet::PubAck(_))))
            .await;
    }

    /// Waits for the next incoming PUBLISH.
    pub async fn next_publish(&mut self) -> Publish {
        let mut found = None;
        self.wait_for(|event| match event {
            Event::Incoming(Packet::Publish(p)) => {
                found = Some(p.clone());
                true
            }
            _ => false,
        })
        .await;
        found.expect("publish")
    }

    /// Waits (at most [`STEP`]) for an event matching `pred`; panics on a connection error.
    async fn wait_for(&mut self, mut pred: impl FnMut(&Event) -> bool) {
        let deadline = tokio::time::Instant::now() + STEP;
        loop {
            let event = tokio::time::timeout_at(deadline, self.events.recv())
                .await
                .expect("expected MQTT event in time")
                .expect("event loop running");
            match event {
                Ok(event) if pred(&event) => return,
                Ok(_) => {}
                Err(err) => panic!("MQTT connection failed: {err}"),
            }
        }
    }

    /// Drops the event loop, and with it the TCP connection, without DISCONNECT.
    pub async fn kill(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}
