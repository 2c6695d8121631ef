//! Webhook sink: an HTTP POST per notification. The JSON body carries `text` (rendered by
//! Slack, Mattermost, Teams, Rocket.Chat and Discord's `/slack` URLs), `content` (Discord)
//! and the whole alert for programs. With a secret, the body is signed:
//! `X-Sitewatch-Signature: sha256=<hex HMAC-SHA256(secret, body)>`.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Uri};
use serde::Serialize;

use super::config::{NotifierConfig, WebhookFormat};
use super::http::HttpClient;
use super::template::{Lang, render};
use super::{DeliveryError, NotifyError};
use crate::alert::{Alert, Notification};

/// Header carrying the body signature.
pub const SIGNATURE_HEADER: &str = "x-sitewatch-signature";

/// The JSON body of a webhook.
#[derive(Debug, Serialize)]
pub struct WebhookBody<'a> {
    /// The message for chat tools.
    pub text: &'a str,
    /// The same, under Discord's name.
    pub content: &'a str,
    pub subject: &'a str,
    /// `firing`, `repeat` or `resolved`.
    pub status: &'static str,
    pub sent_at_ms: u64,
    pub alert: &'a Alert,
}

/// `sha256=<hex>` of HMAC-SHA256 over `body`.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
    let tag = ring::hmac::sign(&key, body);
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256=");
    for b in tag.as_ref() {
        out.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
        out.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
    }
    out
}

/// Body and content type for one notification.
pub fn body(n: &Notification, lang: Lang, format: WebhookFormat) -> (Bytes, &'static str, String) {
    let r = render(n, lang);
    match format {
        WebhookFormat::Json => {
            let b = WebhookBody {
                text: &r.text,
                content: &r.text,
                subject: &r.subject,
                status: n.kind.as_str(),
                sent_at_ms: n.at_ms,
                alert: &n.alert,
            };
            let json = serde_json::to_vec(&b).unwrap_or_default();
            (Bytes::from(json), "application/json", r.subject)
        }
        WebhookFormat::Text => (
            Bytes::from(format!("{}\n\n{}", r.text, r.body)),
            "text/plain; charset=utf-8",
            r.subject,
        ),
    }
}

/// A configured webhook.
pub struct WebhookSink {
    uri: Uri,
    /// For logs: scheme and host only (the path of a chat webhook is its secret).
    target: String,
    headers: HeaderMap,
    secret: Option<Vec<u8>>,
    format: WebhookFormat,
    lang: Lang,
    timeout: Duration,
    client: HttpClient,
}

impl WebhookSink {
    pub fn new(cfg: &NotifierConfig) -> Result<Self, NotifyError> {
        let err = |message: String| NotifyError::Config {
            name: cfg.name.clone(),
            message,
        };
        let url = cfg
            .url
            .as_deref()
            .ok_or_else(|| err("`url` is required".into()))?;
        let uri: Uri = url.parse().map_err(|e| err(format!("`url`: {e}")))?;
        let mut headers = HeaderMap::new();
        for (k, v) in &cfg.headers {
            let name = HeaderName::from_bytes(k.as_bytes())
                .map_err(|_| err(format!("`headers`: {k:?} is not a header name")))?;
            let mut value = HeaderValue::from_str(v)
                .map_err(|_| err(format!("`headers`: bad value for {k:?}")))?;
            value.set_sensitive(true);
            headers.insert(name, value);
        }
        let client = if uri.scheme_str() == Some("https") {
            HttpClient::with_system_roots().map_err(|e| err(e.to_string()))?
        } else {
            HttpClient::plain()
        };
        Ok(Self {
            target: format!(
                "{}://{}",
                uri.scheme_str().unwrap_or("http"),
                uri.authority().map_or("", |a| a.as_str())
            ),
            uri,
            headers,
            secret: cfg.secret().map_err(err)?.map(String::into_bytes),
            format: cfg.format.unwrap_or_default(),
            lang: cfg.lang,
            timeout: Duration::from_millis(cfg.timeout.as_ms()),
            client,
        })
    }

    pub async fn deliver(&self, n: &Notification) -> Result<(), DeliveryError> {
        let (body, content_type, subject) = body(n, self.lang, self.format);
        let mut headers = self.headers.clone();
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static(content_type),
        );
        headers.insert(
            http::header::USER_AGENT,
            HeaderValue::from_static(concat!("sitewatch-hub/", env!("CARGO_PKG_VERSION"))),
        );
        if self.format == WebhookFormat::Text
            && let Ok(title) = HeaderValue::from_str(&subject)
        {
            headers.entry("title").or_insert(title);
        }
        if let Some(secret) = &self.secret
            && let Ok(sig) = HeaderValue::from_str(&signature(secret, &body))
        {
            headers.insert(SIGNATURE_HEADER, sig);
        }
        match self
            .client
            .post(&self.uri, headers, body, self.timeout)
            .await
        {
            Ok((status, _)) if status.is_success() => Ok(()),
            Ok((status, text)) => {
                let retry = status.is_server_error()
                    || status == http::StatusCode::TOO_MANY_REQUESTS
                    || status == http::StatusCode::REQUEST_TIMEOUT;
                let excerpt: String = text.chars().take(200).collect();
                Err(DeliveryError {
                    retry,
                    message: format!(
                        "{} answered {status}{}{}",
                        self.target,
                        if excerpt.is_empty() { "" } else { ": " },
                        excerpt
                    ),
                })
            }
            Err(e) => Err(DeliveryError {
                retry: true,
                message: format!("{}: {e}", self.target),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::template::tests::temperature_alert;

    #[test]
    fn hmac_sha256_matches_rfc_4231() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn json_body_has_text_and_the_alert() {
        let (b, ct, subject) = body(&temperature_alert(), Lang::En, WebhookFormat::Json);
        assert_eq!(ct, "application/json");
        let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(v["text"], v["content"]);
        assert!(v["text"].as_str().unwrap().contains("club-1/pi-gate"));
        assert_eq!(v["status"], "firing");
        assert_eq!(v["subject"], subject.as_str());
        assert_eq!(v["alert"]["rule"], "temperature");
        assert_eq!(v["alert"]["severity"], "critical");
        assert_eq!(v["alert"]["value"], 78.24);
    }

    #[test]
    fn text_body_for_ntfy() {
        let (b, ct, _) = body(&temperature_alert(), Lang::Fr, WebhookFormat::Text);
        assert!(ct.starts_with("text/plain"));
        let s = String::from_utf8(b.to_vec()).unwrap();
        assert!(s.contains("Nœud : pi-gate"), "{s}");
    }
}
