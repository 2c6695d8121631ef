//! Site and node identifiers: `[a-z0-9][a-z0-9_-]{0,62}`.
//!
//! They become MQTT topic levels and part of MQTT client ids, so nothing else may pass:
//! no `/ + # $`, no spaces, no upper case, no empty string.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Longest id accepted, in bytes.
pub const MAX_ID_LEN: usize = 63;

/// Why a string is not a valid site or node id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("{kind} id is empty; use 1 to 63 characters from a-z, 0-9, '_' and '-'")]
    Empty { kind: &'static str },
    #[error("{kind} id {value:?} is {len} characters long; the limit is 63")]
    TooLong {
        kind: &'static str,
        value: String,
        len: usize,
    },
    #[error("{kind} id {value:?} must start with a lower-case letter or a digit (a-z, 0-9)")]
    BadStart { kind: &'static str, value: String },
    #[error("{kind} id {value:?} contains {ch:?}; only a-z, 0-9, '_' and '-' are allowed")]
    BadChar {
        kind: &'static str,
        value: String,
        ch: char,
    },
}

fn validate(kind: &'static str, s: &str) -> Result<(), IdError> {
    let Some(first) = s.chars().next() else {
        return Err(IdError::Empty { kind });
    };
    if s.len() > MAX_ID_LEN {
        return Err(IdError::TooLong {
            kind,
            value: s.to_owned(),
            len: s.len(),
        });
    }
    if !(first.is_ascii_lowercase() || first.is_ascii_digit()) {
        return Err(IdError::BadStart {
            kind,
            value: s.to_owned(),
        });
    }
    if let Some(ch) = s
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_' || *c == '-'))
    {
        return Err(IdError::BadChar {
            kind,
            value: s.to_owned(),
            ch,
        });
    }
    Ok(())
}

/// Turns any string (typically a hostname) into a valid id, or `None` when nothing usable
/// is left. Lower-cases, maps every other character to `-`, trims leading `-`/`_`,
/// truncates to 63 bytes. `"Pi-Club.Local"` becomes `"pi-club-local"`.
pub fn sanitize(raw: &str) -> Option<String> {
    let mapped: String = raw
        .trim()
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let trimmed = mapped.trim_start_matches(['-', '_']);
    let mut out: String = trimmed.chars().take(MAX_ID_LEN).collect();
    while out.ends_with('-') {
        out.pop();
    }
    if out.is_empty() { None } else { Some(out) }
}

macro_rules! id_type {
    ($name:ident, $kind:literal) => {
        #[doc = concat!("A validated ", $kind, " id.")]
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            /// Validates `s`; the error says which rule it breaks.
            pub fn new(s: impl Into<String>) -> Result<Self, IdError> {
                let s = s.into();
                validate($kind, &s)?;
                Ok(Self(s))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::str::FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                Self::new(s)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::new(s).map_err(serde::de::Error::custom)
            }
        }
    };
}

id_type!(SiteId, "site");
id_type!(NodeId, "node");

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_typical_ids() {
        for ok in ["a", "0", "club-12", "pi_4b", &"x".repeat(63)] {
            assert!(SiteId::new(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn rejects_topic_breaking_ids_with_a_reason() {
        let err = NodeId::new("pi/1").unwrap_err();
        assert!(err.to_string().contains("'/'"), "{err}");
        for bad in [
            "",
            "A",
            "-a",
            "_a",
            "a b",
            "a+",
            "a#",
            "$a",
            "é",
            &"x".repeat(64),
        ] {
            assert!(NodeId::new(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn sanitizes_hostnames() {
        assert_eq!(sanitize("Pi-Club.Local").as_deref(), Some("pi-club-local"));
        assert_eq!(sanitize("--weird  host--").as_deref(), Some("weird--host"));
        assert_eq!(sanitize("///"), None);
        assert_eq!(sanitize(&"Ab".repeat(40)).map(|s| s.len()), Some(63));
    }

    #[test]
    fn serde_validates() {
        assert!(serde_json::from_str::<SiteId>("\"ok-site\"").is_ok());
        assert!(serde_json::from_str::<SiteId>("\"bad/site\"").is_err());
    }

    proptest! {
        #[test]
        fn sanitize_always_yields_a_valid_id(raw in ".{0,100}") {
            if let Some(s) = sanitize(&raw) {
                prop_assert!(NodeId::new(s).is_ok());
            }
        }

        #[test]
        fn valid_ids_contain_no_mqtt_specials(raw in ".{0,80}") {
            if let Ok(id) = SiteId::new(raw) {
                prop_assert!(!id.as_str().contains(['/', '+', '#', '$', ' ']));
            }
        }
    }
}
