//! Accounts, browser sessions and API tokens (tables of migration 0007).
//!
//! An exception to "one thread writes": these rows change a few times a day (a login, an
//! account or token change), so [`AuthDb`] writes them in short `BEGIN IMMEDIATE`
//! transactions on a connection of its own, with the same 5 s busy timeout as every
//! connection; SQLite's WAL lock serialises them with the writer thread. Reads (one per
//! authenticated request) go through the shared [`super::Reader`] pool. Blocking: call
//! from `spawn_blocking` or a thread.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};

use super::StoreError;

/// A dashboard account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRow {
    pub name: String,
    /// `admin` or `viewer`.
    pub role: String,
    /// argon2id PHC string.
    pub password_hash: String,
    pub created_ms: u64,
    pub updated_ms: u64,
}

/// A live browser session with its account's current role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    pub user: String,
    pub role: String,
    pub csrf: String,
    pub expires_ms: u64,
}

/// An API token (the secret itself is never stored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRow {
    pub id: String,
    pub name: String,
    pub role: String,
    /// SHA-256 of the secret part.
    pub secret_hash: Vec<u8>,
    pub created_by: String,
    pub created_ms: u64,
}

fn user_from(r: &rusqlite::Row<'_>) -> rusqlite::Result<UserRow> {
    Ok(UserRow {
        name: r.get(0)?,
        role: r.get(1)?,
        password_hash: r.get(2)?,
        created_ms: r.get::<_, i64>(3)?.max(0) as u64,
        updated_ms: r.get::<_, i64>(4)?.max(0) as u64,
    })
}

fn token_from(r: &rusqlite::Row<'_>) -> rusqlite::Result<TokenRow> {
    Ok(TokenRow {
        id: r.get(0)?,
        name: r.get(1)?,
        role: r.get(2)?,
        secret_hash: r.get(3)?,
        created_by: r.get(4)?,
        created_ms: r.get::<_, i64>(5)?.max(0) as u64,
    })
}

const USER_COLS: &str = "name, role, password_hash, created_ms, updated_ms";
const TOKEN_COLS: &str = "id, name, role, secret_hash, created_by, created_ms";

pub fn user(conn: &Connection, name: &str) -> Result<Option<UserRow>, StoreError> {
    Ok(conn
        .query_row(
            &format!("SELECT {USER_COLS} FROM users WHERE name = ?1"),
            [name],
            user_from,
        )
        .optional()?)
}

pub fn users(conn: &Connection) -> Result<Vec<UserRow>, StoreError> {
    let mut stmt = conn.prepare(&format!("SELECT {USER_COLS} FROM users ORDER BY name"))?;
    let rows = stmt.query_map([], user_from)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn user_count(conn: &Connection) -> Result<u64, StoreError> {
    let n: i64 = conn.query_row("SELECT count(*) FROM users", [], |r| r.get(0))?;
    Ok(n.max(0) as u64)
}

fn admin_count(conn: &Connection) -> Result<u64, StoreError> {
    let n: i64 = conn.query_row("SELECT count(*) FROM users WHERE role = 'admin'", [], |r| {
        r.get(0)
    })?;
    Ok(n.max(0) as u64)
}

/// The session whose cookie hashes to `id_hash`, if it has not expired.
pub fn session(
    conn: &Connection,
    id_hash: &[u8],
    now_ms: u64,
) -> Result<Option<SessionRow>, StoreError> {
    Ok(conn
        .query_row(
            "SELECT s.user, u.role, s.csrf, s.expires_ms
             FROM sessions s JOIN users u ON u.name = s.user
             WHERE s.id_hash = ?1 AND s.expires_ms > ?2",
            params![id_hash, now_ms as i64],
            |r| {
                Ok(SessionRow {
                    user: r.get(0)?,
                    role: r.get(1)?,
                    csrf: r.get(2)?,
                    expires_ms: r.get::<_, i64>(3)?.max(0) as u64,
                })
            },
        )
        .optional()?)
}

pub fn token(conn: &Connection, id: &str) -> Result<Option<TokenRow>, StoreError> {
    Ok(conn
        .query_row(
            &format!("SELECT {TOKEN_COLS} FROM api_tokens WHERE id = ?1"),
            [id],
            token_from,
        )
        .optional()?)
}

pub fn tokens(conn: &Connection) -> Result<Vec<TokenRow>, StoreError> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {TOKEN_COLS} FROM api_tokens ORDER BY created_ms, id"
    ))?;
    let rows = stmt.query_map([], token_from)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Why an account change was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The account or token does not exist.
    Missing,
    /// An account with that name exists already.
    Exists,
    /// It would leave no admin account.
    LastAdmin,
}

/// Writes of the auth tables, each a short IMMEDIATE transaction on its own connection.
#[derive(Debug, Clone)]
pub struct AuthDb {
    path: PathBuf,
}

impl AuthDb {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub(super) fn write<T>(
        &self,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = super::open(&self.path, OpenFlags::SQLITE_OPEN_READ_WRITE)?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let out = f(&tx)?;
        tx.commit()?;
        Ok(out)
    }

    /// Runs a read on a connection of this handle (for the CLI, which has no reader pool).
    pub fn read<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let conn = super::open(&self.path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        f(&conn)
    }

    pub fn insert_user(&self, user: &UserRow) -> Result<Result<(), Refused>, StoreError> {
        self.write(|tx| {
            let n = tx.execute(
                "INSERT OR IGNORE INTO users (name, role, password_hash, created_ms, updated_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    user.name,
                    user.role,
                    user.password_hash,
                    user.created_ms as i64,
                    user.updated_ms as i64
                ],
            )?;
            Ok(if n == 1 { Ok(()) } else { Err(Refused::Exists) })
        })
    }

    /// Creates `user` only if no account exists at all (first start); false otherwise.
    pub fn insert_first_user(&self, user: &UserRow) -> Result<bool, StoreError> {
        self.write(|tx| {
            if user_count(tx)? > 0 {
                return Ok(false);
            }
            tx.execute(
                "INSERT INTO users (name, role, password_hash, created_ms, updated_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    user.name,
                    user.role,
                    user.password_hash,
                    user.created_ms as i64,
                    user.updated_ms as i64
                ],
            )?;
            Ok(true)
        })
    }

    /// Sets a password and ends the account's sessions, except `keep` (the caller's own).
    pub fn set_password(
        &self,
        name: &str,
        password_hash: &str,
        now_ms: u64,
        keep: Option<&[u8]>,
    ) -> Result<Result<(), Refused>, StoreError> {
        self.write(|tx| {
            let n = tx.execute(
                "UPDATE users SET password_hash = ?2, updated_ms = ?3 WHERE name = ?1",
                params![name, password_hash, now_ms as i64],
            )?;
            if n == 0 {
                return Ok(Err(Refused::Missing));
            }
            tx.execute(
                "DELETE FROM sessions WHERE user = ?1 AND id_hash IS NOT ?2",
                params![name, keep],
            )?;
            Ok(Ok(()))
        })
    }

    /// Deletes an account (and its sessions), unless it is the last admin.
    pub fn delete_user(&self, name: &str) -> Result<Result<(), Refused>, StoreError> {
        self.write(|tx| {
            let Some(u) = user(tx, name)? else {
                return Ok(Err(Refused::Missing));
            };
            if u.role == "admin" && admin_count(tx)? <= 1 {
                return Ok(Err(Refused::LastAdmin));
            }
            tx.execute("DELETE FROM sessions WHERE user = ?1", [name])?;
            tx.execute("DELETE FROM users WHERE name = ?1", [name])?;
            Ok(Ok(()))
        })
    }

    /// Stores a new session and drops expired ones.
    pub fn insert_session(
        &self,
        id_hash: &[u8],
        user: &str,
        csrf: &str,
        now_ms: u64,
        expires_ms: u64,
    ) -> Result<(), StoreError> {
        self.write(|tx| {
            tx.execute(
                "DELETE FROM sessions WHERE expires_ms <= ?1",
                [now_ms as i64],
            )?;
            tx.execute(
                "INSERT INTO sessions (id_hash, user, csrf, created_ms, expires_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![id_hash, user, csrf, now_ms as i64, expires_ms as i64],
            )?;
            Ok(())
        })
    }

    pub fn delete_session(&self, id_hash: &[u8]) -> Result<(), StoreError> {
        self.write(|tx| {
            tx.execute("DELETE FROM sessions WHERE id_hash = ?1", [id_hash])?;
            Ok(())
        })
    }

    pub fn insert_token(&self, token: &TokenRow) -> Result<(), StoreError> {
        self.write(|tx| {
            tx.execute(
                &format!("INSERT INTO api_tokens ({TOKEN_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"),
                params![
                    token.id,
                    token.name,
                    token.role,
                    token.secret_hash,
                    token.created_by,
                    token.created_ms as i64
                ],
            )?;
            Ok(())
        })
    }

    pub fn delete_token(&self, id: &str) -> Result<Result<(), Refused>, StoreError> {
        self.write(|tx| {
            let n = tx.execute("DELETE FROM api_tokens WHERE id = ?1", [id])?;
            Ok(if n == 1 {
                Ok(())
            } else {
                Err(Refused::Missing)
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> (tempfile::TempDir, AuthDb, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let path = super::super::init(dir.path()).unwrap();
        let conn = Connection::open(&path).unwrap();
        (dir, AuthDb::new(path), conn)
    }

    fn user_row(name: &str, role: &str) -> UserRow {
        UserRow {
            name: name.into(),
            role: role.into(),
            password_hash: "$argon2id$x".into(),
            created_ms: 1,
            updated_ms: 1,
        }
    }

    #[test]
    fn sessions_expire_and_follow_their_account() {
        let (_d, db, conn) = db();
        assert!(db.insert_first_user(&user_row("admin", "admin")).unwrap());
        assert!(!db.insert_first_user(&user_row("other", "admin")).unwrap());
        db.insert_session(b"h1", "admin", "c1", 100, 200).unwrap();
        db.insert_session(b"h2", "admin", "c2", 100, 200).unwrap();
        let s = session(&conn, b"h1", 150).unwrap().unwrap();
        assert_eq!((s.user.as_str(), s.role.as_str()), ("admin", "admin"));
        assert!(session(&conn, b"h1", 200).unwrap().is_none(), "expired");
        // A password change ends every other session.
        db.set_password("admin", "$new", 160, Some(b"h1"))
            .unwrap()
            .unwrap();
        assert!(session(&conn, b"h1", 170).unwrap().is_some());
        assert!(session(&conn, b"h2", 170).unwrap().is_none());
        db.delete_session(b"h1").unwrap();
        assert!(session(&conn, b"h1", 170).unwrap().is_none());
    }

    #[test]
    fn the_last_admin_cannot_be_deleted() {
        let (_d, db, conn) = db();
        db.insert_user(&user_row("admin", "admin"))
            .unwrap()
            .unwrap();
        assert_eq!(
            db.insert_user(&user_row("admin", "viewer")).unwrap(),
            Err(Refused::Exists)
        );
        db.insert_user(&user_row("bob", "viewer")).unwrap().unwrap();
        db.insert_session(b"b", "bob", "c", 1, 99).unwrap();
        assert_eq!(db.delete_user("admin").unwrap(), Err(Refused::LastAdmin));
        db.delete_user("bob").unwrap().unwrap();
        assert_eq!(db.delete_user("bob").unwrap(), Err(Refused::Missing));
        assert!(session(&conn, b"b", 2).unwrap().is_none());
        assert_eq!(user_count(&conn).unwrap(), 1);
    }

    #[test]
    fn tokens_round_trip() {
        let (_d, db, conn) = db();
        let t = TokenRow {
            id: "abc".into(),
            name: "backup script".into(),
            role: "viewer".into(),
            secret_hash: vec![1, 2, 3],
            created_by: "admin".into(),
            created_ms: 5,
        };
        db.insert_token(&t).unwrap();
        assert_eq!(token(&conn, "abc").unwrap(), Some(t.clone()));
        assert_eq!(tokens(&conn).unwrap(), vec![t]);
        db.delete_token("abc").unwrap().unwrap();
        assert_eq!(db.delete_token("abc").unwrap(), Err(Refused::Missing));
    }
}
