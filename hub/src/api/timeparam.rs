//! Time and duration parameters of history requests: `from`/`to` as Unix milliseconds,
//! `now`, or relative to now (`-24h`, `-30m`); `step` as milliseconds or with a unit
//! (`10s`, `5m`, `1h`, `1d`).

/// Parses a duration: plain digits are milliseconds; `ms`, `s`, `m`, `h`, `d` suffixes.
pub fn duration_ms(s: &str) -> Option<i64> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: i64 = num.parse().ok()?;
    let mult = match unit {
        "" | "ms" => 1,
        "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return None,
    };
    n.checked_mul(mult)
}

/// Parses an instant: Unix milliseconds, `now`, or `-DURATION` before now.
pub fn instant_ms(s: &str, now_ms: i64) -> Option<i64> {
    let s = s.trim();
    if s == "now" {
        return Some(now_ms);
    }
    if let Some(rel) = s.strip_prefix('-') {
        return duration_ms(rel).map(|d| now_ms - d);
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_and_relative_times() {
        assert_eq!(duration_ms("60000"), Some(60_000));
        assert_eq!(duration_ms("10s"), Some(10_000));
        assert_eq!(duration_ms("5m"), Some(300_000));
        assert_eq!(duration_ms("1d"), Some(86_400_000));
        assert_eq!(duration_ms("1w"), None);
        assert_eq!(duration_ms("-5"), None);
        assert_eq!(instant_ms("now", 1000), Some(1000));
        assert_eq!(instant_ms("-1s", 5000), Some(4000));
        assert_eq!(instant_ms("1700000000000", 0), Some(1_700_000_000_000));
        assert_eq!(instant_ms("yesterday", 0), None);
    }
}
