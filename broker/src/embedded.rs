//! The embedded rumqttd: its configuration, its thread, and the wait until it answers.
//!
//! rumqttd 0.20's `Broker::start()` blocks forever and owns its router and listener threads,
//! so it gets a `std::thread` of its own and cannot be stopped: it ends with the process.
//! It listens only on 127.0.0.1, on a port picked by binding port 0 and releasing it; the
//! guard is the only client that ever reaches it. Its only listener speaks MQTT 3.1.1 (v4),
//! which also keeps out the v5-properties-to-v4-subscriber panic.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use rumqttd::{ConnectionSettings, RouterConfig, ServerSettings};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, sleep, timeout};
use tokio_util::sync::CancellationToken;
use tracing::{debug, error};

use crate::config::BrokerConfig;
use crate::error::BrokerError;

/// How long `start` waits for rumqttd to answer its first CONNECT.
pub(crate) const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// Size of one in-memory commit-log segment of a topic filter. rumqttd keeps up to
/// [`SEGMENT_COUNT`] of them per filter (memory only, oldest dropped first): 4 MiB × 4 bounds
/// each busy filter to ~16 MiB, which fits a Pi, while rumqttd's example (100 MiB × 10)
/// would not. End-to-end acks cover a subscriber that falls further behind.
const SEGMENT_BYTES: usize = 4 * 1024 * 1024;
/// Segments kept per topic filter; see [`SEGMENT_BYTES`].
const SEGMENT_COUNT: usize = 4;
/// Packets the router hands one connection per turn (rumqttd's example value).
const OUTGOING_PACKET_COUNT: u64 = 200;
/// How long rumqttd waits for CONNECT on a new connection. The guard sends it at once (it
/// already read it), so this only matters if the guard itself stalls. rumqttd takes a u16.
const RUMQTTD_CONNECT_TIMEOUT_MS: u16 = 5_000;
/// Client id of the startup probe; never seen by real clients (the public listener is not
/// accepting yet when the probe runs).
const PROBE_CLIENT_ID: &str = "sitewatch-broker-startup-probe";

/// A running rumqttd.
pub(crate) struct Rumqttd {
    /// Where rumqttd listens (always 127.0.0.1).
    pub(crate) addr: SocketAddr,
    /// Cancelled when rumqttd's thread ends, which only happens if its listener died.
    pub(crate) stopped: CancellationToken,
}

/// rumqttd's router must never refuse a connection the guard admitted: when it does, a
/// second attempt with the same client id poisons its listener. Connections the guard has
/// let go can still be winding down inside rumqttd, hence the margin.
pub(crate) fn rumqttd_max_connections(guard_max: usize) -> usize {
    guard_max.saturating_add(guard_max / 10).saturating_add(16)
}

/// rumqttd's configuration for one v4 listener on `addr`, with no console, metrics,
/// Prometheus exporter, bridge or cluster (each would open ports or threads of its own).
pub(crate) fn rumqttd_config(config: &BrokerConfig, addr: SocketAddr) -> rumqttd::Config {
    let server = ServerSettings {
        name: "sitewatch-v4".to_owned(),
        listen: addr,
        tls: None,
        // rumqttd sleeps this long after every accept; the guard already paces clients.
        next_connection_delay_ms: 0,
        connections: ConnectionSettings {
            connection_timeout_ms: RUMQTTD_CONNECT_TIMEOUT_MS,
            max_payload_size: config.max_payload_bytes,
            max_inflight_count: config.max_inflight,
            auth: None,
            external_auth: None,
            // Publishes to topics nobody subscribes to yet get a log of their own instead of
            // being refused (which would disconnect the publisher).
            dynamic_filters: true,
        },
    };
    rumqttd::Config {
        id: 0,
        router: RouterConfig {
            max_connections: rumqttd_max_connections(config.max_connections),
            max_outgoing_packet_count: OUTGOING_PACKET_COUNT,
            max_segment_size: SEGMENT_BYTES,
            max_segment_count: SEGMENT_COUNT,
            ..RouterConfig::default()
        },
        v4: Some(HashMap::from([("1".to_owned(), server)])),
        ..rumqttd::Config::default()
    }
}

/// Picks a port on 127.0.0.1 that is free right now by binding port 0 and releasing it.
fn reserve_loopback_port() -> Result<SocketAddr, BrokerError> {
    let listener =
        std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(BrokerError::InternalPort)?;
    listener.local_addr().map_err(BrokerError::InternalPort)
}

/// Starts rumqttd on its own thread and returns once it has answered a CONNECT.
pub(crate) async fn spawn(config: &BrokerConfig) -> Result<Rumqttd, BrokerError> {
    let addr = reserve_loopback_port()?;
    let rumqttd_config = rumqttd_config(config, addr);
    let stopped = CancellationToken::new();
    let on_exit = stopped.clone().drop_guard();
    std::thread::Builder::new()
        .name("rumqttd".to_owned())
        .spawn(move || {
            // Cancels `stopped` however this thread ends, panics included.
            let _on_exit = on_exit;
            match rumqttd::Broker::new(rumqttd_config).start() {
                Ok(()) => error!(%addr, "embedded rumqttd stopped: its listener thread ended"),
                Err(err) => error!(%addr, cause = %err, "embedded rumqttd failed"),
            }
        })
        .map_err(BrokerError::Spawn)?;
    wait_ready(addr, &stopped).await?;
    debug!(%addr, "embedded rumqttd ready");
    Ok(Rumqttd { addr, stopped })
}

/// Probes rumqttd until it answers a CONNECT, its thread ends, or [`READY_TIMEOUT`] passes.
async fn wait_ready(addr: SocketAddr, stopped: &CancellationToken) -> Result<(), BrokerError> {
    let start = Instant::now();
    loop {
        if stopped.is_cancelled() {
            return Err(BrokerError::RumqttdStopped { addr });
        }
        let last_error = match timeout(Duration::from_millis(500), probe(addr)).await {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(err)) => err.to_string(),
            Err(_) => "no CONNACK within 500 ms".to_owned(),
        };
        if start.elapsed() >= READY_TIMEOUT {
            return Err(BrokerError::RumqttdNotReady {
                addr,
                waited: start.elapsed(),
                last_error,
            });
        }
        sleep(Duration::from_millis(20)).await;
    }
}

/// One MQTT handshake with rumqttd: proves it listens, that its router answers, and that
/// what answers on `addr` is an MQTT broker. Closing without DISCONNECT afterwards is what
/// rumqttd logs most quietly (at info).
async fn probe(addr: SocketAddr) -> std::io::Result<()> {
    let mut stream = TcpStream::connect(addr).await?;
    stream.write_all(&probe_connect()).await?;
    let mut connack = [0u8; 4];
    stream.read_exact(&mut connack).await?;
    if connack[0] != 0x20 || connack[1] != 0x02 || connack[3] != 0x00 {
        return Err(std::io::Error::other(format!(
            "unexpected answer {connack:02x?} to CONNECT"
        )));
    }
    Ok(())
}

/// CONNECT for [`PROBE_CLIENT_ID`]: MQTT 3.1.1, clean session, keep-alive 10 s.
fn probe_connect() -> Vec<u8> {
    let id = PROBE_CLIENT_ID.as_bytes();
    let mut packet = vec![0x10, (10 + 2 + id.len()) as u8];
    packet.extend_from_slice(&[0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0x02, 0x00, 0x0A]);
    packet.extend_from_slice(&(id.len() as u16).to_be_bytes());
    packet.extend_from_slice(id);
    packet
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connect::{MAX_CONNECT_PACKET_BYTES, parse_connect};

    #[test]
    fn probe_connect_is_a_valid_connect() {
        let bytes = probe_connect();
        let connect = parse_connect(&bytes, MAX_CONNECT_PACKET_BYTES)
            .unwrap()
            .unwrap();
        assert_eq!(connect.client_id, PROBE_CLIENT_ID.as_bytes());
        assert_eq!(connect.packet_len, bytes.len());
    }

    #[test]
    fn rumqttd_limit_is_above_the_guards() {
        for max in [1, 2, 100, 10_000, crate::config::MAX_CONNECTIONS_LIMIT] {
            assert!(rumqttd_max_connections(max) > max);
        }
        let config = rumqttd_config(&BrokerConfig::default(), "127.0.0.1:1".parse().unwrap());
        assert_eq!(config.router.max_connections, 11_016);
        let v4 = config.v4.expect("one v4 listener");
        assert_eq!(v4.len(), 1);
        assert!(config.v5.is_none() && config.ws.is_none() && config.console.is_none());
    }

    /// Without the guard the hazard is real: the same bad client id connecting twice to a
    /// bare rumqttd 0.20 poisons its listener, and a well-behaved client is refused after.
    #[tokio::test]
    async fn bare_rumqttd_is_poisoned_by_a_repeated_bad_client_id() {
        let config = BrokerConfig::default();
        let rumqttd = spawn(&config).await.expect("rumqttd starts");
        let bad = raw_connect(b"a/b");
        for attempt in 0..2 {
            let answer = handshake(rumqttd.addr, &bad).await;
            assert_eq!(answer, None, "attempt {attempt}: rumqttd never answers a/b");
        }
        let good = raw_connect(b"good-client");
        assert_eq!(
            handshake(rumqttd.addr, &good).await,
            None,
            "rumqttd 0.20 now refuses everyone; if this fails, rumqttd was fixed and the \
             client-id guard may be revisited"
        );
    }

    /// Why logins are checked in the guard: rumqttd's own authentication (here its static
    /// user table; the async callback takes the same path, `link/remote.rs::handle_auth`)
    /// refuses a wrong password without any CONNACK, so a client cannot tell it from a
    /// network fault. The refusal comes before the will-handler registration, so repeating
    /// it does not poison the listener.
    #[tokio::test]
    async fn bare_rumqttd_refuses_a_bad_password_without_connack() {
        let addr = reserve_loopback_port().expect("free port");
        let mut config = rumqttd_config(&BrokerConfig::default(), addr);
        for server in config.v4.iter_mut().flat_map(|v4| v4.values_mut()) {
            server.connections.auth =
                Some(HashMap::from([("user".to_owned(), "right".to_owned())]));
        }
        std::thread::spawn(move || {
            let _ = rumqttd::Broker::new(config).start();
        });
        let login = |password: &str| {
            let mut connect = raw_connect(b"pi");
            // User name and password flags, then both fields; fix the remaining length.
            connect[9] |= 0xC0;
            for field in ["user", password] {
                connect.extend_from_slice(&(field.len() as u16).to_be_bytes());
                connect.extend_from_slice(field.as_bytes());
            }
            connect[1] = (connect.len() - 2) as u8;
            connect
        };
        let started = Instant::now();
        while TcpStream::connect(addr).await.is_err() {
            assert!(started.elapsed() < READY_TIMEOUT, "rumqttd does not listen");
            sleep(Duration::from_millis(20)).await;
        }
        for attempt in 0..2 {
            assert_eq!(
                handshake(addr, &login("wrong")).await,
                None,
                "attempt {attempt}: no CONNACK 4, just a closed socket"
            );
        }
        assert_eq!(
            handshake(addr, &login("right")).await,
            Some([0x20, 0x02, 0x00, 0x00]),
            "an auth refusal does not poison the listener"
        );
    }

    fn raw_connect(id: &[u8]) -> Vec<u8> {
        let mut packet = vec![0x10, (12 + id.len()) as u8];
        packet.extend_from_slice(&[0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0x02, 0x00, 0x0A]);
        packet.extend_from_slice(&(id.len() as u16).to_be_bytes());
        packet.extend_from_slice(id);
        packet
    }

    /// Sends `connect` and returns the CONNACK, or `None` if rumqttd closes the connection.
    async fn handshake(addr: SocketAddr, connect: &[u8]) -> Option<[u8; 4]> {
        let mut stream = TcpStream::connect(addr).await.expect("rumqttd accepts TCP");
        stream.write_all(connect).await.expect("write CONNECT");
        let mut connack = [0u8; 4];
        match timeout(Duration::from_secs(5), stream.read_exact(&mut connack)).await {
            Ok(Ok(_)) => Some(connack),
            Ok(Err(_)) => None,
            Err(_) => panic!("rumqttd neither answered nor closed within 5 s"),
        }
    }
}
