//! `kind = "systemd"`: is a unit `active`?
//!
//! Asks `systemctl show --property=LoadState --property=ActiveState -- UNIT` (no D-Bus
//! client in the agent: it must stay tiny). `ActiveState` is the result's state (`active`,
//! `failed`, `inactive`, `activating`, …); `LoadState` tells a stopped unit from one that
//! does not exist, which systemd also reports as `inactive`.

use std::io;
use std::process::Stdio;

use tokio::process::Command;

use super::Outcome;

/// What `systemctl show` said about a unit.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct UnitState {
    /// `loaded`, `not-found`, `masked`, `bad-setting`, … (absent if not printed).
    pub load_state: Option<String>,
    /// `active`, `failed`, `inactive`, `activating`, `deactivating`, `reloading`, ….
    pub active_state: Option<String>,
}

/// Parses `KEY=value` lines of `systemctl show`; unknown keys and stray lines are ignored.
pub(crate) fn parse_show(stdout: &str) -> UnitState {
    let mut state = UnitState::default();
    for line in stdout.lines() {
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let value = value.trim();
        if value.is_empty() {
            continue;
        }
        match key.trim() {
            "LoadState" => state.load_state = Some(value.to_owned()),
            "ActiveState" => state.active_state = Some(value.to_owned()),
            _ => {}
        }
    }
    state
}

/// Turns a parsed unit state into the check's outcome: ok iff `active`.
pub(crate) fn judge(unit: &str, state: &UnitState) -> Outcome {
    if state.load_state.as_deref() == Some("not-found") {
        return Outcome::fail(
            "not-found",
            format!("unit {unit} not found: is the service installed (systemctl list-unit-files)?"),
        );
    }
    match state.active_state.as_deref() {
        Some("active") => Outcome::pass("active"),
        Some(other) => Outcome::fail(
            other,
            format!(
                "unit {unit} is {other}; see `systemctl status {unit}` and `journalctl -u {unit}`"
            ),
        ),
        None => Outcome::fail(
            "unknown",
            format!("systemctl printed no ActiveState for {unit}"),
        ),
    }
}

/// Runs the check (the caller applies the timeout; dropping this kills `systemctl`).
pub(crate) async fn check(unit: &str) -> Outcome {
    let output = Command::new("systemctl")
        .args([
            "show",
            "--property=LoadState",
            "--property=ActiveState",
            "--",
        ])
        .arg(unit)
        .env("SYSTEMD_PAGER", "")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await;
    let output = match output {
        Ok(output) => output,
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            return Outcome::fail("unknown", "systemctl not found: this check needs systemd");
        }
        Err(err) => {
            return Outcome::fail("unknown", format!("cannot run systemctl: {err}"));
        }
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    let state = parse_show(&stdout);
    if !output.status.success() && state.active_state.is_none() {
        return Outcome::fail(
            "unknown",
            format!(
                "`systemctl show {unit}` failed ({}): is systemd running on this machine?",
                output.status
            ),
        );
    }
    judge(unit, &state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_two_properties_in_any_order() {
        let s = parse_show("ActiveState=failed\nLoadState=loaded\n");
        assert_eq!(s.load_state.as_deref(), Some("loaded"));
        assert_eq!(s.active_state.as_deref(), Some("failed"));
        let s = parse_show("LoadState=loaded\r\nActiveState=active\r\nSubState=running\n");
        assert_eq!(s.active_state.as_deref(), Some("active"));
    }

    #[test]
    fn ignores_garbage_and_empty_values() {
        assert_eq!(parse_show(""), UnitState::default());
        assert_eq!(
            parse_show("no equals sign\nActiveState=\n"),
            UnitState::default()
        );
    }

    #[test]
    fn only_active_is_ok() {
        let unit = |load: &str, active: &str| UnitState {
            load_state: Some(load.into()),
            active_state: Some(active.into()),
        };
        let ok = judge("nginx.service", &unit("loaded", "active"));
        assert!(ok.ok);
        assert_eq!(ok.state, "active");
        assert_eq!(ok.detail, None);

        for state in ["failed", "inactive", "activating", "deactivating"] {
            let o = judge("nginx.service", &unit("loaded", state));
            assert!(!o.ok, "{state}");
            assert_eq!(o.state, state);
            let detail = o.detail.unwrap_or_default();
            assert!(
                detail.contains("systemctl status nginx.service"),
                "{detail}"
            );
        }
    }

    #[test]
    fn a_missing_unit_is_not_found_rather_than_inactive() {
        let o = judge(
            "nope.service",
            &UnitState {
                load_state: Some("not-found".into()),
                active_state: Some("inactive".into()),
            },
        );
        assert!(!o.ok);
        assert_eq!(o.state, "not-found");
    }

    #[test]
    fn no_active_state_is_unknown() {
        let o = judge("x.service", &UnitState::default());
        assert!(!o.ok);
        assert_eq!(o.state, "unknown");
    }
}
