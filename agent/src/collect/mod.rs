//! Metrics collection: one long-lived [`Collector`] whose sysinfo state is refreshed on
//! every sample, never re-created (CPU usage and network rates are differences).

pub mod filesystems;
pub mod network;
pub mod system;

use std::time::{Duration, Instant};

use sitewatch_proto::Metrics;
use sysinfo::{Components, DiskRefreshKind, Disks, Networks, System};

use crate::session::{Session, now_ms};

/// Shortest window over which a CPU usage figure means something.
pub const CPU_WINDOW: Duration = Duration::from_secs(1);

/// Why the collector could not start.
#[derive(Debug, thiserror::Error)]
#[error("cannot read system information: {0} — the agent needs read access to /proc and /sys")]
pub struct CollectError(#[from] sysinfo::Error);

/// Everything needed to take metrics samples, kept between samples.
pub struct Collector {
    system: System,
    disks: Disks,
    networks: Networks,
    components: Components,
    net_rates: network::NetRates,
}

impl Collector {
    /// Reads every source once, so the first [`sample`](Self::sample) taken at least
    /// [`CPU_WINDOW`] later has a CPU usage figure.
    pub fn new() -> Result<Self, CollectError> {
        let mut collector = Self {
            system: system::primed_system()?,
            disks: Disks::new()?,
            networks: Networks::new_with_refreshed_list()?,
            components: Components::new_with_refreshed_list()?,
            net_rates: network::NetRates::default(),
        };
        collector
            .net_rates
            .sample(&collector.networks, Instant::now());
        Ok(collector)
    }

    /// Refreshes every source and returns a sample numbered with the session's next seq.
    pub fn sample(&mut self, session: &Session) -> Metrics {
        system::refresh(&mut self.system);
        self.disks
            .refresh_specifics(true, DiskRefreshKind::nothing().with_storage());
        self.networks.refresh(true);
        self.components.refresh(true);
        let network = self.net_rates.sample(&self.networks, Instant::now());
        Metrics {
            ts: now_ms(),
            session: session.id().to_owned(),
            seq: session.next_seq(),
            cpu: Some(system::cpu(&self.system)),
            memory: system::memory(&self.system),
            swap: Some(system::swap(&self.system)),
            filesystems: filesystems::select_real(filesystems::mounts(&self.disks)),
            network,
            temperatures: system::temperatures(&self.components),
            uptime_s: system::uptime_s(),
            ..Default::default()
        }
    }
}

/// One metrics sample with a proper CPU window (blocks for [`CPU_WINDOW`]), numbered with a
/// fresh session's first seq. Needs no broker and no config; used by `--once`.
pub fn collect_once() -> Result<Metrics, CollectError> {
    let session = Session::new();
    let mut collector = Collector::new()?;
    std::thread::sleep(CPU_WINDOW);
    Ok(collector.sample(&session))
}
