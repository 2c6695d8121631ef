//! Topic and id parsing: no panic, and a topic that parses formats back to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sitewatch_proto::{Prefix, Topic};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let prefix = Prefix::default();
    if let Ok(t) = Topic::parse(&prefix, s) {
        assert_eq!(t.format(&prefix), s);
    }
    let mid = (0..=s.len() / 2)
        .rev()
        .find(|i| s.is_char_boundary(*i))
        .unwrap_or(0);
    let (head, tail) = s.split_at(mid);
    if let Ok(p) = Prefix::new(head)
        && let Ok(t) = Topic::parse(&p, tail)
    {
        assert_eq!(t.format(&p), tail);
    }
    let _ = sitewatch_proto::SiteId::new(s);
    let _ = sitewatch_proto::NodeId::new(s);
});
