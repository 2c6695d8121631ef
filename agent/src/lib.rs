//! The sitewatch agent: publishes heartbeats and metrics of one machine over MQTT.
//!
//! [`run`] is the whole agent; the `sitewatch-agent` binary (through [`run_with_reload`],
//! for SIGHUP) and the hub (which embeds an agent for its own machine) call it with an
//! [`AgentConfig`] and a shutdown token.
//!
//! Code map: [`config`] (file, overrides, validation) and [`cli`]; collectors in
//! [`collect`] and [`checks`]; the main loop in [`publisher`]; store-and-forward in
//! [`outbox`] (unacknowledged messages, spill file); the MQTT side in [`connection`]
//! (in-flight window), [`link`] (options, event-loop task), [`backoff`] (jittered
//! reconnects), [`tls`] (rustls) and [`topics`]; [`reload`] decides what a SIGHUP changes.
//! The LAN scanner and latency probes live in [`scan`]; [`sd_notify`] tells systemd when
//! the binary is ready, reloading or stopping.

pub mod backoff;
pub mod broker_url;
pub mod checks;
pub mod cli;
pub mod collect;
pub mod config;
pub mod connection;
pub mod info;
pub mod link;
pub mod outbox;
pub mod publisher;
pub mod reload;
pub mod scan;
pub mod sd_notify;
pub mod session;
pub mod tls;
pub mod topics;

pub use collect::{CollectError, Collector, collect_once};
pub use config::{AgentConfig, BrokerUrl, BrokerUrlError, ConfigError};
pub use publisher::{run, run_with_reload};
pub use session::Session;
