//! The middleware in front of everything but `/healthz`, the login page and the login
//! call: finds who is asking (bearer token, session cookie, or nobody on an open loopback
//! listener), refuses anonymous requests, and on writes checks the origin, the session's
//! CSRF token and the role.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::json;

use super::AppState;
use crate::auth::{Principal, Role, SecureCookie, Via, accounts, secret};
use crate::clock::now_ms;

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "sw_session";
/// Header carrying the session's CSRF token on writes.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// Writes any signed-in account may do on itself.
const SELF_SERVICE: &[&str] = &["/api/v1/auth/logout", "/api/v1/auth/password"];

/// Headers a reverse proxy adds; their presence means the client is not local.
const PROXY_HEADERS: &[&str] = &[
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
    "x-real-ip",
];

pub fn refuse(code: StatusCode, msg: &str) -> Response {
    (code, axum::Json(json!({ "error": msg }))).into_response()
}

pub async fn require(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let principal = match identify(&state, req.headers()).await {
        Ok(Some(p)) => p,
        Ok(None) => return unauthenticated(&req),
        Err(resp) => return resp,
    };
    if let Err((code, msg)) = authorize(&principal, req.method(), req.uri().path(), req.headers()) {
        return refuse(code, msg);
    }
    req.extensions_mut().insert(principal);
    next.run(req).await
}

/// The session cookie's value, if the request has one.
pub fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == SESSION_COOKIE)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Without credentials where that is allowed: acts as admin, as before accounts existed.
fn local() -> Principal {
    Principal {
        name: "local".into(),
        role: Role::Admin,
        via: Via::Local,
    }
}

async fn identify(state: &AppState, headers: &HeaderMap) -> Result<Option<Principal>, Response> {
    let gate = &state.auth;
    if gate.db.is_none() {
        return Ok(Some(local()));
    }
    let db_failed = |err: crate::store::StoreError| {
        tracing::error!(cause = %err, "cannot check credentials in the database");
        refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "cannot check credentials right now; see the hub's log",
        )
    };
    if let Some(token) = bearer(headers) {
        let token = token.to_owned();
        return match state
            .reader
            .with(move |c| accounts::check_token(c, &token))
            .await
        {
            Ok(Some(p)) => Ok(Some(p)),
            Ok(None) => Err(refuse(
                StatusCode::UNAUTHORIZED,
                "invalid or revoked API token; an admin creates tokens in Settings or with \
                 `sitewatch-hub token add NAME`",
            )),
            Err(err) => Err(db_failed(err)),
        };
    }
    if let Some(cookie) = session_cookie(headers) {
        let (cookie, now) = (cookie.to_owned(), now_ms());
        match state
            .reader
            .with(move |c| accounts::check_session(c, &cookie, now))
            .await
        {
            Ok(Some(p)) => return Ok(Some(p)),
            Ok(None) => {} // expired or logged out: anonymous from here on
            Err(err) => return Err(db_failed(err)),
        }
    }
    Ok((gate.open_local && is_direct_local(headers)).then(local))
}

/// A request that reached the loopback listener directly: no proxy headers, and a `Host`
/// naming loopback (which also defeats DNS rebinding).
fn is_direct_local(headers: &HeaderMap) -> bool {
    if PROXY_HEADERS.iter().any(|h| headers.contains_key(*h)) {
        return false;
    }
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
        return false;
    };
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(h, _)| h),
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn unauthenticated(req: &Request) -> Response {
    let wants_page = req.method() == Method::GET
        && (req.uri().path() == "/"
            || req
                .headers()
                .get(header::ACCEPT)
                .and_then(|a| a.to_str().ok())
                .is_some_and(|a| a.contains("text/html")));
    if wants_page {
        return Redirect::to("/login").into_response();
    }
    let mut resp = refuse(
        StatusCode::UNAUTHORIZED,
        "log in first (POST /api/v1/auth/login) or send `Authorization: Bearer <token>`",
    );
    resp.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer"),
    );
    resp
}

fn authorize(
    p: &Principal,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
) -> Result<(), (StatusCode, &'static str)> {
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return Ok(());
    }
    if !same_origin(headers) {
        return Err((
            StatusCode::FORBIDDEN,
            "cross-origin request refused; a reverse proxy must pass Host or X-Forwarded-Host",
        ));
    }
    if let Via::Session { csrf, .. } = &p.via {
        let sent = headers
            .get(CSRF_HEADER)
            .map(|v| v.as_bytes())
            .unwrap_or_default();
        if !secret::ct_eq(sent, csrf.as_bytes()) {
            return Err((
                StatusCode::FORBIDDEN,
                "missing or wrong X-CSRF-Token header; reload the dashboard",
            ));
        }
    }
    if p.role != Role::Admin && !SELF_SERVICE.contains(&path) {
        return Err((
            StatusCode::FORBIDDEN,
            "this account is read-only (viewer); ask an admin",
        ));
    }
    Ok(())
}

/// No `Origin` (not a browser, or a same-origin navigation), or one naming this host.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) else {
        return true;
    };
    let Some((_, authority)) = origin.split_once("://") else {
        return false; // "null" and other opaque origins
    };
    let authority = authority.trim_end_matches('/');
    [header::HOST.as_str(), "x-forwarded-host"]
        .iter()
        .filter_map(|h| headers.get(*h).and_then(|v| v.to_str().ok()))
        .any(|host| {
            host.split(',')
                .next()
                .is_some_and(|h| h.trim().eq_ignore_ascii_case(authority))
        })
}

/// Whether the session cookie gets `Secure`.
pub fn cookie_secure(mode: SecureCookie, headers: &HeaderMap) -> bool {
    match mode {
        SecureCookie::Always => true,
        SecureCookie::Never => false,
        SecureCookie::Auto => {
            let get = |h: &str| headers.get(h).and_then(|v| v.to_str().ok()).unwrap_or("");
            get("x-forwarded-proto")
                .split(',')
                .next()
                .is_some_and(|p| p.trim().eq_ignore_ascii_case("https"))
                || get("forwarded")
                    .to_ascii_lowercase()
                    .split([';', ','])
                    .any(|kv| kv.trim() == "proto=https")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.append(*k, header::HeaderValue::from_static(v));
        }
        m
    }

    #[test]
    fn local_means_loopback_host_and_no_proxy() {
        assert!(is_direct_local(&h(&[("host", "127.0.0.1:8080")])));
        assert!(is_direct_local(&h(&[("host", "localhost")])));
        assert!(is_direct_local(&h(&[("host", "[::1]:8080")])));
        assert!(!is_direct_local(&h(&[("host", "evil.example:8080")])));
        assert!(!is_direct_local(&h(&[])));
        assert!(!is_direct_local(&h(&[
            ("host", "127.0.0.1:8080"),
            ("x-forwarded-for", "203.0.113.9")
        ])));
    }

    #[test]
    fn writes_need_csrf_same_origin_and_admin() {
        let session = Principal {
            name: "alice".into(),
            role: Role::Admin,
            via: Via::Session {
                id_hash: vec![],
                csrf: "tok".into(),
            },
        };
        let post = Method::POST;
        let ok = h(&[("host", "hub:8080"), ("x-csrf-token", "tok")]);
        assert!(authorize(&session, &post, "/api/v1/silences", &ok).is_ok());
        assert!(authorize(&session, &Method::GET, "/api/v1/nodes", &h(&[])).is_ok());
        let no_csrf = h(&[("host", "hub:8080")]);
        assert!(authorize(&session, &post, "/api/v1/silences", &no_csrf).is_err());
        let cross = h(&[
            ("host", "hub:8080"),
            ("origin", "https://evil.example"),
            ("x-csrf-token", "tok"),
        ]);
        assert!(authorize(&session, &post, "/api/v1/silences", &cross).is_err());
        let same = h(&[
            ("host", "hub:8080"),
            ("origin", "http://hub:8080"),
            ("x-csrf-token", "tok"),
        ]);
        assert!(authorize(&session, &post, "/api/v1/silences", &same).is_ok());
        let viewer = Principal {
            role: Role::Viewer,
            ..session.clone()
        };
        assert!(authorize(&viewer, &post, "/api/v1/silences", &ok).is_err());
        assert!(authorize(&viewer, &post, "/api/v1/auth/logout", &ok).is_ok());
        let token = Principal {
            name: "token:x".into(),
            role: Role::Admin,
            via: Via::Token { id: "1".into() },
        };
        assert!(authorize(&token, &Method::DELETE, "/api/v1/silences/1", &no_csrf).is_ok());
    }

    #[test]
    fn cookies_and_secure_flag() {
        let m = h(&[("cookie", "a=1; sw_session=abc ; b=2")]);
        assert_eq!(session_cookie(&m), Some("abc"));
        assert_eq!(session_cookie(&h(&[("cookie", "sw_session=")])), None);
        assert!(cookie_secure(
            SecureCookie::Auto,
            &h(&[("x-forwarded-proto", "https")])
        ));
        assert!(cookie_secure(
            SecureCookie::Auto,
            &h(&[("forwarded", "for=1.2.3.4;Proto=https")])
        ));
        assert!(!cookie_secure(SecureCookie::Auto, &h(&[])));
        assert!(cookie_secure(SecureCookie::Always, &h(&[])));
    }
}
