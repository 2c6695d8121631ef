//! Notification texts in English and French: a subject, a body and a one-line `text`,
//! naming the site, node, rule, value and time. Pure functions of the notification.

use std::fmt::Write as _;

use serde::Deserialize;

use crate::alert::{Alert, Notification, NotificationKind, RuleKind, Severity};

/// Language of a notifier's messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    #[default]
    En,
    Fr,
}

/// A rendered notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// `[sitewatch CRITICAL] club-1/pi-gate: temperature 78.2 °C > 75 °C`
    pub subject: String,
    /// Several `Key: value` lines.
    pub body: String,
    /// One or two lines for chat tools.
    pub text: String,
}

pub fn render(n: &Notification, lang: Lang) -> Rendered {
    let a = &n.alert;
    let fr = lang == Lang::Fr;
    let status = match (n.kind, fr) {
        (NotificationKind::Firing, false) => "FIRING",
        (NotificationKind::Repeat, false) => "STILL FIRING",
        (NotificationKind::Resolved, false) => "RESOLVED",
        (NotificationKind::Firing, true) => "ALERTE",
        (NotificationKind::Repeat, true) => "TOUJOURS EN ALERTE",
        (NotificationKind::Resolved, true) => "RÉSOLU",
    };
    let sev = severity(a.severity, lang).to_uppercase();
    let place = match &a.node {
        Some(node) => format!("{}/{}", a.site, node),
        None => a.site.to_string(),
    };
    let what = headline(a, lang, n.kind == NotificationKind::Resolved);
    let subject = if n.kind == NotificationKind::Resolved {
        format!("[sitewatch {status}] {place}: {what}")
    } else {
        format!("[sitewatch {sev}] {place}: {what}")
    };

    let mut body = String::new();
    let line = |body: &mut String, en: &str, fr_key: &str, value: &str| {
        let key = if fr { fr_key } else { en };
        let sep = if fr { " : " } else { ": " };
        let _ = writeln!(body, "{key}{sep}{value}");
    };
    line(&mut body, "Status", "État", status);
    line(&mut body, "Severity", "Gravité", severity(a.severity, lang));
    line(&mut body, "Site", "Site", a.site.as_str());
    if let Some(node) = &a.node {
        line(&mut body, "Node", "Nœud", node.as_str());
    }
    line(
        &mut body,
        "Rule",
        "Règle",
        &format!("{} ({})", a.rule, a.kind),
    );
    line(&mut body, "Alert", "Alerte", &what);
    if let Some(v) = a.value {
        let unit = a.series.as_deref().map_or("", unit);
        let mut value = format!("{}{unit}", number(v, lang));
        if let (Some(op), Some(t)) = (a.op, a.threshold) {
            let word = if fr { "seuil" } else { "threshold" };
            let _ = write!(value, " ({word} {} {}{unit})", op.as_str(), number(t, lang));
        }
        line(&mut body, "Value", "Valeur", &value);
    }
    if let Some(series) = &a.series {
        line(&mut body, "Series", "Série", series);
    }
    if let Some(d) = &a.detail {
        line(&mut body, "Detail", "Détail", d);
    }
    let since = a.fired_ms.unwrap_or(a.started_ms);
    line(&mut body, "Since", "Depuis", &utc(since));
    if let Some(r) = a.resolved_ms {
        line(&mut body, "Resolved at", "Résolu à", &utc(r));
    }
    line(&mut body, "Time", "Date", &utc(n.at_ms));
    if let Some(s) = &a.summary {
        line(&mut body, "Note", "Note", s);
    }
    if let Some(by) = &a.acked_by {
        line(&mut body, "Acknowledged by", "Acquittée par", by);
    }
    line(&mut body, "Fingerprint", "Empreinte", &a.fingerprint);

    let text = format!(
        "{} [{}] {place}: {what} — {} {} ({})",
        icon(n.kind, a.severity),
        if n.kind == NotificationKind::Resolved {
            status.to_owned()
        } else {
            sev
        },
        if fr { "règle" } else { "rule" },
        a.rule,
        utc(n.at_ms),
    );
    Rendered {
        subject,
        body,
        text,
    }
}

fn icon(kind: NotificationKind, sev: Severity) -> &'static str {
    match (kind, sev) {
        (NotificationKind::Resolved, _) => "✅",
        (_, Severity::Critical) => "🔴",
        (_, Severity::Warning) => "🟠",
        (_, Severity::Info) => "🔵",
    }
}

pub fn severity(s: Severity, lang: Lang) -> &'static str {
    match (s, lang) {
        (Severity::Critical, Lang::En) => "critical",
        (Severity::Warning, Lang::En) => "warning",
        (Severity::Info, Lang::En) => "info",
        (Severity::Critical, Lang::Fr) => "critique",
        (Severity::Warning, Lang::Fr) => "avertissement",
        (Severity::Info, Lang::Fr) => "info",
    }
}

/// What the alert says, in a few words (a resolved metric without its comparison).
/// `: <mac> <ip> <name>` of a LAN device alert, from its detail.
fn device(a: &Alert) -> String {
    a.detail
        .as_deref()
        .filter(|d| !d.is_empty())
        .map(|d| format!(": {d}"))
        .unwrap_or_default()
}

fn headline(a: &Alert, lang: Lang, resolved: bool) -> String {
    let fr = lang == Lang::Fr;
    let label = |k: &str| a.labels.get(k).map(String::as_str).unwrap_or("");
    let value = a.value.map(|v| number(v, lang)).unwrap_or_default();
    match a.kind {
        RuleKind::Metric => {
            let series = a.series.as_deref().unwrap_or("");
            let metric = series.split('{').next().unwrap_or(series);
            let unit = unit(series);
            let name = match (metric, fr) {
                ("temp_c", false) => format!("temperature {}", label("sensor")),
                ("temp_c", true) => format!("température {}", label("sensor")),
                ("fs.used_pct", false) => format!("disk {} used", label("mount")),
                ("fs.used_pct", true) => format!("disque {} utilisé", label("mount")),
                ("memory.used_pct", false) => "memory used".to_owned(),
                ("memory.used_pct", true) => "mémoire utilisée".to_owned(),
                ("cpu.usage_pct", false) => "CPU usage".to_owned(),
                ("cpu.usage_pct", true) => "utilisation CPU".to_owned(),
                _ => metric.to_owned(),
            };
            let mut s = format!("{} {value}{unit}", name.trim_end());
            if let (Some(op), Some(t), false) = (a.op, a.threshold, resolved) {
                let _ = write!(s, " {} {}{unit}", op.as_str(), number(t, lang));
            }
            s
        }
        RuleKind::NodeOffline if fr => "nœud hors ligne".into(),
        RuleKind::NodeOffline => "node offline".into(),
        RuleKind::SiteOffline if fr => "site hors ligne (tous ses nœuds)".into(),
        RuleKind::SiteOffline => "site offline (all its nodes)".into(),
        RuleKind::SiteDegraded if fr => "site dégradé (des nœuds hors ligne)".into(),
        RuleKind::SiteDegraded => "site degraded (some nodes offline)".into(),
        RuleKind::CheckFailed if fr => format!("contrôle {} en échec", label("check")),
        RuleKind::CheckFailed => format!("check {} failed", label("check")),
        RuleKind::PiPower => {
            let flag = match (label("flag"), fr) {
                ("under-voltage", false) => "under-voltage",
                ("under-voltage", true) => "sous-tension",
                ("throttled", false) => "throttled",
                ("throttled", true) => "bridé",
                ("freq-capped", false) => "frequency capped",
                ("freq-capped", true) => "fréquence limitée",
                ("soft-temp-limit", false) => "soft temperature limit",
                ("soft-temp-limit", true) => "limite thermique",
                (other, _) => other,
            };
            format!("Raspberry Pi {flag}")
        }
        RuleKind::LanDeviceNew if fr => format!("nouvel appareil sur le réseau{}", device(a)),
        RuleKind::LanDeviceNew => format!("new device on the LAN{}", device(a)),
        RuleKind::LanDeviceGone if fr => format!("appareil disparu du réseau{}", device(a)),
        RuleKind::LanDeviceGone => format!("device gone from the LAN{}", device(a)),
        RuleKind::AgentRebooted if fr => "nœud redémarré".into(),
        RuleKind::AgentRebooted => "node rebooted".into(),
        RuleKind::ClockSkew if fr => format!("horloge décalée de {value} s"),
        RuleKind::ClockSkew => format!("clock off by {value} s"),
        RuleKind::NodeFlapping if fr => format!("nœud instable ({value} changements d'état)"),
        RuleKind::NodeFlapping => format!("node flapping ({value} status changes)"),
    }
}

/// Unit of a series from its name's suffix (`_pct`, `_c`, `_bytes`…), with a leading space.
fn unit(series: &str) -> &'static str {
    let metric = series.split('{').next().unwrap_or(series);
    let suffixes = [
        ("_pct", " %"),
        ("_c", " °C"),
        ("_bytes", " B"),
        ("_bps", " B/s"),
        ("_ms", " ms"),
        ("_s", " s"),
        ("_dbm", " dBm"),
        ("_mhz", " MHz"),
    ];
    suffixes
        .iter()
        .find(|(s, _)| metric.ends_with(s))
        .map_or("", |(_, u)| u)
}

/// A number with at most one decimal (two under 1), a decimal comma in French.
fn number(v: f64, lang: Lang) -> String {
    let s = if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else if v.abs() < 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.1}")
    };
    if lang == Lang::Fr {
        s.replace('.', ",")
    } else {
        s
    }
}

/// `2024-12-04 14:35:22 UTC` from Unix milliseconds.
pub fn utc(ms: u64) -> String {
    let secs = ms / 1000;
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to a (year, month, day) date (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::alert::{AlertState, Op};
    use sitewatch_proto::{NodeId, SiteId};

    pub(crate) fn temperature_alert() -> Notification {
        let labels: BTreeMap<String, String> = [
            ("rule", "temperature"),
            ("site", "club-1"),
            ("node", "pi-gate"),
            ("sensor", "cpu_thermal"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        Notification {
            kind: NotificationKind::Firing,
            at_ms: 1_733_322_922_000,
            alert: Alert {
                fingerprint: "0123456789abcdef".into(),
                rule: "temperature".into(),
                kind: RuleKind::Metric,
                severity: Severity::Critical,
                site: SiteId::new("club-1").unwrap(),
                node: Some(NodeId::new("pi-gate").unwrap()),
                labels,
                state: AlertState::Firing,
                value: Some(78.24),
                series: Some("temp_c".into()),
                op: Some(Op::Gt),
                threshold: Some(75.0),
                detail: None,
                summary: Some("check the fan".into()),
                started_ms: 1_733_322_862_000,
                fired_ms: Some(1_733_322_922_000),
                resolved_ms: None,
                updated_ms: 1_733_322_922_000,
                notified_ms: None,
                notifications: 0,
                acked_by: None,
                acked_ms: None,
                silenced_by: None,
                inhibited: false,
            },
        }
    }

    #[test]
    fn english_names_site_node_rule_value_and_time() {
        let r = render(&temperature_alert(), Lang::En);
        assert_eq!(
            r.subject,
            "[sitewatch CRITICAL] club-1/pi-gate: temperature cpu_thermal 78.2 °C > 75 °C"
        );
        for line in [
            "Status: FIRING",
            "Site: club-1",
            "Node: pi-gate",
            "Rule: temperature (metric)",
            "Value: 78.2 °C (threshold > 75 °C)",
            "Since: 2024-12-04 14:35:22 UTC",
            "Time: 2024-12-04 14:35:22 UTC",
            "Note: check the fan",
        ] {
            assert!(
                r.body.lines().any(|l| l == line),
                "missing {line:?} in\n{}",
                r.body
            );
        }
        assert!(
            r.text.contains("club-1/pi-gate") && r.text.contains("rule temperature"),
            "{}",
            r.text
        );
    }

    #[test]
    fn french() {
        let mut n = temperature_alert();
        n.kind = NotificationKind::Resolved;
        n.alert.resolved_ms = Some(1_733_323_000_000);
        let r = render(&n, Lang::Fr);
        assert_eq!(
            r.subject,
            "[sitewatch RÉSOLU] club-1/pi-gate: température cpu_thermal 78,2 °C"
        );
        assert!(r.body.contains("Nœud : pi-gate\n"), "{}", r.body);
        assert!(
            r.body.contains("Valeur : 78,2 °C (seuil > 75 °C)\n"),
            "{}",
            r.body
        );
        assert!(r.body.contains("Gravité : critique\n"), "{}", r.body);
        assert!(
            r.body.contains("Résolu à : 2024-12-04 14:36:40 UTC\n"),
            "{}",
            r.body
        );
    }

    #[test]
    fn other_kinds_read_well() {
        let mut n = temperature_alert();
        n.alert.kind = RuleKind::NodeOffline;
        n.alert.rule = "node-offline".into();
        n.alert.series = None;
        n.alert.value = None;
        n.alert.op = None;
        n.alert.threshold = None;
        assert_eq!(
            render(&n, Lang::En).subject,
            "[sitewatch CRITICAL] club-1/pi-gate: node offline"
        );
        assert_eq!(
            render(&n, Lang::Fr).subject,
            "[sitewatch CRITIQUE] club-1/pi-gate: nœud hors ligne"
        );
        n.alert.kind = RuleKind::CheckFailed;
        n.alert.labels.insert("check".into(), "nginx".into());
        n.alert.detail = Some("nginx.service is failed".into());
        let r = render(&n, Lang::En);
        assert!(r.subject.ends_with("check nginx failed"), "{}", r.subject);
        assert!(r.body.contains("Detail: nginx.service is failed\n"));
    }

    #[test]
    fn dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(951_782_400_000), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc(4_102_444_799_000), "2099-12-31 23:59:59 UTC");
    }
}
