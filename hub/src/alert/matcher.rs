//! Matching: globs with `*`, series selectors such as `fs.used_pct{mount=/}`, the label
//! strings of [`sitewatch_proto::Sample`], and silences.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Whether `text` matches `pattern`, where `*` stands for any run of characters (possibly
/// empty) and everything else matches itself.
pub fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    // Position after the last `*` and the text position it was tried at.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == '*' {
            star = Some((pi + 1, ti));
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// Whether any pattern matches (an empty list matches everything).
pub fn any_glob(patterns: &[String], text: &str) -> bool {
    patterns.is_empty() || patterns.iter().any(|p| glob(p, text))
}

/// Splits the canonical label string of a sample (`mount=/,x=a\,b`) into pairs.
pub fn parse_labels(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let (mut key, mut cur) = (None::<String>, String::new());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            '=' if key.is_none() => key = Some(std::mem::take(&mut cur)),
            ',' => {
                if let Some(k) = key.take() {
                    out.push((k, std::mem::take(&mut cur)));
                }
                cur.clear();
            }
            c => cur.push(c),
        }
    }
    if let Some(k) = key {
        out.push((k, cur));
    }
    out
}

/// A series selector: a metric name as `sitewatch_proto::sample` names it, with optional
/// label globs: `temp_c`, `fs.used_pct{mount=/}`, `temp_c{sensor=cpu*}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeriesSelector {
    pub metric: String,
    pub labels: Vec<(String, String)>,
}

impl SeriesSelector {
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let (metric, rest) = match s.find('{') {
            Some(i) => (&s[..i], Some(&s[i + 1..])),
            None => (s, None),
        };
        let metric_ok = !metric.is_empty()
            && metric
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '.');
        if !metric_ok {
            return Err(format!(
                "{s:?} is not a series: expected a metric name such as `temp_c` or \
                 `fs.used_pct{{mount=/}}` (see the series table in docs/PROTOCOL.md)"
            ));
        }
        let mut labels = Vec::new();
        if let Some(rest) = rest {
            let Some(inner) = rest.strip_suffix('}') else {
                return Err(format!("{s:?}: missing the closing `}}`"));
            };
            for part in inner.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                let Some((k, v)) = part.split_once('=') else {
                    return Err(format!(
                        "{s:?}: label matcher {part:?} must be `name=value` (`*` allowed in value)"
                    ));
                };
                labels.push((k.trim().to_owned(), v.trim().to_owned()));
            }
        }
        Ok(Self {
            metric: metric.to_owned(),
            labels,
        })
    }

    /// Whether a sample (metric name and canonical label string) is selected; returns its
    /// labels when it is.
    pub fn select(&self, metric: &str, labels: &str) -> Option<Vec<(String, String)>> {
        if metric != self.metric {
            return None;
        }
        let pairs = parse_labels(labels);
        let ok = self.labels.iter().all(|(k, pat)| {
            let v = pairs.iter().find(|(pk, _)| pk == k).map_or("", |(_, v)| v);
            glob(pat, v)
        });
        ok.then_some(pairs)
    }
}

/// One condition of a silence: the alert's label `label` matches the glob `value`.
/// Besides the identifying labels (`rule`, `site`, `node`, `mount`, `check`…), `severity`
/// and `kind` can be matched. A missing label has the value `""`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Matcher {
    pub label: String,
    pub value: String,
}

/// Mutes the notifications of every alert matching all its matchers, from `starts_ms` until
/// `ends_ms`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Silence {
    /// Chosen by the caller (the API); unique.
    pub id: String,
    pub matchers: Vec<Matcher>,
    pub starts_ms: u64,
    pub ends_ms: u64,
    pub created_by: String,
    pub comment: String,
}

impl Silence {
    /// Checks what the API receives; the message names the field.
    pub fn validate(&self) -> Result<(), String> {
        if self.id.trim().is_empty() {
            return Err("id: must not be empty".into());
        }
        if self.matchers.is_empty() {
            return Err(
                "matchers: give at least one (e.g. label \"site\", value \"club-1\"); a silence \
                 matching everything would mute every alert"
                    .into(),
            );
        }
        if let Some(m) = self.matchers.iter().find(|m| m.label.trim().is_empty()) {
            return Err(format!("matchers: label of {m:?} must not be empty"));
        }
        if self.ends_ms <= self.starts_ms {
            return Err("ends_ms: must be after starts_ms".into());
        }
        if self.created_by.trim().is_empty() {
            return Err("created_by: say who silences (a name or an e-mail address)".into());
        }
        Ok(())
    }

    pub fn is_active(&self, now_ms: u64) -> bool {
        self.starts_ms <= now_ms && now_ms < self.ends_ms
    }

    /// Whether every matcher matches; `get` looks a label up.
    pub fn matches<'a>(&self, get: impl Fn(&str) -> Option<&'a str>) -> bool {
        self.matchers
            .iter()
            .all(|m| glob(&m.value, get(&m.label).unwrap_or("")))
    }
}

/// A stable fingerprint of a label set: FNV-1a (64 bit) over the sorted `name=value` lines,
/// as 16 hex digits. Stable across builds and platforms, so it can be stored.
pub fn fingerprint(labels: &BTreeMap<String, String>) -> String {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut h = OFFSET;
    for (k, v) in labels {
        for b in k
            .bytes()
            .chain(std::iter::once(b'='))
            .chain(v.bytes())
            .chain(std::iter::once(b'\n'))
        {
            h ^= u64::from(b);
            h = h.wrapping_mul(PRIME);
        }
    }
    format!("{h:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn globs() {
        assert!(glob("*", ""));
        assert!(glob("club-*", "club-1"));
        assert!(glob("*-gate", "pi-gate"));
        assert!(glob("a*b*c", "axxbyyc"));
        assert!(!glob("a*b*c", "axxbyy"));
        assert!(glob("exact", "exact"));
        assert!(!glob("exact", "exactly"));
        assert!(glob("pi-?", "pi-?"));
    }

    #[test]
    fn sample_labels_are_unescaped() {
        assert_eq!(
            parse_labels(r"mount=/mnt/a\,b\=c,x=y"),
            vec![
                ("mount".to_string(), "/mnt/a,b=c".to_string()),
                ("x".to_string(), "y".to_string())
            ]
        );
        assert!(parse_labels("").is_empty());
    }

    #[test]
    fn selectors() {
        let s = SeriesSelector::parse("fs.used_pct{mount=/}").unwrap();
        assert!(s.select("fs.used_pct", "mount=/").is_some());
        assert!(s.select("fs.used_pct", "mount=/boot").is_none());
        assert!(s.select("fs.used_bytes", "mount=/").is_none());
        let t = SeriesSelector::parse("temp_c{sensor=cpu*}").unwrap();
        assert!(t.select("temp_c", "sensor=cpu_thermal").is_some());
        let all = SeriesSelector::parse("temp_c").unwrap();
        assert_eq!(
            all.select("temp_c", "sensor=x"),
            Some(vec![("sensor".into(), "x".into())])
        );
        assert!(SeriesSelector::parse("Temp C").is_err());
        assert!(SeriesSelector::parse("temp_c{sensor}").is_err());
        assert!(SeriesSelector::parse("temp_c{sensor=x").is_err());
    }

    #[test]
    fn fingerprint_is_stable() {
        let labels: BTreeMap<String, String> = [("rule", "temperature"), ("site", "club")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        // Pinned: a stored fingerprint must keep naming the same alert across releases.
        assert_eq!(fingerprint(&labels), "3439ed64944a9eba");
        assert_eq!(fingerprint(&BTreeMap::new()), "cbf29ce484222325");
    }

    proptest! {
        #[test]
        fn star_matches_everything_and_literals_match_themselves(s in ".{0,30}") {
            prop_assert!(glob("*", &s));
            if !s.contains('*') {
                prop_assert!(glob(&s, &s));
                let suffixed = format!("{s}x");
                prop_assert!(!glob(&s, &suffixed));
            }
        }
    }
}
