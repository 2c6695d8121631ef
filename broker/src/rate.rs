//! A token bucket: the per-connection publish rate limit.
//!
//! Pure: the caller passes the time, so tests need no clock.

use std::time::{Duration, Instant};

/// Allows `burst` publishes at once and `per_second` on average after that.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    /// Tokens added per second.
    per_second: f64,
    /// Most tokens held; also the starting amount.
    burst: f64,
    /// Tokens available at `last`.
    tokens: f64,
    /// When `tokens` was last brought up to date.
    last: Instant,
}

impl TokenBucket {
    /// A full bucket. `per_second` and `burst` are at least 1 (the config checks it; 0 is
    /// raised to 1 here rather than dividing by zero).
    pub fn new(per_second: u32, burst: u32, now: Instant) -> Self {
        let burst = f64::from(burst.max(1));
        TokenBucket {
            per_second: f64::from(per_second.max(1)),
            burst,
            tokens: burst,
            last: now,
        }
    }

    /// Takes one token, or says how long to wait until one is available (then call again).
    pub fn try_take(&mut self, now: Instant) -> Result<(), Duration> {
        // A clock that goes backwards (it cannot with Instant, but callers may pass any
        // value) adds nothing.
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        if now > self.last {
            self.last = now;
        }
        self.tokens = (self.tokens + elapsed * self.per_second).min(self.burst);
        // The tolerance absorbs float rounding, so a caller that waited exactly as told
        // gets its token.
        if self.tokens >= 1.0 - 1e-9 {
            self.tokens = (self.tokens - 1.0).max(0.0);
            Ok(())
        } else {
            let wait = (1.0 - self.tokens) / self.per_second;
            // Rounded up (`from_secs_f64` truncates to whole nanoseconds), so a caller that
            // waits as told finds its token; and never less than a millisecond, so its timer
            // makes progress.
            let wait = Duration::from_secs_f64(wait) + Duration::from_micros(1);
            Err(wait.max(Duration::from_millis(1)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn burst_then_rate() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(10, 3, t0);
        for _ in 0..3 {
            assert_eq!(bucket.try_take(t0), Ok(()));
        }
        let wait = bucket.try_take(t0).unwrap_err();
        assert!(wait > Duration::from_millis(99) && wait <= Duration::from_millis(101));
        assert_eq!(bucket.try_take(t0 + wait), Ok(()));
        // A long pause refills only up to the burst.
        let later = t0 + Duration::from_secs(60);
        for _ in 0..3 {
            assert_eq!(bucket.try_take(later), Ok(()));
        }
        assert!(bucket.try_take(later).is_err());
    }

    proptest! {
        /// Whatever the arrival times, no more than `burst + per_second × elapsed` publishes
        /// pass, and a caller that waits as told always gets its token.
        #[test]
        fn never_more_than_burst_plus_rate(
            per_second in 1u32..1000,
            burst in 1u32..500,
            gaps_us in prop::collection::vec(0u64..20_000, 1..400),
        ) {
            let t0 = Instant::now();
            let mut bucket = TokenBucket::new(per_second, burst, t0);
            let mut now = t0;
            let mut passed = 0u64;
            for gap in gaps_us {
                now += Duration::from_micros(gap);
                match bucket.try_take(now) {
                    Ok(()) => passed += 1,
                    Err(wait) => {
                        prop_assert!(wait > Duration::ZERO);
                        now += wait;
                        prop_assert_eq!(bucket.try_take(now), Ok(()));
                        passed += 1;
                    }
                }
                let allowed = f64::from(burst) + now.duration_since(t0).as_secs_f64() * f64::from(per_second);
                prop_assert!(passed as f64 <= allowed + 1e-6, "{} > {}", passed, allowed);
            }
        }
    }
}
