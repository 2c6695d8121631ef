//! The hub behind a real Mosquitto configured the way docs/BROKER.md tells an operator:
//! TLS, the password file and ACL that `sitewatch-hub mosquitto-config` generates from the
//! hub's node registry, no anonymous access. An agent logs in with the lines `node add`
//! printed and its data is stored; site A's account cannot even get a message for site B
//! to the hub (Mosquitto drops it: the hub never sees it); an integration account reads the
//! bus but cannot publish agent data; anonymous clients are refused. Loopback only.

mod common;
#[path = "support/credentials.rs"]
mod credentials;
#[path = "../../agent/tests/support/pki.rs"]
mod pki;

use std::process::Command;
use std::time::Duration;

use common::*;
use credentials::*;
use pki::Pki;

const HUB_PASSWORD: &str = "hub-password-for-mosquitto";

#[test]
fn mosquitto_with_the_generated_acl_holds_each_node_to_its_topics() {
    let openssl = require_program("openssl", "openssl");
    let sub = require_program("mosquitto_sub", "mosquitto-clients");
    let dir = tempfile::tempdir().expect("temp dir");
    let pki = Pki::generate(&openssl, dir.path());
    let port = free_port();
    let url = format!("mqtts://127.0.0.1:{port}");

    // The hub's data directory and config, credentials made before anything runs.
    let data = tempfile::tempdir().expect("data dir");
    let hub_conf = dir.path().join("hub.toml");
    std::fs::write(
        &hub_conf,
        format!(
            "broker = {url:?}\nmqtt-username = \"hub\"\nmqtt-password = {HUB_PASSWORD:?}\n\
             [tls]\nca-file = {:?}\n[local-agent]\nenabled = false\n",
            pki.ca
        ),
    )
    .expect("hub.toml");
    let a = node_add(data.path(), "club-a", "pi", &url);
    let b = node_add(data.path(), "club-b", "pi", &url);
    mqtt_user_add(data.path(), "ha", "home-assistant-1");

    // The generated files.
    let generated = dir.path().join("mosquitto-sitewatch");
    let out = Command::new(hub_bin())
        .args(["--config", hub_conf.to_str().expect("utf-8"), "--data-dir"])
        .arg(data.path())
        .args(["mosquitto-config", "--out"])
        .arg(&generated)
        .output()
        .expect("mosquitto-config");
    assert!(out.status.success(), "{out:?}");
    let acl = std::fs::read_to_string(generated.join("acl")).expect("acl");
    assert!(acl.contains("user sw.club-a.pi\n"), "{acl}");
    let passwd = std::fs::read_to_string(generated.join("passwd")).expect("passwd");
    assert!(!passwd.contains(&a.password) && !passwd.contains(HUB_PASSWORD));

    let _broker = start_mosquitto(
        dir.path(),
        port,
        &format!(
            "include_dir {}\nuser root\npersistence false\nlistener {port} 127.0.0.1\n\
         cafile {}\ncertfile {}\nkeyfile {}\n",
            generated.display(),
            pki.ca.display(),
            pki.server_cert.display(),
            pki.server_key.display()
        ),
    );
    let hub = start_hub_with(
        data,
        &["--config", hub_conf.to_str().expect("utf-8")],
        false,
    );
    let data = hub.data.path();

    // The agent with A's lines, over TLS.
    let _agent = start_agent_with(
        dir.path(),
        "a",
        &a.snippet,
        &format!("[tls]\nca-file = {:?}\n", pki.ca),
    );
    wait_for("club-a/pi stored", Duration::from_secs(30), || {
        (stored(data, "club-a", "pi") >= 2).then_some(())
    });

    // A's account, signed with A's key, on B's topic: Mosquitto drops it, the hub never
    // sees it (no bad signature counted), nothing is stored for B. Twice.
    let b_topic = "sitewatch/v1/club-b/pi/metrics";
    let forged = signed(&a.key, b_topic, &metrics_body("abababababababab", 1));
    for _ in 0..2 {
        publish_with(
            port,
            Some(&pki.ca),
            Some(("intruder", &a.username, &a.password)),
            b_topic,
            &forged,
        );
    }
    // The integration account may read, not write agent data.
    let unsigned_before = counter(&hub, "messages_unsigned");
    publish_with(
        port,
        Some(&pki.ca),
        Some(("ha-writer", "ha", "home-assistant-1")),
        b_topic,
        &metrics_body("cdcdcdcdcdcdcdcd", 1),
    );
    // Anonymous: refused.
    let anonymous = publish_with(port, Some(&pki.ca), None, b_topic, &forged);
    assert!(!anonymous.status.success(), "{anonymous:?}");

    // B's own account on B's topic gets through (the control): once it is stored, the
    // messages above, published earlier on the same topic, would have arrived before it.
    let genuine = signed(&b.key, b_topic, &metrics_body("bcbcbcbcbcbcbcbc", 1));
    let ok = publish_with(
        port,
        Some(&pki.ca),
        Some(("sw.club-b.pi", &b.username, &b.password)),
        b_topic,
        &genuine,
    );
    assert!(ok.status.success(), "{ok:?}");
    wait_for("B's own message stored", Duration::from_secs(10), || {
        (stored(data, "club-b", "pi") == 1).then_some(())
    });
    assert_eq!(
        counter(&hub, "messages_bad_signature"),
        0,
        "never reached the hub"
    );
    assert_eq!(counter(&hub, "messages_unsigned"), unsigned_before);

    // The integration account reads node status.
    let read = Command::new(&sub)
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "--cafile"])
        .arg(&pki.ca)
        .args(["-u", "ha", "-P", "home-assistant-1"])
        .args(["-t", "sitewatch/v1/club-a/pi/status", "-C", "1", "-W", "5"])
        .output()
        .expect("mosquitto_sub");
    assert!(read.status.success(), "{read:?}");
    assert_eq!(String::from_utf8_lossy(&read.stdout).trim(), "online");
}
