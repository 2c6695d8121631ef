//! Test harness: starts the real binaries on free loopback ports, talks to the HTTP API,
//! waits on conditions with a deadline. Every process started here is killed (by its own
//! PID, through `Child`) when its guard drops.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free loopback port")
}

/// A child process killed when dropped.
pub struct Proc {
    pub child: Child,
    pub name: String,
}

impl Proc {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL, the way a power cut or OOM kill ends an agent.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Lines of stdout, read on a thread (the child must be spawned with piped stdout).
    pub fn stdout_lines(&mut self) -> mpsc::Receiver<String> {
        let (tx, rx) = mpsc::channel();
        let out = self.child.stdout.take().expect("stdout not piped");
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        rx
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn spawn(
    name: &str,
    program: impl AsRef<std::ffi::OsStr>,
    args: &[&str],
    stdout: Stdio,
) -> Proc {
    let child = Command::new(program)
        .args(args)
        .env("RUST_LOG", "info,rumqttd=warn")
        .stdout(stdout)
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
    Proc {
        child,
        name: name.to_owned(),
    }
}

/// A running hub with its ports and data directory.
pub struct Hub {
    pub proc: Proc,
    pub mqtt_port: u16,
    pub http_port: u16,
    pub data: tempfile::TempDir,
}

impl Hub {
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.http_port)
    }

    pub fn broker_url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.mqtt_port)
    }

    /// GET a JSON document; None while the hub is not answering yet.
    pub fn get(&self, path: &str) -> Option<Value> {
        get_json(&self.url(path))
    }

    /// The node list entry for `site/node`, if listed.
    pub fn node(&self, site: &str, node: &str) -> Option<Value> {
        let list = self.get("/api/v1/nodes")?;
        list.as_array()?
            .iter()
            .find(|n| n["site"] == site && n["node"] == node)
            .cloned()
    }

    pub fn wait_ready(&self) {
        wait_for("hub /healthz", Duration::from_secs(30), || {
            self.get("/healthz").filter(|h| h["mqtt_connected"] == true)
        });
    }
}

/// Writes a `hub.toml` into `dir` and returns its path, for `start_hub(&["--config", ..])`
/// and [`restart_hub_at`]. Custom hub configurations go through here, so a key every test
/// hub needs is added in one place.
pub fn write_hub_config(dir: &Path, body: &str) -> PathBuf {
    let path = dir.join("hub.toml");
    std::fs::write(&path, body).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    path
}

pub fn hub_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_sitewatch-hub"))
}

/// The agent binary, built by cargo next to the hub's.
pub fn agent_bin() -> PathBuf {
    let hub = hub_bin();
    let dir = hub.parent().expect("binary directory");
    let agent = dir.join("sitewatch-agent");
    assert!(
        agent.exists(),
        "{} is missing; build the workspace first (cargo build --workspace, done by scripts/test.sh)",
        agent.display()
    );
    agent
}

/// Starts `sitewatch-hub` on free loopback ports with a fresh data directory.
pub fn start_hub(extra: &[&str]) -> Hub {
    let data = tempfile::tempdir().expect("temp dir");
    start_hub_in(data, extra)
}

pub fn start_hub_in(data: tempfile::TempDir, extra: &[&str]) -> Hub {
    start_hub_with(data, extra, true)
}

/// Starts `sitewatch-hub` with its security defaults: signed telemetry required (no
/// `--allow-unsigned`), anonymous MQTT only from loopback.
pub fn start_hub_secure(extra: &[&str]) -> Hub {
    start_hub_with(tempfile::tempdir().expect("temp dir"), extra, false)
}

/// Starts `sitewatch-hub` on `data`; without `allow_unsigned`, with its security defaults.
pub fn start_hub_with(data: tempfile::TempDir, extra: &[&str], allow_unsigned: bool) -> Hub {
    start_hub_listening_in(
        data,
        std::net::Ipv4Addr::LOCALHOST.into(),
        extra,
        allow_unsigned,
    )
}

/// [`start_hub`] with the embedded broker on `mqtt_ip` (a free port; e.g. the host-side veth
/// address of a test namespace) and the HTTP API on a free loopback port.
pub fn start_hub_listening(mqtt_ip: std::net::IpAddr, extra: &[&str]) -> Hub {
    start_hub_listening_in(tempfile::tempdir().expect("temp dir"), mqtt_ip, extra, true)
}

fn start_hub_listening_in(
    data: tempfile::TempDir,
    mqtt_ip: std::net::IpAddr,
    extra: &[&str],
    allow_unsigned: bool,
) -> Hub {
    let mqtt_port = TcpListener::bind((mqtt_ip, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free port on {mqtt_ip}: {e}"));
    let http_port = free_port();
    let mqtt = std::net::SocketAddr::new(mqtt_ip, mqtt_port).to_string();
    let http = format!("127.0.0.1:{http_port}");
    let dir = data.path().to_str().expect("utf-8 temp path").to_owned();
    let mut args = vec![
        "--mqtt-listen",
        &mqtt,
        "--http-listen",
        &http,
        "--data-dir",
        &dir,
    ];
    // Most tests run agents without credentials; hub/tests/security.rs runs the hub's
    // defaults (signed telemetry required).
    if allow_unsigned {
        args.push("--allow-unsigned");
    }
    args.extend_from_slice(extra);
    let proc = spawn("sitewatch-hub", hub_bin(), &args, Stdio::null());
    let hub = Hub {
        proc,
        mqtt_port,
        http_port,
        data,
    };
    hub.wait_ready();
    hub
}

/// Starts the hub again on the same ports and data directory as an earlier one (after it
/// was killed). The returned `Hub` owns a placeholder temp dir; `data` is not removed.
pub fn restart_hub_at(data: &Path, mqtt_port: u16, http_port: u16, config: &str) -> Hub {
    let mqtt = format!("127.0.0.1:{mqtt_port}");
    let http = format!("127.0.0.1:{http_port}");
    let dir = data.to_str().expect("utf-8 path").to_owned();
    let args = [
        "--mqtt-listen",
        &mqtt,
        "--http-listen",
        &http,
        "--data-dir",
        &dir,
        "--config",
        config,
        "--allow-unsigned",
    ];
    let proc = spawn("sitewatch-hub", hub_bin(), &args, Stdio::null());
    let hub = Hub {
        proc,
        mqtt_port,
        http_port,
        data: tempfile::tempdir().expect("placeholder dir"),
    };
    hub.wait_ready();
    hub
}

/// Starts `sitewatch-agent` with short intervals (1 s heartbeat and metrics, 2 s keepalive).
pub fn start_agent(broker: &str, site: &str, node: &str) -> Proc {
    spawn(
        "sitewatch-agent",
        agent_bin(),
        &[
            "--broker",
            broker,
            "--site",
            site,
            "--node",
            node,
            "--heartbeat-interval",
            "1",
            "--metrics-interval",
            "1",
            "--keepalive",
            "2",
        ],
        Stdio::null(),
    )
}

pub fn get_json(url: &str) -> Option<Value> {
    let mut resp = ureq::get(url).call().ok()?;
    resp.body_mut().read_json::<Value>().ok()
}

/// Opens `GET /api/v1/events` and yields each `nodes` event's node list, read on a thread.
pub fn node_events(hub: &Hub) -> mpsc::Receiver<Value> {
    let resp = ureq::get(&hub.url("/api/v1/events"))
        .call()
        .expect("open event stream");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let reader = BufReader::new(resp.into_body().into_reader());
        for line in reader.lines().map_while(Result::ok) {
            if let Some(data) = line.strip_prefix("data:")
                && let Ok(v) = serde_json::from_str::<Value>(data.trim())
                && tx.send(v).is_err()
            {
                break;
            }
        }
    });
    rx
}

/// Polls `f` every 100 ms until it returns Some, or panics after `timeout`.
pub fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        if start.elapsed() > timeout {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Finds a program of a Debian package, in PATH or the sbin directories (mosquitto lives in
/// /usr/sbin). Missing prerequisites fail the test: scripts/test.sh installs them.
pub fn require_program(name: &str, package: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs = std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/local/sbin"].map(PathBuf::from));
    for d in dirs {
        let p = Path::new(&d).join(name);
        if p.is_file() {
            return p;
        }
    }
    panic!(
        "{name} not found: install the Debian package {package} (scripts/install-deps.sh does it)"
    );
}

/// The cargo target directory the tests were built in (`target/` or `$CARGO_TARGET_DIR`).
pub fn target_dir() -> PathBuf {
    let hub = hub_bin();
    let profile_dir = hub.parent().expect("binary directory");
    profile_dir
        .parent()
        .expect("target directory")
        .to_path_buf()
}

/// Profile of the cross-built agents the qemu tests run: `cross-test` (what scripts/test.sh
/// builds), or `$SITEWATCH_CROSS_PROFILE` (e.g. `release-small` after cross/build.sh).
pub fn cross_profile() -> String {
    std::env::var("SITEWATCH_CROSS_PROFILE").unwrap_or_else(|_| "cross-test".to_owned())
}

/// The agent cross-built for `triple` by cross/build.sh. Missing is a failure, not a skip.
pub fn cross_agent_bin(triple: &str) -> PathBuf {
    let profile = cross_profile();
    let agent = target_dir()
        .join(triple)
        .join(&profile)
        .join("sitewatch-agent");
    assert!(
        agent.is_file(),
        "{} is missing; build it with `cross/build.sh --profile {profile} --no-dist {triple}` \
         (scripts/test.sh does it; prerequisites: scripts/install-deps.sh --cross)",
        agent.display()
    );
    agent
}

/// Starts an agent binary under a user-mode emulator (`qemu-aarch64-static -cpu cortex-a53
/// AGENT ...`: `emulator_args` come before the agent) with the short intervals of
/// [`start_agent`].
pub fn start_agent_emulated(
    emulator: &Path,
    emulator_args: &[&str],
    agent: &Path,
    broker: &str,
    site: &str,
    node: &str,
) -> Proc {
    let agent = agent.to_str().expect("utf-8 agent path");
    let mut args = emulator_args.to_vec();
    args.extend_from_slice(&[
        agent,
        "--broker",
        broker,
        "--site",
        site,
        "--node",
        node,
        "--heartbeat-interval",
        "1",
        "--metrics-interval",
        "1",
        "--keepalive",
        "2",
    ]);
    spawn("sitewatch-agent (emulated)", emulator, &args, Stdio::null())
}

/// Starts the agent with debug logs of the publisher; yields the seq of every sample taken,
/// and its other log lines (also echoed to stderr).
pub fn start_logged_agent(
    config: &std::path::Path,
) -> (Proc, mpsc::Receiver<u64>, mpsc::Receiver<String>) {
    let mut cmd = Command::new(agent_bin());
    cmd.arg("--config").arg(config);
    start_logged_agent_cmd(cmd)
}

/// [`start_logged_agent`] for an agent command prepared by the caller: run inside a network
/// namespace (`ip netns exec NS AGENT --config ...`), or with extra environment (a preloaded
/// library). The command must end up running the agent binary itself (`ip netns exec`
/// execs it, so the PID is the agent's).
pub fn start_logged_agent_cmd(
    mut cmd: Command,
) -> (Proc, mpsc::Receiver<u64>, mpsc::Receiver<String>) {
    let mut child = cmd
        .env("RUST_LOG", "info,sitewatch_agent::publisher=debug")
        .env_remove("SITEWATCH_CONFIG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start sitewatch-agent");
    let stderr = child.stderr.take().expect("piped stderr");
    let (tx, rx) = mpsc::channel();
    let (line_tx, line_rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(seq) = line
                .contains("metrics sample taken")
                .then(|| line.split("seq=").nth(1))
                .flatten()
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|n| n.parse::<u64>().ok())
            {
                let _ = tx.send(seq);
            } else if !line.contains("DEBUG") {
                eprintln!("agent: {line}");
                let _ = line_tx.send(line);
            }
        }
    });
    let proc = Proc {
        child,
        name: "sitewatch-agent".into(),
    };
    (proc, rx, line_rx)
}

/// An agent config with the short intervals of [`start_agent`] (1 s heartbeat and metrics,
/// 2 s keepalive, reconnect backoff capped at 2 s, stalled acks resent after 3 s) plus
/// `extra` TOML, placed after the top-level keys and before `[outbox]`; written into `dir`
/// as `{node}.toml`.
pub fn write_agent_config(
    dir: &Path,
    site: &str,
    node: &str,
    broker: &str,
    extra: &str,
) -> PathBuf {
    let path = dir.join(format!("{node}.toml"));
    std::fs::write(
        &path,
        format!(
            "site = \"{site}\"\nnode = \"{node}\"\nbroker = \"{broker}\"\n\
             heartbeat-interval-s = 1\nmetrics-interval-s = 1\nkeepalive-s = 2\n\
             reconnect-max-s = 2\n{extra}\n[outbox]\nresend-after-s = 3\n"
        ),
    )
    .unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    path
}

/// The `sitewatch-loadgen` binary (bench/loadgen), built next to the hub's by
/// `cargo build --workspace --bins` (scripts/test.sh).
pub fn loadgen_bin() -> PathBuf {
    let loadgen = hub_bin()
        .parent()
        .expect("binary directory")
        .join("sitewatch-loadgen");
    assert!(
        loadgen.is_file(),
        "{} is missing; build the workspace first (cargo build --workspace --bins, done by \
         scripts/test.sh)",
        loadgen.display()
    );
    loadgen
}

/// One stored metrics message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricRow {
    pub session: String,
    pub seq: u64,
    /// The agent's `ts` (its clock).
    pub agent_ts: u64,
    /// The hub's receive time.
    pub recv: u64,
}

/// The metrics messages the hub's database `db` holds for `site/node` (read-only; empty
/// while the file or its tables do not exist yet).
pub fn metric_rows(db: &Path, site: &str, node: &str) -> Vec<MetricRow> {
    use rusqlite::{Connection, OpenFlags};
    let Ok(conn) = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY) else {
        return Vec::new();
    };
    let query = "SELECT m.session, m.seq, m.agent_ts_ms, m.recv_ms FROM metric_messages m
                 JOIN nodes n ON n.id = m.node_id WHERE n.site = ?1 AND n.node = ?2
                 ORDER BY m.session, m.seq";
    let Ok(mut stmt) = conn.prepare(query) else {
        return Vec::new();
    };
    let rows = stmt.query_map([site, node], |r| {
        Ok(MetricRow {
            session: r.get(0)?,
            seq: r.get::<_, i64>(1)? as u64,
            agent_ts: r.get::<_, i64>(2)? as u64,
            recv: r.get::<_, i64>(3)? as u64,
        })
    });
    rows.into_iter().flatten().flatten().collect()
}

/// What a test knows must be stored: metrics seqs of one agent session.
#[derive(Debug, Clone)]
pub struct MustBeStored {
    pub site: String,
    pub node: String,
    /// The session, or None for "the node's only session" (a real agent run once).
    pub session: Option<String>,
    /// Seqs that must be stored exactly once (acked, or taken and given time to arrive).
    pub seqs: std::collections::BTreeSet<u64>,
    /// Every seq that was a metrics message of the session (None: not known); a stored
    /// metrics row outside it is a violation.
    pub metrics_seqs: Option<std::collections::BTreeSet<u64>>,
}

/// "Nothing acked is lost" on the hub's database: `PRAGMA integrity_check`; each expected
/// seq stored exactly once, and nothing stored that was not a metrics message; each node's
/// stored message has its own sample frame (frames = messages) and no instant of a node is
/// stored twice. Returns every violation found (empty: all good).
pub fn stored_once_violations(db: &Path, expected: &[MustBeStored]) -> Vec<String> {
    use rusqlite::{Connection, OpenFlags};
    use std::collections::{BTreeMap, BTreeSet};
    let conn = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .unwrap_or_else(|e| panic!("open {}: {e}", db.display()));
    let mut errors = Vec::new();
    let integrity: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("integrity_check");
    if integrity != "ok" {
        errors.push(format!("integrity_check: {integrity}"));
    }
    for e in expected {
        let who = format!("{}/{}", e.site, e.node);
        let mut stmt = conn
            .prepare(
                "SELECT m.session, m.seq, count(*) FROM metric_messages m
                 JOIN nodes n ON n.id = m.node_id WHERE n.site = ?1 AND n.node = ?2
                 GROUP BY m.session, m.seq",
            )
            .expect("prepare");
        let rows: Vec<(String, u64, u64)> = stmt
            .query_map([&e.site, &e.node], |r| {
                Ok((
                    r.get(0)?,
                    r.get::<_, i64>(1)? as u64,
                    r.get::<_, i64>(2)? as u64,
                ))
            })
            .expect("query")
            .map(|r| r.expect("row"))
            .collect();
        let sessions: BTreeSet<&str> = rows.iter().map(|r| r.0.as_str()).collect();
        let session = match &e.session {
            Some(s) => s.as_str(),
            None if sessions.len() <= 1 => sessions.first().copied().unwrap_or(""),
            None => {
                errors.push(format!(
                    "{who}: one agent run, several sessions: {sessions:?}"
                ));
                continue;
            }
        };
        let counts: BTreeMap<u64, u64> = rows
            .iter()
            .filter(|r| r.0 == session)
            .map(|r| (r.1, r.2))
            .collect();
        for seq in &e.seqs {
            match counts.get(seq).copied().unwrap_or(0) {
                1 => {}
                0 => errors.push(format!("{who} session {session}: seq {seq} is missing")),
                n => errors.push(format!(
                    "{who} session {session}: seq {seq} stored {n} times"
                )),
            }
        }
        for (seq, n) in &counts {
            if *n != 1 && !e.seqs.contains(seq) {
                errors.push(format!(
                    "{who} session {session}: seq {seq} stored {n} times"
                ));
            }
            if e.metrics_seqs.as_ref().is_some_and(|m| !m.contains(seq)) {
                errors.push(format!(
                    "{who} session {session}: seq {seq} stored as metrics but was not one"
                ));
            }
        }
    }
    let mut stmt = conn
        .prepare(
            "SELECT n.site || '/' || n.node,
                    (SELECT count(*) FROM metric_messages m WHERE m.node_id = n.id),
                    (SELECT count(*) FROM frames f WHERE f.node_id = n.id)
             FROM nodes n",
        )
        .expect("prepare");
    let per_node: Vec<(String, i64, i64)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .expect("query")
        .map(|r| r.expect("row"))
        .collect();
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
    errors
}

/// Panics listing the violations of [`stored_once_violations`], if any.
pub fn assert_stored_once(db: &Path, expected: &[MustBeStored], after: &str) {
    let errors = stored_once_violations(db, expected);
    assert!(
        errors.is_empty(),
        "{} violations after {after}, e.g.:\n{}",
        errors.len(),
        errors[..errors.len().min(20)].join("\n")
    );
}

/// Whether network-namespace tests can run: root and iproute2. Under CI (`CI=true`) a
/// missing one is a failure; elsewhere the test says why and skips.
pub fn netns_available(what: &str) -> bool {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"));
    let ip = Path::new("/usr/sbin/ip").exists() || Path::new("/sbin/ip").exists();
    if root && ip {
        return true;
    }
    let why = format!("{what} needs root and iproute2 (scripts/install-deps.sh --test)");
    assert!(std::env::var("CI").as_deref() != Ok("true"), "{why}");
    eprintln!("skipping: {why}");
    false
}

/// libfaketime's preload library (Debian package libfaketime), the multi-threaded variant
/// (the agent runs threads). Missing is a failure: scripts/install-deps.sh --test installs it.
pub fn require_libfaketime() -> PathBuf {
    let dirs = [
        "/usr/lib/x86_64-linux-gnu",
        "/usr/lib/aarch64-linux-gnu",
        "/usr/lib64",
        "/usr/lib",
    ];
    for d in dirs {
        let p = Path::new(d).join("faketime/libfaketimeMT.so.1");
        if p.is_file() {
            return p;
        }
    }
    panic!(
        "libfaketimeMT.so.1 not found: install the Debian package libfaketime \
         (scripts/install-deps.sh --test does it)"
    );
}

/// Starts Debian's `mosquitto` with `conf` (written to `dir/mosquitto.conf`; it must listen
/// on 127.0.0.1:`port`) and waits until it accepts connections.
pub fn start_mosquitto(dir: &Path, port: u16, conf: &str) -> Proc {
    let program = require_program("mosquitto", "mosquitto");
    let path = dir.join("mosquitto.conf");
    std::fs::write(&path, conf).expect("write mosquitto.conf");
    let proc = spawn(
        "mosquitto",
        &program,
        &["-c", path.to_str().expect("utf-8 path")],
        Stdio::null(),
    );
    wait_for("mosquitto listening", Duration::from_secs(10), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).ok()
    });
    proc
}

/// `mosquitto_pub` of one QoS 1 message; the process's output.
pub fn publish(port: u16, login: Option<(&str, &str, &str)>, topic: &str, payload: &str) -> Output {
    publish_with(port, None, login, topic, payload)
}

/// `mosquitto_pub` of one QoS 1 message, over TLS when `ca` is given; `login` is (client id,
/// user, password).
pub fn publish_with(
    port: u16,
    ca: Option<&Path>,
    login: Option<(&str, &str, &str)>,
    topic: &str,
    payload: &str,
) -> Output {
    let pubber = require_program("mosquitto_pub", "mosquitto-clients");
    let mut cmd = Command::new(pubber);
    cmd.args(["-h", "127.0.0.1", "-p", &port.to_string()]);
    if let Some(ca) = ca {
        cmd.arg("--cafile").arg(ca);
    }
    cmd.args(["-q", "1", "-t", topic, "-m", payload]);
    if let Some((client_id, user, password)) = login {
        cmd.args(["-i", client_id, "-u", user, "-P", password]);
    }
    cmd.output().expect("run mosquitto_pub")
}
