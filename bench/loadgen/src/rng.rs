//! A cheap, seedable random source (xorshift64*) and a bounded random walk.
//!
//! Enough to make a thousand simulated nodes report values that drift like real ones,
//! spread their reconnects and break ties, without a random-number crate.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};

/// xorshift64*: fast, 64 bits of state, good enough for load shapes and jitter.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator with a reproducible sequence for `seed`.
    pub fn with_seed(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// A generator seeded from the OS (std's per-process `RandomState`) and `salt`.
    pub fn from_os(salt: u64) -> Self {
        let mut h = RandomState::new().build_hasher();
        h.write_u64(salt);
        h.write_u32(std::process::id());
        Self::with_seed(h.finish())
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `[low, high)`.
    pub fn range(&mut self, low: f64, high: f64) -> f64 {
        low + (high - low) * self.unit()
    }

    /// Uniform integer in `[0, n)`; 0 when `n` is 0.
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }

    /// `n` random bytes as lower-case hex.
    pub fn hex(&mut self, n: usize) -> String {
        let mut out = String::with_capacity(2 * n);
        while out.len() < 2 * n {
            out.push_str(&format!("{:016x}", self.next_u64()));
        }
        out.truncate(2 * n);
        out
    }
}

/// A value that drifts by at most `step` per call and stays within `[low, high]`.
#[derive(Debug, Clone, Copy)]
pub struct Walk {
    pub value: f64,
    low: f64,
    high: f64,
    step: f64,
}

impl Walk {
    /// A walk starting at a random point of `[low, high]`.
    pub fn new(rng: &mut Rng, low: f64, high: f64, step: f64) -> Self {
        Self {
            value: rng.range(low, high),
            low,
            high,
            step,
        }
    }

    /// Moves one step and returns the new value.
    pub fn next(&mut self, rng: &mut Rng) -> f64 {
        let v = self.value + rng.range(-self.step, self.step);
        // Reflect at the bounds so the walk does not stick to them.
        self.value = if v < self.low {
            (2.0 * self.low - v).min(self.high)
        } else if v > self.high {
            (2.0 * self.high - v).max(self.low)
        } else {
            v
        };
        self.value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_and_range_stay_in_bounds() {
        let mut r = Rng::with_seed(1);
        for _ in 0..10_000 {
            let u = r.unit();
            assert!((0.0..1.0).contains(&u));
            let x = r.range(-3.0, 5.0);
            assert!((-3.0..5.0).contains(&x));
            assert!(r.below(7) < 7);
        }
        assert_eq!(r.below(0), 0);
        assert_eq!(r.hex(8).len(), 16);
    }

    #[test]
    fn walks_stay_within_bounds_and_move() {
        let mut r = Rng::with_seed(2);
        let mut w = Walk::new(&mut r, 10.0, 20.0, 4.0);
        let first = w.value;
        let mut moved = false;
        for _ in 0..10_000 {
            let v = w.next(&mut r);
            assert!((10.0..=20.0).contains(&v), "{v}");
            moved |= v != first;
        }
        assert!(moved);
    }
}
