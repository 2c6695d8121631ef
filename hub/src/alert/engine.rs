//! The engine's state machine: conditions in, changes and notifications out.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use sitewatch_proto::{Metrics, NodeId, SiteId};

use super::config::{Rule, RuleKind};
use super::matcher::{Silence, any_glob, fingerprint};
use super::{Alert, AlertState, LanChange, LanEvent, Notification, NotificationKind, Outcome};
use crate::state::{FleetEvent, NodeStatus, SiteStatus};

/// Why an engine request (from the API) was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AlertError {
    #[error(
        "no pending or firing alert has fingerprint {0:?}; it may have resolved — list the \
         firing alerts with GET /api/v1/alerts?state=firing"
    )]
    NotFound(String),
    #[error("no silence has id {0:?}; list them with GET /api/v1/silences")]
    NoSilence(String),
    #[error("invalid silence: {0}")]
    InvalidSilence(String),
}

/// What a source says about one alert's condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Signal {
    /// The condition holds (metric: beyond the threshold).
    Start,
    /// Metric between `clear` and `threshold`: a firing alert stays, nothing starts.
    Hold,
    /// The condition does not hold.
    Clear,
    /// A one-off event (reboot, new device).
    Event,
}

#[derive(Debug, Clone)]
struct Cond {
    rule: usize,
    site: SiteId,
    node: Option<NodeId>,
    extra: Vec<(String, String)>,
    signal: Signal,
    value: Option<f64>,
    detail: Option<String>,
}

/// Work of one call: alerts touched (by fingerprint) and alerts resolved.
#[derive(Default)]
struct Batch {
    /// Look at every active alert (time passed, silences changed), not only those the
    /// call's conditions named.
    full: bool,
    /// Alerts the call's conditions named.
    seen: Vec<String>,
    touched: Vec<String>,
    /// Resolved occurrences, with whether the resolve is silent (event expiry, or a
    /// pending alert that never fired).
    resolved: Vec<(Alert, bool)>,
}

impl Batch {
    fn full() -> Self {
        Self {
            full: true,
            ..Default::default()
        }
    }

    fn touch(&mut self, fp: &str) {
        if !self.touched.iter().any(|t| t == fp) {
            self.touched.push(fp.to_owned());
        }
    }
}

/// The alert engine. See the module documentation of [`crate::alert`].
#[derive(Debug, Clone)]
pub struct Engine {
    rules: Vec<Rule>,
    by_name: HashMap<String, usize>,
    /// Pending and firing alerts by fingerprint.
    active: BTreeMap<String, Alert>,
    silences: BTreeMap<String, Silence>,
}

impl Engine {
    pub fn new(rules: Vec<Rule>) -> Self {
        let by_name = rules
            .iter()
            .enumerate()
            .map(|(i, r)| (r.name.clone(), i))
            .collect();
        Self {
            rules,
            by_name,
            active: BTreeMap::new(),
            silences: BTreeMap::new(),
        }
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Pending and firing alerts.
    pub fn alerts(&self) -> impl Iterator<Item = &Alert> {
        self.active.values()
    }

    pub fn alert(&self, fingerprint: &str) -> Option<&Alert> {
        self.active.get(fingerprint)
    }

    /// Firing alerts of one node (the retained `…/{site}/{node}/alerts` list), muted ones
    /// included.
    pub fn node_alerts(&self, site: &SiteId, node: &NodeId) -> Vec<&Alert> {
        self.active
            .values()
            .filter(|a| {
                a.state == AlertState::Firing && &a.site == site && a.node.as_ref() == Some(node)
            })
            .collect()
    }

    pub fn silences(&self) -> impl Iterator<Item = &Silence> {
        self.silences.values()
    }

    /// Reinstates what storage held at start-up: pending and firing alerts (with the time
    /// they were last notified, so nothing is sent again before its repeat interval) and
    /// silences. Alerts whose rule no longer exists resolve silently.
    pub fn restore(&mut self, alerts: Vec<Alert>, silences: Vec<Silence>, now_ms: u64) -> Outcome {
        let mut b = Batch {
            full: true,
            ..Default::default()
        };
        for s in silences {
            self.silences.insert(s.id.clone(), s);
        }
        for mut a in alerts {
            if a.state == AlertState::Resolved {
                continue;
            }
            match self.by_name.get(&a.rule).map(|&i| &self.rules[i]) {
                Some(rule) if rule.kind == a.kind => {
                    a.severity = rule.severity;
                    a.summary = rule.summary.clone();
                    self.active.insert(a.fingerprint.clone(), a);
                }
                _ => {
                    a.state = AlertState::Resolved;
                    a.resolved_ms = Some(now_ms);
                    a.updated_ms = now_ms;
                    b.resolved.push((a, true));
                }
            }
        }
        self.flush(now_ms, b)
    }

    /// Evaluates metric, check-failed and pi-power rules on one metrics message. Alerts of
    /// those rules for this node whose series or check is no longer in the message resolve.
    pub fn on_metrics(
        &mut self,
        site: &SiteId,
        node: &NodeId,
        m: &Metrics,
        now_ms: u64,
    ) -> Outcome {
        let samples = m.samples();
        let mut conds = Vec::new();
        for (i, rule) in self.rules.iter().enumerate() {
            if !rule.applies_to(site.as_str(), Some(node.as_str())) {
                continue;
            }
            let cond = |extra, signal, value, detail| Cond {
                rule: i,
                site: site.clone(),
                node: Some(node.clone()),
                extra,
                signal,
                value,
                detail,
            };
            match rule.kind {
                RuleKind::Metric => {
                    let Some(sel) = &rule.series else { continue };
                    for s in &samples {
                        let Some(labels) = sel.select(s.metric, &s.labels) else {
                            continue;
                        };
                        let signal = if rule.op.holds(s.value, rule.threshold) {
                            Signal::Start
                        } else if rule.op.holds(s.value, rule.clear) {
                            Signal::Hold
                        } else {
                            Signal::Clear
                        };
                        conds.push(cond(labels, signal, Some(s.value), None));
                    }
                }
                RuleKind::CheckFailed => {
                    for c in &m.checks {
                        let kind_ok = rule.check_kinds.is_empty()
                            || rule.check_kinds.iter().any(|k| k.as_str() == c.kind);
                        if !kind_ok || !any_glob(&rule.checks, &c.name) {
                            continue;
                        }
                        let signal = if c.ok { Signal::Clear } else { Signal::Start };
                        let detail = c.detail.clone().unwrap_or_else(|| {
                            format!("{} check {:?}: {}", c.kind, c.name, c.state)
                        });
                        let extra = vec![("check".to_owned(), c.name.clone())];
                        conds.push(cond(extra, signal, None, Some(detail)));
                    }
                }
                RuleKind::PiPower => {
                    let Some(pi) = &m.pi else { continue };
                    for f in &rule.flags {
                        let signal = if f.read(pi) {
                            Signal::Start
                        } else {
                            Signal::Clear
                        };
                        let extra = vec![("flag".to_owned(), f.as_str().to_owned())];
                        conds.push(cond(extra, signal, None, None));
                    }
                }
                _ => {}
            }
        }
        let mut b = Batch::default();
        let mut seen = BTreeSet::new();
        for c in conds {
            seen.insert(self.apply(c, now_ms, &mut b));
        }
        // Series, checks or Pi flags that vanished from this node's metrics.
        let gone: Vec<String> = self
            .active
            .values()
            .filter(|a| {
                matches!(
                    a.kind,
                    RuleKind::Metric | RuleKind::CheckFailed | RuleKind::PiPower
                ) && &a.site == site
                    && a.node.as_ref() == Some(node)
                    && !seen.contains(&a.fingerprint)
            })
            .map(|a| a.fingerprint.clone())
            .collect();
        for fp in gone {
            self.resolve(&fp, now_ms, false, &mut b);
        }
        self.flush(now_ms, b)
    }

    /// Applies fleet events (pass a whole [`crate::state::Fleet::take_events`] batch in one
    /// call: a node and its site going offline together are then judged together, and
    /// inhibition holds back the node alert).
    pub fn on_fleet_events(&mut self, events: &[FleetEvent], now_ms: u64) -> Outcome {
        let mut conds = Vec::new();
        for e in events {
            self.fleet_conds(e, &mut conds);
        }
        let mut b = Batch::default();
        for c in conds {
            self.apply(c, now_ms, &mut b);
        }
        self.flush(now_ms, b)
    }

    fn fleet_conds(&self, e: &FleetEvent, out: &mut Vec<Cond>) {
        let (site, node, kind_signals): (&SiteId, Option<&NodeId>, Vec<(RuleKind, Signal)>) =
            match e {
                FleetEvent::Node(t) => {
                    let signal = match t.to {
                        NodeStatus::Offline => Signal::Start,
                        NodeStatus::Online => Signal::Clear,
                        NodeStatus::Unknown => return,
                    };
                    (
                        &t.site,
                        Some(&t.node),
                        vec![(RuleKind::NodeOffline, signal)],
                    )
                }
                FleetEvent::Site(t) => {
                    let on = |s| {
                        if t.to == s {
                            Signal::Start
                        } else {
                            Signal::Clear
                        }
                    };
                    (
                        &t.site,
                        None,
                        vec![
                            (RuleKind::SiteOffline, on(SiteStatus::Offline)),
                            (RuleKind::SiteDegraded, on(SiteStatus::Degraded)),
                        ],
                    )
                }
                FleetEvent::Rebooted { site, node, .. } => (
                    site,
                    Some(node),
                    vec![(RuleKind::AgentRebooted, Signal::Event)],
                ),
                FleetEvent::ClockSkew {
                    site, node, active, ..
                } => {
                    let signal = if *active {
                        Signal::Start
                    } else {
                        Signal::Clear
                    };
                    (site, Some(node), vec![(RuleKind::ClockSkew, signal)])
                }
                FleetEvent::Flapping {
                    site, node, active, ..
                } => {
                    let signal = if *active {
                        Signal::Start
                    } else {
                        Signal::Clear
                    };
                    (site, Some(node), vec![(RuleKind::NodeFlapping, signal)])
                }
            };
        let (value, detail) = match e {
            FleetEvent::Node(t) => (None, Some(t.reason.as_str().to_owned())),
            FleetEvent::Site(t) => (None, Some(t.to.as_str().to_owned())),
            FleetEvent::Rebooted {
                previous_boot_id,
                boot_id,
                ..
            } => (
                None,
                Some(format!("boot id {previous_boot_id} → {boot_id}")),
            ),
            FleetEvent::ClockSkew { skew_ms, .. } => (Some(*skew_ms as f64 / 1000.0), None),
            FleetEvent::Flapping { changes, .. } => (Some(f64::from(*changes)), None),
        };
        for (kind, signal) in kind_signals {
            for (i, rule) in self.rules.iter().enumerate() {
                if rule.kind == kind && rule.applies_to(site.as_str(), node.map(NodeId::as_str)) {
                    out.push(Cond {
                        rule: i,
                        site: site.clone(),
                        node: node.cloned(),
                        extra: Vec::new(),
                        signal,
                        value,
                        detail: detail.clone(),
                    });
                }
            }
        }
    }

    /// Applies LAN scan findings.
    pub fn on_lan_events(&mut self, events: &[LanEvent], now_ms: u64) -> Outcome {
        let mut conds = Vec::new();
        for e in events {
            for (i, rule) in self.rules.iter().enumerate() {
                let signal = match (rule.kind, e.change) {
                    (RuleKind::LanDeviceNew, LanChange::New) => Signal::Event,
                    (RuleKind::LanDeviceGone, LanChange::Gone) => Signal::Start,
                    (RuleKind::LanDeviceGone, LanChange::Back | LanChange::New) => Signal::Clear,
                    _ => continue,
                };
                let device_ok = rule.devices.is_empty()
                    || any_glob(&rule.devices, &e.mac)
                    || e.ip
                        .as_deref()
                        .is_some_and(|ip| any_glob(&rule.devices, ip));
                if !device_ok || !rule.applies_to(e.site.as_str(), Some(e.node.as_str())) {
                    continue;
                }
                let mut detail = e.mac.clone();
                for part in [&e.ip, &e.name].into_iter().flatten() {
                    detail.push(' ');
                    detail.push_str(part);
                }
                conds.push(Cond {
                    rule: i,
                    site: e.site.clone(),
                    node: Some(e.node.clone()),
                    extra: vec![("mac".to_owned(), e.mac.to_ascii_lowercase())],
                    signal,
                    value: None,
                    detail: Some(detail),
                });
            }
        }
        let mut b = Batch::default();
        for c in conds {
            self.apply(c, now_ms, &mut b);
        }
        self.flush(now_ms, b)
    }

    /// Time passing: pending alerts whose `for` elapsed fire, repeats fall due, event
    /// alerts expire, silences end.
    pub fn tick(&mut self, now_ms: u64) -> Outcome {
        self.silences.retain(|_, s| s.ends_ms > now_ms);
        self.flush(now_ms, Batch::full())
    }

    /// Adds or replaces (same id) a silence.
    pub fn set_silence(&mut self, silence: Silence, now_ms: u64) -> Result<Outcome, AlertError> {
        silence.validate().map_err(AlertError::InvalidSilence)?;
        self.silences.insert(silence.id.clone(), silence);
        Ok(self.flush(now_ms, Batch::full()))
    }

    /// Ends a silence now; returns it as ended (to store).
    pub fn expire_silence(
        &mut self,
        id: &str,
        now_ms: u64,
    ) -> Result<(Silence, Outcome), AlertError> {
        let mut s = self
            .silences
            .remove(id)
            .ok_or_else(|| AlertError::NoSilence(id.to_owned()))?;
        s.ends_ms = s.ends_ms.min(now_ms).max(s.starts_ms);
        Ok((s, self.flush(now_ms, Batch::full())))
    }

    /// Acknowledges an alert: no more repeats until it resolves (it still notifies the
    /// resolve).
    pub fn acknowledge(
        &mut self,
        fingerprint: &str,
        by: &str,
        now_ms: u64,
    ) -> Result<Outcome, AlertError> {
        let a = self
            .active
            .get_mut(fingerprint)
            .ok_or_else(|| AlertError::NotFound(fingerprint.to_owned()))?;
        a.acked_by = Some(by.to_owned());
        a.acked_ms = Some(now_ms);
        a.updated_ms = now_ms;
        let mut b = Batch::default();
        b.touch(fingerprint);
        Ok(self.flush(now_ms, b))
    }

    /// Applies one condition; returns the alert's fingerprint.
    fn apply(&mut self, c: Cond, now_ms: u64, b: &mut Batch) -> String {
        let rule = &self.rules[c.rule];
        let mut labels = BTreeMap::new();
        labels.insert("rule".to_owned(), rule.name.clone());
        labels.insert("site".to_owned(), c.site.to_string());
        if let Some(n) = &c.node {
            labels.insert("node".to_owned(), n.to_string());
        }
        for (k, v) in c.extra {
            labels.entry(k).or_insert(v);
        }
        let fp = fingerprint(&labels);
        b.seen.push(fp.clone());
        let existing = self.active.get_mut(&fp);
        match (existing, c.signal) {
            (None, Signal::Clear | Signal::Hold) => {}
            (None, Signal::Start | Signal::Event) => {
                let fire = c.signal == Signal::Event || rule.for_ms == 0;
                let metric = rule.kind == RuleKind::Metric;
                let alert = Alert {
                    fingerprint: fp.clone(),
                    rule: rule.name.clone(),
                    kind: rule.kind,
                    severity: rule.severity,
                    site: c.site,
                    node: c.node,
                    labels,
                    state: if fire {
                        AlertState::Firing
                    } else {
                        AlertState::Pending
                    },
                    value: c.value,
                    series: rule.series_text.clone(),
                    op: metric.then_some(rule.op),
                    threshold: metric.then_some(rule.threshold),
                    detail: c.detail,
                    summary: rule.summary.clone(),
                    started_ms: now_ms,
                    fired_ms: fire.then_some(now_ms),
                    resolved_ms: None,
                    updated_ms: now_ms,
                    notified_ms: None,
                    notifications: 0,
                    acked_by: None,
                    acked_ms: None,
                    silenced_by: None,
                    inhibited: false,
                };
                self.active.insert(fp.clone(), alert);
                b.touch(&fp);
            }
            (Some(a), Signal::Hold) if a.state == AlertState::Pending => {
                // Back under the threshold before `for` elapsed: it never fired.
                self.resolve(&fp, now_ms, true, b);
            }
            (Some(a), Signal::Start | Signal::Event | Signal::Hold) => {
                a.value = c.value.or(a.value);
                if c.detail.is_some() {
                    a.detail = c.detail;
                }
                a.updated_ms = now_ms;
            }
            (Some(a), Signal::Clear) => {
                a.value = c.value.or(a.value);
                self.resolve(&fp, now_ms, false, b);
            }
        }
        fp
    }

    fn resolve(&mut self, fp: &str, now_ms: u64, quiet: bool, b: &mut Batch) {
        if let Some(mut a) = self.active.remove(fp) {
            let never_fired = a.state == AlertState::Pending;
            a.state = AlertState::Resolved;
            a.resolved_ms = Some(now_ms);
            a.updated_ms = now_ms;
            b.resolved.push((a, quiet || never_fired));
        }
    }

    fn rule_of(&self, a: &Alert) -> Option<&Rule> {
        self.by_name.get(&a.rule).map(|&i| &self.rules[i])
    }

    /// Whether a site-offline alert fires for `site` (it inhibits the site's node alerts).
    fn site_down(&self, site: &SiteId) -> bool {
        self.rules
            .iter()
            .filter(|r| r.kind == RuleKind::SiteOffline)
            .any(|r| {
                let labels = BTreeMap::from([
                    ("rule".to_owned(), r.name.clone()),
                    ("site".to_owned(), site.to_string()),
                ]);
                self.active
                    .get(&fingerprint(&labels))
                    .is_some_and(|a| a.state == AlertState::Firing)
            })
    }

    /// The silence muting `a` now, and whether it is inhibited.
    fn mute(&self, a: &Alert, now_ms: u64) -> (Option<String>, bool) {
        let silenced = self
            .silences
            .values()
            .find(|s| s.is_active(now_ms) && s.matches(|l| label_of(a, l)))
            .map(|s| s.id.clone());
        (silenced, a.node.is_some() && self.site_down(&a.site))
    }

    /// Promotes, expires, computes mutes and notifications; snapshots what changed. Looks
    /// at the alerts the call named, or at all of them for a full batch (ticks, silences).
    fn flush(&mut self, now_ms: u64, mut b: Batch) -> Outcome {
        let mut keys: Vec<String> = if b.full {
            self.active.keys().cloned().collect()
        } else {
            let mut k: Vec<String> = b.seen.iter().chain(&b.touched).cloned().collect();
            k.sort_unstable();
            k.dedup();
            k
        };
        // Pending alerts whose `for` elapsed fire; event alerts expire.
        for fp in &keys {
            let Some(a) = self.active.get_mut(fp) else {
                continue;
            };
            let Some(rule) = self.by_name.get(&a.rule).map(|&i| &self.rules[i]) else {
                continue;
            };
            if a.state == AlertState::Pending && now_ms.saturating_sub(a.started_ms) >= rule.for_ms
            {
                a.state = AlertState::Firing;
                a.fired_ms = Some(now_ms);
                a.updated_ms = now_ms;
                b.touch(fp);
            }
            if rule.kind.is_event() && now_ms.saturating_sub(a.updated_ms) >= rule.repeat_ms {
                let fp = fp.clone();
                self.resolve(&fp, now_ms, true, &mut b);
            }
        }
        // A site-offline alert that fired or resolved changes its node alerts' inhibition.
        if !b.full {
            let sites: BTreeSet<SiteId> = keys
                .iter()
                .filter_map(|fp| self.active.get(fp))
                .chain(b.resolved.iter().map(|(a, _)| a))
                .filter(|a| a.kind == RuleKind::SiteOffline)
                .map(|a| a.site.clone())
                .collect();
            if !sites.is_empty() {
                keys.extend(
                    self.active
                        .values()
                        .filter(|a| a.node.is_some() && sites.contains(&a.site))
                        .map(|a| a.fingerprint.clone()),
                );
                keys.sort_unstable();
                keys.dedup();
            }
        }

        let mut out = Outcome::default();
        for fp in &keys {
            let Some(a) = self.active.get(fp) else {
                continue;
            };
            let (silenced, inhibited) = self.mute(a, now_ms);
            let repeat = self.rule_of(a).map_or(u64::MAX, |r| r.repeat_ms);
            let Some(a) = self.active.get_mut(fp) else {
                continue;
            };
            if silenced != a.silenced_by || inhibited != a.inhibited {
                a.silenced_by = silenced;
                a.inhibited = inhibited;
                b.touch(fp);
            }
            if a.state != AlertState::Firing || a.silenced_by.is_some() || a.inhibited {
                continue;
            }
            let kind = match a.notified_ms {
                None => NotificationKind::Firing,
                Some(_) if a.acked_ms.is_some() => continue,
                Some(last) if now_ms.saturating_sub(last) >= repeat => NotificationKind::Repeat,
                Some(_) => continue,
            };
            a.notified_ms = Some(now_ms);
            a.notifications = a.notifications.saturating_add(1);
            out.notifications.push(Notification {
                kind,
                alert: a.clone(),
                at_ms: now_ms,
            });
            b.touch(fp);
        }
        for (mut a, quiet) in std::mem::take(&mut b.resolved) {
            let (silenced, inhibited) = self.mute(&a, now_ms);
            a.silenced_by = silenced;
            a.inhibited = inhibited;
            if !quiet && a.notified_ms.is_some() && a.silenced_by.is_none() && !a.inhibited {
                a.notifications = a.notifications.saturating_add(1);
                out.notifications.push(Notification {
                    kind: NotificationKind::Resolved,
                    alert: a.clone(),
                    at_ms: now_ms,
                });
            }
            out.changes.push(a);
        }
        for fp in b.touched {
            if let Some(a) = self.active.get(&fp) {
                out.changes.push(a.clone());
            }
        }
        out
    }
}

/// The value of a label for silence matching: identifying labels, plus `severity` and
/// `kind`.
fn label_of<'a>(a: &'a Alert, label: &str) -> Option<&'a str> {
    match label {
        "severity" => Some(a.severity.as_str()),
        "kind" => Some(a.kind.as_str()),
        _ => a.labels.get(label).map(String::as_str),
    }
}

#[cfg(test)]
mod tests;
