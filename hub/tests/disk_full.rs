//! The disk under the data directory fills up (a small tmpfs filled by the test): the hub
//! keeps running and serving, reports `disk_full` on the API and on `_hub/storage`, and once
//! space returns it resumes by itself and every sample the agent took is stored once.
//!
//! Needs root (to mount the tmpfs), as CI runs; elsewhere it says so and fails.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::process::Command;
use std::time::Duration;

use common::*;

/// Unmounts the tmpfs when the test ends, however it ends.
struct Mount(std::path::PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Fills the filesystem holding `dir` until the kernel says it is full.
fn fill(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).expect("create filler");
    let block = vec![0u8; 64 * 1024];
    loop {
        match f.write(&block) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(libc_enospc()) => break,
            Err(e) => panic!("filling the tmpfs: {e}"),
        }
    }
    // Smaller writes take the last bytes.
    let small = [0u8; 512];
    while f.write(&small).is_ok_and(|n| n > 0) {}
    path
}

fn libc_enospc() -> i32 {
    28
}

/// The retained `_hub/storage` message, read with Mosquitto's own client.
fn storage_topic(hub: &Hub) -> serde_json::Value {
    let sub = require_program("mosquitto_sub", "mosquitto-clients");
    let out = Command::new(sub)
        .args(["-h", "127.0.0.1", "-p", &hub.mqtt_port.to_string()])
        .args(["-t", "sitewatch/v1/_hub/storage", "-C", "1", "-W", "5"])
        .output()
        .expect("run mosquitto_sub");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "no storage health on _hub/storage ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

#[test]
fn a_full_disk_is_reported_and_survived_without_losing_samples() {
    assert!(
        Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout.starts_with(b"0")),
        "this test mounts a tmpfs and must run as root (CI does)"
    );
    let data = tempfile::tempdir().expect("temp dir");
    let status = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=6m", "sitewatch-test"])
        .arg(data.path())
        .status()
        .expect("run mount");
    assert!(status.success(), "mount -t tmpfs failed");
    let _mount = Mount(data.path().to_owned());
    let data_path = data.path().to_owned();

    let hub = start_hub_in(data, &["--no-local-agent"]);
    let conf_dir = tempfile::tempdir().expect("temp dir");
    let config = conf_dir.path().join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "site = \"full\"\nnode = \"pi\"\nbroker = \"{}\"\n\
             heartbeat-interval-s = 1\nmetrics-interval-s = 1\nkeepalive-s = 2\n\
             [outbox]\nresend-after-s = 3\n",
            hub.broker_url()
        ),
    )
    .expect("write agent config");
    let (_agent, samples, _lines) = start_logged_agent(&config);
    let mut taken = BTreeSet::new();
    let collect = |taken: &mut BTreeSet<u64>| {
        while let Ok(seq) = samples.try_recv() {
            taken.insert(seq);
        }
    };
    wait_for("the node online", Duration::from_secs(20), || {
        hub.node("full", "pi").filter(|n| n["status"] == "online")
    });
    assert_eq!(storage_topic(&hub)["state"], "ok");

    let filler = fill(&data_path);
    let health = wait_for(
        "disk_full on /api/v1/storage",
        Duration::from_secs(90),
        || {
            hub.get("/api/v1/storage")
                .filter(|s| s["health"]["state"] == "disk_full")
        },
    );
    assert!(
        health["health"]["detail"]
            .as_str()
            .is_some_and(|d| d.contains("free space")),
        "{health}"
    );
    wait_for("disk_full on _hub/storage", Duration::from_secs(10), || {
        (storage_topic(&hub)["state"] == "disk_full").then_some(())
    });
    let h = hub.get("/healthz").expect("healthz answers");
    assert_eq!(h["storage"], "disk_full", "{h}");
    // Still serving, still tracking the node live.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        hub.node("full", "pi").expect("node listed")["status"],
        "online"
    );
    collect(&mut taken);

    std::fs::remove_file(&filler).expect("free the space");
    wait_for("storage ok again", Duration::from_secs(30), || {
        hub.get("/healthz").filter(|h| h["storage"] == "ok")
    });
    wait_for("ok on _hub/storage", Duration::from_secs(10), || {
        (storage_topic(&hub)["state"] == "ok").then_some(())
    });
    std::thread::sleep(Duration::from_secs(2));
    collect(&mut taken);
    let last = *taken.last().expect("samples were taken");

    // Every sample taken, including those during the full disk, ends up stored once.
    let db = data_path.join("sitewatch.db");
    let wanted: BTreeSet<u64> = taken.iter().copied().filter(|s| *s <= last).collect();
    wait_for("every sample taken stored", Duration::from_secs(60), || {
        let have = stored_seqs(&db);
        wanted.is_subset(&have).then_some(())
    });
    let rows =
        get_json(&hub.url(
            "/api/v1/nodes/full/pi/export?format=json&tier=raw&from=0&metric=memory.total_bytes",
        ))
        .expect("export");
    let mut per_ts: BTreeMap<u64, u64> = BTreeMap::new();
    for r in rows.as_array().expect("rows") {
        *per_ts.entry(r["ts_ms"].as_u64().expect("ts")).or_insert(0) += 1;
    }
    assert!(
        per_ts.len() >= wanted.len(),
        "{} < {}",
        per_ts.len(),
        wanted.len()
    );
    assert!(
        per_ts.values().all(|n| *n == 1),
        "a sample stored twice: {per_ts:?}"
    );
    let s = hub.get("/api/v1/storage").expect("storage");
    assert!(
        s["health"]["failed_batches"]
            .as_u64()
            .is_some_and(|n| n > 0),
        "{s}"
    );
}

/// Seqs of the metrics messages stored for full/pi.
fn stored_seqs(db: &std::path::Path) -> BTreeSet<u64> {
    use rusqlite::{Connection, OpenFlags};
    let Ok(conn) = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY) else {
        return BTreeSet::new();
    };
    let Ok(mut stmt) = conn.prepare(
        "SELECT m.seq FROM metric_messages m JOIN nodes n ON n.id = m.node_id
         WHERE n.site = 'full' AND n.node = 'pi'",
    ) else {
        return BTreeSet::new();
    };
    stmt.query_map([], |r| r.get::<_, i64>(0))
        .map(|rows| rows.flatten().map(|v| v as u64).collect())
        .unwrap_or_default()
}

/// Another process (a backup script, an `sqlite3` shell) holds the write lock for longer
/// than the hub waits: `locked` is reported, and everything is stored once it lets go.
#[test]
fn a_database_locked_by_another_process_is_reported_and_survived() {
    let hub = start_hub(&["--no-local-agent"]);
    let conf_dir = tempfile::tempdir().expect("temp dir");
    let config = conf_dir.path().join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "site = \"full\"\nnode = \"pi\"\nbroker = \"{}\"\n\
             heartbeat-interval-s = 1\nmetrics-interval-s = 1\nkeepalive-s = 2\n\
             [outbox]\nresend-after-s = 3\n",
            hub.broker_url()
        ),
    )
    .expect("write agent config");
    let (_agent, samples, _lines) = start_logged_agent(&config);
    wait_for("the node online", Duration::from_secs(20), || {
        hub.node("full", "pi").filter(|n| n["status"] == "online")
    });
    let db = hub.data.path().join("sitewatch.db");
    let locker = rusqlite::Connection::open(&db).expect("open db");
    locker
        .execute_batch("BEGIN EXCLUSIVE")
        .expect("take the write lock");
    wait_for("locked on /api/v1/storage", Duration::from_secs(30), || {
        hub.get("/api/v1/storage")
            .filter(|s| s["health"]["state"] == "locked")
    });
    assert_eq!(
        hub.node("full", "pi").expect("node listed")["status"],
        "online",
        "live status goes on while the database is locked"
    );
    locker.execute_batch("ROLLBACK").expect("release the lock");
    drop(locker);
    wait_for("storage ok again", Duration::from_secs(30), || {
        hub.get("/healthz").filter(|h| h["storage"] == "ok")
    });
    std::thread::sleep(Duration::from_secs(2));
    let taken: BTreeSet<u64> = samples.try_iter().collect();
    let last = *taken.last().expect("samples were taken");
    wait_for("every sample taken stored", Duration::from_secs(60), || {
        let have = stored_seqs(&db);
        taken
            .iter()
            .filter(|s| **s <= last)
            .all(|s| have.contains(s))
            .then_some(())
    });
}
