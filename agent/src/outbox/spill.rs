//! The outbox's spill file: unacknowledged messages that no longer fit in memory, on disk,
//! so a long outage or an agent restart loses less.
//!
//! Format (little-endian): a 16-byte header, `SWSPILL1` then the offset of the first live
//! record (persisted as acks release records from the front), then records
//! `[u32 body length][u32 FNV-1a of body][body]`, body = `[u8 kind][u64 seq][u8 session
//! length][session][payload]`. Records are appended at the end; the file is rewritten
//! (compacted) only when dead space piles up or the size cap is reached. No fsync: the file
//! is for agent restarts and outages, not power cuts; a record cut short by one is detected
//! by its length or checksum and dropped with the rest of the tail.

use std::fs::{File, OpenOptions};
use std::io::{BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::Kind;

const MAGIC: &[u8; 8] = b"SWSPILL1";
/// Header size; the first record starts here.
pub const HEADER: u64 = 16;
/// Record prefix: body length and checksum.
const PREFIX: u64 = 8;
/// Largest body accepted when reading back (anything larger is damage).
const MAX_BODY: u32 = 16 * 1024 * 1024;

/// Where a record lives in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    pub offset: u64,
    /// Whole record, prefix included.
    pub len: u32,
}

impl Slot {
    pub fn end(&self) -> u64 {
        self.offset + u64::from(self.len)
    }
}

/// A record read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub kind: Kind,
    pub seq: u64,
    pub session: String,
    pub payload: Vec<u8>,
}

/// Why a record or the file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum SpillError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is damaged at byte {offset}: {reason}", path.display())]
    Corrupt {
        path: PathBuf,
        offset: u64,
        reason: &'static str,
    },
}

/// The open spill file.
#[derive(Debug)]
pub struct SpillFile {
    path: PathBuf,
    file: File,
    /// First live byte (persisted in the header).
    head: u64,
    /// End of the last record.
    tail: u64,
}

/// What [`SpillFile::open`] found.
#[derive(Debug, Default)]
pub struct Recovered {
    /// Records from an earlier run, oldest first, without their payloads.
    pub records: Vec<(Slot, Kind, u64, String)>,
    /// Set when part or all of the file was unreadable and was discarded.
    pub damage: Option<SpillError>,
}

impl SpillFile {
    /// Opens (or creates) the spill file and reads back the records an earlier run left.
    /// A damaged header discards the whole file; a damaged record discards it and the rest
    /// of the file. Only failing to open or create the file at all is an error.
    pub fn open(path: &Path) -> Result<(Self, Recovered), SpillError> {
        let io = |source| SpillError::Io {
            path: path.to_owned(),
            source,
        };
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        let mut spill = Self {
            path: path.to_owned(),
            file,
            head: HEADER,
            tail: HEADER,
        };
        let mut recovered = Recovered::default();
        if len == 0 {
            spill.reset()?;
            return Ok((spill, recovered));
        }
        match spill.scan(len, &mut recovered.records) {
            Ok(()) => {}
            Err((end, err)) => {
                recovered.damage = Some(err);
                if end < HEADER {
                    recovered.records.clear();
                    spill.reset()?;
                    return Ok((spill, recovered));
                }
                spill.file.set_len(end).map_err(io)?;
                spill.tail = end;
            }
        }
        if recovered.records.is_empty() {
            spill.reset()?;
        }
        Ok((spill, recovered))
    }

    /// Reads the header and every record; on damage returns where the good part ends
    /// (below [`HEADER`] when the header itself is bad).
    fn scan(
        &mut self,
        len: u64,
        out: &mut Vec<(Slot, Kind, u64, String)>,
    ) -> Result<(), (u64, SpillError)> {
        let corrupt = |offset, reason| SpillError::Corrupt {
            path: self.path.clone(),
            offset,
            reason,
        };
        let mut header = [0u8; HEADER as usize];
        if len < HEADER || self.file.read_exact_at(&mut header, 0).is_err() {
            return Err((0, corrupt(0, "shorter than its header")));
        }
        let head = u64::from_le_bytes(header[8..16].try_into().unwrap_or_default());
        if &header[..8] != MAGIC || head < HEADER || head > len {
            return Err((0, corrupt(0, "not a sitewatch spill file")));
        }
        self.head = head;
        self.tail = head;
        let mut reader = BufReader::new(&self.file);
        reader
            .seek(SeekFrom::Start(head))
            .map_err(|_| (head, corrupt(head, "unreadable")))?;
        let mut offset = head;
        while offset < len {
            let slot_start = offset;
            let mut prefix = [0u8; PREFIX as usize];
            if len - offset < PREFIX || reader.read_exact(&mut prefix).is_err() {
                return Err((slot_start, corrupt(offset, "record cut short")));
            }
            let body_len = u32::from_le_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]);
            let sum = u32::from_le_bytes([prefix[4], prefix[5], prefix[6], prefix[7]]);
            if body_len > MAX_BODY || len - offset - PREFIX < u64::from(body_len) {
                return Err((slot_start, corrupt(offset, "record cut short")));
            }
            let mut body = vec![0u8; body_len as usize];
            if reader.read_exact(&mut body).is_err() {
                return Err((slot_start, corrupt(offset, "record cut short")));
            }
            if fnv1a(&body) != sum {
                return Err((slot_start, corrupt(offset, "checksum mismatch")));
            }
            let Some((kind, seq, session, _)) = parse_body(&body) else {
                return Err((slot_start, corrupt(offset, "malformed record")));
            };
            let slot = Slot {
                offset: slot_start,
                len: (PREFIX as u32).saturating_add(body_len),
            };
            out.push((slot, kind, seq, session.to_owned()));
            offset = slot.end();
            self.tail = offset;
        }
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes the file occupies (header, live and dead records).
    pub fn file_bytes(&self) -> u64 {
        self.tail
    }

    /// Size a record for this message takes.
    pub fn record_len(session: &str, payload: &[u8]) -> u64 {
        PREFIX + 10 + session.len().min(255) as u64 + payload.len() as u64
    }

    /// Appends one record and returns where it went.
    pub fn append(
        &mut self,
        kind: Kind,
        seq: u64,
        session: &str,
        payload: &[u8],
    ) -> Result<Slot, SpillError> {
        let session = &session.as_bytes()[..session.len().min(255)];
        let mut body = Vec::with_capacity(10 + session.len() + payload.len());
        body.push(kind.code());
        body.extend_from_slice(&seq.to_le_bytes());
        body.push(session.len() as u8);
        body.extend_from_slice(session);
        body.extend_from_slice(payload);
        let body_len = u32::try_from(body.len()).map_err(|_| self.io(too_big()))?;
        let mut record = Vec::with_capacity(body.len() + PREFIX as usize);
        record.extend_from_slice(&body_len.to_le_bytes());
        record.extend_from_slice(&fnv1a(&body).to_le_bytes());
        record.extend_from_slice(&body);
        let slot = Slot {
            offset: self.tail,
            len: u32::try_from(record.len()).map_err(|_| self.io(too_big()))?,
        };
        self.file
            .write_all_at(&record, slot.offset)
            .map_err(|e| self.io(e))?;
        self.tail = slot.end();
        Ok(slot)
    }

    /// Reads a record back.
    pub fn read(&self, slot: Slot) -> Result<Record, SpillError> {
        let mut buf = vec![0u8; slot.len as usize];
        self.file
            .read_exact_at(&mut buf, slot.offset)
            .map_err(|e| self.io(e))?;
        let corrupt = |reason| SpillError::Corrupt {
            path: self.path.clone(),
            offset: slot.offset,
            reason,
        };
        let body = buf
            .get(PREFIX as usize..)
            .ok_or_else(|| corrupt("record cut short"))?;
        let sum = u32::from_le_bytes([buf[4], buf[5], buf[6], buf[7]]);
        if fnv1a(body) != sum {
            return Err(corrupt("checksum mismatch"));
        }
        let (kind, seq, session, payload) =
            parse_body(body).ok_or_else(|| corrupt("malformed record"))?;
        Ok(Record {
            kind,
            seq,
            session: session.to_owned(),
            payload: payload.to_vec(),
        })
    }

    /// Records before `offset` are no longer needed; remembered across restarts.
    pub fn set_head(&mut self, offset: u64) -> Result<(), SpillError> {
        self.head = offset.clamp(HEADER, self.tail);
        self.file
            .write_all_at(&self.head.to_le_bytes(), 8)
            .map_err(|e| self.io(e))
    }

    /// Empties the file (every record acked or dropped).
    pub fn reset(&mut self) -> Result<(), SpillError> {
        let mut header = [0u8; HEADER as usize];
        header[..8].copy_from_slice(MAGIC);
        header[8..].copy_from_slice(&HEADER.to_le_bytes());
        self.file.set_len(0).map_err(|e| self.io(e))?;
        self.file.write_all_at(&header, 0).map_err(|e| self.io(e))?;
        self.head = HEADER;
        self.tail = HEADER;
        Ok(())
    }

    /// Rewrites the file with only the records in `live` (in order) and returns their new
    /// slots. Written to a temporary file renamed over the old one, so a crash midway
    /// leaves one or the other.
    pub fn compact(&mut self, live: &[Slot]) -> Result<Vec<Slot>, SpillError> {
        let tmp_path = self.path.with_extension("compact");
        let io = |e| SpillError::Io {
            path: tmp_path.clone(),
            source: e,
        };
        let mut tmp = File::create(&tmp_path).map_err(io)?;
        let mut header = [0u8; HEADER as usize];
        header[..8].copy_from_slice(MAGIC);
        header[8..].copy_from_slice(&HEADER.to_le_bytes());
        tmp.write_all(&header).map_err(io)?;
        let mut slots = Vec::with_capacity(live.len());
        let mut offset = HEADER;
        let mut buf = Vec::new();
        for slot in live {
            buf.resize(slot.len as usize, 0);
            self.file
                .read_exact_at(&mut buf, slot.offset)
                .map_err(|e| self.io(e))?;
            tmp.write_all(&buf).map_err(io)?;
            slots.push(Slot {
                offset,
                len: slot.len,
            });
            offset += u64::from(slot.len);
        }
        tmp.flush().map_err(io)?;
        drop(tmp);
        std::fs::rename(&tmp_path, &self.path).map_err(io)?;
        self.head = HEADER;
        self.tail = offset;
        // `tmp` was opened write-only; reopen the renamed file for reading and writing.
        self.file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&self.path)
            .map_err(|e| self.io(e))?;
        Ok(slots)
    }

    fn io(&self, source: std::io::Error) -> SpillError {
        SpillError::Io {
            path: self.path.clone(),
            source,
        }
    }
}

fn too_big() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidInput, "message too large")
}

fn parse_body(body: &[u8]) -> Option<(Kind, u64, &str, &[u8])> {
    let kind = Kind::from_code(*body.first()?)?;
    let seq = u64::from_le_bytes(body.get(1..9)?.try_into().ok()?);
    let session_len = usize::from(*body.get(9)?);
    let session = std::str::from_utf8(body.get(10..10 + session_len)?).ok()?;
    let payload = body.get(10 + session_len..)?;
    Some((kind, seq, session, payload))
}

/// 32-bit FNV-1a: detects torn and garbled records; not a defence against tampering.
fn fnv1a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5u32, |h, b| {
        (h ^ u32::from(*b)).wrapping_mul(0x0100_0193)
    })
}
