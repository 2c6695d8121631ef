//! One simulated agent: the real agent's behaviour (`agent/src/publisher.rs`) over a real
//! MQTT connection, with a generated node instead of collectors.
//!
//! On every CONNACK: retained `online` and `info`, the `ack` subscription (QoS 1), a
//! heartbeat, then every unacknowledged metrics message oldest first, at most [`WINDOW`]
//! awaiting their PUBACK. Heartbeats and metrics share the session's seq counter;
//! heartbeats are neither kept nor produced while disconnected; metrics are kept in the
//! outbox until an ack covers them, and every message carries `seq_floor`.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rumqttc::{AsyncClient, QoS};
use sitewatch_proto::{Ack, NodeId, NodeTopic, Prefix, SiteId, Status, Topic};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{Instant, Interval, MissedTickBehavior};
use tokio_util::sync::CancellationToken;
use tracing::debug;

use crate::backoff::Backoff;
use crate::link::{self, Endpoint, LinkEvent, OFFLINE};
use crate::outbox::{Outbox, Pending, with_seq_floor};
use crate::payload::{Intervals, NodeModel, sample_count};
use crate::record::{SeqRanges, SessionRecord};
use crate::rng::Rng;
use crate::stats::Stats;

/// Capacity of rumqttc's request queue (as the agent).
const REQUEST_QUEUE: usize = 64;
/// Most QoS 1 publishes awaiting their PUBACK (as the agent); the outbox holds the rest.
pub const WINDOW: usize = 16;
/// Events buffered between the event loop task and the agent.
const EVENT_QUEUE: usize = 256;
/// How long a clean close may take.
pub const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// Everything that makes one simulated agent.
#[derive(Debug, Clone)]
pub struct AgentSpec {
    pub site: SiteId,
    pub node: NodeId,
    pub prefix: Prefix,
    pub endpoint: Endpoint,
    pub metrics_every: Duration,
    pub heartbeat_every: Duration,
    /// When to connect for the first time (connects are spread over the ramp).
    pub connect_at: Instant,
    /// First metrics tick (phases are spread over the interval).
    pub first_metrics: Instant,
    pub extra_series: usize,
    pub outbox_max: usize,
    pub reconnect_max: Duration,
    /// Ack stall after which every kept message is sent again (the agent's
    /// `resend-after-s`).
    pub resend_after: Duration,
    pub seed: u64,
}

/// How the run steers every agent.
#[derive(Debug, Clone)]
pub struct Controls {
    /// Cancelled when agents must stop producing messages (acks are still handled).
    pub produce: CancellationToken,
    /// Cancelled when agents must close their connection and return.
    pub stop: CancellationToken,
    /// Drop connections without DISCONNECT at stop, so the broker publishes the wills.
    pub kill_style: bool,
}

struct Topics {
    client_id: String,
    status: String,
    info: String,
    heartbeat: String,
    metrics: String,
    ack: String,
}

impl Topics {
    fn new(spec: &AgentSpec) -> Self {
        let t = |kind| Topic::node(&spec.site, &spec.node, kind).format(&spec.prefix);
        Self {
            // Printable ASCII without `/ + # $`: accepted by the broker's guard.
            client_id: format!("load-{}-{}", spec.site, spec.node),
            status: t(NodeTopic::Status),
            info: t(NodeTopic::Info),
            heartbeat: t(NodeTopic::Heartbeat),
            metrics: t(NodeTopic::Metrics),
            ack: t(NodeTopic::Ack),
        }
    }
}

struct Agent {
    spec: AgentSpec,
    topics: Topics,
    stats: Arc<Stats>,
    model: NodeModel,
    session: String,
    seq: u64,
    acked: u64,
    outbox: Outbox,
    metrics_seqs: SeqRanges,
    dropped_seqs: SeqRanges,
    client: AsyncClient,
    connected: bool,
    in_flight: usize,
    /// Last time an ack freed messages (or the connection came up).
    ack_progress: Instant,
}

/// Runs one simulated agent until `controls.stop`, then closes its connection and returns
/// what it published and what the hub acknowledged.
pub async fn run(spec: AgentSpec, controls: Controls, stats: Arc<Stats>) -> SessionRecord {
    let mut rng = Rng::with_seed(spec.seed);
    let session = rng.hex(8);
    let topics = Topics::new(&spec);
    let model = NodeModel::new(&spec.node, rng.next_u64(), spec.extra_series, now_ms());
    let options = link::options(&spec.endpoint, &topics.client_id, &topics.status);
    let (client, eventloop) = AsyncClient::new(options, REQUEST_QUEUE);
    let mut agent = Agent {
        outbox: Outbox::new(spec.outbox_max),
        spec,
        topics,
        stats,
        model,
        session,
        seq: 0,
        acked: 0,
        metrics_seqs: SeqRanges::default(),
        dropped_seqs: SeqRanges::default(),
        client,
        connected: false,
        in_flight: 0,
        ack_progress: Instant::now(),
    };
    tokio::select! {
        _ = tokio::time::sleep_until(agent.spec.connect_at) => {}
        _ = controls.stop.cancelled() => return agent.record(),
    }
    let (tx, mut events) = mpsc::channel(EVENT_QUEUE);
    let closing = CancellationToken::new();
    let backoff = Backoff::new(
        Duration::from_secs(1),
        agent.spec.reconnect_max,
        Rng::with_seed(rng.next_u64()),
    );
    let driver = tokio::spawn(link::drive(
        eventloop,
        tx,
        closing.clone(),
        backoff,
        agent.stats.clone(),
    ));
    let mut heartbeat = timer(Instant::now(), agent.spec.heartbeat_every);
    let mut metrics = timer(agent.spec.first_metrics, agent.spec.metrics_every);
    loop {
        let producing = !controls.produce.is_cancelled();
        tokio::select! {
            biased;
            _ = controls.stop.cancelled() => break,
            event = events.recv() => match event {
                Some(event) => agent.on_link(event, &mut heartbeat),
                None => break,
            },
            _ = controls.produce.cancelled(), if producing => {}
            _ = heartbeat.tick(), if producing => agent.send_heartbeat(),
            _ = metrics.tick(), if producing => agent.sample(),
        }
    }
    agent
        .close(driver, closing, events, controls.kill_style)
        .await;
    agent.record()
}

fn timer(start: Instant, every: Duration) -> Interval {
    let mut t = tokio::time::interval_at(start, every);
    t.set_missed_tick_behavior(MissedTickBehavior::Delay);
    t
}

impl Agent {
    fn on_link(&mut self, event: LinkEvent, heartbeat: &mut Interval) {
        match event {
            LinkEvent::Connected => {
                if !self.connected {
                    self.stats.set_connected(true);
                }
                self.connected = true;
                self.in_flight = 0;
                self.announce();
                self.send_heartbeat();
                heartbeat.reset();
                self.outbox.rewind();
                self.ack_progress = Instant::now();
                self.pump();
            }
            LinkEvent::Lost => {
                if self.connected {
                    self.stats.set_connected(false);
                }
                self.connected = false;
                self.in_flight = 0;
            }
            LinkEvent::PubAck => {
                self.in_flight = self.in_flight.saturating_sub(1);
                self.pump();
            }
            LinkEvent::Message(payload) => self.on_ack(&payload),
        }
    }

    fn on_ack(&mut self, payload: &[u8]) {
        let Ok(ack) = sitewatch_proto::payload::from_json::<Ack>(payload) else {
            debug!(node = %self.spec.node, "ignoring an unreadable ack");
            return;
        };
        let Some(&watermark) = ack.sessions.get(&self.session) else {
            return;
        };
        if watermark <= self.acked {
            return;
        }
        self.acked = watermark;
        let now = Instant::now();
        self.ack_progress = now;
        for m in self.outbox.ack(watermark) {
            let latency = m.first_sent.map(|t| now.saturating_duration_since(t));
            self.stats.acked(m.samples, latency);
        }
    }

    /// Retained `online` and `info`, and the `ack` subscription, after every CONNACK.
    fn announce(&mut self) {
        let e = &self.spec;
        let intervals = Intervals {
            heartbeat_s: e.heartbeat_every.as_secs().max(1),
            metrics_s: e.metrics_every.as_secs_f64().round().max(1.0) as u64,
            keepalive_s: e.endpoint.keepalive.as_secs().max(1),
        };
        let info = self.model.info(&self.session, now_ms(), intervals);
        let info = serde_json::to_vec(&info).unwrap_or_default();
        let online = Status::Online.as_str().as_bytes().to_vec();
        for (topic, payload) in [(&self.topics.status, online), (&self.topics.info, info)] {
            if self
                .client
                .try_publish(topic.as_str(), QoS::AtLeastOnce, true, payload)
                .is_ok()
            {
                self.in_flight += 1;
            }
        }
        if let Err(err) = self
            .client
            .try_subscribe(self.topics.ack.as_str(), QoS::AtLeastOnce)
        {
            debug!(cause = %err, "cannot subscribe to acks until the next connect");
        }
    }

    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    fn send_heartbeat(&mut self) {
        if !self.connected {
            return;
        }
        // Like the agent: an ack that stays still while everything was sent means the hub
        // lost some; send them all again.
        if !self.outbox.is_empty()
            && self.outbox.all_sent()
            && self.ack_progress.elapsed() >= self.spec.resend_after
        {
            self.ack_progress = Instant::now();
            self.outbox.rewind();
            self.pump();
        }
        let seq = self.next_seq();
        let mut hb = self.model.heartbeat(&self.session, seq, now_ms());
        hb.seq_floor = Some(self.outbox.seq_floor(seq));
        let Ok(json) = serde_json::to_vec(&hb) else {
            return;
        };
        if self
            .client
            .try_publish(
                self.topics.heartbeat.as_str(),
                QoS::AtLeastOnce,
                false,
                json,
            )
            .is_ok()
        {
            self.in_flight += 1;
            self.stats.heartbeat();
        }
    }

    /// Builds a metrics message, keeps it in the outbox and sends what the window allows.
    fn sample(&mut self) {
        let seq = self.next_seq();
        let dropped = self.dropped_seqs.len();
        let m = self.model.metrics(&self.session, seq, now_ms(), dropped);
        let samples = u32::try_from(sample_count(&m)).unwrap_or(u32::MAX);
        let Ok(payload) = serde_json::to_vec(&m) else {
            return;
        };
        self.metrics_seqs.push(seq);
        self.stats.kept();
        let message = Pending {
            seq,
            samples,
            payload,
            first_sent: None,
        };
        if let Some(old) = self.outbox.push(message) {
            self.stats.dropped();
            self.dropped_seqs.push(old.seq);
        }
        self.pump();
    }

    /// Sends unsent outbox messages, oldest first, while the window has room.
    fn pump(&mut self) {
        while self.connected && self.in_flight < WINDOW {
            // The outbox is in seq order: every message's floor is one below the oldest.
            let floor = self.outbox.seq_floor(u64::MAX);
            let Some(m) = self.outbox.next_unsent() else {
                break;
            };
            let payload = with_seq_floor(&m.payload, floor);
            if self
                .client
                .try_publish(
                    self.topics.metrics.as_str(),
                    QoS::AtLeastOnce,
                    false,
                    payload,
                )
                .is_err()
            {
                self.outbox.unsend();
                break;
            }
            self.in_flight += 1;
            if m.first_sent.is_none() {
                m.first_sent = Some(Instant::now());
                self.stats.published(m.samples);
            } else {
                self.stats.resent();
            }
        }
    }

    /// Publishes `offline` and disconnects (or just drops the connection with `kill_style`).
    async fn close(
        &mut self,
        mut driver: JoinHandle<()>,
        closing: CancellationToken,
        mut events: mpsc::Receiver<LinkEvent>,
        kill_style: bool,
    ) {
        if self.connected {
            self.stats.set_connected(false);
            self.connected = false;
        }
        closing.cancel();
        events.close();
        if kill_style {
            driver.abort();
            return;
        }
        let _ = self.client.try_publish(
            self.topics.status.as_str(),
            QoS::AtLeastOnce,
            true,
            OFFLINE.as_bytes().to_vec(),
        );
        let _ = self.client.try_disconnect();
        if tokio::time::timeout(CLOSE_GRACE, &mut driver)
            .await
            .is_err()
        {
            driver.abort();
        }
    }

    fn record(&self) -> SessionRecord {
        SessionRecord {
            site: self.spec.site.to_string(),
            node: self.spec.node.to_string(),
            session: self.session.clone(),
            acked_seq: self.acked,
            published_seq: self.seq,
            metrics_seqs: self.metrics_seqs.clone(),
            dropped_seqs: self.dropped_seqs.clone(),
        }
    }
}

/// Unix time in milliseconds.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
