//! Every payload the hub decodes from the bus, as the hub decodes it: no input may panic,
//! and a metrics payload that decodes must flatten into named series. Signed payloads
//! (`proto::sign`) are split and checked first, as the hub does; a split body is one byte
//! longer than the signature it replaced is short, and is decoded too.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sitewatch_proto::{NodeTopic, sign};

fuzz_target!(|data: &[u8]| {
    let key = sign::NodeKey::from_bytes(&[7; sign::KEY_BYTES]);
    let signed = sign::split(data);
    if let Some(s) = &signed {
        assert_eq!(s.body.len() + sign::SIGNATURE_BYTES - 1, data.len());
        let _ = key.verify("sitewatch/v1/s/n/metrics", &s.body, &s.mac);
    }
    let bodies = std::iter::once(data).chain(signed.as_ref().map(|s| &*s.body));
    for body in bodies {
        for kind in [
            NodeTopic::Status,
            NodeTopic::Info,
            NodeTopic::Heartbeat,
            NodeTopic::Metrics,
            NodeTopic::Scan,
            NodeTopic::Ack,
            NodeTopic::Alerts,
        ] {
            if let Ok(sitewatch_hub::ingest::Decoded::Metrics(m, _)) =
                sitewatch_hub::ingest::decode(kind, body)
            {
                for s in m.samples() {
                    assert!(!s.metric.is_empty());
                }
            }
        }
    }
    let _ = sitewatch_proto::payload::from_json::<sitewatch_proto::Ack>(data);
});
