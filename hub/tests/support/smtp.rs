//! A real SMTP server for tests: Debian's aiosmtpd started on a free loopback port, with a
//! handler printing each received message, decoded by Python's `email` package, as one JSON
//! line the test reads.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

use super::common::{Proc, free_port, wait_for};

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
pub struct Smtp {
    _proc: Proc,
    pub port: u16,
    messages: mpsc::Receiver<Value>,
    _dir: tempfile::TempDir,
}

impl Smtp {
    /// Starts aiosmtpd on a free port and waits until it listens.
    pub fn start(extra: &[&str]) -> Self {
        let smtp = Self::launch(free_port(), extra);
        wait_for("aiosmtpd listening", Duration::from_secs(15), || {
            std::net::TcpStream::connect(("127.0.0.1", smtp.port)).ok()
        });
        smtp
    }

    pub fn launch(port: u16, extra: &[&str]) -> Self {
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
    pub fn start_with_auth() -> Self {
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

    pub fn next(&self) -> Value {
        self.messages
            .recv_timeout(Duration::from_secs(20))
            .expect("no e-mail reached the SMTP server within 20 s")
    }

    pub fn nothing_more(&self) {
        assert!(
            self.messages
                .recv_timeout(Duration::from_millis(500))
                .is_err(),
            "an extra e-mail arrived"
        );
    }
}
