//! What a configuration reload (SIGHUP) changes: a pure comparison of the running config
//! with the new one, so the publisher knows whether to reconnect, re-time or just go on.

use crate::config::AgentConfig;

/// How to apply a new configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReloadPlan {
    /// Keys whose value changed, as written in the config file.
    pub changed: Vec<&'static str>,
    /// Broker, credentials, TLS, keepalive or identity changed: a new connection is needed.
    pub reconnect: bool,
    /// Site, node or topic prefix changed: the node is now published under other topics.
    pub identity_changed: bool,
    /// Heartbeat or metrics interval changed: the timers restart with the new periods.
    pub intervals_changed: bool,
    /// The spill file moved; only a restart opens the new one.
    pub needs_restart: Vec<&'static str>,
}

impl ReloadPlan {
    pub fn is_noop(&self) -> bool {
        self.changed.is_empty()
    }
}

/// Compares the running configuration with a newly loaded one.
pub fn plan(old: &AgentConfig, new: &AgentConfig) -> ReloadPlan {
    let mut p = ReloadPlan::default();
    let mut note = |key, changed: bool| {
        if changed {
            p.changed.push(key);
        }
        changed
    };
    let identity = [
        note("site", old.site != new.site),
        note("node", old.node_id() != new.node_id()),
        note("topic-prefix", old.topic_prefix != new.topic_prefix),
    ]
    .contains(&true);
    let link = [
        note("broker", old.broker != new.broker),
        note("username", old.username != new.username),
        note("password", old.password != new.password),
        note("signing-key", old.signing_key != new.signing_key),
        // Sent in `info`, which goes out at every connect.
        note("home-assistant", old.home_assistant != new.home_assistant),
        note("tls", old.tls != new.tls),
        note("keepalive-s", old.keepalive_s != new.keepalive_s),
        note(
            "reconnect-max-s",
            old.reconnect_max_s != new.reconnect_max_s,
        ),
    ]
    .contains(&true);
    let intervals = [
        note(
            "heartbeat-interval-s",
            old.heartbeat_interval_s != new.heartbeat_interval_s,
        ),
        note(
            "metrics-interval-s",
            old.metrics_interval_s != new.metrics_interval_s,
        ),
    ]
    .contains(&true);
    note("filesystems", old.filesystems != new.filesystems);
    note("checks", old.checks != new.checks);
    note("outbox", old.outbox != new.outbox);
    note("scan", old.scan != new.scan);
    note("probes", old.probes != new.probes);
    p.identity_changed = identity;
    p.reconnect = identity || link;
    p.intervals_changed = intervals;
    if old.outbox.spill_file != new.outbox.spill_file {
        p.needs_restart.push("outbox.spill-file");
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> AgentConfig {
        AgentConfig::from_toml_str("site = \"club-1\"\nnode = \"pi\"\n").unwrap()
    }

    #[test]
    fn same_config_changes_nothing() {
        assert!(plan(&base(), &base()).is_noop());
    }

    #[test]
    fn intervals_apply_without_reconnecting() {
        let mut new = base();
        new.metrics_interval_s = 5;
        let p = plan(&base(), &new);
        assert_eq!(p.changed, ["metrics-interval-s"]);
        assert!(p.intervals_changed && !p.reconnect && !p.identity_changed);
    }

    #[test]
    fn link_settings_reconnect_and_identity_is_flagged() {
        let mut new = base();
        new.password = Some("new".into());
        let p = plan(&base(), &new);
        assert!(p.reconnect && !p.identity_changed, "{p:?}");
        assert_eq!(p.changed, ["password"]);

        let mut new = base();
        new.node = Some("pi-2".parse().unwrap());
        let p = plan(&base(), &new);
        assert!(p.reconnect && p.identity_changed, "{p:?}");

        let mut new = base();
        new.tls.ca_file = Some("/etc/ca.pem".into());
        assert!(plan(&base(), &new).reconnect);
    }

    #[test]
    fn scan_and_probes_apply_without_reconnecting() {
        let mut new = base();
        new.scan.networks = vec!["192.168.1.0/24".parse().unwrap()];
        new.probes = Some(Default::default());
        let p = plan(&base(), &new);
        assert_eq!(p.changed, ["scan", "probes"]);
        assert!(!p.reconnect && !p.intervals_changed);
    }

    #[test]
    fn a_moved_spill_file_needs_a_restart() {
        let mut new = base();
        new.outbox.spill_file = Some("/var/lib/sitewatch/outbox".into());
        new.outbox.max_messages = 10;
        let p = plan(&base(), &new);
        assert_eq!(p.changed, ["outbox"]);
        assert_eq!(p.needs_restart, ["outbox.spill-file"]);
        assert!(!p.reconnect);
    }
}
