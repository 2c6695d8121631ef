//! The Prometheus text exposition format (version 0.0.4), written by hand: one `# HELP` and
//! one `# TYPE` line per family, then its samples, each family contiguous, no timestamps.
//! Pure: no I/O, so escaping and grouping are unit-tested here.

use std::collections::BTreeMap;
use std::fmt::Write as _;

/// The content type Prometheus expects for this format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The metric types this exporter writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Gauge,
    /// Only ever goes up (resets when its source restarts); the name ends in `_total`.
    Counter,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Gauge => "gauge",
            Kind::Counter => "counter",
        }
    }
}

/// One family being written: its header lines and its samples so far.
struct Family {
    text: String,
}

/// Samples grouped by family, whatever order they are added in; families come out sorted
/// by name so a scrape is deterministic.
#[derive(Default)]
pub struct Families {
    families: BTreeMap<String, Family>,
}

impl Families {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one sample of `name` (a valid metric name; see [`metric_name`]). The first
    /// sample of a family writes its `# HELP` and `# TYPE`; later ones keep the first
    /// `kind` and `help`. Label names must be valid (see [`label_name`]); values are
    /// escaped here.
    pub fn sample(
        &mut self,
        name: &str,
        kind: Kind,
        help: &str,
        labels: &[(&str, &str)],
        value: f64,
    ) {
        let family = match self.families.get_mut(name) {
            Some(f) => f,
            None => {
                let mut text = String::with_capacity(256);
                let _ = writeln!(text, "# HELP {name} {}", escape_help(help));
                let _ = writeln!(text, "# TYPE {name} {}", kind.as_str());
                self.families
                    .entry(name.to_owned())
                    .or_insert(Family { text })
            }
        };
        let out = &mut family.text;
        out.push_str(name);
        if !labels.is_empty() {
            out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(k);
                out.push_str("=\"");
                push_label_value(out, v);
                out.push('"');
            }
            out.push('}');
        }
        out.push(' ');
        push_value(out, value);
        out.push('\n');
    }

    /// The exposition text.
    pub fn finish(self) -> String {
        let len = self.families.values().map(|f| f.text.len()).sum();
        let mut out = String::with_capacity(len);
        for f in self.families.into_values() {
            out.push_str(&f.text);
        }
        out
    }
}

/// `\` and newline escaped, as the format wants in `# HELP` text.
fn escape_help(help: &str) -> String {
    help.replace('\\', "\\\\").replace('\n', "\\n")
}

/// Label values escape `\`, `"` and newline.
fn push_label_value(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Go's float syntax as Prometheus parses it; Rust prints finite values without exponent.
fn push_value(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v == f64::INFINITY {
        out.push_str("+Inf");
    } else if v == f64::NEG_INFINITY {
        out.push_str("-Inf");
    } else {
        let _ = write!(out, "{v}");
    }
}

/// A valid metric name made of `name`: characters outside `[a-zA-Z0-9_:]` become `_`,
/// and a leading digit gets a `_` in front.
pub fn metric_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 1);
    for (i, c) in name.chars().enumerate() {
        if i == 0 && c.is_ascii_digit() {
            out.push('_');
        }
        out.push(if c.is_ascii_alphanumeric() || c == '_' || c == ':' {
            c
        } else {
            '_'
        });
    }
    out
}

/// A valid label name made of `name`: as [`metric_name`] without `:`, and never starting
/// with the reserved `__`.
pub fn label_name(name: &str) -> String {
    let mut out = metric_name(name).replace(':', "_");
    if out.is_empty() {
        out.push('_');
    }
    while out.starts_with("__") {
        out.remove(0);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_are_contiguous_and_sorted_with_one_header_each() {
        let mut f = Families::new();
        f.sample("b_total", Kind::Counter, "B things.", &[("x", "1")], 1.0);
        f.sample("a", Kind::Gauge, "A.", &[], 2.5);
        f.sample("b_total", Kind::Counter, "ignored", &[("x", "2")], 3.0);
        assert_eq!(
            f.finish(),
            "# HELP a A.\n# TYPE a gauge\na 2.5\n\
             # HELP b_total B things.\n# TYPE b_total counter\n\
             b_total{x=\"1\"} 1\nb_total{x=\"2\"} 3\n"
        );
    }

    #[test]
    fn label_values_and_help_are_escaped() {
        let mut f = Families::new();
        f.sample(
            "m",
            Kind::Gauge,
            "back\\slash\nnewline",
            &[("mount", "/mnt/a \"b\"\\c\nd"), ("k", "é,=")],
            1.0,
        );
        assert_eq!(
            f.finish(),
            "# HELP m back\\\\slash\\nnewline\n# TYPE m gauge\n\
             m{mount=\"/mnt/a \\\"b\\\"\\\\c\\nd\",k=\"é,=\"} 1\n"
        );
    }

    #[test]
    fn values_use_prometheus_float_syntax() {
        let mut s = String::new();
        for v in [
            0.0,
            -1.5,
            1e21,
            1e-7,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ] {
            push_value(&mut s, v);
            s.push(' ');
        }
        assert_eq!(s, "0 -1.5 1000000000000000000000 0.0000001 NaN +Inf -Inf ");
    }

    #[test]
    fn names_are_made_valid() {
        assert_eq!(metric_name("cpu.usage_pct"), "cpu_usage_pct");
        assert_eq!(metric_name("1x-y"), "_1x_y");
        assert_eq!(label_name("__name__"), "_name__");
        assert_eq!(label_name("a:b"), "a_b");
        assert_eq!(label_name(""), "_");
    }
}
