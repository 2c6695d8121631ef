//! Tests of the guard's side of authentication: anonymous policy, CONNACK codes, the
//! concurrency bound, the cache, and the per-identity checks at CONNECT.

use std::sync::atomic::{AtomicUsize, Ordering};

use sitewatch_proto::{NodeId, SiteId};

use super::*;

/// Knows `agent`/`good` (bound to club/pi), `app`/`app` (a client), `hub`/`hub` (trusted)
/// and `revoked`; optionally slow, counting calls and the most running at once.
#[derive(Default)]
struct TestAuth {
    delay: Duration,
    calls: AtomicUsize,
    running: AtomicUsize,
    max_running: AtomicUsize,
}

impl Authenticator for TestAuth {
    fn check(&self, c: &Credentials<'_>) -> AuthDecision {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_running.fetch_max(now, Ordering::SeqCst);
        std::thread::sleep(self.delay);
        self.running.fetch_sub(1, Ordering::SeqCst);
        match (c.username, c.password) {
            ("agent", Some(b"good")) => AuthDecision::Allow(Access::Node(binding())),
            ("app", Some(b"app")) => AuthDecision::Allow(Access::Client),
            ("hub", Some(b"hub")) => AuthDecision::Allow(Access::Trusted),
            ("revoked", _) => AuthDecision::Deny(Denial::NotAuthorized("revoked".into())),
            ("panic", _) => panic!("authenticator bug"),
            _ => AuthDecision::Deny(Denial::BadCredentials("unknown user".into())),
        }
    }
}

fn binding() -> NodeBinding {
    NodeBinding::new(SiteId::new("club").unwrap(), NodeId::new("pi").unwrap())
}

fn authorizer(auth: Option<Arc<TestAuth>>, concurrency: usize, cache: bool) -> Authorizer {
    Authorizer {
        authenticator: auth.map(|a| a as Arc<dyn Authenticator>),
        allow_anonymous: false,
        anonymous_loopback: false,
        trusted_prefix: Some("sw-hub.".to_owned()),
        permits: Arc::new(Semaphore::new(concurrency)),
        timeout: Duration::from_secs(5),
        cache: cache.then(|| LoginCache::new(Duration::from_secs(60)).unwrap()),
        counters: Arc::new(Counters::default()),
    }
}

fn login(client_id: &str, user: Option<&str>, password: &[u8]) -> Login {
    Login {
        client_id: client_id.to_owned(),
        username: user.map(str::to_owned),
        password: Some(password.to_vec()),
        peer: "127.0.0.1:40000".parse().unwrap(),
        tls: false,
        client_certificate: None,
    }
}

#[tokio::test]
async fn without_an_authenticator_everyone_is_a_client_but_the_gate_owner() {
    let a = authorizer(None, 1, false);
    assert_eq!(a.authorize(login("x", None, b"")).await, Ok(Access::Client));
    assert_eq!(
        a.authorize(login("x", Some("any"), b"thing")).await,
        Ok(Access::Client)
    );
    assert_eq!(
        a.authorize(login("sw-hub.1", None, b"")).await,
        Ok(Access::Trusted)
    );
}

#[tokio::test]
async fn verdicts_map_to_connack_codes() {
    let a = authorizer(Some(Arc::new(TestAuth::default())), 2, false);
    let code = |r: Result<Access, Refusal>| r.map_err(|r| (r.reason, r.code));
    assert_eq!(
        code(
            a.authorize(login("sw.club.pi", Some("agent"), b"good"))
                .await
        ),
        Ok(Access::Node(binding()))
    );
    assert_eq!(
        code(a.authorize(login("x", Some("agent"), b"bad")).await),
        Err((
            RejectReason::BadCredentials,
            ConnectReturnCode::BadUserNameOrPassword
        ))
    );
    assert_eq!(
        code(a.authorize(login("x", Some("revoked"), b"")).await),
        Err((
            RejectReason::NotAuthorized,
            ConnectReturnCode::NotAuthorized
        ))
    );
    // Anonymous: refused unless allowed, and then never trusted, whatever its id.
    assert_eq!(
        code(a.authorize(login("sw-hub.1", None, b"")).await),
        Err((
            RejectReason::NotAuthorized,
            ConnectReturnCode::NotAuthorized
        ))
    );
    let open = Authorizer {
        allow_anonymous: true,
        ..authorizer(Some(Arc::new(TestAuth::default())), 2, false)
    };
    assert_eq!(
        open.authorize(login("sw-hub.1", None, b"")).await,
        Ok(Access::Local)
    );
}

#[tokio::test]
async fn a_panicking_authenticator_answers_server_unavailable() {
    let a = authorizer(Some(Arc::new(TestAuth::default())), 1, false);
    for _ in 0..2 {
        let refusal = a
            .authorize(login("x", Some("panic"), b""))
            .await
            .unwrap_err();
        assert_eq!(refusal.code, ConnectReturnCode::ServerUnavailable);
    }
    // The permit came back both times.
    assert_eq!(
        a.authorize(login("x", Some("app"), b"app")).await,
        Ok(Access::Client)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checks_run_at_most_concurrency_at_once_and_off_the_runtime() {
    let auth = Arc::new(TestAuth {
        delay: Duration::from_millis(50),
        ..TestAuth::default()
    });
    let a = Arc::new(authorizer(Some(auth.clone()), 2, false));
    let started = std::time::Instant::now();
    let logins: Vec<_> = (0..8)
        .map(|i| {
            let a = a.clone();
            tokio::spawn(async move {
                a.authorize(login(&format!("c{i}"), Some("app"), b"app"))
                    .await
            })
        })
        .collect();
    // The runtime stays responsive while the checks block their threads.
    let tick = std::time::Instant::now();
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert!(tick.elapsed() < Duration::from_millis(40));
    for login in logins {
        assert_eq!(login.await.unwrap(), Ok(Access::Client));
    }
    assert_eq!(auth.max_running.load(Ordering::SeqCst), 2);
    // 8 checks of 50 ms, 2 at a time.
    assert!(started.elapsed() >= Duration::from_millis(200));
}

#[tokio::test]
async fn a_login_that_cannot_get_a_slot_in_time_is_told_to_retry() {
    let auth = Arc::new(TestAuth {
        delay: Duration::from_millis(400),
        ..TestAuth::default()
    });
    let a = Arc::new(Authorizer {
        timeout: Duration::from_millis(100),
        ..authorizer(Some(auth), 1, false)
    });
    let first = tokio::spawn({
        let a = a.clone();
        async move { a.authorize(login("a", Some("app"), b"app")).await }
    });
    tokio::time::sleep(Duration::from_millis(20)).await;
    let second = a.authorize(login("b", Some("app"), b"app")).await;
    assert_eq!(second.unwrap_err().reason, RejectReason::AuthUnavailable);
    // The first check outlives its own timeout too: refused, but its slot is released.
    assert_eq!(
        first.await.unwrap().unwrap_err().reason,
        RejectReason::AuthUnavailable
    );
}

#[tokio::test]
async fn successful_logins_are_cached_and_failures_are_not() {
    let auth = Arc::new(TestAuth::default());
    let a = authorizer(Some(auth.clone()), 1, true);
    for _ in 0..3 {
        assert!(
            a.authorize(login("sw.club.pi", Some("agent"), b"good"))
                .await
                .is_ok()
        );
        assert!(
            a.authorize(login("sw.club.pi", Some("agent"), b"bad"))
                .await
                .is_err()
        );
    }
    assert_eq!(auth.calls.load(Ordering::SeqCst), 1 + 3);
    assert_eq!(a.counters.snapshot().auth_cache_hits, 2);
    a.forget_logins();
    assert!(
        a.authorize(login("sw.club.pi", Some("agent"), b"good"))
            .await
            .is_ok()
    );
    assert_eq!(auth.calls.load(Ordering::SeqCst), 5);
}

/// A login checked while the credentials change must not be cached: its check may have
/// seen the old ones, and the cache would let the next login in without asking again.
#[tokio::test]
async fn a_check_running_when_logins_are_forgotten_is_not_cached() {
    let auth = Arc::new(TestAuth {
        delay: Duration::from_millis(300),
        ..TestAuth::default()
    });
    let a = Arc::new(authorizer(Some(auth.clone()), 1, true));
    let first = tokio::spawn({
        let a = a.clone();
        async move {
            a.authorize(login("sw.club.pi", Some("agent"), b"good"))
                .await
        }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    a.forget_logins();
    assert!(first.await.unwrap().is_ok());
    assert!(
        a.authorize(login("sw.club.pi", Some("agent"), b"good"))
            .await
            .is_ok()
    );
    assert_eq!(
        auth.calls.load(Ordering::SeqCst),
        2,
        "the second login was checked"
    );
    assert_eq!(a.counters.snapshot().auth_cache_hits, 0);
}

fn rules(prefix: &Prefix, authenticates: bool) -> SessionRules<'_> {
    SessionRules {
        prefix,
        authenticates,
        trusted_prefix: Some("sw-hub."),
    }
}

#[test]
fn a_node_is_held_to_its_client_id_and_will() {
    let prefix = Prefix::default();
    let rules = rules(&prefix, true);
    let node = Access::Node(binding());
    let status = "sitewatch/v1/club/pi/status";
    assert!(matches!(
        check_session(&node, "sw.club.pi", Some(status), &rules),
        Ok(Some(_))
    ));
    assert!(matches!(
        check_session(&node, "sw.club.pi", None, &rules),
        Ok(Some(_))
    ));
    for (id, will) in [
        ("sw.club.other", Some(status)),
        ("anything", None),
        ("sw-hub.1", None),
        ("sw.club.pi", Some("sitewatch/v1/club/other/status")),
        ("sw.club.pi", Some("sitewatch/v1/club/pi/metrics")),
    ] {
        let refusal = check_session(&node, id, will, &rules).unwrap_err();
        assert_eq!(
            refusal.code,
            ConnectReturnCode::NotAuthorized,
            "{id} {will:?}"
        );
    }
}

#[test]
fn agent_and_application_ids_are_reserved_only_when_clients_authenticate() {
    let prefix = Prefix::default();
    let (strict, open) = (rules(&prefix, true), rules(&prefix, false));
    for access in [Access::Client, Access::Trusted] {
        assert!(check_session(&access, "sw.club.pi", None, &strict).is_err());
        assert_eq!(check_session(&access, "sw.club.pi", None, &open), Ok(None));
    }
    assert_eq!(
        check_session(&Access::Trusted, "node-red", Some("any/where"), &strict),
        Ok(None)
    );
    // An integration's account when clients authenticate: a reader, whose will must be
    // outside the namespace too.
    let reader = Some(TopicPolicy::Reader(ReaderPolicy::new(&prefix)));
    assert_eq!(
        check_session(&Access::Client, "node-red", Some("any/where"), &strict),
        Ok(reader.clone())
    );
    let refusal = check_session(
        &Access::Client,
        "node-red",
        Some("sitewatch/v1/club/pi/status"),
        &strict,
    )
    .unwrap_err();
    assert_eq!(refusal.code, ConnectReturnCode::NotAuthorized);
    assert!(
        refusal.detail.contains("may not publish under"),
        "{}",
        refusal.detail
    );
    assert_eq!(
        check_session(&Access::Client, "node-red", Some("sitewatch/v1/x"), &open),
        Ok(None),
        "without an authenticator everyone is unconfined"
    );
    assert!(check_session(&Access::Client, "sw-hub.1", None, &strict).is_err());
    assert_eq!(
        check_session(&Access::Client, "sw-hub.1", None, &open),
        Ok(None)
    );
    assert_eq!(
        check_session(&Access::Trusted, "sw-hub.1", None, &strict),
        Ok(None)
    );
}

#[tokio::test]
async fn anonymous_loopback_admits_local_clients_only() {
    let a = Authorizer {
        anonymous_loopback: true,
        ..authorizer(Some(Arc::new(TestAuth::default())), 1, false)
    };
    let code = |r: Result<Access, Refusal>| r.map_err(|r| (r.reason, r.code));
    let from = |peer: &str| Login {
        peer: peer.parse().unwrap(),
        ..login("sw.club.pi", None, b"")
    };
    for peer in [
        "127.0.0.1:1",
        "127.8.9.10:1",
        "[::1]:1",
        "[::ffff:127.0.0.1]:1",
    ] {
        assert_eq!(a.authorize(from(peer)).await, Ok(Access::Local), "{peer}");
    }
    for peer in ["192.0.2.7:1", "[2001:db8::1]:1", "[::ffff:192.0.2.7]:1"] {
        assert_eq!(
            code(a.authorize(from(peer)).await),
            Err((
                RejectReason::NotAuthorized,
                ConnectReturnCode::NotAuthorized
            )),
            "{peer}"
        );
    }
    // A local client may use an agent's id, never the application's.
    let prefix = Prefix::default();
    let strict = rules(&prefix, true);
    assert_eq!(
        check_session(&Access::Local, "sw.club.pi", None, &strict),
        Ok(None)
    );
    assert!(check_session(&Access::Local, "sw-hub.1", None, &strict).is_err());
    assert!(Access::Local.is_rate_limited());
}
