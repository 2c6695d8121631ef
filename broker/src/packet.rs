//! Sans-IO reading of what a client sends after its CONNECT: packet framing (fixed header and
//! remaining length) and the two packets the guard looks into, PUBLISH (its topic) and
//! SUBSCRIBE (its filters).
//!
//! [`peek`] looks at the start of a buffer and says either "need more bytes", or how long
//! the next packet is and what the guard needs to know about it, or why the bytes are not
//! MQTT 3.1.1. It reads at most the packet's header and, for PUBLISH, its topic, so a large
//! payload never has to be buffered; it never panics and never reads past the buffer.

use thiserror::Error;

use crate::connect::read_remaining_length;

/// Packet type of CONNECT.
pub const CONNECT: u8 = 1;
/// Packet type of PUBLISH.
pub const PUBLISH: u8 = 3;
/// Packet type of SUBSCRIBE.
pub const SUBSCRIBE: u8 = 8;

/// Largest SUBSCRIBE the guard reads whole when it has to check its filters. An agent's
/// subscription is one filter of under 100 bytes; 64 KiB is far more than any client needs.
pub const MAX_INSPECTED_SUBSCRIBE_BYTES: usize = 64 * 1024;

/// The fixed header of an MQTT packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FixedHeader {
    /// The first byte: packet type (high nibble) and flags (low nibble).
    pub byte1: u8,
    /// Length of the fixed header: 1 type byte and 1 to 4 remaining-length bytes.
    pub header_len: usize,
    /// The remaining length: everything after the fixed header.
    pub remaining_len: usize,
}

impl FixedHeader {
    /// The packet type, 0 to 15.
    pub fn packet_type(&self) -> u8 {
        self.byte1 >> 4
    }

    /// Length of the whole packet, fixed header included.
    pub fn packet_len(&self) -> usize {
        self.header_len + self.remaining_len
    }
}

/// What the guard needs to know about the next packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Peeked<'a> {
    /// A PUBLISH; `inspected` bytes (fixed header, topic length and topic) were read.
    Publish {
        /// The packet's fixed header.
        header: FixedHeader,
        /// The topic: valid UTF-8, not empty, without wildcards or NUL.
        topic: &'a str,
        /// How many bytes of the packet were needed to get here.
        inspected: usize,
    },
    /// A SUBSCRIBE read whole (only when asked to look into SUBSCRIBE).
    Subscribe {
        /// The packet's fixed header.
        header: FixedHeader,
        /// The topic filters, in order; at least one.
        filters: Vec<&'a str>,
    },
    /// Any other packet, or a SUBSCRIBE nobody asked to look into: only its header was read.
    Other {
        /// The packet's fixed header.
        header: FixedHeader,
    },
}

impl Peeked<'_> {
    /// The packet's fixed header.
    pub fn header(&self) -> &FixedHeader {
        match self {
            Peeked::Publish { header, .. }
            | Peeked::Subscribe { header, .. }
            | Peeked::Other { header } => header,
        }
    }

    /// How many bytes from the start of the packet the guard read to decide on it.
    pub fn inspected(&self) -> usize {
        match self {
            Peeked::Publish { inspected, .. } => *inspected,
            Peeked::Subscribe { header, .. } => header.packet_len(),
            Peeked::Other { header } => header.header_len,
        }
    }
}

/// Why the bytes a client sent are not an acceptable MQTT 3.1.1 packet.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PacketError {
    /// The remaining length is longer than the 4 bytes MQTT allows.
    #[error("remaining length is longer than 4 bytes")]
    BadRemainingLength,
    /// The packet is larger than the broker accepts (`max_payload_bytes`, compared with the
    /// remaining length, as rumqttd does).
    #[error("packet of {len} bytes (after its fixed header) exceeds the limit of {max} bytes")]
    TooLarge {
        /// Remaining length the fixed header announces.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A SUBSCRIBE larger than [`MAX_INSPECTED_SUBSCRIBE_BYTES`] from a client whose
    /// filters must be checked.
    #[error(
        "SUBSCRIBE of {len} bytes is larger than the {MAX_INSPECTED_SUBSCRIBE_BYTES} bytes checked"
    )]
    SubscribeTooLarge {
        /// Length of the whole packet.
        len: usize,
    },
    /// The packet breaks MQTT 3.1.1 in the way described.
    #[error("malformed packet: {0}")]
    Malformed(&'static str),
}

/// Looks at the packet at the start of `buf`.
///
/// Returns `Ok(None)` while `buf` is too short to decide, `Ok(Some(peeked))` once it holds
/// what the guard needs (see [`Peeked::inspected`]; the rest of the packet may not have
/// arrived yet), and an error as soon as the bytes rule out a valid packet. A packet whose
/// remaining length is over `max_remaining` is refused from its fixed header alone.
/// SUBSCRIBE packets are read whole and their filters returned only if `look_into_subscribe`.
pub fn peek(
    buf: &[u8],
    max_remaining: usize,
    look_into_subscribe: bool,
) -> Result<Option<Peeked<'_>>, PacketError> {
    let Some(header) = fixed_header(buf, max_remaining)? else {
        return Ok(None);
    };
    match header.packet_type() {
        0 | 15 => Err(PacketError::Malformed("reserved packet type")),
        PUBLISH => peek_publish(buf, header),
        SUBSCRIBE if look_into_subscribe => peek_subscribe(buf, header),
        _ => Ok(Some(Peeked::Other { header })),
    }
}

/// Decodes the fixed header at the start of `buf`; `Ok(None)` if it is not complete yet.
pub fn fixed_header(buf: &[u8], max_remaining: usize) -> Result<Option<FixedHeader>, PacketError> {
    let Some(&byte1) = buf.first() else {
        return Ok(None);
    };
    let (remaining_len, len_bytes) = match read_remaining_length(&buf[1..]) {
        Ok(Some(decoded)) => decoded,
        Ok(None) => return Ok(None),
        // The only error it returns: more than 4 remaining-length bytes.
        Err(_) => return Err(PacketError::BadRemainingLength),
    };
    if remaining_len > max_remaining {
        return Err(PacketError::TooLarge {
            len: remaining_len,
            max: max_remaining,
        });
    }
    Ok(Some(FixedHeader {
        byte1,
        header_len: 1 + len_bytes,
        remaining_len,
    }))
}

fn peek_publish(buf: &[u8], header: FixedHeader) -> Result<Option<Peeked<'_>>, PacketError> {
    let qos = (header.byte1 >> 1) & 0x03;
    if qos == 3 {
        return Err(PacketError::Malformed("PUBLISH with QoS 3"));
    }
    if header.remaining_len < 2 {
        return Err(PacketError::Malformed("PUBLISH without a topic"));
    }
    let start = header.header_len;
    let Some(len_bytes) = buf.get(start..start + 2) else {
        return Ok(None);
    };
    let topic_len = usize::from(u16::from_be_bytes([len_bytes[0], len_bytes[1]]));
    let packet_id_len = if qos > 0 { 2 } else { 0 };
    if 2 + topic_len + packet_id_len > header.remaining_len {
        return Err(PacketError::Malformed(
            "PUBLISH topic longer than the packet",
        ));
    }
    let inspected = start + 2 + topic_len;
    let Some(topic) = buf.get(start + 2..inspected) else {
        return Ok(None);
    };
    let topic = std::str::from_utf8(topic)
        .map_err(|_| PacketError::Malformed("PUBLISH topic is not UTF-8"))?;
    if topic.is_empty() || topic.contains(['+', '#', '\0']) {
        return Err(PacketError::Malformed(
            "PUBLISH topic is empty or has a wildcard or NUL",
        ));
    }
    Ok(Some(Peeked::Publish {
        header,
        topic,
        inspected,
    }))
}

fn peek_subscribe(buf: &[u8], header: FixedHeader) -> Result<Option<Peeked<'_>>, PacketError> {
    if header.byte1 & 0x0F != 0x02 {
        return Err(PacketError::Malformed("SUBSCRIBE flags are not 0010"));
    }
    let len = header.packet_len();
    if len > MAX_INSPECTED_SUBSCRIBE_BYTES {
        return Err(PacketError::SubscribeTooLarge { len });
    }
    let Some(body) = buf.get(header.header_len..len) else {
        return Ok(None);
    };
    let Some(mut rest) = body.get(2..) else {
        return Err(PacketError::Malformed("SUBSCRIBE without a packet id"));
    };
    let mut filters = Vec::new();
    while !rest.is_empty() {
        let Some(&[hi, lo]) = rest.get(..2) else {
            return Err(PacketError::Malformed("truncated SUBSCRIBE filter"));
        };
        let end = 2 + usize::from(u16::from_be_bytes([hi, lo]));
        // The filter and its options byte.
        let (Some(filter), Some(&options)) = (rest.get(2..end), rest.get(end)) else {
            return Err(PacketError::Malformed("truncated SUBSCRIBE filter"));
        };
        if options > 2 {
            return Err(PacketError::Malformed("SUBSCRIBE options are not a QoS"));
        }
        let filter = std::str::from_utf8(filter)
            .map_err(|_| PacketError::Malformed("SUBSCRIBE filter is not UTF-8"))?;
        if filter.is_empty() {
            return Err(PacketError::Malformed("SUBSCRIBE filter is empty"));
        }
        filters.push(filter);
        rest = &rest[end + 1..];
    }
    if filters.is_empty() {
        return Err(PacketError::Malformed("SUBSCRIBE without filters"));
    }
    Ok(Some(Peeked::Subscribe { header, filters }))
}

#[cfg(test)]
#[path = "packet_tests.rs"]
mod tests;
