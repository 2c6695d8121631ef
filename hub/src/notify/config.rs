//! `[[alerts.notifiers]]`: where notifications go and which ones. One flat table per
//! notifier; which keys apply depends on `kind`, the others are refused by name.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::template::Lang;
use crate::alert::matcher::any_glob;
use crate::alert::{Dur, Notification, NotificationKind, Rule, Severity};

/// What kind of sink a notifier is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NotifierKind {
    Email,
    Webhook,
    Mqtt,
}

impl NotifierKind {
    pub fn as_str(self) -> &'static str {
        match self {
            NotifierKind::Email => "email",
            NotifierKind::Webhook => "webhook",
            NotifierKind::Mqtt => "mqtt",
        }
    }
}

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum SmtpTls {
    /// Plain connection upgraded with STARTTLS, which is required (port 587 by default).
    #[default]
    Starttls,
    /// TLS from the first byte, "SMTPS" (port 465 by default).
    Implicit,
    /// No TLS: only for a relay on the same machine or network (port 25 by default).
    None,
}

/// Webhook body format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum WebhookFormat {
    /// JSON with `text` (Slack, Mattermost, Teams, Discord's `/slack` URL), `content`
    /// (Discord) and the whole alert.
    #[default]
    Json,
    /// The message as `text/plain`, its subject in a `Title` header (ntfy).
    Text,
}

fn d_queue() -> usize {
    256
}
fn d_attempts() -> u32 {
    8
}
fn d_retry_min() -> Dur {
    Dur::from_secs(1)
}
fn d_retry_max() -> Dur {
    Dur::from_secs(300)
}
fn d_timeout() -> Dur {
    Dur::from_secs(15)
}
fn d_true() -> bool {
    true
}

/// One `[[alerts.notifiers]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct NotifierConfig {
    /// Names the notifier in logs and `/healthz`.
    pub name: String,
    pub kind: NotifierKind,
    /// Severities sent; all when empty.
    #[serde(default)]
    pub severities: Vec<Severity>,
    /// Rule names (globs with `*`) sent; all when empty.
    #[serde(default)]
    pub rules: Vec<String>,
    /// Site ids (globs) sent; all when empty.
    #[serde(default)]
    pub sites: Vec<String>,
    /// Also send resolved notifications.
    #[serde(default = "d_true")]
    pub send_resolved: bool,
    /// Language of subjects and bodies: `en` or `fr`.
    #[serde(default)]
    pub lang: Lang,
    /// Notifications waiting for this notifier; beyond, new ones are dropped and counted.
    #[serde(default = "d_queue")]
    pub queue: usize,
    /// Delivery attempts of one notification before it is given up.
    #[serde(default = "d_attempts")]
    pub max_attempts: u32,
    /// First retry delay; doubles on each failure (with jitter) up to `retry-max`.
    #[serde(default = "d_retry_min")]
    pub retry_min: Dur,
    #[serde(default = "d_retry_max")]
    pub retry_max: Dur,
    /// Time allowed for one delivery attempt.
    #[serde(default = "d_timeout")]
    pub timeout: Dur,

    // email
    pub smtp_host: Option<String>,
    pub smtp_port: Option<u16>,
    pub smtp_tls: Option<SmtpTls>,
    /// PEM CA file to verify the SMTP server with, instead of the system roots.
    pub smtp_ca_file: Option<PathBuf>,
    pub username: Option<String>,
    /// Name of an environment variable holding the SMTP password.
    pub password_env: Option<String>,
    /// File holding the SMTP password (systemd `LoadCredential=`).
    pub password_file: Option<PathBuf>,
    pub from: Option<String>,
    #[serde(default)]
    pub to: Vec<String>,

    // webhook
    pub url: Option<String>,
    /// Environment variable holding the HMAC-SHA256 key; the body is then signed in
    /// `X-Sitewatch-Signature: sha256=<hex>`.
    pub secret_env: Option<String>,
    /// File holding the HMAC-SHA256 key.
    pub secret_file: Option<PathBuf>,
    /// Extra request headers (e.g. `Authorization`); their values are never logged.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    pub format: Option<WebhookFormat>,
}

impl NotifierConfig {
    /// Checks the keys against `kind` and the rule names against `rules`; reads secrets
    /// to make sure they are there. The message names the key.
    pub fn validate(&self, rules: &[Rule]) -> Result<(), String> {
        let kind = self.kind;
        let only = |key: &str, set: bool, k: NotifierKind| {
            if set && kind != k {
                Err(format!(
                    "`{key}` applies only to kind = \"{}\", not to kind = \"{}\"",
                    k.as_str(),
                    kind.as_str()
                ))
            } else {
                Ok(())
            }
        };
        use NotifierKind as K;
        only("smtp-host", self.smtp_host.is_some(), K::Email)?;
        only("smtp-port", self.smtp_port.is_some(), K::Email)?;
        only("smtp-tls", self.smtp_tls.is_some(), K::Email)?;
        only("smtp-ca-file", self.smtp_ca_file.is_some(), K::Email)?;
        only("username", self.username.is_some(), K::Email)?;
        only("password-env", self.password_env.is_some(), K::Email)?;
        only("password-file", self.password_file.is_some(), K::Email)?;
        only("from", self.from.is_some(), K::Email)?;
        only("to", !self.to.is_empty(), K::Email)?;
        only("url", self.url.is_some(), K::Webhook)?;
        only("secret-env", self.secret_env.is_some(), K::Webhook)?;
        only("secret-file", self.secret_file.is_some(), K::Webhook)?;
        only("headers", !self.headers.is_empty(), K::Webhook)?;
        only("format", self.format.is_some(), K::Webhook)?;
        if self.name.trim().is_empty() {
            return Err("`name` must not be empty".into());
        }
        if let Some(pattern) = self.rules.iter().find(|p| {
            !rules
                .iter()
                .any(|r| crate::alert::matcher::glob(p, &r.name))
        }) {
            let names: Vec<&str> = rules.iter().map(|r| r.name.as_str()).collect();
            return Err(format!(
                "`rules`: {pattern:?} matches no rule; the rules are: {}",
                names.join(", ")
            ));
        }
        if self.queue == 0 || self.max_attempts == 0 {
            return Err("`queue` and `max-attempts` must be at least 1".into());
        }
        if self.retry_min.as_ms() == 0 || self.retry_max < self.retry_min {
            return Err("`retry-min` must be above 0 and at most `retry-max`".into());
        }
        if self.timeout.as_ms() == 0 {
            return Err("`timeout` must be above 0".into());
        }
        match kind {
            K::Email => self.validate_email(),
            K::Webhook => self.validate_webhook(),
            K::Mqtt => Ok(()),
        }
    }

    fn validate_email(&self) -> Result<(), String> {
        if self
            .smtp_host
            .as_deref()
            .is_none_or(|h| h.trim().is_empty())
        {
            return Err("`smtp-host` is required for kind = \"email\"".into());
        }
        let from = self.from.as_deref().ok_or(
            "`from` is required for kind = \"email\" (e.g. \"sitewatch <hub@example.org>\")",
        )?;
        from.parse::<lettre::message::Mailbox>()
            .map_err(|e| format!("`from`: {from:?} is not an e-mail address ({e})"))?;
        if self.to.is_empty() {
            return Err("`to` must list at least one address".into());
        }
        for to in &self.to {
            to.parse::<lettre::message::Mailbox>()
                .map_err(|e| format!("`to`: {to:?} is not an e-mail address ({e})"))?;
        }
        let has_password = self.password_env.is_some() || self.password_file.is_some();
        if self.password_env.is_some() && self.password_file.is_some() {
            return Err("set `password-env` or `password-file`, not both".into());
        }
        if self.username.is_some() != has_password {
            return Err(
                "`username` goes with `password-env` or `password-file`: set both or neither"
                    .into(),
            );
        }
        self.password()?;
        if let Some(path) = &self.smtp_ca_file {
            std::fs::read(path).map_err(|e| {
                format!(
                    "`smtp-ca-file`: cannot read {}: {e} — check the path",
                    path.display()
                )
            })?;
        }
        Ok(())
    }

    fn validate_webhook(&self) -> Result<(), String> {
        let url = self
            .url
            .as_deref()
            .ok_or("`url` is required for kind = \"webhook\"")?;
        let uri: http::Uri = url.parse().map_err(|e| {
            format!("`url`: not a URL ({e}); write e.g. \"https://hooks.example.org/x\"")
        })?;
        if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
            return Err("`url` must start with http:// or https:// and name a host".into());
        }
        if self.secret_env.is_some() && self.secret_file.is_some() {
            return Err("set `secret-env` or `secret-file`, not both".into());
        }
        self.secret()?;
        for (k, v) in &self.headers {
            http::HeaderName::from_bytes(k.as_bytes())
                .map_err(|_| format!("`headers`: {k:?} is not a valid header name"))?;
            http::HeaderValue::from_str(v).map_err(|_| {
                format!("`headers`: the value of {k:?} is not a valid header value")
            })?;
        }
        Ok(())
    }

    /// The SMTP password, from the environment or a file (trailing newline removed).
    pub fn password(&self) -> Result<Option<String>, String> {
        read_secret(
            "password",
            self.password_env.as_deref(),
            self.password_file.as_ref(),
        )
    }

    /// The webhook signing key.
    pub fn secret(&self) -> Result<Option<String>, String> {
        read_secret(
            "secret",
            self.secret_env.as_deref(),
            self.secret_file.as_ref(),
        )
    }

    pub fn retry(&self) -> super::retry::Retry {
        super::retry::Retry {
            min: Duration::from_millis(self.retry_min.as_ms()),
            max: Duration::from_millis(self.retry_max.as_ms()),
            max_attempts: self.max_attempts,
        }
    }

    /// Whether this notifier takes `n`.
    pub fn routes(&self, n: &Notification) -> bool {
        (self.severities.is_empty() || self.severities.contains(&n.alert.severity))
            && any_glob(&self.rules, &n.alert.rule)
            && any_glob(&self.sites, n.alert.site.as_str())
            && (self.send_resolved || n.kind != NotificationKind::Resolved)
    }
}

fn read_secret(
    what: &str,
    env: Option<&str>,
    file: Option<&PathBuf>,
) -> Result<Option<String>, String> {
    if let Some(var) = env {
        return match std::env::var(var) {
            Ok(v) if !v.is_empty() => Ok(Some(v)),
            _ => Err(format!(
                "`{what}-env`: the environment variable {var} is not set or empty — set it \
                 (systemd: EnvironmentFile=) or use `{what}-file`"
            )),
        };
    }
    if let Some(path) = file {
        let text = std::fs::read_to_string(path).map_err(|e| {
            format!(
                "`{what}-file`: cannot read {}: {e} — check the path and that the hub's user \
                 may read it",
                path.display()
            )
        })?;
        let secret = text.trim_end_matches(['\n', '\r']).to_owned();
        if secret.is_empty() {
            return Err(format!("`{what}-file`: {} is empty", path.display()));
        }
        return Ok(Some(secret));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::AlertsConfig;

    fn check(s: &str) -> Result<(), String> {
        let cfg: AlertsConfig = toml::from_str(s).map_err(|e| e.to_string())?;
        cfg.compile().map(|_| ()).map_err(|e| e.to_string())
    }

    #[test]
    fn keys_are_checked_against_the_kind() {
        let e = check("[[notifiers]]\nname = \"w\"\nkind = \"webhook\"\nurl = \"https://x.example/h\"\nsmtp-host = \"mail\"").unwrap_err();
        assert!(
            e.contains("notifiers[0]")
                && e.contains("`smtp-host` applies only to kind = \"email\""),
            "{e}"
        );
        let e = check("[[notifiers]]\nname = \"w\"\nkind = \"webhook\"").unwrap_err();
        assert!(e.contains("`url` is required"), "{e}");
        let e = check("[[notifiers]]\nname = \"w\"\nkind = \"webhook\"\nurl = \"ftp://x\"")
            .unwrap_err();
        assert!(e.contains("http://"), "{e}");
        let e = check("[[notifiers]]\nname = \"m\"\nkind = \"email\"\nsmtp-host = \"mail\"\nfrom = \"hub@x.org\"").unwrap_err();
        assert!(e.contains("`to`"), "{e}");
        let e = check("[[notifiers]]\nname = \"m\"\nkind = \"email\"\nsmtp-host = \"mail\"\nfrom = \"not an address\"\nto = [\"a@x.org\"]").unwrap_err();
        assert!(e.contains("`from`"), "{e}");
        let e = check("[[notifiers]]\nname = \"m\"\nkind = \"mqtt\"\nrules = [\"temprature\"]")
            .unwrap_err();
        assert!(e.contains("\"temprature\" matches no rule"), "{e}");
        let e = check("[[notifiers]]\nname = \"m\"\nkind = \"email\"\nsmtp-host = \"mail\"\nfrom = \"hub@x.org\"\nto = [\"a@x.org\"]\nusername = \"u\"\npassword-env = \"SITEWATCH_TEST_SURELY_UNSET\"").unwrap_err();
        assert!(e.contains("SITEWATCH_TEST_SURELY_UNSET is not set"), "{e}");
        let e = check("[[notifiers]]\nname = \"m\"\nkind = \"mqtt\"\nsevereties = [\"critical\"]")
            .unwrap_err();
        assert!(e.contains("severeties"), "{e}");
        let e = check("[[notifiers]]\nname = \"m\"\nkind = \"mqtt\"\n[[notifiers]]\nname = \"m\"\nkind = \"mqtt\"").unwrap_err();
        assert!(e.contains("same name"), "{e}");
        check("[[notifiers]]\nname = \"m\"\nkind = \"mqtt\"\nseverities = [\"critical\"]\nrules = [\"node-*\"]").unwrap();
    }

    #[test]
    fn secrets_come_from_a_file_without_the_newline() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        std::fs::write(&path, "s3cret\n").unwrap();
        let n: NotifierConfig = toml::from_str(&format!(
            "name = \"w\"\nkind = \"webhook\"\nurl = \"http://127.0.0.1:1/\"\nsecret-file = {:?}",
            path.display().to_string()
        ))
        .unwrap();
        assert_eq!(n.secret().unwrap().as_deref(), Some("s3cret"));
    }
}
