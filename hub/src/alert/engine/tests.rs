use sitewatch_proto::payload::{CheckResult, Filesystem, PiHealth, Temperature};

use super::*;
use crate::alert::{AlertsConfig, Matcher, Severity};
use crate::state::{Reason, SiteTransition, Transition};

const MIN: u64 = 60_000;
const HOUR: u64 = 3_600_000;

fn engine() -> Engine {
    Engine::new(AlertsConfig::default().compile().unwrap())
}

fn engine_with(toml_text: &str) -> Engine {
    let cfg: AlertsConfig = toml::from_str(toml_text).unwrap();
    Engine::new(cfg.compile().unwrap())
}

fn ids(s: &str, n: &str) -> (SiteId, NodeId) {
    (SiteId::new(s).unwrap(), NodeId::new(n).unwrap())
}

fn temp(c: f64) -> Metrics {
    Metrics {
        temperatures: vec![Temperature {
            label: "cpu_thermal".into(),
            temp_c: c,
            crit_c: None,
        }],
        ..Default::default()
    }
}

fn kinds(o: &Outcome) -> Vec<(NotificationKind, String)> {
    o.notifications
        .iter()
        .map(|n| (n.kind, n.alert.rule.clone()))
        .collect()
}

fn node_event(s: &SiteId, n: &NodeId, to: NodeStatus, at: u64) -> FleetEvent {
    FleetEvent::Node(Transition {
        site: s.clone(),
        node: n.clone(),
        from: if to == NodeStatus::Offline {
            NodeStatus::Online
        } else {
            NodeStatus::Offline
        },
        to,
        at_ms: at,
        reason: Reason::HeartbeatTimeout,
    })
}

fn site_event(s: &SiteId, to: SiteStatus, at: u64) -> FleetEvent {
    FleetEvent::Site(SiteTransition {
        site: s.clone(),
        from: None,
        to,
        at_ms: at,
    })
}

#[test]
fn temperature_fires_after_for_and_clears_with_hysteresis() {
    let mut e = engine();
    let (s, n) = ids("club", "pi");
    let o = e.on_metrics(&s, &n, &temp(78.0), 0);
    assert!(o.notifications.is_empty());
    assert_eq!(o.changes[0].state, AlertState::Pending);
    assert!(
        e.on_metrics(&s, &n, &temp(79.0), 30_000)
            .notifications
            .is_empty()
    );
    let o = e.on_metrics(&s, &n, &temp(78.2), 60_000);
    assert_eq!(
        kinds(&o),
        vec![(NotificationKind::Firing, "temperature".into())]
    );
    let a = &o.notifications[0].alert;
    assert_eq!(a.severity, Severity::Critical);
    assert_eq!(a.value, Some(78.2));
    assert_eq!(
        a.labels.get("sensor").map(String::as_str),
        Some("cpu_thermal")
    );
    // Between clear (70) and threshold (75): still firing, nothing sent.
    let o = e.on_metrics(&s, &n, &temp(72.0), 90_000);
    assert!(o.is_empty(), "{o:?}");
    let o = e.on_metrics(&s, &n, &temp(69.5), 120_000);
    assert_eq!(
        kinds(&o),
        vec![(NotificationKind::Resolved, "temperature".into())]
    );
    assert_eq!(o.changes[0].resolved_ms, Some(120_000));
    assert_eq!(e.alerts().count(), 0);
}

#[test]
fn a_short_spike_never_fires() {
    let mut e = engine();
    let (s, n) = ids("club", "pi");
    e.on_metrics(&s, &n, &temp(80.0), 0);
    let o = e.on_metrics(&s, &n, &temp(74.0), 30_000);
    assert!(o.notifications.is_empty());
    assert_eq!(o.changes[0].state, AlertState::Resolved);
    assert_eq!(o.changes[0].fired_ms, None);
    assert!(e.tick(10 * MIN).notifications.is_empty());
}

#[test]
fn pending_fires_on_tick_without_a_new_sample() {
    let mut e = engine();
    let (s, n) = ids("club", "pi");
    e.on_metrics(&s, &n, &temp(80.0), 0);
    assert!(e.tick(59_999).notifications.is_empty());
    assert_eq!(kinds(&e.tick(60_000)).len(), 1);
}

#[test]
fn repeats_every_interval_until_acknowledged_then_resolves_once() {
    let mut e = engine();
    let (s, n) = ids("club", "pi");
    let full = Metrics {
        filesystems: vec![Filesystem {
            mount: "/".into(),
            used_pct: 95.0,
            ..Default::default()
        }],
        ..Default::default()
    };
    let o = e.on_metrics(&s, &n, &full, 0);
    assert_eq!(
        kinds(&o),
        vec![(NotificationKind::Firing, "disk-full".into())]
    );
    let fp = o.notifications[0].alert.fingerprint.clone();
    assert!(
        e.on_metrics(&s, &n, &full, HOUR - 1)
            .notifications
            .is_empty()
    );
    assert_eq!(
        kinds(&e.tick(HOUR)),
        vec![(NotificationKind::Repeat, "disk-full".into())]
    );
    let o = e.acknowledge(&fp, "ops@example.org", HOUR + 5).unwrap();
    assert_eq!(o.changes[0].acked_by.as_deref(), Some("ops@example.org"));
    assert!(e.tick(5 * HOUR).notifications.is_empty());
    let mut ok = full.clone();
    ok.filesystems[0].used_pct = 50.0;
    let o = e.on_metrics(&s, &n, &ok, 5 * HOUR + 1);
    assert_eq!(
        kinds(&o),
        vec![(NotificationKind::Resolved, "disk-full".into())]
    );
    assert_eq!(o.notifications[0].alert.notifications, 3);
    assert!(matches!(
        e.acknowledge(&fp, "x", 6 * HOUR),
        Err(AlertError::NotFound(_))
    ));
}

#[test]
fn site_offline_inhibits_the_node_alerts_of_that_site() {
    let mut e = engine();
    let (s, a) = ids("club", "a");
    let (_, b) = ids("club", "b");
    // Node a goes first: notified.
    let o = e.on_fleet_events(
        &[
            node_event(&s, &a, NodeStatus::Offline, 0),
            site_event(&s, SiteStatus::Degraded, 0),
        ],
        0,
    );
    assert_eq!(
        kinds(&o),
        vec![(NotificationKind::Firing, "node-offline".into())]
    );
    // The last node: the site alert goes out, b's node alert is held back.
    let o = e.on_fleet_events(
        &[
            node_event(&s, &b, NodeStatus::Offline, 10),
            site_event(&s, SiteStatus::Offline, 10),
        ],
        10,
    );
    assert_eq!(
        kinds(&o),
        vec![(NotificationKind::Firing, "site-offline".into())]
    );
    assert!(
        e.alerts()
            .any(|x| x.node.as_ref() == Some(&b) && x.inhibited)
    );
    // Node a's alert, notified before, is now inhibited too (and shown so).
    assert!(e.alerts().filter(|x| x.node.is_some()).all(|x| x.inhibited));
    assert!(
        o.changes
            .iter()
            .any(|x| x.node.as_ref() == Some(&a) && x.inhibited)
    );
    // No repeat for inhibited alerts either.
    let o = e.tick(HOUR + 10);
    assert_eq!(
        kinds(&o),
        vec![(NotificationKind::Repeat, "site-offline".into())]
    );
    // Back: the site resolves, node a's resolve is sent (it was notified), b's is not.
    let o = e.on_fleet_events(
        &[
            node_event(&s, &a, NodeStatus::Online, 20),
            node_event(&s, &b, NodeStatus::Online, 20),
            site_event(&s, SiteStatus::Online, 20),
        ],
        HOUR + 20,
    );
    let mut k = kinds(&o);
    k.sort();
    assert_eq!(
        k,
        vec![
            (NotificationKind::Resolved, "node-offline".into()),
            (NotificationKind::Resolved, "site-offline".into())
        ]
    );
    assert_eq!(
        o.notifications
            .iter()
            .filter(|n| n.alert.node.as_ref() == Some(&b))
            .count(),
        0
    );
}

#[test]
fn silences_mute_until_they_end() {
    let mut e = engine();
    let (s, n) = ids("club-1", "pi");
    e.set_silence(
        Silence {
            id: "s1".into(),
            matchers: vec![Matcher {
                label: "site".into(),
                value: "club-*".into(),
            }],
            starts_ms: 0,
            ends_ms: HOUR,
            created_by: "ops".into(),
            comment: "maintenance".into(),
        },
        0,
    )
    .unwrap();
    let o = e.on_fleet_events(&[node_event(&s, &n, NodeStatus::Offline, 5)], 5);
    assert!(o.notifications.is_empty());
    assert_eq!(o.changes[0].silenced_by.as_deref(), Some("s1"));
    assert!(e.tick(HOUR - 1).notifications.is_empty());
    // The silence ended and the node is still down: notify now.
    let o = e.tick(HOUR);
    assert_eq!(
        kinds(&o),
        vec![(NotificationKind::Firing, "node-offline".into())]
    );
    assert_eq!(e.silences().count(), 0);
}

#[test]
fn expiring_a_silence_and_bad_silences() {
    let mut e = engine();
    let bad = Silence {
        id: "s".into(),
        matchers: vec![],
        starts_ms: 0,
        ends_ms: 10,
        created_by: "me".into(),
        comment: String::new(),
    };
    let err = e.set_silence(bad.clone(), 0).unwrap_err().to_string();
    assert!(err.contains("matchers"), "{err}");
    let ok = Silence {
        matchers: vec![Matcher {
            label: "severity".into(),
            value: "warning".into(),
        }],
        ends_ms: HOUR,
        ..bad
    };
    e.set_silence(ok, 0).unwrap();
    let (ended, _) = e.expire_silence("s", 100).unwrap();
    assert_eq!(ended.ends_ms, 100);
    assert!(matches!(
        e.expire_silence("s", 100),
        Err(AlertError::NoSilence(_))
    ));
}

#[test]
fn failed_checks_name_the_check_and_resolve_when_gone() {
    let mut e = engine();
    let (s, n) = ids("club", "pi");
    let check = |name: &str, kind: &str, ok: bool| CheckResult {
        name: name.into(),
        kind: kind.into(),
        ok,
        state: if ok { "active" } else { "failed" }.into(),
        latency_ms: None,
        detail: (!ok).then(|| format!("{name} is failed")),
    };
    let m = Metrics {
        checks: vec![
            check("nginx", "systemd", false),
            check("app-dir", "path", false),
            check("ssh", "tcp", true),
        ],
        ..Default::default()
    };
    let o = e.on_metrics(&s, &n, &m, 0);
    let mut k = kinds(&o);
    k.sort();
    assert_eq!(
        k,
        vec![
            (NotificationKind::Firing, "app-missing".into()),
            (NotificationKind::Firing, "service-stopped".into())
        ]
    );
    let svc = o
        .notifications
        .iter()
        .find(|x| x.alert.rule == "service-stopped")
        .unwrap();
    assert_eq!(
        svc.alert.labels.get("check").map(String::as_str),
        Some("nginx")
    );
    assert_eq!(svc.alert.detail.as_deref(), Some("nginx is failed"));
    assert_eq!(svc.alert.severity, Severity::Critical);
    // The check was removed from the agent's config: its alert resolves.
    let m2 = Metrics {
        checks: vec![check("app-dir", "path", false)],
        ..Default::default()
    };
    assert_eq!(
        kinds(&e.on_metrics(&s, &n, &m2, 1000)),
        vec![(NotificationKind::Resolved, "service-stopped".into())]
    );
}

#[test]
fn pi_under_voltage() {
    let mut e = engine();
    let (s, n) = ids("club", "pi");
    let m = Metrics {
        pi: Some(PiHealth {
            under_voltage_now: true,
            under_voltage_occurred: true,
            ..Default::default()
        }),
        ..Default::default()
    };
    let o = e.on_metrics(&s, &n, &m, 0);
    assert_eq!(
        kinds(&o),
        vec![(NotificationKind::Firing, "pi-power".into())]
    );
    assert_eq!(
        o.notifications[0]
            .alert
            .labels
            .get("flag")
            .map(String::as_str),
        Some("under-voltage")
    );
}

#[test]
fn restored_firing_alert_is_not_notified_again_before_its_repeat() {
    let (s, n) = ids("club", "pi");
    let mut before = engine();
    let o = before.on_fleet_events(&[node_event(&s, &n, NodeStatus::Offline, 0)], 0);
    assert_eq!(o.notifications.len(), 1);
    let stored: Vec<Alert> = o.changes;
    // Hub restart 10 minutes later.
    let mut after = engine();
    let o = after.restore(stored, vec![], 10 * MIN);
    assert!(o.notifications.is_empty(), "{o:?}");
    assert!(after.tick(30 * MIN).notifications.is_empty());
    assert_eq!(after.node_alerts(&s, &n).len(), 1);
    assert_eq!(
        kinds(&after.tick(HOUR)),
        vec![(NotificationKind::Repeat, "node-offline".into())]
    );
    // A rule removed from the configuration resolves its alerts silently.
    let mut none = engine_with("default-rules = false");
    let o = none.restore(after.alerts().cloned().collect(), vec![], HOUR);
    assert!(o.notifications.is_empty());
    assert_eq!(o.changes[0].state, AlertState::Resolved);
}

#[test]
fn reboot_is_an_event_that_expires_silently() {
    let mut e = engine_with("[[rules]]\nname = \"rebooted\"\nkind = \"agent-rebooted\"");
    let (s, n) = ids("club", "pi");
    let ev = |at| FleetEvent::Rebooted {
        site: s.clone(),
        node: n.clone(),
        at_ms: at,
        previous_boot_id: "a".into(),
        boot_id: "b".into(),
    };
    let o = e.on_fleet_events(&[ev(0)], 0);
    assert_eq!(
        kinds(&o),
        vec![(NotificationKind::Firing, "rebooted".into())]
    );
    assert_eq!(o.notifications[0].alert.severity, Severity::Info);
    // A reboot loop does not notify on every boot.
    assert!(e.on_fleet_events(&[ev(MIN)], MIN).notifications.is_empty());
    let o = e.tick(MIN + HOUR);
    assert!(o.notifications.is_empty(), "{o:?}");
    assert_eq!(o.changes[0].state, AlertState::Resolved);
}

#[test]
fn lan_device_gone_and_back() {
    let mut e = engine_with(
        "[[rules]]\nname = \"printer-gone\"\nkind = \"lan-device-gone\"\ndevices = [\"aa:bb:*\"]",
    );
    let (s, n) = ids("club", "pi");
    let ev = |change, mac: &str| LanEvent {
        site: s.clone(),
        node: n.clone(),
        change,
        mac: mac.into(),
        ip: Some("192.0.2.9".into()),
        name: None,
    };
    assert!(
        e.on_lan_events(&[ev(LanChange::Gone, "cc:dd:00:00:00:01")], 0)
            .is_empty()
    );
    let o = e.on_lan_events(&[ev(LanChange::Gone, "aa:bb:00:00:00:01")], 0);
    assert_eq!(
        kinds(&o),
        vec![(NotificationKind::Firing, "printer-gone".into())]
    );
    let o = e.on_lan_events(&[ev(LanChange::Back, "aa:bb:00:00:00:01")], 10);
    assert_eq!(
        kinds(&o),
        vec![(NotificationKind::Resolved, "printer-gone".into())]
    );
}

#[test]
fn clock_skew_and_flapping_follow_fleet_events() {
    let mut e = engine_with("[[rules]]\nname = \"clock\"\nkind = \"clock-skew\"");
    let (s, n) = ids("club", "pi");
    let skew = |active, at| FleetEvent::ClockSkew {
        site: s.clone(),
        node: n.clone(),
        at_ms: at,
        skew_ms: -120_000,
        active,
    };
    let o = e.on_fleet_events(&[skew(true, 0)], 0);
    assert_eq!(kinds(&o), vec![(NotificationKind::Firing, "clock".into())]);
    assert_eq!(o.notifications[0].alert.value, Some(-120.0));
    let o = e.on_fleet_events(&[skew(false, 10)], 10);
    assert_eq!(
        kinds(&o),
        vec![(NotificationKind::Resolved, "clock".into())]
    );
    let flap = FleetEvent::Flapping {
        site: s.clone(),
        node: n.clone(),
        at_ms: 20,
        changes: 6,
        active: true,
    };
    let o = e.on_fleet_events(&[flap], 20);
    assert_eq!(
        kinds(&o),
        vec![(NotificationKind::Firing, "node-flapping".into())]
    );
}

#[test]
fn rules_can_be_scoped_to_sites_and_nodes() {
    let mut e = engine_with(
        "default-rules = false\n[[rules]]\nname = \"gate-offline\"\nkind = \"node-offline\"\nsites = [\"club-*\"]\nnodes = [\"*-gate\"]",
    );
    let (s, gate) = ids("club-1", "pi-gate");
    let (_, other) = ids("club-1", "pi-bar");
    let (shop, _) = ids("shop", "x");
    let o = e.on_fleet_events(
        &[
            node_event(&s, &gate, NodeStatus::Offline, 0),
            node_event(&s, &other, NodeStatus::Offline, 0),
            node_event(&shop, &gate, NodeStatus::Offline, 0),
        ],
        0,
    );
    assert_eq!(o.notifications.len(), 1);
    assert_eq!(o.notifications[0].alert.node.as_ref(), Some(&gate));
    assert_eq!(o.notifications[0].alert.site, s);
}
