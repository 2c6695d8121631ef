//! The periodic scan task: scans on its own timer and hands each result to the publisher
//! over a channel, so a scan never delays a heartbeat or a metrics sample.

use std::time::Duration;

use sitewatch_proto::Scan;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;
use tracing::error;

use super::{ScanConfig, scan_once};

/// Delay of the first scan after the agent (or a new `[scan]`) starts: long enough for the
/// connection to come up first, short enough for an operator to see a result soon.
pub const FIRST_SCAN_AFTER: Duration = Duration::from_secs(5);

/// A running scan task; dropping it stops the task.
pub struct ScanTask {
    config: ScanConfig,
    stop: CancellationToken,
    handle: JoinHandle<()>,
}

impl ScanTask {
    /// Starts scanning `config.networks` every `interval-s` (the first after
    /// [`FIRST_SCAN_AFTER`]), sending results to `results`. Stops when `results` closes or
    /// the task is dropped.
    pub fn spawn(config: ScanConfig, results: mpsc::Sender<Scan>) -> Self {
        let stop = CancellationToken::new();
        let handle = tokio::spawn(run(config.clone(), results, stop.clone()));
        Self {
            config,
            stop,
            handle,
        }
    }

    pub fn config(&self) -> &ScanConfig {
        &self.config
    }
}

impl Drop for ScanTask {
    fn drop(&mut self) {
        self.stop.cancel();
        self.handle.abort();
    }
}

async fn run(config: ScanConfig, results: mpsc::Sender<Scan>, stop: CancellationToken) {
    let mut timer = tokio::time::interval_at(
        Instant::now() + FIRST_SCAN_AFTER,
        Duration::from_secs(config.interval_s),
    );
    timer.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = timer.tick() => {}
        }
        let scan = tokio::select! {
            _ = stop.cancelled() => return,
            scan = scan_once(&config) => scan,
        };
        match scan {
            Ok(scan) => {
                if results.send(scan).await.is_err() {
                    return;
                }
            }
            // Logged at every attempt (every interval-s): one line saying what to do.
            Err(err) => error!("LAN scan failed: {err}"),
        }
    }
}
