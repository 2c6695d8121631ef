//! Durability under crashes: while 50 simulated agents publish metrics every 0.5 s, the hub
//! is killed with SIGKILL three times and restarted on the same ports and data directory;
//! the agents reconnect by themselves and resend what was not acknowledged. Afterwards the
//! database passes `PRAGMA integrity_check`, and every metrics message the hub acknowledged
//! is stored exactly once.
//!
//! The real binaries run on free loopback ports: `sitewatch-hub` (built next to the load
//! generator by `cargo build --workspace --bins`, as scripts/test.sh does) and
//! `sitewatch-loadgen run --acked-out`, whose file says, per agent session, the highest ack
//! watermark received and which seqs were metrics messages. Every process started here is
//! stopped by its own PID.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags, params};
use sitewatch_loadgen::record::{self, SessionRecord};

const AGENTS: usize = 50;
/// Seconds after the load generator starts at which the hub is killed.
const KILLS_AT_S: [u64; 3] = [5, 11, 17];

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free loopback port")
}

/// The hub binary, built by cargo next to the load generator's.
fn hub_bin() -> PathBuf {
    let loadgen = PathBuf::from(env!("CARGO_BIN_EXE_sitewatch-loadgen"));
    let hub = loadgen
        .parent()
        .expect("binary directory")
        .join("sitewatch-hub");
    assert!(
        hub.is_file(),
        "{} is missing; build the workspace first (cargo build --workspace --bins, done by \
         scripts/test.sh)",
        hub.display()
    );
    hub
}

/// A child process killed (by its PID, through `Child`) when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct Hub {
    mqtt_port: u16,
    http_port: u16,
    data: PathBuf,
    proc: Option<Proc>,
}

impl Hub {
    fn start(&mut self) {
        let mqtt = format!("127.0.0.1:{}", self.mqtt_port);
        let http = format!("127.0.0.1:{}", self.http_port);
        let child = Command::new(hub_bin())
            .args(["--mqtt-listen", &mqtt, "--http-listen", &http, "--data-dir"])
            .arg(&self.data)
            .arg("--no-local-agent")
            // The load generator's agents do not sign their messages.
            .arg("--allow-unsigned")
            // rumqttd logs every connection it drops at shutdown as an error.
            .env("RUST_LOG", "warn,rumqttd=off")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start sitewatch-hub");
        self.proc = Some(Proc(child));
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.healthy() {
            assert!(Instant::now() < deadline, "hub not healthy within 30 s");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `GET /healthz` reports the hub's MQTT client connected.
    fn healthy(&self) -> bool {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.http_port)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
        let req = "GET /healthz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
        let mut body = String::new();
        s.write_all(req.as_bytes()).is_ok()
            && s.read_to_string(&mut body).is_ok()
            && body.contains("\"mqtt_connected\":true")
    }

    fn kill9(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.0.kill().expect("SIGKILL the hub");
            p.0.wait().expect("reap the hub");
        }
    }

    /// SIGTERM and wait: the hub drains its writer before exiting.
    fn stop(&mut self) {
        let Some(mut p) = self.proc.take() else {
            return;
        };
        let pid = libc::pid_t::try_from(p.0.id()).expect("pid fits pid_t");
        // SAFETY: kill(2) on the PID of a child we spawned and have not reaped.
        assert_eq!(
            unsafe { libc::kill(pid, libc::SIGTERM) },
            0,
            "SIGTERM the hub"
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = p.0.try_wait().expect("wait for the hub") {
                assert!(status.success(), "hub exited with {status} after SIGTERM");
                return;
            }
            assert!(
                Instant::now() < deadline,
                "hub still running 20 s after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// What the database holds against what the hub acknowledged.
#[derive(Debug, Default)]
struct Verdict {
    /// Acked metrics messages checked (all present once when the verdict is Ok).
    acked_metrics: u64,
    /// Agents with at least one acked metrics message.
    agents_with_acks: usize,
}

/// Checks `db` against the `--acked-out` records: integrity, then every metrics seq at or
/// below a session's ack watermark stored exactly once, no stored metrics seq that was a
/// heartbeat, no heartbeat stored twice. Returns every violation found.
fn verify(db: &Path, records: &[SessionRecord]) -> Result<Verdict, Vec<String>> {
    let conn = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .expect("open the hub's database");
    let integrity: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("integrity_check");
    let mut errors = Vec::new();
    if integrity != "ok" {
        errors.push(format!("integrity_check: {integrity}"));
    }
    let counts = |table: &str, r: &SessionRecord| -> BTreeMap<u64, u64> {
        let sql = format!(
            "SELECT t.seq, count(*) FROM {table} t JOIN nodes n ON n.id = t.node_id
             WHERE n.site = ?1 AND n.node = ?2 AND t.session = ?3 GROUP BY t.seq"
        );
        let mut stmt = conn.prepare(&sql).expect("prepare");
        stmt.query_map(params![r.site, r.node, r.session], |row| {
            Ok((row.get::<_, i64>(0)? as u64, row.get::<_, i64>(1)? as u64))
        })
        .expect("query")
        .map(|x| x.expect("row"))
        .collect()
    };
    let mut verdict = Verdict::default();
    for r in records {
        let who = format!("{}/{} session {}", r.site, r.node, r.session);
        let metrics = counts("metric_messages", r);
        let heartbeats = counts("heartbeats", r);
        let mut acked_here = 0;
        for seq in r.metrics_seqs.iter().take_while(|s| *s <= r.acked_seq) {
            if r.dropped_seqs.contains(seq) {
                continue;
            }
            acked_here += 1;
            match metrics.get(&seq).copied().unwrap_or(0) {
                1 => {}
                0 => errors.push(format!("{who}: acked metrics seq {seq} is missing")),
                n => errors.push(format!("{who}: metrics seq {seq} stored {n} times")),
            }
        }
        for (seq, n) in &metrics {
            if !r.metrics_seqs.contains(*seq) {
                errors.push(format!(
                    "{who}: seq {seq} stored as metrics but was not one"
                ));
            } else if *n != 1 && *seq > r.acked_seq {
                errors.push(format!("{who}: metrics seq {seq} stored {n} times"));
            }
        }
        for (seq, n) in &heartbeats {
            if r.metrics_seqs.contains(*seq) {
                errors.push(format!("{who}: metrics seq {seq} stored as a heartbeat"));
            }
            if *n != 1 {
                errors.push(format!("{who}: heartbeat seq {seq} stored {n} times"));
            }
        }
        verdict.acked_metrics += acked_here;
        if acked_here > 0 {
            verdict.agents_with_acks += 1;
        }
    }
    // Each stored message's samples are stored once: one frame per message, none twice.
    let mut stmt = conn
        .prepare(
            "SELECT n.site || '/' || n.node,
                    (SELECT count(*) FROM metric_messages m WHERE m.node_id = n.id),
                    (SELECT count(*) FROM frames f WHERE f.node_id = n.id)
             FROM nodes n",
        )
        .expect("prepare");
    let per_node = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })
        .expect("query")
        .map(|x| x.expect("row"));
    for (node, messages, frames) in per_node {
        if messages != frames {
            errors.push(format!(
                "{node}: {messages} metrics messages but {frames} sample frames"
            ));
        }
    }
    let doubled: i64 = conn
        .query_row(
            "SELECT count(*) FROM (SELECT 1 FROM frames GROUP BY node_id, ts_ms HAVING count(*) > 1)",
            [],
            |r| r.get(0),
        )
        .expect("duplicate frames");
    if doubled > 0 {
        errors.push(format!("{doubled} sample instants stored twice"));
    }
    if errors.is_empty() {
        Ok(verdict)
    } else {
        Err(errors)
    }
}

#[test]
fn hub_killed_three_times_under_load_keeps_every_acked_message_once() {
    let data = tempfile::tempdir().expect("temp dir");
    let mut hub = Hub {
        mqtt_port: free_port(),
        http_port: free_port(),
        data: data.path().join("data"),
        proc: None,
    };
    hub.start();
    let db = hub.data.join("sitewatch.db");
    let acked_file = data.path().join("acked.jsonl");
    let broker = format!("mqtt://127.0.0.1:{}", hub.mqtt_port);
    let agents = AGENTS.to_string();
    let loadgen = Command::new(env!("CARGO_BIN_EXE_sitewatch-loadgen"))
        .args([
            "run",
            "--broker",
            &broker,
            "--agents",
            &agents,
            "--sites",
            "5",
            "--interval-s",
            "0.5",
            "--heartbeat-s",
            "1",
            "--keepalive-s",
            "5",
            "--ramp-s",
            "2",
            "--warmup-s",
            "3",
            "--duration-s",
            "20",
            "--drain-s",
            "5",
            "--reconnect-max-s",
            "2",
            "--json",
            "--acked-out",
        ])
        .arg(&acked_file)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start sitewatch-loadgen");
    let mut loadgen = Proc(loadgen);
    let started = Instant::now();

    for at in KILLS_AT_S {
        let due = started + Duration::from_secs(at);
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
        hub.kill9();
        std::thread::sleep(Duration::from_millis(500));
        hub.start();
    }

    // The load generator ends by itself (warmup + window + drain + close) with the hub up.
    let deadline = started + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = loadgen.0.try_wait().expect("wait for loadgen") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "loadgen still running after 60 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut out = String::new();
    if let Some(mut stdout) = loadgen.0.stdout.take() {
        stdout
            .read_to_string(&mut out)
            .expect("read loadgen output");
    }
    assert!(status.success(), "loadgen failed ({status}):\n{out}");
    eprintln!("{out}");
    hub.stop();

    let report: serde_json::Value = out
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| panic!("no JSON report in loadgen output:\n{out}"));
    assert!(
        report["connects"].as_u64().unwrap_or(0) >= (2 * AGENTS) as u64,
        "the agents did not reconnect after the kills:\n{out}"
    );

    let records = record::read(&acked_file).expect("read the acked file");
    assert_eq!(records.len(), AGENTS, "one session per agent");
    for r in &records {
        assert!(r.dropped_seqs.is_empty(), "outbox overflowed: {r:?}");
    }
    let verdict = verify(&db, &records).unwrap_or_else(|errors| {
        panic!(
            "{} violations after kill -9 of the hub, e.g.:\n{}",
            errors.len(),
            errors[..errors.len().min(20)].join("\n")
        )
    });
    assert_eq!(
        verdict.agents_with_acks, AGENTS,
        "every agent must have acked metrics stored: {verdict:?}\n{out}"
    );
    assert!(verdict.acked_metrics >= (10 * AGENTS) as u64, "{verdict:?}");

    // The check itself catches a lost message: delete one acked metrics row.
    let victim = records
        .iter()
        .find_map(|r| {
            let seq = r.metrics_seqs.iter().find(|s| *s <= r.acked_seq)?;
            Some((r.clone(), seq))
        })
        .expect("an acked metrics message");
    let conn = Connection::open(&db).expect("open database");
    let deleted = conn
        .execute(
            "DELETE FROM metric_messages WHERE session = ?1 AND seq = ?2",
            params![victim.0.session, victim.1 as i64],
        )
        .expect("delete a row");
    assert_eq!(deleted, 1);
    drop(conn);
    let errors = verify(&db, &records).expect_err("a deleted row must be reported");
    let node = format!("{}/{}", victim.0.site, victim.0.node);
    assert_eq!(
        errors,
        [
            format!(
                "{node} session {}: acked metrics seq {} is missing",
                victim.0.session, victim.1
            ),
            format!(
                "{node}: {} metrics messages but {} sample frames",
                frames_of(&db, &node) - 1,
                frames_of(&db, &node)
            ),
        ]
    );
}

/// Sample frames stored for `site/node`.
fn frames_of(db: &Path, node: &str) -> i64 {
    let conn = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY).expect("open");
    conn.query_row(
        "SELECT count(*) FROM frames f JOIN nodes n ON n.id = f.node_id
         WHERE n.site || '/' || n.node = ?1",
        [node],
        |r| r.get(0),
    )
    .expect("count frames")
}
