//! Whole-system facts: boot id (reboot detection), process count, and whether the kernel
//! clock is synchronised (Pis have no RTC: an unsynced clock makes every `ts` suspect).
//!
//! The clock state comes from `adjtimex(2)` in read-only mode ([`query_clock`], the edge);
//! [`ClockState`] decodes it. NTP daemons (systemd-timesyncd, chrony, ntpd) clear
//! `STA_UNSYNC` once they discipline the clock — it is what `timedatectl` shows as
//! "System clock synchronized".

use super::kernel::{SysRoot, read_text};

/// `STA_UNSYNC` of `<sys/timex.h>`: the clock is not synchronised.
pub const STA_UNSYNC: i32 = 0x0040;

/// `/proc/sys/kernel/random/boot_id`: a UUID the kernel draws at every boot.
pub fn boot_id(root: &SysRoot) -> Option<String> {
    read_text(&root.proc("sys/kernel/random/boot_id"))
}

/// Processes running: the numeric directories of `/proc` (threads are not listed there).
/// Reads names only, no per-process file. 0 when `/proc` is unreadable.
pub fn process_count(root: &SysRoot) -> u64 {
    std::fs::read_dir(&root.proc)
        .map(|dir| {
            dir.flatten()
                .filter(|e| is_pid(&e.file_name().to_string_lossy()))
                .count() as u64
        })
        .unwrap_or(0)
}

/// Whether a `/proc` entry name is a process id.
pub fn is_pid(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_digit())
}

/// The two `adjtimex` fields the agent reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockState {
    /// `timex.status` bits.
    pub status: i32,
    /// `timex.maxerror`: the kernel's bound on the clock error, microseconds. It grows by
    /// 500 µs/s while nothing disciplines the clock, up to 16 s.
    pub max_error_us: i64,
}

impl ClockState {
    pub fn synced(self) -> bool {
        self.status & STA_UNSYNC == 0
    }

    pub fn max_error_ms(self) -> f64 {
        self.max_error_us as f64 / 1000.0
    }
}

/// The kernel clock state, read with `adjtimex(2)` (`modes = 0`: query only, no privilege
/// needed). `None` if the call fails.
#[cfg(target_os = "linux")]
#[allow(clippy::useless_conversion)] // `maxerror` is a 32-bit `c_long` on armv6/armv7.
pub fn query_clock() -> Option<ClockState> {
    // SAFETY: timex is plain data (integers and padding), so all-zero is a valid value.
    let mut tx: libc::timex = unsafe { std::mem::zeroed() };
    tx.modes = 0;
    // SAFETY: `tx` is a valid, writable timex; modes 0 makes the call read-only.
    let rc = unsafe { libc::adjtimex(&mut tx) };
    (rc >= 0).then(|| ClockState {
        status: tx.status,
        max_error_us: i64::from(tx.maxerror),
    })
}

/// Not available off Linux.
#[cfg(not(target_os = "linux"))]
pub fn query_clock() -> Option<ClockState> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_status_decoding() {
        // STA_PLL | STA_NANO as chrony leaves it when synchronised.
        let synced = ClockState {
            status: 0x2001,
            max_error_us: 16_500,
        };
        assert!(synced.synced());
        assert_eq!(synced.max_error_ms(), 16.5);
        // A Pi after boot with no network yet: STA_UNSYNC, maxerror at its 16 s cap.
        let unsynced = ClockState {
            status: 0x0041,
            max_error_us: 16_000_000,
        };
        assert!(!unsynced.synced());
        assert_eq!(unsynced.max_error_ms(), 16_000.0);
        assert_eq!(STA_UNSYNC, libc::STA_UNSYNC);
    }

    #[test]
    fn pid_names() {
        assert!(is_pid("1") && is_pid("40213"));
        assert!(!is_pid("self") && !is_pid("") && !is_pid("1a") && !is_pid("thread-self"));
    }

    #[test]
    fn live_clock_and_processes() {
        let clock = query_clock().expect("adjtimex works on Linux");
        assert!(clock.max_error_us >= 0);
        assert!(
            process_count(&SysRoot::default()) >= 1,
            "at least this test"
        );
    }
}
