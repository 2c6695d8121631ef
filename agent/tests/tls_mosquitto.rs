//! TLS toward a real TLS-terminating broker: Debian's Mosquitto with a test CA and
//! certificates made with `openssl` at test time, on loopback only.
//!
//! The agent connects with `mqtts://` and `[tls] ca-file` and publishes (seen by
//! `mosquitto_sub` on a plain listener of the same broker); with the wrong CA it fails with
//! a log saying what to check; a listener that requires client certificates accepts it
//! with `client-cert`/`client-key` and refuses it without.

mod common;
#[path = "support/pki.rs"]
mod pki;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use common::*;
use pki::Pki;

#[test]
fn agent_speaks_mqtts_to_mosquitto_with_ca_file_and_client_certificates() {
    let openssl = require_program("openssl", "openssl");
    let dir = tempfile::tempdir().expect("temp dir");
    let pki = Pki::generate(&openssl, dir.path());
    let [tls, mtls] = [free_port(), free_port()];
    let certs = format!(
        "allow_anonymous true\ncafile {}\ncertfile {}\nkeyfile {}\n",
        pki.ca.display(),
        pki.server_cert.display(),
        pki.server_key.display()
    );
    let broker = Mosquitto::start(
        dir.path(),
        &format!(
            "listener {tls} 127.0.0.1\n{certs}\
             listener {mtls} 127.0.0.1\n{certs}require_certificate true\n"
        ),
    );
    for port in [tls, mtls] {
        wait_for("mosquitto TLS listeners", Duration::from_secs(10), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).ok()
        });
    }

    // The right CA: online, then metrics, through TLS.
    let good = agent_config(dir.path(), "pi-tls", tls, Some(&pki.ca), None);
    let validate = agent(&["validate", "--config", path_str(&good)])
        .stdout(Stdio::piped())
        .output()
        .expect("run validate");
    let summary = String::from_utf8_lossy(&validate.stdout);
    assert!(validate.status.success(), "{validate:?}");
    assert!(
        summary.contains("mqtts://127.0.0.1") && summary.contains("CA file"),
        "{summary}"
    );
    let _agent = Guard::spawn(&mut agent(&["--config", path_str(&good)]));
    for wanted in ["pi-tls/status online", "pi-tls/metrics {"] {
        broker.wait(wanted, Duration::from_secs(15));
    }

    // Another CA: the handshake fails and the log says what to check.
    let wrong = agent_config(dir.path(), "pi-wrong", tls, Some(&pki.other_ca), None);
    let mut bad = Guard::spawn(agent(&["--config", path_str(&wrong)]).stderr(Stdio::piped()));
    let line = wait_line(
        &bad.stderr_lines(),
        "MQTT connection failed",
        Duration::from_secs(10),
    );
    eprintln!("wrong CA: {line}");
    assert!(
        line.contains("TLS handshake failed") && line.contains("tls.ca-file"),
        "{line}"
    );
    assert!(line.contains("certificate"), "the cause is shown: {line}");

    // A broker requiring client certificates: accepted with one, refused without.
    let with = agent_config(
        dir.path(),
        "pi-mtls",
        mtls,
        Some(&pki.ca),
        Some((&pki.client_cert, &pki.client_key)),
    );
    let _mtls_agent = Guard::spawn(&mut agent(&["--config", path_str(&with)]));
    broker.wait("pi-mtls/status online", Duration::from_secs(15));
    let without = agent_config(dir.path(), "pi-nocert", mtls, Some(&pki.ca), None);
    let mut refused = Guard::spawn(agent(&["--config", path_str(&without)]).stderr(Stdio::piped()));
    let line = wait_line(
        &refused.stderr_lines(),
        "MQTT connection failed",
        Duration::from_secs(10),
    );
    eprintln!("no client certificate: {line}");
    assert!(line.contains("tls.client-cert"), "{line}");
}

fn agent_config(
    dir: &Path,
    node: &str,
    port: u16,
    ca: Option<&Path>,
    client: Option<(&Path, &Path)>,
) -> PathBuf {
    let mut text = format!(
        "site = \"tls\"\nnode = \"{node}\"\nbroker = \"mqtts://127.0.0.1:{port}\"\n\
         metrics-interval-s = 1\nheartbeat-interval-s = 1\nkeepalive-s = 2\n\
         reconnect-max-s = 2\n[tls]\n"
    );
    if let Some(ca) = ca {
        text.push_str(&format!("ca-file = {:?}\n", path_str(ca)));
    }
    if let Some((cert, key)) = client {
        text.push_str(&format!(
            "client-cert = {:?}\nclient-key = {:?}\n",
            path_str(cert),
            path_str(key)
        ));
    }
    let path = dir.join(format!("{node}.toml"));
    std::fs::write(&path, text).expect("write agent config");
    path
}
