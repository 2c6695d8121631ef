//! HTTP API and dashboard (axum). `app(state)` builds the router so tests can drive it with
//! `tower::ServiceExt::oneshot` and no socket.

mod alerts;
mod auth;
pub mod auth_gate;
mod dashboard;
mod devices;
mod error;
mod events;
mod history;
pub mod install;
pub mod metrics;
mod nodes;
mod storage;
pub mod timeparam;

use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::{Json, Router, routing::get};
use serde_json::json;
use tokio::sync::watch;

pub use error::ApiError;

use crate::ingest::IngestStats;
use crate::state::NodeView;
use crate::store::{Reader, Retention, StorageStats};
use sitewatch_proto::{StorageHealth, StorageState};

/// Shared state of every handler.
#[derive(Clone)]
pub struct AppState {
    pub reader: Reader,
    /// Latest fleet snapshot from ingest; handlers and SSE streams read it, never lock.
    pub snapshot: watch::Receiver<Arc<Vec<NodeView>>>,
    pub mqtt_connected: watch::Receiver<bool>,
    pub stats: Arc<IngestStats>,
    /// Health of the database, from the writer.
    pub storage: watch::Receiver<StorageHealth>,
    /// What the writer keeps, so queries know which tier still holds a range.
    pub retention: Retention,
    /// Last `/api/v1/storage` statistics (see `storage::STATS_TTL`).
    pub stats_cache: Arc<Mutex<Option<(Instant, StorageStats)>>>,
    /// Active alerts and silences, from the ingest task.
    pub alerts: watch::Receiver<Arc<crate::alerting::AlertsView>>,
    /// Requests to the alert engine; `None` when alerting is not running (API tests).
    pub alert_commands: Option<tokio::sync::mpsc::Sender<crate::alerting::Command>>,
    /// False while the self-probe cannot connect to the embedded broker.
    pub broker_healthy: watch::Receiver<bool>,
    /// Accounts and access policy; open (no accounts) unless `with_auth` set one.
    pub auth: Arc<crate::auth::Gate>,
    /// What `GET /metrics` reads besides the above (notifiers, broker, queues).
    pub prometheus: metrics::Sources,
}

impl AppState {
    pub fn new(
        reader: Reader,
        snapshot: watch::Receiver<Arc<Vec<NodeView>>>,
        mqtt_connected: watch::Receiver<bool>,
        stats: Arc<IngestStats>,
        storage: watch::Receiver<StorageHealth>,
        retention: Retention,
    ) -> Self {
        Self {
            reader,
            snapshot,
            mqtt_connected,
            stats,
            storage,
            retention,
            stats_cache: Arc::new(Mutex::new(None)),
            alerts: watch::channel(Arc::default()).1,
            alert_commands: None,
            broker_healthy: watch::channel(true).1,
            auth: Arc::new(crate::auth::Gate::open()),
            prometheus: metrics::Sources::default(),
        }
    }

    /// Gives `GET /metrics` the notifiers, broker and queues of a running hub.
    pub fn with_prometheus(mut self, sources: metrics::Sources) -> Self {
        self.prometheus = sources;
        self
    }

    /// Connects the embedded broker's self-probe (see `crate::probe`).
    pub fn with_broker_probe(mut self, healthy: watch::Receiver<bool>) -> Self {
        self.broker_healthy = healthy;
        self
    }

    /// Puts the API and dashboard behind accounts (`[auth]`).
    pub fn with_auth(mut self, gate: crate::auth::Gate) -> Self {
        self.auth = Arc::new(gate);
        self
    }

    /// Connects the alert views and commands of a running ingest task.
    pub fn with_alerts(
        mut self,
        alerts: watch::Receiver<Arc<crate::alerting::AlertsView>>,
        commands: tokio::sync::mpsc::Sender<crate::alerting::Command>,
    ) -> Self {
        self.alerts = alerts;
        self.alert_commands = Some(commands);
        self
    }
}

pub fn app(state: AppState) -> Router {
    use axum::routing::{delete, post};
    // Everything here needs a session, a token, or an open loopback listener (auth_gate).
    let gated = Router::new()
        .route("/", get(dashboard::index))
        .route("/assets/{file}", get(dashboard::asset))
        .route("/api/v1/nodes", get(nodes::list))
        .route("/api/v1/nodes/{site}/{node}", get(nodes::detail))
        .route("/api/v1/nodes/{site}/{node}/series", get(history::series))
        .route("/api/v1/nodes/{site}/{node}/export", get(history::export))
        .route("/api/v1/storage", get(storage::get))
        .route("/metrics", get(metrics::get))
        .route("/api/v1/sites/{site}/devices", get(devices::list))
        .route(
            "/api/v1/sites/{site}/devices/{key}",
            axum::routing::patch(devices::patch),
        )
        .route("/api/v1/alerts", get(alerts::list))
        .route(
            "/api/v1/alerts/{fingerprint}/ack",
            axum::routing::post(alerts::acknowledge),
        )
        .route(
            "/api/v1/silences",
            get(alerts::silences).post(alerts::create_silence),
        )
        .route(
            "/api/v1/silences/{id}",
            axum::routing::delete(alerts::delete_silence),
        )
        .route("/api/v1/events", get(events::stream))
        .route("/api/v1/auth/me", get(auth::me))
        .route("/api/v1/auth/logout", post(auth::logout))
        .route("/api/v1/auth/password", post(auth::change_password))
        .route("/api/v1/users", get(auth::users).post(auth::create_user))
        .route("/api/v1/users/{name}", delete(auth::delete_user))
        .route("/api/v1/users/{name}/password", post(auth::reset_password))
        .route("/api/v1/tokens", get(auth::tokens).post(auth::create_token))
        .route("/api/v1/tokens/{id}", delete(auth::revoke_token))
        .fallback(|| async {
            ApiError::NotFound("no such endpoint; see docs/ARCHITECTURE.md for the API".into())
        })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth_gate::require,
        ));
    Router::new()
        .route("/healthz", get(healthz))
        .route("/login", get(dashboard::login))
        .route("/assets/public/{file}", get(dashboard::public_asset))
        .route("/api/v1/auth/login", post(auth::login))
        .merge(gated)
        .with_state(state)
}

/// 200 while the hub works (storage trouble is reported but the hub still serves); 503
/// when its embedded broker stopped accepting connections.
async fn healthz(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> (axum::http::StatusCode, Json<serde_json::Value>) {
    use std::sync::atomic::Ordering::Relaxed;
    let storage = state.storage.borrow().state;
    let broker_ok = *state.broker_healthy.borrow();
    let status = if !broker_ok {
        "broker_unavailable"
    } else if storage == StorageState::Ok {
        "ok"
    } else {
        "degraded"
    };
    let code = if broker_ok {
        axum::http::StatusCode::OK
    } else {
        axum::http::StatusCode::SERVICE_UNAVAILABLE
    };
    (
        code,
        Json(json!({
            "status": status,
            "broker_accepting": broker_ok,
            "storage": storage.as_str(),
            "version": env!("CARGO_PKG_VERSION"),
            "mqtt_connected": *state.mqtt_connected.borrow(),
            "messages_received": state.stats.received.load(Relaxed),
            "messages_malformed": state.stats.malformed.load(Relaxed),
            "messages_unsigned": state.stats.unsigned.load(Relaxed),
            "messages_bad_signature": state.stats.bad_signature.load(Relaxed),
            "messages_unknown_node": state.stats.unknown_node.load(Relaxed),
            "messages_duplicate": state.stats.duplicates.load(Relaxed),
        })),
    )
}
