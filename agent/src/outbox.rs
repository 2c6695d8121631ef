//! The outbox: data messages kept until the hub's retained `ack` covers them.
//!
//! Every metrics (and scan) message goes in when it is built and leaves only when an ack of
//! its session reaches its seq, or when the outbox is full and it is the oldest (dropped
//! and counted). It is a FIFO: [`Outbox::next_unsent`] hands out messages in order, and
//! [`Outbox::rewind`] (on every CONNACK) starts over, because a clean MQTT session keeps
//! nothing of the previous connection. Beyond `max-messages` in memory, the oldest go to
//! the optional spill file (see `outbox/spill.rs`) and are read back from there first; it survives
//! agent restarts, so messages of an older session are resent too.
//!
//! Everything here is synchronous and clock-free; the publisher drives it.

mod overflow;
mod spill;

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tracing::{info, warn};

pub use spill::{SpillError, SpillFile};

/// `[outbox]` settings.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct OutboxConfig {
    /// Most unacknowledged messages kept in memory; the oldest is dropped (and counted) first.
    #[serde(default = "default_max_messages")]
    pub max_messages: usize,
    /// Optional file where messages beyond memory are spilled, so a long outage loses less.
    #[serde(default)]
    pub spill_file: Option<PathBuf>,
    /// Size cap of the spill file in bytes.
    #[serde(default = "default_spill_max_bytes")]
    pub spill_max_bytes: u64,
    /// Seconds the hub's ack may stay still, with every kept message sent, before they are
    /// all sent again (the hub failed to store one, e.g. its disk was full).
    #[serde(default = "default_resend_after_s")]
    pub resend_after_s: u64,
}

fn default_resend_after_s() -> u64 {
    60
}

fn default_max_messages() -> usize {
    2_000
}

fn default_spill_max_bytes() -> u64 {
    16 * 1024 * 1024
}

impl Default for OutboxConfig {
    fn default() -> Self {
        Self {
            max_messages: default_max_messages(),
            spill_file: None,
            spill_max_bytes: default_spill_max_bytes(),
            resend_after_s: default_resend_after_s(),
        }
    }
}

/// Which topic a stored message goes to (resolved when it is sent, so the current ids and
/// prefix apply).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Metrics,
    Scan,
}

impl Kind {
    fn code(self) -> u8 {
        match self {
            Kind::Metrics => 1,
            Kind::Scan => 2,
        }
    }

    fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(Kind::Metrics),
            2 => Some(Kind::Scan),
            _ => None,
        }
    }
}

/// One message as handed out for sending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub session: Arc<str>,
    pub seq: u64,
    pub kind: Kind,
    /// The JSON payload, without `seq_floor` (added when sent).
    pub payload: Vec<u8>,
}

#[derive(Debug)]
enum Body {
    Memory(Vec<u8>),
    Spilled(spill::Slot),
}

#[derive(Debug)]
struct Entry {
    /// Insertion order; spilled entries are always older than in-memory ones.
    id: u64,
    session: Arc<str>,
    seq: u64,
    kind: Kind,
    body: Body,
}

/// The bounded FIFO of unacknowledged messages.
#[derive(Debug)]
pub struct Outbox {
    /// Oldest first: `entries[..spilled]` live in the spill file, the rest in memory.
    entries: VecDeque<Entry>,
    spilled: usize,
    max_messages: usize,
    spill: Option<SpillFile>,
    spill_max_bytes: u64,
    next_id: u64,
    /// Entries with an id below this were handed out on the current connection.
    cursor: u64,
    /// Messages dropped since start (full outbox, spill failures).
    dropped: u64,
    /// A drop was logged at warn level; further ones are quieter until an ack arrives.
    warned_full: bool,
}

impl Outbox {
    /// An outbox kept in memory only.
    pub fn in_memory(max_messages: usize) -> Self {
        Self {
            entries: VecDeque::new(),
            spilled: 0,
            max_messages: max_messages.max(1),
            spill: None,
            spill_max_bytes: 0,
            next_id: 0,
            cursor: 0,
            dropped: 0,
            warned_full: false,
        }
    }

    /// An outbox for `config`, with the messages an earlier run left in the spill file.
    /// A spill file that cannot be opened is logged and the outbox runs in memory only; a
    /// damaged one is logged and what can be read of it is kept.
    pub fn open(config: &OutboxConfig) -> Self {
        let mut outbox = Self::in_memory(config.max_messages);
        outbox.spill_max_bytes = config.spill_max_bytes;
        let Some(path) = &config.spill_file else {
            return outbox;
        };
        match SpillFile::open(path) {
            Ok((file, recovered)) => {
                if let Some(damage) = recovered.damage {
                    warn!(
                        cause = %damage,
                        "outbox spill file damaged; kept the {} messages before the damage, \
                         dropped the rest", recovered.records.len()
                    );
                }
                outbox.load(file, recovered.records);
            }
            Err(err) => warn!(
                cause = %err,
                "cannot open the outbox spill file; keeping unacknowledged messages in memory \
                 only — check `outbox.spill-file` and the directory's permissions"
            ),
        }
        outbox
    }

    fn load(&mut self, file: SpillFile, records: Vec<(spill::Slot, Kind, u64, String)>) {
        let mut last: Option<Arc<str>> = None;
        for (slot, kind, seq, session) in records {
            let session = match &last {
                Some(s) if **s == *session => s.clone(),
                _ => Arc::from(session),
            };
            last = Some(session.clone());
            self.entries.push_back(Entry {
                id: self.next_id,
                session,
                seq,
                kind,
                body: Body::Spilled(slot),
            });
            self.next_id += 1;
        }
        self.spilled = self.entries.len();
        if self.spilled > 0 {
            info!(
                messages = self.spilled,
                file = %file.path().display(),
                "resending unacknowledged messages kept from an earlier run"
            );
        }
        self.spill = Some(file);
    }

    /// Messages waiting for an ack.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Of [`len`](Self::len), how many are in the spill file.
    pub fn spilled(&self) -> usize {
        self.spilled
    }

    /// Messages dropped since start because the outbox was full (oldest first).
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Applies new limits (a config reload); excess messages spill or are dropped. The
    /// spill file itself only changes at restart.
    pub fn set_limits(&mut self, config: &OutboxConfig) {
        self.max_messages = config.max_messages.max(1);
        self.spill_max_bytes = config.spill_max_bytes;
        self.enforce_limit();
    }

    /// Adds a message built just now. When memory is full, the oldest in-memory message goes
    /// to the spill file, or is dropped (counted) when there is none.
    pub fn push(&mut self, message: Message) {
        self.entries.push_back(Entry {
            id: self.next_id,
            session: message.session,
            seq: message.seq,
            kind: message.kind,
            body: Body::Memory(message.payload),
        });
        self.next_id += 1;
        self.enforce_limit();
    }

    /// Forgets every message of `session` with a seq at or below `acked`; returns how many.
    pub fn ack(&mut self, session: &str, acked: u64) -> usize {
        let before = self.entries.len();
        let spilled_before = self.spilled;
        let mut index = 0;
        let mut spilled_removed = 0;
        self.entries.retain(|e| {
            let keep = !(e.seq <= acked && &*e.session == session);
            if !keep && index < spilled_before {
                spilled_removed += 1;
            }
            index += 1;
            keep
        });
        self.spilled -= spilled_removed;
        if before != self.entries.len() {
            self.warned_full = false;
        }
        if spilled_removed > 0 {
            self.spill_released();
        }
        before - self.entries.len()
    }

    /// Starts handing out from the oldest message again (a new connection).
    pub fn rewind(&mut self) {
        self.cursor = 0;
    }

    /// Whether every message was handed out on the current connection.
    pub fn all_sent(&self) -> bool {
        self.entries.back().is_none_or(|e| e.id < self.cursor)
    }

    /// The oldest message not yet handed out on this connection. A spilled message that
    /// cannot be read back is logged, dropped (counted) and skipped.
    pub fn next_unsent(&mut self) -> Option<Message> {
        loop {
            let index = self.entries.partition_point(|e| e.id < self.cursor);
            let entry = self.entries.get(index)?;
            self.cursor = entry.id + 1;
            let payload = match &entry.body {
                Body::Memory(bytes) => bytes.clone(),
                Body::Spilled(slot) => match self.read_spilled(*slot) {
                    Some(bytes) => bytes,
                    None => {
                        self.entries.remove(index);
                        self.spilled -= 1;
                        self.dropped += 1;
                        continue;
                    }
                },
            };
            return Some(Message {
                session: entry.session.clone(),
                seq: entry.seq,
                kind: entry.kind,
                payload,
            });
        }
    }

    /// Hands `message` out again on this connection (it could not be queued), and every
    /// message after it.
    pub fn unsend(&mut self, message: &Message) {
        if let Some(e) = self
            .entries
            .iter()
            .find(|e| e.seq == message.seq && e.session == message.session)
        {
            self.cursor = self.cursor.min(e.id);
        }
    }

    /// The `seq_floor` to send with a message of `session` whose seq is `seq`: one below the
    /// lowest seq of that session this outbox (or the message itself) still holds.
    pub fn seq_floor(&self, session: &str, seq: u64) -> u64 {
        self.entries
            .iter()
            .filter(|e| &*e.session == session)
            .map(|e| e.seq)
            .fold(seq, u64::min)
            .saturating_sub(1)
    }

    /// Moves every in-memory message to the spill file, if there is one (at shutdown, so
    /// they survive a restart). Returns how many were written.
    pub fn persist(&mut self) -> usize {
        if self.spill.is_none() {
            return 0;
        }
        let before = self.spilled;
        while self.spilled < self.entries.len() && self.spill.is_some() {
            self.spill_oldest_in_memory();
        }
        self.spilled.saturating_sub(before)
    }
}

#[cfg(test)]
#[path = "outbox_tests.rs"]
mod tests;
