//! The ICMP sweep: one echo request to every address, paced and bounded, replies collected
//! in one window.
//!
//! Echo requests leave at most `rate-per-s` a second with at most `concurrency` awaiting
//! their reply; each waits `timeout-ms`. With the defaults (2000/s, 256, 500 ms) a /24 is
//! sent in ~130 ms and done ~500 ms later: hosts are never waited for one after the other.
//!
//! Retries: an address that gave no sign of life (no echo reply) is asked again, up to
//! `retries` times, but only when the kernel's neighbour table has no entry for it at all
//! (a routed network, or an entry the kernel dropped). An on-link address always has one
//! after the first echo: complete (the host answered ARP: it is there, found by `arp`) or
//! unresolved (nobody answered ARP; the kernel itself asks again only after a second, so an
//! echo retried sooner could not find it either).

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use surge_ping::{Client, SurgeError};
use tokio::sync::Semaphore;
use tokio::task::{JoinError, JoinSet};
use tokio::time::Instant;
use tracing::{debug, warn};

use super::icmp;
use super::neighbours::Neighbour;

/// How a sweep sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pace {
    pub concurrency: usize,
    pub rate_per_s: u32,
    pub timeout: Duration,
    pub retries: u32,
}

/// What a sweep saw.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct SweepResult {
    /// Round trip of each address that answered.
    pub replies: BTreeMap<Ipv4Addr, Duration>,
    /// Echo requests sent, retries included.
    pub sent: u64,
    /// Echo requests that could not be sent (no route, full neighbour table, ...).
    pub send_errors: u64,
}

/// When the `n`th (0-based) echo request of a round may leave, `rate` a second from `start`.
pub fn send_at(start: Instant, rate_per_s: u32, n: u64) -> Instant {
    let rate = u64::from(rate_per_s.max(1));
    start + Duration::from_nanos(n.saturating_mul(1_000_000_000) / rate)
}

/// The addresses of `round` worth another echo: no reply, and no neighbour entry.
pub fn retry_candidates(
    round: &[Ipv4Addr],
    replies: &BTreeMap<Ipv4Addr, Duration>,
    neighbours: &BTreeMap<Ipv4Addr, Neighbour>,
) -> Vec<Ipv4Addr> {
    round
        .iter()
        .filter(|ip| !replies.contains_key(ip) && !neighbours.contains_key(ip))
        .copied()
        .collect()
}

/// Sweeps `targets`; `neighbours` reads the kernel's neighbour table between rounds.
pub async fn sweep(
    client: &Client,
    targets: &[Ipv4Addr],
    pace: Pace,
    neighbours: impl Fn() -> BTreeMap<Ipv4Addr, Neighbour>,
) -> SweepResult {
    let mut result = SweepResult::default();
    let ident = icmp::identifier();
    let mut round: Vec<Ipv4Addr> = targets.to_vec();
    for attempt in 0..=pace.retries {
        if round.is_empty() {
            break;
        }
        let started = Instant::now();
        one_round(client, &round, pace, ident, attempt as u16, &mut result).await;
        debug!(
            attempt,
            sent = round.len(),
            replies = result.replies.len(),
            took_ms = started.elapsed().as_millis() as u64,
            "sweep round done"
        );
        if attempt < pace.retries {
            round = retry_candidates(&round, &result.replies, &neighbours());
        }
    }
    result
}

async fn one_round(
    client: &Client,
    round: &[Ipv4Addr],
    pace: Pace,
    ident: surge_ping::PingIdentifier,
    seq: u16,
    result: &mut SweepResult,
) {
    let permits = Arc::new(Semaphore::new(pace.concurrency.max(1)));
    let mut tasks = JoinSet::new();
    let start = Instant::now();
    for (n, &ip) in round.iter().enumerate() {
        tokio::time::sleep_until(send_at(start, pace.rate_per_s, n as u64)).await;
        let Ok(permit) = permits.clone().acquire_owned().await else {
            break;
        };
        let client = client.clone();
        tasks.spawn(async move {
            let reply = icmp::echo(&client, IpAddr::V4(ip), ident, seq, pace.timeout).await;
            drop(permit);
            (ip, reply)
        });
        result.sent += 1;
        while let Some(done) = tasks.try_join_next() {
            result.record(done);
        }
    }
    while let Some(done) = tasks.join_next().await {
        result.record(done);
    }
}

/// One echo's outcome: its address, and its round trip, nothing, or why it was not sent.
type Echo = (Ipv4Addr, Result<Option<Duration>, SurgeError>);

impl SweepResult {
    fn record(&mut self, done: Result<Echo, JoinError>) {
        match done {
            Ok((ip, Ok(Some(rtt)))) => {
                self.replies.entry(ip).or_insert(rtt);
            }
            Ok((_, Ok(None))) => {}
            Ok((ip, Err(err))) => {
                self.send_errors += 1;
                if self.send_errors == 1 {
                    warn!(%ip, cause = %err, "cannot send an echo request; such addresses are not found");
                }
            }
            Err(err) => debug!(cause = %err, "an echo task failed"),
        }
    }
}

/// Addresses in `targets` order with duplicates removed.
pub fn dedup(targets: impl IntoIterator<Item = Ipv4Addr>) -> Vec<Ipv4Addr> {
    let mut seen = BTreeSet::new();
    targets.into_iter().filter(|ip| seen.insert(*ip)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echoes_are_spread_at_the_rate() {
        let start = Instant::now();
        assert_eq!(send_at(start, 2000, 0), start);
        assert_eq!(send_at(start, 2000, 1), start + Duration::from_micros(500));
        assert_eq!(
            send_at(start, 2000, 254),
            start + Duration::from_millis(127)
        );
        // A zero rate cannot divide by zero.
        assert_eq!(send_at(start, 0, 2), start + Duration::from_secs(2));
    }

    #[test]
    fn only_silent_addresses_without_a_neighbour_entry_are_retried() {
        let ip = |d| Ipv4Addr::new(10, 0, 0, d);
        let round = [ip(1), ip(2), ip(3), ip(4)];
        let replies = BTreeMap::from([(ip(1), Duration::from_millis(1))]);
        let neighbours = BTreeMap::from([
            (ip(2), Neighbour::Complete("b8:27:eb:00:00:02".into())),
            (ip(3), Neighbour::Unresolved),
        ]);
        assert_eq!(retry_candidates(&round, &replies, &neighbours), [ip(4)]);
    }

    #[test]
    fn dedup_keeps_the_first_occurrence() {
        let ip = |d| Ipv4Addr::new(10, 0, 0, d);
        assert_eq!(dedup([ip(2), ip(1), ip(2)]), [ip(2), ip(1)]);
    }
}
