//! The LAN scanner against the network-namespace lab of `scripts/lab.sh`: the real agent
//! binary runs inside the lab's scanner namespace (`lab-scan`, no route out), so every
//! address it can reach is a lab host.
//!
//! Needs root, iproute2, python3, setpriv (util-linux) and Mosquitto. Without them the lab
//! tests are skipped with a note, except under CI (`CI=true`), where that is a failure.
//! The lab is torn down when each test ends, passed or failed ([`Lab`]'s `Drop`); tests
//! that use it take turns ([`LAB_LOCK`]).

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use common::{Guard, lines, wait_for, wait_line};
use sitewatch_proto::{Metrics, Scan, ScanHost};

const LAB_CIDR: &str = "10.231.0.0/24";
const SCANNER_IP: &str = "10.231.0.1";
const SCANNER_MAC: &str = "02:5a:57:0a:e7:01";
/// Small lab: quick to build, every class present.
const PING: usize = 20;
const ARP_ONLY: usize = 8;
const LATE: usize = 4;

static LAB_LOCK: Mutex<()> = Mutex::new(());

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_owned()
}

fn lab_sh() -> PathBuf {
    repo().join("scripts/lab.sh")
}

/// Whether the lab can be built here. Under CI a missing prerequisite fails the test.
fn lab_available() -> bool {
    let mut missing = Vec::new();
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        missing.push("root (network namespaces)".to_owned());
    }
    for (program, package) in [
        ("ip", "iproute2"),
        ("python3", "python3"),
        ("setpriv", "util-linux"),
        ("mosquitto", "mosquitto"),
        ("mosquitto_sub", "mosquitto-clients"),
    ] {
        let found = Command::new("sh")
            .args([
                "-c",
                &format!("command -v {program} || test -x /usr/sbin/{program}"),
            ])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !found {
            missing.push(format!("{program} (Debian package {package})"));
        }
    }
    if missing.is_empty() {
        return true;
    }
    let why = format!(
        "the scanner lab needs {} — run as root after scripts/install-deps.sh --test",
        missing.join(", ")
    );
    assert!(std::env::var("CI").as_deref() != Ok("true"), "{why}");
    eprintln!("skipping: {why}");
    false
}

/// One lab host, from `lab.sh hosts`.
#[derive(Debug, Clone)]
struct LabHost {
    ip: String,
    mac: String,
    class: String,
    ns: String,
}

/// The lab, torn down when dropped.
struct Lab {
    hosts: Vec<LabHost>,
    _turn: MutexGuard<'static, ()>,
}

impl Lab {
    fn up() -> Self {
        let turn = LAB_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let out = Command::new(lab_sh())
            .args(["up", "--hosts-ping", &PING.to_string()])
            .args(["--hosts-arp-only", &ARP_ONLY.to_string()])
            .args(["--hosts-late", &LATE.to_string()])
            .output()
            .expect("run scripts/lab.sh up");
        let mut lab = Self {
            hosts: Vec::new(),
            _turn: turn,
        };
        assert!(
            out.status.success(),
            "lab.sh up failed: {}",
            text(&out.stderr)
        );
        let out = Command::new(lab_sh())
            .arg("hosts")
            .output()
            .expect("lab.sh hosts");
        let hosts = text(&out.stdout)
            .lines()
            .map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                LabHost {
                    ip: f[0].into(),
                    mac: f[1].into(),
                    class: f[2].into(),
                    ns: f[3].into(),
                }
            })
            .collect::<Vec<_>>();
        assert_eq!(hosts.len(), PING + ARP_ONLY + LATE);
        lab.hosts = hosts;
        lab
    }

    /// A command run inside the scanner namespace.
    fn exec(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", "lab-scan"]).arg(program);
        cmd
    }

    fn host(&self, ip: &str) -> &LabHost {
        self.hosts
            .iter()
            .find(|h| h.ip == ip)
            .unwrap_or_else(|| panic!("{ip} is no lab host"))
    }

    fn icmp_out_echos(&self) -> u64 {
        let out = self
            .exec("cat")
            .arg("/proc/net/snmp")
            .output()
            .expect("read snmp");
        let snmp = text(&out.stdout);
        let mut icmp = snmp.lines().filter(|l| l.starts_with("Icmp:"));
        let (names, values) = (icmp.next().unwrap(), icmp.next().unwrap());
        let col = names
            .split_whitespace()
            .position(|n| n == "OutEchos")
            .unwrap();
        values.split_whitespace().nth(col).unwrap().parse().unwrap()
    }

    fn set_ping_group_range(&self, range: &str) {
        let status = self
            .exec("sh")
            .args([
                "-c",
                &format!("echo '{range}' > /proc/sys/net/ipv4/ping_group_range"),
            ])
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = Command::new(lab_sh()).arg("down").output();
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn parse_scan(out: &Output) -> Scan {
    assert!(
        out.status.success(),
        "scan failed ({:?}): {}",
        out.status,
        text(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not a scan payload ({e}): {}", text(&out.stdout)))
}

/// Checks a scan against the lab: every host with its MAC and how it showed itself, the
/// scanner itself, nothing else.
fn check_hosts(lab: &Lab, scan: &Scan) -> BTreeMap<String, ScanHost> {
    let found: BTreeMap<String, ScanHost> = scan
        .hosts
        .iter()
        .map(|h| (h.ip.clone(), h.clone()))
        .collect();
    let mut expected: Vec<&str> = lab.hosts.iter().map(|h| h.ip.as_str()).collect();
    expected.push(SCANNER_IP);
    let mut got: Vec<&str> = found.keys().map(String::as_str).collect();
    expected.sort();
    got.sort();
    assert_eq!(got, expected, "hosts found vs lab hosts");
    let sorted: Vec<&str> = scan.hosts.iter().map(|h| h.ip.as_str()).collect();
    let mut by_address = scan.hosts.clone();
    by_address.sort_by_key(|h| h.ip.parse::<std::net::Ipv4Addr>().unwrap());
    assert_eq!(
        sorted,
        by_address.iter().map(|h| h.ip.as_str()).collect::<Vec<_>>(),
        "hosts sorted by address"
    );
    for h in &lab.hosts {
        let f = &found[&h.ip];
        assert_eq!(f.mac.as_deref(), Some(h.mac.as_str()), "MAC of {h:?}");
        let how = match h.class.as_str() {
            "arp-only" => "arp",
            _ => "icmp",
        };
        assert_eq!(
            f.found_by.first().map(String::as_str),
            Some(how),
            "{h:?}: {f:?}"
        );
        match h.class.as_str() {
            "late" => assert!(f.rtt_ms.is_some_and(|r| r >= 190.0), "{h:?}: {f:?}"),
            "ping" => assert!(f.rtt_ms.is_some_and(|r| r < 150.0), "{h:?}: {f:?}"),
            _ => assert_eq!(f.rtt_ms, None, "{h:?}: {f:?}"),
        }
    }
    assert_eq!(found[SCANNER_IP].mac.as_deref(), Some(SCANNER_MAC));
    found
}

#[test]
fn the_scan_finds_every_lab_host_with_its_mac_and_nothing_else() {
    if !lab_available() {
        return;
    }
    let lab = Lab::up();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "site = \"lab\"\n[scan]\nnetworks = [\"{LAB_CIDR}\"]\nreverse-dns = true\n\
             tcp-ports = [22, 8080]\noui-file = \"{}\"\n",
            repo().join("agent/data/oui.txt").display()
        ),
    )
    .unwrap();
    // One lab host listens on 8080 (a bounded one-shot listener).
    let web = lab.host(&lab.hosts[0].ip).clone();
    let mut listener = Guard::spawn(
        Command::new("ip")
            .args(["netns", "exec", &web.ns, "python3", "-c"])
            .arg(
                "import socket,sys,time\ns=socket.socket()\ns.bind(('0.0.0.0',8080))\n\
                 s.listen(16)\nprint('listening',flush=True)\ntime.sleep(60)",
            )
            .stdout(Stdio::piped()),
    );
    let ready = lines(listener.0.stdout.take().unwrap());
    wait_line(&ready, "listening", Duration::from_secs(10));

    let echoes_before = lab.icmp_out_echos();
    let out = lab
        .exec(env!("CARGO_BIN_EXE_sitewatch-agent"))
        .args(["scan", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let scan = parse_scan(&out);
    let echoes = lab.icmp_out_echos() - echoes_before;

    assert_eq!(scan.networks, [LAB_CIDR]);
    assert_eq!(scan.seq, 1);
    let found = check_hosts(&lab, &scan);
    // One echo per address of the /24 and not one more: no retries were needed (every
    // silent address had a neighbour entry) and nothing outside the lab was pinged.
    assert_eq!(echoes, 254, "echo requests sent by the scanner namespace");
    for h in &lab.hosts {
        let f = &found[&h.ip];
        let vendor = match h.class.as_str() {
            "ping" => Some("Raspberry Pi Foundation"),
            "arp-only" => Some("Raspberry Pi Trading Ltd"),
            _ => None,
        };
        assert_eq!(f.vendor.as_deref(), vendor, "{h:?}");
        assert_eq!(f.hostname.as_deref(), Some(h.ns.as_str()), "{h:?}");
        if h.ip == web.ip {
            assert_eq!(f.open_ports, [8080]);
            assert_eq!(f.found_by, ["icmp", "tcp"]);
        } else {
            assert!(f.open_ports.is_empty(), "{f:?}");
        }
    }
}

#[test]
fn without_privilege_one_message_says_how_to_grant_it_and_unprivileged_icmp_works() {
    if !lab_available() {
        return;
    }
    let lab = Lab::up();
    // A copy nobody may run (target directories can sit under a private home).
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("sitewatch-agent");
    std::fs::copy(env!("CARGO_BIN_EXE_sitewatch-agent"), &bin).unwrap();
    let chmod = Command::new("chmod")
        .arg("755")
        .arg(dir.path())
        .arg(&bin)
        .status()
        .unwrap();
    assert!(chmod.success());
    let as_nobody = || {
        let mut cmd = lab.exec("setpriv");
        cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(&bin)
            .args(["scan", "--network", LAB_CIDR])
            .env_remove("SITEWATCH_CONFIG")
            .current_dir(dir.path());
        cmd
    };

    // No CAP_NET_RAW (setpriv drops it with the uid) and ping_group_range excludes everyone.
    lab.set_ping_group_range("1 0");
    let out = as_nobody().output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert_eq!(
        stderr.lines().count(),
        1,
        "one message, not a stack: {stderr}"
    );
    for needle in [
        "cannot ping",
        "CAP_NET_RAW",
        "setcap cap_net_raw+ep",
        "AmbientCapabilities=CAP_NET_RAW",
        "net.ipv4.ping_group_range",
        "group 65534",
    ] {
        assert!(stderr.contains(needle), "{needle:?} missing from: {stderr}");
    }
    assert!(out.stdout.is_empty());

    // Unprivileged ICMP (a datagram socket) once the group is in the range.
    lab.set_ping_group_range("65534 65534");
    let out = as_nobody().output().unwrap();
    lab.set_ping_group_range("1 0");
    check_hosts(&lab, &parse_scan(&out));
}

#[test]
fn a_slash_16_is_refused_without_allow_large() {
    // Refused before any packet: no lab needed.
    let out = Command::new(env!("CARGO_BIN_EXE_sitewatch-agent"))
        .args(["scan", "--network", "10.99.0.0/16"])
        .env_remove("SITEWATCH_CONFIG")
        .current_dir(std::env::temp_dir())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("`scan.networks`: 10.99.0.0/16 has 65536 addresses")
            && stderr.contains("allow-large = true"),
        "{stderr}"
    );

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("agent.toml");
    std::fs::write(
        &config,
        "site = \"lab\"\n[scan]\nnetworks = [\"10.99.0.0/16\"]\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_sitewatch-agent"))
        .args(["validate", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78));
    assert!(
        text(&out.stderr).contains("allow-large"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn the_agent_publishes_scans_and_probe_latencies() {
    if !lab_available() {
        return;
    }
    let lab = Lab::up();
    let dir = tempfile::tempdir().unwrap();
    // Mosquitto and its subscriber live in the scanner namespace too (its own loopback).
    let conf = dir.path().join("mosquitto.conf");
    std::fs::write(
        &conf,
        "user root\npersistence false\nlistener 1883 127.0.0.1\nallow_anonymous true\n",
    )
    .unwrap();
    let _broker = Guard::spawn(
        lab.exec("mosquitto")
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    let mut sub = wait_for("mosquitto in lab-scan", Duration::from_secs(10), || {
        let mut sub = Guard::spawn(
            lab.exec("mosquitto_sub")
                .args([
                    "-h",
                    "127.0.0.1",
                    "-V",
                    "mqttv311",
                    "-t",
                    "sitewatch/v1/#",
                    "-v",
                ])
                .stdout(Stdio::piped())
                .stderr(Stdio::null()),
        );
        std::thread::sleep(Duration::from_millis(300));
        matches!(sub.0.try_wait(), Ok(None)).then_some(sub)
    });
    let published = lines(sub.0.stdout.take().unwrap());

    let late = lab
        .hosts
        .iter()
        .find(|h| h.class == "late")
        .unwrap()
        .ip
        .clone();
    let config = dir.path().join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "site = \"lab\"\nnode = \"scanner\"\nbroker = \"mqtt://127.0.0.1:1883\"\n\
             heartbeat-interval-s = 1\nmetrics-interval-s = 2\n\
             [scan]\nnetworks = [\"{LAB_CIDR}\"]\ninterval-s = 10\n\
             [probes]\ntargets = [\"gateway\", \"10.231.0.2\", \"{late}\"]\ncount = 3\n\
             interval-ms = 100\ntimeout-ms = 500\n"
        ),
    )
    .unwrap();
    let _agent = Guard::spawn(
        lab.exec(env!("CARGO_BIN_EXE_sitewatch-agent"))
            .arg("--config")
            .arg(&config)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );

    let payload = |line: String| line.split_once(' ').map(|(_, p)| p.to_owned()).unwrap();
    let line = wait_line(
        &published,
        "sitewatch/v1/lab/scanner/scan ",
        Duration::from_secs(30),
    );
    let scan: Scan = serde_json::from_str(&payload(line)).unwrap();
    assert!(
        !scan.session.is_empty() && scan.seq > 0,
        "numbered: {scan:?}"
    );
    check_hosts(&lab, &scan);

    // Probes: no default gateway in the lab, so only the two addresses are probed.
    let metrics: Metrics = wait_for("metrics with probes", Duration::from_secs(20), || {
        let line = wait_line(
            &published,
            "sitewatch/v1/lab/scanner/metrics ",
            Duration::from_secs(10),
        );
        let m: Metrics = serde_json::from_str(&payload(line)).unwrap();
        (!m.probes.is_empty()).then_some(m)
    });
    let probes: Vec<(&str, &str, u32, u32)> = metrics
        .probes
        .iter()
        .map(|p| (p.target.as_str(), p.ip.as_str(), p.sent, p.received))
        .collect();
    assert_eq!(
        probes,
        [
            ("10.231.0.2", "10.231.0.2", 3, 3),
            (late.as_str(), late.as_str(), 3, 3)
        ]
    );
    let slow = &metrics.probes[1];
    assert!(slow.rtt_min_ms.is_some_and(|r| r >= 190.0), "{slow:?}");
    assert_eq!(slow.loss_pct, 0.0);
    assert!(metrics.probes[0].jitter_ms.is_some());
}
