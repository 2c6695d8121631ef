//! Agents' credentials on the hub: issuing them (`sitewatch-hub node add`), the registry
//! the embedded broker's authenticator and ingest's signature check read, and its refresh
//! when the database changes (the CLI runs in another process).
//!
//! A node has an MQTT password (stored as argon2id) and a signing key (stored as is: the
//! hub verifies HMACs with it). Its MQTT user name and client id are both
//! `sw.{site}.{node}`; the broker binds the connection to that node (`Access::Node`), so it
//! can publish only under its own topics. MQTT client accounts (`mqtt-user`) are for
//! integrations that read the bus.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use sitewatch_broker::{Access, AuthDecision, Authenticator, Credentials, Denial, NodeBinding};
use sitewatch_proto::sign::{self, NodeKey};
use sitewatch_proto::{NodeId, SiteId};
use tokio_util::sync::CancellationToken;

use crate::auth::{AuthError, password, secret};
use crate::store::StoreError;
use crate::store::auth::{AuthDb, Refused};
use crate::store::nodes::{self as db, MqttUserRow, NodeCredentialRow};

/// MQTT user name of the hub's own client on its embedded broker.
pub const HUB_MQTT_USER: &str = "sw-hub";
/// Prefix of a node's MQTT user name and client id.
const NODE_USER_PREFIX: &str = "sw.";
/// How often the running hub looks for credential changes made by the CLI.
pub const REFRESH_EVERY: Duration = Duration::from_secs(2);

/// Credentials just issued to a node; the password and key are shown only this once.
pub struct Issued {
    pub site: SiteId,
    pub node: NodeId,
    pub username: String,
    pub password: String,
    pub signing_key: String,
}

impl std::fmt::Debug for Issued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issued")
            .field("site", &self.site)
            .field("node", &self.node)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

impl Issued {
    /// The secrets as lines of the environment file the agent's systemd unit reads
    /// (`/etc/sitewatch/agent.env`, mode 0600), so `agent.toml` can stay world-readable.
    pub fn agent_env(&self) -> String {
        format!(
            "SITEWATCH_MQTT_USERNAME={}\nSITEWATCH_MQTT_PASSWORD={}\nSITEWATCH_SIGNING_KEY={}\n",
            self.username, self.password, self.signing_key
        )
    }

    /// The lines to put in the agent's config file.
    pub fn agent_snippet(&self, broker: &str) -> String {
        format!(
            "site = \"{site}\"\nnode = \"{node}\"\nbroker = \"{broker}\"\n\
             username = \"{user}\"\npassword = \"{password}\"\nsigning-key = \"{key}\"\n",
            site = self.site,
            node = self.node,
            user = self.username,
            password = self.password,
            key = self.signing_key,
        )
    }
}

/// The MQTT user name (and client id) of a node.
pub fn node_username(site: &SiteId, node: &NodeId) -> String {
    format!("{NODE_USER_PREFIX}{site}.{node}")
}

pub(crate) fn new_key() -> Result<String, AuthError> {
    Ok(sign::key_to_hex(&secret::random::<{ sign::KEY_BYTES }>()?))
}

/// New credentials for a node, as stored, and the generated password (shown once): the
/// password as argon2id, `signing_key` or a new one, and with `for_mosquitto` the password's
/// `$7$` hash for `mosquitto-config`. Blocking (argon2).
pub(crate) fn fresh_credentials(
    site: &SiteId,
    node: &NodeId,
    signing_key: Option<String>,
    for_mosquitto: bool,
    now_ms: u64,
) -> Result<(NodeCredentialRow, String), AuthError> {
    let password = secret::generate_password()?;
    let signing_key = match signing_key {
        Some(key) => key,
        None => new_key()?,
    };
    let mosquitto_hash = if for_mosquitto {
        Some(crate::mosquitto::password_hash(&password)?)
    } else {
        None
    };
    let row = NodeCredentialRow {
        site: site.to_string(),
        node: node.to_string(),
        password_hash: password::hash(&password)?,
        signing_key,
        created_ms: now_ms,
        mosquitto_hash,
    };
    Ok((row, password))
}

/// Creates credentials for a node (`rotate`: replaces existing ones, which stop working at
/// once). Blocking (argon2).
pub fn issue(
    db: &AuthDb,
    site: &SiteId,
    node: &NodeId,
    rotate: bool,
    now_ms: u64,
) -> Result<Issued, AuthError> {
    let (row, password) = fresh_credentials(site, node, None, true, now_ms)?;
    let signing_key = row.signing_key.clone();
    match db.put_node_credentials(&row, rotate)? {
        Ok(()) => Ok(Issued {
            site: site.clone(),
            node: node.clone(),
            username: node_username(site, node),
            password,
            signing_key,
        }),
        Err(_) => Err(AuthError::Conflict(format!(
            "node {site}/{node} has credentials already: `sitewatch-hub node rotate {site} \
             {node}` issues new ones (the old ones stop working at once)"
        ))),
    }
}

/// Credentials for the hub's own agent, re-issued at every start: a fresh password (held
/// only in memory), the node's existing signing key if it has one.
pub fn issue_local(
    db: &AuthDb,
    site: &SiteId,
    node: &NodeId,
    now_ms: u64,
) -> Result<Issued, AuthError> {
    let existing = db
        .read(db::node_credentials)?
        .into_iter()
        .find(|r| r.site == site.as_str() && r.node == node.as_str());
    let kept = existing
        .map(|row| row.signing_key)
        .filter(|key| NodeKey::from_hex(key).is_ok());
    // The hub's own agent talks to the embedded broker, or to an external one with the
    // hub's own MQTT account: it needs no Mosquitto password.
    let (row, password) = fresh_credentials(site, node, kept, false, now_ms)?;
    let _ = db.put_node_credentials(&row, true)?;
    Ok(Issued {
        site: site.clone(),
        node: node.clone(),
        username: node_username(site, node),
        password,
        signing_key: row.signing_key,
    })
}

/// What the hub's own agent runs with.
pub struct LocalCredentials {
    pub node: NodeId,
    pub signing_key: String,
    /// MQTT user name and password; `None` when they could not be stored (the agent then
    /// connects from loopback without them).
    pub login: Option<(String, String)>,
}

/// Issues the hub's own agent its credentials for this run ([`issue_local`]). When they
/// cannot be stored (a full disk) the hub still starts: the agent signs with the node's
/// stored key, if any, and logs in without a password.
pub async fn local_agent_credentials(
    db: &AuthDb,
    site: SiteId,
    node: NodeId,
) -> anyhow::Result<Option<LocalCredentials>> {
    let db = db.clone();
    let issued = tokio::task::spawn_blocking(move || {
        match issue_local(&db, &site, &node, crate::clock::now_ms()) {
            Ok(issued) => Ok(LocalCredentials {
                login: Some((issued.username, issued.password)),
                node: issued.node,
                signing_key: issued.signing_key,
            }),
            Err(err) => Err((
                err.to_string(),
                stored_key(&db, &site, &node).map(|k| (node, k)),
            )),
        }
    })
    .await
    .map_err(|e| anyhow::anyhow!("issuing the local agent's credentials: {e}"))?;
    match issued {
        Ok(local) => Ok(Some(local)),
        Err((err, key)) => {
            tracing::error!(
                cause = %err,
                "cannot store new credentials for the hub's own agent; it connects without a \
                 password this time"
            );
            Ok(key.map(|(node, signing_key)| LocalCredentials {
                node,
                signing_key,
                login: None,
            }))
        }
    }
}

/// The stored signing key of a node, if it has credentials (blocking; read only).
pub fn stored_key(db: &AuthDb, site: &SiteId, node: &NodeId) -> Option<String> {
    db.read(db::node_credentials)
        .ok()?
        .into_iter()
        .find(|r| r.site == site.as_str() && r.node == node.as_str())
        .map(|r| r.signing_key)
}

/// Deletes a node's credentials: its logins are refused and its signed messages dropped.
pub fn revoke(db: &AuthDb, site: &SiteId, node: &NodeId) -> Result<(), AuthError> {
    match db.delete_node_credentials(site.as_str(), node.as_str())? {
        Ok(()) => Ok(()),
        Err(_) => Err(AuthError::NotFound(format!(
            "node {site}/{node} has no credentials (see `sitewatch-hub node list`)"
        ))),
    }
}

/// Creates (or with `replace`, resets) an MQTT client account; returns the generated
/// password when none was given.
pub fn put_mqtt_user(
    db: &AuthDb,
    name: &str,
    chosen: Option<String>,
    replace: bool,
    now_ms: u64,
) -> Result<Option<String>, AuthError> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && !name.starts_with(NODE_USER_PREFIX)
        && name != HUB_MQTT_USER;
    if !valid {
        return Err(AuthError::Invalid(format!(
            "{name:?} cannot be an MQTT user name: use 1-64 letters, digits, `-`, `_` or `.`, \
             not starting with `sw.` (node credentials) and not `{HUB_MQTT_USER}`"
        )));
    }
    if let Some(p) = &chosen {
        password::check_strength(p).map_err(AuthError::Invalid)?;
    }
    let generated = match chosen {
        Some(_) => None,
        None => Some(secret::generate_password()?),
    };
    let plain = generated.clone().or(chosen).unwrap_or_default();
    let row = MqttUserRow {
        name: name.to_owned(),
        password_hash: password::hash(&plain)?,
        created_ms: now_ms,
        mosquitto_hash: Some(crate::mosquitto::password_hash(&plain)?),
    };
    match db.put_mqtt_user(&row, replace)? {
        Ok(()) => Ok(generated),
        Err(_) => Err(AuthError::Conflict(format!(
            "MQTT user {name} exists already (`mqtt-user passwd {name}` resets its password)"
        ))),
    }
}

/// Deletes an MQTT client account.
pub fn remove_mqtt_user(db: &AuthDb, name: &str) -> Result<(), AuthError> {
    match db.delete_mqtt_user(name)? {
        Ok(()) => Ok(()),
        Err(Refused::Missing | Refused::Exists | Refused::LastAdmin) => Err(AuthError::NotFound(
            format!("no MQTT user {name} (see `sitewatch-hub mqtt-user list`)"),
        )),
    }
}

/// One node as the registry holds it.
struct NodeEntry {
    password_hash: String,
    key: Option<NodeKey>,
}

/// The credentials as of one `credentials_version`.
#[derive(Default)]
pub struct Snapshot {
    version: i64,
    nodes: HashMap<(String, String), NodeEntry>,
    users: HashMap<String, String>,
}

impl Snapshot {
    /// Reads every credential (blocking).
    pub fn load(conn: &rusqlite::Connection) -> Result<Self, StoreError> {
        let version = db::credentials_version(conn)?;
        let mut nodes = HashMap::new();
        for row in db::node_credentials(conn)? {
            let key = NodeKey::from_hex(&row.signing_key).ok();
            if key.is_none() {
                tracing::error!(site = %row.site, node = %row.node,
                    "stored signing key is not valid hex; rotate the node's credentials");
            }
            nodes.insert(
                (row.site, row.node),
                NodeEntry {
                    password_hash: row.password_hash,
                    key,
                },
            );
        }
        let users = db::mqtt_users(conn)?
            .into_iter()
            .map(|u| (u.name, u.password_hash))
            .collect();
        Ok(Snapshot {
            version,
            nodes,
            users,
        })
    }

    /// How many nodes have credentials.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Whether `site/node` has credentials in this snapshot.
    pub fn has_node(&self, site: &str, node: &str) -> bool {
        self.nodes.contains_key(&(site.to_owned(), node.to_owned()))
    }

    /// The MQTT user names whose logins `newer` no longer accepts with the same password:
    /// nodes revoked or rotated, MQTT users removed or given a new password. Their open
    /// connections must be cut off.
    pub fn withdrawn_logins(&self, newer: &Snapshot) -> Vec<String> {
        let nodes = self
            .nodes
            .iter()
            .filter(|(id, old)| {
                newer
                    .nodes
                    .get(*id)
                    .is_none_or(|new| new.password_hash != old.password_hash)
            })
            .map(|((site, node), _)| format!("{NODE_USER_PREFIX}{site}.{node}"));
        let users = self
            .users
            .iter()
            .filter(|(name, hash)| newer.users.get(*name) != Some(*hash))
            .map(|(name, _)| name.clone());
        nodes.chain(users).collect()
    }

    /// The nodes that have credentials (valid ids only).
    pub fn node_ids(&self) -> Vec<(SiteId, NodeId)> {
        self.nodes
            .keys()
            .filter_map(|(s, n)| Some((SiteId::new(s.clone()).ok()?, NodeId::new(n.clone()).ok()?)))
            .collect()
    }
}

/// The credentials the running hub checks against, replaced whole when they change.
pub struct Registry {
    snapshot: RwLock<Arc<Snapshot>>,
    /// Password of the hub's own MQTT client, random per process.
    hub_secret: String,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("nodes", &self.current().nodes.len())
            .finish_non_exhaustive()
    }
}

impl Registry {
    pub fn new(snapshot: Snapshot) -> Result<Self, AuthError> {
        Ok(Registry {
            snapshot: RwLock::new(Arc::new(snapshot)),
            hub_secret: secret::hex(&secret::random::<24>()?),
        })
    }

    /// The password of the hub's own MQTT client.
    pub fn hub_secret(&self) -> &str {
        &self.hub_secret
    }

    pub fn current(&self) -> Arc<Snapshot> {
        match self.snapshot.read() {
            Ok(s) => s.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn replace(&self, snapshot: Snapshot) {
        let snapshot = Arc::new(snapshot);
        match self.snapshot.write() {
            Ok(mut s) => *s = snapshot,
            Err(poisoned) => *poisoned.into_inner() = snapshot,
        }
    }

    /// The signing key of a node, if it has credentials.
    pub fn key(&self, site: &str, node: &str) -> Option<NodeKey> {
        self.current()
            .nodes
            .get(&(site.to_owned(), node.to_owned()))
            .and_then(|e| e.key.clone())
    }

    /// The verdict on one MQTT login (blocking: argon2).
    fn check_login(&self, username: &str, password: &[u8]) -> AuthDecision {
        let password = std::str::from_utf8(password).unwrap_or("");
        let bad = |why: String| AuthDecision::Deny(Denial::BadCredentials(why));
        if username == HUB_MQTT_USER {
            return if secret::ct_eq(password.as_bytes(), self.hub_secret.as_bytes()) {
                AuthDecision::Allow(Access::Trusted)
            } else {
                bad(format!("wrong password for {HUB_MQTT_USER}"))
            };
        }
        let snapshot = self.current();
        if let Some(rest) = username.strip_prefix(NODE_USER_PREFIX) {
            let ids = rest
                .split_once('.')
                .and_then(|(s, n)| Some((SiteId::new(s).ok()?, NodeId::new(n).ok()?)));
            let Some((site, node)) = ids else {
                password::verify_nobody(password);
                return bad(format!(
                    "{username:?} is not a node user name (sw.SITE.NODE)"
                ));
            };
            let entry = snapshot
                .nodes
                .get(&(site.as_str().to_owned(), node.as_str().to_owned()));
            return match entry {
                Some(e) if password::verify(password, &e.password_hash) => {
                    AuthDecision::Allow(Access::Node(NodeBinding::new(site, node)))
                }
                Some(_) => bad(format!("wrong password for node {site}/{node}")),
                None => {
                    password::verify_nobody(password);
                    bad(format!(
                        "node {site}/{node} has no credentials (revoked, or never added with \
                         `sitewatch-hub node add {site} {node}`)"
                    ))
                }
            };
        }
        match snapshot.users.get(username) {
            Some(hash) if password::verify(password, hash) => AuthDecision::Allow(Access::Client),
            Some(_) => bad(format!("wrong password for MQTT user {username}")),
            None => {
                password::verify_nobody(password);
                bad(format!("no MQTT user {username}"))
            }
        }
    }
}

/// The embedded broker's view of the registry.
pub struct HubAuthenticator(pub Arc<Registry>);

impl Authenticator for HubAuthenticator {
    fn check(&self, credentials: &Credentials<'_>) -> AuthDecision {
        self.0.check_login(
            credentials.username,
            credentials.password.unwrap_or_default(),
        )
    }
}

/// Reloads the registry whenever `credentials_version` changes (a CLI command in another
/// process), makes the broker forget cached logins so a revocation bites at the next
/// login, and closes the open connections of revoked or rotated logins.
pub async fn refresh(
    registry: Arc<Registry>,
    db: AuthDb,
    broker: Option<sitewatch_broker::BrokerHandle>,
    stop: CancellationToken,
) {
    let mut every = tokio::time::interval(REFRESH_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = every.tick() => {}
        }
        let known = registry.current().version;
        let db = db.clone();
        let loaded =
            tokio::task::spawn_blocking(move || -> Result<Option<Snapshot>, StoreError> {
                let version = db.read(db::credentials_version)?;
                if version == known {
                    return Ok(None);
                }
                db.read(Snapshot::load).map(Some)
            })
            .await;
        match loaded {
            Ok(Ok(Some(snapshot))) => {
                tracing::info!(
                    nodes = snapshot.nodes.len(),
                    mqtt_users = snapshot.users.len(),
                    "credentials changed; reloaded"
                );
                let withdrawn = registry.current().withdrawn_logins(&snapshot);
                registry.replace(snapshot);
                if let Some(broker) = &broker {
                    broker.forget_logins();
                    if !withdrawn.is_empty() {
                        let cut = broker.disconnect_users(&withdrawn);
                        tracing::info!(
                            logins = ?withdrawn, connections = cut,
                            "credentials revoked or replaced; their connections are closed"
                        );
                    }
                }
            }
            Ok(Ok(None)) => {}
            Ok(Err(err)) => {
                tracing::warn!(cause = %err, "cannot re-read credentials; keeping the loaded ones")
            }
            Err(err) => tracing::warn!(cause = %err, "credential refresh task failed"),
        }
    }
}

/// Why ingest refuses a message (counted on `/healthz`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No signature, and the hub requires one.
    Unsigned,
    /// Signed, but not by the key of the node its topic names (forged, moved to another
    /// node's topic, altered, or signed with a rotated key).
    BadSignature,
    /// Signed, but the node has no credentials (revoked or never added).
    UnknownNode,
}

impl Refusal {
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Unsigned => "unsigned",
            Refusal::BadSignature => "bad_signature",
            Refusal::UnknownNode => "unknown_node",
        }
    }
}

/// The bytes to decode from an agent's data message, after the signature check: the body
/// without its MAC when signed, the payload as is when unsigned and allowed.
pub fn check_signature<'a>(
    registry: &Registry,
    require_signed: bool,
    site: &str,
    node: &str,
    topic: &str,
    payload: &'a [u8],
) -> Result<std::borrow::Cow<'a, [u8]>, Refusal> {
    let Some(signed) = sign::split(payload) else {
        return if require_signed {
            Err(Refusal::Unsigned)
        } else {
            Ok(std::borrow::Cow::Borrowed(payload))
        };
    };
    let Some(key) = registry.key(site, node) else {
        return Err(Refusal::UnknownNode);
    };
    if key.verify(topic, &signed.body, &signed.mac) {
        Ok(signed.body)
    } else {
        Err(Refusal::BadSignature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry_with(site: &str, node: &str, key: &[u8; 32]) -> Registry {
        let mut snapshot = Snapshot::default();
        snapshot.nodes.insert(
            (site.into(), node.into()),
            NodeEntry {
                password_hash: String::new(),
                key: Some(NodeKey::from_bytes(key)),
            },
        );
        Registry::new(snapshot).unwrap()
    }

    #[test]
    fn signature_policy() {
        let r = registry_with("a", "n1", &[1; 32]);
        let topic = "sitewatch/v1/a/n1/metrics";
        let body = br#"{"ts":1,"session":"s","seq":1}"#;
        let sealed = NodeKey::from_bytes(&[1; 32]).seal(topic, body).unwrap();
        assert_eq!(
            check_signature(&r, true, "a", "n1", topic, &sealed).unwrap(),
            &body[..]
        );
        // Site A's key on site B's topic.
        let b_topic = "sitewatch/v1/b/n1/metrics";
        let moved = NodeKey::from_bytes(&[1; 32]).seal(b_topic, body).unwrap();
        assert_eq!(
            check_signature(&r, true, "b", "n1", b_topic, &moved),
            Err(Refusal::UnknownNode)
        );
        let r2 = registry_with("b", "n1", &[2; 32]);
        assert_eq!(
            check_signature(&r2, true, "b", "n1", b_topic, &moved),
            Err(Refusal::BadSignature)
        );
        assert_eq!(
            check_signature(&r, true, "a", "n1", topic, body),
            Err(Refusal::Unsigned)
        );
        assert_eq!(
            check_signature(&r, false, "a", "n1", topic, body).unwrap(),
            &body[..]
        );
        // A bad signature is refused even when unsigned messages are accepted.
        assert_eq!(
            check_signature(&r, false, "a", "n1", topic, &moved),
            Err(Refusal::BadSignature)
        );
    }

    #[test]
    fn revoked_rotated_and_removed_logins_are_withdrawn() {
        let entry = |hash: &str| NodeEntry {
            password_hash: hash.into(),
            key: None,
        };
        let mut old = Snapshot::default();
        for (node, hash) in [("kept", "h1"), ("rotated", "h2"), ("revoked", "h3")] {
            old.nodes.insert(("club".into(), node.into()), entry(hash));
        }
        old.users.insert("ha".into(), "u1".into());
        old.users.insert("node-red".into(), "u2".into());
        old.users.insert("grafana".into(), "u3".into());
        let mut new = Snapshot::default();
        new.nodes
            .insert(("club".into(), "kept".into()), entry("h1"));
        new.nodes
            .insert(("club".into(), "rotated".into()), entry("h2b"));
        new.nodes
            .insert(("club".into(), "added".into()), entry("h4"));
        new.users.insert("ha".into(), "u1".into());
        new.users.insert("node-red".into(), "u2b".into());
        let mut withdrawn = old.withdrawn_logins(&new);
        withdrawn.sort();
        assert_eq!(
            withdrawn,
            ["grafana", "node-red", "sw.club.revoked", "sw.club.rotated"]
        );
        assert!(new.withdrawn_logins(&new).is_empty());
    }

    #[test]
    fn logins() {
        let mut snapshot = Snapshot::default();
        snapshot.nodes.insert(
            ("club".into(), "pi".into()),
            NodeEntry {
                password_hash: password::hash("node-password-1").unwrap(),
                key: None,
            },
        );
        snapshot
            .users
            .insert("ha".into(), password::hash("ha-password-1").unwrap());
        let r = Registry::new(snapshot).unwrap();
        assert_eq!(
            r.check_login("sw.club.pi", b"node-password-1"),
            AuthDecision::Allow(Access::Node(NodeBinding::new(
                SiteId::new("club").unwrap(),
                NodeId::new("pi").unwrap()
            )))
        );
        assert!(matches!(
            r.check_login("sw.club.pi", b"wrong"),
            AuthDecision::Deny(Denial::BadCredentials(_))
        ));
        assert!(matches!(
            r.check_login("sw.club.other", b"node-password-1"),
            AuthDecision::Deny(Denial::BadCredentials(_))
        ));
        assert!(matches!(
            r.check_login("sw.CLUB/x", b"node-password-1"),
            AuthDecision::Deny(Denial::BadCredentials(_))
        ));
        assert_eq!(
            r.check_login("ha", b"ha-password-1"),
            AuthDecision::Allow(Access::Client)
        );
        let hub = r.hub_secret().to_owned();
        assert_eq!(
            r.check_login(HUB_MQTT_USER, hub.as_bytes()),
            AuthDecision::Allow(Access::Trusted)
        );
        assert!(matches!(
            r.check_login(HUB_MQTT_USER, b""),
            AuthDecision::Deny(_)
        ));
    }
}
