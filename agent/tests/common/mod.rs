//! Test harness for the agent binary: a Mosquitto broker on free loopback ports with a
//! `mosquitto_sub` watching `sitewatch/v1/#`, the agent started from a config file, signals,
//! and waiting with a deadline. Every process started here is killed (by its own PID)
//! when its guard drops.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A child process killed when dropped.
pub struct Guard(pub Child);

impl Guard {
    pub fn spawn(cmd: &mut Command) -> Self {
        Self(
            cmd.spawn()
                .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}")),
        )
    }

    /// Sends a signal (`TERM`, `HUP`, …) with `kill(1)`.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([format!("-{name}"), self.0.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} failed");
    }

    /// Waits for the process to exit, at most `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> std::process::ExitStatus {
        wait_for("the process to exit", timeout, || {
            self.0.try_wait().ok().flatten()
        })
    }

    /// Its stderr, line by line (it must have been spawned with piped stderr).
    pub fn stderr_lines(&mut self) -> mpsc::Receiver<String> {
        lines(self.0.stderr.take().expect("stderr not piped"))
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Lines of a pipe, read on a thread.
pub fn lines(out: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free loopback port")
}

/// Polls `f` every 100 ms until it returns Some, or panics after `timeout`.
pub fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits for a line containing `needle` on `rx`.
pub fn wait_line(rx: &mpsc::Receiver<String>, needle: &str, timeout: Duration) -> String {
    wait_for(needle, timeout, || {
        rx.try_iter().find(|l| l.contains(needle))
    })
}

/// A program of a Debian package, in PATH or the sbin directories; a missing one fails the
/// test naming the package to install.
pub fn require_program(name: &str, package: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/local/sbin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "{name} not found: this test needs the Debian package {package} \
                 (apt-get install {package})"
            )
        })
}

/// The agent binary with a clean environment, logging at `info` to stderr, stdout ignored.
pub fn agent(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sitewatch-agent"));
    for var in [
        "SITEWATCH_CONFIG",
        "SITEWATCH_BROKER",
        "SITEWATCH_SITE",
        "SITEWATCH_NODE",
        "SITEWATCH_MQTT_USERNAME",
        "SITEWATCH_MQTT_PASSWORD",
    ] {
        cmd.env_remove(var);
    }
    cmd.args(args).env("RUST_LOG", "info").stdout(Stdio::null());
    cmd
}

pub fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

/// Mosquitto on a free loopback port open to anonymous clients, plus `extra` config lines
/// (more listeners, each with its own security settings: `per_listener_settings` is on),
/// and `mosquitto_sub -v` on `sitewatch/v1/#` through the first listener.
pub struct Mosquitto {
    pub port: u16,
    published: mpsc::Receiver<String>,
    /// Every line read so far.
    seen: std::cell::RefCell<Vec<String>>,
    _sub: Guard,
    _broker: Guard,
}

impl Mosquitto {
    pub fn start(dir: &Path, extra: &str) -> Self {
        let mosquitto = require_program("mosquitto", "mosquitto");
        let sub = require_program("mosquitto_sub", "mosquitto-clients");
        let port = free_port();
        let conf = dir.join(format!("mosquitto-{port}.conf"));
        std::fs::write(
            &conf,
            format!(
                "per_listener_settings true\nuser root\npersistence false\n\
                 listener {port} 127.0.0.1\nallow_anonymous true\n{extra}"
            ),
        )
        .expect("write mosquitto.conf");
        let broker = Guard::spawn(
            Command::new(&mosquitto)
                .arg("-c")
                .arg(&conf)
                .stderr(Stdio::null()),
        );
        wait_for("mosquitto listening", Duration::from_secs(10), || {
            TcpStream::connect(("127.0.0.1", port)).ok()
        });
        let mut sub = Guard::spawn(
            Command::new(&sub)
                .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-V", "mqttv311"])
                .args(["-t", "sitewatch/v1/#", "-v"])
                .stdout(Stdio::piped()),
        );
        let published = lines(sub.0.stdout.take().expect("piped stdout"));
        // Subscribed once it sees a retained probe.
        let pub_bin = require_program("mosquitto_pub", "mosquitto-clients");
        let probe = Command::new(pub_bin)
            .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-V", "mqttv311"])
            .args(["-t", "sitewatch/v1/_probe", "-m", "ready", "-r"])
            .status()
            .expect("run mosquitto_pub");
        assert!(probe.success(), "mosquitto_pub failed");
        wait_line(&published, "_probe ready", Duration::from_secs(10));
        Self {
            port,
            published,
            seen: Default::default(),
            _sub: sub,
            _broker: broker,
        }
    }

    pub fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }

    /// Waits for a published line (`topic payload`) containing `needle`, read after the
    /// previous wait.
    pub fn wait(&self, needle: &str, timeout: Duration) -> String {
        wait_for(needle, timeout, || {
            let mut seen = self.seen.borrow_mut();
            for line in self.published.try_iter() {
                let found = line.contains(needle);
                seen.push(line);
                if found {
                    return seen.last().cloned();
                }
            }
            None
        })
    }

    /// Every line published so far (since the subscriber started).
    pub fn all_seen(&self) -> Vec<String> {
        let mut seen = self.seen.borrow_mut();
        seen.extend(self.published.try_iter());
        seen.clone()
    }
}
