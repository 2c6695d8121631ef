//! The public listener: accepts MQTT clients, checks each CONNECT, and relays the admitted
//! ones to the embedded rumqttd.
//!
//! Every connection gets its own task, so one slow client never holds up the accept loop.
//! The task reads the CONNECT within `connect_timeout`, asks `admission::admit` for a
//! verdict, then either answers a refusing CONNACK and closes, or opens a connection to
//! rumqttd, replays the bytes it read and copies both ways until either side closes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{sleep, timeout};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, error, info, warn};

use crate::admission::{Admission, Rejection, admit};
use crate::connect::ConnectReturnCode;
use crate::stats::{Counters, RejectReason};

/// Connections being refused at once while the server is full. Beyond it new sockets are
/// closed without reading their CONNECT, so a flood cannot pile up tasks.
const MAX_PENDING_REFUSALS: usize = 256;
/// How long connecting to rumqttd may take before the client gets CONNACK 3.
const UPSTREAM_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// After the client stops sending, how long rumqttd gets to finish the session (publish the
/// will, close) before the guard drops both sockets.
const UPSTREAM_DRAIN_TIMEOUT: Duration = Duration::from_secs(5);
/// After a refusing CONNACK, how long the guard reads (and discards) what the client still
/// sends, so closing does not reset the connection before the client has read the CONNACK.
const LINGER_AFTER_REFUSAL: Duration = Duration::from_millis(500);
/// Pause after a failed accept (e.g. out of file descriptors) before trying again.
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(100);

/// Holds clients back until the application behind the broker is ready for them: the hub
/// opens it once its own client has subscribed, so messages agents send right after a hub
/// restart are not routed to nobody (rumqttd keeps nothing for absent subscribers).
#[derive(Debug, Clone)]
pub struct Gate {
    /// `true` once clients may pass.
    pub open: tokio::sync::watch::Receiver<bool>,
    /// Client ids starting with this pass at once (the application's own client).
    pub bypass_prefix: String,
    /// Longest a client is held; then it gets CONNACK 3 "server unavailable" and retries.
    pub max_wait: Duration,
}

impl Gate {
    /// Waits until the gate opens for `client_id`; false if it stayed closed.
    async fn pass(&self, client_id: &str) -> bool {
        if client_id.starts_with(&self.bypass_prefix) {
            return true;
        }
        let mut open = self.open.clone();
        matches!(
            timeout(self.max_wait, open.wait_for(|o| *o)).await,
            Ok(Ok(_))
        )
    }
}

/// What every connection task needs.
pub(crate) struct Guard {
    /// rumqttd's internal address.
    pub(crate) upstream: SocketAddr,
    /// How long a client may take to send its CONNECT.
    pub(crate) connect_timeout: Duration,
    /// One permit per allowed client connection (`max_connections`).
    pub(crate) slots: Arc<Semaphore>,
    /// Permits for connections being refused because the server is full.
    pub(crate) refusals: Arc<Semaphore>,
    /// The counters behind `RunningBroker::stats()`.
    pub(crate) counters: Arc<Counters>,
    pub(crate) gate: Option<Gate>,
}

impl Guard {
    pub(crate) fn new(
        upstream: SocketAddr,
        connect_timeout: Duration,
        max_connections: usize,
        counters: Arc<Counters>,
        gate: Option<Gate>,
    ) -> Self {
        Guard {
            upstream,
            connect_timeout,
            slots: Arc::new(Semaphore::new(max_connections)),
            refusals: Arc::new(Semaphore::new(MAX_PENDING_REFUSALS)),
            counters,
            gate,
        }
    }
}

/// Accepts connections until `shutdown` is cancelled or rumqttd stops, then closes
/// `connections` (already running tasks end on `shutdown` themselves).
pub(crate) async fn accept_loop(
    listener: TcpListener,
    guard: Arc<Guard>,
    connections: TaskTracker,
    shutdown: CancellationToken,
    rumqttd_stopped: CancellationToken,
) {
    loop {
        let (stream, peer) = tokio::select! {
            biased;
            () = shutdown.cancelled() => {
                info!("MQTT listener stopping");
                break;
            }
            () = rumqttd_stopped.cancelled() => {
                error!("embedded rumqttd stopped; no new MQTT connections are accepted — restart sitewatch-broker");
                break;
            }
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    error!(cause = %err, "failed to accept an MQTT connection");
                    sleep(ACCEPT_ERROR_BACKOFF).await;
                    continue;
                }
            },
        };
        let slot = guard.slots.clone().try_acquire_owned().ok();
        let refusal = match slot {
            Some(_) => None,
            None => match guard.refusals.clone().try_acquire_owned() {
                Ok(permit) => Some(permit),
                Err(_) => {
                    guard.counters.reject(RejectReason::ServerFull);
                    debug!(%peer, "server full and too many refusals pending: closing at once");
                    continue;
                }
            },
        };
        let guard = guard.clone();
        let shutdown = shutdown.clone();
        connections.spawn(async move {
            tokio::select! {
                () = shutdown.cancelled() => {}
                () = serve(stream, peer, &guard, slot) => {}
            }
            drop(refusal);
        });
    }
    connections.close();
}

/// Handles one client connection from its first byte to its close.
async fn serve(
    mut client: TcpStream,
    peer: SocketAddr,
    guard: &Guard,
    slot: Option<OwnedSemaphorePermit>,
) {
    let admission = match timeout(
        guard.connect_timeout,
        read_connect(&mut client, slot.is_some()),
    )
    .await
    {
        Ok(Ok(admission)) => admission,
        Ok(Err(err)) => {
            guard.counters.reject(RejectReason::ClosedBeforeConnect);
            debug!(%peer, cause = %err, "connection closed before a complete CONNECT");
            return;
        }
        Err(_) => {
            guard.counters.reject(RejectReason::ConnectTimeout);
            debug!(%peer, timeout = ?guard.connect_timeout, "no complete CONNECT in time: closing");
            return;
        }
    };
    let (bytes, client_id) = match admission {
        Admission::Forward { bytes, client_id } => (bytes, client_id),
        Admission::Reject(rejection) => {
            log_rejection(peer, &rejection);
            guard.counters.reject(rejection.reason);
            if let Some(code) = rejection.connack {
                refuse(client, code).await;
            }
            return;
        }
    };
    if let Some(gate) = &guard.gate
        && !gate.pass(&client_id).await
    {
        guard.counters.reject(RejectReason::UpstreamUnavailable);
        debug!(%peer, client_id, "not ready for clients yet: answering CONNACK 3");
        refuse(client, ConnectReturnCode::ServerUnavailable).await;
        return;
    }
    let upstream = match connect_upstream(guard.upstream, &bytes).await {
        Ok(upstream) => upstream,
        Err(err) => {
            guard.counters.reject(RejectReason::UpstreamUnavailable);
            error!(%peer, client_id, cause = %err, "embedded rumqttd unreachable: answering CONNACK 3");
            refuse(client, ConnectReturnCode::ServerUnavailable).await;
            return;
        }
    };
    let _active = guard.counters.relay_started();
    debug!(%peer, client_id, "relaying MQTT connection to rumqttd");
    relay(client, upstream).await;
    debug!(%peer, client_id, "MQTT connection closed");
    drop(slot);
}

/// Reads until `admit` has a verdict. Fails only if the peer closes or the socket errors.
async fn read_connect(client: &mut TcpStream, has_capacity: bool) -> std::io::Result<Admission> {
    let mut buf = Vec::with_capacity(256);
    loop {
        if let Some(admission) = admit(&buf, has_capacity) {
            return Ok(admission);
        }
        // `admit` refuses a CONNECT over `MAX_CONNECT_PACKET_BYTES` from its fixed header, so
        // the buffer stays bounded.
        buf.reserve(1024);
        if client.read_buf(&mut buf).await? == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("peer closed after {} bytes", buf.len()),
            ));
        }
    }
}

fn log_rejection(peer: SocketAddr, rejection: &Rejection) {
    let reason = rejection.reason.as_str();
    let detail = rejection.detail.as_str();
    let client_id = rejection.client_id.as_deref().unwrap_or("");
    match rejection.reason {
        RejectReason::ClientId | RejectReason::ProtocolVersion | RejectReason::ServerFull => {
            warn!(%peer, client_id, reason, detail, "refused MQTT connection");
        }
        _ => info!(%peer, reason, detail, "closed connection that is not a valid MQTT CONNECT"),
    }
}

/// Sends a refusing CONNACK, then closes politely (see [`LINGER_AFTER_REFUSAL`]).
async fn refuse(mut client: TcpStream, code: ConnectReturnCode) {
    if client.write_all(&code.connack()).await.is_err() {
        return;
    }
    let _ = client.shutdown().await;
    let mut sink = [0u8; 1024];
    let _ = timeout(LINGER_AFTER_REFUSAL, async {
        while let Ok(n) = client.read(&mut sink).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
}

async fn connect_upstream(addr: SocketAddr, first_bytes: &[u8]) -> std::io::Result<TcpStream> {
    let connect = async {
        let mut upstream = TcpStream::connect(addr).await?;
        upstream.set_nodelay(true)?;
        upstream.write_all(first_bytes).await?;
        Ok(upstream)
    };
    timeout(UPSTREAM_CONNECT_TIMEOUT, connect)
        .await
        .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into()))
}

/// Copies bytes both ways until the session is over.
///
/// When rumqttd closes (keep-alive expired, session taken over, protocol error) the client
/// is closed too, even if it is a dead peer that will never send again: otherwise a Pi that
/// lost power would hold its connection slot forever. When the client stops sending, rumqttd
/// is told (half-close) and gets [`UPSTREAM_DRAIN_TIMEOUT`] to finish: it publishes the will
/// and closes, and only then is the slot released, so rumqttd's own count never runs ahead
/// of the guard's.
async fn relay(mut client: TcpStream, mut upstream: TcpStream) {
    let _ = client.set_nodelay(true);
    let (mut client_rx, mut client_tx) = client.split();
    let (mut upstream_rx, mut upstream_tx) = upstream.split();
    let to_upstream = async {
        let _ = tokio::io::copy(&mut client_rx, &mut upstream_tx).await;
        let _ = upstream_tx.shutdown().await;
    };
    let to_client = async {
        let _ = tokio::io::copy(&mut upstream_rx, &mut client_tx).await;
        let _ = client_tx.shutdown().await;
    };
    tokio::pin!(to_upstream, to_client);
    tokio::select! {
        () = &mut to_client => {}
        () = &mut to_upstream => {
            let _ = timeout(UPSTREAM_DRAIN_TIMEOUT, &mut to_client).await;
        }
    }
}
