//! Glue between ingest and the pure cores that raise alerts — the alert engine and the LAN
//! device inventory: feeds them metrics, scans, fleet events and time, then carries out
//! what they decide — stores each alert change, publishes the retained
//! per-node alert lists, hands notifications to the notifiers — and serves the API's
//! commands (silences, acknowledgements). Owned by the ingest task, so the engine has a
//! single owner and needs no lock; the API reads a snapshot from a watch channel.

use std::sync::Arc;

use serde::Serialize;
use sitewatch_proto::{Metrics, NodeId, SiteId};
use tokio::sync::{mpsc, oneshot, watch};

use crate::alert::{Alert, AlertState, Engine, Outcome, Silence};
use crate::inventory::{Changes, Device, DevicePatch, Inventory};
use crate::mqtt::Publisher;
use crate::notify::Dispatcher;
use crate::state::Fleet;
use crate::store::WriteOp;

/// What the API shows: alerts not resolved yet and the silences in force.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AlertsView {
    pub alerts: Vec<Alert>,
    pub silences: Vec<Silence>,
}

/// A request from the API, answered on its oneshot.
#[derive(Debug)]
pub enum Command {
    SetSilence(Silence, oneshot::Sender<Result<Silence, String>>),
    ExpireSilence(String, oneshot::Sender<Result<Silence, String>>),
    Acknowledge {
        fingerprint: String,
        by: String,
        reply: oneshot::Sender<Result<Alert, String>>,
    },
    PatchDevice {
        site: SiteId,
        key: String,
        patch: DevicePatch,
        reply: oneshot::Sender<Result<Device, String>>,
    },
}

/// Capacity of the API → ingest command channel.
pub const COMMAND_QUEUE: usize = 64;

pub struct Alerting {
    pub engine: Engine,
    pub dispatcher: Dispatcher,
    pub publisher: Publisher,
    pub writer: mpsc::Sender<WriteOp>,
    pub view: watch::Sender<Arc<AlertsView>>,
    pub inventory: Inventory,
}

impl Alerting {
    /// Stores, publishes and notifies what one engine call produced.
    pub async fn apply(&mut self, outcome: Outcome) {
        if outcome.is_empty() {
            return;
        }
        for a in &outcome.changes {
            if self
                .writer
                .send(WriteOp::Alert(Box::new(a.clone())))
                .await
                .is_err()
            {
                tracing::error!("store writer stopped; alert history not stored");
            }
        }
        let prefix = self.publisher.prefix().clone();
        for p in crate::notify::mqtt::state_publishes(&prefix, &self.engine, &outcome.changes) {
            self.publisher.publish_to(&p.topic, p.retain, p.payload);
        }
        for n in &outcome.notifications {
            tracing::info!(
                rule = %n.alert.rule, site = %n.alert.site,
                node = n.alert.node.as_ref().map(|n| n.as_str()).unwrap_or("-"),
                kind = n.kind.as_str(), "alert notification"
            );
            self.dispatcher.dispatch(n);
        }
        self.refresh();
    }

    /// Publishes the current alerts and silences to the API.
    pub fn refresh(&self) {
        let mut alerts: Vec<Alert> = self
            .engine
            .alerts()
            .filter(|a| a.state != AlertState::Resolved)
            .cloned()
            .collect();
        alerts.sort_by_key(|a| std::cmp::Reverse(a.started_ms));
        let silences = self.engine.silences().cloned().collect();
        self.view
            .send_replace(Arc::new(AlertsView { alerts, silences }));
    }

    pub async fn on_metrics(&mut self, site: &SiteId, node: &NodeId, m: &Metrics, now: u64) {
        let outcome = self.engine.on_metrics(site, node, m, now);
        self.apply(outcome).await;
    }

    /// Feeds the fleet's pending events (status changes, reboots, skew, flapping).
    pub async fn on_fleet(&mut self, fleet: &mut Fleet, now: u64) {
        let events = fleet.take_events();
        if events.is_empty() {
            return;
        }
        let outcome = self.engine.on_fleet_events(&events, now);
        self.apply(outcome).await;
    }

    /// Folds a LAN scan into the inventory; new devices raise events (not on a site's
    /// first scan, its baseline).
    pub async fn on_scan(
        &mut self,
        site: &SiteId,
        node: &NodeId,
        scan: &sitewatch_proto::Scan,
        now: u64,
    ) {
        // A scan resent late keeps the agent's time; a skewed agent clock ahead of ours does not.
        let seen = scan.ts.min(now);
        let changes = self.inventory.observe(site, node, scan, seen);
        self.inventory_changes(changes, now).await;
    }

    /// Devices absent for the absence window become gone.
    pub async fn tick_inventory(&mut self, now: u64) {
        let changes = self.inventory.tick(now);
        self.inventory_changes(changes, now).await;
    }

    async fn inventory_changes(&mut self, changes: Changes, now: u64) {
        for (site, device) in changes.devices {
            let op = WriteOp::Device {
                site,
                device: Box::new(device),
            };
            if self.writer.send(op).await.is_err() {
                tracing::error!("store writer stopped; device inventory not stored");
            }
        }
        for e in &changes.events {
            tracing::info!(site = %e.site, mac = %e.mac, ip = e.ip.as_deref().unwrap_or("-"), change = ?e.change, "LAN device");
            let op = WriteOp::DeviceEvent {
                at_ms: now,
                event: Box::new(e.clone()),
            };
            let _ = self.writer.send(op).await;
        }
        if !changes.events.is_empty() {
            let outcome = self.engine.on_lan_events(&changes.events, now);
            self.apply(outcome).await;
        }
    }

    pub async fn tick(&mut self, now: u64) {
        let outcome = self.engine.tick(now);
        self.apply(outcome).await;
    }

    pub async fn command(&mut self, cmd: Command, now: u64) {
        match cmd {
            Command::SetSilence(s, reply) => {
                let stored = s.clone();
                match self.engine.set_silence(s, now) {
                    Ok(outcome) => {
                        let _ = self
                            .writer
                            .send(WriteOp::Silence(Box::new(stored.clone())))
                            .await;
                        self.apply(outcome).await;
                        self.refresh();
                        let _ = reply.send(Ok(stored));
                    }
                    Err(e) => {
                        let _ = reply.send(Err(e.to_string()));
                    }
                }
            }
            Command::ExpireSilence(id, reply) => match self.engine.expire_silence(&id, now) {
                Ok((ended, outcome)) => {
                    let _ = self
                        .writer
                        .send(WriteOp::Silence(Box::new(ended.clone())))
                        .await;
                    self.apply(outcome).await;
                    self.refresh();
                    let _ = reply.send(Ok(ended));
                }
                Err(e) => {
                    let _ = reply.send(Err(e.to_string()));
                }
            },
            Command::PatchDevice {
                site,
                key,
                patch,
                reply,
            } => {
                let res = self.inventory.patch(&site, &key, &patch);
                if let Ok(d) = &res {
                    let op = WriteOp::Device {
                        site,
                        device: Box::new(d.clone()),
                    };
                    let _ = self.writer.send(op).await;
                }
                let _ = reply.send(res);
            }
            Command::Acknowledge {
                fingerprint,
                by,
                reply,
            } => match self.engine.acknowledge(&fingerprint, &by, now) {
                Ok(outcome) => {
                    self.apply(outcome).await;
                    let a = self.engine.alert(&fingerprint).cloned();
                    let _ = reply.send(a.ok_or_else(|| format!("no alert {fingerprint}")));
                }
                Err(e) => {
                    let _ = reply.send(Err(e.to_string()));
                }
            },
        }
    }
}
