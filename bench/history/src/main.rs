//! `sitewatch-history-bench`: builds a fixture database holding N nodes × D days of history
//! (default 100 × 30, the fleet of the storage issue), starts the real hub on it, and times
//! `GET …/series` for a 24-hour and a 30-day range of one metric through HTTP, as the
//! dashboard asks for them. Prints a table; exits non-zero only on errors.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use sitewatch_hub::store::Retention;
use sitewatch_hub::store::fixture::{FixtureSpec, build};

#[derive(Debug, Parser)]
#[command(about = "Time history queries on a fleet-sized fixture database")]
struct Args {
    /// Directory for the fixture database (rebuilt when older than an hour or absent).
    #[arg(long, default_value = "/tmp/sitewatch-history-fixture")]
    dir: PathBuf,
    #[arg(long, default_value_t = 100)]
    nodes: usize,
    #[arg(long, default_value_t = 30)]
    days: i64,
    /// Series per node (the agent on a Pi 4 with one disk and WiFi sends about 70).
    #[arg(long, default_value_t = 72)]
    series: usize,
    #[arg(long, default_value_t = 10)]
    interval_s: i64,
    /// Queries per range.
    #[arg(long, default_value_t = 50)]
    queries: usize,
    /// The hub binary.
    #[arg(long, default_value = "target/release/sitewatch-hub")]
    hub: PathBuf,
    /// Rebuild the fixture even if a fresh one exists.
    #[arg(long)]
    rebuild: bool,
}

/// Kills the hub we started when the bench ends, however it ends.
struct Hub(Child);

impl Drop for Hub {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn now_ms() -> i64 {
    sitewatch_hub::clock::now_ms() as i64
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let db = args.dir.join("sitewatch.db");
    let fresh = std::fs::metadata(&db)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|age| age < Duration::from_secs(3600));
    if args.rebuild || !fresh {
        if args.dir.exists() {
            std::fs::remove_dir_all(&args.dir)
                .with_context(|| format!("removing the old fixture {}", args.dir.display()))?;
        }
        let spec = FixtureSpec {
            nodes: args.nodes,
            days: args.days,
            series_per_node: args.series,
            interval_ms: args.interval_s * 1000,
            now_ms: now_ms(),
            retention: Retention::default(),
        };
        eprintln!(
            "building {} nodes x {} days ({} series, {} s interval) in {} ...",
            args.nodes,
            args.days,
            args.series,
            args.interval_s,
            args.dir.display()
        );
        let t = Instant::now();
        let mut last = 0.0;
        build(&args.dir, &spec, |f| {
            if f - last >= 0.05 {
                last = f;
                eprint!("\r  {:>3.0} %", f * 100.0);
            }
        })
        .context("building the fixture")?;
        eprintln!("\r  built in {:.0} s", t.elapsed().as_secs_f64());
    }
    let db_bytes = std::fs::metadata(&db).map(|m| m.len()).unwrap_or(0);

    let http = free_port()?;
    let mqtt = free_port()?;
    let child = Command::new(&args.hub)
        .args(["--data-dir"])
        .arg(&args.dir)
        .args(["--http-listen", &format!("127.0.0.1:{http}")])
        .args(["--mqtt-listen", &format!("127.0.0.1:{mqtt}")])
        .arg("--no-local-agent")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .with_context(|| {
            format!(
                "starting {} (build it with cargo build --release)",
                args.hub.display()
            )
        })?;
    let _hub = Hub(child);
    let base = format!("http://127.0.0.1:{http}");
    let deadline = Instant::now() + Duration::from_secs(60);
    while ureq::get(&format!("{base}/healthz")).call().is_err() {
        if Instant::now() > deadline {
            bail!("the hub did not answer /healthz within 60 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }

    println!(
        "fixture: {} nodes x {} days, {} series/node, {:.2} GiB",
        args.nodes,
        args.days,
        args.series,
        db_bytes as f64 / (1u64 << 30) as f64
    );
    println!(
        "{:<10} {:>6} {:>8} {:>8} {:>9} {:>9} {:>9} {:>9}",
        "range", "tier", "step_s", "points", "p50_ms", "p95_ms", "max_ms", "target"
    );
    for (name, range_ms, target) in [
        ("24 h", 86_400_000i64, 50.0),
        ("30 days", 30 * 86_400_000i64, 100.0),
    ] {
        let mut times = Vec::with_capacity(args.queries);
        let mut shape = (String::new(), 0i64, 0usize);
        for q in 0..=args.queries {
            let n = (q * 37) % args.nodes;
            let to = now_ms();
            let url = format!(
                "{base}/api/v1/nodes/site-{}/pi-{n}/series?metric=cpu.usage_pct&from={}&to={to}",
                n / 10,
                to - range_ms
            );
            let t = Instant::now();
            let v: serde_json::Value = ureq::get(&url)
                .call()
                .with_context(|| format!("GET {url}"))?
                .body_mut()
                .read_json()?;
            let ms = t.elapsed().as_secs_f64() * 1000.0;
            let points = v["series"][0]["points"].as_array().map_or(0, |p| p.len());
            if points == 0 {
                bail!("no points for {url}: {v}");
            }
            shape = (
                v["tier"].as_str().unwrap_or("?").to_owned(),
                v["step_ms"].as_i64().unwrap_or(0),
                points,
            );
            if q > 0 {
                times.push(ms); // the first query only warms the connection pool
            }
        }
        times.sort_by(f64::total_cmp);
        println!(
            "{:<10} {:>6} {:>8} {:>8} {:>9.1} {:>9.1} {:>9.1} {:>7.0}ms",
            name,
            shape.0,
            shape.1 / 1000,
            shape.2,
            percentile(&times, 0.5),
            percentile(&times, 0.95),
            times.last().copied().unwrap_or(f64::NAN),
            target
        );
    }
    Ok(())
}
