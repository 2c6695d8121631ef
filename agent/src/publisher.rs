//! The agent's main loop: announce on every connect, heartbeats and metrics on timers,
//! a clean goodbye on shutdown.
//!
//! Publishing never waits for the broker: messages go to rumqttc's bounded request queue
//! with `try_publish`, and when it is full (broker unreachable for a while) they are
//! dropped and counted. The end-to-end outbox (resend until the hub acks) comes later.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use rumqttc::{AsyncClient, QoS};
use serde::Serialize;
use sitewatch_proto::{Heartbeat, NodeId, NodeTopic, Status, Topic};
use tokio::sync::Notify;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::collect::{CPU_WINDOW, Collector, system};
use crate::config::AgentConfig;
use crate::link;
use crate::session::{Session, now_ms};

/// Requests rumqttc may queue while the broker is unreachable before new ones are dropped.
pub const REQUEST_QUEUE: usize = 32;

/// How long shutdown may take to publish `offline` and disconnect.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// Full topic names of this node.
#[derive(Debug, Clone)]
pub struct Topics {
    pub status: String,
    pub info: String,
    pub heartbeat: String,
    pub metrics: String,
}

impl Topics {
    pub fn new(config: &AgentConfig, node: &NodeId) -> Self {
        let t = |kind| Topic::node(&config.site, node, kind).format(&config.topic_prefix);
        Self {
            status: t(NodeTopic::Status),
            info: t(NodeTopic::Info),
            heartbeat: t(NodeTopic::Heartbeat),
            metrics: t(NodeTopic::Metrics),
        }
    }
}

/// Runs the agent until `shutdown` is cancelled, then publishes `offline`, disconnects and
/// returns `Ok`. Network errors are retried forever; only a config problem (unusable
/// node id) or unreadable system information ends it early with an error.
pub async fn run(config: AgentConfig, shutdown: CancellationToken) -> anyhow::Result<()> {
    let node = config.resolve_node()?;
    let session = Session::new();
    let topics = Topics::new(&config, &node);
    let client_id = format!("sw.{}.{}", config.site, node);
    let mut collector = Collector::new().context("cannot start the metrics collector")?;
    let broker = config.broker.to_string();
    info!(
        site = %config.site, %node, %broker, session = session.id(),
        heartbeat_interval_s = config.heartbeat_interval_s,
        metrics_interval_s = config.metrics_interval_s,
        "sitewatch agent starting"
    );

    let (client, eventloop) = AsyncClient::new(
        link::options(&config, &client_id, &topics.status),
        REQUEST_QUEUE,
    );
    let connected = Arc::new(Notify::new());
    let closing = CancellationToken::new();
    let mut driver = tokio::spawn(link::drive(
        eventloop,
        broker,
        connected.clone(),
        closing.clone(),
    ));
    let mut out = Sender::new(client);

    let mut heartbeat = tokio::time::interval(Duration::from_secs(config.heartbeat_interval_s));
    heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut metrics = tokio::time::interval_at(
        Instant::now() + CPU_WINDOW,
        Duration::from_secs(config.metrics_interval_s),
    );
    metrics.set_missed_tick_behavior(MissedTickBehavior::Delay);

    loop {
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            joined = &mut driver => {
                // The driver only returns after a DISCONNECT we did not send yet, or panics.
                anyhow::bail!("the MQTT event loop stopped unexpectedly: {joined:?}");
            }
            _ = connected.notified() => {
                let info = crate::info::gather(&config, &session);
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = out.announce(&topics, &info) => {}
                }
            }
            _ = heartbeat.tick() => {
                let hb = Heartbeat {
                    ts: now_ms(),
                    session: session.id().to_owned(),
                    seq: session.next_seq(),
                    uptime_s: system::uptime_s().unwrap_or(0),
                    seq_floor: None,
                };
                out.try_send(&topics.heartbeat, &hb, "heartbeat");
            }
            _ = metrics.tick() => {
                let sample = collector.sample(&session);
                out.try_send(&topics.metrics, &sample, "metrics");
            }
        }
    }

    info!("shutting down: publishing offline and disconnecting");
    closing.cancel();
    let goodbye = async {
        if let Err(err) = out.goodbye(&topics).await {
            debug!(cause = %err, "could not queue the goodbye");
        }
        (&mut driver).await
    };
    match tokio::time::timeout(SHUTDOWN_GRACE, goodbye).await {
        Ok(Ok(link::Ending::Disconnected)) => {
            info!(
                dropped_messages = out.dropped_total,
                "offline published; agent stopped"
            );
        }
        Ok(Ok(link::Ending::Unreachable)) | Err(_) => {
            driver.abort();
            warn!(
                dropped_messages = out.dropped_total,
                "broker unreachable while shutting down, `offline` not published; the broker \
                 publishes the last will if it still holds this session"
            );
        }
        Ok(Err(err)) => warn!(cause = %err, "MQTT event loop task failed while shutting down"),
    }
    Ok(())
}

/// Queues publishes on the client and accounts for the ones it cannot queue.
struct Sender {
    client: AsyncClient,
    /// Messages dropped since the process started.
    dropped_total: u64,
    /// Messages dropped since the last one that could be queued (0 = not dropping).
    dropped_streak: u64,
}

impl Sender {
    fn new(client: AsyncClient) -> Self {
        Self {
            client,
            dropped_total: 0,
            dropped_streak: 0,
        }
    }

    /// Queues a QoS 1, non-retained JSON message without waiting; drops it when the queue
    /// is full, warning once per streak of drops.
    fn try_send<T: Serialize>(&mut self, topic: &str, payload: &T, what: &'static str) {
        let bytes = match serde_json::to_vec(payload) {
            Ok(b) => b,
            Err(err) => {
                warn!(what, cause = %err, "cannot encode message; dropping it");
                return;
            }
        };
        match self
            .client
            .try_publish(topic, QoS::AtLeastOnce, false, bytes)
        {
            Ok(()) => {
                debug!(what, topic, "queued");
                if self.dropped_streak > 0 {
                    info!(
                        dropped = self.dropped_streak,
                        "publishing again after dropping messages"
                    );
                    self.dropped_streak = 0;
                }
            }
            Err(err) => {
                self.dropped_total += 1;
                self.dropped_streak += 1;
                if self.dropped_streak == 1 {
                    warn!(
                        what, cause = %err,
                        "MQTT send queue full (broker unreachable?); dropping messages until \
                         the connection is back"
                    );
                } else {
                    debug!(what, dropped = self.dropped_streak, "dropped");
                }
            }
        }
    }

    /// Retained `online` on status and retained `Info` on info, after every CONNACK. Waits
    /// for queue space: these two must not be dropped.
    async fn announce(&mut self, topics: &Topics, info: &sitewatch_proto::Info) {
        let online = Status::Online.as_str();
        let result = async {
            self.client
                .publish(&topics.status, QoS::AtLeastOnce, true, online)
                .await?;
            let json = serde_json::to_vec(info).unwrap_or_default();
            self.client
                .publish(&topics.info, QoS::AtLeastOnce, true, json)
                .await
        }
        .await;
        match result {
            Ok(()) => debug!("announced online and info"),
            Err(err) => warn!(cause = %err, "cannot queue the online announcement"),
        }
    }

    /// Retained `offline` on status, then DISCONNECT (so the broker drops the last will).
    async fn goodbye(&mut self, topics: &Topics) -> Result<(), rumqttc::ClientError> {
        self.client
            .publish(&topics.status, QoS::AtLeastOnce, true, link::OFFLINE)
            .await?;
        self.client.disconnect().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hub spawns `run` on its multi-threaded runtime, so its future must be `Send`.
    #[test]
    fn run_future_is_send() {
        fn assert_send<T: Send>(_: &T) {}
        let config = AgentConfig::new("club-1".parse().unwrap());
        let fut = run(config, CancellationToken::new());
        assert_send(&fut);
    }

    #[test]
    fn topics_follow_the_contract() {
        let mut c = AgentConfig::new("club-1".parse().unwrap());
        c.topic_prefix = sitewatch_proto::Prefix::new("acme/v1").unwrap();
        let t = Topics::new(&c, &"pi-gate".parse().unwrap());
        assert_eq!(t.status, "acme/v1/club-1/pi-gate/status");
        assert_eq!(t.info, "acme/v1/club-1/pi-gate/info");
        assert_eq!(t.heartbeat, "acme/v1/club-1/pi-gate/heartbeat");
        assert_eq!(t.metrics, "acme/v1/club-1/pi-gate/metrics");
    }
}
