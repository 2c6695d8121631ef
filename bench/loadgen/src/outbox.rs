//! The simulated agent's outbox: metrics messages kept until the hub's ack covers them,
//! handed out oldest first and again from the start after every reconnect, like the
//! agent's (`agent/src/outbox.rs`), for one session and in memory only.

use std::collections::VecDeque;

use tokio::time::Instant;

/// One unacknowledged metrics message.
#[derive(Debug, Clone, PartialEq)]
pub struct Pending {
    pub seq: u64,
    /// Samples the hub stores for it (`Metrics::samples`).
    pub samples: u32,
    /// JSON without `seq_floor` (added when sent, see [`with_seq_floor`]).
    pub payload: Vec<u8>,
    /// When it was first published (latency is measured from there to its ack).
    pub first_sent: Option<Instant>,
}

/// Bounded FIFO of unacknowledged messages, in seq order.
#[derive(Debug)]
pub struct Outbox {
    entries: VecDeque<Pending>,
    /// Index of the next entry to hand out on this connection.
    next: usize,
    max: usize,
}

impl Outbox {
    pub fn new(max: usize) -> Self {
        Self {
            entries: VecDeque::new(),
            next: 0,
            max: max.max(1),
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Adds a message built just now; when full, the oldest is dropped and returned.
    pub fn push(&mut self, message: Pending) -> Option<Pending> {
        self.entries.push_back(message);
        if self.entries.len() <= self.max {
            return None;
        }
        self.next = self.next.saturating_sub(1);
        self.entries.pop_front()
    }

    /// Removes and returns every message with a seq at or below `watermark`.
    pub fn ack(&mut self, watermark: u64) -> Vec<Pending> {
        let n = self.entries.partition_point(|e| e.seq <= watermark);
        self.next = self.next.saturating_sub(n);
        self.entries.drain(..n).collect()
    }

    /// Hands out from the oldest message again (a new connection).
    pub fn rewind(&mut self) {
        self.next = 0;
    }

    /// Whether every kept message was handed out on this connection.
    pub fn all_sent(&self) -> bool {
        self.next >= self.entries.len()
    }

    /// The oldest message not handed out on this connection yet.
    pub fn next_unsent(&mut self) -> Option<&mut Pending> {
        let e = self.entries.get_mut(self.next)?;
        self.next += 1;
        Some(e)
    }

    /// The last message handed out could not be queued: hand it out again next time.
    pub fn unsend(&mut self) {
        self.next = self.next.saturating_sub(1);
    }

    /// `seq_floor` for a message with `seq`: below the lowest seq still held.
    pub fn seq_floor(&self, seq: u64) -> u64 {
        self.entries
            .front()
            .map_or(seq, |e| e.seq.min(seq))
            .saturating_sub(1)
    }
}

/// The agent's own encoding of `seq_floor` into a payload.
pub use sitewatch_agent::connection::with_seq_floor;

#[cfg(test)]
mod tests {
    use super::*;

    fn p(seq: u64) -> Pending {
        Pending {
            seq,
            samples: 1,
            payload: b"{}".to_vec(),
            first_sent: None,
        }
    }

    #[test]
    fn hands_out_in_order_and_again_after_rewind() {
        let mut o = Outbox::new(10);
        for s in [2, 3, 5] {
            o.push(p(s));
        }
        assert_eq!(o.next_unsent().unwrap().seq, 2);
        assert_eq!(o.next_unsent().unwrap().seq, 3);
        o.unsend();
        assert_eq!(o.next_unsent().unwrap().seq, 3);
        assert_eq!(o.seq_floor(7), 1);
        let acked = o.ack(3);
        assert_eq!(acked.iter().map(|e| e.seq).collect::<Vec<_>>(), [2, 3]);
        assert_eq!(o.seq_floor(7), 4);
        assert_eq!(o.next_unsent().unwrap().seq, 5);
        assert!(o.next_unsent().is_none());
        o.rewind();
        assert_eq!(o.next_unsent().unwrap().seq, 5);
        o.ack(5);
        assert!(o.is_empty());
        assert_eq!(o.seq_floor(7), 6);
    }

    #[test]
    fn a_full_outbox_drops_the_oldest() {
        let mut o = Outbox::new(2);
        assert!(o.push(p(1)).is_none());
        assert!(o.push(p(2)).is_none());
        o.next_unsent();
        assert_eq!(o.push(p(3)).unwrap().seq, 1);
        assert_eq!(o.next_unsent().unwrap().seq, 2);
        assert_eq!(o.len(), 2);
    }

    #[test]
    fn seq_floor_is_spliced_first() {
        assert_eq!(
            with_seq_floor(b"{\"a\":1}", 4),
            b"{\"seq_floor\":4,\"a\":1}"
        );
        assert_eq!(with_seq_floor(b"{}", 0), b"{\"seq_floor\":0}");
        assert_eq!(with_seq_floor(b"x", 0), b"x");
    }
}
