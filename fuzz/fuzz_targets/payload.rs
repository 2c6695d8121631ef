//! Every payload the hub decodes from the bus, as the hub decodes it: no input may panic,
//! and a metrics payload that decodes must flatten into named series.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sitewatch_proto::NodeTopic;

fuzz_target!(|data: &[u8]| {
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
            sitewatch_hub::ingest::decode(kind, data)
        {
            for s in m.samples() {
                assert!(!s.metric.is_empty());
            }
        }
    }
    let _ = sitewatch_proto::payload::from_json::<sitewatch_proto::Ack>(data);
});
