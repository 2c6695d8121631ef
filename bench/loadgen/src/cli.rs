//! Command line of `sitewatch-loadgen`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Load generator for the sitewatch hub: simulates agents over real MQTT connections and
/// measures what the hub stores, how fast, and at what cost.
#[derive(Debug, Parser)]
#[command(name = "sitewatch-loadgen", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run N simulated agents against a hub and report throughput, latency and cost.
    Run(Box<RunArgs>),
    /// Measure the raw batched-insert rate of SQLite on this machine (the storage limit).
    SqliteLimit(SqliteLimitArgs),
    /// Print one simulated metrics payload and its number of samples.
    Payload(PayloadArgs),
    /// Measure what checking a message's signature costs the hub (bench/ingest.sh runs
    /// unsigned).
    SignCost(SignCostArgs),
}

#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// MQTT broker of the hub (its embedded broker), loopback only: mqtt://127.0.0.1:PORT.
    #[arg(long, default_value = "mqtt://127.0.0.1:1883", value_parser = parse_broker)]
    pub broker: Broker,
    /// Simulated agents (one MQTT connection each).
    #[arg(long, default_value_t = 840)]
    pub agents: usize,
    /// Seconds between two metrics messages of one agent (fractions allowed, e.g. 0.5).
    #[arg(long, default_value_t = 1.0)]
    pub interval_s: f64,
    /// Seconds between two heartbeats of one agent.
    #[arg(long, default_value_t = 10)]
    pub heartbeat_s: u64,
    /// MQTT keepalive of each agent, seconds.
    #[arg(long, default_value_t = 10)]
    pub keepalive_s: u64,
    /// Length of the measured window, seconds.
    #[arg(long, default_value_t = 60.0)]
    pub duration_s: f64,
    /// Seconds of load before the window opens (connects, caches, WAL warm up).
    #[arg(long, default_value_t = 20.0)]
    pub warmup_s: f64,
    /// First connects are spread over this many seconds [default: the lesser of 10 and
    /// warmup-s].
    #[arg(long)]
    pub ramp_s: Option<f64>,
    /// After the window: seconds to wait (without producing) for outstanding acks.
    #[arg(long, default_value_t = 3.0)]
    pub drain_s: f64,
    /// PID of the hub, to report its RSS and CPU.
    #[arg(long)]
    pub hub_pid: Option<u32>,
    /// The hub's database file (DATA_DIR/sitewatch.db), to report its growth.
    #[arg(long)]
    pub db: Option<PathBuf>,
    /// Topic prefix shared with the hub.
    #[arg(long, default_value = "sitewatch/v1")]
    pub prefix: String,
    /// Site ids are SITE_PREFIX-000, SITE_PREFIX-001, …
    #[arg(long, default_value = "load")]
    pub site_prefix: String,
    /// Number of sites the agents are spread over [default: one per 20 agents].
    #[arg(long)]
    pub sites: Option<usize>,
    /// K more filesystems and K more temperature sensors per payload (+5 samples each).
    #[arg(long, default_value_t = 0)]
    pub extra_series: usize,
    /// Unacknowledged metrics messages each agent keeps (the oldest is dropped beyond).
    #[arg(long, default_value_t = 2000)]
    pub outbox_max: usize,
    /// Longest delay between reconnect attempts, seconds (jittered from 1 s up).
    #[arg(long, default_value_t = 30)]
    pub reconnect_max_s: u64,
    /// Seconds the ack may stay still, with every kept message sent, before an agent sends
    /// them all again (the agent's `[outbox] resend-after-s`).
    #[arg(long, default_value_t = 60)]
    pub resend_after_s: u64,
    /// At exit, write one JSON line per agent session: acked and published seqs, and which
    /// seqs were metrics messages.
    #[arg(long, value_name = "FILE")]
    pub acked_out: Option<PathBuf>,
    /// Also print the report as one JSON object.
    #[arg(long)]
    pub json: bool,
    /// At the end, drop connections without DISCONNECT so the broker publishes the wills.
    #[arg(long)]
    pub kill_style: bool,
    /// Raw SQLite rate (samples/s, from `sqlite-limit`) to print the stored/raw ratio.
    #[arg(long, value_name = "SAMPLES_PER_S")]
    pub raw_samples_per_s: Option<f64>,
}

#[derive(Debug, Clone, Args)]
pub struct SqliteLimitArgs {
    /// Directory for the scratch database (use the filesystem the hub's data lives on).
    #[arg(long)]
    pub dir: PathBuf,
    /// Samples per frame (row); `sitewatch-loadgen payload --count` gives the payload's.
    #[arg(long)]
    pub samples_per_frame: usize,
    /// How long to insert.
    #[arg(long, default_value_t = 10.0)]
    pub seconds: f64,
    /// Print the result as one JSON object.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Args)]
pub struct SignCostArgs {
    /// As `run --extra-series`.
    #[arg(long, default_value_t = 0)]
    pub extra_series: usize,
    /// How long to time each step.
    #[arg(long, default_value_t = 3.0)]
    pub seconds: f64,
    /// Also print the result as one JSON object.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Args)]
pub struct PayloadArgs {
    /// As `run --extra-series`.
    #[arg(long, default_value_t = 0)]
    pub extra_series: usize,
    /// Print only the number of samples per message.
    #[arg(long)]
    pub count: bool,
}

/// A loopback MQTT broker address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broker {
    pub host: String,
    pub port: u16,
}

impl std::fmt::Display for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "mqtt://{}:{}", self.host, self.port)
    }
}

/// Parses `mqtt://HOST:PORT` (port 1883 when omitted), accepting loopback hosts only.
pub fn parse_broker(s: &str) -> Result<Broker, String> {
    let rest = s.strip_prefix("mqtt://").ok_or_else(|| {
        format!("{s:?}: use mqtt://127.0.0.1:PORT (plain MQTT; TLS is not simulated)")
    })?;
    let rest = rest.trim_end_matches('/');
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(':') => (
            h,
            p.parse::<u16>()
                .map_err(|_| format!("{s:?}: {p:?} is not a port number"))?,
        ),
        _ => (rest, 1883),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let loopback = match host {
        "localhost" => true,
        h => h.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback()),
    };
    if !loopback {
        return Err(format!(
            "{s:?}: the load generator only talks to loopback brokers ({} or {}); run it on \
             the hub's machine",
            Ipv4Addr::LOCALHOST,
            Ipv6Addr::LOCALHOST
        ));
    }
    Ok(Broker {
        host: host.to_owned(),
        port,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_urls_are_loopback_only() {
        let b = parse_broker("mqtt://127.0.0.1:18830").unwrap();
        assert_eq!((b.host.as_str(), b.port), ("127.0.0.1", 18830));
        assert_eq!(parse_broker("mqtt://localhost").unwrap().port, 1883);
        assert_eq!(parse_broker("mqtt://[::1]:5").unwrap().host, "::1");
        assert!(
            parse_broker("mqtt://192.0.2.1:1883")
                .unwrap_err()
                .contains("loopback")
        );
        assert!(
            parse_broker("tcp://127.0.0.1:1")
                .unwrap_err()
                .contains("mqtt://")
        );
        assert!(parse_broker("mqtt://127.0.0.1:x").is_err());
    }

    #[test]
    fn command_line_parses() {
        let cli = Cli::try_parse_from([
            "sitewatch-loadgen",
            "run",
            "--broker",
            "mqtt://127.0.0.1:1",
            "--agents",
            "5",
            "--interval-s",
            "0.5",
        ])
        .unwrap();
        let Command::Run(args) = cli.command else {
            panic!("not run")
        };
        assert_eq!((args.agents, args.interval_s), (5, 0.5));
    }
}
