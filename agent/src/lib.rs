//! The sitewatch agent: publishes heartbeats and metrics of one machine over MQTT.
//!
//! [`run`] is the whole agent; the `sitewatch-agent` binary and the hub (which embeds an
//! agent for its own machine) both call it with an [`AgentConfig`] and a shutdown token.
//! Collectors live in [`collect`], the MQTT connection in [`link`], the main loop in
//! [`publisher`].

pub mod broker_url;
pub mod checks;
pub mod cli;
pub mod collect;
pub mod config;
pub mod info;
pub mod link;
pub mod outbox;
pub mod publisher;
pub mod session;
pub mod tls;

pub use collect::{CollectError, Collector, collect_once};
pub use config::{AgentConfig, BrokerUrl, BrokerUrlError, ConfigError};
pub use publisher::run;
pub use session::Session;
