//! Latency probes (`[probes]`): `count` echo requests to each target, `interval-ms` apart,
//! during every metrics interval; min/avg/max round trip, jitter and loss go into the
//! metrics payload as `probes`.
//!
//! The [`Prober`] keeps its ICMP sockets between rounds. A round is a future the publisher
//! runs next to the checks; every target is probed at once, each on a fixed schedule (an
//! echo that times out does not delay the next one).

use std::net::IpAddr;
use std::time::Duration;

use sitewatch_proto::Probe;
use surge_ping::Client;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::{debug, error};

use super::probe_config::{ProbeTarget, ProbesConfig};
use super::{icmp, route};

/// Latency probing state kept between metrics samples.
pub struct Prober {
    config: ProbesConfig,
    v4: Option<Client>,
    v6: Option<Client>,
    /// The missing-privilege error was logged; it is not repeated every interval.
    warned: bool,
}

impl Prober {
    pub fn new(config: ProbesConfig) -> Self {
        Self {
            config,
            v4: None,
            v6: None,
            warned: false,
        }
    }

    pub fn config(&self) -> &ProbesConfig {
        &self.config
    }

    /// A round of probes over every target, or `None` when there is nothing to probe or
    /// no ICMP socket (that error is logged once). Must be called within the runtime.
    pub fn round(&mut self) -> Option<impl Future<Output = Vec<Probe>> + Send + 'static> {
        let targets = self.config.targets();
        if targets.is_empty() {
            return None;
        }
        if self.v4.is_none() {
            match icmp::open(false) {
                Ok(client) => {
                    self.v4 = Some(client);
                    self.warned = false;
                }
                Err(err) => {
                    if !self.warned {
                        error!("latency probes disabled: {err}");
                        self.warned = true;
                    }
                    return None;
                }
            }
        }
        if self.v6.is_none()
            && targets
                .iter()
                .any(|t| !matches!(t, ProbeTarget::Ip(IpAddr::V4(_)) | ProbeTarget::Gateway))
        {
            // Host names may resolve to IPv6 only; an IPv6 socket is optional.
            self.v6 = icmp::open(true).ok();
        }
        let (v4, v6, config) = (self.v4.clone(), self.v6.clone(), self.config.clone());
        Some(async move {
            let mut tasks = JoinSet::new();
            for (index, target) in targets.into_iter().enumerate() {
                let (v4, v6, config) = (v4.clone(), v6.clone(), config.clone());
                tasks.spawn(async move { (index, probe_target(target, v4, v6, &config).await) });
            }
            let mut probes: Vec<(usize, Probe)> = Vec::new();
            while let Some(done) = tasks.join_next().await {
                if let Ok((index, Some(probe))) = done {
                    probes.push((index, probe));
                }
            }
            probes.sort_by_key(|(index, _)| *index);
            probes.into_iter().map(|(_, p)| p).collect()
        })
    }
}

/// Resolves a target (the gateway from the routing table, a host name through the
/// resolver, IPv4 preferred) and probes it; `None` when it has no address now.
async fn probe_target(
    target: ProbeTarget,
    v4: Option<Client>,
    v6: Option<Client>,
    config: &ProbesConfig,
) -> Option<Probe> {
    let ip = match &target {
        ProbeTarget::Gateway => route::default_gateway().map(IpAddr::V4),
        ProbeTarget::Ip(ip) => Some(*ip),
        ProbeTarget::Host(host) => match tokio::net::lookup_host((host.as_str(), 0)).await {
            Ok(addrs) => {
                let addrs: Vec<IpAddr> = addrs.map(|a| a.ip()).collect();
                addrs
                    .iter()
                    .find(|ip| ip.is_ipv4())
                    .or_else(|| addrs.first())
                    .copied()
            }
            Err(err) => {
                debug!(%host, cause = %err, "probe target does not resolve");
                None
            }
        },
    };
    let Some(ip) = ip else {
        debug!(
            target = target.label(),
            "no address to probe (no default gateway?)"
        );
        return None;
    };
    let client = if ip.is_ipv4() { v4 } else { v6 }?;
    let ident = icmp::identifier();
    let start = Instant::now();
    let mut echoes = JoinSet::new();
    for seq in 0..config.count {
        let at = start + Duration::from_millis(u64::from(seq) * config.interval_ms);
        let (client, timeout) = (client.clone(), Duration::from_millis(config.timeout_ms));
        echoes.spawn(async move {
            tokio::time::sleep_until(at).await;
            let rtt = icmp::echo(&client, ip, ident, seq as u16, timeout)
                .await
                .ok()
                .flatten();
            (seq, rtt)
        });
    }
    let mut rtts = vec![None; config.count as usize];
    while let Some(done) = echoes.join_next().await {
        if let Ok((seq, rtt)) = done
            && let Some(slot) = rtts.get_mut(seq as usize)
        {
            *slot = rtt;
        }
    }
    Some(summarize(target.label(), ip.to_string(), &rtts))
}

/// Milliseconds with three decimals (microseconds), as reported.
pub fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1_000_000.0).round() / 1_000.0
}

/// The statistics of one round: `rtts` in sending order, `None` for an echo lost.
pub fn summarize(target: String, ip: String, rtts: &[Option<Duration>]) -> Probe {
    let got: Vec<f64> = rtts.iter().flatten().map(|d| ms(*d)).collect();
    let sent = rtts.len() as u32;
    let received = got.len() as u32;
    let loss_pct = if sent == 0 {
        0.0
    } else {
        ((f64::from(sent - received) / f64::from(sent)) * 1000.0).round() / 10.0
    };
    let round3 = |v: f64| (v * 1000.0).round() / 1000.0;
    let (min, max, avg) = if got.is_empty() {
        (None, None, None)
    } else {
        let min = got.iter().copied().fold(f64::INFINITY, f64::min);
        let max = got.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let avg = got.iter().sum::<f64>() / got.len() as f64;
        (Some(min), Some(max), Some(round3(avg)))
    };
    let jitter = (got.len() >= 2).then(|| {
        let diffs: f64 = got.windows(2).map(|w| (w[1] - w[0]).abs()).sum();
        round3(diffs / (got.len() - 1) as f64)
    });
    Probe {
        target,
        ip,
        sent,
        received,
        loss_pct,
        rtt_min_ms: min,
        rtt_avg_ms: avg,
        rtt_max_ms: max,
        jitter_ms: jitter,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms_(v: u64) -> Option<Duration> {
        Some(Duration::from_micros(v * 1000))
    }

    #[test]
    fn statistics_of_a_round() {
        let p = summarize(
            "gateway".into(),
            "192.168.1.1".into(),
            &[ms_(1), None, ms_(3), ms_(2), None],
        );
        assert_eq!((p.sent, p.received, p.loss_pct), (5, 3, 40.0));
        assert_eq!(p.rtt_min_ms, Some(1.0));
        assert_eq!(p.rtt_max_ms, Some(3.0));
        assert_eq!(p.rtt_avg_ms, Some(2.0));
        // |3-1| and |2-3|: mean 1.5.
        assert_eq!(p.jitter_ms, Some(1.5));
        assert_eq!(p.target, "gateway");
    }

    #[test]
    fn nothing_back_means_full_loss_and_no_rtt() {
        let p = summarize("x".into(), "10.0.0.1".into(), &[None, None, None]);
        assert_eq!((p.sent, p.received, p.loss_pct), (3, 0, 100.0));
        assert_eq!(
            (p.rtt_min_ms, p.rtt_avg_ms, p.jitter_ms),
            (None, None, None)
        );
        let one = summarize("x".into(), "10.0.0.1".into(), &[ms_(4), None, None]);
        assert_eq!(one.jitter_ms, None);
        assert_eq!(one.loss_pct, 66.7);
    }

    #[test]
    fn round_trips_keep_microseconds() {
        assert_eq!(ms(Duration::from_nanos(1_234_567)), 1.235);
    }
}
