//! CPU, load, memory, swap and uptime from one long-lived sysinfo `System`, and the CPU
//! frequency from cpufreq.
//!
//! CPU usage is a difference between two readings of `/proc/stat`, so the `System` must be
//! refreshed once before the first sample and then kept, not re-created.

use std::path::PathBuf;

use sitewatch_proto::payload::{Cpu, Memory, Swap};
use sysinfo::{CpuRefreshKind, MemoryRefreshKind, RefreshKind, System};

use super::kernel::{SysRoot, dir_names, read_text};

/// What to refresh on every sample: CPU usage and RAM/swap, nothing about processes.
fn refresh_kind() -> RefreshKind {
    RefreshKind::nothing()
        .with_cpu(CpuRefreshKind::nothing().with_usage())
        .with_memory(MemoryRefreshKind::nothing().with_ram().with_swap())
}

/// A `System` that has been refreshed once, so the next refresh yields CPU usage.
pub fn primed_system() -> Result<System, sysinfo::Error> {
    System::new_with_specifics(refresh_kind())
}

/// Refreshes CPU and memory figures.
pub fn refresh(system: &mut System) {
    system.refresh_specifics(refresh_kind());
}

/// CPU usage since the previous refresh and the load averages (0 when unreadable);
/// `freq_mhz` is left for the caller (see [`freq_mhz`]).
pub fn cpu(system: &System) -> Cpu {
    let load = System::load_average().unwrap_or_default();
    Cpu {
        usage_pct: finite_pct(system.global_cpu_usage()),
        per_core_pct: system
            .cpus()
            .iter()
            .map(|c| finite_pct(c.usage()))
            .collect(),
        load_1: load.one,
        load_5: load.five,
        load_15: load.fifteen,
        freq_mhz: None,
    }
}

/// RAM figures; `None` when the kernel reported no memory at all.
pub fn memory(system: &System) -> Option<Memory> {
    let total = system.total_memory();
    if total == 0 {
        return None;
    }
    let used = system.used_memory().min(total);
    Some(Memory {
        total_bytes: total,
        used_bytes: used,
        available_bytes: system.available_memory().min(total),
        used_pct: pct(used, total),
    })
}

/// Swap figures; all zero on a node without swap.
pub fn swap(system: &System) -> Swap {
    let total = system.total_swap();
    let used = system.used_swap().min(total);
    Swap {
        total_bytes: total,
        used_bytes: used,
        used_pct: pct(used, total),
    }
}

/// The `scaling_cur_freq` files to read: one per cpufreq policy
/// (`/sys/devices/system/cpu/cpufreq/policy*`, a policy covers every core of a cluster, so
/// a Pi 4 has one), else one per core (`cpu*/cpufreq`, kernels before policy directories).
/// Empty where cpufreq is not exposed, as in most VMs.
pub fn freq_files(root: &SysRoot) -> Vec<PathBuf> {
    let find = |dir: PathBuf, prefix: &str, sub: &str| -> Vec<PathBuf> {
        dir_names(&dir)
            .into_iter()
            .filter(|n| is_numbered(n, prefix))
            .map(|n| dir.join(n).join(sub).join("scaling_cur_freq"))
            .filter(|p| p.is_file())
            .collect()
    };
    let cpu = root.sys("devices/system/cpu");
    let policies = find(cpu.join("cpufreq"), "policy", "");
    if policies.is_empty() {
        find(cpu, "cpu", "cpufreq")
    } else {
        policies
    }
}

/// Whether `name` is `prefix` followed by a number (`cpu3`, not `cpufreq`).
fn is_numbered(name: &str, prefix: &str) -> bool {
    name.strip_prefix(prefix)
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// A `scaling_cur_freq` value (kHz) in MHz.
pub fn parse_khz_as_mhz(text: &str) -> Option<f64> {
    let khz: u64 = text.trim().parse().ok()?;
    (khz > 0).then(|| khz as f64 / 1000.0)
}

/// The highest current frequency of all cores, MHz; `None` when none is readable.
pub fn freq_mhz(files: &[PathBuf]) -> Option<f64> {
    files
        .iter()
        .filter_map(|f| parse_khz_as_mhz(&read_text(f)?))
        .reduce(f64::max)
}

/// Seconds since boot, when readable.
pub fn uptime_s() -> Option<u64> {
    System::uptime().ok()
}

/// `part` as a percentage of `whole`, 0 when `whole` is 0.
pub fn pct(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

/// A CPU percentage as f64 rounded to 0.01 (drops f32 noise), clamped to 0..=100, 0 when
/// not finite.
fn finite_pct(v: f32) -> f64 {
    let v = f64::from(v);
    if v.is_finite() {
        (v.clamp(0.0, 100.0) * 100.0).round() / 100.0
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages() {
        assert_eq!(pct(1, 4), 25.0);
        assert_eq!(pct(5, 0), 0.0);
        assert_eq!(finite_pct(f32::NAN), 0.0);
        assert_eq!(finite_pct(100.5), 100.0);
    }

    #[test]
    fn cpufreq_values_are_khz() {
        assert_eq!(parse_khz_as_mhz("1800000\n"), Some(1800.0));
        assert_eq!(parse_khz_as_mhz("700000"), Some(700.0));
        assert_eq!(parse_khz_as_mhz("<unknown>"), None);
        assert_eq!(parse_khz_as_mhz("0"), None);
        assert!(is_numbered("cpu12", "cpu"));
        assert!(!is_numbered("cpufreq", "cpu") && !is_numbered("cpu", "cpu"));
    }
}
