//! The physical limit of this storage design on the current machine: how many samples per
//! second SQLite takes when frames are inserted back to back in batched transactions, with
//! the same schema, pragmas and encoding as the writer but no MQTT, JSON, series lookup,
//! dedup or acks. `bench/ingest.sh` prints the hub's sustained rate as a ratio of this.

use std::path::Path;
use std::time::{Duration, Instant};

use rusqlite::{OpenFlags, params};

use super::{StoreError, codec};

/// Frames per transaction, like a busy writer batch.
const FRAMES_PER_TX: usize = 1000;
/// Distinct nodes the frames are spread over (a 1,000-agent fleet).
const NODES: i64 = 1000;

/// Inserts frames of `samples_per_frame` samples into a new database in `dir` for
/// `duration`, and returns the samples per second stored.
pub fn raw_insert_rate(
    dir: &Path,
    samples_per_frame: usize,
    duration: Duration,
) -> Result<f64, StoreError> {
    let path = super::init(dir)?;
    let mut conn = super::open(
        &path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "cache_size", -32_768)?;
    {
        let tx = conn.transaction()?;
        for node in 1..=NODES {
            tx.execute(
                "INSERT INTO nodes (id, site, node, first_seen_ms) VALUES (?1, 'bench', ?2, 0)",
                params![node, format!("n{node}")],
            )?;
        }
        tx.commit()?;
    }
    // Values like a Pi's: percentages, counters, temperatures.
    let mut values: Vec<(i64, f64)> = Vec::with_capacity(samples_per_frame);
    let start = Instant::now();
    let mut frames = 0u64;
    let mut ts = 1_700_000_000_000i64;
    while start.elapsed() < duration {
        let tx = conn.transaction()?;
        {
            let mut insert =
                tx.prepare_cached("INSERT INTO frames (node_id, ts_ms, data) VALUES (?1, ?2, ?3)")?;
            for i in 0..FRAMES_PER_TX {
                let node = (frames as i64 + i as i64) % NODES + 1;
                values.clear();
                for s in 0..samples_per_frame {
                    let x = (frames as usize * 31 + s * 7) % 1000;
                    let v = match s % 3 {
                        0 => x as f64 / 10.0 + 0.05,
                        1 => (frames * 1500 + s as u64 * 10_000) as f64,
                        _ => 40.0 + x as f64 / 100.0,
                    };
                    values.push((node * 100 + s as i64, v));
                }
                insert.execute(params![node, ts, codec::encode_frame(&mut values)])?;
                if node == NODES {
                    ts += 1000;
                }
            }
        }
        tx.commit()?;
        frames += FRAMES_PER_TX as u64;
    }
    let secs = start.elapsed().as_secs_f64();
    Ok(frames as f64 * samples_per_frame as f64 / secs)
}

#[cfg(test)]
mod tests {
    #[test]
    fn measures_a_positive_rate() {
        let dir = tempfile::tempdir().unwrap();
        let rate =
            super::raw_insert_rate(dir.path(), 60, std::time::Duration::from_millis(200)).unwrap();
        assert!(rate > 0.0);
    }
}
