//! Helpers shared by the integration tests: a broker on 127.0.0.1:0, raw MQTT handshakes,
//! and rumqttc clients whose events arrive on a channel. Every wait is bounded.

#![allow(dead_code)] // each test binary uses a different subset

mod users;

#[allow(unused_imports)] // not every test binary logs in
pub use users::*;

use std::net::SocketAddr;
use std::time::Duration;

use std::sync::Arc;

use bytes::BytesMut;
use rumqttc::{AsyncClient, ConnectReturnCode, Event, LastWill, MqttOptions, Packet, Publish, QoS};
use sitewatch_broker::{BrokerConfig, RunningBroker, StartOptions};
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
        Self::start_with(config, StartOptions::default()).await
    }

    /// Starts with a plain listener on 127.0.0.1:0 (and whatever else `config` asks for).
    pub async fn start_with(config: BrokerConfig, options: StartOptions) -> TestBroker {
        let shutdown = CancellationToken::new();
        let config = BrokerConfig {
            listen: Some("127.0.0.1:0".parse().unwrap()),
            ..config
        };
        let broker = timeout(
            Duration::from_secs(15),
            sitewatch_broker::start_with(config, options, shutdown.clone()),
        )
        .await
        .expect("broker starts in time")
        .expect("broker starts");
        TestBroker { broker, shutdown }
    }

    pub fn addr(&self) -> SocketAddr {
        self.broker.local_addr().expect("plain listener")
    }

    pub fn tls_addr(&self) -> SocketAddr {
        self.broker.tls_local_addr().expect("TLS listener")
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

/// A v3.1.1 CONNECT with optional credentials and an optional retained QoS 1 will.
pub fn login_packet(id: &str, login: Option<(&str, &str)>, will: Option<(&str, &str)>) -> Vec<u8> {
    let mut connect = rumqttc::Connect::new(id);
    if let Some((user, password)) = login {
        connect.set_login(user, password);
    }
    connect.last_will =
        will.map(|(topic, payload)| LastWill::new(topic, payload, QoS::AtLeastOnce, true));
    encode(&connect)
}

fn encode(connect: &rumqttc::Connect) -> Vec<u8> {
    let mut buf = BytesMut::new();
    connect.write(&mut buf).expect("encode CONNECT");
    buf.to_vec()
}

/// A PUBLISH (QoS 0 when `qos` is 0, else QoS 1 with packet id 1).
pub fn publish_packet(topic: &str, payload: &[u8], qos: u8) -> Vec<u8> {
    let qos = if qos == 0 {
        QoS::AtMostOnce
    } else {
        QoS::AtLeastOnce
    };
    let mut publish = rumqttc::Publish::new(topic, qos, payload.to_vec());
    if qos == QoS::AtLeastOnce {
        publish.pkid = 1;
    }
    let mut buf = BytesMut::new();
    publish.write(&mut buf).expect("encode PUBLISH");
    buf.to_vec()
}

/// A SUBSCRIBE to one filter at QoS 1.
pub fn subscribe_packet(filter: &str) -> Vec<u8> {
    let mut subscribe = rumqttc::Subscribe::new(filter, QoS::AtLeastOnce);
    subscribe.pkid = 1;
    let mut buf = BytesMut::new();
    subscribe.write(&mut buf).expect("encode SUBSCRIBE");
    buf.to_vec()
}

/// Connects with `connect`, checks the CONNACK accepts, and returns the open session.
pub async fn raw_session(addr: SocketAddr, connect: &[u8]) -> TcpStream {
    let mut stream = send_raw(addr, connect).await;
    assert_eq!(
        read_connack(&mut stream).await,
        Some([0x20, 0x02, 0x00, 0x00]),
        "session refused"
    );
    stream
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

/// rumqttc options for `id` at `addr`, keep-alive 5 s.
pub fn options(addr: SocketAddr, id: &str) -> MqttOptions {
    let mut options = MqttOptions::new(id, addr.ip().to_string(), addr.port());
    options.set_keep_alive(Duration::from_secs(5));
    options
}

/// A rustls client configuration (ring) trusting `ca`, with an optional client certificate.
pub fn tls_client_config(
    ca: &std::path::Path,
    client: Option<(&std::path::Path, &std::path::Path)>,
) -> Arc<rustls::ClientConfig> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).expect("read CA") {
        roots.add(cert.expect("CA PEM")).expect("add CA");
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("protocol versions")
    .with_root_certificates(roots);
    let config = match client {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => builder
            .with_client_auth_cert(
                CertificateDer::pem_file_iter(cert)
                    .expect("read client cert")
                    .map(|c| c.expect("client cert PEM"))
                    .collect(),
                PrivateKeyDer::from_pem_file(key).expect("client key"),
            )
            .expect("client auth"),
    };
    Arc::new(config)
}

/// Options for a TLS connection to `addr`; the server certificate is checked against the IP
/// of `addr` (the test certificates name 127.0.0.1).
pub fn tls_options(addr: SocketAddr, id: &str, config: Arc<rustls::ClientConfig>) -> MqttOptions {
    let mut options = options(addr, id);
    options.set_transport(rumqttc::Transport::tls_with_config(
        rumqttc::TlsConfiguration::Rustls(config),
    ));
    options
}

impl Client {
    /// Connects as `id` and waits for a successful CONNACK.
    pub async fn connect(addr: SocketAddr, id: &str) -> Client {
        Self::connect_with(options(addr, id)).await
    }

    /// Connects with `options` and waits for a successful CONNACK; panics otherwise.
    pub async fn connect_with(options: MqttOptions) -> Client {
        let id = options.client_id();
        match Self::try_connect(options).await {
            Ok(client) => client,
            Err(err) => panic!("{id} cannot connect: {err}"),
        }
    }

    /// Connects with `options`; the error is the refusal or connection failure.
    pub async fn try_connect(options: MqttOptions) -> Result<Client, String> {
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
        let deadline = tokio::time::Instant::now() + STEP;
        loop {
            let event = tokio::time::timeout_at(deadline, this.events.recv())
                .await
                .map_err(|_| "no CONNACK in time".to_owned())?
                .ok_or_else(|| "event loop ended".to_owned())?;
            match event {
                Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                    if ack.code == ConnectReturnCode::Success {
                        return Ok(this);
                    }
                    this.task.abort();
                    return Err(format!("refused: {:?}", ack.code));
                }
                Ok(_) => {}
                Err(err) => return Err(err),
            }
        }
    }

    /// Publishes at QoS 0 without waiting for anything.
    pub async fn publish_qos0(&mut self, topic: &str, payload: &str) {
        self.client
            .publish(topic, QoS::AtMostOnce, false, payload.as_bytes().to_vec())
            .await
            .expect("queue PUBLISH");
    }

    /// Waits until the connection fails (the server closed it); panics if it does not
    /// within [`STEP`].
    pub async fn wait_closed(&mut self) -> String {
        let deadline = tokio::time::Instant::now() + STEP;
        loop {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Err(_) => panic!("the server did not close the connection within {STEP:?}"),
                Ok(None) => return "event loop ended".to_owned(),
                Ok(Some(Err(err))) => return err,
                Ok(Some(Ok(_))) => {}
            }
        }
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

impl Client {
    /// Every PUBLISH that arrives within `window`.
    pub async fn publishes_within(&mut self, window: Duration) -> Vec<Publish> {
        let mut out = Vec::new();
        let deadline = tokio::time::Instant::now() + window;
        while let Ok(Some(event)) = tokio::time::timeout_at(deadline, self.events.recv()).await {
            match event {
                Ok(Event::Incoming(Packet::Publish(p))) => out.push(p),
                Ok(_) => {}
                Err(err) => panic!("MQTT connection failed: {err}"),
            }
        }
        out
    }
}

/// The path of a program the test needs, or a panic naming the Debian package to install.
pub fn require_program(name: &str, package: &str) -> std::path::PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/local/sbin"].map(std::path::PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "{name} not found: this test needs the Debian package {package} \
                 (scripts/install-deps.sh --test installs it)"
            )
        })
}
