//! Reconnect backoff with decorrelated jitter.
//!
//! When a hub or broker restarts, hundreds of agents lose their connection at the same
//! moment; without jitter they would all come back in lock step. "Decorrelated jitter"
//! (each delay drawn uniformly between the first delay and three times the previous one,
//! capped) spreads them out while still backing off quickly. A CONNACK resets it.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

/// Delays between reconnect attempts: random in `[first, 3 × previous]`, at most `max`.
#[derive(Debug, Clone)]
pub struct Backoff {
    first: Duration,
    max: Duration,
    previous: Duration,
    rng: XorShift,
}

impl Backoff {
    /// Smallest delay, and the scale of the first one.
    pub const FIRST: Duration = Duration::from_secs(1);
    /// Default cap (`reconnect-max-s`).
    pub const MAX: Duration = Duration::from_secs(30);

    /// A backoff capped at `max` (at least [`Self::FIRST`]), seeded from the OS.
    pub fn new(max: Duration) -> Self {
        let mut h = RandomState::new().build_hasher();
        h.write_u32(std::process::id());
        Self::with_seed(max, h.finish())
    }

    /// A reproducible backoff (tests).
    pub fn with_seed(max: Duration, seed: u64) -> Self {
        Self {
            first: Self::FIRST.min(max),
            max: max.max(Duration::from_millis(1)),
            previous: Self::FIRST.min(max),
            rng: XorShift::new(seed),
        }
    }

    /// The delay to wait now.
    pub fn next_delay(&mut self) -> Duration {
        let low = self.first.as_millis() as u64;
        let high = (self.previous.as_millis() as u64)
            .saturating_mul(3)
            .max(low + 1);
        let ms = low + self.rng.next() % (high - low);
        let d = Duration::from_millis(ms).min(self.max);
        self.previous = d.max(self.first);
        d
    }

    /// Back to short delays, after a successful connect.
    pub fn reset(&mut self) {
        self.previous = self.first;
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new(Self::MAX)
    }
}

/// xorshift64*: plenty for spreading reconnects, no random-number crate needed.
#[derive(Debug, Clone)]
struct XorShift(u64);

impl XorShift {
    fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_stay_between_first_and_max_and_grow() {
        let mut early = Duration::ZERO;
        let mut late = Duration::ZERO;
        for seed in 0..200 {
            let mut b = Backoff::with_seed(Backoff::MAX, seed);
            let delays: Vec<Duration> = (0..12).map(|_| b.next_delay()).collect();
            assert!(
                delays
                    .iter()
                    .all(|d| (Backoff::FIRST..=Backoff::MAX).contains(d)),
                "{delays:?}"
            );
            assert!(delays[0] <= Backoff::FIRST * 3, "{delays:?}");
            early += delays[0];
            late += delays[11];
        }
        // On average the delays grow well beyond the first ones.
        assert!(late > early * 4, "early {early:?}, late {late:?}");
    }

    #[test]
    fn reset_brings_delays_back_down() {
        let mut b = Backoff::with_seed(Backoff::MAX, 7);
        for _ in 0..20 {
            b.next_delay();
        }
        b.reset();
        assert!(b.next_delay() <= Backoff::FIRST * 3);
    }

    #[test]
    fn agents_do_not_retry_in_lock_step() {
        let firsts: std::collections::HashSet<Duration> = (0..20)
            .map(|seed| Backoff::with_seed(Backoff::MAX, seed).next_delay())
            .collect();
        assert!(firsts.len() > 10, "{firsts:?}");
    }

    #[test]
    fn a_small_cap_is_respected() {
        let mut b = Backoff::with_seed(Duration::from_millis(500), 3);
        for _ in 0..20 {
            assert!(b.next_delay() <= Duration::from_millis(500));
        }
    }
}
