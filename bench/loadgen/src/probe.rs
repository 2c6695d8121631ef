//! What the run reads from outside the bus: a process's memory and CPU time from `/proc`,
//! and the size of the hub's database files.

use std::path::{Path, PathBuf};

use anyhow::Context as _;

/// A process observed through `/proc/PID`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Process {
    pub pid: u32,
}

impl Process {
    /// The process `pid`, checked to exist now.
    pub fn new(pid: u32) -> anyhow::Result<Self> {
        let p = Self { pid };
        p.cpu_ticks().with_context(|| {
            format!("no process {pid} to measure (check --hub-pid; it must be the hub's PID)")
        })?;
        Ok(p)
    }

    /// This process.
    pub fn current() -> Self {
        Self {
            pid: std::process::id(),
        }
    }

    /// Resident set size in bytes (`VmRSS` of `/proc/PID/status`).
    pub fn rss_bytes(&self) -> anyhow::Result<u64> {
        let path = format!("/proc/{}/status", self.pid);
        let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
        parse_vm_rss(&text).with_context(|| format!("no VmRSS line in {path}"))
    }

    /// User plus system CPU time in clock ticks (`/proc/PID/stat` fields 14 and 15).
    pub fn cpu_ticks(&self) -> anyhow::Result<u64> {
        let path = format!("/proc/{}/stat", self.pid);
        let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
        parse_stat_ticks(&text).with_context(|| format!("cannot parse {path}"))
    }
}

/// Clock ticks per second of `/proc/PID/stat` times.
pub fn ticks_per_second() -> f64 {
    // SAFETY: sysconf has no preconditions; it returns -1 for an unknown name.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as f64 } else { 100.0 }
}

fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

fn parse_stat_ticks(stat: &str) -> Option<u64> {
    // The command name (field 2) is in parentheses and may hold spaces: split after it.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state); utime is field 14, stime field 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// The hub's SQLite database and its write-ahead log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbFiles {
    pub db: PathBuf,
}

/// Sizes of the database files at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DbSize {
    pub db_bytes: u64,
    pub wal_bytes: u64,
}

impl DbSize {
    pub fn total(&self) -> u64 {
        self.db_bytes + self.wal_bytes
    }
}

impl DbFiles {
    pub fn new(db: &Path) -> Self {
        Self { db: db.to_owned() }
    }

    fn wal(&self) -> PathBuf {
        let mut p = self.db.clone().into_os_string();
        p.push("-wal");
        PathBuf::from(p)
    }

    /// Current sizes; a missing file counts as 0 (the WAL comes and goes).
    pub fn size(&self) -> DbSize {
        let len = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.len());
        DbSize {
            db_bytes: len(&self.db),
            wal_bytes: len(&self.wal()),
        }
    }
}

/// The median of `values` (0 when empty).
pub fn median(values: &[u64]) -> u64 {
    let mut v = values.to_vec();
    v.sort_unstable();
    match v.len() {
        0 => 0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_files() {
        let status = "Name:\tsitewatch-hub\nVmPeak:\t  100 kB\nVmRSS:\t   20480 kB\n";
        assert_eq!(parse_vm_rss(status), Some(20 * 1024 * 1024));
        let stat = "1234 (sitewatch hub) S 1 1234 1234 0 -1 4194560 2000 0 0 0 150 25 0 0 20 0 9 0";
        assert_eq!(parse_stat_ticks(stat), Some(175));
        assert_eq!(parse_stat_ticks("garbage"), None);
    }

    #[test]
    fn reads_this_process_and_file_sizes() {
        let me = Process::current();
        assert!(me.rss_bytes().unwrap() > 0);
        me.cpu_ticks().unwrap();
        assert!(Process::new(u32::MAX).is_err());
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("x.db");
        std::fs::write(&db, [0u8; 10]).unwrap();
        std::fs::write(dir.path().join("x.db-wal"), [0u8; 5]).unwrap();
        let size = DbFiles::new(&db).size();
        assert_eq!((size.db_bytes, size.wal_bytes, size.total()), (10, 5, 15));
        assert_eq!(median(&[5, 1, 3]), 3);
        assert_eq!(median(&[4, 1, 3, 2]), 2);
        assert_eq!(median(&[]), 0);
    }
}
