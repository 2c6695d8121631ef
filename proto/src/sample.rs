//! Flattening a [`Metrics`] payload into named samples.
//!
//! A sample is `(metric, labels, value)`: `cpu.usage_pct`, `fs.used_pct{mount=/}`. The hub
//! stores series under these names and the HTTP API queries them (`metric=cpu.usage_pct`),
//! so the naming lives here, next to the payload it reads.

use crate::payload::Metrics;

/// One numeric value of a metrics payload.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Dotted metric name with its unit suffix, e.g. `memory.used_pct`.
    pub metric: &'static str,
    /// Canonical labels `key=value`, comma-separated, sorted by key; empty when none.
    pub labels: String,
    pub value: f64,
}

fn push(out: &mut Vec<Sample>, metric: &'static str, labels: String, value: f64) {
    if value.is_finite() {
        out.push(Sample {
            metric,
            labels,
            value,
        });
    }
}

/// Label value escaping: `,` and `=` would break the canonical form, `\` escapes them.
fn label(key: &str, value: &str) -> String {
    let mut out = String::with_capacity(key.len() + value.len() + 1);
    out.push_str(key);
    out.push('=');
    for c in value.chars() {
        if matches!(c, ',' | '=' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

impl Metrics {
    /// Every finite numeric value of the payload as a named sample. Non-finite values
    /// (NaN, ±∞) are skipped: they cannot be stored or charted.
    pub fn samples(&self) -> Vec<Sample> {
        let mut out = Vec::with_capacity(32);
        if let Some(cpu) = &self.cpu {
            push(&mut out, "cpu.usage_pct", String::new(), cpu.usage_pct);
            push(&mut out, "cpu.load_1", String::new(), cpu.load_1);
            push(&mut out, "cpu.load_5", String::new(), cpu.load_5);
            push(&mut out, "cpu.load_15", String::new(), cpu.load_15);
            for (i, pct) in cpu.per_core_pct.iter().enumerate() {
                push(&mut out, "cpu.core_usage_pct", format!("core={i}"), *pct);
            }
        }
        if let Some(m) = &self.memory {
            push(
                &mut out,
                "memory.total_bytes",
                String::new(),
                m.total_bytes as f64,
            );
            push(
                &mut out,
                "memory.used_bytes",
                String::new(),
                m.used_bytes as f64,
            );
            push(
                &mut out,
                "memory.available_bytes",
                String::new(),
                m.available_bytes as f64,
            );
            push(&mut out, "memory.used_pct", String::new(), m.used_pct);
        }
        if let Some(s) = &self.swap {
            push(
                &mut out,
                "swap.total_bytes",
                String::new(),
                s.total_bytes as f64,
            );
            push(
                &mut out,
                "swap.used_bytes",
                String::new(),
                s.used_bytes as f64,
            );
            push(&mut out, "swap.used_pct", String::new(), s.used_pct);
        }
        for fs in &self.filesystems {
            let l = label("mount", &fs.mount);
            push(&mut out, "fs.total_bytes", l.clone(), fs.total_bytes as f64);
            push(&mut out, "fs.used_bytes", l.clone(), fs.used_bytes as f64);
            push(
                &mut out,
                "fs.available_bytes",
                l.clone(),
                fs.available_bytes as f64,
            );
            push(&mut out, "fs.used_pct", l, fs.used_pct);
        }
        for nic in &self.network {
            let l = label("iface", &nic.name);
            push(&mut out, "net.rx_bytes", l.clone(), nic.rx_bytes as f64);
            push(&mut out, "net.tx_bytes", l.clone(), nic.tx_bytes as f64);
            if let Some(v) = nic.rx_bps {
                push(&mut out, "net.rx_bps", l.clone(), v);
            }
            if let Some(v) = nic.tx_bps {
                push(&mut out, "net.tx_bps", l, v);
            }
        }
        for t in &self.temperatures {
            push(&mut out, "temp_c", label("sensor", &t.label), t.temp_c);
        }
        if let Some(up) = self.uptime_s {
            push(&mut out, "uptime_s", String::new(), up as f64);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use crate::payload::*;

    #[test]
    fn flattens_with_labels_and_skips_non_finite() {
        let m = Metrics {
            ts: 1,
            session: "s".into(),
            seq: 1,
            cpu: Some(Cpu {
                usage_pct: 12.5,
                per_core_pct: vec![10.0, f64::NAN],
                load_1: 0.5,
                load_5: 0.4,
                load_15: 0.3,
            }),
            filesystems: vec![Filesystem {
                mount: "/mnt/a,b=c".into(),
                used_pct: 50.0,
                ..Default::default()
            }],
            temperatures: vec![Temperature {
                label: "cpu_thermal".into(),
                temp_c: 48.2,
            }],
            ..Default::default()
        };
        let s = m.samples();
        let find = |name: &str, labels: &str| {
            s.iter()
                .find(|x| x.metric == name && x.labels == labels)
                .map(|x| x.value)
        };
        assert_eq!(find("cpu.usage_pct", ""), Some(12.5));
        assert_eq!(find("cpu.core_usage_pct", "core=0"), Some(10.0));
        assert_eq!(find("cpu.core_usage_pct", "core=1"), None);
        assert_eq!(find("fs.used_pct", r"mount=/mnt/a\,b\=c"), Some(50.0));
        assert_eq!(find("temp_c", "sensor=cpu_thermal"), Some(48.2));
    }
}
