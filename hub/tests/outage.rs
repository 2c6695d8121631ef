//! Store-and-forward across an outage: the agent's connection to the hub's broker is cut
//! for more than 20 metric intervals while it keeps sampling, then restored. Every sample
//! taken — before, during and after the outage — must be stored by the hub exactly once.
//!
//! The agent (real binary, 1 s metrics, 2 s keepalive, reconnect backoff capped at 2 s)
//! reaches the hub through a TCP relay written here that can cut every relayed connection
//! and refuse new ones. The agent logs each sample it takes (`metrics sample taken seq=N`,
//! debug level); the test compares that list with the hub's SQLite file. Loopback only.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::*;

/// How long the link is down: more than 20 intervals of 1 s.
const OUTAGE: Duration = Duration::from_secs(23);

#[test]
fn every_sample_taken_during_an_outage_is_stored_exactly_once() {
    let hub = start_hub(&["--no-local-agent"]);
    let relay = Relay::start(hub.mqtt_port);
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "site = \"outage\"\nnode = \"pi\"\nbroker = \"mqtt://127.0.0.1:{}\"\n\
             heartbeat-interval-s = 1\nmetrics-interval-s = 1\nkeepalive-s = 2\n\
             reconnect-max-s = 2\n",
            relay.port
        ),
    )
    .expect("write agent config");
    let (mut agent, samples, lines) = start_logged_agent(&config);
    let db = hub.data.path().join("sitewatch.db");

    // Connected and storing.
    let taken = |until: &dyn Fn(&BTreeSet<u64>) -> bool, what: &str| {
        let mut seen = BTreeSet::new();
        wait_for(what, Duration::from_secs(30), || {
            while let Ok(seq) = samples.try_recv() {
                seen.insert(seq);
            }
            until(&seen).then(|| seen.clone())
        })
    };
    let before = taken(&|s| s.len() >= 3, "three samples before the outage");
    wait_for(
        "the first samples in the hub",
        Duration::from_secs(15),
        || (stored(&db).len() >= 2).then_some(()),
    );

    relay.cut();
    let cut_ms = now_ms();
    thread::sleep(OUTAGE);
    let restore_ms = now_ms();
    relay.restore();
    let mut all = before;
    let during = taken(&|_| true, "samples taken during the outage");
    all.extend(&during);
    let after = taken(&|s| s.len() >= 3, "three samples after the outage");
    all.extend(&after);

    // Everything taken up to now reaches the hub.
    let rows = wait_for(
        "every sample taken to be stored",
        Duration::from_secs(20),
        || {
            let rows = stored(&db);
            all.iter().all(|s| rows.contains_key(s)).then_some(rows)
        },
    );
    // The acks cover everything: at a clean stop the outbox holds at most the samples of
    // the last second or two, not the outage's.
    let stopped = Command::new("kill")
        .args(["-TERM", &agent.pid().to_string()])
        .status()
        .expect("run kill");
    assert!(stopped.success());
    let goodbye = wait_for("the agent to stop", Duration::from_secs(10), || {
        lines.try_iter().find(|l| l.contains("agent stopped"))
    });
    let pending: u64 = goodbye
        .split("pending=")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no pending count in {goodbye:?}"));
    assert!(pending <= 3, "outbox not drained by acks: {goodbye}");
    agent.kill9();

    let first = *all.first().expect("samples");
    let last = *all.last().expect("samples");
    let in_db: BTreeSet<u64> = rows.keys().copied().filter(|s| *s <= last).collect();
    assert_eq!(
        in_db, all,
        "the hub stored exactly the samples the agent took"
    );
    assert!(
        first <= 3,
        "the log has every sample from the start: {all:?}"
    );

    // The outage really covered 20+ samples, and those were stored only after it ended.
    let outage: Vec<(u64, Row)> = rows
        .iter()
        .filter(|(_, r)| r.agent_ts > cut_ms + 500 && r.agent_ts < restore_ms)
        .map(|(s, r)| (*s, *r))
        .collect();
    assert!(
        outage.len() >= 20,
        "only {} samples taken during the {OUTAGE:?} outage",
        outage.len()
    );
    for (seq, row) in &outage {
        assert!(
            row.recv >= restore_ms,
            "sample {seq} taken during the outage was received at {}, before the link came \
             back at {restore_ms}",
            row.recv
        );
    }
    // Each message's samples are stored once: one value per series per message.
    let per_message = samples_at(&hub, "memory.total_bytes");
    for (seq, row) in &rows {
        assert_eq!(
            per_message.get(&row.agent_ts),
            Some(&1),
            "sample {seq} (ts {}) has no or several memory.total_bytes values",
            row.agent_ts
        );
    }
}

/// One stored metrics message.
#[derive(Debug, Clone, Copy)]
struct Row {
    agent_ts: u64,
    recv: u64,
}

/// Metrics messages stored for outage/pi, by seq (one session: the agent is not restarted).
fn stored(db: &std::path::Path) -> BTreeMap<u64, Row> {
    let mut out = BTreeMap::new();
    let mut sessions = BTreeSet::new();
    for r in metric_rows(db, "outage", "pi") {
        let row = Row {
            agent_ts: r.agent_ts,
            recv: r.recv,
        };
        assert!(
            out.insert(r.seq, row).is_none(),
            "seq {} stored twice",
            r.seq
        );
        sessions.insert(r.session);
    }
    assert!(
        sessions.len() <= 1,
        "one agent run, one session: {sessions:?}"
    );
    out
}

/// How many values of `metric` the node has at each timestamp, as the export API gives
/// every raw sample.
fn samples_at(hub: &Hub, metric: &str) -> BTreeMap<u64, u64> {
    let rows = get_json(&hub.url(&format!(
        "/api/v1/nodes/outage/pi/export?format=json&tier=raw&from=0&metric={metric}"
    )))
    .expect("export answers");
    let mut out = BTreeMap::new();
    for r in rows.as_array().expect("an array of rows") {
        let ts = r["ts_ms"].as_u64().expect("ts_ms");
        *out.entry(ts).or_insert(0) += 1;
    }
    out
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A loopback TCP relay to `127.0.0.1:upstream` that can cut every connection it relays
/// and refuse new ones until restored. Its threads stop when it is dropped.
struct Relay {
    port: u16,
    cut: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<TcpStream>>>,
}

impl Relay {
    fn start(upstream: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind relay");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("relay addr").port();
        let relay = Relay {
            port,
            cut: Arc::default(),
            stop: Arc::default(),
            open: Arc::default(),
        };
        let (cut, stop, open) = (relay.cut.clone(), relay.stop.clone(), relay.open.clone());
        thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                let Ok((client, _)) = listener.accept() else {
                    thread::sleep(Duration::from_millis(20));
                    continue;
                };
                if cut.load(Ordering::SeqCst) {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                let _ = client.set_nonblocking(false);
                let streams = [&client, &server].map(|s| s.try_clone().expect("clone stream"));
                open.lock().expect("relay lock").extend(streams);
                pipe(&client, &server);
                pipe(&server, &client);
            }
        });
        relay
    }

    /// Closes every relayed connection; new ones are closed at once until [`restore`].
    fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        for s in self.open.lock().expect("relay lock").drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }

    fn restore(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.cut();
    }
}

/// Copies `from` to `to` on a thread until either side closes.
fn pipe(from: &TcpStream, to: &TcpStream) {
    let (Ok(mut from), Ok(mut to)) = (from.try_clone(), to.try_clone()) else {
        return;
    };
    thread::spawn(move || {
        let _ = std::io::copy(&mut from, &mut to);
        let _ = to.shutdown(Shutdown::Both);
        let _ = from.shutdown(Shutdown::Both);
    });
}
