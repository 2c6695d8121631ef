//! Copies an admitted connection both ways between its client and rumqttd, checking
//! everything the client sends on the way (`inspect.rs`).
//!
//! Client → rumqttd: bytes are read into a buffer and forwarded as the inspector allows;
//! a publish over the rate waits (nothing more is read meanwhile, so TCP slows the client
//! down); a broken rule ends the session. rumqttd → client: plain copy.

use std::time::Duration;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{sleep, timeout};
use tracing::info;

use crate::inspect::{Inspector, Step, Violation};
use crate::stats::Counters;

/// After the client stops sending (or is cut off), how long rumqttd gets to finish the
/// session (publish the will, close) before the guard drops both sockets.
const UPSTREAM_DRAIN_TIMEOUT: Duration = Duration::from_secs(5);
/// Bytes read from a client at a time.
const READ_CHUNK: usize = 16 * 1024;

/// Relays until the session is over; returns the rule the client broke, if that ended it,
/// or [`Violation::Withdrawn`] if `withdrawn` completed first (the application withdrew the
/// login: the client is cut off like one that broke a rule, and rumqttd publishes its will).
///
/// When rumqttd closes (keep-alive expired, session taken over, protocol error) the client
/// is closed too, even if it is a dead peer that will never send again: otherwise a Pi that
/// lost power would hold its connection slot forever. When the client stops sending or
/// breaks a rule, rumqttd is told (half-close) and gets [`UPSTREAM_DRAIN_TIMEOUT`] to
/// finish: it publishes the will and closes, and only then is the slot released, so
/// rumqttd's own count never runs ahead of the guard's.
pub(crate) async fn relay<S>(
    client: S,
    upstream: TcpStream,
    inspector: Inspector,
    pending: Vec<u8>,
    (counters, withdrawn): (&Counters, impl Future<Output = ()>),
) -> Option<Violation>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (mut client_rx, mut client_tx) = tokio::io::split(client);
    let (mut upstream_rx, mut upstream_tx) = upstream.into_split();
    let to_upstream = async {
        let end = tokio::select! {
            end = pump(&mut client_rx, &mut upstream_tx, inspector, pending, counters) => end,
            () = withdrawn => Some(Violation::Withdrawn),
        };
        let _ = upstream_tx.shutdown().await;
        end
    };
    let to_client = async {
        let _ = tokio::io::copy(&mut upstream_rx, &mut client_tx).await;
        let _ = client_tx.shutdown().await;
    };
    tokio::pin!(to_upstream, to_client);
    tokio::select! {
        () = &mut to_client => None,
        end = &mut to_upstream => {
            let _ = timeout(UPSTREAM_DRAIN_TIMEOUT, &mut to_client).await;
            end
        }
    }
}

/// What the pump does after forwarding what it could.
enum Next {
    Read,
    Wait(Duration),
    Stop(Violation),
}

/// Client → rumqttd, through the inspector. Ends when either side closes or errs (`None`),
/// or when the client breaks a rule.
async fn pump<R, W>(
    rx: &mut R,
    tx: &mut W,
    mut inspector: Inspector,
    pending: Vec<u8>,
    counters: &Counters,
) -> Option<Violation>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = BytesMut::with_capacity(READ_CHUNK.max(pending.len()));
    buf.extend_from_slice(&pending);
    drop(pending);
    // Whether the packet at the head of `buf` was already counted as throttled.
    let mut throttled = false;
    let mut told = false;
    loop {
        let now = std::time::Instant::now();
        let mut ready = 0;
        let next = loop {
            match inspector.step(&buf[ready..], now) {
                Step::Forward(n) => {
                    ready += n;
                    throttled = false;
                }
                Step::NeedMore => break Next::Read,
                Step::Throttle(wait) => break Next::Wait(wait),
                Step::Stop(violation) => break Next::Stop(violation),
            }
        };
        if ready > 0 {
            if tx.write_all(&buf[..ready]).await.is_err() {
                return None;
            }
            buf.advance(ready);
        }
        match next {
            Next::Read => {
                if buf.capacity() - buf.len() < READ_CHUNK / 4 {
                    buf.reserve(READ_CHUNK);
                }
                match rx.read_buf(&mut buf).await {
                    Ok(0) | Err(_) => return None,
                    Ok(_) => {}
                }
            }
            Next::Wait(wait) => {
                if !throttled {
                    counters.throttled();
                    throttled = true;
                }
                if !told {
                    info!("client publishes faster than its rate allows: slowing it down");
                    told = true;
                }
                sleep(wait).await;
            }
            Next::Stop(violation) => return Some(violation),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::config::{OverRate, PublishRate};

    fn publish(topic: &str, payload_len: usize) -> Vec<u8> {
        let mut body = (topic.len() as u16).to_be_bytes().to_vec();
        body.extend_from_slice(topic.as_bytes());
        body.resize(body.len() + payload_len, b'x');
        let mut out = vec![0x30];
        crate::connect::write_remaining_length(&mut out, body.len());
        out.extend_from_slice(&body);
        out
    }

    #[tokio::test]
    async fn large_payloads_stream_through_in_pieces() {
        let packet = publish("t", 300_000);
        let (mut client, mut guard_side) = tokio::io::duplex(4096);
        let (mut upstream_side, mut upstream) = tokio::io::duplex(4096);
        let inspector = Inspector::new(1 << 20, None, None, Instant::now());
        let counters = Counters::default();
        let expected = packet.clone();
        let writer = tokio::spawn(async move {
            client.write_all(&packet).await.unwrap();
            client.shutdown().await.unwrap();
        });
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            upstream.read_to_end(&mut got).await.unwrap();
            got
        });
        let end = pump(
            &mut guard_side,
            &mut upstream_side,
            inspector,
            Vec::new(),
            &counters,
        )
        .await;
        drop(upstream_side);
        writer.await.unwrap();
        assert_eq!(end, None);
        assert_eq!(reader.await.unwrap(), expected);
    }

    #[tokio::test]
    async fn a_throttled_client_is_slowed_to_its_rate() {
        let mut input = Vec::new();
        for _ in 0..30 {
            input.extend_from_slice(&publish("t", 10));
        }
        let rate = PublishRate {
            per_second: 100,
            burst: 10,
            over_rate: OverRate::Throttle,
        };
        let inspector = Inspector::new(1 << 20, None, Some(rate), Instant::now());
        let counters = Counters::default();
        let mut out = Vec::new();
        let started = Instant::now();
        let end = pump(&mut &input[..], &mut out, inspector, Vec::new(), &counters).await;
        // 10 at once, then 20 at 100/s: about 200 ms.
        let took = started.elapsed();
        assert_eq!(end, None);
        assert_eq!(out, input);
        assert!(took >= Duration::from_millis(180), "{took:?}");
        assert_eq!(counters.snapshot().publishes_throttled, 20);
    }
}
