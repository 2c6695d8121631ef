//! Retry delays: exponential backoff with jitter. Pure: the random part is an argument.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

/// How a notifier retries a failed delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    /// Delay before the first retry (before jitter).
    pub min: Duration,
    /// Cap on any delay.
    pub max: Duration,
    /// Attempts in all, the first included.
    pub max_attempts: u32,
}

impl Retry {
    /// Delay before retry number `retry` (1 for the first), drawn in `[d/2, d]` where
    /// `d = min × 2^(retry-1)` capped at `max`: notifiers failing together (the network
    /// went down) do not retry in lock step.
    pub fn delay(&self, retry: u32, random: u64) -> Duration {
        let min = self.min.as_millis() as u64;
        let max = (self.max.as_millis() as u64).max(min);
        let d = min
            .saturating_mul(
                1u64.checked_shl(retry.saturating_sub(1))
                    .unwrap_or(u64::MAX),
            )
            .min(max)
            .max(1);
        let half = d / 2;
        Duration::from_millis(half + random % (d - half + 1))
    }
}

/// A random number for jitter, from the standard library's per-process random keys.
pub fn random() -> u64 {
    let mut h = RandomState::new().build_hasher();
    h.write_u64(0);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const R: Retry = Retry {
        min: Duration::from_secs(1),
        max: Duration::from_secs(60),
        max_attempts: 8,
    };

    #[test]
    fn doubles_up_to_the_cap() {
        assert_eq!(R.delay(1, 0), Duration::from_millis(500));
        assert_eq!(
            R.delay(1, u64::MAX),
            Duration::from_millis(500 + u64::MAX % 501)
        );
        assert_eq!(R.delay(3, 0), Duration::from_secs(2));
        assert_eq!(R.delay(30, 0), Duration::from_secs(30));
        assert_eq!(R.delay(200, 0), Duration::from_secs(30));
    }

    proptest! {
        #[test]
        fn delays_stay_within_half_and_full(retry in 1u32..100, random in any::<u64>()) {
            let d = R.delay(retry, random).as_millis() as u64;
            let full = (1000u64 << (retry - 1).min(20)).min(60_000);
            prop_assert!(d >= full / 2 && d <= full, "{d} vs {full}");
        }
    }
}
