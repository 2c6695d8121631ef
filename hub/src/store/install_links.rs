//! One-time install links (table of migration 9), written like the credentials of
//! `nodes.rs`: short IMMEDIATE transactions on a connection of their own. Redeeming a link
//! and storing the node's new credentials happen in one transaction, so a link is either
//! unused or has given out exactly one set of credentials.

use rusqlite::{Connection, OptionalExtension, params};

use super::StoreError;
use super::auth::AuthDb;
use super::nodes::NodeCredentialRow;

/// Used and expired links are deleted this long after they stopped working.
const KEEP_DEAD_MS: u64 = 7 * 24 * 3_600_000;

/// One link; the token itself is never stored, only its SHA-256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstallLinkRow {
    pub token_hash: Vec<u8>,
    pub site: String,
    pub node: String,
    /// `broker` of the agent's config.
    pub broker_url: String,
    /// Whether redeeming may replace existing credentials of the node (`--rotate`).
    pub replace_credentials: bool,
    pub created_ms: u64,
    pub expires_ms: u64,
    pub used_ms: Option<u64>,
}

/// Why a link cannot be redeemed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unredeemable {
    /// No such link, or it was used or has expired meanwhile.
    Gone,
    /// The node has credentials and the link may not replace them.
    NodeHasCredentials,
}

const COLS: &str =
    "token_hash, site, node, broker_url, replace_credentials, created_ms, expires_ms, used_ms";

fn row_from(r: &rusqlite::Row<'_>) -> rusqlite::Result<InstallLinkRow> {
    Ok(InstallLinkRow {
        token_hash: r.get(0)?,
        site: r.get(1)?,
        node: r.get(2)?,
        broker_url: r.get(3)?,
        replace_credentials: r.get(4)?,
        created_ms: r.get::<_, i64>(5)?.max(0) as u64,
        expires_ms: r.get::<_, i64>(6)?.max(0) as u64,
        used_ms: r.get::<_, Option<i64>>(7)?.map(|v| v.max(0) as u64),
    })
}

/// The link whose token hashes to `token_hash`, used or not.
pub fn install_link(
    conn: &Connection,
    token_hash: &[u8],
) -> Result<Option<InstallLinkRow>, StoreError> {
    Ok(conn
        .query_row(
            &format!("SELECT {COLS} FROM install_links WHERE token_hash = ?1"),
            [token_hash],
            row_from,
        )
        .optional()?)
}

/// Every link still stored, newest first.
pub fn install_links(conn: &Connection) -> Result<Vec<InstallLinkRow>, StoreError> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {COLS} FROM install_links ORDER BY created_ms DESC"
    ))?;
    let rows = stmt.query_map([], row_from)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

impl AuthDb {
    /// Stores a new link, and forgets links that stopped working a week ago.
    pub fn insert_install_link(&self, row: &InstallLinkRow) -> Result<(), StoreError> {
        self.write(|tx| {
            let cutoff = row.created_ms.saturating_sub(KEEP_DEAD_MS) as i64;
            tx.execute(
                "DELETE FROM install_links WHERE expires_ms < ?1 OR used_ms < ?1",
                [cutoff],
            )?;
            tx.execute(
                &format!(
                    "INSERT INTO install_links ({COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, NULL)"
                ),
                params![
                    row.token_hash,
                    row.site,
                    row.node,
                    row.broker_url,
                    row.replace_credentials,
                    row.created_ms as i64,
                    row.expires_ms as i64,
                ],
            )?;
            Ok(())
        })
    }

    /// Marks the link used and stores `credentials` for its node, in one transaction; the
    /// link must be unused, unexpired at `now_ms`, and name the credentials' node.
    pub fn redeem_install_link(
        &self,
        token_hash: &[u8],
        now_ms: u64,
        credentials: &NodeCredentialRow,
    ) -> Result<Result<(), Unredeemable>, StoreError> {
        self.write(|tx| {
            let Some(link) = install_link(tx, token_hash)? else {
                return Ok(Err(Unredeemable::Gone));
            };
            if link.used_ms.is_some()
                || link.expires_ms <= now_ms
                || link.site != credentials.site
                || link.node != credentials.node
            {
                return Ok(Err(Unredeemable::Gone));
            }
            let exists: bool = tx.query_row(
                "SELECT EXISTS (SELECT 1 FROM node_credentials WHERE site = ?1 AND node = ?2)",
                params![link.site, link.node],
                |r| r.get(0),
            )?;
            if exists && !link.replace_credentials {
                return Ok(Err(Unredeemable::NodeHasCredentials));
            }
            tx.execute(
                "UPDATE install_links SET used_ms = ?2 WHERE token_hash = ?1",
                params![token_hash, now_ms as i64],
            )?;
            tx.execute(
                "INSERT OR REPLACE INTO node_credentials
                 (site, node, password_hash, signing_key, created_ms, mosquitto_hash)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    credentials.site,
                    credentials.node,
                    credentials.password_hash,
                    credentials.signing_key,
                    credentials.created_ms as i64,
                    credentials.mosquitto_hash
                ],
            )?;
            super::nodes::bump(tx)?;
            Ok(Ok(()))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(hash: &[u8], replace: bool, expires_ms: u64) -> InstallLinkRow {
        InstallLinkRow {
            token_hash: hash.to_vec(),
            site: "club".into(),
            node: "pi".into(),
            broker_url: "mqtt://hub:1883".into(),
            replace_credentials: replace,
            created_ms: 1_000,
            expires_ms,
            used_ms: None,
        }
    }

    fn creds(node: &str) -> NodeCredentialRow {
        NodeCredentialRow {
            site: "club".into(),
            node: node.into(),
            password_hash: "$argon2id$x".into(),
            signing_key: "00".repeat(32),
            created_ms: 2_000,
            mosquitto_hash: None,
        }
    }

    #[test]
    fn a_link_is_redeemed_once_before_it_expires() {
        let dir = tempfile::tempdir().unwrap();
        let db = AuthDb::new(crate::store::init(dir.path()).unwrap());
        db.insert_install_link(&link(b"a", false, 10_000)).unwrap();
        db.insert_install_link(&link(b"b", false, 10_000)).unwrap();
        db.insert_install_link(&link(b"late", false, 3_000))
            .unwrap();
        // Wrong node, expired, unknown: refused, nothing changes.
        assert_eq!(
            db.redeem_install_link(b"a", 2_000, &creds("other"))
                .unwrap(),
            Err(Unredeemable::Gone)
        );
        assert_eq!(
            db.redeem_install_link(b"late", 3_000, &creds("pi"))
                .unwrap(),
            Err(Unredeemable::Gone)
        );
        assert_eq!(
            db.redeem_install_link(b"zz", 2_000, &creds("pi")).unwrap(),
            Err(Unredeemable::Gone)
        );
        let version = db.read(super::super::nodes::credentials_version).unwrap();
        db.redeem_install_link(b"a", 2_000, &creds("pi"))
            .unwrap()
            .unwrap();
        assert_eq!(
            db.read(super::super::nodes::credentials_version).unwrap(),
            version + 1
        );
        assert_eq!(
            db.read(|c| install_link(c, b"a")).unwrap().unwrap().used_ms,
            Some(2_000)
        );
        // Used: gone. Another link without --rotate: the node has credentials now.
        assert_eq!(
            db.redeem_install_link(b"a", 2_500, &creds("pi")).unwrap(),
            Err(Unredeemable::Gone)
        );
        assert_eq!(
            db.redeem_install_link(b"b", 2_500, &creds("pi")).unwrap(),
            Err(Unredeemable::NodeHasCredentials)
        );
        assert_eq!(
            db.read(|c| install_link(c, b"b")).unwrap().unwrap().used_ms,
            None
        );
        db.insert_install_link(&link(b"rotate", true, 10_000))
            .unwrap();
        db.redeem_install_link(b"rotate", 2_600, &creds("pi"))
            .unwrap()
            .unwrap();
        assert_eq!(db.read(install_links).unwrap().len(), 4);
    }
}
