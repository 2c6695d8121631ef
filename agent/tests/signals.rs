//! Operating the agent binary against a real broker (Mosquitto on loopback): SIGTERM
//! publishes `offline` and exits 0, SIGHUP applies a valid config without going offline
//! and ignores an invalid one, and the outbox spill file carries unacknowledged messages
//! across a restart.

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use common::*;

const WAIT: Duration = Duration::from_secs(15);

fn write_config(path: &Path, node: &str, broker: &str, metrics_s: i64, extra: &str) {
    std::fs::write(
        path,
        format!(
            "site = \"sig\"\nnode = \"{node}\"\nbroker = \"{broker}\"\n\
             heartbeat-interval-s = 1\nmetrics-interval-s = {metrics_s}\nkeepalive-s = 2\n\
             reconnect-max-s = 1\n{extra}"
        ),
    )
    .expect("write agent config");
}

#[test]
fn sigterm_publishes_offline_and_exits_0() {
    let dir = tempfile::tempdir().expect("temp dir");
    let broker = Mosquitto::start(dir.path(), "");
    let config = dir.path().join("agent.toml");
    write_config(&config, "term", &broker.url(), 1, "");
    let mut agent = Guard::spawn(&mut agent(&["--config", path_str(&config)]));
    broker.wait("sig/term/status online", WAIT);
    broker.wait("sig/term/heartbeat {", WAIT);
    agent.signal("TERM");
    broker.wait("sig/term/status offline", WAIT);
    let status = agent.wait_exit(Duration::from_secs(5));
    assert_eq!(status.code(), Some(0), "{status:?}");
}

#[test]
fn sighup_applies_valid_configs_without_going_offline_and_ignores_invalid_ones() {
    let dir = tempfile::tempdir().expect("temp dir");
    let broker = Mosquitto::start(dir.path(), "");
    let config = dir.path().join("agent.toml");
    // One sample a minute: the first comes after a second, the next not within this test.
    write_config(&config, "hup", &broker.url(), 60, "");
    let mut agent = Guard::spawn(agent(&["--config", path_str(&config)]).stderr(Stdio::piped()));
    let log = agent.stderr_lines();
    broker.wait("sig/hup/status online", WAIT);
    broker.wait("sig/hup/metrics {", WAIT);

    // A shorter interval applies at once, on the same connection.
    write_config(&config, "hup", &broker.url(), 1, "");
    agent.signal("HUP");
    let line = wait_line(&log, "configuration reloaded", WAIT);
    assert!(
        line.contains("metrics-interval-s") && line.contains("reconnect=false"),
        "{line}"
    );
    for _ in 0..2 {
        broker.wait("sig/hup/metrics {", Duration::from_secs(5));
    }

    // An invalid file is rejected, naming the key; the agent keeps publishing.
    write_config(&config, "hup", &broker.url(), -5, "");
    agent.signal("HUP");
    let line = wait_line(&log, "configuration is invalid", WAIT);
    assert!(
        line.contains("metrics-interval-s") && line.contains("previous one"),
        "{line}"
    );
    broker.wait("sig/hup/metrics {", Duration::from_secs(5));

    // A new node id reconnects under the new name; the old name is marked offline.
    write_config(&config, "hup-2", &broker.url(), 1, "");
    agent.signal("HUP");
    broker.wait("sig/hup-2/status online", WAIT);
    broker.wait("sig/hup-2/metrics {", WAIT);
    let seen = broker.all_seen();
    assert!(
        seen.iter()
            .any(|l| l == "sitewatch/v1/sig/hup/status offline"),
        "old identity not marked offline: {seen:?}"
    );
    agent.signal("TERM");
    assert_eq!(agent.wait_exit(Duration::from_secs(5)).code(), Some(0));
}

#[test]
fn reloading_the_same_identity_never_publishes_offline() {
    let dir = tempfile::tempdir().expect("temp dir");
    let broker = Mosquitto::start(dir.path(), "");
    let config = dir.path().join("agent.toml");
    write_config(&config, "same", &broker.url(), 1, "");
    let mut agent = Guard::spawn(agent(&["--config", path_str(&config)]).stderr(Stdio::piped()));
    let log = agent.stderr_lines();
    broker.wait("sig/same/status online", WAIT);
    // Credentials change: a reconnect, but the node stays the same.
    write_config(&config, "same", &broker.url(), 1, "username = \"agent\"\n");
    agent.signal("HUP");
    let line = wait_line(&log, "configuration reloaded", WAIT);
    assert!(line.contains("reconnect=true"), "{line}");
    broker.wait("sig/same/status online", WAIT);
    broker.wait("sig/same/metrics {", WAIT);
    let seen = broker.all_seen();
    assert!(
        !seen.iter().any(|l| l.contains("sig/same/status offline")),
        "offline published on reload: {seen:?}"
    );
}

#[test]
fn the_spill_file_carries_unacknowledged_messages_across_a_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("agent.toml");
    let spill = dir.path().join("outbox.spill");
    let outbox = format!(
        "[outbox]\nmax-messages = 2\nspill-file = {:?}\n",
        path_str(&spill)
    );
    // First run: no broker at all; samples pile up, the oldest in the spill file.
    let nobody = format!("mqtt://127.0.0.1:{}", free_port());
    write_config(&config, "spill", &nobody, 1, &outbox);
    let mut first = Guard::spawn(agent(&["--config", path_str(&config)]).stderr(Stdio::piped()));
    let log = first.stderr_lines();
    let start = wait_line(&log, "agent starting", WAIT);
    let session = start
        .split("session=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("session in the start log")
        .to_owned();
    std::thread::sleep(Duration::from_secs(4));
    first.signal("TERM");
    let line = wait_line(&log, "agent stopped", WAIT);
    assert!(!line.contains("kept_in_spill_file=0"), "{line}");
    assert_eq!(first.wait_exit(Duration::from_secs(5)).code(), Some(0));

    // Second run, broker up: the first run's samples are sent under their own session.
    let broker = Mosquitto::start(dir.path(), "");
    write_config(&config, "spill", &broker.url(), 1, &outbox);
    let _second = Guard::spawn(&mut agent(&["--config", path_str(&config)]));
    let old = broker.wait(&format!("\"session\":\"{session}\""), WAIT);
    assert!(old.starts_with("sitewatch/v1/sig/spill/metrics {"), "{old}");
    assert!(old.contains("\"seq_floor\":"), "{old}");
}
