//! Authentication: the [`Authenticator`] trait the application implements, and how the guard
//! calls it.
//!
//! The guard authenticates every CONNECT itself, before rumqttd sees it (see
//! `docs/BROKER.md` for why not in rumqttd's auth callback). The check may be slow (a
//! password hash), so it runs on tokio's blocking pool, at most `auth_concurrency` at once,
//! each login waiting at most `connect_timeout` for its turn and its answer; the accept loop
//! and the other connections never wait for it. Successful logins are cached for
//! `auth_cache_ttl` (`login_cache.rs`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use sitewatch_proto::Prefix;
use tokio::sync::Semaphore;
use tokio::time::{Instant, timeout_at};
use tracing::error;

use crate::connect::ConnectReturnCode;
use crate::login_cache::{KeyParts, LoginCache};
use crate::policy::{
    NodeBinding, NodePolicy, ReaderPolicy, TopicPolicy, unbound_may_use_client_id,
};
use crate::stats::{Counters, RejectReason};

/// Decides who may connect. Implemented by the application (the hub checks its node
/// credentials); called only for CONNECTs that carry a user name.
///
/// `check` may block (argon2, a database read): the guard runs it on tokio's blocking pool.
/// It must not log or keep the password.
pub trait Authenticator: Send + Sync + 'static {
    /// The verdict on one login.
    fn check(&self, credentials: &Credentials<'_>) -> AuthDecision;
}

/// What a client presented, and from where.
#[derive(Clone, Copy)]
pub struct Credentials<'a> {
    /// The MQTT client id (validated: printable ASCII without `/ + # $`; may be empty,
    /// then rumqttd assigns one).
    pub client_id: &'a str,
    /// The user name.
    pub username: &'a str,
    /// The password, if the client sent one.
    pub password: Option<&'a [u8]>,
    /// The client's address.
    pub peer: SocketAddr,
    /// Whether the client came through the TLS listener.
    pub tls: bool,
    /// The DER of the client's certificate, when `TlsFiles::client_ca` made the listener
    /// ask for one (it has then been verified against that CA).
    pub client_certificate: Option<&'a [u8]>,
}

impl std::fmt::Debug for Credentials<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("client_id", &self.client_id)
            .field("username", &self.username)
            .field("password", &self.password.map(|_| "<redacted>"))
            .field("peer", &self.peer)
            .field("tls", &self.tls)
            .field("client_certificate", &self.client_certificate.is_some())
            .finish()
    }
}

/// An authenticator's verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthDecision {
    /// Let the client in with this access.
    Allow(Access),
    /// Refuse it.
    Deny(Denial),
}

/// What an admitted client may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// An agent speaking for one node: it must connect as `sw.{site}.{node}`, its last will
    /// (if any) must be its node's `status`, it may publish only its node's agent topics and
    /// subscribe only to its node's `ack` and `alerts` (see `policy.rs`); rate-limited.
    Node(NodeBinding),
    /// An integration's account (Home Assistant, Node-RED, scripts), rate-limited: reads any
    /// topic; when clients authenticate, publishes anywhere but under the topic prefix
    /// (`policy::ReaderPolicy`). Without an authenticator every client is one, unconfined.
    Client,
    /// A client without user name, when `BrokerConfig::allow_anonymous` lets everyone in or
    /// `BrokerConfig::anonymous_loopback` lets the broker's own machine in (demos, local
    /// tools, agents without credentials): any topic and any client id but the
    /// application's, rate-limited. Anonymous clients can claim any identity anyway.
    Local,
    /// Any topic, no rate limit: the application's own client (the hub, which publishes an
    /// ack per node and batch).
    Trusted,
}

impl Access {
    /// Whether the publish rate limit applies.
    pub fn is_rate_limited(&self) -> bool {
        !matches!(self, Access::Trusted)
    }
}

/// Why a login is refused; the text goes to the log (never put the password in it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denial {
    /// Unknown user name or wrong password: CONNACK 4.
    BadCredentials(String),
    /// Valid credentials, but not allowed (revoked, wrong client id, wrong address):
    /// CONNACK 5.
    NotAuthorized(String),
}

/// A login as the guard read it, owned so it can move to the blocking pool.
pub(crate) struct Login {
    pub(crate) client_id: String,
    pub(crate) username: Option<String>,
    pub(crate) password: Option<Vec<u8>>,
    pub(crate) peer: SocketAddr,
    pub(crate) tls: bool,
    pub(crate) client_certificate: Option<Vec<u8>>,
}

/// A refused login: counter, CONNACK code, and what the log says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub(crate) reason: RejectReason,
    pub(crate) code: ConnectReturnCode,
    pub(crate) detail: String,
}

impl Refusal {
    pub(crate) fn not_authorized(detail: String) -> Self {
        Refusal {
            reason: RejectReason::NotAuthorized,
            code: ConnectReturnCode::NotAuthorized,
            detail,
        }
    }

    fn unavailable(detail: String) -> Self {
        Refusal {
            reason: RejectReason::AuthUnavailable,
            code: ConnectReturnCode::ServerUnavailable,
            detail,
        }
    }
}

/// The guard's side of authentication: policy for anonymous clients, concurrency, cache.
pub(crate) struct Authorizer {
    /// The application's authenticator; `None` lets everyone in anonymously.
    pub(crate) authenticator: Option<Arc<dyn Authenticator>>,
    /// With an authenticator, let clients without a user name in as [`Access::Local`].
    pub(crate) allow_anonymous: bool,
    /// With an authenticator, let clients without a user name that connect from a loopback
    /// address in as [`Access::Local`].
    pub(crate) anonymous_loopback: bool,
    /// Without an authenticator, clients whose id starts with this are [`Access::Trusted`]
    /// (the application's own client, as named by the gate).
    pub(crate) trusted_prefix: Option<String>,
    /// One permit per check allowed to run at once.
    pub(crate) permits: Arc<Semaphore>,
    /// How long a login may wait for a permit and its answer together.
    pub(crate) timeout: Duration,
    /// Recent successful logins, if enabled.
    pub(crate) cache: Option<LoginCache>,
    pub(crate) counters: Arc<Counters>,
}

impl Authorizer {
    /// Whether an authenticator is configured (agent client ids are then reserved).
    pub(crate) fn authenticates(&self) -> bool {
        self.authenticator.is_some()
    }

    /// Decides on a login; may take up to `timeout`.
    pub(crate) async fn authorize(&self, login: Login) -> Result<Access, Refusal> {
        let Some(authenticator) = &self.authenticator else {
            let trusted = self
                .trusted_prefix
                .as_deref()
                .is_some_and(|prefix| login.client_id.starts_with(prefix));
            return Ok(if trusted {
                Access::Trusted
            } else {
                Access::Client
            });
        };
        if login.username.is_none() {
            let loopback = match login.peer.ip() {
                std::net::IpAddr::V4(ip) => ip.is_loopback(),
                std::net::IpAddr::V6(ip) => {
                    ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
                }
            };
            return if self.allow_anonymous || (self.anonymous_loopback && loopback) {
                Ok(Access::Local)
            } else {
                Err(Refusal::not_authorized(
                    "no user name, and anonymous clients are not allowed".to_owned(),
                ))
            };
        }
        let key = self.cache.as_ref().map(|cache| {
            cache.key(&KeyParts {
                client_id: &login.client_id,
                username: login.username.as_deref().unwrap_or_default(),
                password: login.password.as_deref(),
                peer_ip: login.peer.ip(),
                tls: login.tls,
                client_certificate: login.client_certificate.as_deref(),
            })
        });
        let mut generation = 0;
        if let (Some(cache), Some(key)) = (&self.cache, &key) {
            let (cached, now) = cache.get(key, std::time::Instant::now());
            if let Some(access) = cached {
                self.counters.auth_cache_hit();
                return Ok(access);
            }
            generation = now;
        }

        let deadline = Instant::now() + self.timeout;
        let Ok(Ok(permit)) = timeout_at(deadline, self.permits.clone().acquire_owned()).await
        else {
            return Err(Refusal::unavailable(format!(
                "every authentication slot stayed busy for {:?} (raise auth_concurrency if \
                 this is not an attack): answering CONNACK 3 so the client retries",
                self.timeout
            )));
        };
        self.counters.auth_check();
        let authenticator = authenticator.clone();
        // The permit moves into the blocking task: it is released when the check ends, even
        // if this connection has given up waiting, so at most `auth_concurrency` run.
        let check = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            authenticator.check(&Credentials {
                client_id: &login.client_id,
                username: login.username.as_deref().unwrap_or_default(),
                password: login.password.as_deref(),
                peer: login.peer,
                tls: login.tls,
                client_certificate: login.client_certificate.as_deref(),
            })
        });
        let decision = match timeout_at(deadline, check).await {
            Ok(Ok(decision)) => decision,
            Ok(Err(err)) => {
                error!(cause = %err, "the authenticator panicked; refusing the login with CONNACK 3");
                return Err(Refusal::unavailable("authenticator panicked".to_owned()));
            }
            Err(_) => {
                return Err(Refusal::unavailable(format!(
                    "authentication took longer than {:?}",
                    self.timeout
                )));
            }
        };
        match decision {
            AuthDecision::Allow(access) => {
                if let (Some(cache), Some(key)) = (&self.cache, key) {
                    cache.insert(key, access.clone(), std::time::Instant::now(), generation);
                }
                Ok(access)
            }
            AuthDecision::Deny(Denial::BadCredentials(detail)) => Err(Refusal {
                reason: RejectReason::BadCredentials,
                code: ConnectReturnCode::BadUserNameOrPassword,
                detail,
            }),
            AuthDecision::Deny(Denial::NotAuthorized(detail)) => {
                Err(Refusal::not_authorized(detail))
            }
        }
    }

    /// Forgets every cached login.
    pub(crate) fn forget_logins(&self) {
        if let Some(cache) = &self.cache {
            cache.clear();
        }
    }
}

/// What [`check_session`] needs besides the client.
pub(crate) struct SessionRules<'a> {
    /// Topic prefix of the node topics.
    pub(crate) prefix: &'a Prefix,
    /// Whether clients authenticate; only then are client ids reserved (anonymous clients
    /// can claim any identity anyway).
    pub(crate) authenticates: bool,
    /// Client ids reserved for [`Access::Trusted`] clients: the gate's bypass prefix, so no
    /// dashboard can take over (and disconnect) the application's own session.
    pub(crate) trusted_prefix: Option<&'a str>,
}

/// The checks at CONNECT that depend on who the client is: a node's client id and last will
/// (see [`Access::Node`]); and, when clients authenticate, that nobody else uses an agent's
/// client id (`sw.…`) or the application's (`trusted_prefix`). Returns the node's topic
/// rules for the relay.
pub(crate) fn check_session(
    access: &Access,
    client_id: &str,
    will_topic: Option<&str>,
    rules: &SessionRules<'_>,
) -> Result<Option<TopicPolicy>, Refusal> {
    let Access::Node(binding) = access else {
        if rules.authenticates && *access != Access::Local && !unbound_may_use_client_id(client_id)
        {
            return Err(Refusal::not_authorized(format!(
                "client id {client_id:?} is reserved for the agent of that node"
            )));
        }
        if rules.authenticates
            && *access != Access::Trusted
            && rules
                .trusted_prefix
                .is_some_and(|prefix| client_id.starts_with(prefix))
        {
            return Err(Refusal::not_authorized(format!(
                "client id {client_id:?} is reserved for the application's own client"
            )));
        }
        if !(rules.authenticates && *access == Access::Client) {
            return Ok(None);
        }
        let reader = ReaderPolicy::new(rules.prefix);
        if let Some(topic) = will_topic
            && !reader.allows_publish(topic)
        {
            return Err(Refusal::not_authorized(format!(
                "last will on {topic:?}: MQTT user accounts may not publish under {:?}",
                reader.prefix()
            )));
        }
        return Ok(Some(TopicPolicy::Reader(reader)));
    };
    let policy = NodePolicy::new(rules.prefix, binding);
    if !policy.allows_client_id(client_id) {
        return Err(Refusal::not_authorized(format!(
            "credentials of node {binding} must connect as {:?}, not {client_id:?}",
            policy.client_id()
        )));
    }
    if let Some(topic) = will_topic
        && !policy.allows_will(topic)
    {
        return Err(Refusal::not_authorized(format!(
            "last will on {topic:?}: the will of node {binding} must be on {:?}",
            policy.status_topic()
        )));
    }
    Ok(Some(TopicPolicy::Node(policy)))
}

#[cfg(test)]
#[path = "auth_tests.rs"]
mod tests;
