//! The physical limit of the hub's storage design on this machine: batched inserts of
//! sample frames into a WAL SQLite database, without MQTT, JSON or anything else.
//!
//! Runs `sitewatch_hub::store::bench::raw_insert_rate`: the hub's schema, pragmas and frame
//! encoding, 1000 nodes written round-robin, 1000 frames per transaction.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context as _;

/// Rows written per transaction.
pub const ROWS_PER_TRANSACTION: usize = 1000;
/// Distinct node ids, written round-robin.
pub const NODES: i64 = 1000;

/// What one measurement wrote.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RawRate {
    pub rows: u64,
    pub seconds: f64,
    pub samples_per_frame: usize,
    /// Database plus WAL size at the end.
    pub file_bytes: u64,
}

impl RawRate {
    pub fn rows_per_s(&self) -> f64 {
        self.rows as f64 / self.seconds.max(1e-9)
    }

    pub fn samples_per_s(&self) -> f64 {
        self.rows_per_s() * self.samples_per_frame as f64
    }
}

/// Samples per second this machine can insert into a fresh database in `dir` (see the module
/// doc), measured for `duration`. The database is removed afterwards.
pub fn raw_insert_rate(
    dir: &Path,
    samples_per_frame: usize,
    duration: Duration,
) -> anyhow::Result<f64> {
    Ok(measure(dir, samples_per_frame, duration)?.samples_per_s())
}

/// [`raw_insert_rate`] with the details: the hub's own schema, pragmas and frame encoding
/// (`sitewatch_hub::store::bench`), in a scratch directory under `dir` removed afterwards.
pub fn measure(
    dir: &Path,
    samples_per_frame: usize,
    duration: Duration,
) -> anyhow::Result<RawRate> {
    anyhow::ensure!(
        samples_per_frame > 0,
        "--samples-per-frame must be at least 1"
    );
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create {} (check --dir)", dir.display()))?;
    let scratch = dir.join("raw-insert-rate");
    let _ = std::fs::remove_dir_all(&scratch);
    let start = Instant::now();
    let result =
        sitewatch_hub::store::bench::raw_insert_rate(&scratch, samples_per_frame, duration);
    let seconds = start.elapsed().as_secs_f64();
    let len = |p: PathBuf| std::fs::metadata(p).map_or(0, |m| m.len());
    let db = scratch.join(sitewatch_hub::store::DB_FILE);
    let file_bytes = len(db.clone()) + len(wal_path(&db));
    let _ = std::fs::remove_dir_all(&scratch);
    let samples_per_s =
        result.with_context(|| format!("raw insert benchmark in {}", scratch.display()))?;
    Ok(RawRate {
        rows: (samples_per_s * seconds / samples_per_frame as f64) as u64,
        seconds,
        samples_per_frame,
        file_bytes,
    })
}

fn wal_path(db: &Path) -> PathBuf {
    let mut p = db.to_owned().into_os_string();
    p.push("-wal");
    PathBuf::from(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_and_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        let r = measure(dir.path(), 10, Duration::from_millis(200)).unwrap();
        assert!(r.rows >= ROWS_PER_TRANSACTION as u64);
        assert!((r.samples_per_s() - r.rows_per_s() * 10.0).abs() < 1e-6);
        assert!(r.file_bytes > 0);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        assert!(measure(dir.path(), 0, Duration::ZERO).is_err());
    }
}
