//! `sitewatch-loadgen`: simulated agents over real MQTT connections against a running hub,
//! and the raw SQLite insert rate of the machine, to put the hub's ingest in perspective.
//!
//! Code map: `cli` (flags), `run` (phases of a run), `agent` (one simulated agent),
//! `link` (its MQTT event loop), `outbox` (unacked messages), `payload` (what a node
//! publishes), `stats` (counters, latency), `probe` (`/proc` and file sizes), `report`
//! (table and JSON), `record` (the `--acked-out` file), `sqlite_limit` (raw insert rate),
//! `rlimit`, `backoff`, `rng`.

pub mod agent;
pub mod backoff;
pub mod cli;
pub mod link;
pub mod outbox;
pub mod payload;
pub mod probe;
pub mod record;
pub mod report;
pub mod rlimit;
pub mod rng;
pub mod run;
pub mod sign_cost;
pub mod sqlite_limit;
pub mod stats;

use std::time::Duration;

use anyhow::Context as _;
use tokio_util::sync::CancellationToken;

use crate::cli::{Command, PayloadArgs, SignCostArgs, SqliteLimitArgs};

/// Runs one command of the command line.
pub fn main(cli: cli::Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Run(args) => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("cannot start the async runtime")?;
            let json = args.json;
            let (report, _) = runtime.block_on(async {
                let interrupt = CancellationToken::new();
                let on_signal = interrupt.clone();
                tokio::spawn(async move {
                    if tokio::signal::ctrl_c().await.is_ok() {
                        tracing::warn!("interrupted: ending the window now");
                        on_signal.cancel();
                    }
                });
                run::run(*args, interrupt).await
            })?;
            print!("{}", report.table());
            if json {
                println!("{}", serde_json::to_string(&report)?);
            }
            runtime.shutdown_timeout(Duration::from_secs(1));
            Ok(())
        }
        Command::SqliteLimit(args) => sqlite_limit(&args),
        Command::Payload(args) => payload(&args),
        Command::SignCost(args) => sign_cost(&args),
    }
}

fn sign_cost(args: &SignCostArgs) -> anyhow::Result<()> {
    let cost = sign_cost::measure(args)?;
    print!("{}", cost.table());
    if args.json {
        println!("{}", serde_json::to_string(&cost)?);
    }
    Ok(())
}

fn sqlite_limit(args: &SqliteLimitArgs) -> anyhow::Result<()> {
    let duration = Duration::try_from_secs_f64(args.seconds)
        .ok()
        .filter(|d| !d.is_zero())
        .context("--seconds must be a positive number")?;
    let r = sqlite_limit::measure(&args.dir, args.samples_per_frame, duration)?;
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "samples_per_s": r.samples_per_s(),
                "rows_per_s": r.rows_per_s(),
                "samples_per_frame": r.samples_per_frame,
                "rows": r.rows,
                "seconds": r.seconds,
                "file_bytes": r.file_bytes,
            })
        );
    } else {
        println!(
            "raw SQLite batched inserts: {} samples/s ({} rows/s of {} samples, {} rows per \
             transaction, WAL, synchronous=NORMAL, {:.1} s)",
            report::thousands(r.samples_per_s()),
            report::thousands(r.rows_per_s()),
            r.samples_per_frame,
            sqlite_limit::ROWS_PER_TRANSACTION,
            r.seconds
        );
    }
    Ok(())
}

fn payload(args: &PayloadArgs) -> anyhow::Result<()> {
    let count = payload::steady_sample_count(args.extra_series);
    if args.count {
        println!("{count}");
        return Ok(());
    }
    let (_, node) = payload::ids("load", 0, 1)?;
    let now = agent::now_ms();
    let mut model = payload::NodeModel::new(&node, 1, args.extra_series, now);
    model.metrics("0123456789abcdef", 1, now.saturating_sub(1000), 0);
    let m = model.metrics("0123456789abcdef", 2, now, 0);
    println!("{}", serde_json::to_string_pretty(&m)?);
    eprintln!(
        "{} samples per message, {} bytes of JSON",
        count,
        serde_json::to_vec(&m)?.len()
    );
    Ok(())
}
