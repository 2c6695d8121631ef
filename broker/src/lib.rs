//! sitewatch's MQTT broker: rumqttd 0.20, embedded, behind a guard that contains its known
//! hazards (see `DESIGN.md`, "Known rumqttd 0.20 hazards").
//!
//! ```text
//!   MQTT clients ──► guard (plain and/or TLS listener, tokio) ──► rumqttd (127.0.0.1:<internal>)
//!                     • TLS handshake per task, with timeout   • router, retained messages, wills
//!                     • reads and checks CONNECT               • one v4 listener, no TLS/ws/v5
//!                     • refuses bad client ids (rc 2), MQTT 5 (rc 1), max_connections (rc 3)
//!                     • authenticates (rc 4/5) via the application's `Authenticator`
//!                     • relays, checking each packet: size, topics of nodes, publish rate
//! ```
//!
//! [`start`] returns once both parts are ready; [`RunningBroker::join`] waits for the guard to
//! stop after the shutdown token is cancelled. rumqttd's thread cannot be stopped: it dies with
//! the process, so start one broker per process.
//!
//! What the guard contains: client ids with `/ + # $` (which poison rumqttd's listener when
//! the same id connects twice), empty, over-long or unprintable ids; rumqttd's own
//! `max_connections` refusal (same poisoning), because the guard's limit is lower; MQTT 5
//! clients (v5 publishes with properties crash v4 subscribers), because rumqttd only runs a v4
//! listener and the guard answers v5 CONNECTs with return code 1; MQTT 3.1 clients, which
//! rumqttd would drop silently, are upgraded to 3.1.1; TLS handshakes, which rumqttd awaits
//! in its accept loop, are done by the guard. rumqttd has no ACLs: the guard enforces the
//! topics of clients bound to a node. What it cannot contain (wills of taken-over sessions,
//! memory-only retained messages) is documented in `docs/BROKER.md`.

mod admission;
pub mod auth;
pub mod client_id;
pub mod config;
pub mod connect;
mod embedded;
pub mod error;
mod guard;
pub mod inspect;
mod login_cache;
pub mod packet;
pub mod policy;
pub mod rate;
mod relay;
mod sessions;
pub mod stats;
pub mod tls;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info};

pub use crate::auth::{Access, AuthDecision, Authenticator, Credentials, Denial};
pub use crate::config::{BrokerConfig, OverRate, PublishRate, TlsFiles};
pub use crate::error::BrokerError;
pub use crate::guard::Gate;
pub use crate::policy::NodeBinding;
pub use crate::stats::GuardStats;
pub use crate::tls::{TlsError, TlsReloader};

use crate::auth::Authorizer;
use crate::guard::{Guard, Transport};
use crate::login_cache::LoginCache;
use crate::stats::Counters;

/// What the application plugs into the broker besides its configuration.
#[derive(Default, Clone)]
pub struct StartOptions {
    /// Holds clients back until the application is ready (see [`Gate`]).
    pub gate: Option<Gate>,
    /// Checks logins; `None` lets every client in anonymously (see
    /// `BrokerConfig::allow_anonymous` for the mixed case).
    pub authenticator: Option<Arc<dyn Authenticator>>,
}

impl std::fmt::Debug for StartOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StartOptions")
            .field("gate", &self.gate)
            .field("authenticator", &self.authenticator.is_some())
            .finish()
    }
}

/// A started broker. Dropping it does not stop anything: cancel the shutdown token given to
/// [`start`], then [`join`](RunningBroker::join).
#[derive(Debug)]
pub struct RunningBroker {
    /// The plain-TCP address actually bound (the real port when port 0 was asked for).
    local_addr: Option<SocketAddr>,
    /// The TLS address actually bound.
    tls_local_addr: Option<SocketAddr>,
    /// rumqttd's internal address on 127.0.0.1.
    rumqttd_addr: SocketAddr,
    /// What the application may do while the broker runs.
    handle: BrokerHandle,
    /// The accept loops; they end on shutdown or when rumqttd stops.
    accept_loops: JoinHandle<()>,
    /// One task per client connection; closed when the accept loops end.
    connections: TaskTracker,
}

/// A cheap, cloneable handle to a running broker: counters, TLS reload, login cache.
#[derive(Clone)]
pub struct BrokerHandle {
    counters: Arc<Counters>,
    tls: Option<TlsReloader>,
    guard: Arc<Guard>,
}

impl std::fmt::Debug for BrokerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrokerHandle")
            .field("stats", &self.stats())
            .field("tls", &self.tls)
            .finish_non_exhaustive()
    }
}

impl BrokerHandle {
    /// The guard's counters: connections relayed, refused and cut off, by reason.
    pub fn stats(&self) -> GuardStats {
        self.counters.snapshot()
    }

    /// Re-reads the TLS certificate, key and client CA files (call it on SIGHUP). New
    /// connections use them; on error the old ones stay in force and the error says which
    /// file is wrong and why.
    pub fn reload_tls(&self) -> Result<(), TlsError> {
        self.tls.as_ref().ok_or(TlsError::NotConfigured)?.reload()
    }

    /// Forgets cached logins (call it when credentials are revoked or changed), so the next
    /// CONNECT of every client goes to the authenticator again. Established connections
    /// are not affected: [`disconnect_users`](Self::disconnect_users) cuts those off.
    pub fn forget_logins(&self) {
        self.guard.authorizer.forget_logins();
    }

    /// Closes every connection that logged in with one of `usernames` (those whose login is
    /// being checked right now are refused with CONNACK 5); returns how many. rumqttd sees
    /// its side half-closed without DISCONNECT and publishes their wills. Call it after the
    /// authenticator stopped accepting these logins and
    /// [`forget_logins`](Self::forget_logins), so the clients' reconnects are refused.
    pub fn disconnect_users(&self, usernames: &[String]) -> usize {
        self.guard.sessions.disconnect_users(usernames)
    }
}

impl RunningBroker {
    /// The plain-TCP address MQTT clients connect to, if that listener is enabled.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.local_addr
    }

    /// The TLS address MQTT clients connect to, if that listener is enabled.
    pub fn tls_local_addr(&self) -> Option<SocketAddr> {
        self.tls_local_addr
    }

    /// The internal address of the embedded rumqttd (127.0.0.1), for diagnostics only:
    /// clients must never connect there, as that bypasses the guard.
    pub fn rumqttd_addr(&self) -> SocketAddr {
        self.rumqttd_addr
    }

    /// The guard's counters: connections relayed, refused and cut off, by reason.
    pub fn stats(&self) -> GuardStats {
        self.handle.stats()
    }

    /// See [`BrokerHandle::reload_tls`].
    pub fn reload_tls(&self) -> Result<(), TlsError> {
        self.handle.reload_tls()
    }

    /// A handle that outlives [`join`](RunningBroker::join)'s move of `self`.
    pub fn handle(&self) -> BrokerHandle {
        self.handle.clone()
    }

    /// Waits until the accept loops have stopped (after shutdown, or if rumqttd stopped on
    /// its own) and every client connection task has ended; connections are closed on
    /// shutdown. rumqttd's thread keeps running until the process exits.
    pub async fn join(self) {
        if let Err(err) = self.accept_loops.await {
            error!(cause = %err, "MQTT accept loop ended abnormally");
        }
        self.connections.wait().await;
        info!("MQTT listeners stopped");
    }
}

/// Starts rumqttd on 127.0.0.1 and the guarded public listeners, anonymous and ungated.
///
/// Returns once rumqttd answers MQTT and the public listeners are bound. The public
/// addresses are bound (and the TLS files read) first, so a busy port or a bad certificate
/// fails fast, before rumqttd's unstoppable thread exists.
pub async fn start(
    config: BrokerConfig,
    shutdown: CancellationToken,
) -> Result<RunningBroker, BrokerError> {
    start_with(config, StartOptions::default(), shutdown).await
}

/// [`start`], holding every client but the gate's own until the gate opens (see [`Gate`]).
pub async fn start_gated(
    config: BrokerConfig,
    gate: Option<Gate>,
    shutdown: CancellationToken,
) -> Result<RunningBroker, BrokerError> {
    let options = StartOptions {
        gate,
        ..StartOptions::default()
    };
    start_with(config, options, shutdown).await
}

/// [`start`] with a gate and an authenticator.
pub async fn start_with(
    config: BrokerConfig,
    options: StartOptions,
    shutdown: CancellationToken,
) -> Result<RunningBroker, BrokerError> {
    config.validate()?;
    let tls = match &config.tls {
        Some(files) => Some(TlsReloader::load(files).map_err(BrokerError::Tls)?),
        None => None,
    };
    let plain = match config.listen {
        Some(addr) => Some(bind(addr).await?),
        None => None,
    };
    let secure = match config.tls_listen {
        Some(addr) => Some(bind(addr).await?),
        None => None,
    };
    let rumqttd = embedded::spawn(&config).await?;

    let counters = Arc::new(Counters::default());
    let (slots, refusals) = Guard::semaphores(config.max_connections);
    let cache = if config.auth_cache_ttl.is_zero() {
        None
    } else {
        LoginCache::new(config.auth_cache_ttl)
    };
    let authorizer = Authorizer {
        trusted_prefix: match (&options.authenticator, &options.gate) {
            (None, Some(gate)) => Some(gate.bypass_prefix.clone()),
            _ => None,
        },
        authenticator: options.authenticator,
        allow_anonymous: config.allow_anonymous,
        anonymous_loopback: config.anonymous_loopback,
        permits: Arc::new(tokio::sync::Semaphore::new(config.auth_concurrency)),
        timeout: config.connect_timeout,
        cache,
        counters: counters.clone(),
    };
    let guard = Arc::new(Guard {
        upstream: rumqttd.addr,
        connect_timeout: config.connect_timeout,
        slots,
        refusals,
        counters: counters.clone(),
        gate: options.gate,
        authorizer,
        prefix: config.topic_prefix.clone(),
        max_payload: config.max_payload_bytes,
        publish_rate: config.publish_rate,
        sessions: Arc::default(),
    });
    let connections = TaskTracker::new();
    let local_addr = plain.as_ref().map(|(_, addr)| *addr);
    let tls_local_addr = secure.as_ref().map(|(_, addr)| *addr);
    let accept = |(listener, _): (TcpListener, SocketAddr), transport| {
        guard::accept_loop(
            listener,
            transport,
            guard.clone(),
            connections.clone(),
            shutdown.clone(),
            rumqttd.stopped.clone(),
        )
    };
    let plain_loop = plain.map(|bound| accept(bound, Transport::Plain));
    // `validate` made sure a TLS listener comes with its files.
    let tls_loop = secure
        .zip(tls.clone())
        .map(|(bound, reloader)| accept(bound, Transport::Tls(reloader)));
    let accept_loops = tokio::spawn({
        let connections = connections.clone();
        async move {
            tokio::join!(
                async {
                    if let Some(accept_loop) = plain_loop {
                        accept_loop.await;
                    }
                },
                async {
                    if let Some(accept_loop) = tls_loop {
                        accept_loop.await;
                    }
                },
            );
            connections.close();
        }
    });
    info!(
        plain = ?local_addr,
        tls = ?tls_local_addr,
        rumqttd = %rumqttd.addr,
        max_connections = config.max_connections,
        authenticated = guard.authorizer.authenticates(),
        "MQTT broker listening"
    );
    Ok(RunningBroker {
        local_addr,
        tls_local_addr,
        rumqttd_addr: rumqttd.addr,
        handle: BrokerHandle {
            counters,
            tls,
            guard,
        },
        accept_loops,
        connections,
    })
}

/// Binds a public listener and reads back its address.
async fn bind(addr: SocketAddr) -> Result<(TcpListener, SocketAddr), BrokerError> {
    let bind_error = |source| BrokerError::Bind { addr, source };
    let listener = TcpListener::bind(addr).await.map_err(bind_error)?;
    let local = listener.local_addr().map_err(bind_error)?;
    Ok((listener, local))
}
