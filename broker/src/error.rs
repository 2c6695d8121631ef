//! The one error type of the broker library; each message says what to do next.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use thiserror::Error;

/// Why the broker could not start.
#[derive(Debug, Error)]
pub enum BrokerError {
    /// A configuration value is out of range.
    #[error("invalid broker configuration: {0}")]
    InvalidConfig(String),
    /// The TLS certificate, key or client CA cannot be used.
    #[error("{0}")]
    Tls(#[source] crate::tls::TlsError),
    /// The public MQTT address could not be bound.
    #[error(
        "cannot listen for MQTT on {addr}: {source} — is another MQTT broker running there? \
         stop it or choose another listen address"
    )]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
    /// No free port on 127.0.0.1 for the embedded rumqttd.
    #[error(
        "cannot reserve a port on 127.0.0.1 for the embedded rumqttd: {0} — is the loopback interface up?"
    )]
    InternalPort(#[source] io::Error),
    /// The OS refused to start rumqttd's thread.
    #[error("cannot start the embedded rumqttd thread: {0}")]
    Spawn(#[source] io::Error),
    /// rumqttd's thread ended during startup; its own error is in the log just before.
    #[error(
        "the embedded rumqttd stopped while starting on {addr} (see the rumqttd error logged \
         above; the internal port may have been taken: try again)"
    )]
    RumqttdStopped {
        /// Internal address rumqttd was told to listen on.
        addr: SocketAddr,
    },
    /// rumqttd did not answer an MQTT CONNECT in time.
    #[error(
        "the embedded rumqttd did not accept MQTT connections on {addr} within {waited:?}: \
         {last_error} — the machine may be overloaded; try again"
    )]
    RumqttdNotReady {
        /// Internal address rumqttd was told to listen on.
        addr: SocketAddr,
        /// How long the guard waited.
        waited: Duration,
        /// The last probe failure.
        last_error: String,
    },
}
