//! The agent's main loop: announce on every connect, heartbeats and metrics on timers,
//! store-and-forward through the [`Outbox`], config reloads, a clean goodbye on shutdown.
//!
//! Order on each connection: `online`, `info`, the `ack` and `_hub/status` subscriptions
//! first, then a heartbeat, then every unacknowledged data message oldest first (at most
//! [`WINDOW`](crate::connection::WINDOW) awaiting their PUBACK), then new ones as they are
//! built. A live `online` from the hub (it reconnected, and missed what was sent while it
//! was away) sends the unacknowledged messages again. Heartbeats are liveness, not data:
//! they are not kept, and not sent while disconnected. Each message carries a `seq_floor`
//! computed when it is sent, so the hub's ack watermark can pass the seqs the agent no
//! longer holds (heartbeats, dropped messages).
//!
//! LAN scans run in their own task ([`ScanTask`]) and arrive here over a channel, to be
//! numbered and kept like metrics; latency probes run next to the checks of each sample.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use sitewatch_proto::{Ack, Heartbeat, Metrics, NodeId, Probe, Scan, Status, payload::CheckResult};
use tokio::sync::mpsc;
use tokio::time::{Instant, Interval, MissedTickBehavior};
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use crate::collect::{CPU_WINDOW, Collector, system};
use crate::config::AgentConfig;
use crate::connection::{Connection, with_seq_floor};
use crate::link::{Ending, LinkEvent, MAX_PACKET_BYTES, OFFLINE};
use crate::outbox::{Kind, Message, Outbox};
use crate::scan::Prober;
use crate::scan::schedule::ScanTask;
use crate::session::{Session, now_ms};
use crate::topics::Topics;

/// How long shutdown (or a reconnect for a reload) may take to say goodbye.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// Shortest time between two resends because the hub came back (a live `online` on
/// `_hub/status`).
const HUB_BACK_MIN_INTERVAL: Duration = Duration::from_secs(10);

/// Runs the agent until `shutdown` is cancelled, then publishes `offline`, disconnects and
/// returns `Ok`. Network errors are retried forever; only a config problem (unusable node
/// id, TLS files) or unreadable system information ends it early with an error.
pub async fn run(config: AgentConfig, shutdown: CancellationToken) -> anyhow::Result<()> {
    let (_keep, reloads) = mpsc::channel(1);
    run_with_reload(config, reloads, shutdown, || {}).await
}

/// [`run`], taking new (already validated) configurations from `reloads` (SIGHUP);
/// `started` runs once the agent is set up and its loop begins (the binary tells systemd).
pub async fn run_with_reload(
    config: AgentConfig,
    mut reloads: mpsc::Receiver<AgentConfig>,
    shutdown: CancellationToken,
    started: impl FnOnce(),
) -> anyhow::Result<()> {
    let mut agent = Agent::start(config)?;
    started();
    loop {
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            Some(new) = reloads.recv() => agent.reload(new).await,
            event = agent.conn.next_event() => match event {
                Some(event) => agent.on_link(event),
                None => {
                    let why = agent.conn.failure().await;
                    anyhow::bail!("the MQTT event loop stopped unexpectedly: {why}");
                }
            },
            _ = agent.heartbeat.tick() => agent.send_heartbeat(),
            _ = agent.metrics.tick() => agent.sample(),
            (checks, probes) = async {
                match agent.preparing.as_mut() {
                    Some(p) => (&mut p.extras).await,
                    None => std::future::pending().await,
                }
            } => {
                if let Some(p) = agent.preparing.take() {
                    agent.finish_sample(p.sample, checks, probes);
                }
            }
            Some(scan) = agent.scans.recv() => agent.store_scan(scan),
        }
    }
    agent.stop().await;
    Ok(())
}

/// What a sample waits for: its checks' results and its latency probes.
type Extras = Pin<Box<dyn Future<Output = (Vec<CheckResult>, Vec<Probe>)> + Send>>;

/// A metrics sample waiting for its checks and latency probes.
struct Preparing {
    sample: Metrics,
    extras: Extras,
}

struct Agent {
    config: AgentConfig,
    node: NodeId,
    topics: Topics,
    session: Session,
    session_id: Arc<str>,
    collector: Collector,
    outbox: Outbox,
    conn: Connection,
    /// Contents of the TLS files the connection was made with (renewed certificates
    /// reconnect on SIGHUP even under the same paths).
    tls_fingerprint: u64,
    heartbeat: Interval,
    metrics: Interval,
    preparing: Option<Preparing>,
    /// Last time the hub's ack freed outbox messages (or the connection came up).
    ack_progress: Instant,
    /// Last resend because the hub came back ([`HUB_BACK_MIN_INTERVAL`] apart at least).
    hub_back: Option<Instant>,
    /// The periodic LAN scan, when `[scan]` names networks.
    scanner: Option<ScanTask>,
    /// Where the scan task sends its results (kept to start a new task on reload).
    scans_tx: mpsc::Sender<Scan>,
    scans: mpsc::Receiver<Scan>,
    /// Latency probes, when `[probes]` or `[scan]` is configured.
    prober: Option<Prober>,
}

impl Agent {
    fn start(config: AgentConfig) -> anyhow::Result<Self> {
        let node = config.resolve_node()?;
        let session = Session::new();
        let topics = Topics::new(&config, &node);
        let collector = Collector::with_filesystems(config.filesystems.clone())
            .context("cannot start the metrics collector")?;
        info!(
            site = %config.site, %node, broker = %config.broker, session = session.id(),
            heartbeat_interval_s = config.heartbeat_interval_s,
            metrics_interval_s = config.metrics_interval_s,
            "sitewatch agent starting"
        );
        let outbox = Outbox::open(&config.outbox);
        let conn = Connection::open(&config, &topics.client_id, &topics.status)?;
        let (heartbeat, metrics) = timers(&config);
        let (scans_tx, scans) = mpsc::channel(2);
        let scanner = config
            .scan
            .enabled()
            .then(|| ScanTask::spawn(config.scan.clone(), scans_tx.clone()));
        let prober = config.probes.clone().map(Prober::new);
        Ok(Self {
            tls_fingerprint: crate::tls::fingerprint(&config.tls),
            session_id: Arc::from(session.id()),
            config,
            node,
            topics,
            session,
            collector,
            outbox,
            conn,
            heartbeat,
            metrics,
            preparing: None,
            ack_progress: Instant::now(),
            hub_back: None,
            scanner,
            scans_tx,
            scans,
            prober,
        })
    }

    fn on_link(&mut self, event: LinkEvent) {
        match event {
            LinkEvent::Connected => {
                self.announce();
                self.send_heartbeat();
                self.heartbeat.reset();
                self.outbox.rewind();
                self.ack_progress = Instant::now();
                if !self.outbox.is_empty() {
                    info!(
                        messages = self.outbox.len(),
                        "sending unacknowledged messages"
                    );
                }
                self.pump();
            }
            LinkEvent::Lost => debug!(pending = self.outbox.len(), "connection lost"),
            LinkEvent::PubAck => self.pump(),
            LinkEvent::Message { topic, payload, .. } if topic == self.topics.ack => {
                match sitewatch_proto::payload::from_json::<Ack>(&payload) {
                    Ok(ack) => {
                        let removed: usize = ack
                            .sessions
                            .iter()
                            .map(|(session, seq)| self.outbox.ack(session, *seq))
                            .sum();
                        if removed > 0 {
                            self.ack_progress = Instant::now();
                        }
                        debug!(removed, pending = self.outbox.len(), "ack");
                    }
                    Err(err) => debug!(cause = %err, "ignoring an unreadable ack"),
                }
            }
            LinkEvent::Message {
                topic,
                payload,
                retained,
            } if topic == self.topics.hub_status => {
                if hub_came_back(&payload, retained) {
                    self.hub_back();
                }
            }
            LinkEvent::Message { topic, .. } => debug!(topic, "unexpected message"),
        }
    }

    /// The hub has just (re)connected to the broker (a live `online`, not the retained
    /// copy every subscription gets): what it missed while it was away (an external
    /// broker keeps nothing for an absent subscriber) is sent again now rather than after
    /// `resend-after-s`. The hub stores each message once.
    fn hub_back(&mut self) {
        if self.outbox.is_empty() {
            return;
        }
        // Anyone who may publish on the hub's status (a broker without ACLs) could otherwise
        // make every agent replay its whole outbox at will.
        if !hub_back_allowed(self.hub_back, Instant::now()) {
            debug!("the hub is back again within {HUB_BACK_MIN_INTERVAL:?}: not resending again");
            return;
        }
        self.hub_back = Some(Instant::now());
        info!(
            messages = self.outbox.len(),
            "the hub is back on the broker; sending unacknowledged messages again"
        );
        self.ack_progress = Instant::now();
        self.outbox.rewind();
        self.pump();
    }

    /// Retained `online` and `info`, and the `ack` and hub status subscriptions, after
    /// every CONNACK.
    fn announce(&mut self) {
        let info = crate::info::gather(&self.config, &self.session);
        let info = serde_json::to_vec(&info).unwrap_or_default();
        let info = self.seal(&self.topics.info, info);
        let online = Status::Online.as_str().as_bytes().to_vec();
        for (topic, payload) in [(&self.topics.status, online), (&self.topics.info, info)] {
            if let Err(err) = self.conn.publish(topic, true, payload) {
                warn!(topic, cause = %err, "cannot queue the online announcement");
            }
        }
        self.conn.subscribe(&self.topics.ack);
        self.conn.subscribe(&self.topics.hub_status);
        debug!("announced online and info");
    }

    /// `payload` signed for `topic` with the node's key (see `proto::sign`), when it has one.
    /// Signing happens at every send, because `seq_floor` is set then.
    fn seal(&self, topic: &str, payload: Vec<u8>) -> Vec<u8> {
        let Some(key) = &self.config.signing_key else {
            return payload;
        };
        match key.key().seal(topic, &payload) {
            Ok(sealed) => sealed,
            Err(err) => {
                warn!(topic, cause = %err, "cannot sign a message; sending it unsigned");
                payload
            }
        }
    }

    /// Lowest seq this agent may still send for `session`, minus one (see `seq_floor`).
    fn floor(&self, session: &str, seq: u64) -> u64 {
        let floor = self.outbox.seq_floor(session, seq);
        match &self.preparing {
            Some(p) if session == p.sample.session => floor.min(p.sample.seq.saturating_sub(1)),
            _ => floor,
        }
    }

    fn send_heartbeat(&mut self) {
        if !self.conn.is_connected() {
            return;
        }
        self.resend_if_stalled();
        let seq = self.session.next_seq();
        let hb = Heartbeat {
            ts: now_ms(),
            session: self.session.id().to_owned(),
            seq,
            uptime_s: system::uptime_s().unwrap_or(0),
            seq_floor: Some(self.floor(self.session.id(), seq)),
        };
        let result = serde_json::to_vec(&hb)
            .map_err(|e| e.to_string())
            .and_then(|json| {
                let topic = self.topics.heartbeat.clone();
                let json = self.seal(&topic, json);
                self.conn
                    .publish(&topic, false, json)
                    .map_err(|e| e.to_string())
            });
        if let Err(err) = result {
            debug!(cause = %err, "heartbeat not sent");
        }
    }

    /// Takes a metrics sample; it is stored once its checks (if any) have run.
    fn sample(&mut self) {
        if self.preparing.is_some() {
            warn!(
                "checks still running after a whole metrics interval; skipping this sample \
                 (lower the checks' timeout-ms or raise metrics-interval-s)"
            );
            return;
        }
        let sample = self.collector.sample(&self.session);
        let probes = self.prober.as_mut().and_then(Prober::round);
        if self.config.checks.is_empty() && probes.is_none() {
            return self.finish_sample(sample, Vec::new(), Vec::new());
        }
        let checks = self.config.checks.clone();
        self.preparing = Some(Preparing {
            sample,
            extras: Box::pin(async move {
                let probes = async {
                    match probes {
                        Some(round) => round.await,
                        None => Vec::new(),
                    }
                };
                tokio::join!(crate::checks::run_all(&checks), probes)
            }),
        });
    }

    fn finish_sample(&mut self, mut sample: Metrics, checks: Vec<CheckResult>, probes: Vec<Probe>) {
        sample.checks = checks;
        sample.probes = probes;
        sample.outbox_dropped = Some(self.outbox.dropped());
        sample.seq_floor = None;
        // Tests (hub/tests/outage.rs) read this line to know every sample taken.
        debug!(seq = sample.seq, "metrics sample taken");
        self.store(Kind::Metrics, sample.seq, serde_json::to_vec(&sample));
    }

    /// Numbers a finished LAN scan and keeps it like a metrics sample.
    fn store_scan(&mut self, mut scan: Scan) {
        scan.session = self.session.id().to_owned();
        scan.seq = self.session.next_seq();
        scan.seq_floor = None;
        debug!(
            seq = scan.seq,
            hosts = scan.hosts.len(),
            "scan result queued"
        );
        self.store(Kind::Scan, scan.seq, serde_json::to_vec(&scan));
    }

    /// Puts a data message into the outbox and sends what the window allows.
    fn store(&mut self, kind: Kind, seq: u64, json: serde_json::Result<Vec<u8>>) {
        match json {
            Ok(payload) if payload.len() + 1024 <= MAX_PACKET_BYTES => {
                self.outbox.push(Message {
                    session: self.session_id.clone(),
                    seq,
                    kind,
                    payload,
                });
                self.pump();
            }
            Ok(payload) => error!(
                seq,
                bytes = payload.len(),
                "message larger than the MQTT packet limit; dropping it"
            ),
            Err(err) => error!(seq, cause = %err, "cannot encode a message; dropping it"),
        }
    }

    /// Sends every unacknowledged message again when the hub's ack has not moved for
    /// `[outbox] resend-after-s` although all were sent on this connection: the hub could not store
    /// some of them (disk full, a failed batch) and its ack waits for them.
    fn resend_if_stalled(&mut self) {
        if self.outbox.is_empty()
            || !self.outbox.all_sent()
            || self.ack_progress.elapsed() < Duration::from_secs(self.config.outbox.resend_after_s)
        {
            return;
        }
        info!(
            messages = self.outbox.len(),
            waited_s = self.ack_progress.elapsed().as_secs(),
            "no acknowledgement from the hub; sending unacknowledged messages again"
        );
        self.ack_progress = Instant::now();
        self.outbox.rewind();
        self.pump();
    }

    /// Sends unsent outbox messages, oldest first, while the window has room.
    fn pump(&mut self) {
        while self.conn.has_room() {
            let Some(m) = self.outbox.next_unsent() else {
                break;
            };
            let payload = with_seq_floor(&m.payload, self.floor(&m.session, m.seq));
            let topic = match m.kind {
                Kind::Metrics => &self.topics.metrics,
                Kind::Scan => &self.topics.scan,
            };
            let payload = self.seal(topic, payload);
            if let Err(err) = self.conn.publish(topic, false, payload) {
                debug!(cause = %err, seq = m.seq, "cannot queue; retrying later");
                self.outbox.unsend(&m);
                break;
            }
        }
    }

    async fn reload(&mut self, new: AgentConfig) {
        let mut plan = crate::reload::plan(&self.config, &new);
        let tls_fingerprint = crate::tls::fingerprint(&new.tls);
        if new.broker.is_tls() && tls_fingerprint != self.tls_fingerprint {
            plan.changed.push("tls (file contents)");
            plan.reconnect = true;
        }
        if plan.is_noop() {
            info!("configuration reloaded: nothing changed");
            return;
        }
        for key in &plan.needs_restart {
            warn!(key, "this setting changes only when the agent restarts");
        }
        if plan.reconnect {
            let node = match new.resolve_node() {
                Ok(node) => node,
                Err(err) => return error!(cause = %err, "reload refused; keeping the old config"),
            };
            let topics = Topics::new(&new, &node);
            let options = match crate::link::options(&new, &topics.client_id, &topics.status) {
                Ok(options) => options,
                Err(err) => return error!(cause = %err, "reload refused; keeping the old config"),
            };
            // Same node: no `offline` (it is only reconnecting). A renamed node is gone. The
            // old connection ends before the new one starts: a broker that sees one client
            // id connect twice may publish a last will.
            let goodbye = plan
                .identity_changed
                .then_some((self.topics.status.as_str(), OFFLINE));
            self.conn.close(goodbye, SHUTDOWN_GRACE).await;
            self.conn = Connection::start(options, &new);
            self.node = node;
            self.topics = topics;
            self.tls_fingerprint = tls_fingerprint;
        }
        self.outbox.set_limits(&new.outbox);
        if new.filesystems != self.config.filesystems {
            match Collector::with_filesystems(new.filesystems.clone()) {
                Ok(collector) => self.collector = collector,
                Err(err) => {
                    warn!(cause = %err, "cannot apply the new [filesystems]; keeping the old filter")
                }
            }
        }
        if new.scan != self.config.scan {
            // Dropping the old task stops it (a scan in progress is abandoned).
            self.scanner = None;
            self.scanner = new
                .scan
                .enabled()
                .then(|| ScanTask::spawn(new.scan.clone(), self.scans_tx.clone()));
        }
        if new.probes != self.config.probes {
            self.prober = new.probes.clone().map(Prober::new);
        }
        self.config = new;
        if plan.intervals_changed {
            (self.heartbeat, self.metrics) = timers(&self.config);
        }
        info!(
            changed = ?plan.changed, reconnect = plan.reconnect, node = %self.node,
            "configuration reloaded"
        );
    }

    async fn stop(mut self) {
        info!("shutting down: publishing offline and disconnecting");
        let goodbye = Some((self.topics.status.as_str(), OFFLINE));
        let ending = self.conn.close(goodbye, SHUTDOWN_GRACE).await;
        let (pending, dropped) = (self.outbox.len(), self.outbox.dropped());
        let kept = self.outbox.persist();
        match ending {
            Ending::Disconnected => info!(
                pending,
                kept_in_spill_file = kept,
                dropped,
                "offline published; agent stopped"
            ),
            Ending::Unreachable => warn!(
                pending,
                kept_in_spill_file = kept,
                dropped,
                "broker unreachable while shutting down, `offline` not published (the broker \
                 publishes the last will if it still holds this session); agent stopped"
            ),
        }
    }
}

/// Whether a message on `_hub/status` says the hub has just (re)connected: a live `online`,
/// not the retained copy every new subscription gets.
fn hub_came_back(payload: &[u8], retained: bool) -> bool {
    !retained && payload.trim_ascii() == Status::Online.as_str().as_bytes()
}

/// Whether a resend for the hub coming back may happen at `now`, the last one having been
/// at `last` ([`HUB_BACK_MIN_INTERVAL`] apart at least).
fn hub_back_allowed(last: Option<Instant>, now: Instant) -> bool {
    last.is_none_or(|last| now.duration_since(last) >= HUB_BACK_MIN_INTERVAL)
}

/// Heartbeat timer (first tick at once; skipped until connected) and metrics timer (first
/// sample after one CPU window).
fn timers(config: &AgentConfig) -> (Interval, Interval) {
    let mut heartbeat = tokio::time::interval(Duration::from_secs(config.heartbeat_interval_s));
    heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut metrics = tokio::time::interval_at(
        Instant::now() + CPU_WINDOW,
        Duration::from_secs(config.metrics_interval_s),
    );
    metrics.set_missed_tick_behavior(MissedTickBehavior::Delay);
    (heartbeat, metrics)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_live_online_of_the_hub_means_it_came_back() {
        assert!(hub_came_back(b"online", false));
        assert!(
            !hub_came_back(b"online", true),
            "the retained copy of a subscription"
        );
        assert!(!hub_came_back(b"offline", false));
        assert!(!hub_came_back(b"", false));
        let t0 = Instant::now();
        assert!(hub_back_allowed(None, t0));
        assert!(!hub_back_allowed(Some(t0), t0 + Duration::from_secs(9)));
        assert!(hub_back_allowed(Some(t0), t0 + HUB_BACK_MIN_INTERVAL));
    }

    /// The hub spawns `run` on its multi-threaded runtime, so its future must be `Send`.
    #[test]
    fn run_future_is_send() {
        fn assert_send<T: Send>(_: &T) {}
        let config = AgentConfig::new("club-1".parse().unwrap());
        let fut = run(config, CancellationToken::new());
        assert_send(&fut);
    }
}
