//! Test harness: starts the real binaries on free loopback ports, talks to the HTTP API,
//! waits on conditions with a deadline. Every process started here is killed (by its own
//! PID, through `Child`) when its guard drops.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
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
    let mqtt_port = free_port();
    let http_port = free_port();
    let mqtt = format!("127.0.0.1:{mqtt_port}");
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
    let mut child = Command::new(agent_bin())
        .arg("--config")
        .arg(config)
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
