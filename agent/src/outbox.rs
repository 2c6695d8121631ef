//! The outbox: messages kept until the hub's retained `ack` covers them.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// `[outbox]` settings.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct OutboxConfig {
    /// Most unacknowledged messages kept in memory; the oldest is dropped (and counted) first.
    #[serde(default = "default_max_messages")]
    pub max_messages: usize,
    /// Optional file where messages beyond memory are spilled, so a long outage loses less.
    #[serde(default)]
    pub spill_file: Option<PathBuf>,
    /// Size cap of the spill file in bytes.
    #[serde(default = "default_spill_max_bytes")]
    pub spill_max_bytes: u64,
}

fn default_max_messages() -> usize {
    2_000
}

fn default_spill_max_bytes() -> u64 {
    16 * 1024 * 1024
}

impl Default for OutboxConfig {
    fn default() -> Self {
        Self {
            max_messages: default_max_messages(),
            spill_file: None,
            spill_max_bytes: default_spill_max_bytes(),
        }
    }
}
