//! The fleet part of `/metrics`: every node's status and latest values, every site's
//! status. Pure: it reads the fleet snapshot and the stored rows it is given.
//!
//! Naming: a series of `sitewatch_proto::sample` becomes `sitewatch_` + its name with dots
//! as underscores (`cpu.usage_pct` → `sitewatch_cpu_usage_pct`), its labels become
//! Prometheus labels next to `site` and `node`. Units follow Prometheus' base units where
//! the series' own differ: `_s` and `_ms` → `_seconds` (values converted), `_c` →
//! `_celsius`, `_mhz` → `_hertz`, `_bps` → `_bytes_per_second`; counters since boot or
//! start (`net.rx_bytes`, `disk.read_bytes`, …) end in `_total`. Percentages stay `_pct`
//! (0–100), as everywhere else in sitewatch. `system.process_count` becomes
//! `sitewatch_system_processes` (`_count` is reserved for histograms).
//!
//! No sample carries the agent's timestamp: Prometheus' advice is to leave timestamps out
//! of an exporter's samples (a Pi without RTC would send samples Prometheus rejects as
//! out of bounds, and staleness handling would be lost). Values are those of the latest
//! sample, exported while the node is online only; the agent's sample time is
//! `sitewatch_node_metrics_timestamp_seconds`.

use std::collections::{BTreeMap, HashMap, HashSet};

use sitewatch_proto::{Info, Metrics};

use super::exposition::{Families, Kind, label_name, metric_name};
use crate::alert::matcher::parse_labels;
use crate::state::{NodeStatus, NodeView};
use crate::store::NodeRow;

/// Series that count since boot (or agent start) rather than measure a level.
const COUNTERS: &[&str] = &[
    "net.rx_bytes",
    "net.tx_bytes",
    "net.rx_errors",
    "net.tx_errors",
    "net.rx_dropped",
    "net.tx_dropped",
    "disk.read_bytes",
    "disk.write_bytes",
    "agent.outbox_dropped",
];

/// How one series of the agents' metrics is exported.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesFamily {
    pub name: String,
    pub kind: Kind,
    pub help: String,
    /// Factor from the series' unit to the exported one.
    pub scale: f64,
}

/// The Prometheus family of a series named by `sitewatch_proto::sample`.
pub fn series_family(series: &str) -> SeriesFamily {
    let base = metric_name(series);
    let (stem, unit, scale) = [
        ("_ms", "_seconds", 0.001),
        ("_s", "_seconds", 1.0),
        ("_c", "_celsius", 1.0),
        ("_mhz", "_hertz", 1e6),
        ("_bps", "_bytes_per_second", 1.0),
    ]
    .iter()
    .find_map(|(suffix, unit, scale)| {
        base.strip_suffix(suffix)
            .map(|stem| (stem.to_owned(), *unit, *scale))
    })
    .unwrap_or((base.clone(), "", 1.0));
    // `_count`, `_sum` and `_bucket` belong to histograms and summaries.
    let stem = match stem.as_str() {
        "system_process_count" => "system_processes".to_owned(),
        s if ["_count", "_sum", "_bucket"].iter().any(|r| s.ends_with(r)) => format!("{s}_value"),
        _ => stem,
    };
    let counter = COUNTERS.contains(&series);
    let name = format!(
        "sitewatch_{stem}{unit}{}",
        if counter { "_total" } else { "" }
    );
    SeriesFamily {
        name,
        kind: if counter { Kind::Counter } else { Kind::Gauge },
        help: format!("{} (sitewatch series {series}).", help(series)),
        scale,
    }
}

fn help(series: &str) -> &'static str {
    match series {
        "cpu.usage_pct" => "CPU busy time over the last interval, percent of all cores",
        "cpu.core_usage_pct" => "Busy time of one core over the last interval, percent",
        "cpu.load_1" | "cpu.load_5" | "cpu.load_15" => "Load average over 1, 5 or 15 minutes",
        "cpu.freq_mhz" => "Current CPU clock frequency",
        "memory.total_bytes" | "swap.total_bytes" => "Size of memory or swap",
        "memory.used_bytes" | "swap.used_bytes" => "Memory or swap in use",
        "memory.available_bytes" => "Memory available to new programs without swapping",
        "memory.used_pct" | "swap.used_pct" => "Memory or swap in use, percent",
        "fs.total_bytes" => "Size of the filesystem",
        "fs.used_bytes" => "Space used on the filesystem, root's reserved blocks included",
        "fs.available_bytes" => "Space available to unprivileged users on the filesystem",
        "fs.used_pct" => "Space used on the filesystem, percent",
        "net.rx_bytes" | "net.tx_bytes" => "Bytes received or sent by the interface since boot",
        "net.rx_bps" | "net.tx_bps" => "Bytes per second received or sent over the last interval",
        "net.rx_errors" | "net.tx_errors" => "Receive or transmit errors since boot",
        "net.rx_dropped" | "net.tx_dropped" => "Packets dropped on receive or transmit since boot",
        "temp_c" => "Temperature of the sensor",
        "uptime_s" => "Time since the node booted",
        "disk.read_bytes" | "disk.write_bytes" => {
            "Bytes read from or written to the device since boot"
        }
        "disk.read_bps" | "disk.write_bps" => {
            "Bytes per second read or written over the last interval"
        }
        "disk.busy_pct" => "Share of the last interval the device was busy, percent",
        "system.process_count" => "Processes running on the node",
        "clock.synced" => "1 when the node's clock is synchronised (NTP), else 0",
        "clock.max_error_ms" => "Maximum error of the node's clock as the kernel estimates it",
        "pi.under_voltage_now" => "1 while the Raspberry Pi is under-volted",
        "pi.freq_capped_now" => "1 while the Raspberry Pi's ARM frequency is capped",
        "pi.throttled_now" => "1 while the Raspberry Pi is throttled",
        "pi.soft_temp_limit_now" => "1 while the Raspberry Pi's soft temperature limit is active",
        "pi.under_voltage_occurred" => "1 when the Raspberry Pi was under-volted since boot",
        "pi.freq_capped_occurred" => "1 when the Raspberry Pi's frequency was capped since boot",
        "pi.throttled_occurred" => "1 when the Raspberry Pi was throttled since boot",
        "pi.soft_temp_limit_occurred" => {
            "1 when the Raspberry Pi's soft temperature limit was hit since boot"
        }
        "wifi.link_quality_pct" => "Wi-Fi link quality, percent",
        "wifi.signal_dbm" => "Wi-Fi signal level, dBm",
        "wifi.noise_dbm" => "Wi-Fi noise level, dBm",
        "check.ok" => "1 when the agent's check succeeded, else 0",
        "check.latency_ms" => "Time the agent's check took",
        "probe.loss_pct" => "Packet loss toward the probe target, percent",
        "probe.rtt_min_ms" | "probe.rtt_avg_ms" | "probe.rtt_max_ms" => {
            "Round-trip time toward the probe target (min, avg or max)"
        }
        "probe.jitter_ms" => "Round-trip time jitter toward the probe target",
        "agent.outbox_dropped" => "Messages the agent's outbox dropped because it was full",
        _ => "A value of the agents' metrics messages, see docs/PROTOCOL.md",
    }
}

/// Appends the fleet's families: node status, identity and latest values, site status.
/// `rows` are the stored nodes (latest metrics and info); `nodes` the live snapshot, which
/// says which nodes exist and whether they are online.
pub fn render(out: &mut Families, nodes: &[NodeView], rows: &[NodeRow]) {
    let stored: HashMap<(&str, &str), &NodeRow> = rows
        .iter()
        .map(|r| ((r.site.as_str(), r.node.as_str()), r))
        .collect();
    let mut families: HashMap<&'static str, SeriesFamily> = HashMap::new();
    let mut seen: HashSet<(&'static str, String)> = HashSet::new();
    for v in nodes {
        let (site, node) = (v.site.as_str(), v.node.as_str());
        let ids = [("site", site), ("node", node)];
        let online = v.status == NodeStatus::Online;
        out.sample(
            "sitewatch_node_up",
            Kind::Gauge,
            "1 while the hub considers the node online (heartbeats arriving), else 0.",
            &ids,
            if online { 1.0 } else { 0.0 },
        );
        if let Some(ms) = v.last_seen_ms {
            out.sample(
                "sitewatch_node_last_seen_timestamp_seconds",
                Kind::Gauge,
                "When the hub last heard from the node (hub clock, Unix time).",
                &ids,
                ms as f64 / 1000.0,
            );
        }
        let row = stored.get(&(site, node));
        let info: Option<Info> = row
            .and_then(|r| r.info_json.as_deref())
            .and_then(|j| serde_json::from_str(j).ok());
        let hostname = info
            .as_ref()
            .map(|i| i.hostname.as_str())
            .or(v.hostname.as_deref())
            .unwrap_or("");
        let (version, os, kernel, arch, board) = info.as_ref().map_or(("", "", "", "", ""), |i| {
            (
                i.agent_version.as_str(),
                i.os.as_str(),
                i.kernel.as_str(),
                i.arch.as_str(),
                i.board_model.as_deref().unwrap_or(""),
            )
        });
        out.sample(
            "sitewatch_node_info",
            Kind::Gauge,
            "Always 1; the labels describe the node as its agent announced itself.",
            &[
                ("site", site),
                ("node", node),
                ("hostname", hostname),
                ("agent_version", version),
                ("os", os),
                ("kernel", kernel),
                ("arch", arch),
                ("board_model", board),
            ],
            1.0,
        );
        if !online {
            continue;
        }
        let Some(metrics) = row
            .and_then(|r| r.latest_metrics_json.as_deref())
            .and_then(|j| serde_json::from_str::<Metrics>(j).ok())
        else {
            continue;
        };
        out.sample(
            "sitewatch_node_metrics_timestamp_seconds",
            Kind::Gauge,
            "When the agent took the latest metrics sample (agent clock, Unix time).",
            &ids,
            metrics.ts as f64 / 1000.0,
        );
        seen.clear();
        for s in metrics.samples() {
            if !seen.insert((s.metric, s.labels.clone())) {
                continue; // two devices with one name: the first one wins
            }
            let family = families
                .entry(s.metric)
                .or_insert_with(|| series_family(s.metric));
            let extra: Vec<(String, String)> = parse_labels(&s.labels)
                .into_iter()
                .map(|(k, v)| {
                    let k = label_name(&k);
                    let k = if k == "site" || k == "node" {
                        format!("exported_{k}")
                    } else {
                        k
                    };
                    (k, v)
                })
                .collect();
            let mut labels: Vec<(&str, &str)> = Vec::with_capacity(2 + extra.len());
            labels.extend_from_slice(&ids);
            labels.extend(extra.iter().map(|(k, v)| (k.as_str(), v.as_str())));
            out.sample(
                &family.name,
                family.kind,
                &family.help,
                &labels,
                s.value * family.scale,
            );
        }
    }
    render_sites(out, nodes);
}

/// `sitewatch_site_status{site, status}`: 1 for the site's current status, 0 for the two
/// others. A site is offline when all its nodes are, degraded when some are (as the hub's
/// retained `…/{site}/status`).
fn render_sites(out: &mut Families, nodes: &[NodeView]) {
    let mut sites: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for v in nodes {
        let entry = sites.entry(v.site.as_str()).or_default();
        entry.0 += 1;
        entry.1 += usize::from(v.status == NodeStatus::Offline);
    }
    for (site, (total, offline)) in sites {
        let status = if offline == total {
            "offline"
        } else if offline == 0 {
            "online"
        } else {
            "degraded"
        };
        for s in ["online", "degraded", "offline"] {
            out.sample(
                "sitewatch_site_status",
                Kind::Gauge,
                "1 for the site's status (online, degraded: some nodes offline, offline: all \
                 nodes offline), 0 for the others.",
                &[("site", site), ("status", s)],
                if s == status { 1.0 } else { 0.0 },
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sitewatch_proto::payload::{
        CheckResult, Cpu, DiskIo, Filesystem, Memory, NetInterface, PiHealth, Probe, Swap,
        SystemState, Temperature, Wifi,
    };
    use sitewatch_proto::{NodeId, SiteId};

    fn view(site: &str, node: &str, status: NodeStatus) -> NodeView {
        NodeView {
            site: SiteId::new(site.to_owned()).unwrap(),
            node: NodeId::new(node.to_owned()).unwrap(),
            status,
            status_since_ms: 1,
            last_seen_ms: Some(1_700_000_000_500),
            hostname: Some("from-snapshot".into()),
            metrics: None,
        }
    }

    fn row(site: &str, node: &str, metrics: &Metrics) -> NodeRow {
        NodeRow {
            site: site.into(),
            node: node.into(),
            status: "online".into(),
            status_since_ms: None,
            last_seen_ms: None,
            info_json: Some(
                r#"{"ts":1,"session":"s","agent_version":"0.3.0","hostname":"pi-\"gate\"",
                    "os":"Debian","kernel":"6.1","arch":"aarch64","heartbeat_interval_s":10,
                    "metrics_interval_s":30,"keepalive_s":30}"#
                    .into(),
            ),
            latest_metrics_json: Some(serde_json::to_string(metrics).unwrap()),
        }
    }

    /// Every group of the payload filled, so every series name appears.
    fn full_metrics() -> Metrics {
        Metrics {
            ts: 1_700_000_000_000,
            session: "s".into(),
            seq: 1,
            cpu: Some(Cpu {
                usage_pct: 12.5,
                per_core_pct: vec![10.0, 15.0],
                load_1: 0.5,
                load_5: 0.4,
                load_15: 0.3,
                freq_mhz: Some(1500.0),
            }),
            memory: Some(Memory {
                total_bytes: 4_000,
                used_bytes: 1_000,
                available_bytes: 3_000,
                used_pct: 25.0,
            }),
            swap: Some(Swap {
                total_bytes: 100,
                used_bytes: 0,
                used_pct: 0.0,
            }),
            filesystems: vec![
                Filesystem {
                    mount: "/".into(),
                    used_pct: 40.0,
                    ..Default::default()
                },
                Filesystem {
                    mount: "/mnt/my \"usb\"".into(),
                    used_pct: 90.0,
                    ..Default::default()
                },
            ],
            network: vec![NetInterface {
                name: "eth0".into(),
                rx_bytes: 5,
                rx_bps: Some(1.0),
                tx_bps: Some(2.0),
                ..Default::default()
            }],
            temperatures: vec![Temperature {
                label: "cpu_thermal".into(),
                temp_c: 51.5,
                crit_c: None,
            }],
            uptime_s: Some(3600),
            disks: vec![DiskIo {
                device: "mmcblk0".into(),
                read_bps: Some(1.0),
                write_bps: Some(1.0),
                busy_pct: Some(3.0),
                ..Default::default()
            }],
            system: Some(SystemState {
                process_count: 100,
                clock_synced: Some(true),
                clock_max_error_ms: Some(250.0),
                ..Default::default()
            }),
            pi: Some(PiHealth::default()),
            wifi: vec![Wifi {
                interface: "wlan0".into(),
                link_quality_pct: 70.0,
                signal_dbm: -60.0,
                noise_dbm: Some(-90.0),
            }],
            probes: vec![Probe {
                target: "192.168.1.1".into(),
                loss_pct: 0.0,
                rtt_min_ms: Some(1.0),
                rtt_avg_ms: Some(2.0),
                rtt_max_ms: Some(3.0),
                jitter_ms: Some(0.5),
                ..Default::default()
            }],
            checks: vec![CheckResult {
                name: "web".into(),
                ok: true,
                latency_ms: Some(12.0),
                ..Default::default()
            }],
            outbox_dropped: Some(0),
            ..Default::default()
        }
    }

    fn render_one(views: &[NodeView], rows: &[NodeRow]) -> String {
        let mut f = Families::new();
        render(&mut f, views, rows);
        f.finish()
    }

    #[test]
    fn series_names_follow_prometheus_units() {
        let f = series_family("cpu.usage_pct");
        assert_eq!(
            (f.name.as_str(), f.kind, f.scale),
            ("sitewatch_cpu_usage_pct", Kind::Gauge, 1.0)
        );
        assert_eq!(series_family("uptime_s").name, "sitewatch_uptime_seconds");
        let ms = series_family("check.latency_ms");
        assert_eq!(
            (ms.name.as_str(), ms.scale),
            ("sitewatch_check_latency_seconds", 0.001)
        );
        assert_eq!(series_family("temp_c").name, "sitewatch_temp_celsius");
        assert_eq!(series_family("cpu.freq_mhz").scale, 1e6);
        assert_eq!(
            series_family("net.rx_bps").name,
            "sitewatch_net_rx_bytes_per_second"
        );
        let c = series_family("net.rx_bytes");
        assert_eq!(
            (c.name.as_str(), c.kind),
            ("sitewatch_net_rx_bytes_total", Kind::Counter)
        );
        assert_eq!(
            series_family("future.thing-x").name,
            "sitewatch_future_thing_x"
        );
    }

    #[test]
    fn every_series_name_is_valid_and_lint_clean() {
        // promtool refuses abbreviated units (`_s`, `_ms`) and counters without `_total`.
        for s in full_metrics().samples() {
            let f = series_family(s.metric);
            assert!(
                f.name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_'),
                "{}",
                f.name
            );
            let tokens: Vec<&str> = f.name.split('_').collect();
            for bad in [
                "s", "ms", "us", "ns", "sec", "b", "kb", "mb", "gb", "m", "h", "d",
            ] {
                assert!(
                    !tokens.contains(&bad),
                    "{} has the abbreviated unit {bad}",
                    f.name
                );
            }
            assert_eq!(
                f.name.ends_with("_total"),
                f.kind == Kind::Counter,
                "{}",
                f.name
            );
            assert!(
                !help(s.metric).starts_with("A value of"),
                "no help for {}",
                s.metric
            );
        }
    }

    #[test]
    fn online_nodes_export_values_with_site_node_and_series_labels() {
        let m = full_metrics();
        let text = render_one(
            &[view("club-1", "pi-gate", NodeStatus::Online)],
            &[row("club-1", "pi-gate", &m)],
        );
        for line in [
            "sitewatch_node_up{site=\"club-1\",node=\"pi-gate\"} 1\n",
            "sitewatch_cpu_usage_pct{site=\"club-1\",node=\"pi-gate\"} 12.5\n",
            "sitewatch_cpu_core_usage_pct{site=\"club-1\",node=\"pi-gate\",core=\"1\"} 15\n",
            "sitewatch_fs_used_pct{site=\"club-1\",node=\"pi-gate\",mount=\"/\"} 40\n",
            "sitewatch_fs_used_pct{site=\"club-1\",node=\"pi-gate\",mount=\"/mnt/my \\\"usb\\\"\"} 90\n",
            "sitewatch_temp_celsius{site=\"club-1\",node=\"pi-gate\",sensor=\"cpu_thermal\"} 51.5\n",
            "sitewatch_uptime_seconds{site=\"club-1\",node=\"pi-gate\"} 3600\n",
            "sitewatch_clock_max_error_seconds{site=\"club-1\",node=\"pi-gate\"} 0.25\n",
            "sitewatch_cpu_freq_hertz{site=\"club-1\",node=\"pi-gate\"} 1500000000\n",
            "sitewatch_node_metrics_timestamp_seconds{site=\"club-1\",node=\"pi-gate\"} 1700000000\n",
            "sitewatch_node_last_seen_timestamp_seconds{site=\"club-1\",node=\"pi-gate\"} 1700000000.5\n",
            "# TYPE sitewatch_net_rx_bytes_total counter\n",
            "sitewatch_site_status{site=\"club-1\",status=\"online\"} 1\n",
            "sitewatch_site_status{site=\"club-1\",status=\"offline\"} 0\n",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
        assert!(
            text.contains("hostname=\"pi-\\\"gate\\\"\",agent_version=\"0.3.0\""),
            "{text}"
        );
        // No timestamps: every sample line is `name{labels} value`.
        for l in text.lines().filter(|l| !l.starts_with('#')) {
            assert_eq!(
                l.rsplit('}').next().unwrap().split_whitespace().count(),
                1,
                "{l}"
            );
        }
    }

    #[test]
    fn offline_nodes_are_down_without_stale_values_and_sites_roll_up() {
        let m = full_metrics();
        let text = render_one(
            &[
                view("a", "n1", NodeStatus::Online),
                view("a", "n2", NodeStatus::Offline),
                view("b", "n3", NodeStatus::Offline),
                view("c", "n4", NodeStatus::Unknown),
            ],
            &[row("a", "n1", &m), row("a", "n2", &m), row("b", "n3", &m)],
        );
        assert!(text.contains("sitewatch_node_up{site=\"a\",node=\"n2\"} 0\n"));
        assert!(!text.contains("sitewatch_cpu_usage_pct{site=\"a\",node=\"n2\"}"));
        assert!(text.contains("sitewatch_cpu_usage_pct{site=\"a\",node=\"n1\"}"));
        assert!(text.contains("sitewatch_site_status{site=\"a\",status=\"degraded\"} 1\n"));
        assert!(text.contains("sitewatch_site_status{site=\"b\",status=\"offline\"} 1\n"));
        assert!(text.contains("sitewatch_site_status{site=\"c\",status=\"online\"} 1\n"));
        // Without stored info, the snapshot's hostname still names the node.
        assert!(text.contains("node=\"n4\",hostname=\"from-snapshot\""));
    }

    #[test]
    fn a_damaged_stored_row_is_skipped_not_fatal() {
        let mut r = row("a", "n1", &full_metrics());
        r.latest_metrics_json = Some("{not json".into());
        r.info_json = Some("[]".into());
        let text = render_one(&[view("a", "n1", NodeStatus::Online)], &[r]);
        assert!(text.contains("sitewatch_node_up{site=\"a\",node=\"n1\"} 1\n"));
        assert!(!text.contains("sitewatch_cpu_usage_pct"));
    }
}
