//! Failed logins per client address: after [`MAX_FAILURES`] within [`WINDOW_MS`], that
//! address is refused until the window ends. Memory is bounded.

use std::collections::HashMap;
use std::net::IpAddr;

pub const MAX_FAILURES: u32 = 10;
pub const WINDOW_MS: u64 = 5 * 60 * 1000;
/// Addresses remembered at most; expired ones are dropped first, then all.
const MAX_ENTRIES: usize = 10_000;

#[derive(Debug, Default)]
pub struct Limiter {
    failures: HashMap<IpAddr, (u32, u64)>,
}

impl Limiter {
    /// `Some(seconds to wait)` when `ip` must not try now.
    pub fn blocked(&self, ip: IpAddr, now_ms: u64) -> Option<u64> {
        let (n, since) = self.failures.get(&ip)?;
        let end = since + WINDOW_MS;
        (*n >= MAX_FAILURES && now_ms < end).then(|| (end - now_ms).div_ceil(1000))
    }

    pub fn failed(&mut self, ip: IpAddr, now_ms: u64) {
        if self.failures.len() >= MAX_ENTRIES {
            self.failures
                .retain(|_, (_, since)| now_ms < *since + WINDOW_MS);
            if self.failures.len() >= MAX_ENTRIES {
                self.failures.clear();
            }
        }
        let e = self.failures.entry(ip).or_insert((0, now_ms));
        if now_ms >= e.1 + WINDOW_MS {
            *e = (0, now_ms);
        }
        e.0 += 1;
    }

    pub fn succeeded(&mut self, ip: IpAddr) {
        self.failures.remove(&ip);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_after_repeated_failures_until_the_window_ends() {
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let mut l = Limiter::default();
        for i in 0..MAX_FAILURES {
            assert!(l.blocked(ip, 1000 + u64::from(i)).is_none());
            l.failed(ip, 1000 + u64::from(i));
        }
        assert_eq!(l.blocked(ip, 2000), Some(299));
        assert!(l.blocked(ip, 1000 + WINDOW_MS).is_none());
        l.succeeded(ip);
        assert!(l.blocked(ip, 2000).is_none());
    }
}
