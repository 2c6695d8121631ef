//! The history API's query parsing and planning: `from`/`to`/`step` strings, then the tier
//! plan for whatever range they give, which must never exceed the points asked for.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sitewatch_hub::api::timeparam::{duration_ms, instant_ms};
use sitewatch_hub::store::{Retention, query};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let mut parts = s.splitn(4, '&');
    let now = 1_800_000_000_000i64;
    let from = parts.next().and_then(|p| instant_ms(p, now));
    let to = parts.next().and_then(|p| instant_ms(p, now));
    let step = parts.next().and_then(duration_ms).filter(|d| *d > 0);
    let max_points = parts
        .next()
        .and_then(|p| p.parse::<i64>().ok())
        .filter(|m| (2..=10_000).contains(m))
        .unwrap_or(2000);
    let (Some(from), Some(to)) = (from, to) else {
        return;
    };
    // The API refuses these before planning.
    if from > to || from < -(1 << 50) || to > (1 << 50) {
        return;
    }
    let plan = query::plan(from, to, step, max_points, 10_000, now, &Retention::default());
    assert!(plan.step_ms > 0);
    let buckets = to.div_euclid(plan.step_ms) - from.div_euclid(plan.step_ms) + 1;
    assert!(buckets <= max_points, "{plan:?}: {buckets} > {max_points}");
});
