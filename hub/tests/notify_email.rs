//! E-mail notifier against a real SMTP server: Debian's aiosmtpd (`python3 -m aiosmtpd`)
//! started by the test on a free loopback port, plain, with STARTTLS and with implicit TLS
//! (a test CA made by `openssl`). A small handler class prints each received message,
//! decoded by Python's `email` package, as one JSON line; the test asserts what a user
//! would read: subject, body, sender and recipients.

mod common;
#[path = "../../agent/tests/support/pki.rs"]
mod pki;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::{Proc, free_port, require_program, wait_for};
use serde_json::Value;
use sitewatch_hub::alert::{AlertsConfig, Engine, Notification, NotificationKind};
use sitewatch_hub::notify::{self, Dispatcher, NotifierConfig};
use sitewatch_proto::payload::Temperature;
use sitewatch_proto::{Metrics, NodeId, SiteId};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// aiosmtpd handler: one JSON line per message on stdout.
const CAPTURE_PY: &str = r#"
import email, json
from email import policy

class Capture:
    async def handle_DATA(self, server, session, envelope):
        msg = email.message_from_bytes(envelope.original_content or envelope.content, policy=policy.default)
        body = msg.get_body(preferencelist=("plain",))
        print(json.dumps({
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "from": str(msg["from"]),
            "subject": str(msg["subject"]),
            "body": body.get_content() if body is not None else "",
            "tls": session.ssl is not None
                or server.transport.get_extra_info("ssl_object") is not None,
            "login": session.auth_data.login.decode() if session.authenticated else None,
        }), flush=True)
        return "250 Message accepted for delivery"
"#;

/// aiosmtpd with AUTH (which its command line cannot enable): PLAIN/LOGIN as hub/s3cret
/// required, over a plain connection (`auth_require_tls=False`, loopback only).
const AUTH_SERVER_PY: &str = r#"
import sys, threading
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from sw_capture import Capture

def check(server, session, envelope, mechanism, data):
    ok = isinstance(data, LoginPassword) and data.login == b"hub" and data.password == b"s3cret"
    return AuthResult(success=ok, handled=False, auth_data=data)

c = Controller(Capture(), hostname="127.0.0.1", port=int(sys.argv[1]), authenticator=check,
               auth_required=True, auth_require_tls=False)
c.start()
threading.Event().wait()
"#;

/// A Python 3 that has aiosmtpd (Debian's python3-aiosmtpd is for /usr/bin/python3).
fn python_with_aiosmtpd() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let candidates = std::env::split_paths(&path)
        .map(|d| d.join("python3"))
        .chain([PathBuf::from("/usr/bin/python3")]);
    for p in candidates.filter(|p| p.is_file()) {
        let ok = Command::new(&p)
            .args(["-c", "import aiosmtpd"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return p;
        }
    }
    panic!(
        "no python3 with aiosmtpd: install the Debian package python3-aiosmtpd \
         (scripts/install-deps.sh --test does it)"
    );
}

/// A running aiosmtpd and the messages it received.
struct Smtp {
    _proc: Proc,
    port: u16,
    messages: mpsc::Receiver<Value>,
    _dir: tempfile::TempDir,
}

impl Smtp {
    /// Starts aiosmtpd on a free port and waits until it listens.
    fn start(extra: &[&str]) -> Self {
        let smtp = Self::launch(free_port(), extra);
        wait_for("aiosmtpd listening", Duration::from_secs(15), || {
            std::net::TcpStream::connect(("127.0.0.1", smtp.port)).ok()
        });
        smtp
    }

    fn launch(port: u16, extra: &[&str]) -> Self {
        let listen = format!("127.0.0.1:{port}");
        let mut args = vec![
            "-m",
            "aiosmtpd",
            "-n",
            "-l",
            &listen,
            "-c",
            "sw_capture.Capture",
        ];
        args.extend_from_slice(extra);
        Self::run_python(port, &args)
    }

    /// aiosmtpd requiring authentication, on a free port.
    fn start_with_auth() -> Self {
        let port = free_port();
        let smtp = Self::run_python(port, &["sw_auth_server.py", &port.to_string()]);
        wait_for("aiosmtpd listening", Duration::from_secs(15), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).ok()
        });
        smtp
    }

    fn run_python(port: u16, args: &[&str]) -> Self {
        let python = python_with_aiosmtpd();
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("sw_capture.py"), CAPTURE_PY).expect("write handler");
        std::fs::write(dir.path().join("sw_auth_server.py"), AUTH_SERVER_PY).expect("write server");
        let mut child = Command::new(&python)
            .args(args)
            .current_dir(dir.path())
            .env("PYTHONPATH", dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start aiosmtpd: {e}"));
        let out = child.stdout.take().expect("piped stdout");
        let (tx, messages) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str::<Value>(&line)
                    && tx.send(v).is_err()
                {
                    break;
                }
            }
        });
        Self {
            _proc: Proc {
                child,
                name: "aiosmtpd".into(),
            },
            port,
            messages,
            _dir: dir,
        }
    }

    fn next(&self) -> Value {
        self.messages
            .recv_timeout(Duration::from_secs(20))
            .expect("no e-mail reached the SMTP server within 20 s")
    }

    fn nothing_more(&self) {
        assert!(
            self.messages
                .recv_timeout(Duration::from_millis(500))
                .is_err(),
            "an extra e-mail arrived"
        );
    }
}

fn notifier(toml_text: &str) -> NotifierConfig {
    toml::from_str(toml_text).unwrap_or_else(|e| panic!("{e}\n{toml_text}"))
}

fn start(cfgs: &[NotifierConfig]) -> (Dispatcher, TaskTracker, CancellationToken) {
    let tracker = TaskTracker::new();
    let stop = CancellationToken::new();
    let d = notify::spawn(cfgs, &Default::default(), None, &tracker, stop.clone())
        .expect("notifiers start");
    (d, tracker, stop)
}

fn temp(c: f64) -> Metrics {
    Metrics {
        temperatures: vec![Temperature {
            label: "cpu_thermal".into(),
            temp_c: c,
            crit_c: None,
        }],
        ..Default::default()
    }
}

/// A Pi at club-1 heats up past 75 °C for a minute, then cools down: the engine's
/// firing and resolved notifications.
fn overheating() -> (Notification, Notification) {
    let mut e = Engine::new(AlertsConfig::default().compile().expect("built-in rules"));
    let site = SiteId::new("club-1").expect("id");
    let node = NodeId::new("pi-gate").expect("id");
    let t0 = 1_733_322_862_000;
    e.on_metrics(&site, &node, &temp(79.0), t0);
    let firing = e.on_metrics(&site, &node, &temp(80.5), t0 + 60_000);
    let resolved = e.on_metrics(&site, &node, &temp(60.0), t0 + 180_000);
    let (mut f, mut r) = (firing.notifications, resolved.notifications);
    assert_eq!(f.len(), 1);
    assert_eq!(r.len(), 1);
    let (f, r) = (f.remove(0), r.remove(0));
    assert_eq!(
        (f.kind, r.kind),
        (NotificationKind::Firing, NotificationKind::Resolved)
    );
    (f, r)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_relay_receives_one_english_mail_per_notification() {
    let smtp = Smtp::start(&[]);
    let cfg = notifier(&format!(
        "name = \"ops\"\nkind = \"email\"\nsmtp-host = \"127.0.0.1\"\nsmtp-port = {}\n\
         smtp-tls = \"none\"\nfrom = \"sitewatch <hub@example.org>\"\n\
         to = [\"ops@example.org\", \"boss@example.org\"]\n",
        smtp.port
    ));
    let (d, tracker, stop) = start(&[cfg]);
    let (firing, resolved) = overheating();

    d.dispatch(&firing);
    let m = smtp.next();
    assert_eq!(m["mail_from"], "hub@example.org");
    assert_eq!(
        m["rcpt_tos"],
        serde_json::json!(["ops@example.org", "boss@example.org"])
    );
    assert_eq!(m["from"], "sitewatch <hub@example.org>");
    assert_eq!(
        m["subject"],
        "[sitewatch CRITICAL] club-1/pi-gate: temperature cpu_thermal 80.5 °C > 75 °C"
    );
    let body = m["body"].as_str().expect("body");
    for line in [
        "Status: FIRING",
        "Severity: critical",
        "Site: club-1",
        "Node: pi-gate",
        "Rule: temperature (metric)",
        "Value: 80.5 °C (threshold > 75 °C)",
        "Since: 2024-12-04 14:35:22 UTC",
        "Time: 2024-12-04 14:35:22 UTC",
    ] {
        assert!(
            body.lines().any(|l| l == line),
            "missing {line:?} in:\n{body}"
        );
    }
    assert_eq!(m["tls"], false);

    d.dispatch(&resolved);
    let m = smtp.next();
    assert_eq!(
        m["subject"],
        "[sitewatch RESOLVED] club-1/pi-gate: temperature cpu_thermal 60 °C"
    );
    let body = m["body"].as_str().expect("body");
    for line in [
        "Status: RESOLVED",
        "Value: 60 °C (threshold > 75 °C)",
        "Resolved at: 2024-12-04 14:37:22 UTC",
    ] {
        assert!(
            body.lines().any(|l| l == line),
            "missing {line:?} in:\n{body}"
        );
    }
    smtp.nothing_more();
    assert_eq!(d.stats()[0].sent, 2);
    stop.cancel();
    tracker.close();
    tracker.wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starttls_and_implicit_tls_in_french() {
    let openssl = require_program("openssl", "openssl");
    let dir = tempfile::tempdir().expect("temp dir");
    let pki = pki::Pki::generate(&openssl, dir.path());
    let (cert, key) = (path(&pki.server_cert), path(&pki.server_key));
    let starttls = Smtp::start(&["--tlscert", &cert, "--tlskey", &key]);
    let implicit = Smtp::start(&["--smtpscert", &cert, "--smtpskey", &key]);
    let cfg = |name: &str, port: u16, mode: &str| {
        notifier(&format!(
            "name = \"{name}\"\nkind = \"email\"\nlang = \"fr\"\nsmtp-host = \"127.0.0.1\"\n\
             smtp-port = {port}\nsmtp-tls = \"{mode}\"\nsmtp-ca-file = {:?}\n\
             from = \"hub@example.org\"\nto = [\"club@example.org\"]\n",
            path(&pki.ca)
        ))
    };
    let (d, tracker, stop) = start(&[
        cfg("starttls", starttls.port, "starttls"),
        cfg("smtps", implicit.port, "implicit"),
    ]);
    let (firing, _) = overheating();
    d.dispatch(&firing);
    for smtp in [&starttls, &implicit] {
        let m = smtp.next();
        assert_eq!(m["tls"], true, "{m}");
        assert_eq!(
            m["subject"],
            "[sitewatch CRITIQUE] club-1/pi-gate: température cpu_thermal 80,5 °C > 75 °C"
        );
        let body = m["body"].as_str().expect("body");
        for line in [
            "État : ALERTE",
            "Nœud : pi-gate",
            "Règle : temperature (metric)",
            "Valeur : 80,5 °C (seuil > 75 °C)",
            "Date : 2024-12-04 14:35:22 UTC",
        ] {
            assert!(
                body.lines().any(|l| l == line),
                "missing {line:?} in:\n{body}"
            );
        }
    }
    stop.cancel();
    tracker.close();
    tracker.wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_is_down_at_first_gets_the_mail_once_it_is_up() {
    let port = free_port();
    let cfg = notifier(&format!(
        "name = \"ops\"\nkind = \"email\"\nsmtp-host = \"127.0.0.1\"\nsmtp-port = {port}\n\
         smtp-tls = \"none\"\nfrom = \"hub@example.org\"\nto = [\"ops@example.org\"]\n\
         retry-min = \"200ms\"\nretry-max = \"1s\"\nmax-attempts = 30\n"
    ));
    let (d, tracker, stop) = start(&[cfg]);
    let (firing, _) = overheating();
    d.dispatch(&firing);
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(d.stats()[0].retries >= 1, "{:?}", d.stats());
    // Now the server comes up on that port.
    let smtp = tokio::task::spawn_blocking(move || Smtp::launch(port, &[]))
        .await
        .expect("start smtp");
    let m = smtp.next();
    assert!(
        m["subject"]
            .as_str()
            .unwrap_or("")
            .contains("club-1/pi-gate")
    );
    smtp.nothing_more();
    stop.cancel();
    tracker.close();
    tracker.wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authenticates_with_a_password_from_a_file() {
    let smtp = Smtp::start_with_auth();
    let dir = tempfile::tempdir().expect("temp dir");
    let cfg = |name: &str, password: &str| {
        let file = dir.path().join(name);
        std::fs::write(&file, password).expect("write password");
        notifier(&format!(
            "name = \"{name}\"\nkind = \"email\"\nsmtp-host = \"127.0.0.1\"\nsmtp-port = {}\n\
             smtp-tls = \"none\"\nusername = \"hub\"\npassword-file = {:?}\n\
             from = \"hub@example.org\"\nto = [\"ops@example.org\"]\nmax-attempts = 1\n",
            smtp.port,
            path(&file)
        ))
    };
    let (d, tracker, stop) = start(&[cfg("good", "s3cret\n"), cfg("bad", "nope")]);
    let (firing, _) = overheating();
    d.dispatch(&firing);
    let m = smtp.next();
    assert_eq!(m["login"], "hub");
    smtp.nothing_more();
    let stats = d.stats();
    assert_eq!(
        (stats[0].sent, stats[1].sent, stats[1].failed),
        (1, 0, 1),
        "{stats:?}"
    );
    stop.cancel();
    tracker.close();
    tracker.wait().await;
}

fn path(p: &Path) -> String {
    p.to_str().expect("utf-8 path").to_owned()
}
