//! Notifiers: sinks fed with the alert engine's notifications.
//!
//! Each notifier is a tokio task behind a bounded channel. [`Dispatcher::dispatch`] routes
//! a notification to every notifier whose `severities`/`rules`/`sites` take it with
//! `try_send`: it never waits, and a full queue drops the notification and counts it. A
//! task delivers one notification at a time, retrying failures with exponential backoff
//! and jitter up to `max-attempts`; a permanent refusal (HTTP 4xx, SMTP 5xx) is not retried.

pub mod config;
pub mod email;
mod http;
pub mod mqtt;
pub mod retry;
pub mod template;
pub mod webhook;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;
use sitewatch_proto::Prefix;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use config::{NotifierConfig, NotifierKind, SmtpTls, WebhookFormat};
pub use mqtt::{Publish, PublishSink};
pub use template::Lang;

use crate::alert::Notification;

/// A notifier that cannot be started; the message names it and says what to fix.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("alerts.notifiers (name = {name:?}): {message}")]
    Config { name: String, message: String },
    #[error(
        "alerts.notifiers (name = {0:?}): kind = \"mqtt\" needs the hub's MQTT client, which \
         was not given"
    )]
    NoMqtt(String),
}

/// A failed delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryError {
    /// Whether trying again may work.
    pub retry: bool,
    pub message: String,
}

/// Counters of one notifier (`/healthz`).
#[derive(Debug, Default)]
pub struct SinkStats {
    pub sent: AtomicU64,
    /// Given up after every attempt, or refused for good.
    pub failed: AtomicU64,
    pub retries: AtomicU64,
    /// Dropped because the queue was full.
    pub dropped: AtomicU64,
}

/// A snapshot of [`SinkStats`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NotifierStats {
    pub name: String,
    pub kind: &'static str,
    pub sent: u64,
    pub failed: u64,
    pub retries: u64,
    pub dropped: u64,
}

struct Handle {
    config: NotifierConfig,
    tx: mpsc::Sender<Notification>,
    stats: Arc<SinkStats>,
}

/// Cheap handle routing notifications to the running notifiers.
#[derive(Clone, Default)]
pub struct Dispatcher {
    sinks: Arc<Vec<Handle>>,
}

impl Dispatcher {
    /// Queues `n` for every notifier that takes it; never waits.
    pub fn dispatch(&self, n: &Notification) {
        for h in self.sinks.iter().filter(|h| h.config.routes(n)) {
            if h.tx.try_send(n.clone()).is_err() {
                let dropped = h.stats.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                // Logged at 1, 2, 4, 8… drops, so a stuck notifier cannot flood the log.
                if dropped.is_power_of_two() {
                    tracing::warn!(
                        notifier = %h.config.name, dropped, rule = %n.alert.rule,
                        "notification dropped: the notifier's queue is full (is its server \
                         reachable?); raise `queue` or fix the notifier"
                    );
                }
            }
        }
    }

    pub fn stats(&self) -> Vec<NotifierStats> {
        self.sinks
            .iter()
            .map(|h| NotifierStats {
                name: h.config.name.clone(),
                kind: h.config.kind.as_str(),
                sent: h.stats.sent.load(Ordering::Relaxed),
                failed: h.stats.failed.load(Ordering::Relaxed),
                retries: h.stats.retries.load(Ordering::Relaxed),
                dropped: h.stats.dropped.load(Ordering::Relaxed),
            })
            .collect()
    }
}

enum Sink {
    Email(email::EmailSink),
    Webhook(webhook::WebhookSink),
    Mqtt(mqtt::MqttSink),
}

impl Sink {
    async fn deliver(&self, n: &Notification) -> Result<(), DeliveryError> {
        match self {
            Sink::Email(s) => s.deliver(n).await,
            Sink::Webhook(s) => s.deliver(n).await,
            Sink::Mqtt(s) => s.deliver(n).await,
        }
    }
}

/// Starts one task per notifier on `tracker`; they stop when `shutdown` fires. `mqtt`
/// receives the events of `kind = "mqtt"` notifiers.
pub fn spawn(
    configs: &[NotifierConfig],
    prefix: &Prefix,
    mqtt: Option<Arc<dyn PublishSink>>,
    tracker: &TaskTracker,
    shutdown: CancellationToken,
) -> Result<Dispatcher, NotifyError> {
    let mut sinks = Vec::with_capacity(configs.len());
    for cfg in configs {
        let sink = match cfg.kind {
            NotifierKind::Email => Sink::Email(email::EmailSink::new(cfg)?),
            NotifierKind::Webhook => Sink::Webhook(webhook::WebhookSink::new(cfg)?),
            NotifierKind::Mqtt => Sink::Mqtt(mqtt::MqttSink {
                prefix: prefix.clone(),
                lang: cfg.lang,
                out: mqtt
                    .clone()
                    .ok_or_else(|| NotifyError::NoMqtt(cfg.name.clone()))?,
            }),
        };
        let (tx, rx) = mpsc::channel(cfg.queue.max(1));
        let stats = Arc::new(SinkStats::default());
        tracker.spawn(run(
            cfg.name.clone(),
            sink,
            cfg.retry(),
            rx,
            stats.clone(),
            shutdown.clone(),
        ));
        tracing::info!(notifier = %cfg.name, kind = cfg.kind.as_str(), "notifier started");
        sinks.push(Handle {
            config: cfg.clone(),
            tx,
            stats,
        });
    }
    Ok(Dispatcher {
        sinks: Arc::new(sinks),
    })
}

async fn run(
    name: String,
    sink: Sink,
    retry: retry::Retry,
    mut rx: mpsc::Receiver<Notification>,
    stats: Arc<SinkStats>,
    shutdown: CancellationToken,
) {
    loop {
        let n = tokio::select! {
            _ = shutdown.cancelled() => break,
            n = rx.recv() => match n {
                Some(n) => n,
                None => break,
            },
        };
        let mut attempt = 1;
        loop {
            let result = tokio::select! {
                _ = shutdown.cancelled() => return,
                r = sink.deliver(&n) => r,
            };
            match result {
                Ok(()) => {
                    stats.sent.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(
                        notifier = %name, rule = %n.alert.rule, site = %n.alert.site,
                        kind = n.kind.as_str(), attempt, "notification sent"
                    );
                    break;
                }
                Err(e) if e.retry && attempt < retry.max_attempts => {
                    let delay = retry.delay(attempt, retry::random());
                    stats.retries.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(
                        notifier = %name, rule = %n.alert.rule, attempt, retry_in = ?delay,
                        cause = %e.message, "notification failed; will retry"
                    );
                    attempt += 1;
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(delay) => {}
                    }
                }
                Err(e) => {
                    stats.failed.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(
                        notifier = %name, rule = %n.alert.rule, site = %n.alert.site, attempt,
                        cause = %e.message,
                        "notification given up; fix the notifier's settings or its server"
                    );
                    break;
                }
            }
        }
    }
    let left = rx.len();
    if left > 0 {
        tracing::warn!(notifier = %name, left, "stopping with notifications not sent");
    }
}
