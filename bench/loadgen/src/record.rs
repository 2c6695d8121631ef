//! The `--acked-out` file: one JSON line per agent session ever used, saying how far the hub
//! acknowledged it and which of its seqs were metrics messages (the rest were heartbeats),
//! so a test can check the database against what the hub promised to have stored. Like the
//! agent, a simulated agent keeps one session for its whole run, across reconnects.

use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::Path;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

/// Increasing seqs stored as inclusive `[first, last]` ranges: compact, since a session's
/// metrics seqs run in long stretches broken only by heartbeats.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SeqRanges(Vec<[u64; 2]>);

impl SeqRanges {
    /// Appends `seq`, which must be above every seq already held (else it is ignored).
    pub fn push(&mut self, seq: u64) {
        match self.0.last_mut() {
            Some(last) if seq == last[1] + 1 => last[1] = seq,
            Some(last) if seq <= last[1] => {}
            _ => self.0.push([seq, seq]),
        }
    }

    pub fn contains(&self, seq: u64) -> bool {
        let i = self.0.partition_point(|r| r[1] < seq);
        self.0.get(i).is_some_and(|r| r[0] <= seq)
    }

    /// Every seq held, in order.
    pub fn iter(&self) -> impl Iterator<Item = u64> + '_ {
        self.0.iter().flat_map(|r| r[0]..=r[1])
    }

    /// How many seqs are held.
    pub fn len(&self) -> u64 {
        self.0.iter().map(|r| r[1] - r[0] + 1).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// What one simulated agent session published and what the hub acknowledged of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRecord {
    pub site: String,
    pub node: String,
    pub session: String,
    /// Highest ack watermark received: the hub promised every seq up to it is stored (or was
    /// given up by the agent, see `dropped_seqs`).
    pub acked_seq: u64,
    /// Last seq handed out in the session (heartbeats and metrics share the counter).
    pub published_seq: u64,
    /// Seqs that were metrics messages; every other seq up to `published_seq` was a heartbeat.
    pub metrics_seqs: SeqRanges,
    /// Metrics seqs dropped unacknowledged because the outbox was full (never stored).
    #[serde(default)]
    pub dropped_seqs: SeqRanges,
}

/// Writes `records` as JSON lines to `path` (replacing it).
pub fn write(path: &Path, records: &[SessionRecord]) -> anyhow::Result<()> {
    let file = std::fs::File::create(path)
        .with_context(|| format!("cannot create {} (check --acked-out)", path.display()))?;
    let mut out = BufWriter::new(file);
    for r in records {
        serde_json::to_writer(&mut out, r)?;
        out.write_all(b"\n")?;
    }
    out.flush()
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Reads a file written by [`write`].
pub fn read(path: &Path) -> anyhow::Result<Vec<SessionRecord>> {
    let file = std::fs::File::open(path)
        .with_context(|| format!("cannot open {} (was --acked-out given?)", path.display()))?;
    let mut records = Vec::new();
    for (i, line) in BufReader::new(file).lines().enumerate() {
        let line = line.with_context(|| format!("cannot read {}", path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        records.push(
            serde_json::from_str(&line)
                .with_context(|| format!("{}:{}: not a session record", path.display(), i + 1))?,
        );
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_compact_and_queryable() {
        let mut r = SeqRanges::default();
        for s in [1, 2, 3, 5, 6, 9, 9, 4] {
            r.push(s);
        }
        assert_eq!(r.0, vec![[1, 3], [5, 6], [9, 9]]);
        assert_eq!(r.iter().collect::<Vec<_>>(), [1, 2, 3, 5, 6, 9]);
        assert_eq!(r.len(), 6);
        assert!(r.contains(2) && r.contains(9) && !r.contains(4) && !r.contains(10));
        assert_eq!(serde_json::to_string(&r).unwrap(), "[[1,3],[5,6],[9,9]]");
    }

    #[test]
    fn records_round_trip_through_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("acked.jsonl");
        let mut metrics = SeqRanges::default();
        metrics.push(2);
        let rec = SessionRecord {
            site: "load-000".into(),
            node: "node-00000".into(),
            session: "0123456789abcdef".into(),
            acked_seq: 2,
            published_seq: 3,
            metrics_seqs: metrics,
            dropped_seqs: SeqRanges::default(),
        };
        write(&path, &[rec.clone(), rec.clone()]).unwrap();
        assert_eq!(read(&path).unwrap(), vec![rec.clone(), rec]);
        std::fs::write(&path, "{oops\n").unwrap();
        let e = read(&path).unwrap_err().to_string();
        assert!(e.contains(":1:"), "{e}");
    }
}
