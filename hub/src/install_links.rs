//! One-time install links: `sitewatch-hub node install-link SITE NODE` makes one, and
//! `deploy/install-agent.sh` on the Pi uses it to fetch the agent binary for its CPU, its
//! `agent.toml`, and once, at the end, its credentials (`agent.env`). The HTTP side is
//! `api/install.rs`; the SQL `store/install_links.rs`.
//!
//! The token (`swi_` + 64 hex digits) is shown once and stored only as its SHA-256. The
//! node's MQTT password and signing key are made when the link is redeemed and sent in
//! that one response: the password is stored as argon2id, the key as every node's is
//! (the hub verifies signatures with it), the plaintext password nowhere.

use std::path::PathBuf;

use serde::Deserialize;
use sitewatch_proto::{NodeId, Prefix, SiteId};

use crate::auth::{AuthError, secret};
use crate::nodes::{self, Issued};
use crate::store::auth::AuthDb;
use crate::store::install_links::{InstallLinkRow, Unredeemable};

/// Prefix of every install token, so a leaked one is recognisable.
pub const TOKEN_PREFIX: &str = "swi_";

/// The example agent config, every key documented; links serve it with the node's values.
pub const AGENT_TOML_TEMPLATE: &str = include_str!("../../deploy/agent.toml");

/// CPU families `install-agent.sh` asks for, as Rust target triples; the file served for
/// one is `sitewatch-agent-{triple}` in `[downloads] agent-dir` (what cross/build.sh puts
/// in `dist/`).
pub const AGENT_TARGETS: &[&str] = &[
    "aarch64-unknown-linux-musl",
    "armv7-unknown-linux-musleabihf",
    "arm-unknown-linux-musleabihf",
    "x86_64-unknown-linux-musl",
];

/// File name of the agent binary for `triple`, if it is one of [`AGENT_TARGETS`].
pub fn agent_file(triple: &str) -> Option<String> {
    AGENT_TARGETS
        .contains(&triple)
        .then(|| format!("sitewatch-agent-{triple}"))
}

fn d_agent_dir() -> PathBuf {
    PathBuf::from("/usr/share/sitewatch/agents")
}
fn d_valid_hours() -> u64 {
    24
}

/// `[downloads]` of hub.toml: what install links serve.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct DownloadsConfig {
    /// Directory holding `sitewatch-agent-{target}` files (cross/build.sh's `dist/`).
    #[serde(default = "d_agent_dir")]
    pub agent_dir: PathBuf,
    /// How long a new install link works, in hours (`--valid-hours` overrides it).
    #[serde(default = "d_valid_hours")]
    pub link_valid_hours: u64,
}

impl Default for DownloadsConfig {
    fn default() -> Self {
        Self {
            agent_dir: d_agent_dir(),
            link_valid_hours: d_valid_hours(),
        }
    }
}

/// Longest validity of a link: a month.
pub const MAX_VALID_HOURS: u64 = 24 * 31;

impl DownloadsConfig {
    pub fn validate(&self) -> Result<(), String> {
        check_hours(self.link_valid_hours).map_err(|e| format!("[downloads] link-valid-hours {e}"))
    }
}

fn check_hours(h: u64) -> Result<(), String> {
    if (1..=MAX_VALID_HOURS).contains(&h) {
        Ok(())
    } else {
        Err(format!(
            "must be between 1 and {MAX_VALID_HOURS} (24 by default)"
        ))
    }
}

/// SHA-256 of a well-formed token; None for anything else (never looked up).
pub fn token_hash(token: &str) -> Option<Vec<u8>> {
    let hex = token.strip_prefix(TOKEN_PREFIX)?;
    (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| secret::sha256(token.as_bytes()))
}

/// A link just created; the token is shown only this once.
pub struct CreatedLink {
    pub token: String,
    pub expires_ms: u64,
}

/// What a link is for, as the operator asked.
pub struct LinkRequest<'a> {
    pub site: &'a SiteId,
    pub node: &'a NodeId,
    /// Broker URL for the agent's config, as the Pi reaches the hub.
    pub broker_url: &'a str,
    /// May replace the node's existing credentials.
    pub rotate: bool,
    pub valid_hours: u64,
}

/// Creates a link (blocking). Refuses a node that has credentials unless `rotate`, so a
/// link never cuts off a running agent by surprise.
pub fn create(db: &AuthDb, req: &LinkRequest<'_>, now_ms: u64) -> Result<CreatedLink, AuthError> {
    let (site, node) = (req.site, req.node);
    check_broker_url(req.broker_url).map_err(AuthError::Invalid)?;
    check_hours(req.valid_hours).map_err(|e| AuthError::Invalid(format!("--valid-hours {e}")))?;
    let has_credentials = db
        .read(crate::store::nodes::node_credentials)?
        .iter()
        .any(|r| r.site == site.as_str() && r.node == node.as_str());
    if has_credentials && !req.rotate {
        return Err(AuthError::Conflict(format!(
            "node {site}/{node} has credentials already: add --rotate to replace them when \
             the link is used (its running agent is then cut off until it gets the new ones), \
             or `sitewatch-hub node revoke {site} {node}` first"
        )));
    }
    let token = format!("{TOKEN_PREFIX}{}", secret::hex(&secret::random::<32>()?));
    let expires_ms = now_ms + req.valid_hours * 3_600_000;
    db.insert_install_link(&InstallLinkRow {
        token_hash: secret::sha256(token.as_bytes()),
        site: site.to_string(),
        node: node.to_string(),
        broker_url: req.broker_url.to_owned(),
        replace_credentials: req.rotate,
        created_ms: now_ms,
        expires_ms,
        used_ms: None,
    })?;
    Ok(CreatedLink { token, expires_ms })
}

/// The broker URL must parse as the agent's and be safe inside a TOML string.
pub fn check_broker_url(url: &str) -> Result<(), String> {
    url.parse::<sitewatch_agent::config::BrokerUrl>()
        .map_err(|e| format!("--broker-url: {e}"))?;
    if url
        .bytes()
        .any(|b| !b.is_ascii_graphic() || b == b'"' || b == b'\\')
    {
        return Err(format!("--broker-url {url:?}: unexpected character"));
    }
    Ok(())
}

/// Whether a stored link still serves downloads at `now_ms`.
pub fn is_live(link: &InstallLinkRow, now_ms: u64) -> bool {
    link.used_ms.is_none() && now_ms < link.expires_ms
}

/// Issues the link's node new credentials and marks the link used, atomically (blocking:
/// argon2). `Err(Unredeemable)` when the link was used or expired meanwhile, or the node
/// got credentials and the link may not replace them.
pub fn redeem(
    db: &AuthDb,
    token_hash: &[u8],
    link: &InstallLinkRow,
    now_ms: u64,
) -> Result<Result<Issued, Unredeemable>, AuthError> {
    let site = SiteId::new(link.site.clone())
        .map_err(|e| AuthError::Invalid(format!("stored site: {e}")))?;
    let node = NodeId::new(link.node.clone())
        .map_err(|e| AuthError::Invalid(format!("stored node: {e}")))?;
    let (row, password) = nodes::fresh_credentials(&site, &node, None, true, now_ms)?;
    let signing_key = row.signing_key.clone();
    Ok(db
        .redeem_install_link(token_hash, now_ms, &row)?
        .map(|()| Issued {
            username: nodes::node_username(&site, &node),
            site,
            node,
            password,
            signing_key,
        }))
}

/// The agent's `agent.toml` for a link: `deploy/agent.toml` (every key with its default and
/// what it does) with the node's `site`, `node`, `broker` and the hub's topic prefix set.
/// The secrets are not in it: they go to `agent.env`.
pub fn agent_toml(link: &InstallLinkRow, prefix: &Prefix) -> Result<String, String> {
    render_agent_toml(
        AGENT_TOML_TEMPLATE,
        &link.site,
        &link.node,
        &link.broker_url,
        prefix.as_str(),
    )
}

fn render_agent_toml(
    template: &str,
    site: &str,
    node: &str,
    broker: &str,
    prefix: &str,
) -> Result<String, String> {
    let mut out = format!(
        "# Written by install-agent.sh for node {site}/{node} from the hub's install link.\n\
         # The MQTT credentials and the signing key are in /etc/sitewatch/agent.env (mode 0600).\n\
         # After editing: `sitewatch-agent validate --config /etc/sitewatch/agent.toml`, then\n\
         # `systemctl reload sitewatch-agent`.\n#\n"
    );
    let mut keys = [
        ("site = ", "site", site, false),
        ("# node = ", "node", node, false),
        ("broker = ", "broker", broker, false),
        ("topic-prefix = ", "topic-prefix", prefix, false),
    ];
    let mut top_level = true;
    for line in template.lines() {
        if line.starts_with('[') {
            top_level = false;
        }
        let key = keys
            .iter_mut()
            .find(|(start, ..)| top_level && line.starts_with(start));
        match key {
            Some((_, name, value, done)) if !*done => {
                *done = true;
                out.push_str(&format!("{name} = \"{value}\"\n"));
            }
            _ => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    match keys.iter().find(|(.., done)| !done) {
        Some((start, ..)) => Err(format!(
            "deploy/agent.toml has no top-level line starting with {start:?} to fill in"
        )),
        None => Ok(out),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_served_config_is_the_documented_one_with_the_node_filled_in() {
        let toml = render_agent_toml(
            AGENT_TOML_TEMPLATE,
            "club-1",
            "pi-gate",
            "mqtts://hub.example.org:8883",
            "sitewatch/v1",
        )
        .unwrap();
        assert!(toml.contains("\nsite = \"club-1\"\n"), "{toml}");
        assert!(toml.contains("\nnode = \"pi-gate\"\n"));
        assert!(toml.contains("\nbroker = \"mqtts://hub.example.org:8883\"\n"));
        assert!(!toml.contains("my-site"));
        // Every documented section is still there, and no secret.
        assert!(toml.contains("[outbox]") && toml.contains("[filesystems]"));
        assert!(!toml.contains("\npassword =") && !toml.contains("\nsigning-key ="));
        let cfg: toml::Table = toml::from_str(&toml).unwrap();
        assert_eq!(cfg["site"].as_str(), Some("club-1"));
        assert_eq!(cfg["node"].as_str(), Some("pi-gate"));
        let e = render_agent_toml("site = \"x\"\n", "a", "b", "mqtt://h", "p").unwrap_err();
        assert!(e.contains("node"), "{e}");
    }

    #[test]
    fn tokens_and_targets_are_checked_before_any_lookup() {
        let good = format!("{TOKEN_PREFIX}{}", "ab".repeat(32));
        assert_eq!(token_hash(&good).unwrap(), secret::sha256(good.as_bytes()));
        assert!(token_hash("swi_abc").is_none());
        assert!(token_hash(&format!("swt_{}", "ab".repeat(32))).is_none());
        assert!(token_hash(&format!("{TOKEN_PREFIX}{}", "zz".repeat(32))).is_none());
        assert_eq!(
            agent_file("aarch64-unknown-linux-musl").as_deref(),
            Some("sitewatch-agent-aarch64-unknown-linux-musl")
        );
        assert!(agent_file("../../etc/passwd").is_none());
        assert!(check_broker_url("mqtt://hub:1883").is_ok());
        assert!(check_broker_url("http://hub").is_err());
        assert!(check_broker_url("mqtt://h\"ub").is_err());
        assert!(DownloadsConfig::default().validate().is_ok());
        let zero = DownloadsConfig {
            link_valid_hours: 0,
            ..DownloadsConfig::default()
        };
        assert!(zero.validate().unwrap_err().contains("link-valid-hours"));
    }
}
