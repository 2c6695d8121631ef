//! The sitewatch v1 wire contract: topic names, node and site ids, payload types.
//!
//! This crate is pure (no I/O, no async runtime) and is the only place the contract lives;
//! `docs/PROTOCOL.md` documents it with examples and must change together with this crate.

pub mod id;
pub mod payload;
pub mod sample;
pub mod sign;
pub mod topic;

pub use id::{IdError, NodeId, SiteId};
pub use payload::{
    Ack, Envelope, Heartbeat, Info, Metrics, PayloadError, Probe, Scan, ScanHost, Status,
    StorageHealth, StorageState,
};
pub use sample::Sample;
pub use sign::{NodeKey, SignError};
pub use topic::{NodeTopic, Prefix, Topic, TopicError};

/// Version of the wire contract; it is part of the default topic prefix.
pub const PROTOCOL_VERSION: u32 = 1;
