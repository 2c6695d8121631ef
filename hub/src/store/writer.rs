//! The single SQLite writer: one thread, one connection, one transaction per batch.
//!
//! Ops arrive on a bounded channel; the thread takes what is queued (up to [`MAX_BATCH`]),
//! applies it in one transaction and, after the commit, reports the (session, seq) pairs it
//! stored so the hub can publish `ack`s only for durable data.

use std::collections::HashMap;
use std::path::PathBuf;
use std::thread::JoinHandle;

use rusqlite::{Connection, OpenFlags, OptionalExtension, Transaction, params};
use sitewatch_proto::{Heartbeat, Metrics, NodeId, SiteId};
use tokio::sync::mpsc;

use super::StoreError;
use crate::state::NodeStatus;

/// Largest number of ops applied in one transaction.
const MAX_BATCH: usize = 1024;

/// One change to persist.
#[derive(Debug)]
pub enum WriteOp {
    Info {
        site: SiteId,
        node: NodeId,
        recv_ms: u64,
        json: String,
    },
    Heartbeat {
        site: SiteId,
        node: NodeId,
        recv_ms: u64,
        heartbeat: Heartbeat,
    },
    Metrics {
        site: SiteId,
        node: NodeId,
        recv_ms: u64,
        metrics: Box<Metrics>,
        json: String,
    },
    Status {
        site: SiteId,
        node: NodeId,
        at_ms: u64,
        status: NodeStatus,
        reason: &'static str,
    },
}

/// What one committed batch made durable: per node and session, the highest seq stored
/// (or already stored, for a resend).
#[derive(Debug, Default)]
pub struct Committed {
    pub acks: HashMap<(SiteId, NodeId), HashMap<String, u64>>,
}

/// Sending side of the writer plus its thread.
pub struct WriterHandle {
    pub tx: mpsc::Sender<WriteOp>,
    pub thread: JoinHandle<()>,
}

/// Starts the writer thread. It stops when every sender is dropped, after writing what
/// was queued.
pub fn spawn_writer(
    path: PathBuf,
    capacity: usize,
    committed: mpsc::Sender<Committed>,
) -> Result<WriterHandle, StoreError> {
    let conn = super::open(
        &path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    // WAL + NORMAL: a commit survives a process crash; only an OS crash can lose the last
    // transactions, and those were not acked yet if it happens before the fsync.
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    let (tx, rx) = mpsc::channel(capacity);
    let thread = std::thread::Builder::new()
        .name("sqlite-writer".into())
        .spawn(move || Writer::new(conn).run(rx, committed))
        .map_err(|e| StoreError::Join(e.to_string()))?;
    Ok(WriterHandle { tx, thread })
}

struct Writer {
    conn: Connection,
    node_ids: HashMap<(SiteId, NodeId), i64>,
    series_ids: HashMap<(i64, &'static str, String), i64>,
}

impl Writer {
    fn new(conn: Connection) -> Self {
        Self {
            conn,
            node_ids: HashMap::new(),
            series_ids: HashMap::new(),
        }
    }

    fn run(mut self, mut rx: mpsc::Receiver<WriteOp>, committed: mpsc::Sender<Committed>) {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        while let Some(first) = rx.blocking_recv() {
            batch.push(first);
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(op) => batch.push(op),
                    Err(_) => break,
                }
            }
            let n = batch.len();
            match self.apply(&mut batch) {
                Ok(done) => {
                    tracing::trace!(ops = n, "batch committed");
                    if !done.acks.is_empty() && committed.blocking_send(done).is_err() {
                        tracing::debug!("ack publisher gone; not acking");
                    }
                }
                Err(err) => {
                    // Caches may name rows of the rolled-back transaction.
                    self.node_ids.clear();
                    self.series_ids.clear();
                    tracing::error!(
                        cause = %err, ops = n,
                        "failed to store a batch; it is not acked, agents will resend it \
                         (check disk space and permissions of the data directory)"
                    );
                }
            }
            batch.clear();
        }
        tracing::debug!("writer stopped: channel closed");
    }

    fn apply(&mut self, batch: &mut Vec<WriteOp>) -> Result<Committed, StoreError> {
        let mut done = Committed::default();
        let tx = self.conn.transaction()?;
        for op in batch.drain(..) {
            apply_op(&tx, &mut self.node_ids, &mut self.series_ids, op, &mut done)?;
        }
        tx.commit()?;
        Ok(done)
    }
}

fn node_id(
    tx: &Transaction<'_>,
    cache: &mut HashMap<(SiteId, NodeId), i64>,
    site: &SiteId,
    node: &NodeId,
    now_ms: u64,
) -> Result<i64, StoreError> {
    if let Some(id) = cache.get(&(site.clone(), node.clone())) {
        return Ok(*id);
    }
    let id: i64 = tx.query_row(
        "INSERT INTO nodes (site, node, first_seen_ms) VALUES (?1, ?2, ?3)
         ON CONFLICT (site, node) DO UPDATE SET site = excluded.site
         RETURNING id",
        params![site.as_str(), node.as_str(), now_ms as i64],
        |r| r.get(0),
    )?;
    cache.insert((site.clone(), node.clone()), id);
    Ok(id)
}

fn series_id(
    tx: &Transaction<'_>,
    cache: &mut HashMap<(i64, &'static str, String), i64>,
    node: i64,
    metric: &'static str,
    labels: &str,
) -> Result<i64, StoreError> {
    let key = (node, metric, labels.to_owned());
    if let Some(id) = cache.get(&key) {
        return Ok(*id);
    }
    let existing = tx
        .query_row(
            "SELECT id FROM series WHERE node_id = ?1 AND metric = ?2 AND labels = ?3",
            params![node, metric, labels],
            |r| r.get(0),
        )
        .optional()?;
    let id = match existing {
        Some(id) => id,
        None => {
            tx.execute(
                "INSERT INTO series (node_id, metric, labels) VALUES (?1, ?2, ?3)",
                params![node, metric, labels],
            )?;
            tx.last_insert_rowid()
        }
    };
    cache.insert(key, id);
    Ok(id)
}

fn note_ack(done: &mut Committed, site: &SiteId, node: &NodeId, session: &str, seq: u64) {
    let sessions = done.acks.entry((site.clone(), node.clone())).or_default();
    let max = sessions.entry(session.to_owned()).or_insert(0);
    *max = (*max).max(seq);
}

fn apply_op(
    tx: &Transaction<'_>,
    nodes: &mut HashMap<(SiteId, NodeId), i64>,
    series: &mut HashMap<(i64, &'static str, String), i64>,
    op: WriteOp,
    done: &mut Committed,
) -> Result<(), StoreError> {
    match op {
        WriteOp::Info {
            site,
            node,
            recv_ms,
            json,
        } => {
            let id = node_id(tx, nodes, &site, &node, recv_ms)?;
            tx.execute(
                "UPDATE nodes SET info_json = ?2, info_recv_ms = ?3 WHERE id = ?1",
                params![id, json, recv_ms as i64],
            )?;
        }
        WriteOp::Heartbeat {
            site,
            node,
            recv_ms,
            heartbeat: hb,
        } => {
            let id = node_id(tx, nodes, &site, &node, recv_ms)?;
            tx.execute(
                "INSERT OR IGNORE INTO heartbeats
                 (node_id, session, seq, agent_ts_ms, recv_ms, uptime_s)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    id,
                    hb.session,
                    hb.seq as i64,
                    hb.ts as i64,
                    recv_ms as i64,
                    hb.uptime_s as i64
                ],
            )?;
            tx.execute(
                "UPDATE nodes SET last_seen_ms = max(coalesce(last_seen_ms, 0), ?2) WHERE id = ?1",
                params![id, recv_ms as i64],
            )?;
            note_ack(done, &site, &node, &hb.session, hb.seq);
        }
        WriteOp::Metrics {
            site,
            node,
            recv_ms,
            metrics,
            json,
        } => {
            let id = node_id(tx, nodes, &site, &node, recv_ms)?;
            let fresh = tx.execute(
                "INSERT OR IGNORE INTO metric_messages
                 (node_id, session, seq, agent_ts_ms, recv_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    id,
                    metrics.session,
                    metrics.seq as i64,
                    metrics.ts as i64,
                    recv_ms as i64
                ],
            )? == 1;
            if fresh {
                let mut insert = tx.prepare_cached(
                    "INSERT OR REPLACE INTO samples (series_id, ts_ms, value) VALUES (?1, ?2, ?3)",
                )?;
                for s in metrics.samples() {
                    let sid = series_id(tx, series, id, s.metric, &s.labels)?;
                    insert.execute(params![sid, metrics.ts as i64, s.value])?;
                }
                tx.execute(
                    "UPDATE nodes SET latest_metrics_json = ?2, latest_metrics_ms = ?3,
                     last_seen_ms = max(coalesce(last_seen_ms, 0), ?4)
                     WHERE id = ?1 AND coalesce(latest_metrics_ms, 0) <= ?3",
                    params![id, json, metrics.ts as i64, recv_ms as i64],
                )?;
            }
            note_ack(done, &site, &node, &metrics.session, metrics.seq);
        }
        WriteOp::Status {
            site,
            node,
            at_ms,
            status,
            reason,
        } => {
            let id = node_id(tx, nodes, &site, &node, at_ms)?;
            tx.execute(
                "UPDATE nodes SET status = ?2, status_since_ms = ?3 WHERE id = ?1",
                params![id, status.as_str(), at_ms as i64],
            )?;
            tx.execute(
                "INSERT INTO node_events (node_id, ts_ms, status, reason) VALUES (?1, ?2, ?3, ?4)",
                params![id, at_ms as i64, status.as_str(), reason],
            )?;
        }
    }
    Ok(())
}
