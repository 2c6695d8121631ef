//! Account operations shared by the HTTP API and the `sitewatch-hub user|token` commands.
//! Every function here blocks (SQLite, argon2): call it from `spawn_blocking` or a thread.

use rusqlite::Connection;

use super::config::ADMIN_PASSWORD_ENV;
use super::{AuthConfig, AuthError, Principal, Role, Via, password, secret};
use crate::store::StoreError;
use crate::store::auth::{self as db_auth, AuthDb, Refused, TokenRow, UserRow};

/// The first admin account, created at first start.
#[derive(Debug)]
pub struct Bootstrap {
    pub user: String,
    /// The password, when it was generated (to print once); None when configured.
    pub generated: Option<String>,
}

/// Creates the first admin account when there is none: its password comes from
/// `SITEWATCH_ADMIN_PASSWORD`, `[auth] admin-password-file`, or is generated.
pub fn bootstrap(
    db: &AuthDb,
    config: &AuthConfig,
    now_ms: u64,
) -> Result<Option<Bootstrap>, AuthError> {
    if db.read(db_auth::user_count)? > 0 {
        return Ok(None);
    }
    let (password, generated) = match configured_password(config)? {
        Some(p) => {
            password::check_strength(&p)
                .map_err(|e| AuthError::Invalid(format!("first admin password: {e}")))?;
            (p, false)
        }
        None => (secret::generate_password()?, true),
    };
    let row = UserRow {
        name: config.admin_user.clone(),
        role: Role::Admin.as_str().into(),
        password_hash: password::hash(&password)?,
        created_ms: now_ms,
        updated_ms: now_ms,
    };
    let created = db.insert_first_user(&row)?;
    Ok(created.then(|| Bootstrap {
        user: row.name,
        generated: generated.then_some(password),
    }))
}

fn configured_password(config: &AuthConfig) -> Result<Option<String>, AuthError> {
    if let Ok(p) = std::env::var(ADMIN_PASSWORD_ENV)
        && !p.is_empty()
    {
        return Ok(Some(p));
    }
    let Some(path) = &config.admin_password_file else {
        return Ok(None);
    };
    let text = std::fs::read_to_string(path).map_err(|source| AuthError::PasswordFile {
        path: path.clone(),
        source,
    })?;
    Ok(Some(text.trim_end_matches(['\r', '\n']).to_owned()))
}

/// A session opened by a successful login.
#[derive(Debug)]
pub struct NewSession {
    /// The cookie's value (only its SHA-256 is stored).
    pub cookie: String,
    pub csrf: String,
    pub user: String,
    pub role: Role,
    pub expires_ms: u64,
}

/// Checks a name and password and opens a session; None when either is wrong (the same
/// work is done for an unknown name, so timing does not tell which).
pub fn login(
    db: &AuthDb,
    name: &str,
    pass: &str,
    now_ms: u64,
    session_ms: u64,
) -> Result<Option<NewSession>, AuthError> {
    let Some(user) = db.read(|c| db_auth::user(c, name))? else {
        password::verify_nobody(pass);
        return Ok(None);
    };
    if !password::verify(pass, &user.password_hash) {
        return Ok(None);
    }
    let role = Role::parse(&user.role)
        .ok_or_else(|| AuthError::Invalid(format!("account {name} has an unknown role")))?;
    let cookie = secret::hex(&secret::random::<32>()?);
    let csrf = secret::hex(&secret::random::<32>()?);
    let expires_ms = now_ms + session_ms;
    db.insert_session(
        &secret::sha256(cookie.as_bytes()),
        &user.name,
        &csrf,
        now_ms,
        expires_ms,
    )?;
    Ok(Some(NewSession {
        cookie,
        csrf,
        user: user.name,
        role,
        expires_ms,
    }))
}

/// The principal of a session cookie, if the session is live.
pub fn check_session(
    conn: &Connection,
    cookie: &str,
    now_ms: u64,
) -> Result<Option<Principal>, StoreError> {
    let id_hash = secret::sha256(cookie.as_bytes());
    let Some(s) = db_auth::session(conn, &id_hash, now_ms)? else {
        return Ok(None);
    };
    Ok(Role::parse(&s.role).map(|role| Principal {
        name: s.user,
        role,
        via: Via::Session {
            id_hash,
            csrf: s.csrf,
        },
    }))
}

/// The principal of a bearer token, if it is valid (digest compared in constant time).
pub fn check_token(conn: &Connection, token: &str) -> Result<Option<Principal>, StoreError> {
    let Some((id, secret_part)) = secret::parse_token(token) else {
        return Ok(None);
    };
    let Some(row) = db_auth::token(conn, id)? else {
        return Ok(None);
    };
    let digest = secret::sha256(secret_part.as_bytes());
    if !secret::ct_eq(&digest, &row.secret_hash) {
        return Ok(None);
    }
    Ok(Role::parse(&row.role).map(|role| Principal {
        name: format!("token:{}", row.name),
        role,
        via: Via::Token { id: row.id },
    }))
}

/// A chosen password (checked) or a generated one (returned to be shown once).
fn choose(password: Option<String>) -> Result<(String, Option<String>), AuthError> {
    match password {
        Some(p) => {
            password::check_strength(&p).map_err(AuthError::Invalid)?;
            Ok((p, None))
        }
        None => {
            let p = secret::generate_password()?;
            Ok((p.clone(), Some(p)))
        }
    }
}

/// Creates an account; returns the password when it was generated.
pub fn create_user(
    db: &AuthDb,
    name: &str,
    role: Role,
    password: Option<String>,
    now_ms: u64,
) -> Result<Option<String>, AuthError> {
    super::valid_user_name(name).map_err(AuthError::Invalid)?;
    let (pass, generated) = choose(password)?;
    let row = UserRow {
        name: name.to_owned(),
        role: role.as_str().into(),
        password_hash: password::hash(&pass)?,
        created_ms: now_ms,
        updated_ms: now_ms,
    };
    match db.insert_user(&row)? {
        Ok(()) => Ok(generated),
        Err(_) => Err(AuthError::Conflict(format!(
            "an account named {name} exists"
        ))),
    }
}

/// Sets an account's password (an admin's reset: every session of it ends); returns the
/// password when it was generated.
pub fn set_password(
    db: &AuthDb,
    name: &str,
    password: Option<String>,
    now_ms: u64,
) -> Result<Option<String>, AuthError> {
    let (pass, generated) = choose(password)?;
    match db.set_password(name, &password::hash(&pass)?, now_ms, None)? {
        Ok(()) => Ok(generated),
        Err(_) => Err(AuthError::NotFound(format!("no account named {name}"))),
    }
}

/// A user's change of their own password: the current one must be right; their other
/// sessions end, `keep` (this one) stays.
pub fn change_own_password(
    db: &AuthDb,
    name: &str,
    current: &str,
    new: &str,
    keep: Option<&[u8]>,
    now_ms: u64,
) -> Result<(), AuthError> {
    let user = db
        .read(|c| db_auth::user(c, name))?
        .ok_or_else(|| AuthError::NotFound(format!("no account named {name}")))?;
    if !password::verify(current, &user.password_hash) {
        return Err(AuthError::Invalid("the current password is wrong".into()));
    }
    password::check_strength(new).map_err(AuthError::Invalid)?;
    match db.set_password(name, &password::hash(new)?, now_ms, keep)? {
        Ok(()) => Ok(()),
        Err(_) => Err(AuthError::NotFound(format!("no account named {name}"))),
    }
}

pub fn delete_user(db: &AuthDb, name: &str) -> Result<(), AuthError> {
    match db.delete_user(name)? {
        Ok(()) => Ok(()),
        Err(Refused::LastAdmin) => Err(AuthError::Conflict(format!(
            "{name} is the last admin account; create another admin first"
        ))),
        Err(_) => Err(AuthError::NotFound(format!("no account named {name}"))),
    }
}

/// A token just created: `token` is shown once and never again.
#[derive(Debug, serde::Serialize)]
pub struct NewToken {
    pub id: String,
    pub name: String,
    pub role: Role,
    pub token: String,
}

pub fn create_token(
    db: &AuthDb,
    name: &str,
    role: Role,
    created_by: &str,
    now_ms: u64,
) -> Result<NewToken, AuthError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(AuthError::Invalid(
            "name: say what the token is for, in 1 to 100 characters".into(),
        ));
    }
    let (id, token, secret_hash) = secret::new_token()?;
    db.insert_token(&TokenRow {
        id: id.clone(),
        name: name.to_owned(),
        role: role.as_str().into(),
        secret_hash,
        created_by: created_by.to_owned(),
        created_ms: now_ms,
    })?;
    Ok(NewToken {
        id,
        name: name.to_owned(),
        role,
        token,
    })
}

pub fn revoke_token(db: &AuthDb, id: &str) -> Result<(), AuthError> {
    match db.delete_token(id)? {
        Ok(()) => Ok(()),
        Err(_) => Err(AuthError::NotFound(format!("no token with id {id}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> (tempfile::TempDir, AuthDb) {
        let dir = tempfile::tempdir().unwrap();
        let path = crate::store::init(dir.path()).unwrap();
        (dir, AuthDb::new(path))
    }

    #[test]
    fn first_start_generates_an_admin_password_once() {
        let (_d, db) = db();
        let cfg = AuthConfig {
            admin_password_file: None,
            ..AuthConfig::default()
        };
        // SITEWATCH_ADMIN_PASSWORD is not set in unit tests.
        let b = bootstrap(&db, &cfg, 1).unwrap().unwrap();
        assert_eq!(b.user, "admin");
        let pass = b.generated.unwrap();
        assert!(bootstrap(&db, &cfg, 2).unwrap().is_none(), "only once");
        let s = login(&db, "admin", &pass, 10, 1000).unwrap().unwrap();
        assert_eq!(s.role, Role::Admin);
        assert!(
            login(&db, "admin", "wrong password", 10, 1000)
                .unwrap()
                .is_none()
        );
        assert!(login(&db, "nobody", &pass, 10, 1000).unwrap().is_none());
        let conn = Connection::open(db.path()).unwrap();
        let p = check_session(&conn, &s.cookie, 20).unwrap().unwrap();
        assert_eq!(p.name, "admin");
        assert!(check_session(&conn, &s.cookie, 1010).unwrap().is_none());
        assert!(check_session(&conn, "forged", 20).unwrap().is_none());
    }

    #[test]
    fn tokens_and_viewers() {
        let (_d, db) = db();
        let pw = create_user(&db, "viewer1", Role::Viewer, None, 1).unwrap();
        assert!(pw.is_some());
        assert!(matches!(
            create_user(&db, "viewer1", Role::Viewer, None, 1),
            Err(AuthError::Conflict(_))
        ));
        assert!(matches!(
            create_user(&db, "v2", Role::Viewer, Some("short".into()), 1),
            Err(AuthError::Invalid(_))
        ));
        let t = create_token(&db, "backup", Role::Viewer, "admin", 5).unwrap();
        let conn = Connection::open(db.path()).unwrap();
        let p = check_token(&conn, &t.token).unwrap().unwrap();
        assert_eq!((p.name.as_str(), p.role), ("token:backup", Role::Viewer));
        let last = if t.token.ends_with('0') { '1' } else { '0' };
        let forged = format!("{}{last}", &t.token[..t.token.len() - 1]);
        assert!(check_token(&conn, &forged).unwrap().is_none());
        revoke_token(&db, &t.id).unwrap();
        assert!(check_token(&conn, &t.token).unwrap().is_none());
    }
}
