//! Configuration through the real binary: precedence flag > env > file, `validate`, exit
//! code 78 with a message naming the key.

use std::process::{Command, Output};

fn agent(args: &[&str], env: &[(&str, &str)]) -> Output {
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
    cmd.args(args).envs(env.iter().copied());
    cmd.output().expect("run sitewatch-agent")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn flag_beats_env_beats_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("agent.toml");
    std::fs::write(
        &file,
        "site = \"file-site\"\nnode = \"file-node\"\nbroker = \"mqtt://file-host\"\n\
         password = \"file-secret\"\n",
    )
    .unwrap();
    let file = file.to_str().unwrap();

    let out = agent(
        &["--config", file, "--check-config", "--site", "flag-site"],
        &[
            ("SITEWATCH_SITE", "env-site"),
            ("SITEWATCH_NODE", "env-node"),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("site = \"flag-site\""), "{text}");
    assert!(text.contains("node = \"env-node\""), "{text}");
    assert!(
        text.contains("broker = \"mqtt://file-host:1883\""),
        "{text}"
    );
    assert!(text.contains("heartbeat-interval-s = 10"), "{text}");
    assert!(!text.contains("file-secret"), "password printed: {text}");
}

#[test]
fn no_file_needed_with_site() {
    let out = agent(&["--check-config", "--site", "club-1", "--node", "pi"], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("site = \"club-1\""));
}

#[test]
fn config_errors_exit_78_with_advice() {
    let out = agent(&["--check-config"], &[]);
    assert_eq!(out.status.code(), Some(78));
    assert!(stderr(&out).contains("--site"), "{}", stderr(&out));

    let out = agent(&["--check-config"], &[("SITEWATCH_SITE", "Bad Site")]);
    assert_eq!(out.status.code(), Some(78));
    assert!(stderr(&out).contains("SITEWATCH_SITE"), "{}", stderr(&out));

    let out = agent(
        &[
            "--check-config",
            "--site",
            "c",
            "--broker",
            "ssl://hub:8883",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(78));
    assert!(stderr(&out).contains("mqtts://"), "{}", stderr(&out));
}

/// Runs `validate --config FILE` on `toml`.
fn validate(toml: &str) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("agent.toml");
    std::fs::write(&file, toml).unwrap();
    agent(&["validate", "--config", file.to_str().unwrap()], &[])
}

#[test]
fn validate_accepts_a_good_config_with_a_summary() {
    let out = validate("site = \"club-1\"\nnode = \"pi-gate\"\nbroker = \"mqtt://hub.lan\"\n");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.starts_with("config OK: site club-1, node pi-gate"),
        "{text}"
    );
    assert!(text.contains("broker mqtt://hub.lan:1883,"), "{text}");
}

#[test]
fn validate_rejects_with_78_naming_the_key() {
    let base = "site = \"club-1\"\nnode = \"pi-gate\"\n";
    for (toml, key, why) in [
        (
            format!("{base}metrics-intervall-s = 30\n"),
            "metrics-intervall-s",
            "unknown field",
        ),
        ("site = \"Club 1\"\n".to_owned(), "`site`", "a-z"),
        (
            format!("{base}metrics-interval-s = -5\n"),
            "`metrics-interval-s`",
            "out of range",
        ),
        (
            format!("{base}[outbox]\nmax-messages = -1\n"),
            "`outbox.max-messages`",
            "invalid value",
        ),
        (
            format!("{base}[tls]\nca-file = \"/nonexistent/ca.pem\"\n"),
            "`tls.ca-file`",
            "/nonexistent/ca.pem",
        ),
    ] {
        let out = validate(&toml);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(78), "{toml}: {err}");
        assert!(err.contains(key) && err.contains(why), "{toml}: {err}");
        assert!(stdout(&out).is_empty(), "{toml}");
    }
}

#[test]
fn usage_errors_exit_2() {
    let out = agent(&["--heartbeat-interval", "soon"], &[]);
    assert_eq!(out.status.code(), Some(2));
}
