//! The guard's checks on everything a client sends after its CONNECT, as a sans-IO state
//! machine.
//!
//! The relay reads client bytes into a buffer and asks [`Inspector::step`] what to do with
//! them: forward so many bytes to rumqttd, read more, wait (publish rate exceeded, throttled),
//! or stop because the client broke a rule. Only packet headers and PUBLISH topics are
//! buffered (SUBSCRIBE too, whole, for clients bound to a node); payloads stream through in
//! whatever pieces they arrive, so a 1 MiB publish costs no 1 MiB buffer.
//!
//! Rules, in order, for each packet: well-formed framing and a remaining length within
//! `max_payload_bytes` (rumqttd's own limit, so rumqttd never has to refuse); no second
//! CONNECT; a PUBLISH topic that is UTF-8 without wildcards; for a client bound to a node,
//! PUBLISH and SUBSCRIBE only on its own topics; for an integration's account, no PUBLISH
//! under the topic prefix ([`TopicPolicy`]); then the publish rate.

use std::time::{Duration, Instant};

use crate::config::{OverRate, PublishRate};
use crate::packet::{CONNECT, PacketError, Peeked, peek};
use crate::policy::TopicPolicy;
use crate::rate::TokenBucket;
use crate::stats::DisconnectReason;

/// What the relay does next with the bytes it holds (`buf` given to [`Inspector::step`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Forward the first `n` bytes of `buf` to rumqttd and drop them from `buf`.
    Forward(usize),
    /// Read more bytes from the client, append them to `buf`, and step again.
    NeedMore,
    /// The client is over its publish rate: wait this long, then step again (nothing is
    /// read from the client meanwhile, so TCP slows the client down).
    Throttle(Duration),
    /// Close the connection: the client broke a rule.
    Stop(Violation),
}

/// Why a client is disconnected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Violation {
    /// Bad framing, a packet over `max_payload_bytes`, or an invalid topic.
    Packet(PacketError),
    /// A CONNECT on a connection that is already connected.
    SecondConnect,
    /// A bound client published outside its node's topics.
    PublishDenied(String),
    /// A bound client subscribed outside its node's topics.
    SubscribeDenied(String),
    /// The client published faster than its rate allows (with `OverRate::Disconnect`).
    RateExceeded,
    /// Not a packet of the client's: the application withdrew its login (credentials
    /// revoked or rotated) while it was connected.
    Withdrawn,
}

impl Violation {
    /// The counter this violation belongs to.
    pub fn reason(&self) -> DisconnectReason {
        match self {
            Violation::Packet(
                PacketError::TooLarge { .. } | PacketError::SubscribeTooLarge { .. },
            ) => DisconnectReason::TooLarge,
            Violation::Packet(_) | Violation::SecondConnect => DisconnectReason::Malformed,
            Violation::PublishDenied(_) => DisconnectReason::PublishDenied,
            Violation::SubscribeDenied(_) => DisconnectReason::SubscribeDenied,
            Violation::RateExceeded => DisconnectReason::RateExceeded,
            Violation::Withdrawn => DisconnectReason::Revoked,
        }
    }
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Violation::Packet(err) => write!(f, "{err}"),
            Violation::SecondConnect => f.write_str("second CONNECT on a connected session"),
            Violation::PublishDenied(topic) => {
                write!(f, "publish to {} outside its node's topics", shown(topic))
            }
            Violation::SubscribeDenied(filter) => {
                write!(
                    f,
                    "subscribe to {} outside its node's topics",
                    shown(filter)
                )
            }
            Violation::RateExceeded => f.write_str("publish rate exceeded"),
            Violation::Withdrawn => f.write_str("login withdrawn (credentials revoked or rotated)"),
        }
    }
}

/// A client-chosen topic for a log line: escaped, at most 128 characters.
fn shown(topic: &str) -> String {
    let mut out: String = topic.chars().take(128).collect();
    if out.len() < topic.len() {
        out.push('…');
    }
    format!("{out:?}")
}

/// Where in the stream the inspector is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// At the start of a packet.
    Head,
    /// Inside an accepted packet, with this many bytes of it still to forward.
    Body(usize),
}

/// The checks of one client connection.
#[derive(Debug, Clone)]
pub struct Inspector {
    max_remaining: usize,
    policy: Option<TopicPolicy>,
    rate: Option<(TokenBucket, OverRate)>,
    state: State,
}

impl Inspector {
    /// Checks for a client: `max_remaining` is `max_payload_bytes`, `policy` its topic rules
    /// if it has any, `rate` its publish rate limit if it has one.
    pub fn new(
        max_remaining: usize,
        policy: Option<TopicPolicy>,
        rate: Option<PublishRate>,
        now: Instant,
    ) -> Self {
        Inspector {
            max_remaining,
            policy,
            rate: rate.map(|r| (TokenBucket::new(r.per_second, r.burst, now), r.over_rate)),
            state: State::Head,
        }
    }

    /// Decides on the unforwarded bytes `buf` at time `now`.
    pub fn step(&mut self, buf: &[u8], now: Instant) -> Step {
        match self.state {
            State::Body(remaining) => {
                if buf.is_empty() {
                    return Step::NeedMore;
                }
                let n = remaining.min(buf.len());
                self.state = if n == remaining {
                    State::Head
                } else {
                    State::Body(remaining - n)
                };
                Step::Forward(n)
            }
            State::Head => self.head(buf, now),
        }
    }

    fn head(&mut self, buf: &[u8], now: Instant) -> Step {
        let peeked = match peek(
            buf,
            self.max_remaining,
            self.policy
                .as_ref()
                .is_some_and(TopicPolicy::checks_subscribe),
        ) {
            Ok(Some(peeked)) => peeked,
            Ok(None) => return Step::NeedMore,
            Err(err) => return Step::Stop(Violation::Packet(err)),
        };
        match &peeked {
            Peeked::Other { header } if header.packet_type() == CONNECT => {
                return Step::Stop(Violation::SecondConnect);
            }
            Peeked::Publish { topic, .. } => {
                if let Some(policy) = &self.policy
                    && !policy.allows_publish(topic)
                {
                    return Step::Stop(Violation::PublishDenied((*topic).to_owned()));
                }
                if let Some((bucket, over_rate)) = &mut self.rate
                    && let Err(wait) = bucket.try_take(now)
                {
                    return match over_rate {
                        OverRate::Throttle => Step::Throttle(wait),
                        OverRate::Disconnect => Step::Stop(Violation::RateExceeded),
                    };
                }
            }
            Peeked::Subscribe { filters, .. } => {
                if let Some(policy) = &self.policy
                    && let Some(denied) = filters.iter().find(|f| !policy.allows_subscribe(f))
                {
                    return Step::Stop(Violation::SubscribeDenied((*denied).to_owned()));
                }
            }
            Peeked::Other { .. } => {}
        }
        let inspected = peeked.inspected();
        let rest = peeked.header().packet_len() - inspected;
        self.state = if rest == 0 {
            State::Head
        } else {
            State::Body(rest)
        };
        Step::Forward(inspected)
    }
}

#[cfg(test)]
#[path = "inspect_tests.rs"]
mod tests;
