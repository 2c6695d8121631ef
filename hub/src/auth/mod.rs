//! Accounts of the dashboard and the API: admin and viewer users with argon2id passwords,
//! browser sessions (cookie + per-session CSRF token), bearer tokens for scripts, and the
//! policy deciding who may come in without credentials ([`Gate`]). The HTTP side (login,
//! middleware) is in `api/auth.rs` and `api/auth_gate.rs`; the SQL in `store/auth.rs`.

pub mod accounts;
pub mod config;
pub mod limiter;
pub mod password;
pub mod secret;

use std::net::SocketAddr;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;

pub use config::{AuthConfig, SecureCookie};

use crate::store::StoreError;
use crate::store::auth::AuthDb;

/// Failures of account operations.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the operating system's random number generator failed")]
    Random,
    #[error("password hashing failed: {0}")]
    Hash(String),
    /// A request that cannot be done as asked; the message says why.
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("cannot read {path}: {source} — check the path of [auth] admin-password-file")]
    PasswordFile {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// What an account may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything: acknowledge, silence, rename devices, manage accounts and tokens.
    Admin,
    /// Read only.
    Viewer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Viewer => "viewer",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "admin" => Some(Role::Admin),
            "viewer" => Some(Role::Viewer),
            _ => None,
        }
    }
}

/// How a request proved who it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Via {
    /// A browser session: writes must carry its CSRF token.
    Session { id_hash: Vec<u8>, csrf: String },
    /// `Authorization: Bearer swt_…`.
    Token { id: String },
    /// No credentials, on a loopback listener with `open-on-loopback` (or no accounts).
    Local,
}

/// Who is asking; put in the request's extensions by the middleware.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Account name, `token:<name>` for a token, `local` without credentials.
    pub name: String,
    pub role: Role,
    pub via: Via,
}

/// User names: 1 to 64 of `A-Z a-z 0-9 _ . @ -` (an e-mail address fits).
pub fn valid_user_name(name: &str) -> Result<(), String> {
    let ok = (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'@' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{name:?} is not a valid user name: use 1 to 64 letters, digits, `_`, `.`, `@` or `-`"
        ))
    }
}

/// Creates the first admin account when the database has none (hub start-up). A generated
/// password is printed once on standard error, never logged.
pub async fn first_start(db: &AuthDb, config: &AuthConfig) -> anyhow::Result<()> {
    use anyhow::Context;
    let (db, config) = (db.clone(), config.clone());
    let created = tokio::task::spawn_blocking(move || {
        accounts::bootstrap(&db, &config, crate::clock::now_ms())
    })
    .await
    .context("creating the first admin account")?
    .context("creating the first admin account")?;
    if let Some(b) = created {
        tracing::warn!(
            user = %b.user,
            generated = b.generated.is_some(),
            "created the first admin account of the dashboard"
        );
        if let Some(password) = b.generated {
            eprintln!(
                "\n  sitewatch: created the dashboard account {:?} with the password\n\n      \
                 {password}\n\n  It is shown only this once. Change it in the dashboard \
                 (Settings) or with\n  `sitewatch-hub user passwd {}`.\n",
                b.user, b.user
            );
        }
    }
    Ok(())
}

/// The access policy and what the HTTP layer needs to apply it.
#[derive(Debug)]
pub struct Gate {
    /// None: accounts are off (handler tests); every request acts as admin.
    pub db: Option<AuthDb>,
    /// Requests without credentials reaching a loopback listener directly act as admin.
    pub open_local: bool,
    pub session_ms: u64,
    pub secure_cookie: SecureCookie,
    pub limiter: Mutex<limiter::Limiter>,
    /// At most this many argon2 computations at once (each takes ~19 MiB).
    pub hashing: Semaphore,
}

/// Concurrent password hashes allowed.
const HASHING_PERMITS: usize = 2;

impl Gate {
    /// No accounts: everything is open (as before accounts existed). Used by handler tests.
    pub fn open() -> Self {
        Self {
            db: None,
            open_local: true,
            session_ms: 0,
            secure_cookie: SecureCookie::Auto,
            limiter: Mutex::default(),
            hashing: Semaphore::new(HASHING_PERMITS),
        }
    }

    /// Accounts stored in `db`; `listen` is the HTTP listener's address: off loopback,
    /// nothing is open.
    pub fn new(db: AuthDb, config: &AuthConfig, listen: SocketAddr) -> Self {
        Self {
            db: Some(db),
            open_local: config.open_on_loopback && listen.ip().is_loopback(),
            session_ms: config.session_hours * 3_600_000,
            secure_cookie: config.secure_cookie,
            limiter: Mutex::default(),
            hashing: Semaphore::new(HASHING_PERMITS),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_listeners_can_be_open() {
        let db = AuthDb::new("/nonexistent");
        let cfg = AuthConfig::default();
        let local = Gate::new(db.clone(), &cfg, "127.0.0.1:8080".parse().unwrap());
        assert!(local.open_local);
        let public = Gate::new(db.clone(), &cfg, "0.0.0.0:8080".parse().unwrap());
        assert!(!public.open_local);
        let closed = AuthConfig {
            open_on_loopback: false,
            ..AuthConfig::default()
        };
        assert!(!Gate::new(db, &closed, "[::1]:8080".parse().unwrap()).open_local);
        assert!(valid_user_name("alice@club-1.fr").is_ok());
        assert!(valid_user_name("").is_err());
        assert!(valid_user_name("a b").is_err());
    }
}
