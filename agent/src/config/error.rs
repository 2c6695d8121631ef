//! Configuration errors, and naming the key a TOML error is about.
//!
//! toml reports a byte span; an operator wants the key. [`key_at`] finds the dotted key
//! (`outbox.max-messages`) and line the span falls on, so every message names them.

use std::path::PathBuf;

use sitewatch_proto::IdError;

use crate::broker_url::BrokerUrlError;
use crate::tls::TlsError;

/// Why the configuration cannot be used. Each message names the file or flag, the key and
/// what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "cannot read config file {}: {source} — check the path and its permissions, \
         or run without a file by passing --site", path.display()
    )]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A TOML syntax or type error, with the key and line it is about when known.
    #[error("invalid {origin}: {}", describe(.key, .line, .source))]
    Parse {
        origin: String,
        key: Option<String>,
        line: Option<usize>,
        #[source]
        source: Box<toml::de::Error>,
    },
    #[error(
        "{origin}: `site` is required — set site = \"...\" in the config file, \
         pass --site or set SITEWATCH_SITE"
    )]
    MissingSite { origin: String },
    #[error("{origin}: {source}")]
    InvalidId {
        origin: String,
        #[source]
        source: IdError,
    },
    #[error("{origin}: {source}")]
    InvalidBroker {
        origin: String,
        #[source]
        source: BrokerUrlError,
    },
    #[error("{origin}: `{key}` = {value} is out of range; use a value in {range}")]
    OutOfRange {
        origin: String,
        key: &'static str,
        value: i64,
        range: &'static str,
    },
    #[error("{origin}: `{key}`: {problem}")]
    Invalid {
        origin: String,
        key: &'static str,
        problem: String,
    },
    #[error("{origin}: `checks`: {problem}")]
    Checks { origin: String, problem: String },
    #[error("{origin}: {source}")]
    Tls {
        origin: String,
        #[source]
        source: TlsError,
    },
    #[error(
        "cannot derive the node id from the hostname {hostname:?} — set node = \"...\" in \
         the config file, pass --node or set SITEWATCH_NODE"
    )]
    NoNodeId { hostname: String },
}

impl ConfigError {
    /// A parse error of `source` (the document's text), naming its key and line.
    pub fn parse(origin: &str, text: &str, source: toml::de::Error) -> Self {
        let (line, key) = match source.span() {
            Some(span) => {
                let (line, key) = key_at(text, span.start);
                (Some(line), key)
            }
            None => (None, None),
        };
        ConfigError::Parse {
            origin: origin.to_owned(),
            key,
            line,
            source: Box::new(source),
        }
    }
}

fn describe(key: &Option<String>, line: &Option<usize>, source: &toml::de::Error) -> String {
    let message = source.message().trim_end();
    match (key, line) {
        (Some(key), Some(line)) => format!("`{key}` (line {line}): {message}"),
        (None, Some(line)) => format!("line {line}: {message}"),
        _ => message.to_owned(),
    }
}

/// The 1-based line of byte `offset` in `text`, and the dotted key being defined there
/// (`outbox.max-messages`; a table's name when the offset is on its header). Heuristic:
/// the nearest `key =` line at or above the offset, within the nearest table header.
pub fn key_at(text: &str, offset: usize) -> (usize, Option<String>) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let mut key: Option<String> = None;
    let mut table: Option<String> = None;
    for (i, raw) in text
        .lines()
        .take(line)
        .collect::<Vec<_>>()
        .iter()
        .rev()
        .enumerate()
    {
        let t = raw.trim();
        if let Some(header) = t.strip_prefix('[') {
            let name = header
                .trim_start_matches('[')
                .split(']')
                .next()
                .map(unquote)
                .unwrap_or_default();
            if i == 0 && key.is_none() {
                return (line, Some(name));
            }
            table = Some(name);
            break;
        }
        if key.is_none()
            && !t.starts_with('#')
            && let Some((k, _)) = t.split_once('=')
        {
            key = Some(unquote(k));
        }
    }
    let key = key.map(|k| match table {
        Some(t) => format!("{t}.{k}"),
        None => k,
    });
    (line, key)
}

fn unquote(key: &str) -> String {
    key.trim()
        .trim_matches(|c| c == '"' || c == '\'')
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_found_with_their_table() {
        let doc = "site = \"x\"\n\n[outbox]\n# comment = 1\nmax-messages = -1\n\n[[checks]]\nname = \"a\"\n";
        let at = |needle: &str| key_at(doc, doc.find(needle).unwrap());
        assert_eq!(at("\"x\""), (1, Some("site".into())));
        assert_eq!(at("-1"), (5, Some("outbox.max-messages".into())));
        assert_eq!(at("[outbox]"), (3, Some("outbox".into())));
        assert_eq!(at("[[checks]]"), (7, Some("checks".into())));
        assert_eq!(at("\"a\""), (8, Some("checks.name".into())));
    }
}
