//! Ack watermarks: per agent session, the highest seq N such that every message with
//! seq ≤ N is stored — or was given up by the agent (its `seq_floor`).
//!
//! Acking the highest seq *stored* would be unsafe: if message 10 is lost between broker
//! and hub (hub reconnecting with a clean session, a failed batch) while 12 arrives, an ack
//! of 12 would make the agent forget 10 for ever. The watermark only moves over a contiguous
//! run, so an agent forgets only what is durably stored.

use std::collections::BTreeSet;

/// Seqs stored above the watermark that one session may accumulate before the oldest are
/// forgotten (they are still in the database; only the ack computation ignores them).
const MAX_PENDING: usize = 100_000;

/// Watermark state of one session.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Watermark {
    /// Every seq ≤ this is stored or abandoned by the agent.
    acked: u64,
    /// Stored seqs above `acked + 1`, waiting for the gap below them to fill.
    pending: BTreeSet<u64>,
}

impl Watermark {
    /// Resumes from a persisted watermark and the seqs stored above it.
    pub fn restore(acked: u64, stored_above: impl IntoIterator<Item = u64>) -> Self {
        let mut w = Self {
            acked,
            pending: stored_above.into_iter().filter(|s| *s > acked).collect(),
        };
        w.advance();
        w
    }

    pub fn acked(&self) -> u64 {
        self.acked
    }

    /// Records a stored (or already stored) message `seq`, with the agent's `seq_floor`
    /// when it sent one. Returns the new watermark when it moved.
    pub fn observe(&mut self, seq: u64, seq_floor: Option<u64>) -> Option<u64> {
        let before = self.acked;
        if let Some(floor) = seq_floor
            && floor > self.acked
        {
            self.acked = floor;
            self.pending = self.pending.split_off(&(floor + 1));
        }
        if seq > self.acked {
            self.pending.insert(seq);
            while self.pending.len() > MAX_PENDING {
                self.pending.pop_first();
            }
        }
        self.advance();
        (self.acked != before).then_some(self.acked)
    }

    fn advance(&mut self) {
        while self.pending.first() == Some(&(self.acked + 1)) {
            self.pending.pop_first();
            self.acked += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn moves_only_over_contiguous_runs() {
        let mut w = Watermark::default();
        assert_eq!(w.observe(1, None), Some(1));
        assert_eq!(w.observe(3, None), None, "2 is missing");
        assert_eq!(w.observe(2, None), Some(3));
        assert_eq!(w.observe(2, None), None, "duplicate");
    }

    #[test]
    fn the_agents_floor_skips_what_it_gave_up() {
        let mut w = Watermark::default();
        w.observe(1, None);
        w.observe(3, None);
        // Heartbeat 2 was lost and is not held by the agent: the next message says so.
        assert_eq!(w.observe(4, Some(2)), Some(4));
    }

    #[test]
    fn resumes_after_restart() {
        let w = Watermark::restore(5, [7, 6, 9]);
        assert_eq!(w.acked(), 7);
    }

    proptest! {
        /// Whatever the arrival order and duplicates, the watermark is exactly the end of
        /// the contiguous prefix of what arrived.
        #[test]
        fn watermark_is_the_contiguous_prefix(arrivals in proptest::collection::vec(1u64..40, 0..80)) {
            let mut w = Watermark::default();
            for s in &arrivals {
                w.observe(*s, None);
            }
            let got: BTreeSet<u64> = arrivals.iter().copied().collect();
            let mut expected = 0;
            while got.contains(&(expected + 1)) {
                expected += 1;
            }
            prop_assert_eq!(w.acked(), expected);
        }
    }
}
