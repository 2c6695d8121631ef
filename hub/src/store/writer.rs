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
use super::watermark::Watermark;
use crate::state::NodeStatus;

/// Sessions whose watermark is kept in memory; beyond this the cache is cleared and
/// rebuilt from the database on demand.
const MAX_TRACKED_SESSIONS: usize = 50_000;

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

/// What one committed batch made durable: per node and session, the ack watermark (every
/// seq at or below it is stored or given up by the agent).
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
    watermarks: HashMap<(i64, String), Watermark>,
}

/// The caches a batch updates, borrowed together so a transaction can use them.
struct Caches<'a> {
    nodes: &'a mut HashMap<(SiteId, NodeId), i64>,
    series: &'a mut HashMap<(i64, &'static str, String), i64>,
    watermarks: &'a mut HashMap<(i64, String), Watermark>,
}

impl Writer {
    fn new(conn: Connection) -> Self {
        Self {
            conn,
            node_ids: HashMap::new(),
            series_ids: HashMap::new(),
            watermarks: HashMap::new(),
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
                    self.watermarks.clear();
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
        if self.watermarks.len() > MAX_TRACKED_SESSIONS {
            self.watermarks.clear();
        }
        let tx = self.conn.transaction()?;
        let mut caches = Caches {
            nodes: &mut self.node_ids,
            series: &mut self.series_ids,
            watermarks: &mut self.watermarks,
        };
        for op in batch.drain(..) {
            apply_op(&tx, &mut caches, op, &mut done)?;
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

/// Records message `seq` of `session` as stored and returns the session's watermark,
/// persisting it when it moved.
fn stored(
    tx: &Transaction<'_>,
    cache: &mut HashMap<(i64, String), Watermark>,
    node: i64,
    session: &str,
    seq: u64,
    seq_floor: Option<u64>,
    now_ms: u64,
) -> Result<u64, StoreError> {
    let key = (node, session.to_owned());
    if !cache.contains_key(&key) {
        let acked: u64 = tx
            .query_row(
                "SELECT acked_seq FROM agent_sessions WHERE node_id = ?1 AND session = ?2",
                params![node, session],
                |r| r.get::<_, i64>(0),
            )
            .optional()?
            .map_or(0, |v| u64::try_from(v).unwrap_or(0));
        let mut stmt = tx.prepare_cached(
            "SELECT seq FROM heartbeats WHERE node_id = ?1 AND session = ?2 AND seq > ?3
             UNION SELECT seq FROM metric_messages WHERE node_id = ?1 AND session = ?2 AND seq > ?3",
        )?;
        let above = stmt
            .query_map(params![node, session, acked as i64], |r| r.get::<_, i64>(0))?
            .filter_map(|r| r.ok().and_then(|v| u64::try_from(v).ok()))
            .collect::<Vec<_>>();
        cache.insert(key.clone(), Watermark::restore(acked, above));
    }
    let Some(w) = cache.get_mut(&key) else {
        return Ok(0);
    };
    if let Some(acked) = w.observe(seq, seq_floor) {
        tx.execute(
            "INSERT INTO agent_sessions (node_id, session, acked_seq, updated_ms)
             VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (node_id, session) DO UPDATE
             SET acked_seq = excluded.acked_seq, updated_ms = excluded.updated_ms",
            params![node, session, acked as i64, now_ms as i64],
        )?;
    }
    Ok(w.acked())
}

fn note_ack(done: &mut Committed, site: &SiteId, node: &NodeId, session: &str, acked: u64) {
    let sessions = done.acks.entry((site.clone(), node.clone())).or_default();
    let max = sessions.entry(session.to_owned()).or_insert(0);
    *max = (*max).max(acked);
}

fn apply_op(
    tx: &Transaction<'_>,
    caches: &mut Caches<'_>,
    op: WriteOp,
    done: &mut Committed,
) -> Result<(), StoreError> {
    let nodes = &mut *caches.nodes;
    let series = &mut *caches.series;
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
            let acked = stored(
                tx,
                caches.watermarks,
                id,
                &hb.session,
                hb.seq,
                hb.seq_floor,
                recv_ms,
            )?;
            note_ack(done, &site, &node, &hb.session, acked);
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
            let acked = stored(
                tx,
                caches.watermarks,
                id,
                &metrics.session,
                metrics.seq,
                metrics.seq_floor,
                recv_ms,
            )?;
            note_ack(done, &site, &node, &metrics.session, acked);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn hb(seq: u64, floor: Option<u64>) -> WriteOp {
        WriteOp::Heartbeat {
            site: SiteId::new("club").unwrap(),
            node: NodeId::new("pi").unwrap(),
            recv_ms: 1_000 + seq,
            heartbeat: Heartbeat {
                ts: seq,
                session: "s1".into(),
                seq,
                uptime_s: 1,
                seq_floor: floor,
            },
        }
    }

    /// Sends ops one by one (one batch each) and returns the ack after each commit.
    fn acks_after(path: &std::path::Path, ops: Vec<WriteOp>) -> Vec<u64> {
        let (ctx, mut crx) = mpsc::channel(64);
        let w = spawn_writer(path.to_owned(), 64, ctx).unwrap();
        let mut out = Vec::new();
        for op in ops {
            w.tx.blocking_send(op).unwrap();
            let done = crx.blocking_recv().unwrap();
            out.extend(done.acks.values().flat_map(|s| s.values().copied()));
        }
        drop(w.tx);
        w.thread.join().unwrap();
        out
    }

    #[test]
    fn acks_cover_only_contiguous_stored_messages_and_survive_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = crate::store::init(dir.path()).unwrap();
        // 2 is lost on the way: the ack stays at 1 until it arrives.
        assert_eq!(
            acks_after(&path, vec![hb(1, None), hb(3, None), hb(4, None)]),
            [1, 1, 1]
        );
        // After a hub restart the watermark and the stored seqs above it are restored.
        assert_eq!(acks_after(&path, vec![hb(2, None)]), [4]);
        // A resend of an already stored message is acked again, not stored twice.
        assert_eq!(acks_after(&path, vec![hb(3, None)]), [4]);
        // The agent gave up 5 (a heartbeat it does not keep): its floor lets the ack pass.
        assert_eq!(acks_after(&path, vec![hb(7, None), hb(6, Some(5))]), [4, 7]);
        let conn = Connection::open(&path).unwrap();
        let n: i64 = conn
            .query_row("SELECT count(*) FROM heartbeats", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 6, "seqs 1,2,3,4,6,7 stored once each");
    }
}
