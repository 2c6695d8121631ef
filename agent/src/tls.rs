//! TLS toward the broker (`mqtts://`): settings.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// `[tls]` settings, used when the broker URL is `mqtts://`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM file of the CA(s) that signed the broker's certificate; system roots when absent.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate chain, for brokers that require client certificates.
    #[serde(default)]
    pub client_cert: Option<PathBuf>,
    /// PEM private key of `client-cert`.
    #[serde(default)]
    pub client_key: Option<PathBuf>,
}
