//! Fault injection against the real binaries: each test breaks one thing while agents
//! publish, then checks what a user sees — the service is back (`/healthz`, the node list,
//! new data stored) and nothing acknowledged was lost (every metrics seq the agents saw
//! acked, or took and had time to send, is in the hub's SQLite exactly once; see
//! `common::stored_once_violations`).
//!
//! 1. `external_broker_killed_and_restarted_under_load`: the hub on a real Mosquitto, 20
//!    simulated agents (`sitewatch-loadgen`); Mosquitto is killed with SIGKILL and
//!    restarted on the same port.
//! 2. `hub_killed_while_real_agents_publish`: SIGKILL of the hub (embedded broker) while two
//!    real agents publish; restarted on the same ports and data. (The same under load, three
//!    kills and 50 simulated agents, is `bench/loadgen/tests/durability.rs`.)
//!    `hub_on_an_external_broker_restarted_gets_what_it_missed_at_once`: the same on a
//!    Mosquitto, which keeps nothing for the absent hub; the agent resends on its return.
//! 3. `agent_link_cut_in_a_namespace_then_restored`: the agent in its own network namespace,
//!    behind a veth to the hub; the link goes down until the hub says offline, then up.
//! 4. `garbage_on_the_mqtt_port_is_survived`: random bytes, truncated CONNECT, oversized
//!    PUBLISH, malformed JSON on a metrics topic, MQTT 5 CONNECT, a client id with `/`;
//!    each twice.
//! 5. `agent_wall_clock_jumps_back_and_forth`: libfaketime moves the agent's wall clock
//!    (not its monotonic clock) back and forward by hours.
//!
//! (Disk full is `disk_full.rs`; a short TCP outage through a relay is `outage.rs`.)
//! Traffic goes to loopback, or to the namespace test 3 creates (no route out). Every
//! process is killed by its own PID; every wait is bounded.

mod common;
#[allow(dead_code)]
#[path = "../../bench/loadgen/src/record.rs"]
mod record;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Shutdown, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::BytesMut;
use common::*;
use serde_json::Value;

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The seqs of the samples a logged agent took, and its other log lines
/// (`common::start_logged_agent*`).
struct Samples {
    rx: mpsc::Receiver<u64>,
    lines: mpsc::Receiver<String>,
    taken: BTreeSet<u64>,
}

impl Samples {
    /// Every sample taken so far.
    fn now(&mut self) -> BTreeSet<u64> {
        self.taken.extend(self.rx.try_iter());
        self.taken.clone()
    }

    /// Waits until at least `n` more samples than now were taken.
    fn wait_more(&mut self, n: usize, what: &str) -> BTreeSet<u64> {
        let want = self.now().len() + n;
        wait_for(what, Duration::from_secs(30), || {
            let taken = self.now();
            (taken.len() >= want).then_some(taken)
        })
    }

    /// Every sample the agent took, once its process is gone (its log pipe closed).
    fn all_after_exit(mut self) -> BTreeSet<u64> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(seq) => {
                    self.taken.insert(seq);
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => return self.taken,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    panic!("the agent's log did not end within 10 s of its exit")
                }
            }
        }
    }
}

/// A logged agent: its process, and what it logs.
fn logged(
    (proc, rx, lines): (Proc, mpsc::Receiver<u64>, mpsc::Receiver<String>),
) -> (Proc, Samples) {
    let taken = BTreeSet::new();
    (proc, Samples { rx, lines, taken })
}

/// SIGKILLs the hub; its data directory and ports, to restart it with `restart_hub_at`.
fn kill9(hub: Hub) -> (tempfile::TempDir, u16, u16) {
    let Hub {
        mut proc,
        data,
        mqtt_port,
        http_port,
    } = hub;
    proc.kill9();
    (data, mqtt_port, http_port)
}

/// Waits until every seq of `taken` is stored for `site/node`.
fn wait_stored(db: &Path, site: &str, node: &str, taken: &BTreeSet<u64>, within: Duration) {
    wait_for(
        &format!("{} samples of {site}/{node} stored", taken.len()),
        within,
        || {
            let stored: BTreeSet<u64> = metric_rows(db, site, node)
                .into_iter()
                .map(|r| r.seq)
                .collect();
            taken.is_subset(&stored).then_some(())
        },
    );
}

/// The hub's retained `ack` for `site/node` on the broker at `broker`: the seq up to which
/// it stored (or the agent gave up) `session`'s messages. Read with Mosquitto's client.
fn acked(broker: (&str, u16), site: &str, node: &str, session: &str) -> Option<u64> {
    let sub = require_program("mosquitto_sub", "mosquitto-clients");
    let out = Command::new(sub)
        .args([
            "-h",
            broker.0,
            "-p",
            &broker.1.to_string(),
            "-V",
            "mqttv311",
        ])
        .args(["-t", &format!("sitewatch/v1/{site}/{node}/ack")])
        .args(["-C", "1", "-W", "3"])
        .output()
        .ok()?;
    let ack: Value = serde_json::from_slice(&out.stdout).ok()?;
    ack["sessions"][session].as_u64()
}

/// Where a logged agent sent its data, for [`stop_and_check`].
struct Dest<'a> {
    db: &'a Path,
    /// The broker's host and port, as the agent reaches it.
    broker: (&'a str, u16),
    site: &'a str,
    node: &'a str,
}

/// Checks that a logged agent's data survived `after`: the hub's ack comes to cover every
/// sample in `must` (the agent may drop them), then the agent is stopped with SIGTERM and
/// its outbox holds only later samples (the acks reached it); every sample in `must` is stored exactly once, and
/// nothing is stored that the agent did not take.
fn stop_and_check(
    agent: &mut Proc,
    mut samples: Samples,
    to: Dest,
    must: BTreeSet<u64>,
    after: &str,
) {
    let Dest {
        db,
        broker,
        site,
        node,
    } = to;
    let sessions: BTreeSet<String> = metric_rows(db, site, node)
        .into_iter()
        .map(|r| r.session)
        .collect();
    assert_eq!(
        sessions.len(),
        1,
        "{site}/{node}: one agent run, one session"
    );
    let session = sessions.first().expect("a session");
    let top = *must.last().expect("samples to check");
    wait_for(
        &format!("the hub's ack of {site}/{node} to reach seq {top} after {after}"),
        Duration::from_secs(30),
        || (acked(broker, site, node, session)? >= top).then_some(()),
    );
    // One more sample: the agent has had a whole interval to take that ack in too.
    samples.wait_more(1, "one more sample");
    let term = Command::new("kill")
        .args(["-TERM", &agent.pid().to_string()])
        .status()
        .expect("run kill");
    assert!(term.success(), "kill -TERM {}", agent.pid());
    let goodbye = wait_for("the agent to stop", Duration::from_secs(15), || {
        samples
            .lines
            .try_iter()
            .find(|l| l.contains("agent stopped"))
    });
    let pending: usize = goodbye
        .split("pending=")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no pending count in {goodbye:?}"));
    wait_for("the agent to exit", Duration::from_secs(10), || {
        agent.child.try_wait().expect("wait for the agent")
    });
    let taken = samples.all_after_exit();
    assert!(must.is_subset(&taken));
    assert!(
        pending <= taken.len() - must.len(),
        "{site}/{node}: acked samples still in the outbox after {after}: {goodbye}"
    );
    assert_stored_once(
        db,
        &[MustBeStored {
            site: site.into(),
            node: node.into(),
            session: Some(session.clone()),
            seqs: must,
            metrics_seqs: Some(taken),
        }],
        after,
    );
}

fn status(hub: &Hub, site: &str, node: &str) -> Option<String> {
    hub.node(site, node)
        .and_then(|n| n["status"].as_str().map(str::to_owned))
}

fn wait_status(hub: &Hub, site: &str, node: &str, want: &str, within: Duration) {
    wait_for(&format!("{site}/{node} {want}"), within, || {
        (status(hub, site, node).as_deref() == Some(want)).then_some(())
    });
}

/// `/healthz` answers 200 with the hub's MQTT client connected; returns the document.
fn healthy(hub: &Hub) -> Value {
    let mut resp = ureq::get(&hub.url("/healthz"))
        .call()
        .expect("/healthz answers 200");
    let h: Value = resp.body_mut().read_json().expect("/healthz JSON");
    assert_eq!(h["mqtt_connected"], true, "{h}");
    h
}

// ---------------------------------------------------------------------------------------
// 1. External broker killed and restarted under load
// ---------------------------------------------------------------------------------------

/// A Mosquitto server on `127.0.0.1:port`, memory only (as rumqttd), started and restarted
/// by the test.
struct Mosquitto {
    program: PathBuf,
    conf: PathBuf,
    port: u16,
    proc: Option<Proc>,
}

impl Mosquitto {
    fn start(dir: &Path) -> Self {
        let program = require_program("mosquitto", "mosquitto");
        let port = free_port();
        let conf = dir.join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!(
                "listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n\
                 max_queued_messages 10000\nlog_dest none\n"
            ),
        )
        .expect("write mosquitto.conf");
        let mut m = Mosquitto {
            program,
            conf,
            port,
            proc: None,
        };
        m.restart();
        m
    }

    /// Starts it (again) on the same port and waits until it accepts connections.
    fn restart(&mut self) {
        assert!(self.proc.is_none(), "mosquitto is already running");
        let conf = self.conf.to_str().expect("utf-8 path");
        self.proc = Some(spawn(
            "mosquitto",
            &self.program,
            &["-c", conf],
            Stdio::null(),
        ));
        wait_for("mosquitto listening", Duration::from_secs(10), || {
            TcpStream::connect(("127.0.0.1", self.port)).ok()
        });
    }

    fn kill9(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.kill9();
        }
    }

    fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }
}

const LOAD_AGENTS: usize = 20;

#[test]
fn external_broker_killed_and_restarted_under_load() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut broker = Mosquitto::start(dir.path());
    let url = broker.url();
    let hub = start_hub(&["--no-local-agent", "--broker", &url]);
    let db = hub.data.path().join("sitewatch.db");
    let acked_file = dir.path().join("acked.jsonl");
    let agents = LOAD_AGENTS.to_string();
    let loadgen = Command::new(loadgen_bin())
        .args(["run", "--broker", &url, "--agents", &agents])
        .args([
            "--sites",
            "2",
            "--site-prefix",
            "brk",
            "--interval-s",
            "0.5",
        ])
        .args(["--heartbeat-s", "1", "--keepalive-s", "3", "--ramp-s", "1"])
        .args(["--warmup-s", "2", "--duration-s", "14", "--drain-s", "5"])
        .args(["--reconnect-max-s", "2", "--resend-after-s", "3", "--json"])
        .arg("--acked-out")
        .arg(&acked_file)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start sitewatch-loadgen");
    let mut loadgen = Proc {
        child: loadgen,
        name: "sitewatch-loadgen".into(),
    };
    let started = Instant::now();
    let stored_total = || -> usize {
        (0..2)
            .map(|s| format!("brk-{s:03}"))
            .map(|site| {
                (0..LOAD_AGENTS)
                    .map(|n| metric_rows(&db, &site, &format!("node-{n:05}")).len())
                    .sum::<usize>()
            })
            .sum()
    };
    wait_for("the load stored", Duration::from_secs(20), || {
        (stored_total() >= 2 * LOAD_AGENTS).then_some(())
    });
    thread::sleep(Duration::from_secs(5).saturating_sub(started.elapsed()));

    broker.kill9();
    let killed_ms = now_ms();
    wait_for("the hub to notice", Duration::from_secs(15), || {
        hub.get("/healthz").filter(|h| h["mqtt_connected"] == false)
    });
    thread::sleep(Duration::from_secs(1));
    broker.restart();
    let restarted_ms = now_ms();
    wait_for("the hub back on mosquitto", Duration::from_secs(20), || {
        hub.get("/healthz").filter(|h| h["mqtt_connected"] == true)
    });

    // The load generator ends by itself (warmup + window + drain) with the broker up.
    let exit = wait_for("loadgen to finish", Duration::from_secs(60), || {
        loadgen.child.try_wait().expect("wait for loadgen")
    });
    let mut out = String::new();
    if let Some(mut stdout) = loadgen.child.stdout.take() {
        stdout
            .read_to_string(&mut out)
            .expect("read loadgen output");
    }
    assert!(exit.success(), "loadgen failed ({exit}):\n{out}");
    let report: Value = out
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| panic!("no JSON report in loadgen output:\n{out}"));
    // First connects happen in the warmup (ramp 1 s < warmup 2 s): the window counts
    // reconnects only.
    assert!(
        report["connects"].as_u64().unwrap_or(0) >= LOAD_AGENTS as u64,
        "the agents did not reconnect after the broker restart:\n{out}"
    );
    assert_eq!(report["connected_at_end"], LOAD_AGENTS, "{out}");
    healthy(&hub);

    let records = record::read(&acked_file).expect("read the acked file");
    assert_eq!(records.len(), LOAD_AGENTS, "one session per agent");
    let expected: Vec<MustBeStored> = records
        .iter()
        .map(|r| MustBeStored {
            site: r.site.clone(),
            node: r.node.clone(),
            session: Some(r.session.clone()),
            seqs: r
                .metrics_seqs
                .iter()
                .take_while(|s| *s <= r.acked_seq)
                .filter(|s| !r.dropped_seqs.contains(*s))
                .collect(),
            metrics_seqs: Some(r.metrics_seqs.iter().collect()),
        })
        .collect();
    assert_stored_once(&db, &expected, "a SIGKILL of the external broker");
    // Data kept flowing: every agent had messages stored and acknowledged after the
    // restart, some of them taken while the broker was down.
    let mut taken_during_outage = 0;
    for r in &records {
        let rows = metric_rows(&db, &r.site, &r.node);
        let acked_after = rows
            .iter()
            .filter(|m| m.session == r.session && m.seq <= r.acked_seq)
            .filter(|m| m.recv > restarted_ms)
            .count();
        assert!(
            acked_after >= 5,
            "{}/{}: only {acked_after} messages acked after the broker restart",
            r.site,
            r.node
        );
        taken_during_outage += rows
            .iter()
            .filter(|m| m.agent_ts > killed_ms + 200 && m.agent_ts < restarted_ms)
            .count();
    }
    assert!(
        taken_during_outage >= LOAD_AGENTS,
        "only {taken_during_outage} messages taken during the outage were stored"
    );
}

// ---------------------------------------------------------------------------------------
// 2. Hub killed while real agents publish
// ---------------------------------------------------------------------------------------

#[test]
fn hub_killed_while_real_agents_publish() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write_hub_config(dir.path(), "[local-agent]\nenabled = false\n");
    let config = config.to_str().expect("utf-8 path");
    let hub = start_hub(&["--config", config]);
    let nodes = ["pi-1", "pi-2"];
    let mut agents: Vec<(Proc, Samples)> = nodes
        .iter()
        .map(|node| {
            let conf = write_agent_config(dir.path(), "crash", node, &hub.broker_url(), "");
            logged(start_logged_agent(&conf))
        })
        .collect();
    let db = hub.data.path().join("sitewatch.db");
    for (node, (_, samples)) in nodes.iter().zip(&mut agents) {
        let taken = samples.wait_more(3, "three samples");
        wait_stored(&db, "crash", node, &taken, Duration::from_secs(20));
    }

    let (data, mqtt_port, http_port) = kill9(hub);
    let killed_ms = now_ms();
    // The agents keep sampling into their outboxes while the hub is gone.
    for (_, samples) in &mut agents {
        samples.wait_more(3, "samples while the hub is down");
    }
    let restarted_ms = now_ms();
    let hub = restart_hub_at(data.path(), mqtt_port, http_port, config);
    for node in nodes {
        wait_status(&hub, "crash", node, "online", Duration::from_secs(30));
    }
    for (node, (mut agent, mut samples)) in nodes.iter().zip(agents) {
        let taken = samples.wait_more(2, "samples after the restart");
        wait_stored(&db, "crash", node, &taken, Duration::from_secs(30));
        let rows = metric_rows(&db, "crash", node);
        let resent = rows
            .iter()
            .filter(|r| r.agent_ts > killed_ms + 200 && r.agent_ts < restarted_ms)
            .filter(|r| r.recv >= restarted_ms)
            .count();
        assert!(
            resent >= 2,
            "{node}: {resent} samples taken while the hub was down were stored"
        );
        stop_and_check(
            &mut agent,
            samples,
            Dest {
                db: &db,
                broker: ("127.0.0.1", hub.mqtt_port),
                site: "crash",
                node,
            },
            taken,
            "a SIGKILL of the hub",
        );
    }
    healthy(&hub);
    drop(hub);

    // The check itself sees a lost sample: delete one stored row, as a lost commit would.
    let victim = metric_rows(&db, "crash", "pi-1")[0].clone();
    let conn = rusqlite::Connection::open(&db).expect("open the database");
    let deleted = conn
        .execute(
            "DELETE FROM metric_messages WHERE session = ?1 AND seq = ?2",
            rusqlite::params![victim.session, victim.seq as i64],
        )
        .expect("delete a row");
    assert_eq!(deleted, 1);
    drop(conn);
    let must = MustBeStored {
        site: "crash".into(),
        node: "pi-1".into(),
        session: None,
        seqs: BTreeSet::from([victim.seq]),
        metrics_seqs: None,
    };
    let errors = stored_once_violations(&db, &[must]);
    assert!(
        errors.contains(&format!(
            "crash/pi-1 session {}: seq {} is missing",
            victim.session, victim.seq
        )),
        "{errors:?}"
    );
    drop(data);
}

/// The hub on an external broker, killed while a real agent publishes: Mosquitto accepts
/// (and acknowledges) the agent's messages with no subscriber and keeps nothing. When the
/// hub is back, its live `_hub/status` `online` makes the agent send what it missed at
/// once, not after `resend-after-s` (60 s here, the default).
#[test]
fn hub_on_an_external_broker_restarted_gets_what_it_missed_at_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let broker = Mosquitto::start(dir.path());
    let url = broker.url();
    let config = write_hub_config(
        dir.path(),
        &format!("broker = {url:?}\n[local-agent]\nenabled = false\n"),
    );
    let config = config.to_str().expect("utf-8 path");
    let hub = start_hub(&["--config", config]);
    let conf = write_agent_config(dir.path(), "ext", "pi-1", &url, "");
    let toml = std::fs::read_to_string(&conf).expect("agent config");
    assert!(toml.contains("resend-after-s = 3"), "{toml}");
    std::fs::write(
        &conf,
        toml.replace("resend-after-s = 3", "resend-after-s = 60"),
    )
    .expect("agent config");
    let (mut agent, mut samples) = logged(start_logged_agent(&conf));
    let db = hub.data.path().join("sitewatch.db");
    let taken = samples.wait_more(3, "three samples");
    wait_stored(&db, "ext", "pi-1", &taken, Duration::from_secs(20));

    let (data, mqtt_port, http_port) = kill9(hub);
    let while_down = samples.wait_more(3, "samples while the hub is down");
    let restarted = Instant::now();
    let hub = restart_hub_at(data.path(), mqtt_port, http_port, config);
    wait_stored(&db, "ext", "pi-1", &while_down, Duration::from_secs(15));
    let caught_up = restarted.elapsed();
    eprintln!(
        "every sample taken while the hub was down stored {:.1} s after its restart \
         (resend-after-s = 60)",
        caught_up.as_secs_f64()
    );
    let taken = samples.wait_more(2, "samples after the restart");
    stop_and_check(
        &mut agent,
        samples,
        Dest {
            db: &db,
            broker: ("127.0.0.1", broker.port),
            site: "ext",
            node: "pi-1",
        },
        taken,
        "a SIGKILL of the hub on an external broker",
    );
    healthy(&hub);
    drop(hub);
    drop(data);
}

// ---------------------------------------------------------------------------------------
// 3. Agent link cut in a network namespace
// ---------------------------------------------------------------------------------------

/// A network namespace holding one end of a veth pair; the other end stays in the test's
/// namespace. Addresses: 10.234.N.1 (host side) and 10.234.N.2 (namespace side), a /30,
/// no other route in the namespace. Deleted when dropped, also on a panic.
struct VethNs {
    ns: String,
    inner_if: String,
    host_ip: Ipv4Addr,
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl VethNs {
    fn create() -> Self {
        let id = std::process::id();
        let net = VethNs {
            ns: format!("swfault-{id}"),
            inner_if: format!("swfa{id}"),
            host_ip: Ipv4Addr::new(10, 234, (id % 250) as u8, 1),
        };
        let host_if = format!("swfh{id}");
        let inner_ip = Ipv4Addr::new(10, 234, (id % 250) as u8, 2);
        let _ = Command::new("ip")
            .args(["netns", "del", &net.ns])
            .stderr(Stdio::null())
            .status();
        ip(&["netns", "add", &net.ns]);
        ip(&[
            "link",
            "add",
            &host_if,
            "type",
            "veth",
            "peer",
            "name",
            &net.inner_if,
            "netns",
            &net.ns,
        ]);
        ip(&[
            "addr",
            "add",
            &format!("{}/30", net.host_ip),
            "dev",
            &host_if,
        ]);
        ip(&["link", "set", &host_if, "up"]);
        ip(&["-n", &net.ns, "link", "set", "lo", "up"]);
        ip(&[
            "-n",
            &net.ns,
            "addr",
            "add",
            &format!("{inner_ip}/30"),
            "dev",
            &net.inner_if,
        ]);
        ip(&["-n", &net.ns, "link", "set", &net.inner_if, "up"]);
        net
    }

    /// A command run inside the namespace (`ip netns exec` execs it: same PID).
    fn exec(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.ns]).arg(program);
        c
    }

    /// Takes the namespace's end down: the agent loses its route to the hub (the host side
    /// keeps its addresses, so nothing for 10.234.N.0/30 is routed anywhere else).
    fn cut(&self) {
        ip(&["-n", &self.ns, "link", "set", &self.inner_if, "down"]);
    }

    fn restore(&self) {
        ip(&["-n", &self.ns, "link", "set", &self.inner_if, "up"]);
    }
}

impl Drop for VethNs {
    fn drop(&mut self) {
        // Deleting the namespace deletes its veth end, and with it the pair.
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).status();
    }
}

#[test]
fn agent_link_cut_in_a_namespace_then_restored() {
    if !netns_available("the link-cut test") {
        return;
    }
    let net = VethNs::create();
    let dir = tempfile::tempdir().expect("temp dir");
    // The agent connects from the namespace, not from loopback: let anonymous clients in
    // from anywhere (the test agent has no credentials).
    let config = write_hub_config(
        dir.path(),
        "[local-agent]\nenabled = false\n[security]\nanonymous = \"everyone\"\n",
    );
    let config = config.to_str().expect("utf-8 path");
    let hub = start_hub_listening(IpAddr::V4(net.host_ip), &["--config", config]);
    let broker = format!("mqtt://{}:{}", net.host_ip, hub.mqtt_port);
    let conf = write_agent_config(dir.path(), "netcut", "pi", &broker, "");
    let mut cmd = net.exec(agent_bin());
    cmd.arg("--config").arg(&conf);
    let (mut agent, mut samples) = logged(start_logged_agent_cmd(cmd));
    let db = hub.data.path().join("sitewatch.db");
    wait_status(&hub, "netcut", "pi", "online", Duration::from_secs(30));
    let taken = samples.wait_more(3, "three samples");
    wait_stored(&db, "netcut", "pi", &taken, Duration::from_secs(20));

    net.cut();
    let cut_ms = now_ms();
    // Keepalive 2 s, heartbeat timeout 3 × 1 s: the hub says offline within seconds.
    wait_status(&hub, "netcut", "pi", "offline", Duration::from_secs(20));
    // Down for a while longer (more than twice the keepalive in all), still sampling.
    samples.wait_more(3, "samples while the link is down");
    let restore_ms = now_ms();
    net.restore();
    wait_status(&hub, "netcut", "pi", "online", Duration::from_secs(30));
    let taken = samples.wait_more(2, "samples after the link is back");
    wait_stored(&db, "netcut", "pi", &taken, Duration::from_secs(30));
    let late: Vec<MetricRow> = metric_rows(&db, "netcut", "pi")
        .into_iter()
        .filter(|r| r.agent_ts > cut_ms + 500 && r.agent_ts < restore_ms)
        .collect();
    assert!(
        late.len() >= 3,
        "only {} samples taken during the cut were stored",
        late.len()
    );
    for r in &late {
        assert!(
            r.recv >= restore_ms,
            "sample {} taken during the cut arrived at {}, before the link came back at \
             {restore_ms}",
            r.seq,
            r.recv
        );
    }
    healthy(&hub);
    stop_and_check(
        &mut agent,
        samples,
        Dest {
            db: &db,
            broker: (&net.host_ip.to_string(), hub.mqtt_port),
            site: "netcut",
            node: "pi",
        },
        taken,
        "a link cut",
    );
}

// ---------------------------------------------------------------------------------------
// 4. Garbage on the MQTT port
// ---------------------------------------------------------------------------------------

const STEP: Duration = Duration::from_secs(5);

fn encode_connect(id: &str, v5: bool) -> Vec<u8> {
    let mut connect = rumqttc::Connect::new(id);
    if v5 {
        connect.protocol = rumqttc::Protocol::V5;
    }
    let mut buf = BytesMut::new();
    connect.write(&mut buf).expect("encode CONNECT");
    buf.to_vec()
}

/// A QoS 1 PUBLISH with packet id 1.
fn encode_publish(topic: &str, payload: Vec<u8>) -> Vec<u8> {
    let mut publish = rumqttc::Publish::new(topic, rumqttc::QoS::AtLeastOnce, payload);
    publish.pkid = 1;
    let mut buf = BytesMut::new();
    publish.write(&mut buf).expect("encode PUBLISH");
    buf.to_vec()
}

/// A TCP connection to the hub's broker that has sent `bytes` (a write the server cuts
/// short by closing is fine: what it answers is what the test checks).
fn send(hub: &Hub, bytes: &[u8]) -> TcpStream {
    let mut s = TcpStream::connect(("127.0.0.1", hub.mqtt_port)).expect("TCP connect");
    s.set_read_timeout(Some(STEP)).expect("read timeout");
    s.set_write_timeout(Some(STEP)).expect("write timeout");
    let _ = s.write_all(bytes);
    s
}

/// Reads what the server sends until it closes; panics if it neither closes nor goes
/// quiet within [`STEP`]... it must close.
fn answer_until_close(s: &mut TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 256];
    let deadline = Instant::now() + STEP;
    loop {
        match s.read(&mut buf) {
            Ok(0) => return got,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return got,
            Err(e) => panic!("the broker neither closed nor answered within {STEP:?}: {e}"),
        }
        assert!(Instant::now() < deadline, "the broker did not close");
    }
}

/// Opens an accepted MQTT 3.1.1 session.
fn session(hub: &Hub, id: &str) -> TcpStream {
    let mut s = send(hub, &encode_connect(id, false));
    let mut connack = [0u8; 4];
    s.read_exact(&mut connack).expect("a CONNACK");
    assert_eq!(connack, [0x20, 0x02, 0x00, 0x00], "session {id} refused");
    s
}

/// Deterministic noise (xorshift), not starting like a CONNECT.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out: Vec<u8> = (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    out[0] = 0xF3;
    out
}

#[test]
fn garbage_on_the_mqtt_port_is_survived() {
    let hub = start_hub(&["--no-local-agent"]);
    let malformed_before = healthy(&hub)["messages_malformed"]
        .as_u64()
        .expect("messages_malformed");
    let topic = |node: &str| format!("sitewatch/v1/garbage/{node}/metrics");
    // Held open, half a CONNECT, while everything else happens: a stalled handshake must
    // not hold up anyone else.
    let good = encode_connect("garbage-stalled", false);
    let stalled = send(&hub, &good[..good.len() / 2]);

    for attempt in 1..=2 {
        let what = |case: &str| format!("{case}, attempt {attempt}");

        // (case, bytes sent, then half-closed, the broker's whole answer)
        let raw: [(&str, Vec<u8>, bool, &[u8]); 4] = [
            ("random bytes", noise(512, attempt), false, b""),
            (
                "truncated CONNECT",
                good[..good.len() - 3].to_vec(),
                true,
                b"",
            ),
            (
                "MQTT 5 CONNECT: CONNACK 1, unacceptable protocol version",
                encode_connect("garbage-v5", true),
                false,
                &[0x20, 0x02, 0x00, 0x01],
            ),
            (
                "client id with '/': CONNACK 2, identifier rejected",
                encode_connect("garbage/slash", false),
                false,
                &[0x20, 0x02, 0x00, 0x02],
            ),
        ];
        for (case, bytes, half_close, answer) in raw {
            let mut s = send(&hub, &bytes);
            if half_close {
                s.shutdown(Shutdown::Write).expect("half-close");
            }
            assert_eq!(answer_until_close(&mut s), answer, "{}", what(case));
        }

        // Over the 1 MiB packet limit: cut off, no PUBACK, nothing routed.
        let mut s = session(&hub, "garbage-big");
        let _ = s.write_all(&encode_publish(&topic("big"), vec![b'x'; 1024 * 1024 + 1]));
        assert_eq!(
            answer_until_close(&mut s),
            b"",
            "{}",
            what("oversized PUBLISH")
        );

        // Well-formed MQTT, malformed JSON: acknowledged by the broker, dropped and counted
        // by the hub.
        let mut s = session(&hub, "garbage-json");
        let payload = if attempt == 1 {
            b"{\"ts\": 1700000000000, \"seq\": ".to_vec()
        } else {
            b"not json at all \xff\xfe".to_vec()
        };
        s.write_all(&encode_publish(&topic("json"), payload))
            .expect("publish");
        let mut puback = [0u8; 4];
        s.read_exact(&mut puback).expect("a PUBACK");
        assert_eq!(puback, [0x40, 0x02, 0x00, 0x01], "{}", what("PUBACK"));
        s.write_all(&[0xE0, 0x00]).expect("DISCONNECT");
    }

    // A good agent still connects and gets its data stored.
    let dir = tempfile::tempdir().expect("temp dir");
    let conf = write_agent_config(dir.path(), "after-garbage", "pi", &hub.broker_url(), "");
    let (mut agent, mut samples) = logged(start_logged_agent(&conf));
    let db = hub.data.path().join("sitewatch.db");
    wait_status(
        &hub,
        "after-garbage",
        "pi",
        "online",
        Duration::from_secs(20),
    );
    let taken = samples.wait_more(3, "three samples");
    wait_stored(&db, "after-garbage", "pi", &taken, Duration::from_secs(20));
    drop(stalled);

    let h = wait_for(
        "the malformed payloads counted",
        Duration::from_secs(10),
        || {
            let h = hub.get("/healthz")?;
            (h["messages_malformed"].as_u64()? >= malformed_before + 2).then_some(h)
        },
    );
    assert_eq!(
        h["messages_malformed"].as_u64(),
        Some(malformed_before + 2),
        "two malformed payloads, counted once each: {h}"
    );
    let h = healthy(&hub);
    assert_eq!(
        (&h["status"], &h["broker_accepting"]),
        (&"ok".into(), &true.into()),
        "{h}"
    );
    let nodes = hub.get("/api/v1/nodes").expect("node list");
    let listed: Vec<&Value> = nodes
        .as_array()
        .expect("a list")
        .iter()
        .filter(|n| n["site"] == "garbage")
        .collect();
    assert!(listed.is_empty(), "garbage made nodes: {listed:?}");
    stop_and_check(
        &mut agent,
        samples,
        Dest {
            db: &db,
            broker: ("127.0.0.1", hub.mqtt_port),
            site: "after-garbage",
            node: "pi",
        },
        taken,
        "garbage on the MQTT port",
    );
}

// ---------------------------------------------------------------------------------------
// 5. Agent wall clock jumps
// ---------------------------------------------------------------------------------------

/// libfaketime's offset file: the agent's wall clock is the real one plus this.
struct FakeClock(PathBuf);

impl FakeClock {
    fn set(&self, offset: &str) {
        // Written whole then renamed, so the agent never reads half a line.
        let tmp = self.0.with_extension("tmp");
        std::fs::write(&tmp, format!("{offset}\n")).expect("write the faketime file");
        std::fs::rename(&tmp, &self.0).expect("rename the faketime file");
    }
}

/// The clock-skew alert of `node`, as `/api/v1/alerts?state=...` lists it.
fn skew_alert(hub: &Hub, state: &str, node: &str) -> Option<Value> {
    let list = hub.get(&format!("/api/v1/alerts?state={state}&site=clock"))?;
    list.as_array()?
        .iter()
        .find(|a| a["rule"] == "clock" && a["node"] == node)
        .cloned()
}

/// Heartbeats of clock/pi stored with the agent's clock off by more than `hours` (sign
/// given), i.e. counted while the clock was wrong.
fn skewed_heartbeats(db: &Path, hours: i64) -> i64 {
    let Ok(conn) =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
    else {
        return 0;
    };
    let cond = if hours < 0 {
        "h.agent_ts_ms < h.recv_ms - ?1"
    } else {
        "h.agent_ts_ms > h.recv_ms + ?1"
    };
    conn.query_row(
        &format!(
            "SELECT count(*) FROM heartbeats h JOIN nodes n ON n.id = h.node_id
             WHERE n.site = 'clock' AND n.node = 'pi' AND {cond}"
        ),
        [hours.abs() * 3_600_000 - 600_000],
        |r| r.get(0),
    )
    .unwrap_or(0)
}

#[test]
fn agent_wall_clock_jumps_back_and_forth() {
    let faketime = require_libfaketime();
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write_hub_config(
        dir.path(),
        "[local-agent]\nenabled = false\n\
         [detection]\nclock-skew-s = 30\nclock-skew-clear-s = 10\n\
         [[alerts.rules]]\nname = \"clock\"\nkind = \"clock-skew\"\n",
    );
    let hub = start_hub(&["--config", config.to_str().expect("utf-8 path")]);
    let clock = FakeClock(dir.path().join("faketime"));
    clock.set("+0");
    let conf = write_agent_config(dir.path(), "clock", "pi", &hub.broker_url(), "");
    let mut cmd = Command::new(agent_bin());
    cmd.arg("--config")
        .arg(&conf)
        .env("LD_PRELOAD", &faketime)
        .env("FAKETIME_TIMESTAMP_FILE", &clock.0)
        .env("FAKETIME_NO_CACHE", "1")
        .env("DONT_FAKE_MONOTONIC", "1");
    let (mut agent, mut samples) = logged(start_logged_agent_cmd(cmd));
    let db = hub.data.path().join("sitewatch.db");
    wait_status(&hub, "clock", "pi", "online", Duration::from_secs(20));
    let taken = samples.wait_more(3, "three samples");
    wait_stored(&db, "clock", "pi", &taken, Duration::from_secs(20));
    assert!(skew_alert(&hub, "active", "pi").is_none());

    // The node must stay online through every jump: heartbeats still count.
    let still_online = || {
        let s = status(&hub, "clock", "pi");
        assert_eq!(
            s.as_deref(),
            Some("online"),
            "the node went {s:?} on a clock jump"
        );
    };
    for (offset, hours) in [("-3h", -3i64), ("+5h", 5)] {
        clock.set(offset);
        let alert = wait_for(
            &format!("a clock-skew alert at {offset}"),
            Duration::from_secs(30),
            || {
                still_online();
                skew_alert(&hub, "firing", "pi")
            },
        );
        let value = alert["value"].as_f64().expect("skew value");
        let want = (hours * 3600) as f64;
        assert!(
            (value - want).abs() < 120.0,
            "skew {value} s shown for a clock {offset} off: {alert}"
        );
        let taken = samples.wait_more(2, "samples on the jumped clock");
        wait_stored(&db, "clock", "pi", &taken, Duration::from_secs(20));
        assert!(skewed_heartbeats(&db, hours) >= 2, "heartbeats at {offset}");
        still_online();

        clock.set("+0");
        let fingerprint = alert["fingerprint"].clone();
        let started = alert["started_ms"].clone();
        wait_for(
            &format!("the clock-skew alert resolved after {offset}"),
            Duration::from_secs(30),
            || {
                still_online();
                let resolved = hub.get("/api/v1/alerts?state=resolved&site=clock")?;
                let this = resolved.as_array()?.iter().any(|a| {
                    a["fingerprint"] == fingerprint
                        && a["started_ms"] == started
                        && a["resolved_ms"].is_u64()
                });
                (this && skew_alert(&hub, "active", "pi").is_none()).then_some(())
            },
        );
    }

    // Samples taken on every clock, each stored once.
    let taken = samples.wait_more(2, "samples on the right clock again");
    wait_stored(&db, "clock", "pi", &taken, Duration::from_secs(20));
    let rows = metric_rows(&db, "clock", "pi");
    let off = |r: &MetricRow, hours: i64| {
        (r.agent_ts as i64 - r.recv as i64 - hours * 3_600_000).abs() < 600_000
    };
    for hours in [-3, 5, 0] {
        assert!(
            rows.iter().filter(|r| off(r, hours)).count() >= 2,
            "no samples stored with the clock {hours} h off"
        );
    }
    healthy(&hub);
    stop_and_check(
        &mut agent,
        samples,
        Dest {
            db: &db,
            broker: ("127.0.0.1", hub.mqtt_port),
            site: "clock",
            node: "pi",
        },
        taken,
        "wall-clock jumps",
    );
}
