//! Stored blobs: decoding arbitrary bytes never panics, and what is encoded decodes back.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sitewatch_hub::store::codec;

fuzz_target!(|data: &[u8]| {
    let _ = codec::decode_frame(data);
    let _ = codec::decode_rollup(0, data);
    let mut out = Vec::new();
    let _ = codec::frame_values(data, &[1, 2, 3], &mut out);
    // Round trip of pairs read from the input.
    let mut pairs: Vec<(i64, f64)> = data
        .chunks_exact(10)
        .map(|c| {
            let id = i64::from(u16::from_le_bytes([c[0], c[1]]));
            let v = f64::from_le_bytes([c[2], c[3], c[4], c[5], c[6], c[7], c[8], c[9]]);
            (id, v)
        })
        .filter(|(_, v)| v.is_finite())
        .collect();
    pairs.sort_by_key(|p| p.0);
    pairs.dedup_by_key(|p| p.0);
    let blob = codec::encode_frame(&mut pairs.clone());
    let back = codec::decode_frame(&blob).expect("own encoding decodes");
    assert_eq!(back.len(), pairs.len());
    for (a, b) in back.iter().zip(&pairs) {
        assert_eq!(a.0, b.0);
        assert_eq!(a.1.to_bits(), b.1.to_bits());
    }
});
