//! Payload types of the v1 contract.
//!
//! JSON objects, snake_case keys, units in key names, timestamps as Unix milliseconds in
//! `ts`. Readers ignore unknown keys (no `deny_unknown_fields`), so newer agents can add
//! fields without breaking older hubs. Optional fields are omitted when absent.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Why a payload could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum PayloadError {
    #[error("status payload must be `online` or `offline`, got {0:?}")]
    Status(String),
    #[error("invalid JSON payload: {0}")]
    Json(#[from] serde_json::Error),
}

/// Node availability on `…/{site}/{node}/status` (retained; the last will is `offline`).
/// Plain text so Home Assistant can use the topic for availability as is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Online,
    Offline,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Online => "online",
            Status::Offline => "offline",
        }
    }

    pub fn parse(bytes: &[u8]) -> Result<Self, PayloadError> {
        match std::str::from_utf8(bytes).map(str::trim) {
            Ok("online") => Ok(Status::Online),
            Ok("offline") => Ok(Status::Offline),
            _ => Err(PayloadError::Status(
                String::from_utf8_lossy(bytes).chars().take(64).collect(),
            )),
        }
    }
}

/// Identity and environment of a node, retained on `…/info`, re-published on every connect.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Info {
    /// When the agent built this payload (Unix ms, agent clock).
    pub ts: u64,
    /// Agent run this connection belongs to (see [`Heartbeat::session`]).
    pub session: String,
    pub agent_version: String,
    pub hostname: String,
    /// OS name and version, e.g. `Debian GNU/Linux 12 (bookworm)`.
    pub os: String,
    pub kernel: String,
    /// CPU architecture as Rust names it: `aarch64`, `arm`, `x86_64`.
    pub arch: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub board_model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine_id: Option<String>,
    /// Boot time of the node (Unix ms, agent clock).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot_time_ms: Option<u64>,
    #[serde(default)]
    pub ips: Vec<String>,
    #[serde(default)]
    pub macs: Vec<String>,
    pub heartbeat_interval_s: u64,
    pub metrics_interval_s: u64,
    /// MQTT keepalive the agent uses; the broker declares it dead after 1.5 × this.
    pub keepalive_s: u64,
    /// The agent's choice about Home Assistant discovery of this node (its config's
    /// `home-assistant`): `true` opts in, `false` out; absent follows the hub's
    /// `[homeassistant] nodes`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub home_assistant: Option<bool>,
}

/// Liveness beacon on `…/heartbeat` (not retained).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Heartbeat {
    pub ts: u64,
    /// Random id chosen when the agent process starts; `seq` counts from 1 within it.
    pub session: String,
    /// Per-session message counter shared by every agent message, strictly increasing.
    pub seq: u64,
    pub uptime_s: u64,
    /// See [`Metrics::seq_floor`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq_floor: Option<u64>,
}

/// Health of the hub's database on `…/_hub/storage` (retained) and `GET /api/v1/storage`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StorageHealth {
    /// When this state was entered, hub clock, Unix ms.
    pub since: u64,
    pub state: StorageState,
    /// What failed and what to do, when not `ok`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Write batches that could not be stored (not acked; agents resend them) since start.
    pub failed_batches: u64,
    /// Something that happened to the database since the hub started and that the operator
    /// should know even once writes are fine again (a damaged file moved aside).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notice: Option<String>,
}

/// State of the hub's database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StorageState {
    /// Writes commit.
    Ok,
    /// The disk holding the database is full; writes resume by themselves when space returns.
    DiskFull,
    /// Another process holds a lock on the database file.
    Locked,
    /// SQLite reports the file damaged.
    Corrupt,
    /// Any other write failure (permissions, I/O error).
    Error,
}

impl StorageState {
    pub fn as_str(self) -> &'static str {
        match self {
            StorageState::Ok => "ok",
            StorageState::DiskFull => "disk_full",
            StorageState::Locked => "locked",
            StorageState::Corrupt => "corrupt",
            StorageState::Error => "error",
        }
    }
}

/// The header every sequenced agent message (heartbeat, metrics, scan) starts with; lets
/// the hub store and acknowledge a message whose body it does not interpret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    pub ts: u64,
    pub session: String,
    pub seq: u64,
    /// See [`Metrics::seq_floor`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq_floor: Option<u64>,
}

/// Hub acknowledgement on `…/ack` (retained): per agent session, a watermark N such that
/// every message of the session with `seq ≤ N` is durably stored (or was given up by the
/// agent, see [`Metrics::seq_floor`]). An agent may forget every such message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Ack {
    pub ts: u64,
    pub sessions: BTreeMap<String, u64>,
}

/// CPU usage and load.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Cpu {
    pub usage_pct: f64,
    #[serde(default)]
    pub per_core_pct: Vec<f64>,
    pub load_1: f64,
    pub load_5: f64,
    pub load_15: f64,
    /// Current frequency, highest of all cores (MHz); absent where cpufreq is not exposed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub freq_mhz: Option<f64>,
}

/// RAM (bytes) and the share in use.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Memory {
    pub total_bytes: u64,
    pub used_bytes: u64,
    pub available_bytes: u64,
    pub used_pct: f64,
}

/// Swap (bytes) and the share in use; `used_pct` is 0 when there is no swap.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Swap {
    pub total_bytes: u64,
    pub used_bytes: u64,
    pub used_pct: f64,
}

/// One mounted real filesystem.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Filesystem {
    pub mount: String,
    pub device: String,
    pub fs_type: String,
    pub total_bytes: u64,
    pub used_bytes: u64,
    pub available_bytes: u64,
    pub used_pct: f64,
}

/// One network interface: counters since boot and rates over the last interval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct NetInterface {
    pub name: String,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    /// Bytes per second received over the last interval (absent on the first sample).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rx_bps: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tx_bps: Option<f64>,
    /// Error and drop counters since boot.
    #[serde(default)]
    pub rx_errors: u64,
    #[serde(default)]
    pub tx_errors: u64,
    #[serde(default)]
    pub rx_dropped: u64,
    #[serde(default)]
    pub tx_dropped: u64,
    /// IPv4/IPv6 addresses with prefix length, e.g. `192.168.1.20/24`.
    #[serde(default)]
    pub addresses: Vec<String>,
}

/// Block device IO: counters since boot and rates over the last interval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct DiskIo {
    /// Kernel name, e.g. `mmcblk0`, `sda`, `nvme0n1` (whole devices, not partitions).
    pub device: String,
    pub read_bytes: u64,
    pub write_bytes: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_bps: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub write_bps: Option<f64>,
    /// Share of the interval the device was busy (from io_ticks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub busy_pct: Option<f64>,
}

/// Whole-system facts that are not per-device.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct SystemState {
    /// `/proc/sys/kernel/random/boot_id`: changes on every boot (reboot detection).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot_id: Option<String>,
    pub process_count: u64,
    /// Kernel clock discipline state (adjtimex): synchronised to NTP or not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock_synced: Option<bool>,
    /// Kernel's estimate of the clock's maximum error (adjtimex `maxerror`), ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock_max_error_ms: Option<f64>,
}

/// Raspberry Pi power and thermal health, from sysfs/procfs (no vcgencmd). Flags decode the
/// firmware's `get_throttled` bits where it is exposed; `under_voltage_now` falls back to
/// hwmon `rpi_volt` `in0_lcrit_alarm`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct PiHealth {
    /// Raw `get_throttled` value, when the firmware exposes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throttled_raw: Option<u32>,
    pub under_voltage_now: bool,
    pub freq_capped_now: bool,
    pub throttled_now: bool,
    pub soft_temp_limit_now: bool,
    pub under_voltage_occurred: bool,
    pub freq_capped_occurred: bool,
    pub throttled_occurred: bool,
    pub soft_temp_limit_occurred: bool,
}

/// One wireless interface, from `/proc/net/wireless`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Wifi {
    pub interface: String,
    /// Link quality as a share of the driver's maximum (70 for most drivers).
    pub link_quality_pct: f64,
    pub signal_dbm: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub noise_dbm: Option<f64>,
}

/// Result of one configured check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct CheckResult {
    /// Name from the agent's config (unique per node).
    pub name: String,
    /// `systemd`, `process`, `path`, `tcp` or `http`.
    pub kind: String,
    pub ok: bool,
    /// What was observed, e.g. `active`, `failed`, `running`, `missing`, `open`,
    /// `refused`, `timeout`, `200`.
    pub state: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<f64>,
    /// Human-readable explanation when not ok.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Latency to one configured target over the last interval (ICMP echo).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Probe {
    /// The target as configured (an IP address or a host name), or `gateway`.
    pub target: String,
    /// Address the echoes went to.
    pub ip: String,
    pub sent: u32,
    pub received: u32,
    pub loss_pct: f64,
    /// Absent when nothing came back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtt_min_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtt_avg_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtt_max_ms: Option<f64>,
    /// Mean absolute difference of consecutive round trips (RFC 3550 style).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jitter_ms: Option<f64>,
}

/// A LAN scan result on `…/scan` (not retained; kept in the agent's outbox until acked).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Scan {
    pub ts: u64,
    pub session: String,
    pub seq: u64,
    /// See [`Metrics::seq_floor`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq_floor: Option<u64>,
    /// The networks scanned, as configured (CIDR).
    pub networks: Vec<String>,
    /// Wall time of the whole scan.
    pub duration_ms: u64,
    /// Every host found, sorted by address.
    pub hosts: Vec<ScanHost>,
}

/// One host found by a scan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ScanHost {
    pub ip: String,
    /// Lower-case `aa:bb:cc:dd:ee:ff`, from the kernel's neighbour table; absent for hosts
    /// seen only through a router.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    /// Organisation owning the MAC's OUI (IEEE registry).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vendor: Option<String>,
    /// Reverse DNS name, when enabled and answered in time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// Echo round trip, when it answered ping.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtt_ms: Option<f64>,
    /// How it was found: `icmp` (answered ping), `arp` (in the neighbour table only),
    /// `tcp` (a probed port answered).
    pub found_by: Vec<String>,
    /// Probed TCP ports that accepted a connection.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub open_ports: Vec<u16>,
}

/// One temperature sensor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Temperature {
    /// `thermal_zone` type (e.g. `cpu-thermal`) or `hwmon name/label` (e.g. `coretemp/Core 0`).
    pub label: String,
    pub temp_c: f64,
    /// Critical trip point or `temp*_crit`, where the kernel exposes one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crit_c: Option<f64>,
}

/// A metrics sample on `…/metrics` (not retained).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Metrics {
    pub ts: u64,
    pub session: String,
    pub seq: u64,
    /// The agent holds no unacknowledged message of this session with a seq at or below
    /// this (they were acked, never kept — heartbeats — or dropped when its outbox was
    /// full), so the hub need not wait for them before acking further.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq_floor: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<Cpu>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<Memory>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swap: Option<Swap>,
    #[serde(default)]
    pub filesystems: Vec<Filesystem>,
    #[serde(default)]
    pub network: Vec<NetInterface>,
    #[serde(default)]
    pub temperatures: Vec<Temperature>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uptime_s: Option<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub disks: Vec<DiskIo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<SystemState>,
    /// Present on Raspberry Pis only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pi: Option<PiHealth>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub wifi: Vec<Wifi>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<CheckResult>,
    /// Latency probes (configured targets, or the default gateway).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub probes: Vec<Probe>,
    /// Messages the agent's outbox dropped (oldest first) because it was full, since start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outbox_dropped: Option<u64>,
}

/// Decodes a JSON payload of any of the JSON message types.
pub fn from_json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, PayloadError> {
    Ok(serde_json::from_slice(bytes)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn status_is_plain_text() {
        assert_eq!(Status::parse(b"online").unwrap(), Status::Online);
        assert_eq!(Status::parse(b"offline\n").unwrap(), Status::Offline);
        assert!(Status::parse(b"ONLINE").is_err());
        assert!(Status::parse(&[0xff, 0xfe]).is_err());
    }

    #[test]
    fn readers_ignore_unknown_keys() {
        let hb: Heartbeat =
            from_json(br#"{"ts":1,"session":"a","seq":2,"uptime_s":3,"from_the_future":{"x":1}}"#)
                .unwrap();
        assert_eq!(hb.seq, 2);
        let m: Metrics = from_json(br#"{"ts":1,"session":"a","seq":2,"gpu":{}}"#).unwrap();
        assert!(m.cpu.is_none() && m.filesystems.is_empty());
    }

    #[test]
    fn missing_required_keys_are_errors() {
        assert!(from_json::<Heartbeat>(br#"{"ts":1}"#).is_err());
        assert!(from_json::<Metrics>(b"not json").is_err());
    }

    fn finite() -> impl Strategy<Value = f64> {
        -1.0e12f64..1.0e12
    }

    prop_compose! {
        fn metrics()(ts in any::<u64>(), seq in any::<u64>(), session in "[a-f0-9]{16}",
                     usage in finite(), cores in proptest::collection::vec(finite(), 0..8),
                     total in any::<u64>(), used in any::<u64>(), pct in finite(),
                     mount in ".{0,20}", iface in "[a-z0-9]{1,10}", rx in any::<u64>(),
                     bps in proptest::option::of(finite()), temp in finite(),
                     uptime in proptest::option::of(any::<u64>())) -> Metrics {
            Metrics {
                ts, seq, session, seq_floor: Some(seq / 3),
                cpu: Some(Cpu { usage_pct: usage, per_core_pct: cores, load_1: usage, load_5: pct, load_15: temp, freq_mhz: Some(pct) }),
                memory: Some(Memory { total_bytes: total, used_bytes: used, available_bytes: rx, used_pct: pct }),
                swap: None,
                filesystems: vec![Filesystem { mount: mount.clone(), device: mount, fs_type: "ext4".into(),
                    total_bytes: total, used_bytes: used, available_bytes: rx, used_pct: pct }],
                network: vec![NetInterface { name: iface.clone(), rx_bytes: rx, tx_bytes: used, rx_bps: bps, tx_bps: None,
                    rx_errors: rx, addresses: vec!["10.0.0.2/24".into()], ..Default::default() }],
                temperatures: vec![Temperature { label: "cpu_thermal".into(), temp_c: temp, crit_c: None }],
                uptime_s: uptime,
                disks: vec![DiskIo { device: "mmcblk0".into(), read_bytes: rx, write_bytes: used, read_bps: bps, write_bps: None, busy_pct: bps }],
                system: Some(SystemState { boot_id: Some(iface.clone()), process_count: rx, clock_synced: Some(true), clock_max_error_ms: bps }),
                pi: Some(PiHealth { throttled_raw: Some(0x50005), under_voltage_now: true, ..Default::default() }),
                wifi: vec![Wifi { interface: iface.clone(), link_quality_pct: pct, signal_dbm: temp, noise_dbm: None }],
                checks: vec![CheckResult { name: iface, kind: "tcp".into(), ok: false, state: "refused".into(), latency_ms: bps, detail: None }],
                outbox_dropped: uptime,
                probes: vec![Probe { target: "gateway".into(), ip: "192.168.1.1".into(), sent: 5, received: 4, loss_pct: 20.0, rtt_min_ms: Some(0.4), rtt_avg_ms: bps, rtt_max_ms: None, jitter_ms: Some(0.1) }],
            }
        }
    }

    proptest! {
        #[test]
        fn metrics_round_trip(m in metrics()) {
            let json = serde_json::to_vec(&m).unwrap();
            prop_assert_eq!(from_json::<Metrics>(&json).unwrap(), m);
        }

        #[test]
        fn heartbeat_and_ack_round_trip(ts in any::<u64>(), seq in any::<u64>(), up in any::<u64>(),
                                        session in "[a-f0-9]{16}") {
            let hb = Heartbeat { ts, session: session.clone(), seq, uptime_s: up, seq_floor: Some(seq / 2) };
            prop_assert_eq!(from_json::<Heartbeat>(&serde_json::to_vec(&hb).unwrap()).unwrap(), hb);
            let ack = Ack { ts, sessions: [(session, seq)].into_iter().collect() };
            prop_assert_eq!(from_json::<Ack>(&serde_json::to_vec(&ack).unwrap()).unwrap(), ack);
        }

        #[test]
        fn info_round_trip(host in ".{0,40}", model in proptest::option::of(".{0,40}"),
                           ips in proptest::collection::vec("[0-9.]{7,15}", 0..4)) {
            let info = Info { ts: 1, session: "s".into(), agent_version: "0.1.0".into(), hostname: host,
                os: "Debian".into(), kernel: "6.1".into(), arch: "aarch64".into(), board_model: model,
                serial: None, machine_id: Some("abc".into()), boot_time_ms: Some(5), ips, macs: vec![],
                heartbeat_interval_s: 10, metrics_interval_s: 30, keepalive_s: 10,
                home_assistant: Some(true) };
            prop_assert_eq!(from_json::<Info>(&serde_json::to_vec(&info).unwrap()).unwrap(), info);
        }

        #[test]
        fn decoding_garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = from_json::<Metrics>(&bytes);
            let _ = from_json::<Info>(&bytes);
            let _ = Status::parse(&bytes);
        }
    }
}
