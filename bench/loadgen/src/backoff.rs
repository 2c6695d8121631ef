//! Reconnect delays with decorrelated jitter, as the agent does (`agent/src/backoff.rs`):
//! each delay is drawn uniformly in `[first, 3 × previous]` and capped, so a thousand
//! simulated agents that lose the hub at the same moment come back spread out.

use std::time::Duration;

use crate::rng::Rng;

#[derive(Debug, Clone)]
pub struct Backoff {
    first: Duration,
    max: Duration,
    previous: Duration,
    rng: Rng,
}

impl Backoff {
    /// Delays from `first` up to `max`, drawn from `rng`.
    pub fn new(first: Duration, max: Duration, rng: Rng) -> Self {
        let max = max.max(Duration::from_millis(1));
        let first = first.min(max);
        Self {
            first,
            max,
            previous: first,
            rng,
        }
    }

    /// The delay to wait before the next attempt.
    pub fn next_delay(&mut self) -> Duration {
        let low = self.first.as_millis() as u64;
        let high = (self.previous.as_millis() as u64)
            .saturating_mul(3)
            .max(low + 1);
        let ms = low + self.rng.below(high - low);
        let d = Duration::from_millis(ms).min(self.max);
        self.previous = d.max(self.first);
        d
    }

    /// Short delays again, after a successful connect.
    pub fn reset(&mut self) {
        self.previous = self.first;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_are_spread_bounded_and_grow() {
        let (first, max) = (Duration::from_secs(1), Duration::from_secs(30));
        let firsts: std::collections::HashSet<Duration> = (0..50)
            .map(|s| Backoff::new(first, max, Rng::with_seed(s)).next_delay())
            .collect();
        assert!(firsts.len() > 30, "agents must not retry in lock step");
        let mut b = Backoff::new(first, max, Rng::with_seed(3));
        let delays: Vec<Duration> = (0..15).map(|_| b.next_delay()).collect();
        assert!(
            delays.iter().all(|d| (first..=max).contains(d)),
            "{delays:?}"
        );
        assert!(delays[14] > delays[0], "{delays:?}");
        b.reset();
        assert!(b.next_delay() <= first * 3);
    }
}
