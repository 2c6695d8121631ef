//! A one-request HTTP/1.1 client for webhooks: hyper's client connection over TCP, or over
//! rustls for `https://` (system roots, ring provider — the same TLS stack as MQTT). One
//! connection per request: webhooks are rare, pooling is not worth a dependency.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Why a request did not get a response.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("cannot connect to {addr}: {source} — check the URL and that the receiver is up")]
    Connect {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "TLS handshake with {host} failed: {source} — check the URL and the server's certificate"
    )]
    Tls {
        host: String,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid host name {0:?} for TLS")]
    ServerName(String),
    #[error("HTTP exchange failed: {0}")]
    Http(#[from] hyper::Error),
    #[error("cannot build the request: {0}")]
    Request(#[from] http::Error),
    #[error("no response within {0:?}")]
    Timeout(Duration),
    #[error("TLS is not available: {0}")]
    NoTls(String),
}

/// Client configuration shared by the requests of one notifier.
#[derive(Clone)]
pub struct HttpClient {
    tls: Option<tokio_rustls::TlsConnector>,
}

impl HttpClient {
    /// A client for `http://` URLs only.
    pub fn plain() -> Self {
        Self { tls: None }
    }

    /// A client that can also reach `https://` URLs, verified against the system roots.
    pub fn with_system_roots() -> Result<Self, HttpError> {
        let config = sitewatch_agent::tls::client_config(&Default::default())
            .map_err(|e| HttpError::NoTls(e.to_string()))?;
        Ok(Self {
            tls: Some(tokio_rustls::TlsConnector::from(
                Arc::<rustls::ClientConfig>::clone(&config),
            )),
        })
    }

    /// POSTs `body`; returns the status and up to 4 KiB of the response body.
    pub async fn post(
        &self,
        uri: &Uri,
        headers: HeaderMap,
        body: Bytes,
        timeout: Duration,
    ) -> Result<(StatusCode, String), HttpError> {
        tokio::time::timeout(timeout, self.exchange(uri, headers, body))
            .await
            .map_err(|_| HttpError::Timeout(timeout))?
    }

    async fn exchange(
        &self,
        uri: &Uri,
        headers: HeaderMap,
        body: Bytes,
    ) -> Result<(StatusCode, String), HttpError> {
        let https = uri.scheme_str() == Some("https");
        let host = uri
            .host()
            .unwrap_or_default()
            .trim_matches(['[', ']'])
            .to_owned();
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        let addr = format!("{host}:{port}");
        let tcp = TcpStream::connect((host.as_str(), port))
            .await
            .map_err(|source| HttpError::Connect {
                addr: addr.clone(),
                source,
            })?;
        let _ = tcp.set_nodelay(true);
        let authority = uri
            .authority()
            .map(|a| a.as_str().to_owned())
            .unwrap_or(addr);
        let path = uri.path_and_query().map_or("/", |p| p.as_str());
        let mut req = Request::post(path).header(http::header::HOST, authority);
        if let Some(h) = req.headers_mut() {
            h.extend(headers);
        }
        let req = req.body(Full::new(body))?;
        if https {
            let tls = self
                .tls
                .as_ref()
                .ok_or_else(|| HttpError::NoTls("this client was built for http:// only".into()))?;
            let name = rustls::pki_types::ServerName::try_from(host.clone())
                .map_err(|_| HttpError::ServerName(host.clone()))?;
            let stream = tls
                .connect(name, tcp)
                .await
                .map_err(|source| HttpError::Tls { host, source })?;
            send(TokioIo::new(stream), req).await
        } else {
            send(TokioIo::new(tcp), req).await
        }
    }
}

async fn send<T>(io: T, req: Request<Full<Bytes>>) -> Result<(StatusCode, String), HttpError>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await?;
    let driver = tokio::spawn(async move {
        let _ = conn.await;
    });
    let resp = sender.send_request(req).await?;
    let status = resp.status();
    let mut body = resp.into_body();
    let mut text = Vec::new();
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame?.into_data() {
            let room = 4096usize.saturating_sub(text.len());
            text.extend_from_slice(&data[..data.len().min(room)]);
        }
    }
    driver.abort();
    Ok((status, String::from_utf8_lossy(&text).into_owned()))
}
