//! Checks configured per node (`[[checks]]`): systemd unit, process, path, TCP port, HTTP.
//! Results travel in the metrics payload as `proto::payload::CheckResult`.

mod config;

pub use config::{CheckConfig, CheckKind, DEFAULT_CHECK_TIMEOUT_MS};
