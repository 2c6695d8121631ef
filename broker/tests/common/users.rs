//! A user table standing in for the hub's node credentials, and rumqttc options that log in.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rumqttc::{LastWill, MqttOptions, QoS};
use sitewatch_broker::StartOptions;

use super::options;

/// A user table for tests, optionally slow, that records what it was asked.
///
/// Users: `pi-1`/`secret-1` bound to club-a/pi-1, `pi-2`/`secret-2` bound to club-b/pi-2,
/// `dash`/`dash` a client, `hub`/`hub` trusted, `revoked` (not authorized).
pub struct TestUsers {
    users: std::collections::HashMap<&'static str, (&'static str, sitewatch_broker::Access)>,
    /// How long each check blocks its thread (a password hash).
    pub delay: Duration,
    pub calls: std::sync::atomic::AtomicUsize,
    running: std::sync::atomic::AtomicUsize,
    pub max_running: std::sync::atomic::AtomicUsize,
    /// Whether the last check saw a client certificate.
    pub saw_certificate: std::sync::atomic::AtomicBool,
}

impl TestUsers {
    pub fn new(delay: Duration) -> Arc<TestUsers> {
        use sitewatch_broker::{Access, NodeBinding};
        let node = |site: &str, node: &str| {
            Access::Node(NodeBinding::new(
                site.parse().expect("site id"),
                node.parse().expect("node id"),
            ))
        };
        Arc::new(TestUsers {
            users: [
                ("pi-1", ("secret-1", node("club-a", "pi-1"))),
                ("pi-2", ("secret-2", node("club-b", "pi-2"))),
                ("dash", ("dash", Access::Client)),
                ("hub", ("hub", Access::Trusted)),
                ("revoked", ("revoked", Access::Client)),
            ]
            .into_iter()
            .collect(),
            delay,
            calls: Default::default(),
            running: Default::default(),
            max_running: Default::default(),
            saw_certificate: Default::default(),
        })
    }

    /// `StartOptions` with these users as the authenticator.
    pub fn options(self: &Arc<Self>) -> StartOptions {
        StartOptions {
            authenticator: Some(self.clone()),
            ..StartOptions::default()
        }
    }
}

impl sitewatch_broker::Authenticator for TestUsers {
    fn check(&self, c: &sitewatch_broker::Credentials<'_>) -> sitewatch_broker::AuthDecision {
        use sitewatch_broker::{AuthDecision, Denial};
        use std::sync::atomic::Ordering::SeqCst;
        self.calls.fetch_add(1, SeqCst);
        let now = self.running.fetch_add(1, SeqCst) + 1;
        self.max_running.fetch_max(now, SeqCst);
        std::thread::sleep(self.delay);
        self.running.fetch_sub(1, SeqCst);
        self.saw_certificate
            .store(c.client_certificate.is_some(), SeqCst);
        match self.users.get(c.username) {
            None => AuthDecision::Deny(Denial::BadCredentials("unknown user".into())),
            Some((password, _)) if c.password != Some(password.as_bytes()) => {
                AuthDecision::Deny(Denial::BadCredentials("wrong password".into()))
            }
            Some(_) if c.username == "revoked" => {
                AuthDecision::Deny(Denial::NotAuthorized("revoked".into()))
            }
            Some((_, access)) => AuthDecision::Allow(access.clone()),
        }
    }
}

/// rumqttc options for the agent of club-a/pi-1, with its credentials and will.
pub fn agent_options(addr: SocketAddr) -> MqttOptions {
    let mut o = options(addr, "sw.club-a.pi-1");
    o.set_credentials("pi-1", "secret-1");
    o.set_last_will(LastWill::new(
        "sitewatch/v1/club-a/pi-1/status",
        "offline",
        QoS::AtLeastOnce,
        true,
    ));
    o
}

/// rumqttc options with credentials.
pub fn login_options(addr: SocketAddr, id: &str, user: &str, password: &str) -> MqttOptions {
    let mut o = options(addr, id);
    o.set_credentials(user, password);
    o
}
