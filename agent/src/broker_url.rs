//! The broker address `mqtt://HOST[:PORT]` or `mqtts://HOST[:PORT]` (TLS), and its parsing.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer};

/// Port used when a plain `mqtt://` URL names none.
pub const DEFAULT_MQTT_PORT: u16 = 1883;
/// Port used when an `mqtts://` URL names none.
pub const DEFAULT_MQTTS_PORT: u16 = 8883;

/// Why a broker URL is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BrokerUrlError {
    #[error(
        "broker URL {0:?} is invalid; expected mqtt://HOST[:PORT] (plain, default port 1883) or \
         mqtts://HOST[:PORT] (TLS, default port 8883), e.g. mqtt://192.168.1.10:1883"
    )]
    Malformed(String),
    #[error(
        "broker URL {0:?} uses a scheme the agent does not speak; write mqtts://HOST[:PORT] \
         for MQTT over TLS (WebSockets are not supported)"
    )]
    UnsupportedScheme(String),
    #[error(
        "broker URL {0:?} contains credentials; set `username` and `password` in the config \
         file (or SITEWATCH_MQTT_USERNAME / SITEWATCH_MQTT_PASSWORD) instead"
    )]
    Credentials(String),
}

/// Address of the MQTT broker, written `mqtt://HOST[:PORT]` or `mqtts://HOST[:PORT]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerUrl {
    host: String,
    port: u16,
    /// `mqtts://`: the connection is TLS, verified with the `[tls]` settings.
    tls: bool,
}

impl BrokerUrl {
    /// Host name or IP address (IPv6 without brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Whether the URL is `mqtts://` (MQTT over TLS).
    pub fn is_tls(&self) -> bool {
        self.tls
    }
}

impl Default for BrokerUrl {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".to_owned(),
            port: DEFAULT_MQTT_PORT,
            tls: false,
        }
    }
}

impl FromStr for BrokerUrl {
    type Err = BrokerUrlError;

    fn from_str(raw: &str) -> Result<Self, BrokerUrlError> {
        let malformed = || BrokerUrlError::Malformed(raw.to_owned());
        let lower = raw.to_ascii_lowercase();
        if ["ssl://", "tls://", "ws://", "wss://"]
            .iter()
            .any(|s| lower.starts_with(s))
        {
            return Err(BrokerUrlError::UnsupportedScheme(raw.to_owned()));
        }
        let (tls, rest) = if lower.starts_with("mqtts://") {
            (true, &raw["mqtts://".len()..])
        } else if lower.starts_with("mqtt://") {
            (false, &raw["mqtt://".len()..])
        } else {
            return Err(malformed());
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains('@') {
            return Err(BrokerUrlError::Credentials(raw.to_owned()));
        }
        if rest.contains(['/', '?', '#', ' ']) {
            return Err(malformed());
        }
        let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
            let (host, after) = v6.split_once(']').ok_or_else(malformed)?;
            match after {
                "" => (host, None),
                p => (host, Some(p.strip_prefix(':').ok_or_else(malformed)?)),
            }
        } else {
            match rest.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (rest, None),
            }
        };
        if host.is_empty() {
            return Err(malformed());
        }
        let port = match port {
            None if tls => DEFAULT_MQTTS_PORT,
            None => DEFAULT_MQTT_PORT,
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(malformed)?,
        };
        Ok(Self {
            host: host.to_owned(),
            port,
            tls,
        })
    }
}

impl fmt::Display for BrokerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.tls { "mqtts" } else { "mqtt" };
        if self.host.contains(':') {
            write!(f, "{scheme}://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{scheme}://{}:{}", self.host, self.port)
        }
    }
}

impl<'de> Deserialize<'de> for BrokerUrl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<BrokerUrl, BrokerUrlError> {
        s.parse()
    }

    #[test]
    fn accepts_hosts_ports_and_ipv6() {
        let b = parse("mqtt://hub.local:1884").unwrap();
        assert_eq!((b.host(), b.port()), ("hub.local", 1884));
        assert_eq!(parse("mqtt://10.0.0.1").unwrap().port(), DEFAULT_MQTT_PORT);
        assert_eq!(parse("MQTT://10.0.0.1/").unwrap().host(), "10.0.0.1");
        let v6 = parse("mqtt://[::1]:1883").unwrap();
        assert_eq!(v6.host(), "::1");
        assert_eq!(v6.to_string(), "mqtt://[::1]:1883");
        assert_eq!(parse("mqtt://[fe80::1]").unwrap().port(), 1883);
    }

    #[test]
    fn rejects_other_forms_with_the_expected_one() {
        for bad in [
            "",
            "hub.local:1883",
            "tcp://hub:1883",
            "http://hub",
            "mqtt://",
            "mqtt://:1883",
            "mqtt://hub:",
            "mqtt://hub:0",
            "mqtt://hub:99999",
            "mqtt://hub:1883/topic",
            "mqtt://::1:1883",
            "mqtt://[::1",
        ] {
            let err = parse(bad).unwrap_err();
            assert!(
                err.to_string().contains("mqtt://HOST[:PORT]"),
                "{bad:?}: {err}"
            );
        }
    }

    #[test]
    fn mqtts_is_tls_with_its_own_default_port() {
        let b = parse("mqtts://hub.lan").unwrap();
        assert!(b.is_tls());
        assert_eq!((b.host(), b.port()), ("hub.lan", DEFAULT_MQTTS_PORT));
        assert_eq!(b.to_string(), "mqtts://hub.lan:8883");
        let b = parse("MQTTS://[::1]:18883/").unwrap();
        assert_eq!((b.host(), b.port(), b.is_tls()), ("::1", 18883, true));
        assert_eq!(b.to_string(), "mqtts://[::1]:18883");
        assert!(!parse("mqtt://hub").unwrap().is_tls());
        assert_eq!(parse(&b.to_string()).unwrap(), b, "Display round-trips");
    }

    #[test]
    fn other_schemes_and_credentials_get_their_own_advice() {
        for url in ["ssl://hub:8883", "tls://hub", "wss://hub/mqtt"] {
            let err = parse(url).unwrap_err();
            assert!(matches!(err, BrokerUrlError::UnsupportedScheme(_)), "{url}");
            assert!(err.to_string().contains("mqtts://HOST[:PORT]"), "{err}");
        }
        let err = parse("mqtt://user:secret@hub").unwrap_err();
        assert!(err.to_string().contains("username"), "{err}");
        let err = parse("mqtts://user:secret@hub").unwrap_err();
        assert!(matches!(err, BrokerUrlError::Credentials(_)), "{err}");
    }
}
