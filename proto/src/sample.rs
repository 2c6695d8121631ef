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
        if let Some(f) = self.cpu.as_ref().and_then(|c| c.freq_mhz) {
            push(&mut out, "cpu.freq_mhz", String::new(), f);
        }
        for nic in &self.network {
            let l = label("iface", &nic.name);
            push(&mut out, "net.rx_errors", l.clone(), nic.rx_errors as f64);
            push(&mut out, "net.tx_errors", l.clone(), nic.tx_errors as f64);
            push(&mut out, "net.rx_dropped", l.clone(), nic.rx_dropped as f64);
            push(&mut out, "net.tx_dropped", l, nic.tx_dropped as f64);
        }
        for d in &self.disks {
            let l = label("device", &d.device);
            push(&mut out, "disk.read_bytes", l.clone(), d.read_bytes as f64);
            push(
                &mut out,
                "disk.write_bytes",
                l.clone(),
                d.write_bytes as f64,
            );
            for (name, v) in [
                ("disk.read_bps", d.read_bps),
                ("disk.write_bps", d.write_bps),
                ("disk.busy_pct", d.busy_pct),
            ] {
                if let Some(v) = v {
                    push(&mut out, name, l.clone(), v);
                }
            }
        }
        if let Some(sys) = &self.system {
            push(
                &mut out,
                "system.process_count",
                String::new(),
                sys.process_count as f64,
            );
            if let Some(synced) = sys.clock_synced {
                push(
                    &mut out,
                    "clock.synced",
                    String::new(),
                    f64::from(u8::from(synced)),
                );
            }
            if let Some(e) = sys.clock_max_error_ms {
                push(&mut out, "clock.max_error_ms", String::new(), e);
            }
        }
        if let Some(pi) = &self.pi {
            for (name, flag) in [
                ("pi.under_voltage_now", pi.under_voltage_now),
                ("pi.freq_capped_now", pi.freq_capped_now),
                ("pi.throttled_now", pi.throttled_now),
                ("pi.soft_temp_limit_now", pi.soft_temp_limit_now),
                ("pi.under_voltage_occurred", pi.under_voltage_occurred),
                ("pi.freq_capped_occurred", pi.freq_capped_occurred),
                ("pi.throttled_occurred", pi.throttled_occurred),
                ("pi.soft_temp_limit_occurred", pi.soft_temp_limit_occurred),
            ] {
                push(&mut out, name, String::new(), f64::from(u8::from(flag)));
            }
        }
        for w in &self.wifi {
            let l = label("iface", &w.interface);
            push(
                &mut out,
                "wifi.link_quality_pct",
                l.clone(),
                w.link_quality_pct,
            );
            push(&mut out, "wifi.signal_dbm", l.clone(), w.signal_dbm);
            if let Some(n) = w.noise_dbm {
                push(&mut out, "wifi.noise_dbm", l, n);
            }
        }
        for c in &self.checks {
            let l = label("check", &c.name);
            push(&mut out, "check.ok", l.clone(), f64::from(u8::from(c.ok)));
            if let Some(ms) = c.latency_ms {
                push(&mut out, "check.latency_ms", l, ms);
            }
        }
        for p in &self.probes {
            let l = label("target", &p.target);
            push(&mut out, "probe.loss_pct", l.clone(), p.loss_pct);
            for (name, v) in [
                ("probe.rtt_min_ms", p.rtt_min_ms),
                ("probe.rtt_avg_ms", p.rtt_avg_ms),
                ("probe.rtt_max_ms", p.rtt_max_ms),
                ("probe.jitter_ms", p.jitter_ms),
            ] {
                if let Some(v) = v {
                    push(&mut out, name, l.clone(), v);
                }
            }
        }
        if let Some(d) = self.outbox_dropped {
            push(&mut out, "agent.outbox_dropped", String::new(), d as f64);
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
                freq_mhz: Some(1500.0),
            }),
            filesystems: vec![Filesystem {
                mount: "/mnt/a,b=c".into(),
                used_pct: 50.0,
                ..Default::default()
            }],
            temperatures: vec![Temperature {
                label: "cpu_thermal".into(),
                temp_c: 48.2,
                crit_c: None,
            }],
            pi: Some(PiHealth {
                under_voltage_occurred: true,
                ..Default::default()
            }),
            checks: vec![CheckResult {
                name: "nginx".into(),
                kind: "systemd".into(),
                ok: false,
                state: "failed".into(),
                ..Default::default()
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
        assert_eq!(find("cpu.freq_mhz", ""), Some(1500.0));
        assert_eq!(find("pi.under_voltage_occurred", ""), Some(1.0));
        assert_eq!(find("pi.under_voltage_now", ""), Some(0.0));
        assert_eq!(find("check.ok", "check=nginx"), Some(0.0));
        assert_eq!(find("check.latency_ms", "check=nginx"), None);
    }
}
