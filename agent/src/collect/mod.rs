//! Metrics collection: one long-lived [`Collector`] kept between samples (CPU usage and
//! every rate are differences between two readings).
//!
//! CPU, memory, swap, uptime and filesystem usage come from sysinfo ([`system`],
//! [`filesystems`]); everything else is read straight from procfs/sysfs by the
//! [`kernel::KernelCollector`], whose readers are pure parse functions over file contents
//! plus thin readers rooted at a [`SysRoot`], so tests run them on recorded fixture trees:
//! disk IO ([`diskio`]), network counters and addresses ([`network`]), temperatures
//! ([`thermal`]), boot id, process count and clock sync ([`state`]), Raspberry Pi
//! throttling ([`pi`]) and WiFi signal ([`wireless`]).
//!
//! A sample reads a few dozen small files and makes no process refresh: sysinfo is never
//! asked about processes, the process count is one `/proc` readdir.

pub mod diskio;
pub mod filesystems;
pub mod kernel;
pub mod network;
pub mod pi;
pub mod state;
pub mod system;
pub mod thermal;
pub mod wireless;

use std::time::{Duration, Instant};

use sitewatch_proto::Metrics;
use sysinfo::{DiskRefreshKind, Disks, System};

pub use filesystems::FilesystemsConfig;
pub use kernel::{KernelCollector, KernelSample, SysRoot};

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
    filesystems: FilesystemsConfig,
    kernel: KernelCollector,
}

impl Collector {
    /// A collector reporting every real filesystem (see [`with_filesystems`](Self::with_filesystems)).
    pub fn new() -> Result<Self, CollectError> {
        Self::with_filesystems(FilesystemsConfig::default())
    }

    /// A collector whose filesystem list follows a node's `[filesystems]` settings. Reads
    /// every source once, so the first [`sample`](Self::sample) taken at least
    /// [`CPU_WINDOW`] later has a CPU usage figure and every rate.
    pub fn with_filesystems(filesystems: FilesystemsConfig) -> Result<Self, CollectError> {
        let mut kernel = KernelCollector::discover(SysRoot::default());
        kernel.sample(Instant::now(), &network::Addresses::new(), None);
        Ok(Self {
            system: system::primed_system()?,
            disks: Disks::new()?,
            filesystems,
            kernel,
        })
    }

    /// Refreshes every source and returns a sample numbered with the session's next seq.
    pub fn sample(&mut self, session: &Session) -> Metrics {
        system::refresh(&mut self.system);
        self.disks
            .refresh_specifics(true, DiskRefreshKind::nothing().with_storage());
        let k = self.kernel.sample(
            Instant::now(),
            &network::interface_addresses(),
            state::query_clock(),
        );
        let mut cpu = system::cpu(&self.system);
        cpu.freq_mhz = k.freq_mhz;
        Metrics {
            ts: now_ms(),
            session: session.id().to_owned(),
            seq: session.next_seq(),
            cpu: Some(cpu),
            memory: system::memory(&self.system),
            swap: Some(system::swap(&self.system)),
            filesystems: filesystems::select(filesystems::mounts(&self.disks), &self.filesystems),
            network: k.network,
            temperatures: k.temperatures,
            uptime_s: system::uptime_s(),
            disks: k.disks,
            system: Some(k.system),
            pi: k.pi,
            wifi: k.wifi,
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
