//! What a simulated node publishes: `info`, heartbeats and realistic metrics payloads built
//! from `sitewatch_proto` types, so they are byte for byte what the agent would send.
//!
//! A [`NodeModel`] is a Raspberry Pi 4 shaped machine whose values drift between samples
//! (random walks): 4 cores with usage and frequency, memory, swap, 3 filesystems, 2 network
//! interfaces with growing counters, 3 temperatures, 2 disks, system state, 2 checks and
//! uptime, plus `extra` filesystems and temperature sensors for bigger payloads.

use sitewatch_proto::payload::{
    CheckResult, Cpu, DiskIo, Filesystem, Memory, NetInterface, Swap, SystemState, Temperature,
};
use sitewatch_proto::{Heartbeat, Info, Metrics, NodeId, SiteId};

use crate::rng::{Rng, Walk};

const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

struct Fs {
    mount: String,
    device: String,
    fs_type: &'static str,
    total_bytes: u64,
    used: Walk,
}

struct Nic {
    name: &'static str,
    rx_bytes: u64,
    tx_bytes: u64,
    rx_rate: Walk,
    tx_rate: Walk,
    rx_errors: u64,
    tx_dropped: u64,
    addresses: Vec<String>,
}

struct Disk {
    device: &'static str,
    read_bytes: u64,
    write_bytes: u64,
    read_rate: Walk,
    write_rate: Walk,
    busy: Walk,
}

/// Whole-second intervals announced in `info` (the hub derives heartbeat timeouts from them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Intervals {
    pub heartbeat_s: u64,
    /// Sub-second metrics intervals are announced as 1 s.
    pub metrics_s: u64,
    pub keepalive_s: u64,
}

/// One simulated machine and the values it reports.
pub struct NodeModel {
    rng: Rng,
    hostname: String,
    machine_id: String,
    serial: String,
    boot_id: String,
    boot_time_ms: u64,
    cores: [Walk; 4],
    freq: Walk,
    load: Walk,
    mem_total: u64,
    mem_used: Walk,
    swap_used: Walk,
    filesystems: Vec<Fs>,
    nics: Vec<Nic>,
    temps: Vec<(String, Walk)>,
    disks: Vec<Disk>,
    processes: Walk,
    check_latency: Walk,
    /// When the previous sample was taken (agent clock, ms); rates are absent before it.
    last_ts: Option<u64>,
}

impl NodeModel {
    /// A machine named `node`, booted a random while before `now_ms`, with `extra` more
    /// filesystems and temperature sensors than the base shape.
    pub fn new(node: &NodeId, seed: u64, extra: usize, now_ms: u64) -> Self {
        let mut rng = Rng::with_seed(seed);
        let r = &mut rng;
        let mut filesystems = vec![
            fs(r, "/", "/dev/mmcblk0p2", "ext4", 29.7, 0.2, 0.8),
            fs(r, "/boot/firmware", "/dev/mmcblk0p1", "vfat", 0.5, 0.1, 0.2),
            fs(r, "/srv/data", "/dev/sda1", "ext4", 916.0, 0.05, 0.95),
        ];
        let mut temps = vec![
            ("cpu-thermal".to_owned(), Walk::new(r, 38.0, 78.0, 0.6)),
            ("rp1_adc/temp1".to_owned(), Walk::new(r, 35.0, 60.0, 0.3)),
            ("drivetemp/sda".to_owned(), Walk::new(r, 28.0, 50.0, 0.2)),
        ];
        for k in 0..extra {
            let mount = format!("/mnt/extra-{k}");
            let device = format!("/dev/sd{}1", char::from(b'b' + (k % 24) as u8));
            filesystems.push(fs(r, &mount, &device, "ext4", 64.0, 0.0, 1.0));
            temps.push((format!("sensor-{k}"), Walk::new(r, 20.0, 70.0, 0.5)));
        }
        let subnet = r.below(250) + 1;
        let host = r.below(250) + 2;
        let nics = vec![
            nic(r, "eth0", format!("192.168.{subnet}.{host}/24"), 2.0e6),
            nic(r, "wlan0", format!("10.{subnet}.0.{host}/16"), 2.0e5),
        ];
        let disks = vec![disk(r, "mmcblk0", 5.0e5), disk(r, "sda", 5.0e6)];
        let uptime_ms = r.below(30 * 86_400_000) + 60_000;
        Self {
            hostname: node.as_str().to_owned(),
            machine_id: r.hex(16),
            serial: format!("10000000{}", r.hex(4)),
            boot_id: uuid_like(r),
            boot_time_ms: now_ms.saturating_sub(uptime_ms),
            cores: [0; 4].map(|_| Walk::new(r, 0.0, 100.0, 12.0)),
            freq: Walk::new(r, 600.0, 1800.0, 200.0),
            load: Walk::new(r, 0.0, 4.0, 0.3),
            mem_total: 3_978_678_272,
            mem_used: Walk::new(r, 0.15, 0.85, 0.01),
            swap_used: Walk::new(r, 0.0, 0.3, 0.005),
            filesystems,
            nics,
            temps,
            disks,
            processes: Walk::new(r, 120.0, 260.0, 3.0),
            check_latency: Walk::new(r, 0.2, 25.0, 1.5),
            last_ts: None,
            rng,
        }
    }

    /// Retained `info`, as the agent publishes it on every connect.
    pub fn info(&self, session: &str, now_ms: u64, intervals: Intervals) -> Info {
        let ips = self
            .nics
            .iter()
            .filter_map(|n| n.addresses.first())
            .map(|a| a.split('/').next().unwrap_or(a).to_owned())
            .collect();
        Info {
            ts: now_ms,
            session: session.to_owned(),
            agent_version: concat!(env!("CARGO_PKG_VERSION"), "-loadgen").to_owned(),
            hostname: self.hostname.clone(),
            os: "Debian GNU/Linux 12 (bookworm)".to_owned(),
            kernel: "6.6.51+rpt-rpi-v8".to_owned(),
            arch: "aarch64".to_owned(),
            board_model: Some("Raspberry Pi 4 Model B Rev 1.5".to_owned()),
            serial: Some(self.serial.clone()),
            machine_id: Some(self.machine_id.clone()),
            boot_time_ms: Some(self.boot_time_ms),
            ips,
            macs: vec![
                format!("dc:a6:32:{}", mac_tail(&self.machine_id, 0)),
                format!("dc:a6:32:{}", mac_tail(&self.machine_id, 6)),
            ],
            heartbeat_interval_s: intervals.heartbeat_s,
            metrics_interval_s: intervals.metrics_s,
            keepalive_s: intervals.keepalive_s,
            home_assistant: None,
        }
    }

    /// A heartbeat (without `seq_floor`, which the sender adds).
    pub fn heartbeat(&self, session: &str, seq: u64, now_ms: u64) -> Heartbeat {
        Heartbeat {
            ts: now_ms,
            session: session.to_owned(),
            seq,
            uptime_s: self.uptime_s(now_ms),
            seq_floor: None,
        }
    }

    fn uptime_s(&self, now_ms: u64) -> u64 {
        now_ms.saturating_sub(self.boot_time_ms) / 1000
    }

    /// The next metrics sample; every value moves a little since the previous one.
    pub fn metrics(&mut self, session: &str, seq: u64, now_ms: u64, dropped: u64) -> Metrics {
        let r = &mut self.rng;
        let elapsed_s = self
            .last_ts
            .map(|t| now_ms.saturating_sub(t) as f64 / 1000.0);
        self.last_ts = Some(now_ms);
        let per_core: Vec<f64> = self.cores.iter_mut().map(|c| round2(c.next(r))).collect();
        let usage = per_core.iter().sum::<f64>() / per_core.len() as f64;
        let load_1 = self.load.next(r);
        let mem_used = (self.mem_total as f64 * self.mem_used.next(r)) as u64;
        let swap_total = 104_853_504u64;
        let swap_used = (swap_total as f64 * self.swap_used.next(r)) as u64;
        let filesystems = self
            .filesystems
            .iter_mut()
            .map(|f| {
                let used = (f.total_bytes as f64 * f.used.next(r)) as u64;
                Filesystem {
                    mount: f.mount.clone(),
                    device: f.device.clone(),
                    fs_type: f.fs_type.to_owned(),
                    total_bytes: f.total_bytes,
                    used_bytes: used,
                    available_bytes: f.total_bytes - used,
                    used_pct: 100.0 * used as f64 / f.total_bytes as f64,
                }
            })
            .collect();
        let network = self
            .nics
            .iter_mut()
            .map(|n| {
                let (rx, tx) = (n.rx_rate.next(r), n.tx_rate.next(r));
                if let Some(dt) = elapsed_s {
                    n.rx_bytes += (rx * dt) as u64;
                    n.tx_bytes += (tx * dt) as u64;
                }
                if r.below(50) == 0 {
                    n.rx_errors += 1;
                }
                if r.below(80) == 0 {
                    n.tx_dropped += 1;
                }
                NetInterface {
                    name: n.name.to_owned(),
                    rx_bytes: n.rx_bytes,
                    tx_bytes: n.tx_bytes,
                    rx_bps: elapsed_s.map(|_| round2(rx)),
                    tx_bps: elapsed_s.map(|_| round2(tx)),
                    rx_errors: n.rx_errors,
                    tx_errors: 0,
                    rx_dropped: 0,
                    tx_dropped: n.tx_dropped,
                    addresses: n.addresses.clone(),
                }
            })
            .collect();
        let temperatures = self
            .temps
            .iter_mut()
            .map(|(label, t)| Temperature {
                label: label.clone(),
                temp_c: round2(t.next(r)),
                crit_c: (label == "cpu-thermal").then_some(85.0),
            })
            .collect();
        let disks = self
            .disks
            .iter_mut()
            .map(|d| {
                let (rd, wr) = (d.read_rate.next(r), d.write_rate.next(r));
                if let Some(dt) = elapsed_s {
                    d.read_bytes += (rd * dt) as u64;
                    d.write_bytes += (wr * dt) as u64;
                }
                DiskIo {
                    device: d.device.to_owned(),
                    read_bytes: d.read_bytes,
                    write_bytes: d.write_bytes,
                    read_bps: elapsed_s.map(|_| round2(rd)),
                    write_bps: elapsed_s.map(|_| round2(wr)),
                    busy_pct: elapsed_s.map(|_| round2(d.busy.next(r))),
                }
            })
            .collect();
        let latency = round2(self.check_latency.next(r));
        Metrics {
            ts: now_ms,
            session: session.to_owned(),
            seq,
            seq_floor: None,
            cpu: Some(Cpu {
                usage_pct: round2(usage),
                per_core_pct: per_core,
                load_1: round2(load_1),
                load_5: round2(load_1 * 0.9 + 0.1),
                load_15: round2(load_1 * 0.8 + 0.2),
                freq_mhz: Some((self.freq.next(r) / 100.0).round() * 100.0),
            }),
            memory: Some(Memory {
                total_bytes: self.mem_total,
                used_bytes: mem_used,
                available_bytes: self.mem_total - mem_used,
                used_pct: 100.0 * mem_used as f64 / self.mem_total as f64,
            }),
            swap: Some(Swap {
                total_bytes: swap_total,
                used_bytes: swap_used,
                used_pct: 100.0 * swap_used as f64 / swap_total as f64,
            }),
            filesystems,
            network,
            temperatures,
            uptime_s: Some(now_ms.saturating_sub(self.boot_time_ms) / 1000),
            disks,
            system: Some(SystemState {
                boot_id: Some(self.boot_id.clone()),
                process_count: self.processes.next(r) as u64,
                clock_synced: Some(true),
                clock_max_error_ms: Some(round2(r.range(1.0, 40.0))),
            }),
            pi: None,
            wifi: Vec::new(),
            checks: vec![
                CheckResult {
                    name: "ssh".to_owned(),
                    kind: "tcp".to_owned(),
                    ok: true,
                    state: "open".to_owned(),
                    latency_ms: Some(latency),
                    detail: None,
                },
                CheckResult {
                    name: "app".to_owned(),
                    kind: "http".to_owned(),
                    ok: r.below(200) != 0,
                    state: "200".to_owned(),
                    latency_ms: Some(round2(latency * 3.0)),
                    detail: None,
                },
            ],
            outbox_dropped: Some(dropped),
            probes: Vec::new(),
        }
    }
}

/// Samples a message carries as the hub stores them (`Metrics::samples`).
pub fn sample_count(m: &Metrics) -> usize {
    m.samples().len()
}

/// Samples per message in steady state (the first message of a node has no rates yet).
pub fn steady_sample_count(extra: usize) -> usize {
    let node = NodeId::new("probe").unwrap_or_else(|_| unreachable!("literal is a valid id"));
    let mut model = NodeModel::new(&node, 1, extra, 1_000_000_000);
    model.metrics("0000000000000000", 1, 1_000_000_000, 0);
    sample_count(&model.metrics("0000000000000000", 2, 1_000_001_000, 0))
}

/// Site and node ids of simulated agent `index` (of `agents`, over `sites` sites).
pub fn ids(prefix: &str, index: usize, sites: usize) -> anyhow::Result<(SiteId, NodeId)> {
    let site = SiteId::new(format!("{prefix}-{:03}", index % sites.max(1))).map_err(|e| {
        anyhow::anyhow!("--site-prefix {prefix:?} does not make valid site ids: {e}")
    })?;
    let node = NodeId::new(format!("node-{index:05}"))
        .map_err(|e| anyhow::anyhow!("cannot name node {index}: {e}"))?;
    Ok((site, node))
}

fn fs(r: &mut Rng, mount: &str, dev: &str, ty: &'static str, gib: f64, lo: f64, hi: f64) -> Fs {
    Fs {
        mount: mount.to_owned(),
        device: dev.to_owned(),
        fs_type: ty,
        total_bytes: (gib * GIB) as u64,
        used: Walk::new(r, lo, hi, 0.0005),
    }
}

fn nic(r: &mut Rng, name: &'static str, address: String, rate: f64) -> Nic {
    Nic {
        name,
        rx_bytes: r.below(1 << 36),
        tx_bytes: r.below(1 << 34),
        rx_rate: Walk::new(r, 0.0, rate, rate / 10.0),
        tx_rate: Walk::new(r, 0.0, rate / 4.0, rate / 40.0),
        rx_errors: 0,
        tx_dropped: 0,
        addresses: vec![address, "fe80::dea6:32ff:fe01:203/64".to_owned()],
    }
}

fn disk(r: &mut Rng, device: &'static str, rate: f64) -> Disk {
    Disk {
        device,
        read_bytes: r.below(1 << 35),
        write_bytes: r.below(1 << 36),
        read_rate: Walk::new(r, 0.0, rate, rate / 10.0),
        write_rate: Walk::new(r, 0.0, rate / 2.0, rate / 20.0),
        busy: Walk::new(r, 0.0, 30.0, 2.0),
    }
}

fn uuid_like(r: &mut Rng) -> String {
    let h = r.hex(16);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

fn mac_tail(hex: &str, at: usize) -> String {
    let b = hex.as_bytes();
    (0..3)
        .map(|i| {
            let s = at + 2 * i;
            std::str::from_utf8(&b[s..s + 2]).unwrap_or("00").to_owned()
        })
        .collect::<Vec<_>>()
        .join(":")
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(extra: usize) -> NodeModel {
        NodeModel::new(
            &NodeId::new("node-00001").unwrap(),
            7,
            extra,
            1_700_000_000_000,
        )
    }

    #[test]
    fn metrics_carry_the_documented_shape_and_round_trip() {
        let mut m = model(0);
        let first = m.metrics("abcdef0123456789", 1, 1_700_000_000_000, 0);
        let second = m.metrics("abcdef0123456789", 2, 1_700_000_001_000, 0);
        assert_eq!(second.cpu.as_ref().unwrap().per_core_pct.len(), 4);
        assert_eq!(second.filesystems.len(), 3);
        assert_eq!(second.network.len(), 2);
        assert_eq!(second.temperatures.len(), 3);
        assert_eq!(second.disks.len(), 2);
        assert_eq!(second.checks.len(), 2);
        assert!(
            first.network[0].rx_bps.is_none(),
            "no rate on the first sample"
        );
        assert!(second.network[0].rx_bytes >= first.network[0].rx_bytes);
        let json = serde_json::to_vec(&second).unwrap();
        let back: Metrics = serde_json::from_slice(&json).unwrap();
        assert_eq!(back, second);
        assert!(sample_count(&second) > sample_count(&first));
    }

    #[test]
    fn sample_count_follows_extra_series() {
        let base = steady_sample_count(0);
        assert_eq!(
            base, 66,
            "4+4 cpu, 4 mem, 3 swap, 12 fs, 16 net, 3 temp, ..."
        );
        assert_eq!(steady_sample_count(4), base + 4 * 5);
    }

    #[test]
    fn values_move_between_samples() {
        let mut m = model(0);
        let a = m.metrics("s", 1, 1_700_000_000_000, 0);
        let b = m.metrics("s", 2, 1_700_000_001_000, 0);
        assert_ne!(a.cpu, b.cpu);
        assert_ne!(a.memory, b.memory);
    }

    #[test]
    fn info_and_ids_are_valid() {
        let m = model(0);
        let intervals = Intervals {
            heartbeat_s: 10,
            metrics_s: 1,
            keepalive_s: 10,
        };
        let info = m.info("s", 1_700_000_000_000, intervals);
        assert_eq!(info.keepalive_s, 10);
        assert_eq!(info.ips.len(), 2);
        assert!(info.macs.iter().all(|m| m.len() == 17), "{:?}", info.macs);
        let (site, node) = ids("load", 12, 5).unwrap();
        assert_eq!((site.as_str(), node.as_str()), ("load-002", "node-00012"));
        assert!(ids("Bad Prefix", 0, 1).is_err());
    }
}
