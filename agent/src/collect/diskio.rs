//! Block device IO from `/proc/diskstats`: bytes since boot and rates over the last
//! interval, per whole device.
//!
//! Partitions are skipped (their IO is already counted in their disk): a whole device is
//! one with a directory directly under `/sys/block`. Loop and RAM disks are skipped by
//! name, and devices that never transferred a byte (an empty CD drive, an unused zram or
//! eMMC boot area) are left out. `/proc/diskstats` counts in 512-byte sectors whatever
//! the device's real sector size.

use std::collections::HashMap;
use std::time::Instant;

use sitewatch_proto::payload::DiskIo;

use super::kernel::SysRoot;
use super::network::rate;

/// `/proc/diskstats` always counts 512-byte units.
pub const SECTOR_BYTES: u64 = 512;

/// The counters of one `/proc/diskstats` line that the agent uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskCounters {
    pub device: String,
    pub sectors_read: u64,
    pub sectors_written: u64,
    /// Milliseconds the device had IO in flight (field 10 of the kernel's iostats doc).
    pub io_ticks_ms: u64,
}

/// Every well-formed line of `/proc/diskstats`: `major minor name` followed by at least the
/// 11 classic counters (newer kernels add discard and flush counters, ignored here).
pub fn parse_diskstats(text: &str) -> Vec<DiskCounters> {
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 14 {
                return None;
            }
            let n = |i: usize| f[i].parse::<u64>().ok();
            Some(DiskCounters {
                device: f[2].to_owned(),
                sectors_read: n(5)?,
                sectors_written: n(9)?,
                io_ticks_ms: n(12)?,
            })
        })
        .collect()
}

/// Loop and RAM disks are images and memory, not storage an operator watches.
pub fn is_skipped_name(device: &str) -> bool {
    device.starts_with("loop") || device.starts_with("ram")
}

/// Keeps whole, used, non-virtual devices: partitions have no `/sys/block/<name>`.
pub fn whole_disks(root: &SysRoot, counters: Vec<DiskCounters>) -> Vec<DiskCounters> {
    let block = root.sys("block");
    counters
        .into_iter()
        .filter(|c| {
            !is_skipped_name(&c.device)
                && (c.sectors_read > 0 || c.sectors_written > 0)
                && block.join(&c.device).exists()
        })
        .collect()
}

/// The whole disks of `/proc/diskstats` under `root`; empty when unreadable.
pub fn read(root: &SysRoot) -> Vec<DiskCounters> {
    std::fs::read_to_string(root.proc("diskstats"))
        .map(|text| whole_disks(root, parse_diskstats(&text)))
        .unwrap_or_default()
}

/// Counters of the previous sample, to compute rates.
#[derive(Debug, Default)]
pub struct DiskRates {
    previous: HashMap<String, DiskCounters>,
    previous_at: Option<Instant>,
}

impl DiskRates {
    /// One entry per device, sorted by name. Rates are absent on the first sample, for a
    /// device new since the last one, and when a counter went backwards (wrapped on a
    /// 32-bit kernel, or the device was re-attached).
    pub fn sample(&mut self, counters: Vec<DiskCounters>, now: Instant) -> Vec<DiskIo> {
        let elapsed_s = self
            .previous_at
            .map(|t| now.saturating_duration_since(t).as_secs_f64());
        let mut out: Vec<DiskIo> = counters
            .iter()
            .map(|c| {
                let prev = self.previous.get(&c.device);
                let bytes = |sectors: u64| sectors.saturating_mul(SECTOR_BYTES);
                let bps = |p: Option<u64>, cur: u64| {
                    elapsed_s.and_then(|e| rate(p.map(bytes), bytes(cur), e))
                };
                DiskIo {
                    device: c.device.clone(),
                    read_bytes: bytes(c.sectors_read),
                    write_bytes: bytes(c.sectors_written),
                    read_bps: bps(prev.map(|p| p.sectors_read), c.sectors_read),
                    write_bps: bps(prev.map(|p| p.sectors_written), c.sectors_written),
                    busy_pct: elapsed_s
                        .and_then(|e| rate(prev.map(|p| p.io_ticks_ms), c.io_ticks_ms, e))
                        .map(busy_pct),
                }
            })
            .collect();
        out.sort_by(|a, b| a.device.cmp(&b.device));
        self.previous = counters
            .into_iter()
            .map(|c| (c.device.clone(), c))
            .collect();
        self.previous_at = Some(now);
        out
    }
}

/// Busy milliseconds per second as a percentage, rounded to 0.01 and clamped to 100
/// (io_ticks is updated at IO completion, so one interval can see slightly over 1000).
fn busy_pct(ms_per_s: f64) -> f64 {
    ((ms_per_s / 10.0).clamp(0.0, 100.0) * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const KERNEL_6: &str = "\
 179       0 mmcblk0 18234 6130 1523478 102340 9412 11873 824512 398120 0 151220 500460 0 0 0 0 1210 0
 179       1 mmcblk0p1 312 1048 22380 1830 2 0 2 3 0 410 1833 0 0 0 0 0 0
   7       0 loop0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0
 short line
 8 0 sdz 1 2 x 4 5 6 7 8 9 10 11
";

    #[test]
    fn parses_classic_and_extended_lines() {
        let got = parse_diskstats(KERNEL_6);
        assert_eq!(got.len(), 3, "{got:?}");
        assert_eq!(
            got[0],
            DiskCounters {
                device: "mmcblk0".into(),
                sectors_read: 1_523_478,
                sectors_written: 824_512,
                io_ticks_ms: 151_220,
            }
        );
        // A 2.6-era line with exactly the 11 classic counters.
        let old = parse_diskstats("   8    0 sda 10 0 80 5 20 0 160 7 0 12 12");
        assert_eq!((old[0].sectors_written, old[0].io_ticks_ms), (160, 12));
    }

    #[test]
    fn rates_from_two_samples_and_none_on_reset() {
        let c = |r, w, t| DiskCounters {
            device: "sda".into(),
            sectors_read: r,
            sectors_written: w,
            io_ticks_ms: t,
        };
        let t0 = Instant::now();
        let mut rates = DiskRates::default();
        let first = rates.sample(vec![c(1000, 2000, 500)], t0);
        assert_eq!(first[0].read_bytes, 512_000);
        assert_eq!((first[0].read_bps, first[0].busy_pct), (None, None));

        let second = rates.sample(vec![c(3000, 2000, 2500)], t0 + Duration::from_secs(10));
        assert_eq!(second[0].read_bps, Some(2000.0 * 512.0 / 10.0));
        assert_eq!(second[0].write_bps, Some(0.0));
        assert_eq!(second[0].busy_pct, Some(20.0));

        let third = rates.sample(vec![c(10, 2100, 9_000)], t0 + Duration::from_secs(11));
        assert_eq!(third[0].read_bps, None, "counter went backwards");
        assert_eq!(third[0].write_bps, Some(51_200.0));
        assert_eq!(third[0].busy_pct, Some(100.0), "clamped");
    }
}
