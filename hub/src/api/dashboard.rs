//! The dashboard's static assets, embedded at build time from `dashboard/`. `/login` and
//! `/assets/public/*` (login page, styles, translations) are reachable without logging
//! in; the application itself (`/`, `/assets/*.js`) is behind the auth gate.

use std::sync::OnceLock;

use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::ApiError;

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const SVG: &str = "image/svg+xml";
const HTML: &str = "text/html; charset=utf-8";

/// (name, content type, body): the application, served behind the gate.
const APP: &[(&str, &str, &str)] = &[
    ("app.js", JS, include_str!("../../../dashboard/app.js")),
    ("ui.js", JS, include_str!("../../../dashboard/ui.js")),
    ("chart.js", JS, include_str!("../../../dashboard/chart.js")),
    ("fleet.js", JS, include_str!("../../../dashboard/fleet.js")),
    ("node.js", JS, include_str!("../../../dashboard/node.js")),
    (
        "alerts.js",
        JS,
        include_str!("../../../dashboard/alerts.js"),
    ),
    (
        "devices.js",
        JS,
        include_str!("../../../dashboard/devices.js"),
    ),
    (
        "settings.js",
        JS,
        include_str!("../../../dashboard/settings.js"),
    ),
];

/// Reachable without logging in: nothing here holds data.
const PUBLIC: &[(&str, &str, &str)] = &[
    (
        "style.css",
        CSS,
        include_str!("../../../dashboard/style.css"),
    ),
    ("i18n.js", JS, include_str!("../../../dashboard/i18n.js")),
    ("login.js", JS, include_str!("../../../dashboard/login.js")),
    ("icon.svg", SVG, include_str!("../../../dashboard/icon.svg")),
];

const INDEX: &str = include_str!("../../../dashboard/index.html");
const LOGIN: &str = include_str!("../../../dashboard/login.html");

/// Scripts and styles from this origin only: even an injected tag or handler attribute
/// would not run. Data goes in as text (`textContent`), never as HTML.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; font-src 'self'; manifest-src 'self'; base-uri 'none'; \
                   form-action 'self'; frame-ancestors 'none'";

/// A strong validator per asset (FNV-1a of the body), so reloads cost a 304.
fn etag(body: &str) -> String {
    let h = body.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("\"{h:016x}\"")
}

fn serve(headers: &HeaderMap, mime: &'static str, body: &'static str, tag: &str) -> Response {
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag));
    let mut resp = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, mime)], body).into_response()
    };
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if let Ok(v) = HeaderValue::from_str(tag) {
        h.insert(header::ETAG, v);
    }
    if mime == HTML {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        );
        h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        h.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
    }
    resp
}

fn tags(list: &'static [(&str, &str, &str)]) -> Vec<String> {
    list.iter().map(|(_, _, body)| etag(body)).collect()
}

fn find(
    list: &'static [(&'static str, &'static str, &'static str)],
    cache: &'static OnceLock<Vec<String>>,
    file: &str,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let i = list
        .iter()
        .position(|(name, _, _)| *name == file)
        .ok_or_else(|| ApiError::NotFound(format!("no asset named {file:?}")))?;
    let (_, mime, body) = list[i];
    let tag = cache
        .get_or_init(|| tags(list))
        .get(i)
        .cloned()
        .unwrap_or_default();
    Ok(serve(headers, mime, body, &tag))
}

pub async fn index(headers: HeaderMap) -> Response {
    static TAG: OnceLock<String> = OnceLock::new();
    serve(&headers, HTML, INDEX, TAG.get_or_init(|| etag(INDEX)))
}

pub async fn login(headers: HeaderMap) -> Response {
    static TAG: OnceLock<String> = OnceLock::new();
    serve(&headers, HTML, LOGIN, TAG.get_or_init(|| etag(LOGIN)))
}

pub async fn asset(Path(file): Path<String>, headers: HeaderMap) -> Result<Response, ApiError> {
    static TAGS: OnceLock<Vec<String>> = OnceLock::new();
    find(APP, &TAGS, &file, &headers)
}

pub async fn public_asset(
    Path(file): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    static TAGS: OnceLock<Vec<String>> = OnceLock::new();
    find(PUBLIC, &TAGS, &file, &headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_asset_reads_data_into_html() {
        // The house rule: agent-provided strings go in with textContent. A regression
        // that reaches for innerHTML/outerHTML/insertAdjacentHTML/document.write fails here.
        for (name, _, body) in APP.iter().chain(PUBLIC) {
            for sink in [
                "innerHTML",
                "outerHTML",
                "insertAdjacentHTML",
                "document.write",
                "eval(",
            ] {
                assert!(!body.contains(sink), "{name} uses {sink}");
            }
        }
    }

    #[test]
    fn etags_differ_per_body() {
        assert_ne!(etag("a"), etag("b"));
        assert_eq!(etag("a"), etag("a"));
    }
}
