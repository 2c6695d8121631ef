//! The guard's verdict on the bytes a client sent first: forward them to rumqttd, or refuse
//! the connection with the right CONNACK (or none).
//!
//! Pure: a function of the bytes read so far and of whether a connection slot is free, so
//! every rule is unit-tested without sockets. `guard.rs` does the I/O around it.

use crate::client_id::{display_client_id, validate_client_id};
use crate::connect::{
    ConnectError, ConnectReturnCode, MAX_CONNECT_PACKET_BYTES, encode_for_rumqttd, parse_connect,
};
use crate::stats::RejectReason;

/// What to do with a connection once its CONNECT is complete (or proven invalid).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Admission {
    /// The CONNECT is acceptable as far as its bytes go; authentication comes next.
    Forward(Admitted),
    /// Refuse the connection.
    Reject(Rejection),
}

/// A well-formed CONNECT with an acceptable client id, taken apart for the next steps.
#[derive(PartialEq, Eq)]
pub(crate) struct Admitted {
    /// The CONNECT to send rumqttd: 3.1.1, without credentials (`encode_for_rumqttd`).
    pub(crate) connect: Vec<u8>,
    /// Whatever the client pipelined after its CONNECT; it goes through the relay's checks
    /// like everything the client sends later.
    pub(crate) rest: Vec<u8>,
    /// The validated client id (empty: rumqttd assigns one).
    pub(crate) client_id: String,
    /// The user name, if any.
    pub(crate) username: Option<String>,
    /// The password, if any. Never logged (see the `Debug` impl).
    pub(crate) password: Option<Vec<u8>>,
    /// The will's topic, if the client registered a will.
    pub(crate) will_topic: Option<String>,
}

impl std::fmt::Debug for Admitted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admitted")
            .field("connect", &self.connect.len())
            .field("rest", &self.rest.len())
            .field("client_id", &self.client_id)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("will_topic", &self.will_topic)
            .finish()
    }
}

/// A refused connection: why, what the client is told, and what the log shows.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Rejection {
    /// The counter and log field this refusal belongs to.
    pub(crate) reason: RejectReason,
    /// The CONNACK to send before closing, if the client speaks enough MQTT to read one.
    pub(crate) connack: Option<ConnectReturnCode>,
    /// What was wrong, for the log.
    pub(crate) detail: String,
    /// The client id, escaped and truncated for the log, if the packet got that far.
    pub(crate) client_id: Option<String>,
}

impl Rejection {
    fn new(reason: RejectReason, connack: Option<ConnectReturnCode>, detail: String) -> Self {
        Rejection {
            reason,
            connack,
            detail,
            client_id: None,
        }
    }
}

/// Decides on the connection whose first bytes are `buf`; `None` means "read more".
///
/// Checks, in order: a well-formed CONNECT of at most [`MAX_CONNECT_PACKET_BYTES`] (else the
/// connection is closed without answer, or with return code 1 for an unsupported protocol
/// level such as MQTT 5), an acceptable client id (else return code 2), and a free
/// connection slot (else return code 3). A refused id is reported even when the server is
/// full, because retrying will not help that client.
pub(crate) fn admit(buf: &[u8], has_capacity: bool) -> Option<Admission> {
    let connect = match parse_connect(buf, MAX_CONNECT_PACKET_BYTES) {
        Ok(Some(connect)) => connect,
        Ok(None) => return None,
        Err(err) => return Some(Admission::Reject(reject_parse_error(&err))),
    };
    let client_id = match validate_client_id(connect.client_id, connect.clean_session) {
        Ok(id) => id,
        Err(err) => {
            return Some(Admission::Reject(Rejection {
                client_id: Some(display_client_id(connect.client_id)),
                ..Rejection::new(
                    RejectReason::ClientId,
                    Some(ConnectReturnCode::IdentifierRejected),
                    err.to_string(),
                )
            }));
        }
    };
    if !has_capacity {
        return Some(Admission::Reject(Rejection {
            client_id: Some(client_id.to_owned()),
            ..Rejection::new(
                RejectReason::ServerFull,
                Some(ConnectReturnCode::ServerUnavailable),
                "max_connections reached".to_owned(),
            )
        }));
    }
    Some(Admission::Forward(Admitted {
        connect: encode_for_rumqttd(&connect),
        rest: buf.get(connect.packet_len..).unwrap_or_default().to_vec(),
        client_id: client_id.to_owned(),
        username: connect.username.map(str::to_owned),
        password: connect.password.map(<[u8]>::to_vec),
        will_topic: connect.will.as_ref().map(|w| w.topic.to_owned()),
    }))
}

fn reject_parse_error(err: &ConnectError) -> Rejection {
    let (reason, connack) = match err {
        ConnectError::UnsupportedProtocolLevel(_) => (
            RejectReason::ProtocolVersion,
            Some(ConnectReturnCode::UnacceptableProtocolVersion),
        ),
        ConnectError::TooLarge { .. } => (RejectReason::TooLarge, None),
        _ => (RejectReason::Malformed, None),
    };
    Rejection::new(reason, connack, err.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connect(name: &[u8], level: u8, id: &[u8]) -> Vec<u8> {
        let mut body = vec![0, name.len() as u8];
        body.extend_from_slice(name);
        body.extend_from_slice(&[level, 0x02, 0, 10, 0, id.len() as u8]);
        body.extend_from_slice(id);
        let mut out = vec![0x10, body.len() as u8];
        out.extend_from_slice(&body);
        out
    }

    fn rejection(buf: &[u8], has_capacity: bool) -> Rejection {
        match admit(buf, has_capacity) {
            Some(Admission::Reject(r)) => r,
            other => panic!("expected a rejection, got {other:?}"),
        }
    }

    fn admitted(buf: &[u8]) -> Admitted {
        match admit(buf, true) {
            Some(Admission::Forward(a)) => a,
            other => panic!("expected a forward, got {other:?}"),
        }
    }

    #[test]
    fn good_connect_is_forwarded_with_pipelined_bytes() {
        let connect_bytes = connect(b"MQTT", 4, b"pi-01");
        let mut buf = connect_bytes.clone();
        buf.extend_from_slice(&[0xC0, 0x00]);
        let a = admitted(&buf);
        assert_eq!(a.connect, connect_bytes);
        assert_eq!(a.rest, [0xC0, 0x00]);
        assert_eq!(a.client_id, "pi-01");
        assert_eq!((a.username, a.password, a.will_topic), (None, None, None));
    }

    #[test]
    fn credentials_are_taken_out_of_the_forwarded_connect() {
        // Flags 0xC2: user name, password, clean session.
        let mut body = vec![
            0, 4, b'M', b'Q', b'T', b'T', 4, 0xC2, 0, 10, 0, 2, b'p', b'i',
        ];
        body.extend_from_slice(&[0, 4, b'u', b's', b'e', b'r', 0, 3, b'p', b'w', b'd']);
        let mut buf = vec![0x10, body.len() as u8];
        buf.extend_from_slice(&body);
        let a = admitted(&buf);
        assert_eq!(a.connect, connect(b"MQTT", 4, b"pi"));
        assert_eq!(a.username.as_deref(), Some("user"));
        assert_eq!(a.password.as_deref(), Some(&b"pwd"[..]));
        assert!(!format!("{a:?}").contains("pwd"));
    }

    #[test]
    fn partial_connect_waits_for_more() {
        let buf = connect(b"MQTT", 4, b"pi-01");
        assert_eq!(admit(&buf[..buf.len() - 1], true), None);
        assert_eq!(admit(&[], false), None);
    }

    #[test]
    fn bad_client_id_gets_return_code_2_even_when_full() {
        for has_capacity in [true, false] {
            let r = rejection(&connect(b"MQTT", 4, b"a/b"), has_capacity);
            assert_eq!(r.reason, RejectReason::ClientId);
            assert_eq!(r.connack, Some(ConnectReturnCode::IdentifierRejected));
            assert_eq!(r.client_id.as_deref(), Some("a/b"));
        }
    }

    #[test]
    fn mqtt_5_gets_return_code_1() {
        let r = rejection(&connect(b"MQTT", 5, b"v5"), true);
        assert_eq!(r.reason, RejectReason::ProtocolVersion);
        assert_eq!(
            r.connack,
            Some(ConnectReturnCode::UnacceptableProtocolVersion)
        );
    }

    #[test]
    fn full_server_gets_return_code_3() {
        let r = rejection(&connect(b"MQTT", 4, b"pi-01"), false);
        assert_eq!(r.reason, RejectReason::ServerFull);
        assert_eq!(r.connack, Some(ConnectReturnCode::ServerUnavailable));
    }

    #[test]
    fn garbage_and_huge_packets_are_closed_without_connack() {
        let r = rejection(b"GET / HTTP/1.1\r\n", true);
        assert_eq!((r.reason, r.connack), (RejectReason::Malformed, None));
        let r = rejection(&[0x10, 0xFF, 0xFF, 0x04], true);
        assert_eq!((r.reason, r.connack), (RejectReason::TooLarge, None));
    }

    #[test]
    fn mqtt_31_is_forwarded_as_311() {
        let mut buf = connect(b"MQIsdp", 3, b"old");
        buf.extend_from_slice(&[0xC0, 0x00]);
        let a = admitted(&buf);
        assert_eq!(a.connect, connect(b"MQTT", 4, b"old"));
        assert_eq!(a.rest, [0xC0, 0x00]);
        assert_eq!(a.client_id, "old");
    }
}
