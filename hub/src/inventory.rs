//! The per-site LAN device inventory, as a pure core: scans in, device changes and
//! new/gone/back events out. A device is keyed by its MAC address, or `ip:<address>` for a
//! host seen without one (behind a router). The first scan of a site sets its baseline
//! silently, so enabling the scanner on a busy LAN does not raise one "new device" per host.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use sitewatch_proto::{NodeId, Scan, SiteId};

use crate::alert::{LanChange, LanEvent};

/// One device of a site.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Device {
    /// MAC address (lower case) or `ip:<address>`.
    pub key: String,
    pub mac: Option<String>,
    /// Latest address.
    pub ip: String,
    pub vendor: Option<String>,
    pub hostname: Option<String>,
    /// Name given by a user.
    pub name: Option<String>,
    /// Marked known by a user.
    pub known: bool,
    pub first_seen_ms: u64,
    pub last_seen_ms: u64,
    /// Seen by the latest scans; false once absent for the absence window.
    pub present: bool,
    /// The node whose scan saw it last.
    pub seen_by: NodeId,
    /// Every address it had, with when it was last seen there.
    pub ips: BTreeMap<String, u64>,
    pub rtt_ms: Option<f64>,
    pub open_ports: Vec<u16>,
}

/// A user's change to a device.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DevicePatch {
    /// `""` removes the name.
    pub name: Option<String>,
    pub known: Option<bool>,
}

/// Longest user-given device name.
pub const MAX_NAME_CHARS: usize = 100;

#[derive(Debug, Default)]
pub struct Inventory {
    sites: HashMap<SiteId, BTreeMap<String, Device>>,
    /// A device absent this long is gone.
    absent_after_ms: u64,
    /// Devices restored from storage get a full absence window from here before they can be
    /// declared gone (the hub was down; their agents had no chance to scan).
    restored_at_ms: u64,
}

/// What a call changed: devices to store and events for the alert engine and history.
#[derive(Debug, Default)]
pub struct Changes {
    pub devices: Vec<(SiteId, Device)>,
    pub events: Vec<LanEvent>,
}

fn key_of(mac: Option<&str>, ip: &str) -> String {
    match mac {
        Some(m) => m.to_ascii_lowercase(),
        None => format!("ip:{ip}"),
    }
}

impl Inventory {
    pub fn new(absent_after_ms: u64) -> Self {
        Self {
            sites: HashMap::new(),
            absent_after_ms,
            restored_at_ms: 0,
        }
    }

    /// Devices loaded from storage at start-up, at `now_ms`.
    pub fn restore(&mut self, site: SiteId, device: Device, now_ms: u64) {
        self.restored_at_ms = now_ms;
        self.sites
            .entry(site)
            .or_default()
            .insert(device.key.clone(), device);
    }

    pub fn devices(&self, site: &SiteId) -> Vec<Device> {
        self.sites
            .get(site)
            .map(|d| d.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Folds a scan in. `seen_ms` is when it was taken (hub clock, or the agent's for a
    /// late resend).
    pub fn observe(&mut self, site: &SiteId, node: &NodeId, scan: &Scan, seen_ms: u64) -> Changes {
        let mut out = Changes::default();
        let devices = self.sites.entry(site.clone()).or_default();
        let baseline = devices.is_empty();
        for h in &scan.hosts {
            let mac = h.mac.as_deref().map(str::to_ascii_lowercase);
            let key = key_of(mac.as_deref(), &h.ip);
            let event = |change| LanEvent {
                site: site.clone(),
                node: node.clone(),
                change,
                mac: mac.clone().unwrap_or_else(|| key.clone()),
                ip: Some(h.ip.clone()),
                name: h.hostname.clone().or_else(|| h.vendor.clone()),
            };
            match devices.get_mut(&key) {
                None => {
                    let d = Device {
                        key: key.clone(),
                        mac: mac.clone(),
                        ip: h.ip.clone(),
                        vendor: h.vendor.clone(),
                        hostname: h.hostname.clone(),
                        name: None,
                        known: false,
                        first_seen_ms: seen_ms,
                        last_seen_ms: seen_ms,
                        present: true,
                        seen_by: node.clone(),
                        ips: BTreeMap::from([(h.ip.clone(), seen_ms)]),
                        rtt_ms: h.rtt_ms,
                        open_ports: h.open_ports.clone(),
                    };
                    if !baseline {
                        out.events.push(event(LanChange::New));
                    }
                    devices.insert(key.clone(), d.clone());
                    out.devices.push((site.clone(), d));
                }
                Some(d) => {
                    if seen_ms < d.last_seen_ms {
                        // An old scan resent late: it only adds an address to the history.
                        let at = d.ips.entry(h.ip.clone()).or_insert(seen_ms);
                        *at = (*at).max(seen_ms);
                        out.devices.push((site.clone(), d.clone()));
                        continue;
                    }
                    if !d.present {
                        out.events.push(event(LanChange::Back));
                    }
                    d.present = true;
                    d.last_seen_ms = seen_ms;
                    d.ip = h.ip.clone();
                    d.ips.insert(h.ip.clone(), seen_ms);
                    if h.vendor.is_some() {
                        d.vendor = h.vendor.clone();
                    }
                    if h.hostname.is_some() {
                        d.hostname = h.hostname.clone();
                    }
                    d.seen_by = node.clone();
                    d.rtt_ms = h.rtt_ms;
                    d.open_ports = h.open_ports.clone();
                    out.devices.push((site.clone(), d.clone()));
                }
            }
        }
        out
    }

    /// Devices absent for the absence window become gone.
    pub fn tick(&mut self, now_ms: u64) -> Changes {
        let mut out = Changes::default();
        for (site, devices) in &mut self.sites {
            for d in devices.values_mut() {
                let since = d.last_seen_ms.max(self.restored_at_ms);
                if d.present && now_ms.saturating_sub(since) >= self.absent_after_ms {
                    d.present = false;
                    out.events.push(LanEvent {
                        site: site.clone(),
                        node: d.seen_by.clone(),
                        change: LanChange::Gone,
                        mac: d.mac.clone().unwrap_or_else(|| d.key.clone()),
                        ip: Some(d.ip.clone()),
                        name: d
                            .name
                            .clone()
                            .or_else(|| d.hostname.clone())
                            .or_else(|| d.vendor.clone()),
                    });
                    out.devices.push((site.clone(), d.clone()));
                }
            }
        }
        out
    }

    /// Applies a user's change; the updated device, or an error naming the problem.
    pub fn patch(&mut self, site: &SiteId, key: &str, p: &DevicePatch) -> Result<Device, String> {
        let d = self
            .sites
            .get_mut(site)
            .and_then(|s| s.get_mut(&key.to_ascii_lowercase()))
            .ok_or_else(|| {
                format!(
                    "no device {key} at site {site}; GET /api/v1/sites/{site}/devices lists them"
                )
            })?;
        if let Some(name) = &p.name {
            let name = name.trim();
            if name.chars().count() > MAX_NAME_CHARS {
                return Err(format!("name: at most {MAX_NAME_CHARS} characters"));
            }
            if name.chars().any(char::is_control) {
                return Err("name: no control characters".into());
            }
            d.name = (!name.is_empty()).then(|| name.to_owned());
        }
        if let Some(k) = p.known {
            d.known = k;
        }
        Ok(d.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sitewatch_proto::ScanHost;

    fn scan(hosts: &[(&str, Option<&str>)]) -> Scan {
        Scan {
            hosts: hosts
                .iter()
                .map(|(ip, mac)| ScanHost {
                    ip: (*ip).into(),
                    mac: mac.map(Into::into),
                    found_by: vec!["icmp".into()],
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }

    fn ids() -> (SiteId, NodeId) {
        (SiteId::new("club").unwrap(), NodeId::new("pi").unwrap())
    }

    #[test]
    fn first_scan_is_a_silent_baseline_then_new_gone_back() {
        let (s, n) = ids();
        let mut inv = Inventory::new(60_000);
        let c = inv.observe(
            &s,
            &n,
            &scan(&[("10.0.0.1", Some("AA:BB:CC:00:00:01")), ("10.0.0.9", None)]),
            1_000,
        );
        assert!(c.events.is_empty());
        assert_eq!(c.devices.len(), 2);
        assert_eq!(inv.devices(&s)[0].key, "aa:bb:cc:00:00:01");
        assert_eq!(inv.devices(&s)[1].key, "ip:10.0.0.9");

        // A new host: exactly one event, even when seen again.
        let two = scan(&[
            ("10.0.0.1", Some("aa:bb:cc:00:00:01")),
            ("10.0.0.2", Some("aa:bb:cc:00:00:02")),
        ]);
        let c = inv.observe(&s, &n, &two, 2_000);
        assert_eq!(c.events.len(), 1);
        assert_eq!(c.events[0].change, LanChange::New);
        assert_eq!(c.events[0].mac, "aa:bb:cc:00:00:02");
        assert!(inv.observe(&s, &n, &two, 3_000).events.is_empty());

        // 10.0.0.9 was last seen at 1 s: gone once 60 s passed; the others too at 63 s.
        let c = inv.tick(61_500);
        assert_eq!(c.events.len(), 1);
        assert_eq!(c.events[0].change, LanChange::Gone);
        assert_eq!(c.events[0].ip.as_deref(), Some("10.0.0.9"));
        assert!(inv.tick(61_600).events.is_empty(), "gone once");

        // A host without MAC is known by its address: a new address is a new device, and the
        // old one answering again is back.
        let c = inv.observe(&s, &n, &scan(&[("10.0.0.10", None)]), 62_000);
        assert_eq!(
            c.events[0].change,
            LanChange::New,
            "another ip without MAC is another device"
        );
        let c = inv.observe(&s, &n, &scan(&[("10.0.0.9", None)]), 62_000);
        assert_eq!(c.events[0].change, LanChange::Back);
    }

    #[test]
    fn a_hub_restart_gives_restored_devices_a_full_window() {
        let (s, _) = ids();
        let mut inv = Inventory::new(60_000);
        let mut d = Inventory::new(60_000);
        d.observe(
            &s,
            &ids().1,
            &scan(&[("10.0.0.1", Some("aa:bb:cc:00:00:01"))]),
            1_000,
        );
        inv.restore(s.clone(), d.devices(&s)[0].clone(), 500_000);
        assert!(
            inv.tick(500_001).events.is_empty(),
            "no storm after a restart"
        );
        assert_eq!(
            inv.tick(560_000).events.len(),
            1,
            "gone once a window passed unseen"
        );
    }

    #[test]
    fn ip_changes_are_kept_and_users_name_devices() {
        let (s, n) = ids();
        let mut inv = Inventory::new(60_000);
        inv.observe(
            &s,
            &n,
            &scan(&[("10.0.0.1", Some("aa:bb:cc:00:00:01"))]),
            1_000,
        );
        inv.observe(
            &s,
            &n,
            &scan(&[("10.0.0.7", Some("aa:bb:cc:00:00:01"))]),
            2_000,
        );
        let d = &inv.devices(&s)[0];
        assert_eq!(d.ip, "10.0.0.7");
        assert_eq!(d.ips.keys().collect::<Vec<_>>(), ["10.0.0.1", "10.0.0.7"]);
        let d = inv
            .patch(
                &s,
                "AA:BB:CC:00:00:01",
                &DevicePatch {
                    name: Some("Printer".into()),
                    known: Some(true),
                },
            )
            .unwrap();
        assert_eq!((d.name.as_deref(), d.known), (Some("Printer"), true));
        assert!(
            inv.patch(
                &s,
                "aa:bb:cc:00:00:01",
                &DevicePatch {
                    name: Some("x".repeat(101)),
                    known: None
                }
            )
            .is_err()
        );
        assert!(
            inv.patch(&s, "nope", &DevicePatch::default())
                .unwrap_err()
                .contains("GET /api/v1/sites/club/devices")
        );
    }
}
