//! Self-probe of the embedded broker: every few seconds the hub opens a fresh MQTT
//! connection to its own public listener and expects a CONNACK. Any CONNACK means the broker
//! is alive — even a refusal such as "server unavailable" when its connection limit is
//! reached, which a restart would not cure. No answer in time (rumqttd stuck or poisoned),
//! a refused or closed connection (the listener is gone) is a failure: `/healthz` turns 503
//! and, after [`FAILURES_BEFORE_EXIT`] probes in a row failed, the hub stops with an error so
//! systemd (`Restart=on-failure`) starts it afresh.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// Time between probes.
pub const EVERY: Duration = Duration::from_secs(5);
/// Longest a probe may take (connect + CONNACK).
pub const TIMEOUT: Duration = Duration::from_secs(3);
/// Consecutive failures after which the hub exits.
pub const FAILURES_BEFORE_EXIT: u32 = 3;

/// A user name and password for the probe's CONNECT.
pub type Login = Option<(String, String)>;

/// An MQTT 3.1.1 CONNECT with a clean session, `client_id` and, if given, a user name and
/// password.
pub fn connect_packet(client_id: &str, login: Option<(&str, &str)>) -> Vec<u8> {
    let flags = if login.is_some() { 0xC2 } else { 0x02 };
    let mut body = vec![0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, flags, 0x00, 0x0A];
    let mut field = |bytes: &[u8]| {
        body.extend_from_slice(&(bytes.len().min(u16::MAX as usize) as u16).to_be_bytes());
        body.extend_from_slice(&bytes[..bytes.len().min(u16::MAX as usize)]);
    };
    field(client_id.as_bytes());
    if let Some((user, password)) = login {
        field(user.as_bytes());
        field(password.as_bytes());
    }
    let mut packet = vec![0x10];
    let mut len = body.len();
    loop {
        let mut byte = (len % 128) as u8;
        len /= 128;
        if len > 0 {
            byte |= 0x80;
        }
        packet.push(byte);
        if len == 0 {
            break;
        }
    }
    packet.extend_from_slice(&body);
    packet
}

/// One probe: Ok if the broker answered a CONNACK within `timeout`.
pub async fn probe_once(
    addr: SocketAddr,
    client_id: &str,
    login: Option<(&str, &str)>,
    timeout: Duration,
) -> Result<(), String> {
    let run = async {
        let mut s = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        s.write_all(&connect_packet(client_id, login))
            .await
            .map_err(|e| format!("send CONNECT: {e}"))?;
        let mut ack = [0u8; 4];
        s.read_exact(&mut ack)
            .await
            .map_err(|e| format!("no CONNACK: {e}"))?;
        if ack[0] != 0x20 || ack[1] != 0x02 {
            return Err(format!("not an MQTT broker answer: {ack:02x?}"));
        }
        // Closed without DISCONNECT: rumqttd handles a DISCONNECT and then the closed socket
        // as two disconnections and logs the second at ERROR ("no-connection id N is already
        // gone"), every 5 s in the operator's journal. A bare close is one, logged at info.
        Ok(())
    };
    tokio::time::timeout(timeout, run)
        .await
        .map_err(|_| format!("no CONNACK within {timeout:?}"))?
}

/// Probes until `stop`; `healthy` follows the result; `fatal` is cancelled after
/// [`FAILURES_BEFORE_EXIT`] failures in a row.
pub async fn run(
    addr: SocketAddr,
    client_id: String,
    login: Login,
    (every, timeout): (Duration, Duration),
    healthy: watch::Sender<bool>,
    fatal: CancellationToken,
    stop: CancellationToken,
) {
    let mut failures = 0u32;
    let mut every = tokio::time::interval(every);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = every.tick() => {}
        }
        let credentials = login.as_ref().map(|(u, p)| (u.as_str(), p.as_str()));
        match probe_once(addr, &client_id, credentials, timeout).await {
            Ok(()) => {
                if failures > 0 {
                    tracing::info!("the MQTT listener accepts connections again");
                }
                failures = 0;
                healthy.send_replace(true);
            }
            Err(why) => {
                failures += 1;
                healthy.send_replace(false);
                tracing::error!(
                    %addr, failures, cause = %why,
                    "self-probe: the MQTT listener does not accept connections"
                );
                if failures >= FAILURES_BEFORE_EXIT {
                    tracing::error!(
                        "the MQTT listener failed {failures} probes in a row; stopping so the \
                         service manager restarts the hub"
                    );
                    fatal.cancel();
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    /// A listener that accepts and answers `answer` to the first bytes (or nothing).
    async fn fake(answer: Option<[u8; 4]>) -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((mut s, _)) = l.accept().await {
                let mut buf = [0u8; 64];
                let _ = s.read(&mut buf).await;
                if let Some(a) = answer {
                    let _ = s.write_all(&a).await;
                }
                held.push(s);
            }
        });
        addr
    }

    const FAST: (Duration, Duration) = (Duration::from_millis(50), Duration::from_millis(200));

    #[tokio::test]
    async fn a_silent_listener_fails_three_times_then_stops_the_hub() {
        let addr = fake(None).await;
        let (tx, rx) = watch::channel(true);
        let fatal = CancellationToken::new();
        let stop = CancellationToken::new();
        let task = tokio::spawn(run(
            addr,
            "sw-hub.t".into(),
            None,
            FAST,
            tx,
            fatal.clone(),
            stop,
        ));
        tokio::time::timeout(Duration::from_secs(10), fatal.cancelled())
            .await
            .expect("fatal after three failed probes");
        assert!(!*rx.borrow());
        task.await.unwrap();
    }

    #[tokio::test]
    async fn a_full_broker_still_answers_and_is_alive() {
        let addr = fake(Some([0x20, 0x02, 0x00, 0x03])).await;
        assert_eq!(probe_once(addr, "sw-hub.t", None, FAST.1).await, Ok(()));
        let closed = {
            let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
            l.local_addr().unwrap()
        };
        assert!(
            probe_once(closed, "sw-hub.t", None, FAST.1).await.is_err(),
            "nobody listening"
        );
    }

    #[test]
    fn connect_packet_is_mqtt_311() {
        let p = super::connect_packet("sw-hub.probe", None);
        assert_eq!(&p[..2], &[0x10, 24]);
        assert_eq!(&p[2..9], b"\x00\x04MQTT\x04");
        assert_eq!(&p[p.len() - 12..], b"sw-hub.probe");
    }
}
