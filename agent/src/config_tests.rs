//! Config tests, written as the TOML snippets an operator would write.

use super::*;

const MIN: &str = "site = \"club-1\"\nnode = \"pi-gate\"\n";

fn err(toml: &str) -> String {
    AgentConfig::from_toml_str(toml).unwrap_err().to_string()
}

#[test]
fn defaults_fill_everything_but_the_site() {
    let c = AgentConfig::from_toml_str(MIN).unwrap();
    assert_eq!(c.site.as_str(), "club-1");
    assert_eq!(c.node_id().as_str(), "pi-gate");
    assert_eq!(c.broker.to_string(), DEFAULT_BROKER);
    assert_eq!(c.topic_prefix.as_str(), "sitewatch/v1");
    assert_eq!(c.heartbeat_interval_s, 10);
    assert_eq!(c.metrics_interval_s, 30);
    assert_eq!(c.keepalive_s, 10);
    assert_eq!((c.username, c.password), (None, None));
}

#[test]
fn every_key_is_read() {
    let c = AgentConfig::from_toml_str(
        r#"
        site = "club-1"
        node = "pi-gate"
        broker = "mqtt://hub.lan:1884"
        topic-prefix = "acme/v1"
        heartbeat-interval-s = 5
        metrics-interval-s = 60
        keepalive-s = 2
        username = "agent"
        password = "s3cret"
        "#,
    )
    .unwrap();
    assert_eq!((c.broker.host(), c.broker.port()), ("hub.lan", 1884));
    assert_eq!(c.topic_prefix.as_str(), "acme/v1");
    assert_eq!(
        (c.heartbeat_interval_s, c.metrics_interval_s, c.keepalive_s),
        (5, 60, 2)
    );
    assert_eq!(c.username.as_deref(), Some("agent"));
    let debug = format!("{c:?}");
    assert!(!debug.contains("s3cret"), "{debug}");
    assert!(!c.to_redacted_toml().contains("s3cret"));
}

#[test]
fn node_defaults_to_the_sanitised_hostname() {
    let c = AgentConfig::from_toml_str("site = \"club-1\"").unwrap();
    let host = sysinfo::System::host_name().unwrap_or_default();
    assert_eq!(
        c.node_id().as_str(),
        sitewatch_proto::id::sanitize(&host).unwrap()
    );
}

#[test]
fn unknown_key_is_rejected_by_name() {
    let e = err("site = \"club-1\"\nheartbeat_interval_s = 5\n");
    assert!(e.contains("heartbeat_interval_s"), "{e}");
    assert!(e.contains("line 2"), "{e}");
}

#[test]
fn missing_site_says_how_to_set_it() {
    let e = err("node = \"pi\"");
    assert!(
        e.contains("`site` is required") && e.contains("--site"),
        "{e}"
    );
}

#[test]
fn bad_site_id_explains_the_allowed_characters() {
    let e = err("site = \"Club/1\"");
    assert!(e.contains("site"), "{e}");
    assert!(e.contains("a-z, 0-9"), "{e}");
    let e = err("site = \"club 1\"\nnode = \"x\"");
    assert!(e.contains("' '"), "{e}");
}

#[test]
fn bad_broker_url_shows_the_expected_form() {
    let e = err(&format!("{MIN}broker = \"hub.lan:1883\""));
    assert!(
        e.contains("broker") && e.contains("mqtt://HOST[:PORT]"),
        "{e}"
    );
    let e = err(&format!("{MIN}broker = \"ssl://hub.lan:8883\""));
    assert!(e.contains("mqtts://HOST[:PORT]"), "{e}");
}

#[test]
fn mqtts_brokers_check_their_tls_files_at_load() {
    let c = AgentConfig::from_toml_str(&format!("{MIN}broker = \"mqtts://hub.lan\"")).unwrap();
    assert!(c.broker.is_tls() && c.broker.port() == 8883);
    assert!(
        c.summary().contains("TLS, system CA certificates"),
        "{}",
        c.summary()
    );
    let e = err(&format!(
        "{MIN}broker = \"mqtts://hub.lan\"\n[tls]\nca-file = \"/nonexistent/ca.pem\"\n"
    ));
    assert!(
        e.contains("tls.ca-file") && e.contains("/nonexistent/ca.pem"),
        "{e}"
    );
    let e = err(&format!("{MIN}[tls]\nclient-cert = \"/x.pem\"\n"));
    assert!(e.contains("tls.client-key"), "{e}");
}

#[test]
fn bad_prefix_and_ranges_are_explained() {
    let e = err(&format!("{MIN}topic-prefix = \"a/#\""));
    assert!(e.contains("topic-prefix") || e.contains("prefix"), "{e}");
    let e = err(&format!("{MIN}heartbeat-interval-s = 0"));
    assert!(
        e.contains("heartbeat-interval-s") && e.contains("1..=86400"),
        "{e}"
    );
    let e = err(&format!("{MIN}keepalive-s = 70000"));
    assert!(e.contains("keepalive-s"), "{e}");
    let e = err(&format!("{MIN}metrics-interval-s = \"30\""));
    assert!(e.contains("metrics-interval-s"), "{e}");
    let e = err(&format!("{MIN}reconnect-max-s = 0"));
    assert!(
        e.contains("reconnect-max-s") && e.contains("1..=3600"),
        "{e}"
    );
}

#[test]
fn negative_numbers_name_their_key() {
    let e = err(&format!("{MIN}metrics-interval-s = -5"));
    assert!(
        e.contains("`metrics-interval-s` = -5 is out of range") && e.contains("1..=86400"),
        "{e}"
    );
    let e = err(&format!("{MIN}[outbox]\nmax-messages = -1\n"));
    assert!(e.contains("`outbox.max-messages` (line 4)"), "{e}");
}

#[test]
fn outbox_and_checks_sections_are_validated() {
    let e = err(&format!("{MIN}[outbox]\nmax-messages = 0\n"));
    assert!(e.contains("outbox.max-messages"), "{e}");
    let e = err(&format!(
        "{MIN}[outbox]\nspill-file = \"/nonexistent/dir/spill\"\n"
    ));
    assert!(
        e.contains("outbox.spill-file") && e.contains("/nonexistent/dir"),
        "{e}"
    );
    let dir = tempfile::tempdir().unwrap();
    let spill = dir.path().join("spill");
    let e = err(&format!(
        "{MIN}[outbox]\nspill-file = {:?}\nspill-max-bytes = 100\n",
        spill.to_str().unwrap()
    ));
    assert!(e.contains("outbox.spill-max-bytes"), "{e}");
    let c = AgentConfig::from_toml_str(&format!(
        "{MIN}[outbox]\nspill-file = {:?}\n",
        spill.to_str().unwrap()
    ))
    .unwrap();
    assert!(c.summary().contains("spill file"), "{}", c.summary());
    let check = "[[checks]]\nname = \"root\"\nkind = \"path\"\npath = \"/\"\n";
    let e = err(&format!("{MIN}{check}{check}"));
    assert!(e.contains("`checks`") && e.contains("root"), "{e}");
}

#[test]
fn load_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent.toml");
    let e = AgentConfig::load(&path).unwrap_err().to_string();
    assert!(e.contains("agent.toml") && e.contains("--site"), "{e}");
    std::fs::write(&path, "site = \"club-1\"\nbogus = 1\n").unwrap();
    let e = AgentConfig::load(&path).unwrap_err().to_string();
    assert!(e.contains("agent.toml") && e.contains("bogus"), "{e}");
}

#[test]
fn overrides_beat_the_file_and_keep_the_rest() {
    let mut p = PartialConfig::from_toml_str(
        "site = \"from-file\"\nnode = \"file-node\"\nkeepalive-s = 20\nusername = \"u\"",
        "test",
    )
    .unwrap();
    p.apply(Overrides {
        site: Some("from-cli".into()),
        broker: Some("mqtt://10.1.1.1".into()),
        heartbeat_interval_s: Some(3),
        ..Overrides::default()
    })
    .unwrap();
    let c = p.finish("test").unwrap();
    assert_eq!(c.site.as_str(), "from-cli");
    assert_eq!(c.node_id().as_str(), "file-node");
    assert_eq!(c.broker.host(), "10.1.1.1");
    assert_eq!((c.heartbeat_interval_s, c.keepalive_s), (3, 20));
    assert_eq!(c.username.as_deref(), Some("u"));
}

#[test]
fn overrides_alone_need_no_file() {
    let mut p = PartialConfig::default();
    p.apply(Overrides {
        site: Some("club-1".into()),
        node: Some("pi".into()),
        ..Overrides::default()
    })
    .unwrap();
    assert_eq!(p.finish("flags").unwrap().site.as_str(), "club-1");
}

#[test]
fn invalid_overrides_name_the_flag() {
    let mut p = PartialConfig::default();
    let e = p
        .apply(Overrides {
            node: Some("Pi/1".into()),
            ..Overrides::default()
        })
        .unwrap_err()
        .to_string();
    assert!(e.contains("--node") && e.contains("must start"), "{e}");
    let e = p
        .apply(Overrides {
            keepalive_s: Some(0),
            ..Overrides::default()
        })
        .unwrap_err()
        .to_string();
    assert!(e.contains("--keepalive") && e.contains("1..=65535"), "{e}");
    let e = p
        .apply(Overrides {
            broker: Some("localhost".into()),
            ..Overrides::default()
        })
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("--broker") && e.contains("mqtt://HOST[:PORT]"),
        "{e}"
    );
}

#[test]
fn deserializes_as_a_section_of_another_config() {
    #[derive(Deserialize)]
    struct Hub {
        agent: AgentConfig,
    }
    let hub: Hub = toml::from_str("[agent]\nsite = \"hq\"\nnode = \"hub\"\n").unwrap();
    assert_eq!(hub.agent.metrics_interval_s, 30);
    let e = toml::from_str::<Hub>("[agent]\nsite = \"hq\"\nnope = 1\n")
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(e.contains("nope"), "{e}");
}

#[test]
fn scan_and_probe_keys_are_read() {
    let c = AgentConfig::from_toml_str(&format!(
        "{MIN}metrics-interval-s = 10\n\
         [scan]\nnetworks = [\"192.168.1.0/24\", \"10.0.0.0/16\"]\ninterval-s = 300\n\
         concurrency = 64\nrate-per-s = 500\ntimeout-ms = 800\nretries = 2\n\
         reverse-dns = true\ntcp-ports = [22, 80]\nallow-large = true\n\
         oui-file = \"/opt/oui.txt\"\n\
         [probes]\ntargets = [\"gateway\", \"1.1.1.1\"]\ncount = 3\ninterval-ms = 100\n\
         timeout-ms = 500\n"
    ))
    .unwrap();
    let s = &c.scan;
    assert_eq!(s.networks.len(), 2);
    assert_eq!(
        (
            s.interval_s,
            s.concurrency,
            s.rate_per_s,
            s.timeout_ms,
            s.retries
        ),
        (300, 64, 500, 800, 2)
    );
    assert!(s.reverse_dns && s.allow_large);
    assert_eq!(s.tcp_ports, [22, 80]);
    assert_eq!(s.oui_file, std::path::Path::new("/opt/oui.txt"));
    let p = c.probes.as_ref().unwrap();
    assert_eq!((p.count, p.interval_ms, p.timeout_ms), (3, 100, 500));
    assert_eq!(p.targets().len(), 2);
    assert!(
        c.summary()
            .contains("LAN scan of 192.168.1.0/24 10.0.0.0/16 every 300 s")
    );
    assert!(c.summary().contains("latency probes to gateway 1.1.1.1"));
}

#[test]
fn the_scanner_is_off_and_probes_follow_the_sections() {
    let c = AgentConfig::from_toml_str(MIN).unwrap();
    assert!(!c.scan.enabled());
    assert_eq!(c.probes, None, "no section, no probes");

    // A [scan] section alone probes the gateway with the defaults.
    let c = AgentConfig::from_toml_str(&format!("{MIN}[scan]\n")).unwrap();
    assert!(!c.scan.enabled());
    let p = c.probes.unwrap();
    assert_eq!(p, crate::scan::ProbesConfig::default());
    assert_eq!(p.targets(), [crate::scan::ProbeTarget::Gateway]);

    // `targets = []` turns them off.
    let c = AgentConfig::from_toml_str(&format!("{MIN}[probes]\ntargets = []\n")).unwrap();
    assert!(c.probes.unwrap().targets().is_empty());
}

#[test]
fn scan_mistakes_name_their_key() {
    let e = err(&format!("{MIN}[scan]\nnetworks = [\"10.0.0.0/16\"]\n"));
    assert!(
        e.contains("`scan.networks`") && e.contains("allow-large"),
        "{e}"
    );
    let e = err(&format!("{MIN}[scan]\nnetworks = [\"192.168.1.7/24\"]\n"));
    assert!(
        e.contains("scan.networks") && e.contains("did you mean 192.168.1.0/24"),
        "{e}"
    );
    let e = err(&format!("{MIN}[scan]\nnetwork = [\"192.168.1.0/24\"]\n"));
    assert!(e.contains("unknown field `network`"), "{e}");
    let e = err(&format!("{MIN}[scan]\nretries = -1\n"));
    assert!(e.contains("scan.retries"), "{e}");
    let e = err(&format!("{MIN}metrics-interval-s = 1\n[probes]\n"));
    assert!(
        e.contains("`probes.count`") && e.contains("metrics-interval-s"),
        "{e}"
    );
    let e = err(&format!("{MIN}[probes]\ntargets = [\"no such host!\"]\n"));
    assert!(e.contains("`probes.targets`"), "{e}");
}

#[test]
fn signing_key_is_checked_and_never_shown() {
    let hex = "0123456789abcdef".repeat(4);
    let c = AgentConfig::from_toml_str(&format!("{MIN}signing-key = \"{hex}\"\n")).unwrap();
    assert!(c.signing_key.is_some());
    assert!(!format!("{c:?}").contains(&hex));
    assert!(!c.to_redacted_toml().contains(&hex));
    assert!(
        c.to_redacted_toml()
            .contains("signing-key = \"<redacted>\"")
    );
    let e = err(&format!("{MIN}signing-key = \"abc\"\n"));
    assert!(
        e.contains("`signing-key`") && e.contains("64 hexadecimal digits"),
        "{e}"
    );
}

#[test]
fn home_assistant_choice_is_optional() {
    let c = AgentConfig::from_toml_str(MIN).unwrap();
    assert_eq!(c.home_assistant, None);
    let c = AgentConfig::from_toml_str(&format!("{MIN}home-assistant = false\n")).unwrap();
    assert_eq!(c.home_assistant, Some(false));
    let e = err(&format!("{MIN}home-assistant = \"yes\"\n"));
    assert!(e.contains("home-assistant"), "{e}");
}
