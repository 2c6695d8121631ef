//! Property tests of the engine over random input sequences.

use std::collections::HashMap;

use proptest::prelude::*;
use sitewatch_proto::payload::Temperature;
use sitewatch_proto::{Metrics, NodeId, SiteId, Status};

use super::*;
use crate::state::{Fleet, Observation, Timeouts};

const FOR_MS: u64 = 60_000;
const REPEAT_MS: u64 = 3_600_000;

/// One rule: temp_c > 50 for 1 minute, clearing under 40.
fn engine() -> Engine {
    let cfg: AlertsConfig = toml::from_str(
        r#"
        default-rules = false
        [[rules]]
        name = "hot"
        kind = "metric"
        series = "temp_c"
        threshold = 50
        clear = 40
        for = "1m"
        [[rules]]
        name = "node-offline"
        kind = "node-offline"
        [[rules]]
        name = "site-offline"
        kind = "site-offline"
        "#,
    )
    .unwrap();
    Engine::new(cfg.compile().unwrap())
}

fn temp(c: f64) -> Metrics {
    Metrics {
        temperatures: vec![Temperature {
            label: "cpu".into(),
            temp_c: c,
            crit_c: None,
        }],
        ..Default::default()
    }
}

#[derive(Debug, Clone)]
enum Step {
    Sample(f64),
    Tick,
    Ack,
}

fn steps() -> impl Strategy<Value = Vec<(u64, Step)>> {
    let step = prop_oneof![
        4 => (0.0f64..100.0).prop_map(Step::Sample),
        // Values hovering around both thresholds.
        4 => prop_oneof![Just(39.0), Just(40.0), Just(45.0), Just(50.0), Just(51.0)].prop_map(Step::Sample),
        2 => Just(Step::Tick),
        1 => Just(Step::Ack),
    ];
    proptest::collection::vec((0u64..1_200_000, step), 1..120)
}

/// Runs the steps; returns every notification and the final time.
fn run(e: &mut Engine, steps: &[(u64, Step)]) -> (Vec<Notification>, u64) {
    let site = SiteId::new("club").unwrap();
    let node = NodeId::new("pi").unwrap();
    let mut now = 0;
    let mut out = Vec::new();
    for (dt, step) in steps {
        now += dt;
        let o = match step {
            Step::Sample(v) => e.on_metrics(&site, &node, &temp(*v), now),
            Step::Tick => e.tick(now),
            Step::Ack => {
                let fp = e.alerts().next().map(|a| a.fingerprint.clone());
                match fp {
                    Some(fp) => e.acknowledge(&fp, "prop", now).unwrap_or_default(),
                    None => Outcome::default(),
                }
            }
        };
        out.extend(o.notifications);
    }
    (out, now)
}

proptest! {
    #[test]
    fn no_alert_fires_before_its_for(s in steps()) {
        let mut e = engine();
        let (notes, _) = run(&mut e, &s);
        for n in notes.iter().filter(|n| n.kind != NotificationKind::Resolved) {
            let fired = n.alert.fired_ms.unwrap_or(0);
            prop_assert!(fired >= n.alert.started_ms + FOR_MS, "{n:?}");
            prop_assert!(n.at_ms >= n.alert.started_ms + FOR_MS, "{n:?}");
        }
    }

    #[test]
    fn never_fires_twice_without_a_resolve_and_never_repeats_early(s in steps()) {
        let mut e = engine();
        let (notes, _) = run(&mut e, &s);
        let mut firing: HashMap<String, u64> = HashMap::new();
        for n in &notes {
            let fp = n.alert.fingerprint.clone();
            match n.kind {
                NotificationKind::Firing => {
                    prop_assert!(!firing.contains_key(&fp), "fired twice: {notes:?}");
                    firing.insert(fp, n.at_ms);
                }
                NotificationKind::Repeat => {
                    let last = firing.get(&fp).copied();
                    prop_assert!(last.is_some(), "repeat without firing");
                    prop_assert!(n.at_ms - last.unwrap_or(0) >= REPEAT_MS, "early repeat");
                    prop_assert!(n.alert.acked_ms.is_none(), "repeat after ack");
                    firing.insert(fp, n.at_ms);
                }
                NotificationKind::Resolved => {
                    prop_assert!(firing.remove(&fp).is_some(), "resolved without firing");
                }
            }
        }
    }

    #[test]
    fn every_firing_alert_resolves_when_its_condition_clears(s in steps(), low in 0.0f64..39.9) {
        let mut e = engine();
        let (mut notes, now) = run(&mut e, &s);
        let o = e.on_metrics(&SiteId::new("club").unwrap(), &NodeId::new("pi").unwrap(), &temp(low), now + 1);
        notes.extend(o.notifications);
        prop_assert_eq!(e.alerts().count(), 0);
        let open = notes.iter().fold(0i32, |open, n| match n.kind {
            NotificationKind::Firing => open + 1,
            NotificationKind::Resolved => open - 1,
            NotificationKind::Repeat => open,
        });
        prop_assert_eq!(open, 0, "{:?}", notes);
    }

    #[test]
    fn silenced_alerts_never_notify(s in steps(), offline in any::<bool>()) {
        let mut e = engine();
        e.set_silence(Silence {
            id: "all".into(),
            matchers: vec![Matcher { label: "site".into(), value: "*".into() }],
            starts_ms: 0,
            ends_ms: u64::MAX,
            created_by: "prop".into(),
            comment: String::new(),
        }, 0).unwrap();
        let (notes, now) = run(&mut e, &s);
        prop_assert!(notes.is_empty(), "{notes:?}");
        let site = SiteId::new("club").unwrap();
        let node = NodeId::new("pi").unwrap();
        let mut fleet = Fleet::new(Timeouts { factor: 3, default_heartbeat_interval_s: 10 });
        fleet.observe(&site, &node, Observation::Heartbeat { ts_ms: now }, now);
        if offline {
            fleet.observe(&site, &node, Observation::Status(Status::Offline), now + 1);
        }
        let o = e.on_fleet_events(&fleet.take_events(), now + 1);
        prop_assert!(o.notifications.is_empty());
        prop_assert!(e.tick(now + 10 * REPEAT_MS).notifications.is_empty());
    }

    /// Three nodes of one site go up and down at random through the real fleet core:
    /// no node alert is notified while the site-offline alert fires.
    #[test]
    fn inhibited_alerts_never_notify(moves in proptest::collection::vec((0usize..3, any::<bool>(), 0u64..600_000), 1..80)) {
        let mut e = engine();
        let site = SiteId::new("club").unwrap();
        let nodes: Vec<NodeId> = ["a", "b", "c"].iter().map(|n| NodeId::new(*n).unwrap()).collect();
        let mut fleet = Fleet::new(Timeouts { factor: 3, default_heartbeat_interval_s: 10 })
            .with_detection(crate::state::Detection { flap_changes: 0, ..Default::default() });
        let mut now = 0;
        for n in &nodes {
            fleet.observe(&site, n, Observation::Heartbeat { ts_ms: 0 }, 0);
        }
        for (i, up, dt) in moves {
            now += dt;
            let obs = if up { Observation::Heartbeat { ts_ms: now } } else { Observation::Status(Status::Offline) };
            fleet.observe(&site, &nodes[i], obs, now);
            let mut o = e.on_fleet_events(&fleet.take_events(), now);
            let t = e.tick(now);
            o.notifications.extend(t.notifications);
            let site_down = e.alerts().any(|a| a.rule == "site-offline" && a.state == AlertState::Firing);
            for n in &o.notifications {
                if n.alert.node.is_some() {
                    prop_assert!(!site_down, "node alert notified while the site is offline: {n:?}");
                    prop_assert!(!n.alert.inhibited, "{n:?}");
                }
            }
        }
    }
}
