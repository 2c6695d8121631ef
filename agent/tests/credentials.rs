//! Username and password toward the broker (Mosquitto with a password file, loopback):
//! taken from the environment, accepted when right, refused with advice when wrong, and
//! never printed.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

#[test]
fn credentials_from_the_environment_reach_the_broker_and_stay_secret() {
    let passwd = require_program("mosquitto_passwd", "mosquitto");
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("passwd");
    let made = Command::new(passwd)
        .args(["-b", "-c", path_str(&file), "agent", "s3cret-pw"])
        .status()
        .expect("run mosquitto_passwd");
    assert!(made.success());
    let auth = free_port();
    let broker = Mosquitto::start(
        dir.path(),
        &format!(
            "listener {auth} 127.0.0.1\nallow_anonymous false\npassword_file {}\n",
            file.display()
        ),
    );
    wait_for("the password listener", Duration::from_secs(10), || {
        std::net::TcpStream::connect(("127.0.0.1", auth)).ok()
    });
    let config = dir.path().join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "site = \"auth\"\nnode = \"pi\"\nbroker = \"mqtt://127.0.0.1:{auth}\"\n\
             heartbeat-interval-s = 1\nmetrics-interval-s = 1\nreconnect-max-s = 1\n"
        ),
    )
    .expect("write agent config");
    let with = |user: &str, pw: &str| {
        let mut cmd = agent(&["--config", path_str(&config)]);
        cmd.env("SITEWATCH_MQTT_USERNAME", user)
            .env("SITEWATCH_MQTT_PASSWORD", pw)
            .stderr(Stdio::piped());
        cmd
    };

    let check = with("agent", "s3cret-pw")
        .arg("--check-config")
        .stdout(Stdio::piped())
        .output()
        .expect("run --check-config");
    let text = String::from_utf8_lossy(&check.stdout);
    assert!(text.contains("username = \"agent\""), "{text}");
    assert!(!text.contains("s3cret-pw"), "password printed: {text}");

    let mut good = Guard::spawn(&mut with("agent", "s3cret-pw"));
    let good_log = good.stderr_lines();
    broker.wait("auth/pi/status online", Duration::from_secs(15));
    broker.wait("auth/pi/metrics {", Duration::from_secs(15));
    drop(good);
    assert!(
        good_log.try_iter().all(|l| !l.contains("s3cret-pw")),
        "password logged"
    );

    let mut bad = Guard::spawn(&mut with("agent", "wrong"));
    let line = wait_line(
        &bad.stderr_lines(),
        "MQTT connection failed",
        Duration::from_secs(10),
    );
    assert!(line.contains("check `username` and `password`"), "{line}");
    assert!(!line.contains("wrong"), "password logged: {line}");
}
