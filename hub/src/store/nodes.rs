//! Credentials of agents and MQTT clients (tables of migration 0008), written like the
//! accounts of `auth.rs`: short IMMEDIATE transactions on a connection of their own. Every
//! change bumps meta `credentials_version`, which the running hub polls to reload them.

use rusqlite::{Connection, OptionalExtension, params};

use super::StoreError;
use super::auth::{AuthDb, Refused};

/// One agent's credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct NodeCredentialRow {
    pub site: String,
    pub node: String,
    /// argon2id PHC string of the MQTT password.
    pub password_hash: String,
    /// HMAC-SHA256 key, 64 hex digits.
    pub signing_key: String,
    pub created_ms: u64,
    /// The password in Mosquitto's password-file format, for `mosquitto-config`.
    pub mosquitto_hash: Option<String>,
}

impl std::fmt::Debug for NodeCredentialRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeCredentialRow")
            .field("site", &self.site)
            .field("node", &self.node)
            .field("created_ms", &self.created_ms)
            .finish_non_exhaustive()
    }
}

/// An MQTT client account (integrations that read the bus).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MqttUserRow {
    pub name: String,
    pub password_hash: String,
    pub created_ms: u64,
    /// The password in Mosquitto's password-file format, for `mosquitto-config`.
    pub mosquitto_hash: Option<String>,
}

/// The counter every credential change increments.
pub fn credentials_version(conn: &Connection) -> Result<i64, StoreError> {
    Ok(conn
        .query_row(
            "SELECT value FROM meta WHERE key = 'credentials_version'",
            [],
            |r| r.get(0),
        )
        .optional()?
        .unwrap_or(0))
}

pub fn node_credentials(conn: &Connection) -> Result<Vec<NodeCredentialRow>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT site, node, password_hash, signing_key, created_ms, mosquitto_hash
         FROM node_credentials ORDER BY site, node",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(NodeCredentialRow {
            site: r.get(0)?,
            node: r.get(1)?,
            password_hash: r.get(2)?,
            signing_key: r.get(3)?,
            created_ms: r.get::<_, i64>(4)?.max(0) as u64,
            mosquitto_hash: r.get(5)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn mqtt_users(conn: &Connection) -> Result<Vec<MqttUserRow>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT name, password_hash, created_ms, mosquitto_hash FROM mqtt_users ORDER BY name",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(MqttUserRow {
            name: r.get(0)?,
            password_hash: r.get(1)?,
            created_ms: r.get::<_, i64>(2)?.max(0) as u64,
            mosquitto_hash: r.get(3)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// `INSERT` that replaces an existing row (rotation) or leaves it (refused).
fn insert_verb(replace: bool) -> &'static str {
    if replace {
        "INSERT OR REPLACE"
    } else {
        "INSERT OR IGNORE"
    }
}

/// The outcome of a write that touched `rows` rows: `refused` when none, else the change is
/// announced (`credentials_version`).
fn changed(
    tx: &rusqlite::Transaction<'_>,
    rows: usize,
    refused: Refused,
) -> Result<Result<(), Refused>, StoreError> {
    if rows == 0 {
        return Ok(Err(refused));
    }
    bump(tx)?;
    Ok(Ok(()))
}

pub(super) fn bump(tx: &rusqlite::Transaction<'_>) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO meta (key, value) VALUES ('credentials_version', 1)
         ON CONFLICT (key) DO UPDATE SET value = value + 1",
        [],
    )?;
    Ok(())
}

impl AuthDb {
    /// Creates a node's credentials; with `replace`, replaces existing ones (rotation).
    pub fn put_node_credentials(
        &self,
        row: &NodeCredentialRow,
        replace: bool,
    ) -> Result<Result<(), Refused>, StoreError> {
        self.write(|tx| {
            let verb = insert_verb(replace);
            let n = tx.execute(
                &format!(
                    "{verb} INTO node_credentials
                     (site, node, password_hash, signing_key, created_ms, mosquitto_hash)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
                ),
                params![
                    row.site,
                    row.node,
                    row.password_hash,
                    row.signing_key,
                    row.created_ms as i64,
                    row.mosquitto_hash
                ],
            )?;
            changed(tx, n, Refused::Exists)
        })
    }

    /// Deletes a node's credentials; `Refused::Missing` when it had none.
    pub fn delete_node_credentials(
        &self,
        site: &str,
        node: &str,
    ) -> Result<Result<(), Refused>, StoreError> {
        self.write(|tx| {
            let n = tx.execute(
                "DELETE FROM node_credentials WHERE site = ?1 AND node = ?2",
                params![site, node],
            )?;
            changed(tx, n, Refused::Missing)
        })
    }

    /// Creates or replaces an MQTT client account.
    pub fn put_mqtt_user(
        &self,
        row: &MqttUserRow,
        replace: bool,
    ) -> Result<Result<(), Refused>, StoreError> {
        self.write(|tx| {
            let verb = insert_verb(replace);
            let n = tx.execute(
                &format!(
                    "{verb} INTO mqtt_users (name, password_hash, created_ms, mosquitto_hash)
                     VALUES (?1, ?2, ?3, ?4)"
                ),
                params![
                    row.name,
                    row.password_hash,
                    row.created_ms as i64,
                    row.mosquitto_hash
                ],
            )?;
            changed(tx, n, Refused::Exists)
        })
    }

    /// Deletes an MQTT client account.
    pub fn delete_mqtt_user(&self, name: &str) -> Result<Result<(), Refused>, StoreError> {
        self.write(|tx| {
            let n = tx.execute("DELETE FROM mqtt_users WHERE name = ?1", [name])?;
            changed(tx, n, Refused::Missing)
        })
    }
}
