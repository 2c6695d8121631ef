//! E-mail notifier against a real SMTP server: Debian's aiosmtpd (`python3 -m aiosmtpd`)
//! started by the test on a free loopback port, plain, with STARTTLS and with implicit TLS
//! (a test CA made by `openssl`). A small handler class prints each received message,
//! decoded by Python's `email` package, as one JSON line; the test asserts what a user
//! would read: subject, body, sender and recipients.

mod common;
#[path = "../../agent/tests/support/pki.rs"]
mod pki;
#[path = "support/smtp.rs"]
mod smtp;

use std::path::Path;
use std::time::Duration;

use common::{free_port, require_program};
use sitewatch_hub::alert::{AlertsConfig, Engine, Notification, NotificationKind};
use sitewatch_hub::notify::{self, Dispatcher, NotifierConfig};
use sitewatch_proto::payload::Temperature;
use sitewatch_proto::{Metrics, NodeId, SiteId};
use smtp::Smtp;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

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
