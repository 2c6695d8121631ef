//! The files of `deploy/` against the real binaries: both systemd units pass
//! `systemd-analyze verify` (pointed at the binaries just built, so their `ExecStart` is
//! checked too), the `validate` commands their `ExecStartPre` runs, the sd_notify messages
//! of `Type=notify`, and `deploy/install-agent.sh` run in a fresh Debian root (a
//! debootstrap chroot) installing an agent that the hub then shows online with metrics.
//!
//! Needs systemd-analyze (Debian `systemd`) and debootstrap (scripts/install-deps.sh
//! --test), root for the chroot, and Debian's mirror the first time: the debootstrapped
//! tree is cached in /var/cache/sitewatch-tests/bookworm-minbase (rebuilt when missing or
//! incomplete; `SITEWATCH_DEBIAN_MIRROR` picks another mirror).

mod common;

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

fn deploy_file(name: &str) -> String {
    let path = workspace().join("deploy").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Runs `cmd` to completion, killing it (and failing) after `timeout`.
fn run_bounded(what: &str, cmd: &mut Command, timeout: Duration) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    let mut out = child.stdout.take().expect("piped stdout");
    let mut err = child.stderr.take().expect("piped stderr");
    let out_reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let err_reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not finish within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Output {
        status,
        stdout: out_reader.join().unwrap_or_default(),
        stderr: err_reader.join().unwrap_or_default(),
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A unit of `deploy/` with its binaries replaced by the ones cargo just built.
fn unit_for_built_binaries(name: &str) -> String {
    deploy_file(name)
        .replace(
            "/usr/local/bin/sitewatch-agent",
            agent_bin().to_str().expect("utf-8 path"),
        )
        .replace(
            "/usr/local/bin/sitewatch-hub",
            hub_bin().to_str().expect("utf-8 path"),
        )
}

fn verify(analyze: &Path, units: &[PathBuf]) -> Output {
    run_bounded(
        "systemd-analyze verify",
        Command::new(analyze).arg("verify").args(units),
        Duration::from_secs(60),
    )
}

#[test]
fn systemd_units_pass_systemd_analyze_verify() {
    let analyze = require_program("systemd-analyze", "systemd");
    let dir = tempfile::tempdir().unwrap();
    let mut units = Vec::new();
    for name in ["sitewatch-agent.service", "sitewatch-hub.service"] {
        let unit = unit_for_built_binaries(name);
        assert!(
            unit.contains("\nType=notify\n"),
            "{name} is not Type=notify"
        );
        assert!(
            unit.contains(" validate --config "),
            "{name}: no ExecStartPre validate"
        );
        let path = dir.path().join(name);
        std::fs::write(&path, unit).unwrap();
        units.push(path);
    }
    let out = verify(&analyze, &units);
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "systemd-analyze verify: {}\n{}{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    // CAP_NET_RAW for the agent's ICMP scans only; the hub gets no capability.
    assert!(deploy_file("sitewatch-agent.service").contains("\nAmbientCapabilities=CAP_NET_RAW\n"));
    assert!(deploy_file("sitewatch-hub.service").contains("\nCapabilityBoundingSet=\n"));

    // The check is real: a misspelt key is reported, a missing binary fails.
    let typo = dir.path().join("typo.service");
    std::fs::write(
        &typo,
        unit_for_built_binaries("sitewatch-hub.service").replace("ProtectHome=", "ProtectHomme="),
    )
    .unwrap();
    let out = verify(&analyze, std::slice::from_ref(&typo));
    assert!(text(&out.stderr).contains("ProtectHomme"), "{out:?}");
    let missing = dir.path().join("missing.service");
    std::fs::write(
        &missing,
        deploy_file("sitewatch-hub.service").replace("/usr/local/bin/", "/nonexistent/"),
    )
    .unwrap();
    assert!(!verify(&analyze, &[missing]).status.success());
}

#[test]
fn validate_commands_of_exec_start_pre() {
    let dir = tempfile::tempdir().unwrap();
    let hub_toml = workspace().join("deploy/hub.toml");
    let out = run_bounded(
        "sitewatch-hub validate",
        Command::new(hub_bin())
            .args(["validate", "--config"])
            .arg(&hub_toml)
            .env("SITEWATCH_DATA_DIR", dir.path().join("data")),
        Duration::from_secs(30),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let summary = text(&out.stdout);
    assert!(
        summary.starts_with("config OK: ") && summary.lines().count() == 1,
        "{summary}"
    );
    assert!(
        !dir.path().join("data").exists(),
        "validate created the data directory"
    );

    let broken = dir.path().join("hub.toml");
    std::fs::write(&broken, "[retention]\nminute-days = 0\n").unwrap();
    let out = run_bounded(
        "sitewatch-hub validate (broken)",
        Command::new(hub_bin())
            .args(["validate", "--config"])
            .arg(&broken),
        Duration::from_secs(30),
    );
    assert_eq!(out.status.code(), Some(78));
    assert!(
        text(&out.stderr).contains("minute-days"),
        "{}",
        text(&out.stderr)
    );
    let tls = dir.path().join("tls.toml");
    std::fs::write(
        &tls,
        "[security]\ntls-listen = \"127.0.0.1:0\"\ntls-cert = \"/nonexistent.crt\"\n\
         tls-key = \"/nonexistent.key\"\n",
    )
    .unwrap();
    let out = run_bounded(
        "sitewatch-hub validate (missing certificate)",
        Command::new(hub_bin())
            .args(["validate", "--config"])
            .arg(&tls),
        Duration::from_secs(30),
    );
    assert_eq!(out.status.code(), Some(78), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("tls-cert"),
        "{}",
        text(&out.stderr)
    );

    let out = run_bounded(
        "sitewatch-agent validate",
        Command::new(agent_bin())
            .args(["validate", "--config"])
            .arg(workspace().join("deploy/agent.toml")),
        Duration::from_secs(30),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn install_script_carries_the_agent_unit_verbatim() {
    let script = deploy_file("install-agent.sh");
    let start = script
        .find("<<'UNIT'\n")
        .expect("install-agent.sh writes the unit from a heredoc")
        + "<<'UNIT'\n".len();
    let len = script[start..]
        .find("\nUNIT\n")
        .expect("end of the heredoc")
        + 1;
    assert_eq!(
        &script[start..start + len],
        deploy_file("sitewatch-agent.service"),
        "install-agent.sh's unit differs from deploy/sitewatch-agent.service: copy it over"
    );
    let out = run_bounded(
        "sh -n install-agent.sh",
        Command::new("sh")
            .arg("-n")
            .arg(workspace().join("deploy/install-agent.sh")),
        Duration::from_secs(10),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
}

/// A datagram socket standing in for systemd's `$NOTIFY_SOCKET`.
struct NotifySocket {
    _dir: tempfile::TempDir,
    path: PathBuf,
    sock: UnixDatagram,
}

impl NotifySocket {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let sock = UnixDatagram::bind(&path).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        Self {
            _dir: dir,
            path,
            sock,
        }
    }

    fn abstract_named(name: &str) -> Self {
        use std::os::linux::net::SocketAddrExt;
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let sock = UnixDatagram::bind_addr(&addr).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        Self {
            _dir: tempfile::tempdir().unwrap(),
            path: PathBuf::new(),
            sock,
        }
    }

    fn next(&self) -> String {
        let mut buf = [0u8; 512];
        // A signal to the test process (a child exiting) interrupts the wait: wait again.
        let n = loop {
            match self.sock.recv(&mut buf) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                other => break other.expect("no sd_notify message within 30 s"),
            }
        };
        text(&buf[..n])
    }
}

fn signal(pid: u32, sig: &str) {
    let status = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
}

fn wait_exit(proc: &mut Proc) -> std::process::ExitStatus {
    wait_for("process exit", Duration::from_secs(20), || {
        proc.child.try_wait().expect("wait")
    })
}

fn expect_reload_then_stop(notify: &NotifySocket, proc: &mut Proc) {
    signal(proc.pid(), "-HUP");
    let reloading = notify.next();
    assert!(
        reloading.starts_with("RELOADING=1\nMONOTONIC_USEC="),
        "{reloading}"
    );
    assert!(notify.next().starts_with("READY=1"));
    signal(proc.pid(), "-TERM");
    assert_eq!(notify.next(), "STOPPING=1");
    assert!(wait_exit(proc).success());
}

#[test]
fn hub_and_agent_tell_systemd_when_ready_reloading_and_stopping() {
    let notify = NotifySocket::new();
    let data = tempfile::tempdir().unwrap();
    let (mqtt, http) = (free_port(), free_port());
    let child = Command::new(hub_bin())
        .args(["--no-local-agent", "--mqtt-listen"])
        .arg(format!("127.0.0.1:{mqtt}"))
        .arg("--http-listen")
        .arg(format!("127.0.0.1:{http}"))
        .arg("--data-dir")
        .arg(data.path())
        .env("NOTIFY_SOCKET", &notify.path)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("start the hub");
    let mut hub = Proc {
        child,
        name: "sitewatch-hub".into(),
    };
    assert_eq!(notify.next(), "READY=1\nSTATUS=running");
    // READY means the dashboard answers and the MQTT client is subscribed.
    let health = get_json(&format!("http://127.0.0.1:{http}/healthz")).expect("/healthz");
    assert_eq!(health["mqtt_connected"], true, "{health}");
    expect_reload_then_stop(&notify, &mut hub);

    // The agent is ready once running, even with its broker down (it keeps reconnecting);
    // this time over an abstract socket (`@name`).
    let name = format!("sitewatch-test-{}", std::process::id());
    let notify = NotifySocket::abstract_named(&name);
    let child = Command::new(agent_bin())
        .args(["--site", "club", "--node", "pi", "--broker"])
        .arg(format!("mqtt://127.0.0.1:{}", free_port()))
        .env("NOTIFY_SOCKET", format!("@{name}"))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("start the agent");
    let mut agent = Proc {
        child,
        name: "sitewatch-agent".into(),
    };
    assert_eq!(notify.next(), "READY=1\nSTATUS=running");
    expect_reload_then_stop(&notify, &mut agent);
}

// ---- install-agent.sh in a fresh Debian root ----

/// Where the debootstrapped tree is kept between runs.
const DEBIAN_CACHE: &str = "/var/cache/sitewatch-tests/bookworm-minbase";
/// Written last into the cached tree: without it the tree is incomplete and rebuilt.
const COMPLETE_MARK: &str = ".sitewatch-tests-complete";

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

/// The cached Debian bookworm minbase root (with curl, which Raspberry Pi OS has), made
/// by debootstrap when missing or incomplete.
fn debian_root() -> PathBuf {
    let cache = PathBuf::from(DEBIAN_CACHE);
    let complete = cache.join(COMPLETE_MARK).is_file()
        && cache.join("usr/bin/curl").is_file()
        && cache.join("bin/sh").exists();
    if complete {
        return cache;
    }
    let debootstrap = require_program("debootstrap", "debootstrap");
    let parent = cache.parent().expect("cache parent");
    std::fs::create_dir_all(parent).unwrap();
    if cache.exists() {
        eprintln!("{DEBIAN_CACHE} is incomplete: building it again");
        std::fs::remove_dir_all(&cache).unwrap();
    }
    let building = parent.join(format!("bookworm-minbase.building-{}", std::process::id()));
    let mirror = std::env::var("SITEWATCH_DEBIAN_MIRROR")
        .unwrap_or_else(|_| "http://deb.debian.org/debian".to_owned());
    eprintln!("debootstrap bookworm (minbase + curl) from {mirror} into {DEBIAN_CACHE}, once");
    let started = Instant::now();
    let out = run_bounded(
        "debootstrap",
        Command::new(debootstrap)
            .args(["--variant=minbase", "--include=curl", "bookworm"])
            .arg(&building)
            .arg(&mirror),
        Duration::from_secs(900),
    );
    if !out.status.success() {
        let _ = std::fs::remove_dir_all(&building);
        panic!(
            "debootstrap failed ({}): {}\n{}",
            out.status,
            text(&out.stdout),
            text(&out.stderr)
        );
    }
    std::fs::write(
        building.join(COMPLETE_MARK),
        b"debootstrap --variant=minbase --include=curl bookworm\n",
    )
    .unwrap();
    std::fs::rename(&building, &cache).unwrap();
    eprintln!("debootstrap took {:?}", started.elapsed());
    cache
}

/// A throw-away copy of the Debian root with /proc and /sys mounted; unmounted and removed
/// when dropped (never removed while something is still mounted in it).
struct Chroot {
    dir: tempfile::TempDir,
    mounted: Vec<PathBuf>,
}

impl Chroot {
    fn new(template: &Path) -> Self {
        let parent = template.parent().expect("cache parent");
        let dir = tempfile::Builder::new()
            .prefix("chroot-")
            .tempdir_in(parent)
            .unwrap();
        let root = dir.path().join("root");
        let out = run_bounded(
            "cp -a (Debian root)",
            Command::new("cp").arg("-a").arg(template).arg(&root),
            Duration::from_secs(120),
        );
        assert!(out.status.success(), "cp -a: {}", text(&out.stderr));
        let mut chroot = Self {
            dir,
            mounted: Vec::new(),
        };
        for (fs, at) in [("proc", "proc"), ("sysfs", "sys")] {
            let target = chroot.root().join(at);
            let out = run_bounded(
                "mount",
                Command::new("mount").args(["-t", fs, fs]).arg(&target),
                Duration::from_secs(10),
            );
            assert!(out.status.success(), "mount {fs}: {}", text(&out.stderr));
            chroot.mounted.push(target);
        }
        chroot
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    /// `chroot ROOT /bin/sh -c SCRIPT` with a clean environment, bounded.
    fn sh(&self, script: &str, timeout: Duration) -> Output {
        run_bounded(script, &mut self.sh_command(script), timeout)
    }

    fn sh_command(&self, script: &str) -> Command {
        let mut cmd = Command::new("chroot");
        cmd.arg(self.root())
            .args(["/bin/sh", "-c", script])
            .env_clear()
            .env(
                "PATH",
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            )
            .env("HOME", "/root")
            .env("LANG", "C.UTF-8");
        cmd
    }
}

impl Drop for Chroot {
    fn drop(&mut self) {
        let mut still_mounted = false;
        for target in self.mounted.iter().rev() {
            let ok = Command::new("umount")
                .arg(target)
                .status()
                .is_ok_and(|s| s.success())
                || Command::new("umount")
                    .arg("--lazy")
                    .arg(target)
                    .status()
                    .is_ok_and(|s| s.success());
            still_mounted |= !ok;
        }
        if still_mounted {
            eprintln!(
                "cannot unmount under {}: left in place, remove it by hand",
                self.dir.path().display()
            );
            // Keep TempDir from deleting into a mounted /proc or /sys.
            let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().expect("temp dir"));
            let _ = dir.keep();
        }
    }
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o7777
}

#[test]
fn install_agent_sh_installs_a_working_agent_in_a_fresh_debian_root() {
    if !is_root() {
        let why = "the Debian chroot of install-agent.sh needs root";
        assert!(std::env::var("CI").as_deref() != Ok("true"), "{why}");
        eprintln!("skipping: {why}");
        return;
    }
    let started = Instant::now();
    let template = debian_root();
    let chroot = Chroot::new(&template);
    let root = chroot.root();

    // The hub serves the agent binary (this build, under the x86_64 name).
    let files = tempfile::tempdir().unwrap();
    let agents = files.path().join("agents");
    std::fs::create_dir(&agents).unwrap();
    std::os::unix::fs::symlink(
        agent_bin(),
        agents.join("sitewatch-agent-x86_64-unknown-linux-musl"),
    )
    .unwrap();
    let hub_toml = files.path().join("hub.toml");
    std::fs::write(
        &hub_toml,
        format!("[downloads]\nagent-dir = \"{}\"\n", agents.display()),
    )
    .unwrap();
    let hub_config = hub_toml.to_str().unwrap();
    let hub = start_hub_secure(&["--no-local-agent", "--config", hub_config]);
    let data = hub.data.path().to_str().unwrap();

    let out = run_bounded(
        "node install-link",
        Command::new(hub_bin()).args([
            "--config",
            hub_config,
            "--data-dir",
            data,
            "node",
            "install-link",
            "club-1",
            "pi-gate",
            "--hub-url",
            &hub.url(""),
            "--broker-url",
            &hub.broker_url(),
        ]),
        Duration::from_secs(30),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let printed = text(&out.stdout);
    let link = printed
        .split_whitespace()
        .find(|w| w.contains("/install/swi_"))
        .unwrap_or_else(|| panic!("no link in: {printed}"))
        .to_owned();
    // The command printed for the machine, run as is inside the chroot.
    let command = printed
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("curl "))
        .unwrap_or_else(|| panic!("no curl command in: {printed}"))
        .to_owned();
    let out = chroot.sh(&command, Duration::from_secs(120));
    let log = text(&out.stderr);
    eprintln!("install-agent.sh:\n{log}");
    assert!(out.status.success(), "install-agent.sh failed: {log}");
    assert!(log.contains("systemd is not running here"), "{log}");

    let bin = root.join("usr/local/bin/sitewatch-agent");
    assert_eq!(mode(&bin), 0o755);
    let toml_path = root.join("etc/sitewatch/agent.toml");
    assert_eq!(mode(&toml_path), 0o644);
    let toml = std::fs::read_to_string(&toml_path).unwrap();
    assert!(toml.contains("\nsite = \"club-1\"\n") && toml.contains("\nnode = \"pi-gate\"\n"));
    assert!(toml.contains(&format!("\nbroker = \"{}\"\n", hub.broker_url())));
    let env_path = root.join("etc/sitewatch/agent.env");
    assert_eq!(mode(&env_path), 0o600);
    let env = std::fs::read_to_string(&env_path).unwrap();
    let keys: Vec<&str> = env
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, _)| k)
        .collect();
    assert_eq!(
        keys,
        [
            "SITEWATCH_MQTT_USERNAME",
            "SITEWATCH_MQTT_PASSWORD",
            "SITEWATCH_SIGNING_KEY"
        ]
    );
    // The password and the key (the user name, not secret, is in the file's examples).
    for line in env.lines().skip(1) {
        let secret = line.split_once('=').map(|(_, v)| v).unwrap_or_default();
        assert!(
            secret.len() >= 20 && !toml.contains(secret),
            "agent.toml holds a secret of agent.env"
        );
    }
    assert_eq!(
        std::fs::read_to_string(root.join("etc/systemd/system/sitewatch-agent.service")).unwrap(),
        deploy_file("sitewatch-agent.service")
    );

    // The link worked once.
    let out = chroot.sh(
        &format!("curl -fsS -X POST {link}/agent.env"),
        Duration::from_secs(30),
    );
    assert!(!out.status.success(), "a used link gave credentials again");

    // What the unit would run, as an unprivileged user (the unit's is dynamic): the secrets
    // from agent.env (read as root, like systemd's EnvironmentFile=), the config it wrote.
    let mut run = chroot.sh_command(
        "set -a; . /etc/sitewatch/agent.env; set +a; \
         exec setpriv --reuid=65534 --regid=65534 --clear-groups \
         /usr/local/bin/sitewatch-agent --config /etc/sitewatch/agent.toml",
    );
    let child = run
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the installed agent");
    let agent = Proc {
        child,
        name: "installed sitewatch-agent".into(),
    };
    // Signed telemetry is required (start_hub_secure): online means the issued
    // credentials work.
    wait_for(
        "club-1/pi-gate online with metrics",
        Duration::from_secs(60),
        || {
            hub.node("club-1", "pi-gate")
                .filter(|n| n["status"] == "online" && n["metrics"]["cpu_pct"].is_number())
        },
    );
    wait_for("a stored cpu point", Duration::from_secs(30), || {
        hub.get("/api/v1/nodes/club-1/pi-gate/series?metric=cpu.usage_pct&from=-1h")
            .filter(|s| {
                s["series"][0]["points"]
                    .as_array()
                    .is_some_and(|p| !p.is_empty())
            })
    });
    drop(agent);

    // --uninstall removes everything it installed.
    std::fs::copy(
        workspace().join("deploy/install-agent.sh"),
        root.join("root/install-agent.sh"),
    )
    .unwrap();
    let out = chroot.sh(
        "sh /root/install-agent.sh --uninstall",
        Duration::from_secs(60),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("node revoke club-1 pi-gate"),
        "{}",
        text(&out.stderr)
    );
    for gone in [
        "usr/local/bin/sitewatch-agent",
        "etc/sitewatch",
        "etc/systemd/system/sitewatch-agent.service",
    ] {
        assert!(!root.join(gone).exists(), "{gone} is still there");
    }
    eprintln!("install-agent.sh acceptance took {:?}", started.elapsed());
}
