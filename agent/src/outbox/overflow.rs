//! What the outbox does when memory is full: spill the oldest messages to the file, keep
//! the file under `spill-max-bytes`, reclaim space once acks release records, and drop
//! (and count) the oldest messages when nothing else helps.

use tracing::{debug, warn};

use super::spill::{HEADER, Slot, SpillError, SpillFile};
use super::{Body, Outbox};

impl Outbox {
    /// Spills or drops the oldest in-memory messages until memory is within its limit.
    pub(super) fn enforce_limit(&mut self) {
        while self.entries.len() - self.spilled > self.max_messages {
            if self.spill.is_some() {
                self.spill_oldest_in_memory();
            } else {
                self.entries.pop_front();
                self.note_dropped(1, "the outbox is full (`outbox.max-messages`)");
            }
        }
    }

    /// Writes the oldest in-memory message to the spill file (making room first), or drops
    /// it when it cannot be written.
    pub(super) fn spill_oldest_in_memory(&mut self) {
        let index = self.spilled;
        let Some(entry) = self.entries.get(index) else {
            return;
        };
        let Body::Memory(payload) = &entry.body else {
            return;
        };
        let need = SpillFile::record_len(&entry.session, payload);
        if HEADER + need > self.spill_max_bytes {
            self.entries.remove(index);
            self.note_dropped(1, "a message is larger than `outbox.spill-max-bytes`");
            return;
        }
        if self
            .spill
            .as_ref()
            .is_some_and(|s| s.file_bytes() + need > self.spill_max_bytes)
        {
            self.make_room(need);
        }
        let Some(spill) = self.spill.as_mut() else {
            return;
        };
        let Some(entry) = self.entries.get_mut(index) else {
            return;
        };
        let Body::Memory(payload) = &entry.body else {
            return;
        };
        match spill.append(entry.kind, entry.seq, &entry.session, payload) {
            Ok(slot) => {
                entry.body = Body::Spilled(slot);
                self.spilled += 1;
            }
            Err(err) => {
                warn!(cause = %err, "cannot write to the outbox spill file (disk full?)");
                self.entries.remove(index);
                self.note_dropped(1, "the spill file cannot be written");
            }
        }
    }

    /// Makes room for a record of `need` bytes: reclaims dead space, and when the live
    /// records alone are too many, drops the oldest until they and the new one fit in 7/8
    /// of the cap (so the next rewrite of the file is far away).
    fn make_room(&mut self, need: u64) {
        let cap = self.spill_max_bytes;
        let mut live = self.live_spilled_bytes();
        if HEADER + live + need > cap {
            let target = cap - cap / 8;
            let mut n = 0;
            while self.spilled > 0 && HEADER + live + need > target {
                if let Some(Body::Spilled(slot)) = self.entries.pop_front().map(|e| e.body) {
                    live -= u64::from(slot.len);
                }
                self.spilled -= 1;
                n += 1;
            }
            self.note_dropped(n, "the spill file reached `outbox.spill-max-bytes`");
        }
        self.compact();
    }

    /// Bytes of the records still needed.
    fn live_spilled_bytes(&self) -> u64 {
        self.spilled_slots().map(|s| u64::from(s.len)).sum()
    }

    fn spilled_slots(&self) -> impl Iterator<Item = Slot> + '_ {
        self.entries
            .iter()
            .take(self.spilled)
            .filter_map(|e| match e.body {
                Body::Spilled(slot) => Some(slot),
                Body::Memory(_) => None,
            })
    }

    /// Rewrites the spill file with only the live records.
    fn compact(&mut self) {
        let slots: Vec<Slot> = self.spilled_slots().collect();
        let Some(spill) = self.spill.as_mut() else {
            return;
        };
        match spill.compact(&slots) {
            Ok(new) => {
                for (entry, slot) in self.entries.iter_mut().zip(new) {
                    entry.body = Body::Spilled(slot);
                }
            }
            Err(err) => self.abandon_spill(err),
        }
    }

    /// Acks released spilled records: move the file's head past them, empty it when none
    /// is left, rewrite it when more than a quarter of the cap is dead space.
    pub(super) fn spill_released(&mut self) {
        let first = self.spilled_slots().next();
        let live = self.live_spilled_bytes();
        let cap = self.spill_max_bytes;
        let Some(spill) = self.spill.as_mut() else {
            return;
        };
        let result = match first {
            None => spill.reset(),
            Some(slot) => spill.set_head(slot.offset),
        };
        if let Err(err) = result {
            self.abandon_spill(err);
            return;
        }
        let dead = spill.file_bytes() - HEADER - live;
        if first.is_some() && dead > cap / 4 && dead > live {
            self.compact();
        }
    }

    /// Reads a spilled message's payload back; `None` (logged) when it cannot be.
    pub(super) fn read_spilled(&self, slot: Slot) -> Option<Vec<u8>> {
        let spill = self.spill.as_ref()?;
        match spill.read(slot) {
            Ok(record) => Some(record.payload),
            Err(err) => {
                warn!(cause = %err, "cannot read a message back from the outbox spill file; dropping it");
                None
            }
        }
    }

    /// The spill file failed: its messages are dropped (counted) and it is emptied, or
    /// given up until restart when even that fails.
    fn abandon_spill(&mut self, err: SpillError) {
        let lost = self.spilled;
        for _ in 0..lost {
            self.entries.pop_front();
        }
        self.spilled = 0;
        warn!(cause = %err, lost, "the outbox spill file failed; its messages are dropped");
        self.note_dropped(lost as u64, "the spill file failed");
        if let Some(spill) = self.spill.as_mut()
            && let Err(err) = spill.reset()
        {
            warn!(cause = %err, "outbox spill disabled until restart");
            self.spill = None;
        }
    }

    pub(super) fn note_dropped(&mut self, n: u64, why: &'static str) {
        if n == 0 {
            return;
        }
        self.dropped += n;
        if self.warned_full {
            debug!(
                dropped = n,
                total = self.dropped,
                why,
                "outbox dropped messages"
            );
        } else {
            self.warned_full = true;
            warn!(
                dropped = n,
                total = self.dropped,
                "outbox dropped its oldest unacknowledged messages: {why}; they are lost \
                 (counted in `outbox_dropped`) — raise `outbox.max-messages` or set \
                 `outbox.spill-file` to keep more during outages"
            );
        }
    }
}
