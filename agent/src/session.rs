//! The agent session: a random id chosen at process start and the shared message counter.
//!
//! The hub acknowledges stored messages per `(session, seq)`, so `seq` must be strictly
//! increasing within a session across every message kind; one atomic counter does that.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// One run of the agent process.
#[derive(Debug)]
pub struct Session {
    id: String,
    /// The last seq handed out; 0 before the first message.
    seq: AtomicU64,
}

impl Session {
    /// A new session with a random 16-hex-digit id; the first [`next_seq`](Self::next_seq)
    /// returns 1.
    pub fn new() -> Self {
        Self::with_id(random_id())
    }

    /// A session with a given id (tests, or a caller that manages ids itself).
    pub fn with_id(id: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            seq: AtomicU64::new(0),
        }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// The next sequence number, starting at 1.
    pub fn next_seq(&self) -> u64 {
        self.seq.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// The last sequence number handed out (0 when none).
    pub fn last_seq(&self) -> u64 {
        self.seq.load(Ordering::Relaxed)
    }
}

impl Default for Session {
    fn default() -> Self {
        Self::new()
    }
}

/// 64 random bits as 16 lower-case hex digits, without a random-number crate: std's
/// `RandomState` is seeded from the OS per process; time and pid are mixed in as well.
fn random_id() -> String {
    let mut h = RandomState::new().build_hasher();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    h.write_u128(now);
    h.write_u32(std::process::id());
    format!("{:016x}", h.finish())
}

/// Current Unix time in milliseconds (0 if the clock is before 1970, e.g. a Pi without RTC
/// that has not synced yet reports 1970 itself, which is still after the epoch).
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_16_hex_digits_and_differ() {
        let a = Session::new();
        let b = Session::new();
        assert_eq!(a.id().len(), 16);
        assert!(
            a.id()
                .chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        assert_ne!(a.id(), b.id());
    }

    #[test]
    fn seq_starts_at_one_and_increments() {
        let s = Session::with_id("x");
        assert_eq!(s.last_seq(), 0);
        assert_eq!(s.next_seq(), 1);
        assert_eq!(s.next_seq(), 2);
        assert_eq!(s.last_seq(), 2);
    }
}
