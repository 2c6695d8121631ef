//! Per-node credentials and signed telemetry, as an operator sets them up: `sitewatch-hub
//! node add` prints an agent's config lines; agents log in with them and sign what they
//! send; one site's credentials never get a message stored for another site, over the
//! embedded broker (which binds a login to its node) and over a real Mosquitto with no ACL
//! at all (where only the signatures protect the hub); forged and replayed messages are
//! counted on `/healthz` and not stored; a revoked node is shut out; the TLS listener
//! serves agents and reloads its certificate on SIGHUP. Loopback only.

mod common;
#[path = "support/credentials.rs"]
mod credentials;
#[path = "../../agent/tests/support/pki.rs"]
mod pki;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use credentials::*;

#[test]
fn credentials_and_signatures_on_the_embedded_broker() {
    let dir = tempfile::tempdir().expect("temp dir");
    let hub = start_hub_secure(&[]);
    let data = hub.data.path();
    let a = node_add(data, "club-a", "pi", &hub.broker_url());
    let gw = node_add(data, "club-a", "gw", &hub.broker_url());
    node_add(data, "club-b", "pi", &hub.broker_url());
    // An integration's account (Home Assistant), to watch the bus with further down.
    mqtt_user_add(data, "ha", "ha-password-1");

    // Secrets are shown once; `node add` again is refused, `node list` shows no secret.
    let again = hub_cli(data, &["node", "add", "club-a", "pi"]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("node rotate"));
    let list = String::from_utf8(hub_cli(data, &["node", "list"]).stdout).expect("utf-8");
    assert!(list.contains("club-a\tpi\tsw.club-a.pi") && list.contains("club-b\tpi"));
    assert!(!list.contains(&a.password) && !list.contains(&a.key));

    // The hub's own machine: its agent signs with credentials the hub made at start.
    let own = wait_for("the hub's own node online", Duration::from_secs(30), || {
        let nodes = hub.get("/api/v1/nodes")?;
        nodes
            .as_array()?
            .iter()
            .find(|n| {
                n["site"] == "hub" && n["status"] == "online" && n["metrics"]["mem_pct"].is_number()
            })
            .cloned()
    });
    let own = own["node"].as_str().expect("node id").to_owned();
    assert!(
        list.contains(&format!("hub\t{own}\tsw.hub.{own}")),
        "{list}"
    );

    // An agent with site A's lines gets its data stored.
    let _agent = start_agent_with(dir.path(), "a", &a.snippet, "");
    wait_for("club-a/pi stored", Duration::from_secs(30), || {
        (stored(data, "club-a", "pi") >= 2).then_some(())
    });
    assert_eq!(counter(&hub, "messages_bad_signature"), 0);

    // An agent without credentials is let in from loopback but its data is dropped.
    let _anon = start_agent(&hub.broker_url(), "club-c", "pi");
    wait_counter(&hub, "messages_unsigned", 0);
    assert_eq!(stored(data, "club-c", "pi"), 0);
    // Not even listed: its plain `online` status does not count without credentials.
    assert!(hub.node("club-c", "pi").is_none());

    // Site A's login cannot speak for site B: another node's client id is refused at
    // CONNECT (CONNACK 5), B's topics are outside what the broker lets it publish.
    let b_topic = "sitewatch/v1/club-b/pi/metrics";
    let forged = signed(&gw.key, b_topic, &metrics_body("f0f0f0f0f0f0f0f0", 1));
    let out = publish(
        hub.mqtt_port,
        Some(("sw.club-b.pi", &gw.username, &gw.password)),
        b_topic,
        &forged,
    );
    assert!(!out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not authori"),
        "{out:?}"
    );
    for _ in 0..2 {
        let _ = publish(
            hub.mqtt_port,
            Some(("sw.club-a.gw", &gw.username, &gw.password)),
            b_topic,
            &forged,
        );
    }
    let wrong = publish(
        hub.mqtt_port,
        Some(("sw.club-a.gw", &gw.username, "not-the-password")),
        "sitewatch/v1/club-a/gw/metrics",
        "{}",
    );
    assert!(!wrong.status.success(), "{wrong:?}");
    // Its own topic, signed with its own key: stored (the control for the above).
    let own_topic = "sitewatch/v1/club-a/gw/metrics";
    let ok = publish(
        hub.mqtt_port,
        Some(("sw.club-a.gw", &gw.username, &gw.password)),
        own_topic,
        &signed(&gw.key, own_topic, &metrics_body("a1a1a1a1a1a1a1a1", 1)),
    );
    assert!(ok.status.success(), "{ok:?}");
    wait_for("club-a/gw stored", Duration::from_secs(10), || {
        (stored(data, "club-a", "gw") == 1).then_some(())
    });
    assert_eq!(stored(data, "club-b", "pi"), 0, "nothing stored for site B");
    assert_eq!(
        counter(&hub, "messages_bad_signature"),
        0,
        "the broker, not the signature check, stopped them"
    );
    assert!(hub.node("club-b", "pi").is_none());

    // An integration's account reads the bus and may publish outside sitewatch's topics
    // (Home Assistant's birth message), but a leaked password cannot fake a node's status:
    // the broker cuts the connection before the message goes anywhere.
    let ha = Some(("ha-pub", "ha", "ha-password-1"));
    let birth = publish(hub.mqtt_port, ha, "homeassistant/status", "online");
    assert!(birth.status.success(), "{birth:?}");
    let fake = publish(
        hub.mqtt_port,
        ha,
        "sitewatch/v1/club-a/pi/status",
        "offline",
    );
    assert!(!fake.status.success(), "no PUBACK: {fake:?}");

    // Revoking A: within the 2 s refresh its running agent is disconnected (its will says
    // `offline` to whoever reads the bus), its reconnects are refused, so nothing more of
    // it reaches an integration such as Home Assistant, and the hub stores nothing more.
    let (_sub, bus) = watch_bus(
        hub.mqtt_port,
        ("ha", "ha-password-1"),
        "sitewatch/v1/club-a/pi/#",
    );
    wait_for(
        "club-a/pi metrics on the bus",
        Duration::from_secs(10),
        || {
            bus.recv_timeout(Duration::from_secs(1))
                .ok()
                .filter(|line| line.starts_with("sitewatch/v1/club-a/pi/metrics "))
        },
    );
    let out = hub_cli(data, &["node", "revoke", "club-a", "pi"]);
    assert!(out.status.success(), "{out:?}");
    wait_for(
        "club-a/pi's will on the bus",
        Duration::from_secs(10),
        || {
            bus.recv_timeout(Duration::from_secs(1))
                .ok()
                .filter(|line| line == "sitewatch/v1/club-a/pi/status offline")
        },
    );
    let before = stored(data, "club-a", "pi");
    // The hub's own topics for the node (`alerts`, `ack`) may still change: it is offline.
    let from_agent = |line: &String| {
        ["metrics ", "heartbeat ", "info ", "scan ", "status online"]
            .iter()
            .any(|t| line.starts_with(&format!("sitewatch/v1/club-a/pi/{t}")))
    };
    let after_will: Vec<String> =
        std::iter::from_fn(|| bus.recv_timeout(Duration::from_secs(4)).ok())
            .take(50)
            .filter(from_agent)
            .collect();
    assert!(
        after_will.is_empty(),
        "a revoked node must not reach the bus again: {after_will:?}"
    );
    // A batch ingested just before the cut may still be committing.
    assert!(
        stored(data, "club-a", "pi") <= before + 1,
        "nothing stored after the cut"
    );
    let refused = publish(
        hub.mqtt_port,
        Some(("sw.club-a.pi", &a.username, &a.password)),
        "sitewatch/v1/club-a/pi/metrics",
        "{}",
    );
    assert!(!refused.status.success(), "{refused:?}");
    assert!(hub.get("/healthz").is_some(), "the hub still answers");
}

#[test]
fn a_mosquitto_without_acl_cannot_carry_site_a_data_into_site_b() {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    // No password file, no ACL: anyone may publish anything.
    let _broker = start_mosquitto(
        dir.path(),
        port,
        &format!("user root\npersistence false\nlistener {port} 127.0.0.1\nallow_anonymous true\n"),
    );
    let url = format!("mqtt://127.0.0.1:{port}");
    let hub = start_hub_secure(&["--no-local-agent", "--broker", &url]);
    let data = hub.data.path();
    let a = node_add(data, "club-a", "pi", &url);
    let b = node_add(data, "club-b", "pi", &url);
    std::thread::sleep(Duration::from_secs(3)); // the hub re-reads credentials every 2 s

    let b_topic = "sitewatch/v1/club-b/pi/metrics";
    // A's key on B's topic, and A's message for A moved to B's topic.
    publish(
        port,
        None,
        b_topic,
        &signed(&a.key, b_topic, &metrics_body("aaaaaaaaaaaaaaaa", 1)),
    );
    let for_a = signed(
        &a.key,
        "sitewatch/v1/club-a/pi/metrics",
        &metrics_body("aaaaaaaaaaaaaaaa", 2),
    );
    publish(port, None, b_topic, &for_a);
    wait_for("two bad signatures", Duration::from_secs(10), || {
        (counter(&hub, "messages_bad_signature") == 2).then_some(())
    });
    // Unsigned, and an altered body under B's valid MAC.
    publish(port, None, b_topic, &metrics_body("bbbbbbbbbbbbbbbb", 1));
    wait_counter(&hub, "messages_unsigned", 0);
    let genuine = signed(&b.key, b_topic, &metrics_body("bbbbbbbbbbbbbbbb", 7));
    let altered = genuine.replace("\"uptime_s\":42", "\"uptime_s\":43");
    publish(port, None, b_topic, &altered);
    wait_counter(&hub, "messages_bad_signature", 2);
    assert_eq!(stored(data, "club-b", "pi"), 0);
    assert_eq!(stored(data, "club-a", "pi"), 0);

    // B's genuine message is stored once; replayed twice, it is counted and not stored.
    publish(port, None, b_topic, &genuine);
    wait_for("B's message stored", Duration::from_secs(10), || {
        (stored(data, "club-b", "pi") == 1).then_some(())
    });
    let duplicates = counter(&hub, "messages_duplicate");
    publish(port, None, b_topic, &genuine);
    publish(port, None, b_topic, &genuine);
    wait_counter(&hub, "messages_duplicate", duplicates + 1);
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(stored(data, "club-b", "pi"), 1);

    // A replayed heartbeat does not keep a node alive: the hub drops it.
    let hb_topic = "sitewatch/v1/club-b/pi/heartbeat";
    let hb = signed(
        &b.key,
        hb_topic,
        r#"{"ts":1,"session":"bbbbbbbbbbbbbbbb","seq":8,"uptime_s":1}"#,
    );
    publish(port, None, hb_topic, &hb);
    let duplicates = counter(&hub, "messages_duplicate");
    publish(port, None, hb_topic, &hb);
    wait_counter(&hub, "messages_duplicate", duplicates);
}

#[test]
fn the_tls_listener_serves_agents_and_reloads_its_certificate_on_sighup() {
    let openssl = require_program("openssl", "openssl");
    let sub = require_program("mosquitto_sub", "mosquitto-clients");
    let dir = tempfile::tempdir().expect("temp dir");
    let (first_dir, second_dir) = (dir.path().join("first"), dir.path().join("second"));
    std::fs::create_dir_all(&first_dir).expect("dir");
    std::fs::create_dir_all(&second_dir).expect("dir");
    let first = Pki::generate(&openssl, &first_dir);
    let second = Pki::generate(&openssl, &second_dir);
    let (cert, key) = (dir.path().join("hub.crt"), dir.path().join("hub.key"));
    std::fs::copy(&first.server_cert, &cert).expect("cert");
    std::fs::copy(&first.server_key, &key).expect("key");
    let tls_port = free_port();
    let conf = dir.path().join("hub.toml");
    std::fs::write(
        &conf,
        format!(
            "[security]\ntls-listen = \"127.0.0.1:{tls_port}\"\ntls-cert = {cert:?}\ntls-key = {key:?}\n"
        ),
    )
    .expect("hub.toml");
    let hub = start_hub_secure(&[
        "--no-local-agent",
        "--config",
        conf.to_str().expect("utf-8"),
    ]);
    let data = hub.data.path();
    let url = format!("mqtts://127.0.0.1:{tls_port}");
    let creds = node_add(data, "club-t", "pi", &url);
    // The secrets through the environment, as the systemd unit's agent.env gives them.
    let public: String = creds
        .snippet
        .lines()
        .filter(|l| ["site", "node", "broker"].contains(&l.split(' ').next().unwrap_or("")))
        .map(|l| format!("{l}\n"))
        .collect();
    let agent_conf = dir.path().join("t.toml");
    std::fs::write(
        &agent_conf,
        format!(
            "{public}heartbeat-interval-s = 1\nmetrics-interval-s = 1\nkeepalive-s = 2\n\
             [tls]\nca-file = {:?}\n",
            first.ca
        ),
    )
    .expect("agent config");
    let _agent = Proc {
        child: Command::new(agent_bin())
            .arg("--config")
            .arg(&agent_conf)
            .env("SITEWATCH_MQTT_USERNAME", &creds.username)
            .env("SITEWATCH_MQTT_PASSWORD", &creds.password)
            .env("SITEWATCH_SIGNING_KEY", &creds.key)
            .stdout(Stdio::null())
            .spawn()
            .expect("start the agent"),
        name: "sitewatch-agent (tls)".into(),
    };
    wait_for("club-t/pi stored over TLS", Duration::from_secs(30), || {
        (stored(data, "club-t", "pi") >= 1).then_some(())
    });

    // An integration account reads the bus over TLS.
    mqtt_user_add(data, "ha", "home-assistant-1");
    std::thread::sleep(Duration::from_secs(3));
    let read_status = |ca: &Path| {
        Command::new(&sub)
            .args(["-h", "127.0.0.1", "-p", &tls_port.to_string(), "--cafile"])
            .arg(ca)
            .args(["-u", "ha", "-P", "home-assistant-1", "-t"])
            .args(["sitewatch/v1/club-t/pi/status", "-C", "1", "-W", "5"])
            .output()
            .expect("mosquitto_sub")
    };
    let out = read_status(&first.ca);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "online");
    assert!(!read_status(&second.ca).status.success());

    // New certificate files, SIGHUP: new clients see the new certificate.
    std::fs::copy(&second.server_cert, &cert).expect("cert");
    std::fs::copy(&second.server_key, &key).expect("key");
    let pid = hub.proc.pid().to_string();
    assert!(
        Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .expect("kill")
            .success()
    );
    let out = wait_for(
        "the new certificate served",
        Duration::from_secs(10),
        || Some(read_status(&second.ca)).filter(|o| o.status.success()),
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "online");
    assert!(!read_status(&first.ca).status.success());
    assert!(hub.get("/healthz").is_some());
}

use pki::Pki;

/// `mosquitto_sub` (logged in as `login`) on `filter`, with a receiver of the lines
/// `TOPIC PAYLOAD` it prints, retained messages first. Dropping the `Proc` kills it.
fn watch_bus(
    port: u16,
    login: (&str, &str),
    filter: &str,
) -> (Proc, std::sync::mpsc::Receiver<String>) {
    let sub = require_program("mosquitto_sub", "mosquitto-clients");
    let mut proc = spawn(
        "mosquitto_sub",
        &sub,
        &[
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-v",
            "-t",
            filter,
            "-u",
            login.0,
            "-P",
            login.1,
            "-i",
            &format!("{}-watch", login.0),
        ],
        Stdio::piped(),
    );
    let lines = proc.stdout_lines();
    (proc, lines)
}
