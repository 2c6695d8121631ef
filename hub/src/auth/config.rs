//! `[auth]` of `hub.toml`: who may use the dashboard and the API without logging in, the
//! first admin account, session lifetime and the cookie's `Secure` flag.

use std::path::PathBuf;

use serde::Deserialize;

/// Environment variable holding the first admin's password (instead of a file).
pub const ADMIN_PASSWORD_ENV: &str = "SITEWATCH_ADMIN_PASSWORD";

fn d_true() -> bool {
    true
}
fn d_admin() -> String {
    "admin".into()
}
fn d_session_hours() -> u64 {
    168
}

/// When the session cookie carries `Secure`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SecureCookie {
    /// When the request came over HTTPS through a reverse proxy (`X-Forwarded-Proto:
    /// https` or `Forwarded: proto=https`).
    #[default]
    Auto,
    Always,
    Never,
}

/// `[auth]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct AuthConfig {
    /// Requests without credentials that reach a loopback listener directly (no proxy
    /// headers, a loopback `Host`) act as admin, as before accounts existed. Has no effect
    /// when `http-listen` is not a loopback address: there, everything but the login page
    /// and `/healthz` needs a session or a token.
    #[serde(default = "d_true")]
    pub open_on_loopback: bool,
    /// Name of the admin account created at first start (when no account exists).
    #[serde(default = "d_admin")]
    pub admin_user: String,
    /// File holding that account's first password (systemd `LoadCredential=`); or set
    /// `SITEWATCH_ADMIN_PASSWORD`. With neither, a password is generated and printed once
    /// on standard error.
    #[serde(default)]
    pub admin_password_file: Option<PathBuf>,
    /// A login lasts this long.
    #[serde(default = "d_session_hours")]
    pub session_hours: u64,
    /// `auto`, `always` or `never`: when the session cookie is marked `Secure`.
    #[serde(default)]
    pub secure_cookie: SecureCookie,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            open_on_loopback: true,
            admin_user: d_admin(),
            admin_password_file: None,
            session_hours: d_session_hours(),
            secure_cookie: SecureCookie::Auto,
        }
    }
}

impl AuthConfig {
    pub fn validate(&self) -> Result<(), String> {
        super::valid_user_name(&self.admin_user).map_err(|e| format!("[auth] admin-user: {e}"))?;
        if !(1..=24 * 366).contains(&self.session_hours) {
            return Err("[auth] session-hours must be between 1 and 8784 (a year)".into());
        }
        Ok(())
    }
}
