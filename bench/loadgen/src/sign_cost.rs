//! `sitewatch-loadgen sign-cost`: what checking a message's signature costs the hub, per
//! message and as a share of one core at the ingest benchmark's load, next to decoding the
//! same message. The hub requires signatures by default, while `bench/ingest.sh` runs its
//! unsigned simulated agents with `--allow-unsigned`: this is the part that run leaves out.
//!
//! It times the hub's own steps on a steady-state simulated metrics message signed with a
//! node key: `proto::sign::split` (find and decode the MAC, rebuild the body) plus
//! `NodeKey::verify` (HMAC-SHA256 over context, topic and body), and `serde_json` decoding
//! of the body into `Metrics`. The registry lookup (a hash map) is not included.

use std::hint::black_box;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use sitewatch_proto::sign::{self, NodeKey};
use sitewatch_proto::{Metrics, NodeTopic, Prefix, Topic};

use crate::cli::SignCostArgs;
use crate::payload;

/// Messages per second of `bench/ingest.sh` by default (840 agents, one message a second).
const BENCH_MESSAGES_PER_S: f64 = 840.0;

/// What `sign-cost` measured.
#[derive(Debug, serde::Serialize)]
pub struct SignCost {
    pub payload_bytes: usize,
    pub samples_per_message: usize,
    pub verify_ns: f64,
    pub decode_ns: f64,
    pub verify_core_share_at_bench_load: f64,
}

/// Runs `f` for about `time` (after a tenth of it as warm-up); nanoseconds per call.
fn per_call(time: Duration, mut f: impl FnMut()) -> f64 {
    let warm = Instant::now();
    while warm.elapsed() < time / 10 {
        f();
    }
    let start = Instant::now();
    let mut calls = 0u64;
    while start.elapsed() < time {
        for _ in 0..64 {
            f();
        }
        calls += 64;
    }
    start.elapsed().as_nanos() as f64 / calls as f64
}

pub fn measure(args: &SignCostArgs) -> anyhow::Result<SignCost> {
    let time = Duration::try_from_secs_f64(args.seconds)
        .ok()
        .filter(|t| !t.is_zero())
        .context("--seconds must be a positive number of seconds")?;
    let (site, node) = payload::ids("load", 0, 1)?;
    let now = crate::agent::now_ms();
    let mut model = payload::NodeModel::new(&node, 1, args.extra_series, now);
    model.metrics("0123456789abcdef", 1, now.saturating_sub(1000), 0);
    let metrics = model.metrics("0123456789abcdef", 2, now, 0);
    let body = serde_json::to_vec(&metrics)?;
    let topic = Topic::node(&site, &node, NodeTopic::Metrics).format(&Prefix::default());
    let key = NodeKey::from_bytes(&[7; sign::KEY_BYTES]);
    let sealed = key.seal(&topic, &body).context("cannot sign the payload")?;
    let signed = sign::split(&sealed).context("the signed payload does not split")?;
    anyhow::ensure!(
        key.verify(&topic, &signed.body, &signed.mac),
        "the signature does not verify"
    );
    let verify_ns = per_call(time, || {
        let ok = sign::split(black_box(&sealed))
            .is_some_and(|s| key.verify(black_box(&topic), &s.body, &s.mac));
        black_box(ok);
    });
    let decode_ns = per_call(time, || {
        black_box(serde_json::from_slice::<Metrics>(black_box(&body)).is_ok());
    });
    Ok(SignCost {
        payload_bytes: sealed.len(),
        samples_per_message: payload::sample_count(&metrics),
        verify_ns,
        decode_ns,
        verify_core_share_at_bench_load: verify_ns * BENCH_MESSAGES_PER_S / 1e9,
    })
}

impl SignCost {
    pub fn table(&self) -> String {
        format!(
            "signed metrics message: {} bytes, {} samples\n\
             split + verify (HMAC-SHA256): {:>8.2} µs/message\n\
             JSON decode, for comparison:  {:>8.2} µs/message\n\
             at {BENCH_MESSAGES_PER_S} messages/s (bench/ingest.sh): {:.3} % of one core for signatures\n",
            self.payload_bytes,
            self.samples_per_message,
            self.verify_ns / 1000.0,
            self.decode_ns / 1000.0,
            self.verify_core_share_at_bench_load * 100.0,
        )
    }
}
