//! The public listeners: accept MQTT clients (plain TCP or TLS), check each CONNECT and
//! login, and relay the admitted ones to the embedded rumqttd.
//!
//! Every connection gets its own task, so one slow client never holds up an accept loop:
//! the TLS handshake, reading the CONNECT (both within `connect_timeout` of the accept), the
//! verdict of `admission::admit`, authentication (`auth.rs`, on the blocking pool), the
//! checks tied to the client's identity, the gate; then it either answers a refusing CONNACK
//! and closes, or opens a connection to rumqttd and relays (`relay.rs`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use sitewatch_proto::Prefix;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, sleep, timeout, timeout_at};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{Instrument, debug, error, info, info_span, warn};

use crate::admission::{Admission, Rejection, admit};
use crate::auth::{Authorizer, Login, Refusal, SessionRules, check_session};
use crate::config::PublishRate;
use crate::connect::ConnectReturnCode;
use crate::inspect::{Inspector, Violation};
use crate::relay::relay;
use crate::sessions::{Session, Sessions};
use crate::stats::{Counters, DisconnectReason, RejectReason};
use crate::tls::TlsReloader;

/// Connections being refused at once while the server is full. Beyond it new sockets are
/// closed without reading their CONNECT, so a flood cannot pile up tasks.
const MAX_PENDING_REFUSALS: usize = 256;
/// How long connecting to rumqttd may take before the client gets CONNACK 3.
const UPSTREAM_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// After a refusing CONNACK, how long the guard reads (and discards) what the client still
/// sends, so closing does not reset the connection before the client has read the CONNACK.
const LINGER_AFTER_REFUSAL: Duration = Duration::from_millis(500);
/// Pause after a failed accept (e.g. out of file descriptors) before trying again.
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(100);

/// Holds clients back until the application behind the broker is ready for them: the hub
/// opens it once its own client has subscribed, so messages agents send right after a hub
/// restart are not routed to nobody (rumqttd keeps nothing for absent subscribers).
///
/// `bypass_prefix` names the application's own client in two more ways. Without an
/// authenticator, clients whose id starts with it are exempt from the publish rate limit.
/// With one, the authenticator says who is trusted (`Access::Trusted`), and only trusted
/// clients may use such an id, so nobody can take over the application's session.
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
    /// How long a client may take for its TLS handshake and CONNECT together.
    pub(crate) connect_timeout: Duration,
    /// One permit per allowed client connection (`max_connections`).
    pub(crate) slots: Arc<Semaphore>,
    /// Permits for connections being refused because the server is full.
    pub(crate) refusals: Arc<Semaphore>,
    /// The counters behind `RunningBroker::stats()`.
    pub(crate) counters: Arc<Counters>,
    pub(crate) gate: Option<Gate>,
    /// Authentication and the anonymous policy.
    pub(crate) authorizer: Authorizer,
    /// Topic prefix, for the rules of clients bound to a node.
    pub(crate) prefix: Prefix,
    /// Largest remaining length of a client packet (`max_payload_bytes`).
    pub(crate) max_payload: usize,
    /// Publish rate of every client that is not trusted.
    pub(crate) publish_rate: Option<PublishRate>,
    /// Connections that logged in with a user name, for `disconnect_users`.
    pub(crate) sessions: Arc<Sessions>,
}

impl Guard {
    /// Semaphores for `max_connections` and for refusals.
    pub(crate) fn semaphores(max_connections: usize) -> (Arc<Semaphore>, Arc<Semaphore>) {
        (
            Arc::new(Semaphore::new(max_connections)),
            Arc::new(Semaphore::new(MAX_PENDING_REFUSALS)),
        )
    }
}

/// How a listener's connections start: plain MQTT, or a TLS handshake first.
#[derive(Clone)]
pub(crate) enum Transport {
    Plain,
    Tls(TlsReloader),
}

/// Who is on the other end of a connection.
struct Peer {
    addr: SocketAddr,
    tls: bool,
    /// DER of the verified client certificate, if the listener asked for one.
    certificate: Option<Vec<u8>>,
}

/// Accepts connections until `shutdown` is cancelled or rumqttd stops. The caller closes
/// `connections` once every accept loop has ended (running tasks end on `shutdown`).
pub(crate) async fn accept_loop(
    listener: TcpListener,
    transport: Transport,
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
        let deadline = Instant::now() + guard.connect_timeout;
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
        let transport = transport.clone();
        connections.spawn(async move {
            tokio::select! {
                () = shutdown.cancelled() => {}
                () = start(stream, peer, transport, &guard, slot, deadline) => {}
            }
            drop(refusal);
        });
    }
}

/// Runs the TLS handshake if the listener has TLS (in this connection's task, by
/// `deadline`), then serves the connection.
async fn start(
    stream: TcpStream,
    addr: SocketAddr,
    transport: Transport,
    guard: &Guard,
    slot: Option<OwnedSemaphorePermit>,
    deadline: Instant,
) {
    let _ = stream.set_nodelay(true);
    let reloader = match transport {
        Transport::Plain => {
            let peer = Peer {
                addr,
                tls: false,
                certificate: None,
            };
            return serve(stream, peer, guard, slot, deadline).await;
        }
        Transport::Tls(reloader) => reloader,
    };
    let tls = match timeout_at(deadline, reloader.acceptor().accept(stream)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(err)) => {
            guard.counters.reject(RejectReason::TlsHandshake);
            info!(peer = %addr, cause = %err, "TLS handshake failed");
            return;
        }
        Err(_) => {
            guard.counters.reject(RejectReason::TlsTimeout);
            debug!(peer = %addr, "no TLS handshake within connect_timeout: closing");
            return;
        }
    };
    let certificate = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|chain| chain.first())
        .map(|cert| cert.to_vec());
    let peer = Peer {
        addr,
        tls: true,
        certificate,
    };
    serve(tls, peer, guard, slot, deadline).await;
}

/// Handles one client connection from its first MQTT byte to its close.
async fn serve<S>(
    mut client: S,
    peer: Peer,
    guard: &Guard,
    slot: Option<OwnedSemaphorePermit>,
    deadline: Instant,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let addr = peer.addr;
    let admitted = match timeout_at(deadline, read_connect(&mut client, slot.is_some())).await {
        Ok(Ok(Admission::Forward(admitted))) => admitted,
        Ok(Ok(Admission::Reject(rejection))) => {
            log_rejection(addr, &rejection);
            guard.counters.reject(rejection.reason);
            if let Some(code) = rejection.connack {
                refuse(client, code).await;
            }
            return;
        }
        Ok(Err(err)) => {
            guard.counters.reject(RejectReason::ClosedBeforeConnect);
            debug!(peer = %addr, cause = %err, "connection closed before a complete CONNECT");
            return;
        }
        Err(_) => {
            guard.counters.reject(RejectReason::ConnectTimeout);
            debug!(peer = %addr, timeout = ?guard.connect_timeout, "no complete CONNECT in time: closing");
            return;
        }
    };
    let client_id = admitted.client_id.clone();
    let username = admitted.username.clone();
    // Registered before the authenticator runs: see `sessions.rs`.
    let session = username
        .as_deref()
        .map(|user| guard.sessions.register(user));
    let login = Login {
        client_id: admitted.client_id,
        username: admitted.username,
        password: admitted.password,
        peer: addr,
        tls: peer.tls,
        client_certificate: peer.certificate,
    };
    let rules = SessionRules {
        prefix: &guard.prefix,
        authenticates: guard.authorizer.authenticates(),
        trusted_prefix: guard.gate.as_ref().map(|gate| gate.bypass_prefix.as_str()),
    };
    let checked = match guard.authorizer.authorize(login).await {
        Ok(access) => check_session(&access, &client_id, admitted.will_topic.as_deref(), &rules)
            .map(|policy| (access, policy)),
        Err(refusal) => Err(refusal),
    };
    let (access, policy) = match checked {
        Ok(checked) => checked,
        Err(Refusal {
            reason,
            code,
            detail,
        }) => {
            guard.counters.reject(reason);
            warn!(
                peer = %addr,
                client_id,
                username = username.as_deref().unwrap_or(""),
                reason = reason.as_str(),
                detail,
                "refused MQTT login"
            );
            refuse(client, code).await;
            return;
        }
    };
    if let Some(gate) = &guard.gate
        && !gate.pass(&client_id).await
    {
        guard.counters.reject(RejectReason::UpstreamUnavailable);
        debug!(peer = %addr, client_id, "not ready for clients yet: answering CONNACK 3");
        refuse(client, ConnectReturnCode::ServerUnavailable).await;
        return;
    }
    if session.as_ref().is_some_and(Session::is_withdrawn) {
        guard.counters.reject(RejectReason::NotAuthorized);
        warn!(peer = %addr, client_id, "login withdrawn while it was being checked: refused");
        refuse(client, ConnectReturnCode::NotAuthorized).await;
        return;
    }
    let upstream = match connect_upstream(guard.upstream, &admitted.connect).await {
        Ok(upstream) => upstream,
        Err(err) => {
            guard.counters.reject(RejectReason::UpstreamUnavailable);
            error!(peer = %addr, client_id, cause = %err, "embedded rumqttd unreachable: answering CONNACK 3");
            refuse(client, ConnectReturnCode::ServerUnavailable).await;
            return;
        }
    };
    let rate = guard.publish_rate.filter(|_| access.is_rate_limited());
    let inspector = Inspector::new(guard.max_payload, policy, rate, std::time::Instant::now());
    let _active = guard.counters.relay_started();
    let span = info_span!("mqtt_client", peer = %addr, client_id, tls = peer.tls);
    async {
        debug!(?access, "relaying MQTT connection to rumqttd");
        let withdrawn = async {
            match &session {
                Some(session) => session.withdrawn().await,
                None => std::future::pending().await,
            }
        };
        let ending = relay(
            client,
            upstream,
            inspector,
            admitted.rest,
            (&guard.counters, withdrawn),
        )
        .await;
        match ending {
            Some(Violation::Withdrawn) => {
                guard.counters.disconnect(DisconnectReason::Revoked);
                warn!("disconnected MQTT client: its login was withdrawn (credentials revoked or rotated)");
            }
            Some(violation) => {
                guard.counters.disconnect(violation.reason());
                warn!(
                    reason = violation.reason().as_str(),
                    detail = %violation,
                    "disconnected MQTT client that broke a rule"
                );
            }
            None => debug!("MQTT connection closed"),
        }
    }
    .instrument(span)
    .await;
    drop(slot);
}

/// Reads until `admit` has a verdict. Fails only if the peer closes or the socket errors.
async fn read_connect<S>(client: &mut S, has_capacity: bool) -> std::io::Result<Admission>
where
    S: AsyncRead + Unpin,
{
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
async fn refuse<S>(mut client: S, code: ConnectReturnCode)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
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

async fn connect_upstream(addr: SocketAddr, connect: &[u8]) -> std::io::Result<TcpStream> {
    let connect = async {
        let mut upstream = TcpStream::connect(addr).await?;
        upstream.set_nodelay(true)?;
        upstream.write_all(connect).await?;
        Ok(upstream)
    };
    timeout(UPSTREAM_CONNECT_TIMEOUT, connect)
        .await
        .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into()))
}
