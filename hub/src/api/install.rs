//! What `deploy/install-agent.sh` fetches from the hub. Public (outside the auth gate):
//! the token in the link is the credential. Plain-text answers, since a shell script
//! prints them.
//!
//! - `GET /install/agent.sh`: the installer itself.
//! - `GET /install/{token}/agent/{target}`: the agent binary for a target triple.
//! - `GET /install/{token}/agent.toml`: the node's config (no secrets).
//! - `POST /install/{token}/agent.env`: redeems the link: the node's new credentials, once.
//!
//! The first three work while the link is unused and unexpired; the last one ends it.

use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use sitewatch_proto::Prefix;
use tokio::sync::Semaphore;

use crate::clock::now_ms;
use crate::install_links::{self, DownloadsConfig};
use crate::store::auth::AuthDb;
use crate::store::install_links::{InstallLinkRow, Unredeemable, install_link};

/// The installer served at `/install/agent.sh`.
pub const INSTALL_SCRIPT: &str = include_str!("../../../deploy/install-agent.sh");

/// What the install routes need.
#[derive(Clone)]
pub struct InstallState {
    db: AuthDb,
    agent_dir: PathBuf,
    prefix: Prefix,
    /// Redeeming hashes a password with argon2 (~19 MiB each): at most two at once.
    hashing: Arc<Semaphore>,
}

impl InstallState {
    pub fn new(db: AuthDb, downloads: &DownloadsConfig, prefix: Prefix) -> Self {
        Self {
            db,
            agent_dir: downloads.agent_dir.clone(),
            prefix,
            hashing: Arc::new(Semaphore::new(2)),
        }
    }
}

pub fn router(state: InstallState) -> Router {
    Router::new()
        .route("/install/agent.sh", get(script))
        .route("/install/{token}/agent/{target}", get(binary))
        .route("/install/{token}/agent.toml", get(config))
        .route("/install/{token}/agent.env", post(credentials))
        .with_state(state)
}

fn text(code: StatusCode, body: String) -> Response {
    (
        code,
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

fn internal(what: &str, err: impl std::fmt::Display) -> Response {
    tracing::error!(cause = %err, "install link: {what}");
    text(
        StatusCode::INTERNAL_SERVER_ERROR,
        format!("the hub failed while {what}; its log says why\n"),
    )
}

const NEW_LINK: &str = "ask the hub's operator for a new one (`sitewatch-hub node install-link \
                        SITE NODE --hub-url URL --broker-url URL`)";

async fn script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/x-shellscript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        INSTALL_SCRIPT,
    )
        .into_response()
}

/// The stored link for `token` if it still serves downloads, or the answer explaining why
/// not.
async fn live_link(
    state: &InstallState,
    token: &str,
) -> Result<(Vec<u8>, InstallLinkRow), Response> {
    let unknown = || {
        text(
            StatusCode::NOT_FOUND,
            format!("unknown install link: check that it was copied whole, or {NEW_LINK}\n"),
        )
    };
    let Some(hash) = install_links::token_hash(token) else {
        return Err(unknown());
    };
    let db = state.db.clone();
    let lookup = hash.clone();
    let found = tokio::task::spawn_blocking(move || db.read(|c| install_link(c, &lookup)))
        .await
        .map_err(|e| internal("looking up the link", e))?
        .map_err(|e| internal("looking up the link", e))?;
    let Some(link) = found else {
        return Err(unknown());
    };
    let now = now_ms();
    if !install_links::is_live(&link, now) {
        let why = match link.used_ms {
            Some(used) => format!("was used at {}", crate::notify::template::utc(used)),
            None => format!(
                "expired at {}",
                crate::notify::template::utc(link.expires_ms)
            ),
        };
        return Err(text(
            StatusCode::GONE,
            format!(
                "this install link for {}/{} {why}; links work once: {NEW_LINK}\n",
                link.site, link.node
            ),
        ));
    }
    Ok((hash, link))
}

async fn binary(
    State(state): State<InstallState>,
    Path((token, target)): Path<(String, String)>,
) -> Response {
    let link = match live_link(&state, &token).await {
        Ok((_, link)) => link,
        Err(resp) => return resp,
    };
    let Some(name) = install_links::agent_file(&target) else {
        return text(
            StatusCode::BAD_REQUEST,
            format!(
                "no agent is built for {target:?}; the hub serves {}\n",
                install_links::AGENT_TARGETS.join(", ")
            ),
        );
    };
    let path = state.agent_dir.join(&name);
    let file = match tokio::fs::File::open(&path).await {
        Ok(f) => f,
        Err(err) => {
            tracing::warn!(path = %path.display(), cause = %err,
                "install link: agent binary requested but not available; build it with \
                 cross/build.sh and copy dist/ to [downloads] agent-dir");
            return text(
                StatusCode::NOT_FOUND,
                format!(
                    "the hub has no {name} to serve (its operator copies cross/build.sh's \
                     dist/ to [downloads] agent-dir); copy the binary to this machine and run \
                     install-agent.sh with --binary FILE --link ...\n"
                ),
            );
        }
    };
    let len = match file.metadata().await {
        Ok(m) => m.len(),
        Err(err) => return internal("reading the agent binary", err),
    };
    tracing::info!(site = %link.site, node = %link.node, %target, bytes = len,
        "install link: serving the agent binary");
    let body = Body::from_stream(tokio_util::io::ReaderStream::new(file));
    (
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
            (header::CONTENT_LENGTH, len.to_string()),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
        body,
    )
        .into_response()
}

async fn config(State(state): State<InstallState>, Path(token): Path<String>) -> Response {
    let link = match live_link(&state, &token).await {
        Ok((_, link)) => link,
        Err(resp) => return resp,
    };
    match install_links::agent_toml(&link, &state.prefix) {
        Ok(toml) => text(StatusCode::OK, toml),
        Err(err) => internal("writing the agent's config", err),
    }
}

async fn credentials(State(state): State<InstallState>, Path(token): Path<String>) -> Response {
    let (hash, link) = match live_link(&state, &token).await {
        Ok(found) => found,
        Err(resp) => return resp,
    };
    let Ok(_permit) = state.hashing.acquire().await else {
        return internal("issuing credentials", "semaphore closed");
    };
    let db = state.db.clone();
    let row = link.clone();
    let redeemed =
        tokio::task::spawn_blocking(move || install_links::redeem(&db, &hash, &row, now_ms()))
            .await;
    match redeemed {
        Ok(Ok(Ok(issued))) => {
            tracing::info!(site = %issued.site, node = %issued.node,
                "install link redeemed: new credentials sent to the installer");
            text(StatusCode::OK, issued.agent_env())
        }
        Ok(Ok(Err(Unredeemable::Gone))) => text(
            StatusCode::GONE,
            format!("this install link was used or expired meanwhile; {NEW_LINK}\n"),
        ),
        Ok(Ok(Err(Unredeemable::NodeHasCredentials))) => text(
            StatusCode::CONFLICT,
            format!(
                "node {site}/{node} got credentials after this link was made; on the hub: \
                 `sitewatch-hub node install-link {site} {node} --rotate ...` for a link that \
                 replaces them\n",
                site = link.site,
                node = link.node
            ),
        ),
        Ok(Err(err)) => internal("issuing credentials", err),
        Err(err) => internal("issuing credentials", err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Request;
    use tower::ServiceExt;

    async fn call(app: &Router, method: &str, uri: &str) -> (StatusCode, Vec<u8>) {
        let resp = app
            .clone()
            .oneshot(
                Request::builder()
                    .method(method)
                    .uri(uri)
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        let status = resp.status();
        let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, body.to_vec())
    }

    #[tokio::test]
    async fn a_link_serves_binary_and_config_until_it_gives_out_credentials_once() {
        let dir = tempfile::tempdir().unwrap();
        let db = AuthDb::new(crate::store::init(&dir.path().join("data")).unwrap());
        let agents = dir.path().join("agents");
        std::fs::create_dir(&agents).unwrap();
        std::fs::write(
            agents.join("sitewatch-agent-x86_64-unknown-linux-musl"),
            b"ELF",
        )
        .unwrap();
        let downloads = DownloadsConfig {
            agent_dir: agents,
            ..DownloadsConfig::default()
        };
        let app = router(InstallState::new(db.clone(), &downloads, Prefix::default()));
        let site = sitewatch_proto::SiteId::new("club").unwrap();
        let node = sitewatch_proto::NodeId::new("pi").unwrap();
        let req = install_links::LinkRequest {
            site: &site,
            node: &node,
            broker_url: "mqtt://hub:1883",
            rotate: false,
            valid_hours: 24,
        };
        let link = install_links::create(&db, &req, now_ms()).unwrap();
        let base = format!("/install/{}", link.token);

        let (code, body) = call(&app, "GET", "/install/agent.sh").await;
        assert_eq!(code, StatusCode::OK);
        assert!(body.starts_with(b"#!/bin/sh"));
        let (code, body) = call(
            &app,
            "GET",
            &format!("{base}/agent/x86_64-unknown-linux-musl"),
        )
        .await;
        assert_eq!((code, body.as_slice()), (StatusCode::OK, &b"ELF"[..]));
        let (code, body) = call(
            &app,
            "GET",
            &format!("{base}/agent/aarch64-unknown-linux-musl"),
        )
        .await;
        assert_eq!(code, StatusCode::NOT_FOUND);
        assert!(String::from_utf8_lossy(&body).contains("--binary"));
        let (code, _) = call(&app, "GET", &format!("{base}/agent/..%2f..%2fetc%2fpasswd")).await;
        assert_eq!(code, StatusCode::BAD_REQUEST);
        let (code, body) = call(&app, "GET", &format!("{base}/agent.toml")).await;
        assert_eq!(code, StatusCode::OK);
        assert!(String::from_utf8_lossy(&body).contains("\nnode = \"pi\"\n"));

        let (code, body) = call(&app, "POST", &format!("{base}/agent.env")).await;
        assert_eq!(code, StatusCode::OK);
        let env = String::from_utf8(body).unwrap();
        assert!(
            env.starts_with("SITEWATCH_MQTT_USERNAME=sw.club.pi\n"),
            "{env}"
        );
        let password = env
            .lines()
            .find_map(|l| l.strip_prefix("SITEWATCH_MQTT_PASSWORD="))
            .unwrap();
        // Stored: the argon2 hash of the password, never the password.
        let stored = db.read(crate::store::nodes::node_credentials).unwrap();
        assert_eq!(stored.len(), 1);
        assert!(crate::auth::password::verify(
            password,
            &stored[0].password_hash
        ));
        assert!(!stored[0].password_hash.contains(password));

        // Used: every route of the link is gone.
        for (method, path) in [("POST", "agent.env"), ("GET", "agent.toml")] {
            let (code, body) = call(&app, method, &format!("{base}/{path}")).await;
            assert_eq!(code, StatusCode::GONE);
            assert!(String::from_utf8_lossy(&body).contains("was used"));
        }
        let (code, _) = call(
            &app,
            "GET",
            &format!("/install/swi_{}/agent.toml", "0".repeat(64)),
        )
        .await;
        assert_eq!(code, StatusCode::NOT_FOUND);
        // The node has credentials now: a new link needs --rotate.
        assert!(install_links::create(&db, &req, now_ms()).is_err());
    }
}
