//! The collectors on recorded procfs/sysfs trees (`tests/fixtures/`, described in its
//! README): a Pi 4, a Pi Zero W with throttling and WiFi, and an x86 KVM guest.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use sitewatch_agent::collect::network::Addresses;
use sitewatch_agent::collect::state::ClockState;
use sitewatch_agent::collect::{
    KernelCollector, KernelSample, SysRoot, diskio, pi, state, system, thermal,
};
use sitewatch_proto::payload::{PiHealth, Temperature, Wifi};

fn root(machine: &str) -> SysRoot {
    SysRoot::under(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(machine),
    )
}

/// A first sample of a fixture machine, with no addresses and no clock reading.
fn sample(machine: &str) -> KernelSample {
    KernelCollector::discover(root(machine)).sample(Instant::now(), &Addresses::new(), None)
}

fn temp(label: &str, temp_c: f64, crit_c: Option<f64>) -> Temperature {
    Temperature {
        label: label.into(),
        temp_c,
        crit_c,
    }
}

#[test]
fn pi4_temperatures_are_labelled_once_with_their_critical_point() {
    let s = sample("pi4");
    assert_eq!(
        s.temperatures,
        [
            temp("cpu-thermal", 48.7, Some(110.0)),
            temp("sht3x/temp1", 21.4, None)
        ],
        "the cpu_thermal hwmon mirror of the zone is not reported twice"
    );
}

#[test]
fn pi4_past_under_voltage_and_throttling() {
    let s = sample("pi4");
    assert_eq!(
        s.pi,
        Some(PiHealth {
            throttled_raw: Some(0x50000),
            under_voltage_occurred: true,
            throttled_occurred: true,
            ..Default::default()
        })
    );
    assert_eq!(
        pi::board_model(&root("pi4")).as_deref(),
        Some("Raspberry Pi 4 Model B Rev 1.4")
    );
}

#[test]
fn pi4_system_state_frequency_disks_and_network() {
    let s = sample("pi4");
    assert_eq!(s.freq_mhz, Some(1800.0));
    assert_eq!(
        s.system.boot_id.as_deref(),
        Some("3f1c7a52-9d1e-4b8e-a0b4-6c2d9e8f1a27")
    );
    assert_eq!(s.system.process_count, 7);
    assert_eq!(
        (s.system.clock_synced, s.system.clock_max_error_ms),
        (None, None)
    );

    let disks: Vec<(&str, u64, u64)> = s
        .disks
        .iter()
        .map(|d| (d.device.as_str(), d.read_bytes, d.write_bytes))
        .collect();
    assert_eq!(
        disks,
        [
            ("mmcblk0", 780_020_736, 422_150_144),
            ("sda", 95_920_128, 1_560_576)
        ]
    );
    assert!(
        s.disks
            .iter()
            .all(|d| d.read_bps.is_none() && d.busy_pct.is_none())
    );

    let names: Vec<&str> = s.network.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, ["eth0", "wlan0"], "loopback skipped");
    let eth0 = &s.network[0];
    assert_eq!((eth0.rx_bytes, eth0.tx_bytes), (1_893_412_677, 220_984_561));
    assert_eq!(
        (eth0.rx_dropped, eth0.rx_errors, eth0.tx_errors),
        (118, 0, 0)
    );
    assert!(s.wifi.is_empty(), "wlan0 not associated");
}

#[test]
fn pi4_disk_rates_over_two_snapshots() {
    let r = root("pi4");
    let text = std::fs::read_to_string(r.proc("diskstats")).unwrap();
    let first = diskio::whole_disks(&r, diskio::parse_diskstats(&text));
    // Ten seconds later: mmcblk0 read 1 MiB, wrote 10 MiB and was busy 2.5 s; sda idle.
    let later = text.replace(
        "mmcblk0 18234 6130 1523478 102340 9412 11873 824512 398120 0 151220",
        "mmcblk0 18298 6130 1525526 102540 9572 11900 844992 401120 0 153720",
    );
    assert_ne!(later, text);
    let second = diskio::whole_disks(&r, diskio::parse_diskstats(&later));

    let t0 = Instant::now();
    let mut rates = diskio::DiskRates::default();
    rates.sample(first, t0);
    let got = rates.sample(second, t0 + Duration::from_secs(10));
    let mmc = &got[0];
    assert_eq!(mmc.device, "mmcblk0");
    assert_eq!(mmc.read_bps, Some(1_048_576.0 / 10.0));
    assert_eq!(mmc.write_bps, Some(10.0 * 1_048_576.0 / 10.0));
    assert_eq!(mmc.busy_pct, Some(25.0));
    let sda = &got[1];
    assert_eq!(
        (sda.read_bps, sda.write_bps, sda.busy_pct),
        (Some(0.0), Some(0.0), Some(0.0))
    );
}

#[test]
fn pi_zero_under_voltage_now_with_throttling() {
    let s = sample("pi-zero");
    assert_eq!(
        s.pi,
        Some(PiHealth {
            throttled_raw: Some(0x50005),
            under_voltage_now: true,
            throttled_now: true,
            under_voltage_occurred: true,
            throttled_occurred: true,
            ..Default::default()
        })
    );
    assert_eq!(s.temperatures, [temp("cpu-thermal", 53.7, Some(90.0))]);
    assert_eq!(s.freq_mhz, Some(700.0));
    assert_eq!(s.system.process_count, 9);
}

#[test]
fn pi_zero_wifi_signal_and_quality() {
    let s = sample("pi-zero");
    assert_eq!(
        s.wifi,
        [Wifi {
            interface: "wlan0".into(),
            link_quality_pct: 77.1,
            signal_dbm: -56.0,
            noise_dbm: None,
        }]
    );
    let wlan0 = &s.network[0];
    assert_eq!(wlan0.name, "wlan0");
    assert_eq!((wlan0.rx_dropped, wlan0.tx_errors), (1_204, 3));
    assert_eq!(s.disks.len(), 1);
    assert_eq!(s.disks[0].device, "mmcblk0");
    assert_eq!(
        (s.disks[0].read_bytes, s.disks[0].write_bytes),
        (379_565_056, 172_109_824)
    );
}

#[test]
fn x86_vm_has_no_pi_fields_and_no_errors() {
    let r = root("x86-vm");
    let k = KernelCollector::discover(r.clone());
    assert!(!k.is_pi() && k.sensors().is_empty());
    assert!(thermal::discover(&r).is_empty());
    assert!(system::freq_files(&r).is_empty());
    assert_eq!(pi::board_model(&r), None);

    let s = sample("x86-vm");
    assert_eq!((s.pi.as_ref(), s.freq_mhz), (None, None));
    assert!(s.temperatures.is_empty() && s.wifi.is_empty());
    assert_eq!(
        s.system.boot_id.as_deref(),
        Some("5d0a9e7f-2c84-4b1a-8e63-f9c1b2a3d4e5")
    );
    assert_eq!(s.system.process_count, 12);
    let disks: Vec<(&str, u64, u64)> = s
        .disks
        .iter()
        .map(|d| (d.device.as_str(), d.read_bytes, d.write_bytes))
        .collect();
    assert_eq!(
        disks,
        [("vda", 1_900_995_584, 3_133_669_376)],
        "no partitions, loops or empty sr0"
    );
    let names: Vec<&str> = s.network.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, ["eth0"]);
}

#[test]
fn second_sample_has_rates_addresses_and_clock() {
    let mut k = KernelCollector::discover(root("x86-vm"));
    let t0 = Instant::now();
    k.sample(t0, &Addresses::new(), None);
    let mut addrs = Addresses::new();
    addrs.insert(
        "eth0".into(),
        vec![
            ("192.168.10.31".parse().unwrap(), 24),
            ("fe80::be24:11ff:fe3a:7c01".parse().unwrap(), 64),
        ],
    );
    let clock = ClockState {
        status: 0x2001,
        max_error_us: 28_500,
    };
    let s = k.sample(t0 + Duration::from_secs(10), &addrs, Some(clock));
    let eth0 = &s.network[0];
    assert_eq!(
        eth0.addresses,
        ["192.168.10.31/24", "fe80::be24:11ff:fe3a:7c01/64"]
    );
    // Same files, so zero rates (not absent) on the second sample.
    assert_eq!((eth0.rx_bps, eth0.tx_bps), (Some(0.0), Some(0.0)));
    assert_eq!(s.disks[0].busy_pct, Some(0.0));
    assert_eq!(s.system.clock_synced, Some(true));
    assert_eq!(s.system.clock_max_error_ms, Some(28.5));
    assert_eq!(state::STA_UNSYNC & clock.status, 0);
}
