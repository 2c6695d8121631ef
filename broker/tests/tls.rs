//! The TLS listener: terminated by the guard, handshakes in each connection's task under
//! `connect_timeout` — so idle sockets do not hold up new clients, which is what rumqttd's
//! own TLS listener (handshake awaited in its accept loop) cannot promise — certificates
//! reloadable at runtime, optional client certificates; rumqttc and Debian's mosquitto
//! clients as TLS clients. Certificates are made with `openssl` at test time.

mod common;
#[path = "../../agent/tests/support/pki.rs"]
mod pki;

use std::path::Path;
use std::process::Command;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::{
    Client, TestBroker, TestUsers, options, require_program, tls_client_config, tls_options,
};
use pki::Pki;
use sitewatch_broker::{BrokerConfig, StartOptions, TlsFiles};
use tokio::net::TcpStream;

fn make_pki(dir: &Path) -> Pki {
    Pki::generate(&require_program("openssl", "openssl"), dir)
}

fn tls_config(cert: &Path, key: &Path, client_ca: Option<&Path>) -> BrokerConfig {
    BrokerConfig {
        tls_listen: Some("127.0.0.1:0".parse().unwrap()),
        tls: Some(TlsFiles {
            cert: cert.to_owned(),
            key: key.to_owned(),
            client_ca: client_ca.map(Path::to_owned),
        }),
        ..BrokerConfig::default()
    }
}

#[tokio::test]
async fn tls_and_plain_clients_talk_through_the_guard() {
    let dir = tempfile::tempdir().unwrap();
    let pki = make_pki(dir.path());
    let broker = TestBroker::start(tls_config(&pki.server_cert, &pki.server_key, None)).await;
    let tls = tls_client_config(&pki.ca, None);
    let mut secure = Client::connect_with(tls_options(broker.tls_addr(), "secure", tls)).await;
    secure.subscribe("from/plain").await;
    let mut plain = Client::connect(broker.addr(), "plain").await;
    plain.subscribe("from/tls").await;
    secure.publish("from/tls", "over tls", false).await;
    assert_eq!(&plain.next_publish().await.payload[..], b"over tls");
    plain.publish("from/plain", "over tcp", false).await;
    assert_eq!(&secure.next_publish().await.payload[..], b"over tcp");
    secure.kill().await;
    plain.kill().await;
    broker.stop().await;
}

/// The acceptance figure of issue 8: 1,000 idle TCP connections to the TLS port do not
/// delay a new TLS client by more than 1 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_idle_sockets_do_not_delay_a_new_tls_client() {
    const IDLE: usize = 1000;
    raise_open_files_limit(2 * IDLE as u64 + 512);
    let dir = tempfile::tempdir().unwrap();
    let pki = make_pki(dir.path());
    let broker = TestBroker::start(BrokerConfig {
        // The idle sockets must still be waiting when the new client comes.
        connect_timeout: Duration::from_secs(60),
        ..tls_config(&pki.server_cert, &pki.server_key, None)
    })
    .await;
    let addr = broker.tls_addr();
    let tls = tls_client_config(&pki.ca, None);

    let started = Instant::now();
    let client = Client::connect_with(tls_options(addr, "baseline", tls.clone())).await;
    let baseline = started.elapsed();
    client.kill().await;

    let mut idle = Vec::with_capacity(IDLE);
    for _ in 0..IDLE {
        idle.push(TcpStream::connect(addr).await.expect("idle TCP connection"));
    }
    // Let the guard accept them all: each now waits for a handshake in its own task.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    let mut client = Client::connect_with(tls_options(addr, "behind-idle", tls)).await;
    let with_idle = started.elapsed();
    client.subscribe("t").await;
    println!(
        "TLS connect + CONNACK: {baseline:?} alone, {with_idle:?} with {IDLE} idle TCP \
         connections open to the TLS port"
    );
    assert!(with_idle < Duration::from_secs(1), "{with_idle:?}");
    let stats = broker.broker.stats();
    assert_eq!(stats.tls_handshake_timeouts, 0);
    drop(idle);
    client.kill().await;
    broker.stop().await;
}

#[tokio::test]
async fn reload_swaps_the_certificate_and_a_bad_reload_keeps_the_old_one() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    std::fs::create_dir_all(&a).unwrap();
    std::fs::create_dir_all(&b).unwrap();
    let (pki_a, pki_b) = (make_pki(&a), make_pki(&b));
    let (cert, key) = (dir.path().join("live.pem"), dir.path().join("live.key"));
    let install = |pki: &Pki| {
        std::fs::copy(&pki.server_cert, &cert).unwrap();
        std::fs::copy(&pki.server_key, &key).unwrap();
    };
    install(&pki_a);
    let broker = TestBroker::start(tls_config(&cert, &key, None)).await;
    let addr = broker.tls_addr();
    let trusts = |pki: &Pki, id: &str| tls_options(addr, id, tls_client_config(&pki.ca, None));

    Client::connect_with(trusts(&pki_a, "a1"))
        .await
        .kill()
        .await;
    assert!(Client::try_connect(trusts(&pki_b, "b1")).await.is_err());

    install(&pki_b);
    broker.broker.reload_tls().expect("reload B");
    Client::connect_with(trusts(&pki_b, "b2"))
        .await
        .kill()
        .await;
    let err = Client::try_connect(trusts(&pki_a, "a2")).await.err();
    assert!(
        err.is_some(),
        "a client trusting only CA A is refused after the reload"
    );

    // A broken key: the reload fails, names the file, and B stays in force.
    std::fs::write(&key, "not a key").unwrap();
    let err = broker.broker.reload_tls().unwrap_err().to_string();
    assert!(err.contains("live.key"), "{err}");
    Client::connect_with(trusts(&pki_b, "b3"))
        .await
        .kill()
        .await;
    // A key that does not fit the certificate: same.
    std::fs::copy(&pki_a.server_key, &key).unwrap();
    let err = broker.broker.reload_tls().unwrap_err().to_string();
    assert!(err.contains("cannot be used together"), "{err}");
    Client::connect_with(trusts(&pki_b, "b4"))
        .await
        .kill()
        .await;
    broker.stop().await;
}

#[tokio::test]
async fn bad_files_fail_the_start_and_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.pem");
    let err = sitewatch_broker::start(
        BrokerConfig {
            listen: None,
            ..tls_config(&missing, &missing, None)
        },
        tokio_util::sync::CancellationToken::new(),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("missing.pem") && err.contains("certificate"),
        "{err}"
    );
}

#[tokio::test]
async fn client_certificates_are_required_when_a_client_ca_is_set() {
    let dir = tempfile::tempdir().unwrap();
    let pki = make_pki(dir.path());
    let users = TestUsers::new(Duration::ZERO);
    let broker = TestBroker::start_with(
        tls_config(&pki.server_cert, &pki.server_key, Some(&pki.ca)),
        users.options(),
    )
    .await;
    let addr = broker.tls_addr();
    for attempt in 1..=2 {
        let mut o = tls_options(addr, "no-cert", tls_client_config(&pki.ca, None));
        o.set_credentials("dash", "dash");
        assert!(
            Client::try_connect(o).await.is_err(),
            "attempt {attempt} without a client certificate"
        );
    }
    let with_cert = tls_client_config(&pki.ca, Some((&pki.client_cert, &pki.client_key)));
    let mut o = tls_options(addr, "with-cert", with_cert);
    o.set_credentials("dash", "dash");
    let mut client = Client::connect_with(o).await;
    assert!(users.saw_certificate.load(Ordering::SeqCst));
    client.subscribe("x").await;
    client.publish("x", "y", false).await;
    assert_eq!(&client.next_publish().await.payload[..], b"y");
    assert!(broker.broker.stats().tls_handshake_failures >= 2);
    // The plain listener of the same broker is unaffected.
    let mut plain = options(broker.addr(), "plain");
    plain.set_credentials("dash", "dash");
    Client::connect_with(plain).await.kill().await;
    client.kill().await;
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mosquitto_clients_interoperate_over_tls() {
    let sub = require_program("mosquitto_sub", "mosquitto-clients");
    let publ = require_program("mosquitto_pub", "mosquitto-clients");
    let dir = tempfile::tempdir().unwrap();
    let pki = make_pki(dir.path());
    let users = TestUsers::new(Duration::ZERO);
    let plain_tls = TestBroker::start_with(
        tls_config(&pki.server_cert, &pki.server_key, None),
        users.options(),
    )
    .await;
    let mutual_tls = TestBroker::start_with(
        tls_config(&pki.server_cert, &pki.server_key, Some(&pki.ca)),
        StartOptions::default(),
    )
    .await;

    let ca = pki.ca.display().to_string();
    let port = plain_tls.tls_addr().port().to_string();
    let login = ["-u", "dash", "-P", "dash"];
    let base = ["-h", "127.0.0.1", "-p", &port, "--cafile", &ca];
    let published = run(Command::new(&publ).args(base).args(login).args([
        "-i",
        "interop-pub",
        "-t",
        "interop/x",
        "-m",
        "hello",
        "-r",
        "-q",
        "1",
    ]))
    .await;
    assert!(published.status.success(), "{published:?}");
    let received = run(Command::new(&sub).args(base).args(login).args([
        "-i",
        "interop-sub",
        "-t",
        "interop/#",
        "-C",
        "1",
        "-W",
        "10",
        "-v",
    ]))
    .await;
    assert!(received.status.success(), "{received:?}");
    assert_eq!(
        String::from_utf8_lossy(&received.stdout).trim(),
        "interop/x hello"
    );
    // Wrong password over TLS: refused (mosquitto_sub prints the CONNACK reason).
    let refused = run(Command::new(&sub).args(base).args([
        "-u",
        "dash",
        "-P",
        "wrong",
        "-t",
        "interop/#",
        "-C",
        "1",
        "-W",
        "5",
    ]))
    .await;
    assert!(!refused.status.success(), "{refused:?}");

    // Client certificates: accepted with one, refused without.
    let port = mutual_tls.tls_addr().port().to_string();
    let base = ["-h", "127.0.0.1", "-p", &port, "--cafile", &ca];
    let (cert, key) = (
        pki.client_cert.display().to_string(),
        pki.client_key.display().to_string(),
    );
    let published = run(Command::new(&publ)
        .args(base)
        .args(["--cert", &cert, "--key", &key])
        .args(["-t", "mtls/x", "-m", "hi", "-r", "-q", "1"]))
    .await;
    assert!(published.status.success(), "{published:?}");
    let received = run(Command::new(&sub)
        .args(base)
        .args(["--cert", &cert, "--key", &key])
        .args(["-t", "mtls/#", "-C", "1", "-W", "10"]))
    .await;
    assert_eq!(String::from_utf8_lossy(&received.stdout).trim(), "hi");
    let refused = run(Command::new(&sub)
        .args(base)
        .args(["-t", "mtls/#", "-C", "1", "-W", "5"]))
    .await;
    assert!(!refused.status.success(), "{refused:?}");
    plain_tls.stop().await;
    mutual_tls.stop().await;
}

/// Runs a command to completion off the async runtime (the broker runs on it).
async fn run(command: &mut Command) -> std::process::Output {
    let mut command = std::mem::replace(command, Command::new("true"));
    tokio::task::spawn_blocking(move || command.output().expect("run command"))
        .await
        .expect("command thread")
}

/// Raises the soft open-files limit to at least `wanted` (up to the hard limit): the test
/// holds both ends of every idle connection.
fn raise_open_files_limit(wanted: u64) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
    #[allow(clippy::unnecessary_cast, clippy::useless_conversion)]
    let (cur, max) = (lim.rlim_cur as u64, lim.rlim_max as u64);
    if cur >= wanted {
        return;
    }
    assert!(
        max >= wanted,
        "this test needs {wanted} open files but the hard limit is {max}: raise it \
         (ulimit -Hn) and run again"
    );
    let raised = libc::rlimit {
        rlim_cur: wanted as libc::rlim_t,
        rlim_max: lim.rlim_max,
    };
    // SAFETY: as above.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) }, 0);
}
