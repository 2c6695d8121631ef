//! Everything read straight from procfs and sysfs, under a [`SysRoot`] that tests point at
//! recorded fixture trees.
//!
//! [`KernelCollector::discover`] lists the sensor, cpufreq and Raspberry Pi files once;
//! each [`KernelCollector::sample`] then reads only small files with known paths plus
//! `/proc/diskstats`, `/proc/net/dev`, `/proc/net/wireless` and one `/proc` readdir. The
//! two inputs that are not files (interface addresses and the kernel clock state) are
//! passed in by the caller, so a fixture run needs no live system.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use sitewatch_proto::payload::{DiskIo, NetInterface, PiHealth, SystemState, Temperature, Wifi};

use super::network::{Addresses, NetRates};
use super::state::ClockState;
use super::{diskio, network, pi, state, system, thermal, wireless};

/// Where procfs and sysfs are mounted: `/proc` and `/sys` on a live system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SysRoot {
    pub proc: PathBuf,
    pub sys: PathBuf,
}

impl Default for SysRoot {
    fn default() -> Self {
        Self {
            proc: PathBuf::from("/proc"),
            sys: PathBuf::from("/sys"),
        }
    }
}

impl SysRoot {
    /// A tree holding `proc/` and `sys/` side by side, as the test fixtures do.
    pub fn under(dir: impl AsRef<Path>) -> Self {
        let dir = dir.as_ref();
        Self {
            proc: dir.join("proc"),
            sys: dir.join("sys"),
        }
    }

    /// A path below the procfs root, e.g. `proc("net/dev")`.
    pub fn proc(&self, rel: &str) -> PathBuf {
        self.proc.join(rel)
    }

    /// A path below the sysfs root, e.g. `sys("class/thermal")`.
    pub fn sys(&self, rel: &str) -> PathBuf {
        self.sys.join(rel)
    }
}

/// A small text file without the NULs device-tree strings end with and without surrounding
/// whitespace; `None` when missing, unreadable or empty.
pub fn read_text(path: &Path) -> Option<String> {
    let bytes = fs::read(path).ok()?;
    let text = String::from_utf8_lossy(&bytes);
    let text = text.trim_matches(|c: char| c == '\0' || c.is_whitespace());
    (!text.is_empty()).then(|| text.to_owned())
}

/// A file holding one signed integer (sysfs style: `48686\n`).
pub fn read_i64(path: &Path) -> Option<i64> {
    read_text(path)?.parse().ok()
}

/// The entry names of a directory, sorted naturally (`hwmon2` before `hwmon10`); empty
/// when the directory is missing or unreadable.
pub fn dir_names(path: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(path)
        .map(|dir| {
            dir.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort_by(|a, b| natural_key(a).cmp(&natural_key(b)));
    names
}

/// Sort key that orders a trailing number numerically: `("hwmon", 10)`.
fn natural_key(name: &str) -> (&str, u64, &str) {
    let stem = name.trim_end_matches(|c: char| c.is_ascii_digit());
    let number = name[stem.len()..].parse().unwrap_or(0);
    (stem, number, name)
}

/// Millidegrees Celsius as °C rounded to 0.1.
pub fn millidegrees(milli: i64) -> f64 {
    (milli as f64 / 100.0).round() / 10.0
}

/// The kernel-file part of one metrics sample.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct KernelSample {
    pub freq_mhz: Option<f64>,
    pub disks: Vec<DiskIo>,
    pub network: Vec<NetInterface>,
    pub temperatures: Vec<Temperature>,
    pub system: SystemState,
    pub pi: Option<PiHealth>,
    pub wifi: Vec<Wifi>,
}

/// Reads the kernel's files for every sample; keeps what rates need between samples.
#[derive(Debug)]
pub struct KernelCollector {
    root: SysRoot,
    /// `scaling_cur_freq` files, one per cpufreq policy (or per core on old kernels).
    freq_files: Vec<PathBuf>,
    sensors: Vec<thermal::Sensor>,
    /// `None` on anything but a Raspberry Pi.
    pi: Option<pi::PiSources>,
    /// Constant while the process lives, so read once.
    boot_id: Option<String>,
    disks: diskio::DiskRates,
    net: NetRates,
}

impl KernelCollector {
    /// Finds the files to read under `root`. Missing sources are simply absent later.
    pub fn discover(root: SysRoot) -> Self {
        Self {
            freq_files: system::freq_files(&root),
            sensors: thermal::discover(&root),
            pi: pi::discover(&root),
            boot_id: state::boot_id(&root),
            disks: diskio::DiskRates::default(),
            net: NetRates::default(),
            root,
        }
    }

    /// The temperature sensors found at discovery, with their labels.
    pub fn sensors(&self) -> &[thermal::Sensor] {
        &self.sensors
    }

    /// Whether Raspberry Pi health sources were found.
    pub fn is_pi(&self) -> bool {
        self.pi.is_some()
    }

    /// Reads every source once. Rates are relative to the previous call (absent on the
    /// first); `addresses` and `clock` come from the caller (see the module doc).
    pub fn sample(
        &mut self,
        now: Instant,
        addresses: &Addresses,
        clock: Option<ClockState>,
    ) -> KernelSample {
        let counters = network::read_net_dev(&self.root);
        KernelSample {
            freq_mhz: system::freq_mhz(&self.freq_files),
            disks: self.disks.sample(diskio::read(&self.root), now),
            network: self.net.sample(counters, addresses, now),
            temperatures: thermal::read(&self.sensors),
            system: SystemState {
                boot_id: self.boot_id.clone(),
                process_count: state::process_count(&self.root),
                clock_synced: clock.map(ClockState::synced),
                clock_max_error_ms: clock.map(ClockState::max_error_ms),
            },
            pi: self.pi.as_ref().and_then(pi::read),
            wifi: wireless::read(&self.root),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn millidegrees_round_to_a_tenth() {
        assert_eq!(millidegrees(48_686), 48.7);
        assert_eq!(millidegrees(-5_040), -5.0);
        assert_eq!(millidegrees(110_000), 110.0);
    }

    #[test]
    fn names_sort_naturally() {
        let mut v = vec!["hwmon10", "hwmon2", "hwmon1", "name"];
        v.sort_by(|a, b| natural_key(a).cmp(&natural_key(b)));
        assert_eq!(v, ["hwmon1", "hwmon2", "hwmon10", "name"]);
    }

    #[test]
    fn missing_files_and_directories_are_absent_not_errors() {
        let root = SysRoot::under("/nonexistent/sitewatch");
        assert_eq!(read_text(&root.proc("x")), None);
        assert!(dir_names(&root.sys("class/hwmon")).is_empty());
        let mut k = KernelCollector::discover(root);
        let s = k.sample(Instant::now(), &Addresses::new(), None);
        assert_eq!(s, KernelSample::default());
    }
}
