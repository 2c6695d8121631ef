//! Which MQTT client ids the broker accepts, and how a refused one is shown in logs.
//!
//! rumqttd 0.20 panics, and poisons a lock that every later connection needs, when a client
//! id contains `/ + # $` and the same id connects twice (see `DESIGN.md`, "Known rumqttd
//! 0.20 hazards"). The guard therefore only lets through ids made of printable ASCII without
//! those four characters, which is also what `sitewatch-proto` ever generates, and what every
//! common MQTT client uses by default.

use thiserror::Error;

/// Longest client id accepted, in bytes.
///
/// MQTT 3.1.1 only promises 23 characters; 256 leaves room for generated ids (Home
/// Assistant, Node-RED, `{site}-{node}-{suffix}`) while keeping log lines and the router's
/// maps small.
pub const MAX_CLIENT_ID_BYTES: usize = 256;

/// Characters MQTT gives a meaning in topics, which rumqttd mishandles in client ids.
pub const RESERVED_CHARS: [char; 4] = ['/', '+', '#', '$'];

/// How many characters of a refused id a log line shows.
const LOG_CHARS: usize = 64;

/// Why a client id is refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ClientIdError {
    /// An empty id with a persistent session: MQTT 3.1.1 (3.1.3-8) says the server must
    /// refuse it, since there is no name to keep the session under.
    #[error("client id is empty and clean session is off; set a client id or clean session")]
    EmptyPersistent,
    /// The id is longer than [`MAX_CLIENT_ID_BYTES`].
    #[error("client id is {len} bytes long, the limit is {MAX_CLIENT_ID_BYTES}")]
    TooLong {
        /// Length of the refused id in bytes.
        len: usize,
    },
    /// The id contains one of [`RESERVED_CHARS`].
    #[error("client id contains {0:?}, which MQTT reserves for topics")]
    Reserved(char),
    /// The id contains whitespace, a control character or a byte outside ASCII.
    #[error("client id has whitespace, a control character or a non-ASCII byte at offset {offset}")]
    NotPrintable {
        /// Byte offset of the first offending byte.
        offset: usize,
    },
}

/// Checks `id` (raw bytes from CONNECT) and returns it as `&str` if the broker accepts it.
///
/// Accepted: 1 to [`MAX_CLIENT_ID_BYTES`] bytes of printable ASCII (`!` to `~`) other than
/// `/ + # $`; or an empty id with clean session, which MQTT 3.1.1 allows and rumqttd answers
/// safely by assigning `rumqtt-<uuid>`. That is what `mosquitto_sub`/`mosquitto_pub` 2.x and
/// paho-mqtt 1.x send by default, so refusing it would lock out the usual bus readers.
pub fn validate_client_id(id: &[u8], clean_session: bool) -> Result<&str, ClientIdError> {
    if id.is_empty() {
        return if clean_session {
            Ok("")
        } else {
            Err(ClientIdError::EmptyPersistent)
        };
    }
    if id.len() > MAX_CLIENT_ID_BYTES {
        return Err(ClientIdError::TooLong { len: id.len() });
    }
    for (offset, &byte) in id.iter().enumerate() {
        if !byte.is_ascii_graphic() {
            return Err(ClientIdError::NotPrintable { offset });
        }
        let ch = char::from(byte);
        if RESERVED_CHARS.contains(&ch) {
            return Err(ClientIdError::Reserved(ch));
        }
    }
    // Printable ASCII is valid UTF-8; the fallback is unreachable but costs nothing.
    std::str::from_utf8(id).map_err(|e| ClientIdError::NotPrintable {
        offset: e.valid_up_to(),
    })
}

/// Renders a (possibly hostile) client id for a log line: lossy UTF-8, anything but
/// printable ASCII escaped, at most 64 characters, then `…` and the full length in bytes.
pub fn display_client_id(id: &[u8]) -> String {
    let text = String::from_utf8_lossy(id);
    let mut out = String::with_capacity(LOG_CHARS + 16);
    for (shown, ch) in text.chars().enumerate() {
        if shown == LOG_CHARS {
            out.push_str(&format!("…({} bytes)", id.len()));
            break;
        }
        if ch.is_ascii_graphic() || ch == ' ' {
            out.push(ch);
        } else {
            out.extend(ch.escape_default());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_sitewatch_style_ids() {
        for id in [
            "hub",
            "club-a-pi-01",
            "sitewatch_hub.7f3a",
            "a",
            "mosquitto_sub_1234",
        ] {
            assert_eq!(validate_client_id(id.as_bytes(), true), Ok(id));
        }
        let longest = "x".repeat(MAX_CLIENT_ID_BYTES);
        assert!(validate_client_id(longest.as_bytes(), true).is_ok());
    }

    #[test]
    fn rejects_the_ids_that_break_rumqttd() {
        assert_eq!(
            validate_client_id(b"a/b", true),
            Err(ClientIdError::Reserved('/'))
        );
        assert_eq!(
            validate_client_id(b"+", true),
            Err(ClientIdError::Reserved('+'))
        );
        assert_eq!(
            validate_client_id(b"#", true),
            Err(ClientIdError::Reserved('#'))
        );
        assert_eq!(
            validate_client_id(b"$x", true),
            Err(ClientIdError::Reserved('$'))
        );
    }

    #[test]
    fn rejects_empty_long_and_unprintable_ids() {
        assert_eq!(
            validate_client_id(b"", false),
            Err(ClientIdError::EmptyPersistent)
        );
        // Clean session: rumqttd assigns an id (what mosquitto_sub 2.x relies on).
        assert_eq!(validate_client_id(b"", true), Ok(""));
        let long = vec![b'x'; MAX_CLIENT_ID_BYTES + 1];
        assert_eq!(
            validate_client_id(&long, true),
            Err(ClientIdError::TooLong { len: 257 })
        );
        for (id, offset) in [
            (&b"a b"[..], 1),
            (b"tab\t", 3),
            (b"\0", 0),
            (b"nl\n", 2),
            (b"del\x7f", 3),
            ("caf\u{e9}".as_bytes(), 3),
            (b"\xff\xfe", 0),
        ] {
            assert_eq!(
                validate_client_id(id, true),
                Err(ClientIdError::NotPrintable { offset }),
                "{id:?}"
            );
        }
    }

    #[test]
    fn log_rendering_escapes_and_truncates() {
        assert_eq!(display_client_id(b"a/b"), "a/b");
        assert_eq!(display_client_id(b"x\n\x1b[31m"), "x\\n\\u{1b}[31m");
        assert_eq!(display_client_id(b"\xff"), "\\u{fffd}");
        let long = display_client_id(&[b'y'; 300]);
        assert_eq!(long, format!("{}…(300 bytes)", "y".repeat(64)));
    }

    proptest! {
        #[test]
        fn printable_ids_without_reserved_chars_are_accepted(id in "[!-~&&[^/+#$]]{1,256}") {
            prop_assert_eq!(validate_client_id(id.as_bytes(), true), Ok(id.as_str()));
        }

        #[test]
        fn any_reserved_char_is_rejected(
            prefix in "[a-z0-9]{0,20}",
            reserved in prop::sample::select(RESERVED_CHARS.to_vec()),
            suffix in "[a-z0-9]{0,20}",
        ) {
            let id = format!("{prefix}{reserved}{suffix}");
            prop_assert_eq!(validate_client_id(id.as_bytes(), true), Err(ClientIdError::Reserved(reserved)));
        }

        #[test]
        fn accepted_ids_are_exactly_printable_ascii(id in prop::collection::vec(any::<u8>(), 0..300),
                                                    clean in any::<bool>()) {
            let ok = (clean || !id.is_empty())
                && id.len() <= MAX_CLIENT_ID_BYTES
                && id.iter().all(|b| b.is_ascii_graphic() && !b"/+#$".contains(b));
            prop_assert_eq!(validate_client_id(&id, clean).is_ok(), ok);
        }

        #[test]
        fn log_rendering_is_short_and_has_no_control_chars(id in prop::collection::vec(any::<u8>(), 0..1000)) {
            let shown = display_client_id(&id);
            prop_assert!(shown.chars().all(|c| c == '…' || c.is_ascii_graphic() || c == ' '));
            // 64 characters, each escaped to at most 10, plus the length suffix.
            prop_assert!(shown.len() <= 64 * 10 + 20);
        }
    }
}
