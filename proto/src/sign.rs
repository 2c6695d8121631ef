//! Signed telemetry: a per-node HMAC-SHA256 carried inside the JSON payload, so it works
//! through any broker (MQTT 3.1.1 has no message properties).
//!
//! An agent with a signing key publishes every heartbeat, metrics, scan and info message
//! as its JSON object followed by one last key:
//!
//! ```text
//! {"ts":1764583200000,"session":"3f2a9c0e5b7d4e11","seq":7,…,"mac":"<64 lowercase hex>"}
//! ```
//!
//! `mac` is HMAC-SHA256, under the node's 32-byte key, of
//! `"sitewatch-mac-v1" NUL topic NUL body`, where `body` is the payload without the
//! `,"mac":"…"` part (the same bytes with `}` right after the last value). The body holds
//! the message's `session` and `seq`, so the MAC covers topic, session, seq and payload: a
//! message cannot be moved to another node's topic, and a replay is recognised by its
//! `(session, seq)`. Readers that do not check MACs see one more key and ignore it.
//!
//! Pure: the key bytes come from the caller (the hub generates them, the agent reads them
//! from its config).

use std::borrow::Cow;

use ring::hmac;

/// The JSON key of the MAC.
pub const MAC_FIELD: &str = "mac";
/// Length of a key in bytes.
pub const KEY_BYTES: usize = 32;

/// Domain separation: a MAC of this format cannot be confused with any other use of a key.
const CONTEXT: &[u8] = b"sitewatch-mac-v1";
/// What precedes the hex MAC at the end of a signed payload.
const HEAD: &[u8] = b",\"mac\":\"";
/// What follows it.
const TAIL: &[u8] = b"\"}";
/// Hex digits of an HMAC-SHA256.
const MAC_HEX: usize = 64;
/// Bytes a signature adds to a payload.
pub const SIGNATURE_BYTES: usize = HEAD.len() + MAC_HEX + TAIL.len();

/// Why a key or a payload cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    #[error(
        "a signing key is 64 hexadecimal digits (got {0} characters): copy it again from \
         `sitewatch-hub node add`"
    )]
    KeyLength(usize),
    #[error(
        "a signing key holds only hexadecimal digits 0-9 a-f: copy it again from `sitewatch-hub node add`"
    )]
    KeyNotHex,
    #[error("only a non-empty JSON object can be signed")]
    NotAnObject,
}

/// A node's signing key.
#[derive(Clone)]
pub struct NodeKey {
    key: hmac::Key,
}

impl std::fmt::Debug for NodeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NodeKey(<redacted>)")
    }
}

impl NodeKey {
    /// A key from its 32 bytes.
    pub fn from_bytes(bytes: &[u8; KEY_BYTES]) -> Self {
        NodeKey {
            key: hmac::Key::new(hmac::HMAC_SHA256, bytes),
        }
    }

    /// A key from its 64 hex digits (as `sitewatch-hub node add` prints it).
    pub fn from_hex(text: &str) -> Result<Self, SignError> {
        let text = text.trim();
        if text.len() != KEY_BYTES * 2 {
            return Err(SignError::KeyLength(text.chars().count()));
        }
        let mut bytes = [0u8; KEY_BYTES];
        for (i, pair) in text.as_bytes().chunks_exact(2).enumerate() {
            let hi = hex_value(pair[0]).ok_or(SignError::KeyNotHex)?;
            let lo = hex_value(pair[1]).ok_or(SignError::KeyNotHex)?;
            bytes[i] = hi << 4 | lo;
        }
        Ok(Self::from_bytes(&bytes))
    }

    fn context(&self, topic: &str) -> hmac::Context {
        let mut ctx = hmac::Context::with_key(&self.key);
        ctx.update(CONTEXT);
        ctx.update(&[0]);
        ctx.update(topic.as_bytes());
        ctx.update(&[0]);
        ctx
    }

    /// `body` (a JSON object as serialized) with its MAC for `topic` appended.
    pub fn seal(&self, topic: &str, body: &[u8]) -> Result<Vec<u8>, SignError> {
        let inner = object_inner(body).ok_or(SignError::NotAnObject)?;
        let mut ctx = self.context(topic);
        ctx.update(body);
        let tag = ctx.sign();
        let mut out = Vec::with_capacity(body.len() + SIGNATURE_BYTES);
        out.extend_from_slice(&body[..inner]);
        out.extend_from_slice(HEAD);
        push_hex(&mut out, tag.as_ref());
        out.extend_from_slice(TAIL);
        Ok(out)
    }

    /// Whether `mac` is this key's MAC of `body` on `topic` (constant time).
    pub fn verify(&self, topic: &str, body: &[u8], mac: &[u8; 32]) -> bool {
        let mut data = Vec::with_capacity(CONTEXT.len() + topic.len() + body.len() + 2);
        data.extend_from_slice(CONTEXT);
        data.push(0);
        data.extend_from_slice(topic.as_bytes());
        data.push(0);
        data.extend_from_slice(body);
        hmac::verify(&self.key, &data, mac).is_ok()
    }
}

/// A payload split into the body that was signed and its MAC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed<'a> {
    /// The payload without its signature: what the MAC covers, and what readers decode.
    pub body: Cow<'a, [u8]>,
    /// The MAC bytes.
    pub mac: [u8; 32],
}

/// The signature at the end of `payload`, if it has one in the v1 format. A payload that
/// merely contains a `mac` key elsewhere, or a malformed one, is not signed.
pub fn split(payload: &[u8]) -> Option<Signed<'_>> {
    let start = payload.len().checked_sub(SIGNATURE_BYTES)?;
    let (body_part, signature) = payload.split_at(start);
    let hex = signature.strip_prefix(HEAD)?.strip_suffix(TAIL)?;
    let mut mac = [0u8; 32];
    for (i, pair) in hex.chunks_exact(2).enumerate() {
        // Lowercase only: one payload has exactly one valid encoding.
        let hi = lower_hex_value(pair[0])?;
        let lo = lower_hex_value(pair[1])?;
        mac[i] = hi << 4 | lo;
    }
    // The body must still be an object with at least one member before the MAC.
    if body_part.first() != Some(&b'{') || body_part.len() < 2 {
        return None;
    }
    let mut body = Vec::with_capacity(body_part.len() + 1);
    body.extend_from_slice(body_part);
    body.push(b'}');
    Some(Signed {
        body: Cow::Owned(body),
        mac,
    })
}

/// Generates the hex text of a key from 32 random bytes (the caller supplies randomness).
pub fn key_to_hex(bytes: &[u8; KEY_BYTES]) -> String {
    let mut out = Vec::with_capacity(KEY_BYTES * 2);
    push_hex(&mut out, bytes);
    String::from_utf8(out).unwrap_or_default()
}

/// Index of the closing `}` of a serialized non-empty JSON object (no trailing
/// whitespace), if `body` looks like one.
fn object_inner(body: &[u8]) -> Option<usize> {
    if body.first() != Some(&b'{') || body.last() != Some(&b'}') {
        return None;
    }
    let inner = body.len() - 1;
    let members = body[1..inner].iter().any(|b| !b.is_ascii_whitespace());
    members.then_some(inner)
}

fn push_hex(out: &mut Vec<u8>, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)]);
        out.push(DIGITS[usize::from(b & 0x0f)]);
    }
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

fn lower_hex_value(c: u8) -> Option<u8> {
    match c {
        b'A'..=b'F' => None,
        _ => hex_value(c),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const TOPIC: &str = "sitewatch/v1/club-1/pi-gate/heartbeat";

    fn key(n: u8) -> NodeKey {
        NodeKey::from_bytes(&[n; KEY_BYTES])
    }

    #[test]
    fn a_sealed_payload_is_json_with_a_mac_key_and_verifies() {
        let body = br#"{"ts":1,"session":"abc","seq":7,"uptime_s":3}"#;
        let sealed = key(1).seal(TOPIC, body).unwrap();
        let value: serde_json::Value = serde_json::from_slice(&sealed).unwrap();
        assert_eq!(value["seq"], 7);
        assert_eq!(value[MAC_FIELD].as_str().unwrap().len(), 64);
        let signed = split(&sealed).unwrap();
        assert_eq!(&*signed.body, &body[..]);
        assert!(key(1).verify(TOPIC, &signed.body, &signed.mac));
    }

    #[test]
    fn another_key_another_topic_or_a_changed_body_fails() {
        let body = br#"{"ts":1,"session":"abc","seq":7}"#;
        let sealed = key(1).seal(TOPIC, body).unwrap();
        let signed = split(&sealed).unwrap();
        assert!(!key(2).verify(TOPIC, &signed.body, &signed.mac));
        assert!(!key(1).verify(
            "sitewatch/v1/club-2/pi-gate/heartbeat",
            &signed.body,
            &signed.mac
        ));
        let forged = String::from_utf8(sealed)
            .unwrap()
            .replace("\"seq\":7", "\"seq\":8");
        let signed = split(forged.as_bytes()).unwrap();
        assert!(!key(1).verify(TOPIC, &signed.body, &signed.mac));
    }

    #[test]
    fn unsigned_and_malformed_signatures_are_not_split() {
        assert!(split(br#"{"ts":1,"seq":2}"#).is_none());
        assert!(split(b"").is_none());
        let sealed = key(1).seal(TOPIC, br#"{"a":1}"#).unwrap();
        let upper = String::from_utf8(sealed.clone()).unwrap().to_uppercase();
        assert!(split(upper.as_bytes()).is_none());
        let mut trailing = sealed.clone();
        trailing.push(b' ');
        assert!(split(&trailing).is_none());
        // A MAC alone, with no member before it, is not a signed message.
        let bare = format!("{{\"mac\":\"{}\"}}", "0".repeat(64));
        assert!(split(bare.as_bytes()).is_none());
    }

    #[test]
    fn empty_objects_and_non_objects_are_not_signed() {
        assert_eq!(key(1).seal(TOPIC, b"{}"), Err(SignError::NotAnObject));
        assert_eq!(key(1).seal(TOPIC, b"{ }"), Err(SignError::NotAnObject));
        assert_eq!(key(1).seal(TOPIC, b"online"), Err(SignError::NotAnObject));
    }

    #[test]
    fn keys_parse_from_hex_with_clear_errors() {
        let hex = key_to_hex(&[0xab; KEY_BYTES]);
        assert_eq!(hex.len(), 64);
        let parsed = NodeKey::from_hex(&hex).unwrap();
        let sealed = parsed.seal(TOPIC, br#"{"a":1}"#).unwrap();
        let signed = split(&sealed).unwrap();
        assert!(key(0xab).verify(TOPIC, &signed.body, &signed.mac));
        assert!(NodeKey::from_hex(&hex.to_uppercase()).is_ok());
        assert_eq!(
            NodeKey::from_hex("abc").unwrap_err(),
            SignError::KeyLength(3)
        );
        let bad = format!("{}zz", &hex[..62]);
        assert_eq!(NodeKey::from_hex(&bad).unwrap_err(), SignError::KeyNotHex);
        assert!(format!("{parsed:?}").contains("redacted"));
    }

    proptest! {
        #[test]
        fn seal_then_split_round_trips(
            keys in proptest::collection::btree_map("[a-z_]{1,8}", any::<i64>(), 1..6),
            n in any::<u8>(),
        ) {
            let body = serde_json::to_vec(&keys).unwrap();
            let sealed = key(n).seal(TOPIC, &body).unwrap();
            let signed = split(&sealed).unwrap();
            prop_assert_eq!(&*signed.body, &body[..]);
            prop_assert!(key(n).verify(TOPIC, &signed.body, &signed.mac));
            let back: std::collections::BTreeMap<String, serde_json::Value> =
                serde_json::from_slice(&sealed).unwrap();
            prop_assert_eq!(back.len(), keys.len() + usize::from(!keys.contains_key("mac")));
        }

        #[test]
        fn split_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = split(&bytes);
        }
    }
}
