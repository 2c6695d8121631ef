//! The LAN inventory end to end, in the network-namespace lab of `scripts/lab.sh`: the real
//! hub (with its embedded broker) and the real agent with a `[scan]` section both run inside
//! the lab's scanner namespace (no route out, so every address scanned is a lab host).
//! Adding a host to the lab gives exactly one new-device event; removing it gives one gone
//! event after the absence window.
//!
//! Needs root, iproute2 and python3 (scripts/install-deps.sh --test); under CI a missing
//! one is a failure, elsewhere the test says why and skips.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

fn lab_sh() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .join("scripts/lab.sh")
}

fn lab_available() -> bool {
    netns_available("the scanner lab")
}

/// The lab, torn down when dropped.
struct Lab;

impl Lab {
    fn up() -> Self {
        let out = Command::new(lab_sh())
            .args([
                "up",
                "--hosts-ping",
                "6",
                "--hosts-arp-only",
                "2",
                "--hosts-late",
                "0",
            ])
            .output()
            .expect("scripts/lab.sh up");
        assert!(
            out.status.success(),
            "lab.sh up: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Lab
    }

    fn run(&self, args: &[&str]) -> String {
        let out = Command::new(lab_sh())
            .args(args)
            .output()
            .expect("scripts/lab.sh");
        assert!(
            out.status.success(),
            "lab.sh {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn exec(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", "lab-scan"]).arg(program);
        c
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = Command::new(lab_sh()).arg("down").output();
    }
}

/// Counts device events of `kind` for `ip` in the hub's database.
fn events(db: &Path, kind: &str, ip: &str) -> i64 {
    let Ok(conn) =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
    else {
        return 0;
    };
    conn.query_row(
        "SELECT count(*) FROM device_events WHERE site = 'lab' AND kind = ?1 AND ip = ?2",
        [kind, ip],
        |r| r.get(0),
    )
    .unwrap_or(0)
}

#[test]
fn a_host_added_then_removed_gives_one_new_and_one_gone_event() {
    if !lab_available() {
        return;
    }
    let lab = Lab::up();
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let hub_conf = dir.path().join("hub.toml");
    std::fs::write(
        &hub_conf,
        format!(
            "mqtt-listen = \"127.0.0.1:1883\"\nhttp-listen = \"127.0.0.1:8080\"\n\
             data-dir = \"{}\"\n[local-agent]\nenabled = false\n[inventory]\nabsent-after-s = 12\n\
             [security]\nrequire-signed = false\nanonymous = \"everyone\"\n",
            data.display()
        ),
    )
    .expect("hub.toml");
    let _hub = Proc {
        child: lab
            .exec(hub_bin())
            .arg("--config")
            .arg(&hub_conf)
            .env("RUST_LOG", "info,rumqttd=off")
            .stdout(Stdio::null())
            .spawn()
            .expect("start the hub in lab-scan"),
        name: "sitewatch-hub (lab)".into(),
    };
    let api = |path: &str| -> Option<Value> {
        let out = lab
            .exec("curl")
            .args(["-fs", &format!("http://127.0.0.1:8080{path}")])
            .output()
            .ok()?;
        serde_json::from_slice(&out.stdout).ok()
    };
    wait_for("hub up in lab-scan", Duration::from_secs(30), || {
        api("/healthz").filter(|h| h["mqtt_connected"] == true)
    });
    let agent_conf = dir.path().join("agent.toml");
    let oui = lab_sh()
        .parent()
        .and_then(Path::parent)
        .expect("repo")
        .join("agent/data/oui.txt");
    std::fs::write(
        &agent_conf,
        format!(
            "site = \"lab\"\nnode = \"scanner\"\nbroker = \"mqtt://127.0.0.1:1883\"\n\
             heartbeat-interval-s = 2\nmetrics-interval-s = 10\n\
             [scan]\nnetworks = [\"10.231.0.0/24\"]\ninterval-s = 10\noui-file = \"{}\"\n\
             [probes]\ntargets = []\n",
            oui.display()
        ),
    )
    .expect("agent.toml");
    let _agent = Proc {
        child: lab
            .exec(agent_bin())
            .arg("--config")
            .arg(&agent_conf)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .spawn()
            .expect("start the agent in lab-scan"),
        name: "sitewatch-agent (lab)".into(),
    };
    // The first scan is the site's baseline: 9 devices (8 hosts and the scanner), no event.
    let devices = || api("/api/v1/sites/lab/devices").and_then(|d| d.as_array().cloned());
    wait_for("baseline inventory", Duration::from_secs(30), || {
        devices().filter(|d| d.len() == 9)
    });
    let db = data.join("sitewatch.db");

    let added = lab.run(&["add", "--class", "ping"]);
    let ip = added
        .split_whitespace()
        .next()
        .expect("new host address")
        .to_owned();
    wait_for("new-device event", Duration::from_secs(30), || {
        (events(&db, "new", &ip) >= 1).then_some(())
    });
    // Two more scans see it again: still exactly one event.
    let seen = Instant::now();
    std::thread::sleep(Duration::from_secs(21));
    assert_eq!(events(&db, "new", &ip), 1, "one new-device event for {ip}");
    let listed = devices().expect("devices");
    let d = listed
        .iter()
        .find(|d| d["ip"] == ip.as_str())
        .expect("the new host is listed");
    assert_eq!(d["present"], true, "{d}");
    assert!(
        d["vendor"]
            .as_str()
            .is_some_and(|v| v.contains("Raspberry")),
        "{d}"
    );

    lab.run(&["remove", &ip]);
    let removed = Instant::now();
    wait_for("gone event", Duration::from_secs(45), || {
        (events(&db, "gone", &ip) >= 1).then_some(())
    });
    assert!(
        removed.elapsed() >= Duration::from_secs(2),
        "gone before the absence window ({:?} after removal, last seen {:?} ago)",
        removed.elapsed(),
        seen.elapsed()
    );
    assert_eq!(events(&db, "gone", &ip), 1);
    assert_eq!(events(&db, "new", &ip), 1);
    let others_gone: i64 = {
        let conn =
            rusqlite::Connection::open_with_flags(&db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
                .expect("db");
        conn.query_row(
            "SELECT count(*) FROM device_events WHERE kind = 'gone' AND ip != ?1",
            [&ip],
            |r| r.get(0),
        )
        .expect("count")
    };
    assert_eq!(others_gone, 0, "hosts still in the lab were declared gone");
}
