//! `[alerts]` in `hub.toml`: rules (`[[alerts.rules]]`), notifiers (`[[alerts.notifiers]]`)
//! and the built-in rules used when the file says nothing. Every key is documented in
//! `deploy/alerts.toml`.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

use super::Severity;
use super::matcher::SeriesSelector;
use crate::notify::NotifierConfig;

/// `[alerts]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct AlertsConfig {
    /// Include the built-in rules ([`builtin_rules`]); a rule of the same name replaces one.
    #[serde(default = "d_true")]
    pub default_rules: bool,
    /// How often a firing alert is notified again, unless its rule says otherwise.
    #[serde(default = "d_repeat")]
    pub repeat_interval: Dur,
    #[serde(default)]
    pub rules: Vec<RuleConfig>,
    #[serde(default)]
    pub notifiers: Vec<NotifierConfig>,
}

fn d_true() -> bool {
    true
}
fn d_repeat() -> Dur {
    Dur::from_secs(3600)
}

impl Default for AlertsConfig {
    fn default() -> Self {
        Self {
            default_rules: true,
            repeat_interval: d_repeat(),
            rules: Vec::new(),
            notifiers: Vec::new(),
        }
    }
}

/// What a rule watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RuleKind {
    /// A series of the metrics payload against a threshold.
    Metric,
    NodeOffline,
    SiteOffline,
    /// Some but not all nodes of a site offline.
    SiteDegraded,
    /// An agent check (systemd, process, path, tcp, http) not ok.
    CheckFailed,
    /// Raspberry Pi under-voltage, throttling, frequency capping or soft temperature limit.
    PiPower,
    /// A device never seen before on a scanned LAN (an event: no resolve).
    LanDeviceNew,
    /// A known device no longer answers on a scanned LAN.
    LanDeviceGone,
    /// The node booted again (new boot id; an event: no resolve).
    AgentRebooted,
    /// The agent's clock is off (thresholds under `[detection]`).
    ClockSkew,
    /// The node keeps going online and offline (thresholds under `[detection]`).
    NodeFlapping,
}

impl RuleKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RuleKind::Metric => "metric",
            RuleKind::NodeOffline => "node-offline",
            RuleKind::SiteOffline => "site-offline",
            RuleKind::SiteDegraded => "site-degraded",
            RuleKind::CheckFailed => "check-failed",
            RuleKind::PiPower => "pi-power",
            RuleKind::LanDeviceNew => "lan-device-new",
            RuleKind::LanDeviceGone => "lan-device-gone",
            RuleKind::AgentRebooted => "agent-rebooted",
            RuleKind::ClockSkew => "clock-skew",
            RuleKind::NodeFlapping => "node-flapping",
        }
    }

    /// Events fire once and resolve by themselves after the repeat interval, silently.
    pub fn is_event(self) -> bool {
        matches!(self, RuleKind::LanDeviceNew | RuleKind::AgentRebooted)
    }

    /// Site-wide alerts carry no node.
    pub fn is_site_wide(self) -> bool {
        matches!(self, RuleKind::SiteOffline | RuleKind::SiteDegraded)
    }

    fn default_severity(self) -> Severity {
        match self {
            RuleKind::NodeOffline | RuleKind::SiteOffline | RuleKind::CheckFailed => {
                Severity::Critical
            }
            RuleKind::LanDeviceNew | RuleKind::AgentRebooted => Severity::Info,
            _ => Severity::Warning,
        }
    }
}

impl fmt::Display for RuleKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Comparison of a metric rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Op {
    #[serde(rename = ">")]
    Gt,
    #[serde(rename = "<")]
    Lt,
    #[serde(rename = ">=")]
    Ge,
    #[serde(rename = "<=")]
    Le,
}

impl Op {
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Gt => ">",
            Op::Lt => "<",
            Op::Ge => ">=",
            Op::Le => "<=",
        }
    }

    pub fn holds(self, value: f64, threshold: f64) -> bool {
        match self {
            Op::Gt => value > threshold,
            Op::Lt => value < threshold,
            Op::Ge => value >= threshold,
            Op::Le => value <= threshold,
        }
    }

    fn is_upper(self) -> bool {
        matches!(self, Op::Gt | Op::Ge)
    }
}

impl<'de> Deserialize<'de> for Op {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        match s.trim() {
            ">" => Ok(Op::Gt),
            "<" => Ok(Op::Lt),
            ">=" => Ok(Op::Ge),
            "<=" => Ok(Op::Le),
            other => Err(serde::de::Error::custom(format!(
                "unknown operator {other:?}: use \">\", \"<\", \">=\" or \"<=\""
            ))),
        }
    }
}

/// A duration written `"90s"`, `"5m"`, `"1h"`, `"2d"`, `"500ms"` or a number of seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Dur(pub u64);

impl Dur {
    pub const fn from_secs(s: u64) -> Self {
        Dur(s * 1000)
    }

    pub fn as_ms(self) -> u64 {
        self.0
    }

    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let (num, unit) = s.split_at(split);
        let n: u64 = num.parse().map_err(|_| bad_duration(s))?;
        let scale = match unit.trim() {
            "ms" => 1,
            "" | "s" => 1000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            _ => return Err(bad_duration(s)),
        };
        Ok(Dur(n.saturating_mul(scale)))
    }
}

fn bad_duration(s: &str) -> String {
    format!(
        "invalid duration {s:?}: write e.g. \"30s\", \"5m\", \"1h\", \"2d\" or a number of seconds"
    )
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Secs(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Secs(s) => Ok(Dur::from_secs(s)),
            Raw::Text(t) => Dur::parse(&t).map_err(serde::de::Error::custom),
        }
    }
}

/// Kind of agent check, as `CheckResult::kind` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CheckKind {
    Systemd,
    Process,
    Path,
    Tcp,
    Http,
}

impl CheckKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CheckKind::Systemd => "systemd",
            CheckKind::Process => "process",
            CheckKind::Path => "path",
            CheckKind::Tcp => "tcp",
            CheckKind::Http => "http",
        }
    }
}

/// A Raspberry Pi health flag (current state, not "has occurred since boot").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PiFlag {
    UnderVoltage,
    Throttled,
    FreqCapped,
    SoftTempLimit,
}

impl PiFlag {
    pub fn as_str(self) -> &'static str {
        match self {
            PiFlag::UnderVoltage => "under-voltage",
            PiFlag::Throttled => "throttled",
            PiFlag::FreqCapped => "freq-capped",
            PiFlag::SoftTempLimit => "soft-temp-limit",
        }
    }

    pub fn read(self, pi: &sitewatch_proto::payload::PiHealth) -> bool {
        match self {
            PiFlag::UnderVoltage => pi.under_voltage_now,
            PiFlag::Throttled => pi.throttled_now,
            PiFlag::FreqCapped => pi.freq_capped_now,
            PiFlag::SoftTempLimit => pi.soft_temp_limit_now,
        }
    }
}

/// One `[[alerts.rules]]` entry. Which keys apply depends on `kind`; the others are refused.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RuleConfig {
    pub name: String,
    pub kind: Option<RuleKind>,
    pub severity: Option<Severity>,
    /// metric: series selector, e.g. `temp_c`, `fs.used_pct{mount=/}`.
    pub series: Option<String>,
    /// metric: comparison (default `>`).
    pub op: Option<Op>,
    /// metric: the alert becomes pending when `value op threshold`.
    pub threshold: Option<f64>,
    /// metric: a firing alert resolves only once `value op clear` stops holding
    /// (hysteresis; default: the threshold).
    pub clear: Option<f64>,
    /// How long the condition must hold before the alert fires (default 0).
    #[serde(rename = "for")]
    pub for_: Option<Dur>,
    pub repeat_interval: Option<Dur>,
    /// Site ids (globs with `*`) the rule applies to; all when empty.
    #[serde(default)]
    pub sites: Vec<String>,
    /// Node ids (globs) the rule applies to; all when empty.
    #[serde(default)]
    pub nodes: Vec<String>,
    /// check-failed: check names (globs); all when empty.
    #[serde(default)]
    pub checks: Vec<String>,
    /// check-failed: check kinds; all when empty.
    #[serde(default)]
    pub check_kinds: Vec<CheckKind>,
    /// pi-power: flags watched (default under-voltage and throttled).
    #[serde(default)]
    pub flags: Vec<PiFlag>,
    /// lan-device-*: MAC or IP addresses (globs); all when empty.
    #[serde(default)]
    pub devices: Vec<String>,
    /// Free text added to notifications (what to do, who to call).
    pub summary: Option<String>,
}

/// Why `[alerts]` cannot be used; the message names the rule and the key.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AlertConfigError {
    #[error("alerts.rules[{index}] (name = {name:?}): {message}")]
    Rule {
        index: usize,
        name: String,
        message: String,
    },
    #[error("alerts.notifiers[{index}] (name = {name:?}): {message}")]
    Notifier {
        index: usize,
        name: String,
        message: String,
    },
}

/// A validated rule, ready for the engine.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub name: String,
    pub kind: RuleKind,
    pub severity: Severity,
    pub series: Option<SeriesSelector>,
    /// The selector as written, shown in notifications.
    pub series_text: Option<String>,
    pub op: Op,
    pub threshold: f64,
    pub clear: f64,
    pub for_ms: u64,
    pub repeat_ms: u64,
    pub sites: Vec<String>,
    pub nodes: Vec<String>,
    pub checks: Vec<String>,
    pub check_kinds: Vec<CheckKind>,
    pub flags: Vec<PiFlag>,
    pub devices: Vec<String>,
    pub summary: Option<String>,
}

impl Rule {
    pub fn applies_to(&self, site: &str, node: Option<&str>) -> bool {
        super::matcher::any_glob(&self.sites, site)
            && node.is_none_or(|n| super::matcher::any_glob(&self.nodes, n))
    }
}

fn rule(name: &str, kind: RuleKind) -> RuleConfig {
    RuleConfig {
        name: name.into(),
        kind: Some(kind),
        ..Default::default()
    }
}

fn metric(
    name: &str,
    series: &str,
    threshold: f64,
    clear: f64,
    for_s: u64,
    sev: Severity,
) -> RuleConfig {
    RuleConfig {
        series: Some(series.into()),
        threshold: Some(threshold),
        clear: Some(clear),
        for_: Some(Dur::from_secs(for_s)),
        severity: Some(sev),
        ..rule(name, RuleKind::Metric)
    }
}

/// The rules used unless `default-rules = false`, from the thresholds users ran before:
/// temperature > 75 °C critical, disk > 90 % warning, memory > 90 % warning, service
/// stopped or application missing critical, node and site offline critical; plus failed
/// port/HTTP checks, Pi under-voltage/throttling and flapping nodes as warnings.
pub fn builtin_rules() -> Vec<RuleConfig> {
    vec![
        metric("temperature", "temp_c", 75.0, 70.0, 60, Severity::Critical),
        metric("disk-full", "fs.used_pct", 90.0, 85.0, 0, Severity::Warning),
        metric(
            "memory-high",
            "memory.used_pct",
            90.0,
            85.0,
            300,
            Severity::Warning,
        ),
        RuleConfig {
            check_kinds: vec![CheckKind::Systemd, CheckKind::Process],
            ..rule("service-stopped", RuleKind::CheckFailed)
        },
        RuleConfig {
            check_kinds: vec![CheckKind::Path],
            ..rule("app-missing", RuleKind::CheckFailed)
        },
        RuleConfig {
            check_kinds: vec![CheckKind::Tcp, CheckKind::Http],
            severity: Some(Severity::Warning),
            ..rule("check-failed", RuleKind::CheckFailed)
        },
        rule("node-offline", RuleKind::NodeOffline),
        rule("site-offline", RuleKind::SiteOffline),
        rule("pi-power", RuleKind::PiPower),
        rule("node-flapping", RuleKind::NodeFlapping),
    ]
}

impl AlertsConfig {
    /// Validates and compiles the rules (built-ins first, replaced by user rules of the
    /// same name) and checks the notifiers.
    pub fn compile(&self) -> Result<Vec<Rule>, AlertConfigError> {
        let mut out: Vec<Rule> = Vec::new();
        if self.default_rules {
            for (i, r) in builtin_rules().iter().enumerate() {
                out.push(r.compile(i, self.repeat_interval)?);
            }
        }
        let mut seen = std::collections::HashSet::new();
        for (i, r) in self.rules.iter().enumerate() {
            let compiled = r.compile(i, self.repeat_interval)?;
            if !seen.insert(compiled.name.clone()) {
                return Err(AlertConfigError::Rule {
                    index: i,
                    name: r.name.clone(),
                    message: "another rule has the same name; names must be unique".into(),
                });
            }
            match out.iter_mut().find(|o| o.name == compiled.name) {
                Some(builtin) => *builtin = compiled,
                None => out.push(compiled),
            }
        }
        for (i, n) in self.notifiers.iter().enumerate() {
            n.validate(&out)
                .map_err(|message| AlertConfigError::Notifier {
                    index: i,
                    name: n.name.clone(),
                    message,
                })?;
        }
        let mut names = std::collections::HashSet::new();
        for (i, n) in self.notifiers.iter().enumerate() {
            if !names.insert(&n.name) {
                return Err(AlertConfigError::Notifier {
                    index: i,
                    name: n.name.clone(),
                    message: "another notifier has the same name; names must be unique".into(),
                });
            }
        }
        Ok(out)
    }
}

impl RuleConfig {
    fn compile(&self, index: usize, default_repeat: Dur) -> Result<Rule, AlertConfigError> {
        let err = |message: String| AlertConfigError::Rule {
            index,
            name: self.name.clone(),
            message,
        };
        let name_ok = !self.name.is_empty()
            && self.name.len() <= 63
            && self
                .name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
        if !name_ok {
            return Err(err(
                "`name` must be 1 to 63 characters from a-z, 0-9, '-' and '_'".into(),
            ));
        }
        let kind = self.kind.ok_or_else(|| {
            err(
                "`kind` is missing: use \"metric\", \"node-offline\", \"site-offline\", \
                 \"site-degraded\", \"check-failed\", \"pi-power\", \"lan-device-new\", \
                 \"lan-device-gone\", \"agent-rebooted\", \"clock-skew\" or \"node-flapping\""
                    .into(),
            )
        })?;
        let only = |key: &str, set: bool, kinds: &[RuleKind]| {
            if set && !kinds.contains(&kind) {
                let names: Vec<_> = kinds.iter().map(|k| format!("\"{k}\"")).collect();
                Err(err(format!(
                    "`{key}` applies only to kind = {}, not to kind = \"{kind}\"",
                    names.join(" or ")
                )))
            } else {
                Ok(())
            }
        };
        use RuleKind as K;
        only("series", self.series.is_some(), &[K::Metric])?;
        only("op", self.op.is_some(), &[K::Metric])?;
        only("threshold", self.threshold.is_some(), &[K::Metric])?;
        only("clear", self.clear.is_some(), &[K::Metric])?;
        only("checks", !self.checks.is_empty(), &[K::CheckFailed])?;
        only(
            "check-kinds",
            !self.check_kinds.is_empty(),
            &[K::CheckFailed],
        )?;
        only("flags", !self.flags.is_empty(), &[K::PiPower])?;
        only(
            "devices",
            !self.devices.is_empty(),
            &[K::LanDeviceNew, K::LanDeviceGone],
        )?;
        only("nodes", !self.nodes.is_empty() && kind.is_site_wide(), &[])?;
        only("for", self.for_.is_some() && kind.is_event(), &[])?;
        let op = self.op.unwrap_or(Op::Gt);
        let (series, threshold, clear) = if kind == K::Metric {
            let text = self.series.as_deref().ok_or_else(|| {
                err("`series` is required for kind = \"metric\" (e.g. \"temp_c\")".into())
            })?;
            let sel = SeriesSelector::parse(text).map_err(|m| err(format!("`series`: {m}")))?;
            let threshold = self.threshold.filter(|t| t.is_finite()).ok_or_else(|| {
                err("`threshold` is required for kind = \"metric\" and must be a number".into())
            })?;
            let clear = self.clear.unwrap_or(threshold);
            if !clear.is_finite() {
                return Err(err("`clear` must be a finite number".into()));
            }
            let wrong_side = if op.is_upper() {
                clear > threshold
            } else {
                clear < threshold
            };
            if wrong_side {
                return Err(err(format!(
                    "`clear` ({clear}) must be on the healthy side of `threshold` ({threshold}) \
                     for op = \"{}\": {} it",
                    op.as_str(),
                    if op.is_upper() {
                        "at or below"
                    } else {
                        "at or above"
                    }
                )));
            }
            (Some(sel), threshold, clear)
        } else {
            (None, 0.0, 0.0)
        };
        let repeat = self.repeat_interval.unwrap_or(default_repeat);
        if repeat.as_ms() < 60_000 {
            return Err(err("`repeat-interval` must be at least 1 minute".into()));
        }
        let flags = if kind == K::PiPower && self.flags.is_empty() {
            vec![PiFlag::UnderVoltage, PiFlag::Throttled]
        } else {
            self.flags.clone()
        };
        Ok(Rule {
            name: self.name.clone(),
            kind,
            severity: self.severity.unwrap_or_else(|| kind.default_severity()),
            series,
            series_text: self.series.clone(),
            op,
            threshold,
            clear,
            for_ms: self.for_.unwrap_or_default().as_ms(),
            repeat_ms: repeat.as_ms(),
            sites: self.sites.clone(),
            nodes: self.nodes.clone(),
            checks: self.checks.clone(),
            check_kinds: self.check_kinds.clone(),
            flags,
            devices: self.devices.clone(),
            summary: self.summary.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Vec<Rule>, String> {
        let cfg: AlertsConfig = toml::from_str(s).map_err(|e| e.to_string())?;
        cfg.compile().map_err(|e| e.to_string())
    }

    #[test]
    fn empty_config_gives_the_builtin_rules() {
        let rules = parse("").unwrap();
        let t = rules.iter().find(|r| r.name == "temperature").unwrap();
        assert_eq!((t.threshold, t.severity), (75.0, Severity::Critical));
        let d = rules.iter().find(|r| r.name == "disk-full").unwrap();
        assert_eq!((d.threshold, d.severity), (90.0, Severity::Warning));
        assert!(
            rules
                .iter()
                .any(|r| r.kind == RuleKind::NodeOffline && r.severity == Severity::Critical)
        );
        assert!(rules.iter().all(|r| r.repeat_ms == 3_600_000));
        assert!(parse("default-rules = false").unwrap().is_empty());
    }

    #[test]
    fn a_user_rule_replaces_the_builtin_of_the_same_name() {
        let rules = parse(
            r#"
            [[rules]]
            name = "temperature"
            kind = "metric"
            series = "temp_c{sensor=cpu*}"
            threshold = 80
            clear = 72
            for = "2m"
            repeat-interval = "30m"
            "#,
        )
        .unwrap();
        let t: Vec<_> = rules.iter().filter(|r| r.name == "temperature").collect();
        assert_eq!(t.len(), 1);
        assert_eq!(
            (t[0].threshold, t[0].for_ms, t[0].repeat_ms),
            (80.0, 120_000, 1_800_000)
        );
        assert_eq!(t[0].severity, Severity::Warning);
    }

    #[test]
    fn errors_name_the_rule_and_the_key() {
        let e = parse("[[rules]]\nname = \"x\"\nkind = \"metric\"\nthreshold = 1").unwrap_err();
        assert!(e.contains("rules[0]") && e.contains("`series`"), "{e}");
        let e =
            parse("[[rules]]\nname = \"x\"\nkind = \"node-offline\"\nthreshold = 1").unwrap_err();
        assert!(
            e.contains("`threshold` applies only to kind = \"metric\""),
            "{e}"
        );
        let e = parse("[[rules]]\nname = \"x\"\nkind = \"metric\"\nseries = \"temp_c\"\nthreshold = 75\nclear = 80").unwrap_err();
        assert!(e.contains("`clear` (80)"), "{e}");
        let e = parse("[[rules]]\nname = \"x\"\nkind = \"metric\"\nseries = \"temp_c\"\nthreshold = 75\nfor = \"5 minutes\"").unwrap_err();
        assert!(e.contains("invalid duration"), "{e}");
        let e =
            parse("[[rules]]\nname = \"x\"\nkind = \"node-offline\"\ntreshold = 1").unwrap_err();
        assert!(e.contains("treshold"), "{e}");
        let e = parse("[[rules]]\nname = \"x\"\nkind = \"metric\"\nseries = \"t\"\nop = \"=>\"\nthreshold = 1").unwrap_err();
        assert!(e.contains("unknown operator"), "{e}");
        let e = parse("[[rules]]\nname = \"x\"\nkind = \"node-offline\"\n[[rules]]\nname = \"x\"\nkind = \"site-offline\"").unwrap_err();
        assert!(e.contains("rules[1]") && e.contains("same name"), "{e}");
        let e = parse("[[rules]]\nname = \"Bad Name\"\nkind = \"node-offline\"").unwrap_err();
        assert!(e.contains("`name`"), "{e}");
        let e = parse("[[rules]]\nname = \"x\"").unwrap_err();
        assert!(e.contains("`kind` is missing"), "{e}");
    }

    #[test]
    fn durations() {
        assert_eq!(Dur::parse("90s"), Ok(Dur(90_000)));
        assert_eq!(Dur::parse("5m"), Ok(Dur(300_000)));
        assert_eq!(Dur::parse("1h"), Ok(Dur(3_600_000)));
        assert_eq!(Dur::parse("2d"), Ok(Dur(172_800_000)));
        assert_eq!(Dur::parse("250ms"), Ok(Dur(250)));
        assert_eq!(Dur::parse("30"), Ok(Dur(30_000)));
        assert!(Dur::parse("m").is_err());
        assert!(Dur::parse("-1s").is_err());
    }

    #[test]
    fn the_documented_example_parses() {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct File {
            alerts: AlertsConfig,
            detection: crate::state::Detection,
        }
        let text = include_str!("../../../deploy/alerts.toml");
        let file: File = toml::from_str(text).unwrap_or_else(|e| panic!("deploy/alerts.toml: {e}"));
        file.detection.validate().unwrap();
        let rules = file.alerts.compile().unwrap();
        for kind in [
            RuleKind::Metric,
            RuleKind::NodeOffline,
            RuleKind::SiteOffline,
            RuleKind::SiteDegraded,
            RuleKind::CheckFailed,
            RuleKind::PiPower,
            RuleKind::LanDeviceNew,
            RuleKind::LanDeviceGone,
            RuleKind::AgentRebooted,
            RuleKind::ClockSkew,
            RuleKind::NodeFlapping,
        ] {
            assert!(rules.iter().any(|r| r.kind == kind), "no example of {kind}");
        }
        assert_eq!(file.alerts.notifiers.len(), 4);
    }
}
