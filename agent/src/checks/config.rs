//! `[[checks]]` entries of the agent config.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Timeout of a check when its entry sets none.
pub const DEFAULT_CHECK_TIMEOUT_MS: u64 = 5_000;

/// One check, e.g.
///
/// ```toml
/// [[checks]]
/// name = "web"
/// kind = "http"
/// url = "http://127.0.0.1:8080/health"
/// expect-status = 200
/// timeout-ms = 2000
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(try_from = "RawCheck", into = "RawCheck")]
pub struct CheckConfig {
    /// Unique per node; becomes the `check=` label of its series.
    pub name: String,
    /// What to check.
    pub kind: CheckKind,
    /// Give up after this long; a check never blocks the others.
    pub timeout_ms: Option<u64>,
}

impl CheckConfig {
    /// How long the check may take: `timeout-ms`, or [`DEFAULT_CHECK_TIMEOUT_MS`].
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms.unwrap_or(DEFAULT_CHECK_TIMEOUT_MS))
    }
}

/// The kinds of check and their parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckKind {
    /// A systemd unit is `active` (`unit = "nginx.service"`).
    Systemd { unit: String },
    /// A process with this exact name is running (`/proc/PID/comm`; for names longer than
    /// the 15 bytes `comm` keeps, the basename of `argv[0]` in `/proc/PID/cmdline`).
    Process { process: String },
    /// A file or directory exists ("application missing" when not).
    Path { path: String },
    /// A TCP port accepts connections.
    Tcp { host: String, port: u16 },
    /// An HTTP GET answers with the expected status.
    Http { url: String, expect_status: u16 },
}

impl CheckKind {
    /// The `kind` key's value.
    pub fn as_str(&self) -> &'static str {
        match self {
            CheckKind::Systemd { .. } => "systemd",
            CheckKind::Process { .. } => "process",
            CheckKind::Path { .. } => "path",
            CheckKind::Tcp { .. } => "tcp",
            CheckKind::Http { .. } => "http",
        }
    }
}

/// A `[[checks]]` table as written: flat, every parameter optional, unknown keys rejected.
/// (`#[serde(flatten)]` would silently disable `deny_unknown_fields`.)
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct RawCheck {
    name: String,
    kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    timeout_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    unit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    process: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    host: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expect_status: Option<u16>,
}

impl TryFrom<RawCheck> for CheckConfig {
    type Error = String;

    fn try_from(r: RawCheck) -> Result<Self, String> {
        if r.name.trim().is_empty() {
            return Err("a check has an empty `name`; give each check a unique name".into());
        }
        let need = |v: Option<String>, key: &str| {
            v.filter(|s| !s.is_empty())
                .ok_or_else(|| format!("check `{}` (kind = \"{}\") needs `{key}`", r.name, r.kind))
        };
        let kind = match r.kind.as_str() {
            "systemd" => CheckKind::Systemd {
                unit: need(r.unit.clone(), "unit")?,
            },
            "process" => CheckKind::Process {
                process: need(r.process.clone(), "process")?,
            },
            "path" => CheckKind::Path {
                path: need(r.path.clone(), "path")?,
            },
            "tcp" => CheckKind::Tcp {
                host: need(r.host.clone(), "host")?,
                port: r
                    .port
                    .ok_or_else(|| format!("check `{}` (kind = \"tcp\") needs `port`", r.name))?,
            },
            "http" => CheckKind::Http {
                url: need(r.url.clone(), "url")?,
                expect_status: r.expect_status.unwrap_or(200),
            },
            other => {
                return Err(format!(
                    "check `{}` has unknown kind {other:?}; use systemd, process, path, tcp or http",
                    r.name
                ));
            }
        };
        if r.timeout_ms == Some(0) {
            return Err(format!(
                "check `{}`: `timeout-ms` must be at least 1",
                r.name
            ));
        }
        Ok(CheckConfig {
            name: r.name,
            kind,
            timeout_ms: r.timeout_ms,
        })
    }
}

impl From<CheckConfig> for RawCheck {
    fn from(c: CheckConfig) -> Self {
        let mut r = RawCheck {
            name: c.name,
            kind: c.kind.as_str().to_owned(),
            timeout_ms: c.timeout_ms,
            ..Default::default()
        };
        match c.kind {
            CheckKind::Systemd { unit } => r.unit = Some(unit),
            CheckKind::Process { process } => r.process = Some(process),
            CheckKind::Path { path } => r.path = Some(path),
            CheckKind::Tcp { host, port } => {
                r.host = Some(host);
                r.port = Some(port);
            }
            CheckKind::Http { url, expect_status } => {
                r.url = Some(url);
                r.expect_status = Some(expect_status);
            }
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct Doc {
        checks: Vec<CheckConfig>,
    }

    #[test]
    fn every_kind_parses_with_defaults() {
        let doc: Doc = toml::from_str(
            r#"
            [[checks]]
            name = "nginx"
            kind = "systemd"
            unit = "nginx.service"
            [[checks]]
            name = "app"
            kind = "process"
            process = "myapp"
            [[checks]]
            name = "videos"
            kind = "path"
            path = "/srv/videos"
            [[checks]]
            name = "ssh"
            kind = "tcp"
            host = "127.0.0.1"
            port = 22
            timeout-ms = 500
            [[checks]]
            name = "web"
            kind = "http"
            url = "http://127.0.0.1/health"
            "#,
        )
        .unwrap();
        assert_eq!(doc.checks.len(), 5);
        assert_eq!(doc.checks[3].timeout_ms, Some(500));
        assert_eq!(doc.checks[3].timeout(), Duration::from_millis(500));
        assert_eq!(
            doc.checks[0].timeout(),
            Duration::from_millis(DEFAULT_CHECK_TIMEOUT_MS)
        );
        assert_eq!(
            doc.checks[4].kind,
            CheckKind::Http {
                url: "http://127.0.0.1/health".into(),
                expect_status: 200
            }
        );
    }

    #[test]
    fn unknown_keys_and_kinds_are_rejected() {
        let e = toml::from_str::<Doc>(
            "[[checks]]\nname = \"a\"\nkind = \"tcp\"\nhost = \"h\"\nport = 1\nprot = 2\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("prot"), "{e}");
        let e = toml::from_str::<Doc>("[[checks]]\nname = \"a\"\nkind = \"ping\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("ping"), "{e}");
        let e = toml::from_str::<Doc>("[[checks]]\nname = \"web\"\nkind = \"http\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("needs `url`"), "{e}");
    }
}
