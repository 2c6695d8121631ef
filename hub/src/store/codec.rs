//! Compact binary encodings of one node's samples at one instant (a *frame*) and of one
//! node's aggregates over a bucket (a *rollup*). Pure functions, no SQL.
//!
//! A frame holds every series of one metrics message: entries sorted by series id, each
//! `varint(id delta)` then a tagged value. Values are stored exactly: integral values as a
//! zigzag varint, values a `f32` represents exactly as 4 bytes, anything else as 8 bytes.
//! A typical Pi message (60 series, half of them counters) takes ~5 bytes per sample.
//!
//! A rollup entry holds `count`, `min`, `max`, `sum`, `last` and the time of `last` for one
//! series over a bucket, so buckets merge exactly (avg = sum / count).

/// Format version written as the first byte of every blob.
const VERSION: u8 = 1;

const TAG_INT: u8 = 0;
const TAG_F32: u8 = 1;
const TAG_F64: u8 = 2;

/// Largest magnitude stored as an integer (every integer up to 2^53 is an exact f64).
const MAX_EXACT_INT: f64 = 9_007_199_254_740_992.0;

/// A blob that does not decode (truncated or from a newer hub).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("stored blob cannot be decoded ({0}); the database may be damaged or from a newer hub")]
pub struct CodecError(&'static str);

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

fn put_value(out: &mut Vec<u8>, v: f64) {
    if v.fract() == 0.0 && v.abs() <= MAX_EXACT_INT && !(v == 0.0 && v.is_sign_negative()) {
        out.push(TAG_INT);
        put_varint(out, zigzag(v as i64));
    } else if f64::from(v as f32).to_bits() == v.to_bits() {
        out.push(TAG_F32);
        out.extend_from_slice(&(v as f32).to_le_bytes());
    } else {
        out.push(TAG_F64);
        out.extend_from_slice(&v.to_le_bytes());
    }
}

/// Reads blobs written by this module.
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn new(buf: &'a [u8]) -> Result<Self, CodecError> {
        match buf.first() {
            Some(&VERSION) => Ok(Self { buf, pos: 1 }),
            Some(_) => Err(CodecError("unknown format version")),
            None => Err(CodecError("empty blob")),
        }
    }

    fn done(&self) -> bool {
        self.pos >= self.buf.len()
    }

    fn byte(&mut self) -> Result<u8, CodecError> {
        let b = *self.buf.get(self.pos).ok_or(CodecError("truncated"))?;
        self.pos += 1;
        Ok(b)
    }

    fn varint(&mut self) -> Result<u64, CodecError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(CodecError("varint too long"))
    }

    fn bytes<const N: usize>(&mut self) -> Result<[u8; N], CodecError> {
        let end = self.pos + N;
        let s = self.buf.get(self.pos..end).ok_or(CodecError("truncated"))?;
        self.pos = end;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    fn value(&mut self) -> Result<f64, CodecError> {
        match self.byte()? {
            TAG_INT => Ok(unzigzag(self.varint()?) as f64),
            TAG_F32 => Ok(f64::from(f32::from_le_bytes(self.bytes::<4>()?))),
            TAG_F64 => Ok(f64::from_le_bytes(self.bytes::<8>()?)),
            _ => Err(CodecError("unknown value tag")),
        }
    }

    fn series_id(&mut self, prev: &mut i64) -> Result<i64, CodecError> {
        let delta = i64::try_from(self.varint()?).map_err(|_| CodecError("series id"))?;
        *prev = prev.checked_add(delta).ok_or(CodecError("series id"))?;
        Ok(*prev)
    }
}

/// Encodes `(series_id, value)` pairs. Sorts them by id; a repeated id keeps the last value.
pub fn encode_frame(samples: &mut [(i64, f64)]) -> Vec<u8> {
    samples.sort_by_key(|(id, _)| *id);
    let mut out = Vec::with_capacity(1 + samples.len() * 6);
    out.push(VERSION);
    let mut prev = 0i64;
    for (i, &(id, v)) in samples.iter().enumerate() {
        if samples.get(i + 1).is_some_and(|(next, _)| *next == id) || !v.is_finite() {
            continue;
        }
        put_varint(&mut out, (id - prev) as u64);
        put_value(&mut out, v);
        prev = id;
    }
    out
}

/// Decodes every `(series_id, value)` pair of a frame, in id order.
pub fn decode_frame(blob: &[u8]) -> Result<Vec<(i64, f64)>, CodecError> {
    let mut c = Cursor::new(blob)?;
    let mut prev = 0i64;
    let mut out = Vec::with_capacity(blob.len() / 4);
    while !c.done() {
        let id = c.series_id(&mut prev)?;
        out.push((id, c.value()?));
    }
    Ok(out)
}

/// Walks a blob of `(series id, entry)` pairs and keeps the entries of the sorted `ids`,
/// as `(index in ids, entry)`, stopping once every wanted id is passed.
fn select<T>(
    blob: &[u8],
    ids: &[i64],
    out: &mut Vec<(usize, T)>,
    mut read: impl FnMut(&mut Cursor<'_>) -> Result<T, CodecError>,
) -> Result<(), CodecError> {
    out.clear();
    let mut c = Cursor::new(blob)?;
    let mut prev = 0i64;
    let mut want = 0usize;
    while !c.done() && want < ids.len() {
        let id = c.series_id(&mut prev)?;
        let entry = read(&mut c)?;
        while want < ids.len() && ids[want] < id {
            want += 1;
        }
        if want < ids.len() && ids[want] == id {
            out.push((want, entry));
            want += 1;
        }
    }
    Ok(())
}

/// The values of the sorted `ids` present in a frame (walks the blob without allocating),
/// as `(index in ids, value)`.
pub fn frame_values(
    blob: &[u8],
    ids: &[i64],
    out: &mut Vec<(usize, f64)>,
) -> Result<(), CodecError> {
    select(blob, ids, out, |c| c.value())
}

/// Aggregate of one series over a bucket.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Agg {
    pub count: u64,
    pub min: f64,
    pub max: f64,
    pub sum: f64,
    pub last: f64,
    /// Time of `last`, Unix ms.
    pub last_ms: i64,
}

impl Agg {
    pub fn one(v: f64, ts_ms: i64) -> Self {
        Self {
            count: 1,
            min: v,
            max: v,
            sum: v,
            last: v,
            last_ms: ts_ms,
        }
    }

    pub fn avg(&self) -> f64 {
        if self.count == 0 {
            f64::NAN
        } else {
            self.sum / self.count as f64
        }
    }

    /// Folds `other` in; exact for min, max, count, sum and last.
    pub fn merge(&mut self, other: &Agg) {
        self.count += other.count;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        self.sum += other.sum;
        if other.last_ms >= self.last_ms {
            self.last = other.last;
            self.last_ms = other.last_ms;
        }
    }
}

/// Encodes the aggregates of a bucket starting at `bucket_ms`, sorted by series id.
pub fn encode_rollup(bucket_ms: i64, aggs: &mut [(i64, Agg)]) -> Vec<u8> {
    aggs.sort_by_key(|(id, _)| *id);
    let mut out = Vec::with_capacity(1 + aggs.len() * 20);
    out.push(VERSION);
    let mut prev = 0i64;
    for (id, a) in aggs.iter() {
        put_varint(&mut out, (id - prev) as u64);
        put_varint(&mut out, a.count);
        put_value(&mut out, a.min);
        put_value(&mut out, a.max);
        put_value(&mut out, a.sum);
        put_value(&mut out, a.last);
        put_varint(&mut out, zigzag(a.last_ms - bucket_ms));
        prev = *id;
    }
    out
}

/// Decodes a rollup blob of the bucket starting at `bucket_ms`.
pub fn decode_rollup(bucket_ms: i64, blob: &[u8]) -> Result<Vec<(i64, Agg)>, CodecError> {
    let mut c = Cursor::new(blob)?;
    let mut prev = 0i64;
    let mut out = Vec::new();
    while !c.done() {
        let id = c.series_id(&mut prev)?;
        out.push((id, read_agg(&mut c, bucket_ms)?));
    }
    Ok(out)
}

fn read_agg(c: &mut Cursor<'_>, bucket_ms: i64) -> Result<Agg, CodecError> {
    let count = c.varint()?;
    let min = c.value()?;
    let max = c.value()?;
    let sum = c.value()?;
    let last = c.value()?;
    let last_ms = bucket_ms.saturating_add(unzigzag(c.varint()?));
    Ok(Agg {
        count,
        min,
        max,
        sum,
        last,
        last_ms,
    })
}

/// Like [`frame_values`] for a rollup blob.
pub fn rollup_values(
    bucket_ms: i64,
    blob: &[u8],
    ids: &[i64],
    out: &mut Vec<(usize, Agg)>,
) -> Result<(), CodecError> {
    select(blob, ids, out, |c| read_agg(c, bucket_ms))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn typical_values_are_compact_and_exact() {
        let mut s = vec![
            (3, 42.0),
            (1, 0.5),
            (2, 1_234_567_890_123.0),
            (7, 0.1),
            (5, -3.0),
        ];
        let blob = encode_frame(&mut s);
        // 5 ids, tags, varint 42, f32 0.5, 6-byte varint, f64 0.1, varint -3.
        assert!(
            blob.len() <= 1 + 5 * 2 + 1 + 4 + 7 + 8 + 1,
            "{}",
            blob.len()
        );
        assert_eq!(
            decode_frame(&blob).unwrap(),
            vec![
                (1, 0.5),
                (2, 1_234_567_890_123.0),
                (3, 42.0),
                (5, -3.0),
                (7, 0.1)
            ]
        );
        let mut got = Vec::new();
        frame_values(&blob, &[2, 4, 7], &mut got).unwrap();
        assert_eq!(got, vec![(0, 1_234_567_890_123.0), (2, 0.1)]);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(decode_frame(&[]).is_err());
        assert!(decode_frame(&[9, 1, 2]).is_err());
        assert!(decode_frame(&[VERSION, 1, TAG_F64, 0]).is_err());
        assert!(decode_rollup(0, &[VERSION, 1, 0xff]).is_err());
    }

    proptest! {
        #[test]
        fn frames_round_trip(mut s in proptest::collection::btree_map(0i64..1_000_000, proptest::num::f64::NORMAL | proptest::num::f64::ZERO, 0..80)
            .prop_map(|m| m.into_iter().collect::<Vec<_>>())) {
            let blob = encode_frame(&mut s);
            let back = decode_frame(&blob).unwrap();
            prop_assert_eq!(back.len(), s.len());
            for (a, b) in back.iter().zip(&s) {
                prop_assert_eq!(a.0, b.0);
                prop_assert_eq!(a.1.to_bits(), b.1.to_bits());
            }
        }

        #[test]
        fn rollups_round_trip(vals in proptest::collection::vec((0i64..5000, -1e9f64..1e9, 0i64..60_000), 1..50)) {
            let bucket = 1_700_000_000_000i64;
            let mut m = std::collections::BTreeMap::<i64, Agg>::new();
            for (id, v, off) in vals {
                let a = Agg::one(v, bucket + off);
                m.entry(id).and_modify(|x| x.merge(&a)).or_insert(a);
            }
            let mut aggs: Vec<_> = m.into_iter().collect();
            let blob = encode_rollup(bucket, &mut aggs);
            prop_assert_eq!(decode_rollup(bucket, &blob).unwrap(), aggs);
        }
    }
}
