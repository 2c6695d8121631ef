//! Sans-IO parser for the first packet of an MQTT connection: CONNECT.
//!
//! The guard must look at a client's CONNECT before rumqttd does (see `DESIGN.md`, "Known
//! rumqttd 0.20 hazards"), so this module reads just enough of MQTT 3.1 / 3.1.1 to find the
//! protocol level, the flags, the keep-alive and the client id, and to check that the packet
//! is well formed. It recognises MQTT 5 only to refuse it. It never panics on any input,
//! never allocates, and tells "need more bytes" apart from "this is not a valid CONNECT", so
//! the caller can feed it a growing buffer straight from the socket.

use thiserror::Error;

/// Largest CONNECT packet (fixed header included) the guard reads before giving up.
///
/// A CONNECT carries a client id, an optional will and optional credentials; 64 KiB is far
/// more than any real client sends and small enough that a peer cannot make the guard
/// buffer much memory before it has proven it speaks MQTT.
pub const MAX_CONNECT_PACKET_BYTES: usize = 64 * 1024;

/// The MQTT protocol versions the guard lets through to rumqttd.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtocolVersion {
    /// MQTT 3.1: protocol name `MQIsdp`, level 3. rumqttd only speaks 3.1.1, so the guard
    /// rewrites the CONNECT with [`encode_for_rumqttd`]; the rest of the session is the same
    /// on the wire.
    V31,
    /// MQTT 3.1.1: protocol name `MQTT`, level 4.
    V311,
}

/// CONNACK return codes of MQTT 3.1 / 3.1.1 that the guard sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ConnectReturnCode {
    /// 0: connection accepted (sent by rumqttd, never by the guard; listed for tests).
    Accepted = 0,
    /// 1: the server does not support the protocol level the client asked for.
    UnacceptableProtocolVersion = 1,
    /// 2: the client id is not allowed.
    IdentifierRejected = 2,
    /// 3: the server cannot take the connection now (full, its broker is down, or too many
    /// logins being checked).
    ServerUnavailable = 3,
    /// 4: unknown user name or wrong password.
    BadUserNameOrPassword = 4,
    /// 5: the client is not allowed to connect (anonymous, revoked, or asking for what its
    /// credentials do not cover).
    NotAuthorized = 5,
}

impl ConnectReturnCode {
    /// The four bytes of a v3.1.1 CONNACK with this code and no session present.
    pub fn connack(self) -> [u8; 4] {
        [0x20, 0x02, 0x00, self as u8]
    }
}

/// The will a client registers in its CONNECT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Will<'a> {
    /// Topic the broker publishes the will to.
    pub topic: &'a str,
    /// The will message.
    pub payload: &'a [u8],
    /// QoS of the will publish (0, 1 or 2).
    pub qos: u8,
    /// Whether the will is published retained.
    pub retain: bool,
}

/// A complete, well-formed CONNECT packet, borrowing from the read buffer.
///
/// Its `Debug` output never shows the password, so logging a `Connect` leaks nothing.
#[derive(Clone, PartialEq, Eq)]
pub struct Connect<'a> {
    /// Protocol version the client speaks.
    pub version: ProtocolVersion,
    /// Length of the fixed header (1 type byte + 1..=4 remaining-length bytes).
    pub header_len: usize,
    /// Length of the whole packet, fixed header included; bytes past it in the buffer belong
    /// to the packets the client pipelined after CONNECT.
    pub packet_len: usize,
    /// The clean-session flag.
    pub clean_session: bool,
    /// Keep-alive in seconds, as sent (0 is passed on: rumqttd refuses it safely).
    pub keep_alive: u16,
    /// The client id as raw bytes: the spec says UTF-8, but the guard must be able to log
    /// and reject an id that is not.
    pub client_id: &'a [u8],
    /// The will, if the will flag is set.
    pub will: Option<Will<'a>>,
    /// The user name, if present (UTF-8, as MQTT requires).
    pub username: Option<&'a str>,
    /// The password, if present: binary data in MQTT 3.1.1. Never log it.
    pub password: Option<&'a [u8]>,
}

impl std::fmt::Debug for Connect<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connect")
            .field("version", &self.version)
            .field("header_len", &self.header_len)
            .field("packet_len", &self.packet_len)
            .field("clean_session", &self.clean_session)
            .field("keep_alive", &self.keep_alive)
            .field("client_id", &String::from_utf8_lossy(self.client_id))
            .field("will", &self.will)
            .field("username", &self.username)
            .field("password", &self.password.map(|_| "<redacted>"))
            .finish()
    }
}

/// Why a buffer does not start with a CONNECT the guard can accept.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ConnectError {
    /// The first packet of a connection must be CONNECT (packet type 1).
    #[error("first packet is of type {0}, not CONNECT")]
    NotConnect(u8),
    /// CONNECT's fixed header flags are reserved and must be zero.
    #[error("CONNECT fixed header has reserved flags {0:#06b} set")]
    HeaderFlags(u8),
    /// The remaining length is longer than the 4 bytes MQTT allows.
    #[error("remaining length is longer than 4 bytes")]
    BadRemainingLength,
    /// The packet is larger than the caller's limit.
    #[error("CONNECT of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// Size the fixed header announces.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Neither `MQTT` nor `MQIsdp`: not an MQTT client.
    #[error("unknown protocol name")]
    UnknownProtocolName,
    /// A known protocol name with a level the broker does not speak (5 is MQTT 5).
    #[error("unsupported protocol level {0}")]
    UnsupportedProtocolLevel(u8),
    /// The packet breaks the MQTT 3.1.1 rules in the way described.
    #[error("malformed CONNECT: {0}")]
    Malformed(&'static str),
}

/// Parses the CONNECT packet at the start of `buf`.
///
/// Returns `Ok(None)` while `buf` is a prefix of a packet that may still turn out valid,
/// `Ok(Some(connect))` once a whole valid CONNECT is there, and an error as soon as the bytes
/// seen so far rule that out. Packets announcing more than `max_packet_bytes` are refused
/// from their fixed header alone, before their body is read.
pub fn parse_connect(
    buf: &[u8],
    max_packet_bytes: usize,
) -> Result<Option<Connect<'_>>, ConnectError> {
    let Some(&first) = buf.first() else {
        return Ok(None);
    };
    let packet_type = first >> 4;
    if packet_type != 1 {
        return Err(ConnectError::NotConnect(packet_type));
    }
    if first & 0x0F != 0 {
        return Err(ConnectError::HeaderFlags(first & 0x0F));
    }
    let Some((remaining_len, len_bytes)) = read_remaining_length(&buf[1..])? else {
        return Ok(None);
    };
    let header_len = 1 + len_bytes;
    let packet_len = header_len + remaining_len;
    if packet_len > max_packet_bytes {
        return Err(ConnectError::TooLarge {
            len: packet_len,
            max: max_packet_bytes,
        });
    }
    let Some(body) = buf.get(header_len..packet_len) else {
        return Ok(None);
    };
    let mut body = Reader(body);

    let name = body.bytes("truncated protocol name")?;
    let level = body.u8("truncated protocol level")?;
    let version = match (name, level) {
        (b"MQTT", 4) => ProtocolVersion::V311,
        (b"MQIsdp", 3) => ProtocolVersion::V31,
        (b"MQTT" | b"MQIsdp", level) => return Err(ConnectError::UnsupportedProtocolLevel(level)),
        _ => return Err(ConnectError::UnknownProtocolName),
    };

    let flags = body.u8("truncated connect flags")?;
    if flags & 0x01 != 0 {
        return Err(ConnectError::Malformed("reserved connect flag is set"));
    }
    let clean_session = flags & 0x02 != 0;
    let will_flag = flags & 0x04 != 0;
    let will_qos = (flags >> 3) & 0x03;
    let will_retain = flags & 0x20 != 0;
    let has_password = flags & 0x40 != 0;
    let has_username = flags & 0x80 != 0;
    if will_qos == 3 {
        return Err(ConnectError::Malformed("will QoS is 3"));
    }
    if !will_flag && (will_qos != 0 || will_retain) {
        return Err(ConnectError::Malformed(
            "will QoS or retain set without a will",
        ));
    }
    if version == ProtocolVersion::V311 && has_password && !has_username {
        return Err(ConnectError::Malformed("password without user name"));
    }

    let keep_alive = body.u16("truncated keep alive")?;
    let client_id = body.bytes("truncated client id")?;
    let will = if will_flag {
        let topic = std::str::from_utf8(body.bytes("truncated will topic")?)
            .map_err(|_| ConnectError::Malformed("will topic is not UTF-8"))?;
        if topic.is_empty() || topic.contains(['+', '#']) {
            return Err(ConnectError::Malformed(
                "will topic is empty or has a wildcard",
            ));
        }
        let payload = body.bytes("truncated will message")?;
        Some(Will {
            topic,
            payload,
            qos: will_qos,
            retain: will_retain,
        })
    } else {
        None
    };
    let username = if has_username {
        Some(
            std::str::from_utf8(body.bytes("truncated user name")?)
                .map_err(|_| ConnectError::Malformed("user name is not UTF-8"))?,
        )
    } else {
        None
    };
    let password = if has_password {
        Some(body.bytes("truncated password")?)
    } else {
        None
    };
    if !body.0.is_empty() {
        return Err(ConnectError::Malformed(
            "bytes after the last CONNECT field",
        ));
    }

    Ok(Some(Connect {
        version,
        header_len,
        packet_len,
        clean_session,
        keep_alive,
        client_id,
        will,
        username,
        password,
    }))
}

/// The CONNECT the guard sends rumqttd for `connect`: always MQTT 3.1.1 (`MQTT`, level 4,
/// the only version rumqttd's listener accepts, so 3.1 clients are upgraded), with the same
/// clean-session flag, keep-alive, client id and will, and without user name or password.
///
/// The guard authenticates clients itself, so rumqttd never needs the credentials, and
/// leaving them out means they cannot end up in rumqttd's logs or memory.
pub fn encode_for_rumqttd(connect: &Connect<'_>) -> Vec<u8> {
    let mut flags = 0u8;
    if connect.clean_session {
        flags |= 0x02;
    }
    let mut body = Vec::with_capacity(connect.packet_len + 8);
    body.extend_from_slice(&[0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04]);
    if let Some(will) = &connect.will {
        flags |= 0x04 | (will.qos << 3);
        if will.retain {
            flags |= 0x20;
        }
    }
    body.push(flags);
    body.extend_from_slice(&connect.keep_alive.to_be_bytes());
    // Every length below fits in u16: the parser read each one from a 2-byte prefix.
    write_prefixed(&mut body, connect.client_id);
    if let Some(will) = &connect.will {
        write_prefixed(&mut body, will.topic.as_bytes());
        write_prefixed(&mut body, will.payload);
    }
    let mut out = Vec::with_capacity(body.len() + 5);
    out.push(0x10);
    write_remaining_length(&mut out, body.len());
    out.extend_from_slice(&body);
    out
}

/// Appends `bytes` with MQTT's 2-byte big-endian length prefix (at most 65,535 bytes kept).
fn write_prefixed(out: &mut Vec<u8>, bytes: &[u8]) {
    let len = u16::try_from(bytes.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&bytes[..usize::from(len)]);
}

/// Decodes MQTT's variable-length "remaining length" (1 to 4 bytes, 7 bits each).
///
/// Returns the value and the number of bytes it took, or `None` if `buf` ends first.
pub(crate) fn read_remaining_length(buf: &[u8]) -> Result<Option<(usize, usize)>, ConnectError> {
    let mut value = 0usize;
    for (i, &byte) in buf.iter().take(4).enumerate() {
        value |= usize::from(byte & 0x7F) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok(Some((value, i + 1)));
        }
    }
    if buf.len() >= 4 {
        Err(ConnectError::BadRemainingLength)
    } else {
        Ok(None)
    }
}

/// Encodes `len` (at most 268,435,455) as MQTT's remaining length.
pub(crate) fn write_remaining_length(out: &mut Vec<u8>, mut len: usize) {
    loop {
        let mut byte = (len % 128) as u8;
        len /= 128;
        if len > 0 {
            byte |= 0x80;
        }
        out.push(byte);
        if len == 0 {
            break;
        }
    }
}

/// A cursor over a packet body that fails with `Malformed(what)` instead of reading past
/// its end; each caller names the field as "truncated <field>".
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], ConnectError> {
        if self.0.len() < n {
            return Err(ConnectError::Malformed(what));
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, ConnectError> {
        Ok(self.take(1, what)?[0])
    }

    fn u16(&mut self, what: &'static str) -> Result<u16, ConnectError> {
        let b = self.take(2, what)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    /// A field prefixed by its 2-byte big-endian length (MQTT strings and binary data).
    fn bytes(&mut self, what: &'static str) -> Result<&'a [u8], ConnectError> {
        let len = self.u16(what)?;
        self.take(usize::from(len), what)
    }
}

#[cfg(test)]
#[path = "connect_tests.rs"]
mod tests;
