//! Which `(session, seq)` of each node ingest has already seen, so a replayed message is
//! recognised: a replayed heartbeat must not keep a dead node "online", and a replayed
//! data message is counted (the store would not store it twice anyway). Pure.
//!
//! Per node it keeps the 4 most recent sessions, each a window of the last 1,024 seqs below
//! the highest one seen (128 bytes). A seq below the window is [`Seen::TooOld`]: an
//! outbox resend after a long outage, or a replay; the store's watermark decides.

use std::collections::{HashMap, VecDeque};

use sitewatch_proto::{NodeId, SiteId};

/// Sessions remembered per node.
const SESSIONS: usize = 4;
/// Seqs remembered below the highest of a session.
const WINDOW: u64 = 1024;
const WORDS: usize = (WINDOW / 64) as usize;

/// What ingest knows about one message id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// Never seen before.
    New,
    /// Seen already: a resend or a replay.
    Duplicate,
    /// Below the remembered window.
    TooOld,
}

#[derive(Debug)]
struct Window {
    session: String,
    max: u64,
    /// Bit `i` set: seq `max - i` was seen.
    bits: [u64; WORDS],
}

impl Window {
    fn new(session: &str, seq: u64) -> Self {
        let mut bits = [0; WORDS];
        bits[0] = 1;
        Window {
            session: session.to_owned(),
            max: seq,
            bits,
        }
    }

    fn get(&self, i: u64) -> bool {
        self.bits[(i / 64) as usize] >> (i % 64) & 1 == 1
    }

    fn set(&mut self, i: u64) {
        self.bits[(i / 64) as usize] |= 1 << (i % 64);
    }

    fn shift(&mut self, by: u64) {
        if by >= WINDOW {
            self.bits = [0; WORDS];
            return;
        }
        let (words, bits) = ((by / 64) as usize, (by % 64) as u32);
        for w in (0..WORDS).rev() {
            let hi = w.checked_sub(words).map_or(0, |s| self.bits[s]);
            let lo = w.checked_sub(words + 1).map_or(0, |s| self.bits[s]);
            self.bits[w] = if bits == 0 {
                hi
            } else {
                hi << bits | lo >> (64 - bits)
            };
        }
    }

    fn observe(&mut self, seq: u64) -> Seen {
        if seq > self.max {
            self.shift(seq - self.max);
            self.max = seq;
            self.set(0);
            return Seen::New;
        }
        let back = self.max - seq;
        if back >= WINDOW {
            return Seen::TooOld;
        }
        if self.get(back) {
            Seen::Duplicate
        } else {
            self.set(back);
            Seen::New
        }
    }
}

/// The seen-message windows of every node.
#[derive(Debug, Default)]
pub struct SeenMessages {
    nodes: HashMap<(SiteId, NodeId), VecDeque<Window>>,
}

impl SeenMessages {
    /// Records `(session, seq)` of a node and says whether it was new.
    pub fn observe(&mut self, site: &SiteId, node: &NodeId, session: &str, seq: u64) -> Seen {
        let sessions = self.nodes.entry((site.clone(), node.clone())).or_default();
        if let Some(w) = sessions.iter_mut().find(|w| w.session == session) {
            return w.observe(seq);
        }
        if sessions.len() >= SESSIONS {
            sessions.pop_front();
        }
        sessions.push_back(Window::new(session, seq));
        Seen::New
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ids() -> (SiteId, NodeId) {
        (SiteId::new("a").unwrap(), NodeId::new("n").unwrap())
    }

    #[test]
    fn replays_resends_and_reordering() {
        let (s, n) = ids();
        let mut seen = SeenMessages::default();
        assert_eq!(seen.observe(&s, &n, "x", 10), Seen::New);
        assert_eq!(seen.observe(&s, &n, "x", 12), Seen::New);
        assert_eq!(seen.observe(&s, &n, "x", 11), Seen::New, "late, never seen");
        assert_eq!(seen.observe(&s, &n, "x", 11), Seen::Duplicate);
        assert_eq!(seen.observe(&s, &n, "x", 10), Seen::Duplicate);
        assert_eq!(seen.observe(&s, &n, "x", 5000), Seen::New);
        assert_eq!(seen.observe(&s, &n, "x", 12), Seen::TooOld);
        assert_eq!(seen.observe(&s, &n, "y", 1), Seen::New, "another session");
        assert_eq!(seen.observe(&s, &n, "x", 5000), Seen::Duplicate);
        for session in ["p", "q", "r"] {
            seen.observe(&s, &n, session, 1);
        }
        assert_eq!(
            seen.observe(&s, &n, "x", 5000),
            Seen::New,
            "only 4 sessions are remembered"
        );
    }

    proptest! {
        /// Against a set of every seq seen: within the window the answer is exact.
        #[test]
        fn matches_a_full_set(seqs in proptest::collection::vec(0u64..3000, 1..400)) {
            let (s, n) = ids();
            let mut seen = SeenMessages::default();
            let mut all = std::collections::BTreeSet::new();
            let mut max = 0;
            for (i, seq) in seqs.into_iter().enumerate() {
                let got = seen.observe(&s, &n, "x", seq);
                let expected = if i > 0 && seq + WINDOW <= max {
                    Seen::TooOld
                } else if all.contains(&seq) {
                    Seen::Duplicate
                } else {
                    Seen::New
                };
                prop_assert_eq!(got, expected, "seq {}", seq);
                if expected != Seen::TooOld {
                    all.insert(seq);
                }
                max = max.max(seq);
            }
        }
    }
}
