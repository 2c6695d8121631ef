//! sitewatch's MQTT broker: rumqttd 0.20, embedded, behind a guard that contains its known
//! hazards (see `DESIGN.md`, "Known rumqttd 0.20 hazards").
//!
//! ```text
//!   MQTT clients ──► guard (public TcpListener, tokio) ──► rumqttd (127.0.0.1:<internal>)
//!                     • reads and checks CONNECT          • router, retained messages, wills
//!                     • refuses bad client ids (rc 2)     • one v4 listener, no TLS/ws/v5
//!                     • refuses MQTT 5 (rc 1)
//!                     • enforces max_connections (rc 3)
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
//! rumqttd would drop silently, are upgraded to 3.1.1. What it cannot contain (no ACLs, wills
//! of taken-over sessions, memory-only retained messages) is documented in `docs/`.

mod admission;
pub mod client_id;
pub mod config;
pub mod connect;
mod embedded;
pub mod error;
mod guard;
pub mod stats;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info};

pub use crate::config::BrokerConfig;
pub use crate::error::BrokerError;
pub use crate::guard::Gate;
pub use crate::stats::GuardStats;

use crate::guard::Guard;
use crate::stats::Counters;

/// A started broker. Dropping it does not stop anything: cancel the shutdown token given to
/// [`start`], then [`join`](RunningBroker::join).
#[derive(Debug)]
pub struct RunningBroker {
    /// The public address actually bound (the real port when port 0 was asked for).
    local_addr: SocketAddr,
    /// rumqttd's internal address on 127.0.0.1.
    rumqttd_addr: SocketAddr,
    /// The guard's counters.
    counters: Arc<Counters>,
    /// The accept loop; it ends on shutdown or when rumqttd stops.
    accept_loop: JoinHandle<()>,
    /// One task per client connection; closed when the accept loop ends.
    connections: TaskTracker,
}

impl RunningBroker {
    /// The address MQTT clients connect to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The internal address of the embedded rumqttd (127.0.0.1), for diagnostics only:
    /// clients must never connect there, as that bypasses the guard.
    pub fn rumqttd_addr(&self) -> SocketAddr {
        self.rumqttd_addr
    }

    /// The guard's counters: connections relayed and refused, by reason.
    pub fn stats(&self) -> GuardStats {
        self.counters.snapshot()
    }

    /// Waits until the accept loop has stopped (after shutdown, or if rumqttd stopped on its
    /// own) and every client connection task has ended; connections are closed on shutdown.
    /// rumqttd's thread keeps running until the process exits.
    pub async fn join(self) {
        if let Err(err) = self.accept_loop.await {
            error!(cause = %err, "MQTT accept loop ended abnormally");
        }
        self.connections.wait().await;
        info!(addr = %self.local_addr, "MQTT listener stopped");
    }
}

/// Starts rumqttd on 127.0.0.1 and the guarded public listener on `config.listen`.
///
/// Returns once rumqttd answers MQTT and the public listener is bound. The public address is
/// bound first, so a busy port fails fast, before rumqttd's unstoppable thread exists.
pub async fn start(
    config: BrokerConfig,
    shutdown: CancellationToken,
) -> Result<RunningBroker, BrokerError> {
    start_gated(config, None, shutdown).await
}

/// [`start`], holding every client but the gate's own until the gate opens (see [`Gate`]).
pub async fn start_gated(
    config: BrokerConfig,
    gate: Option<Gate>,
    shutdown: CancellationToken,
) -> Result<RunningBroker, BrokerError> {
    config.validate()?;
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| BrokerError::Bind {
            addr: config.listen,
            source,
        })?;
    let local_addr = listener.local_addr().map_err(|source| BrokerError::Bind {
        addr: config.listen,
        source,
    })?;
    let rumqttd = embedded::spawn(&config).await?;

    let counters = Arc::new(Counters::default());
    let guard = Arc::new(Guard::new(
        rumqttd.addr,
        config.connect_timeout,
        config.max_connections,
        counters.clone(),
        gate,
    ));
    let connections = TaskTracker::new();
    let accept_loop = tokio::spawn(guard::accept_loop(
        listener,
        guard,
        connections.clone(),
        shutdown,
        rumqttd.stopped,
    ));
    info!(
        addr = %local_addr,
        rumqttd = %rumqttd.addr,
        max_connections = config.max_connections,
        "MQTT broker listening"
    );
    Ok(RunningBroker {
        local_addr,
        rumqttd_addr: rumqttd.addr,
        counters,
        accept_loop,
        connections,
    })
}
