//! CPU, load, memory, swap, temperatures and uptime from one long-lived sysinfo `System`.
//!
//! CPU usage is a difference between two readings of `/proc/stat`, so the `System` must be
//! refreshed once before the first sample and then kept, not re-created.

use sitewatch_proto::payload::{Cpu, Memory, Swap, Temperature};
use sysinfo::{Components, CpuRefreshKind, MemoryRefreshKind, RefreshKind, System};

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

/// CPU usage since the previous refresh and the load averages (0 when unreadable).
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

/// Every sensor with a finite reading, sorted by label.
pub fn temperatures(components: &Components) -> Vec<Temperature> {
    let mut out: Vec<Temperature> = components
        .iter()
        .filter_map(|c| {
            let t = f64::from(c.temperature()?);
            t.is_finite().then(|| Temperature {
                label: c.label().to_owned(),
                temp_c: (t * 10.0).round() / 10.0,
                crit_c: None,
            })
        })
        .collect();
    out.sort_by(|a, b| a.label.cmp(&b.label));
    out
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
}
