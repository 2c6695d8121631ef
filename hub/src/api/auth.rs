//! Accounts over HTTP: log in and out, who am I, change my password; for admins, users
//! (`/api/v1/users`) and API tokens (`/api/v1/tokens`). The work is in `auth::accounts`,
//! run on blocking threads (SQLite, argon2); these handlers only translate.

use std::net::{IpAddr, SocketAddr};

use axum::Json;
use axum::extract::{ConnectInfo, Extension, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::AppState;
use super::auth_gate::{SESSION_COOKIE, cookie_secure, refuse, session_cookie};
use crate::auth::{AuthError, Principal, Role, Via, accounts};
use crate::clock::now_ms;
use crate::store::auth::AuthDb;

/// Errors of these handlers; 5xx details are logged, not sent.
pub struct AuthApiError(AuthError);

impl From<AuthError> for AuthApiError {
    fn from(e: AuthError) -> Self {
        Self(e)
    }
}

/// Marker message of [`require_admin`]'s refusal (answered 403).
const ADMIN_ONLY: &str = "only an admin account may do this";

impl IntoResponse for AuthApiError {
    fn into_response(self) -> Response {
        let code = match &self.0 {
            AuthError::Invalid(m) if m == ADMIN_ONLY => StatusCode::FORBIDDEN,
            AuthError::Invalid(_) => StatusCode::BAD_REQUEST,
            AuthError::NotFound(_) => StatusCode::NOT_FOUND,
            AuthError::Conflict(_) => StatusCode::CONFLICT,
            other => {
                tracing::error!(cause = %other, "account operation failed");
                return refuse(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal error; see the hub's log",
                );
            }
        };
        refuse(code, &self.0.to_string())
    }
}

type Result<T> = std::result::Result<T, AuthApiError>;

fn bad(msg: impl Into<String>) -> AuthApiError {
    AuthApiError(AuthError::Invalid(msg.into()))
}

fn db(state: &AppState) -> Result<AuthDb> {
    state.auth.db.clone().ok_or_else(|| {
        AuthApiError(AuthError::NotFound(
            "accounts are not enabled in this hub".into(),
        ))
    })
}

/// Runs a blocking account operation, at most two password hashes at a time.
async fn blocking<T: Send + 'static>(
    state: &AppState,
    f: impl FnOnce() -> std::result::Result<T, AuthError> + Send + 'static,
) -> Result<T> {
    let _permit = state
        .auth
        .hashing
        .acquire()
        .await
        .map_err(|_| AuthApiError(AuthError::Invalid("the hub is shutting down".into())))?;
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| AuthApiError(AuthError::Hash(e.to_string())))?
        .map_err(AuthApiError)
}

fn json_body<T>(
    body: std::result::Result<Json<T>, axum::extract::rejection::JsonRejection>,
    help: &str,
) -> Result<T> {
    body.map(|Json(b)| b)
        .map_err(|e| bad(format!("{}; expected {help}", e.body_text())))
}

fn require_admin(p: &Principal) -> Result<()> {
    if p.role == Role::Admin {
        Ok(())
    } else {
        Err(AuthApiError(AuthError::Invalid(ADMIN_ONLY.into())))
    }
}

/// The client address for the login rate limit: the peer, or what a local reverse proxy
/// says it saw (the last `X-Forwarded-For` hop, the one the proxy appended).
fn client_ip(peer: Option<SocketAddr>, headers: &HeaderMap) -> IpAddr {
    let peer_ip = peer.map_or(IpAddr::from([127, 0, 0, 1]), |p| p.ip());
    if peer_ip.is_loopback()
        && let Some(ip) = headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .and_then(|v| v.trim().parse().ok())
    {
        return ip;
    }
    peer_ip
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginBody {
    user: String,
    password: String,
}

/// What the dashboard needs to know about the caller.
#[derive(Debug, Serialize)]
pub struct Me {
    user: String,
    role: Role,
    /// `session`, `token` or `local` (no credentials on an open loopback listener).
    via: &'static str,
    /// Send back in `X-CSRF-Token` on every write (sessions only).
    csrf: Option<String>,
    /// Whether the hub has accounts at all (false only in embedded tests).
    accounts: bool,
}

fn me_of(p: &Principal, accounts: bool) -> Me {
    let (via, csrf) = match &p.via {
        Via::Session { csrf, .. } => ("session", Some(csrf.clone())),
        Via::Token { .. } => ("token", None),
        Via::Local => ("local", None),
    };
    Me {
        user: p.name.clone(),
        role: p.role,
        via,
        csrf,
        accounts,
    }
}

pub async fn login(
    State(state): State<AppState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    body: std::result::Result<Json<LoginBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Response> {
    let b = json_body(body, r#"{"user": "NAME", "password": "..."}"#)?;
    let db = db(&state)?;
    let ip = client_ip(peer.map(|Extension(ConnectInfo(a))| a), &headers);
    let now = now_ms();
    let wait = state
        .auth
        .limiter
        .lock()
        .ok()
        .and_then(|l| l.blocked(ip, now));
    if let Some(secs) = wait {
        let mut resp = refuse(
            StatusCode::TOO_MANY_REQUESTS,
            &format!("too many failed logins from this address; try again in {secs} s"),
        );
        if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return Ok(resp);
    }
    let ttl = state.auth.session_ms;
    let session = blocking(&state, move || {
        accounts::login(&db, &b.user, &b.password, now, ttl)
    })
    .await?;
    let Some(s) = session else {
        if let Ok(mut l) = state.auth.limiter.lock() {
            l.failed(ip, now);
        }
        tracing::info!(%ip, "failed dashboard login");
        return Ok(refuse(
            StatusCode::UNAUTHORIZED,
            "wrong user name or password",
        ));
    };
    if let Ok(mut l) = state.auth.limiter.lock() {
        l.succeeded(ip);
    }
    tracing::info!(user = %s.user, %ip, "dashboard login");
    let secure = if cookie_secure(state.auth.secure_cookie, &headers) {
        "; Secure"
    } else {
        ""
    };
    let cookie = format!(
        "{SESSION_COOKIE}={}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
        s.cookie,
        ttl / 1000
    );
    let me = Me {
        user: s.user,
        role: s.role,
        via: "session",
        csrf: Some(s.csrf),
        accounts: true,
    };
    let mut resp = Json(me).into_response();
    let value = HeaderValue::from_str(&cookie)
        .map_err(|_| AuthApiError(AuthError::Hash("cookie value".into())))?;
    resp.headers_mut().insert(header::SET_COOKIE, value);
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

pub async fn logout(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
) -> Result<Response> {
    if let (Via::Session { id_hash, .. }, Some(db)) = (&p.via, state.auth.db.clone()) {
        let id_hash = id_hash.clone();
        tokio::task::spawn_blocking(move || db.delete_session(&id_hash))
            .await
            .map_err(|e| AuthApiError(AuthError::Hash(e.to_string())))?
            .map_err(|e| AuthApiError(AuthError::Store(e)))?;
    }
    let mut resp = StatusCode::NO_CONTENT.into_response();
    resp.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("sw_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    Ok(resp)
}

pub async fn me(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    headers: HeaderMap,
) -> Response {
    let mut resp = Json(me_of(&p, state.auth.db.is_some())).into_response();
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // A stale cookie on an open loopback listener: tell the browser to drop it.
    if p.via == Via::Local && session_cookie(&headers).is_some() {
        resp.headers_mut().insert(
            header::SET_COOKIE,
            HeaderValue::from_static("sw_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
        );
    }
    resp
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    current: String,
    new: String,
}

pub async fn change_password(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    body: std::result::Result<Json<PasswordChange>, axum::extract::rejection::JsonRejection>,
) -> Result<StatusCode> {
    let b = json_body(body, r#"{"current": "...", "new": "..."}"#)?;
    let Via::Session { id_hash, .. } = p.via else {
        return Err(bad("log in with a user account to change its password"));
    };
    let db = db(&state)?;
    blocking(&state, move || {
        accounts::change_own_password(&db, &p.name, &b.current, &b.new, Some(&id_hash), now_ms())
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Serialize)]
pub struct UserView {
    name: String,
    role: String,
    created_ms: u64,
    updated_ms: u64,
}

pub async fn users(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
) -> Result<Json<Vec<UserView>>> {
    require_admin(&p)?;
    db(&state)?;
    let rows = state
        .reader
        .with(crate::store::auth::users)
        .await
        .map_err(|e| AuthApiError(AuthError::Store(e)))?;
    Ok(Json(
        rows.into_iter()
            .map(|u| UserView {
                name: u.name,
                role: u.role,
                created_ms: u.created_ms,
                updated_ms: u.updated_ms,
            })
            .collect(),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    name: String,
    role: Role,
    /// Generated (and returned once) when absent.
    password: Option<String>,
}

pub async fn create_user(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    body: std::result::Result<Json<NewUser>, axum::extract::rejection::JsonRejection>,
) -> Result<(StatusCode, Json<serde_json::Value>)> {
    require_admin(&p)?;
    let b = json_body(
        body,
        r#"{"name": "alice", "role": "viewer"|"admin", "password": "..." (optional)}"#,
    )?;
    let db = db(&state)?;
    let (name, role) = (b.name.clone(), b.role);
    let generated = blocking(&state, move || {
        accounts::create_user(&db, &b.name, b.role, b.password, now_ms())
    })
    .await?;
    tracing::info!(user = %name, role = role.as_str(), by = %p.name, "account created");
    Ok((
        StatusCode::CREATED,
        Json(json!({ "name": name, "role": role, "password": generated })),
    ))
}

pub async fn delete_user(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(name): Path<String>,
) -> Result<StatusCode> {
    require_admin(&p)?;
    if p.name == name {
        return Err(bad("you cannot delete your own account"));
    }
    let db = db(&state)?;
    let n = name.clone();
    blocking(&state, move || accounts::delete_user(&db, &n)).await?;
    tracing::info!(user = %name, by = %p.name, "account deleted");
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordReset {
    password: Option<String>,
}

pub async fn reset_password(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(name): Path<String>,
    body: std::result::Result<Json<PasswordReset>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<serde_json::Value>> {
    require_admin(&p)?;
    let b = json_body(body, r#"{"password": "..."} or {} to generate one"#)?;
    let db = db(&state)?;
    let n = name.clone();
    let generated = blocking(&state, move || {
        accounts::set_password(&db, &n, b.password, now_ms())
    })
    .await?;
    tracing::info!(user = %name, by = %p.name, "password reset");
    Ok(Json(json!({ "name": name, "password": generated })))
}

#[derive(Debug, Serialize)]
pub struct TokenView {
    id: String,
    name: String,
    role: String,
    created_by: String,
    created_ms: u64,
}

pub async fn tokens(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
) -> Result<Json<Vec<TokenView>>> {
    require_admin(&p)?;
    db(&state)?;
    let rows = state
        .reader
        .with(crate::store::auth::tokens)
        .await
        .map_err(|e| AuthApiError(AuthError::Store(e)))?;
    Ok(Json(
        rows.into_iter()
            .map(|t| TokenView {
                id: t.id,
                name: t.name,
                role: t.role,
                created_by: t.created_by,
                created_ms: t.created_ms,
            })
            .collect(),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewTokenBody {
    name: String,
    role: Role,
}

pub async fn create_token(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    body: std::result::Result<Json<NewTokenBody>, axum::extract::rejection::JsonRejection>,
) -> Result<(StatusCode, Json<accounts::NewToken>)> {
    require_admin(&p)?;
    let b = json_body(
        body,
        r#"{"name": "backup script", "role": "viewer"|"admin"}"#,
    )?;
    let db = db(&state)?;
    let by = p.name.clone();
    let t = tokio::task::spawn_blocking(move || {
        accounts::create_token(&db, &b.name, b.role, &by, now_ms())
    })
    .await
    .map_err(|e| AuthApiError(AuthError::Hash(e.to_string())))??;
    tracing::info!(token = %t.id, name = %t.name, by = %p.name, "API token created");
    Ok((StatusCode::CREATED, Json(t)))
}

pub async fn revoke_token(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    require_admin(&p)?;
    let db = db(&state)?;
    let i = id.clone();
    tokio::task::spawn_blocking(move || accounts::revoke_token(&db, &i))
        .await
        .map_err(|e| AuthApiError(AuthError::Hash(e.to_string())))??;
    tracing::info!(token = %id, by = %p.name, "API token revoked");
    Ok(StatusCode::NO_CONTENT)
}
