//! `GET /metrics`: the fleet and the hub's own health in Prometheus' text format, behind
//! the same gate as the API (a bearer token for Prometheus' `authorization`, or nothing on
//! an open loopback listener). See `deploy/grafana/README.md` for the scrape config.
//!
//! The fleet part comes from the node list of the live snapshot (who exists, who is
//! online) and the `nodes` table's latest metrics and info, read on a blocking thread
//! through the `Reader`: ingest is never waited for. It is rendered at most once per
//! [`FLEET_TTL`] whatever the number of scrapers, one render at a time; the hub part is
//! read fresh on every scrape (atomics and watch channels).

mod exposition;
mod fleet;
mod hub;

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use tokio::sync::mpsc::WeakSender;

pub use exposition::CONTENT_TYPE;

use super::{ApiError, AppState};
use crate::alert::AlertState;

/// A fleet rendering younger than this is served again.
pub const FLEET_TTL: Duration = Duration::from_secs(2);

/// A bounded channel whose depth `/metrics` reports. Weak, so that it never keeps a
/// channel open at shutdown.
#[derive(Clone)]
pub struct Queue {
    pub name: &'static str,
    depth: Arc<dyn Fn() -> Option<(usize, usize)> + Send + Sync>,
}

impl Queue {
    pub fn new<T: Send + 'static>(name: &'static str, tx: WeakSender<T>) -> Self {
        Self {
            name,
            depth: Arc::new(move || {
                let tx = tx.upgrade()?;
                Some((tx.max_capacity() - tx.capacity(), tx.max_capacity()))
            }),
        }
    }
}

/// A fleet rendering and when it was made.
type Rendered = (Instant, Arc<String>);

/// What `/metrics` reads besides the rest of `AppState`; empty unless `lib.rs::run` gave it.
#[derive(Clone, Default)]
pub struct Sources {
    /// Counters of the alert notifiers.
    pub notifiers: Option<crate::notify::Dispatcher>,
    /// The embedded broker's guard, when the hub runs it.
    pub broker: Option<sitewatch_broker::BrokerHandle>,
    pub queues: Vec<Queue>,
    /// Last fleet rendering; the lock also makes concurrent scrapes share one render.
    cache: Arc<tokio::sync::Mutex<Option<Rendered>>>,
}

impl Sources {
    pub fn new(
        notifiers: crate::notify::Dispatcher,
        broker: Option<sitewatch_broker::BrokerHandle>,
        queues: Vec<Queue>,
    ) -> Self {
        Self {
            notifiers: Some(notifiers),
            broker,
            queues,
            cache: Arc::default(),
        }
    }
}

pub async fn get(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let fleet_text = fleet_text(&state).await?;
    let health = hub_health(&state).await;
    let mut families = exposition::Families::new();
    hub::render(&mut families, &health);
    let mut body = families.finish();
    body.push_str(&fleet_text);
    Ok(([(header::CONTENT_TYPE, CONTENT_TYPE)], body))
}

/// The fleet families, from the cache or rendered on a blocking thread.
async fn fleet_text(state: &AppState) -> Result<Arc<String>, ApiError> {
    let mut cache = state.prometheus.cache.lock().await;
    if let Some((at, text)) = cache.as_ref()
        && at.elapsed() < FLEET_TTL
    {
        return Ok(text.clone());
    }
    let nodes = state.snapshot.borrow().clone();
    let text = state
        .reader
        .with(move |conn| {
            let rows = crate::store::load_nodes(conn)?;
            let mut families = exposition::Families::new();
            fleet::render(&mut families, &nodes, &rows);
            Ok(families.finish())
        })
        .await?;
    let text = Arc::new(text);
    *cache = Some((Instant::now(), text.clone()));
    Ok(text)
}

async fn hub_health(state: &AppState) -> hub::HubHealth {
    let s = &state.stats;
    let storage = state.storage.borrow().clone();
    let path = state.reader.path().to_owned();
    // Two stat() calls; kept off the async threads all the same (slow disks, NFS).
    let (database_bytes, wal_bytes) = tokio::task::spawn_blocking(move || {
        let len = |p: &std::path::Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        let mut wal = path.clone().into_os_string();
        wal.push("-wal");
        (len(&path), len(std::path::Path::new(&wal)))
    })
    .await
    .unwrap_or((0, 0));
    let alerts = state.alerts.borrow().clone();
    let firing = |sev: crate::alert::Severity| {
        alerts
            .alerts
            .iter()
            .filter(|a| a.state == AlertState::Firing && a.severity == sev)
            .count() as u64
    };
    use crate::alert::Severity;
    let sources = &state.prometheus;
    hub::HubHealth {
        mqtt_connected: *state.mqtt_connected.borrow(),
        received: s.received.load(Relaxed),
        malformed: s.malformed.load(Relaxed),
        unsigned: s.unsigned.load(Relaxed),
        bad_signature: s.bad_signature.load(Relaxed),
        unknown_node: s.unknown_node.load(Relaxed),
        duplicates: s.duplicates.load(Relaxed),
        queues: sources
            .queues
            .iter()
            .filter_map(|q| {
                let (depth, cap) = (q.depth)()?;
                Some((q.name, depth as u64, cap as u64))
            })
            .collect(),
        storage: Some(storage.state),
        failed_batches: storage.failed_batches,
        database_bytes,
        wal_bytes,
        notifiers: sources
            .notifiers
            .as_ref()
            .map(|d| d.stats())
            .unwrap_or_default(),
        alerts_firing: [Severity::Critical, Severity::Warning, Severity::Info]
            .into_iter()
            .map(|sev| (sev.as_str(), firing(sev)))
            .collect(),
        broker: sources
            .broker
            .as_ref()
            .map(|b| (*state.broker_healthy.borrow(), b.stats())),
    }
}
