//! TLS for the guard's second listener: the rustls server configuration (ring provider) built
//! from PEM files, and its replacement at runtime.
//!
//! Handshakes run in each connection's own task under `connect_timeout`, never in the accept
//! loop (rumqttd's TLS listener awaits each handshake inside its accept loop, so a single idle
//! socket stalls every new client). [`TlsReloader::reload`] re-reads the files and swaps the
//! configuration for new connections; if anything is wrong it keeps the old one and says
//! which file and why.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::RootCertStore;
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use thiserror::Error;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tracing::info;

use crate::config::TlsFiles;

/// Why a TLS configuration cannot be built from its files. Each message names the file.
#[derive(Debug, Error)]
pub enum TlsError {
    /// A file cannot be read.
    #[error("cannot read the TLS {what} {}: {source} — check the path and its permissions", path.display())]
    Read {
        /// Which file: certificate, key or client CA.
        what: &'static str,
        /// Its path.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// A file holds no usable PEM block of the kind expected.
    #[error("the TLS {what} {} holds no {expected}: {detail}", path.display())]
    BadPem {
        /// Which file.
        what: &'static str,
        /// Its path.
        path: PathBuf,
        /// The PEM block expected, e.g. `-----BEGIN CERTIFICATE-----`.
        expected: &'static str,
        /// What the parser said.
        detail: String,
    },
    /// The client CA file holds a certificate rustls cannot use as a trust anchor.
    #[error("the TLS client CA {}: {detail} — it must hold X.509 CA certificates", path.display())]
    BadClientCa {
        /// Its path.
        path: PathBuf,
        /// What rustls said.
        detail: String,
    },
    /// The key does not fit the certificate, or rustls refuses them.
    #[error(
        "the TLS certificate {} and key {} cannot be used together: {detail} — is the key the \
         one the certificate was issued for?", cert.display(), key.display()
    )]
    CertKey {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// What rustls said.
        detail: String,
    },
    /// `reload_tls` on a broker without a TLS listener.
    #[error("no TLS listener is configured: nothing to reload")]
    NotConfigured,
}

/// Builds the server configuration from `files`.
pub fn server_config(files: &TlsFiles) -> Result<Arc<ServerConfig>, TlsError> {
    let certs = read_certs(&files.cert, "certificate")?;
    let key = read_key(&files.key)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|err| TlsError::CertKey {
            cert: files.cert.clone(),
            key: files.key.clone(),
            detail: err.to_string(),
        })?;
    let builder = match &files.client_ca {
        None => builder.with_no_client_auth(),
        Some(path) => {
            let mut roots = RootCertStore::empty();
            for cert in read_certs(path, "client CA")? {
                roots.add(cert).map_err(|err| TlsError::BadClientCa {
                    path: path.clone(),
                    detail: err.to_string(),
                })?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|err| TlsError::BadClientCa {
                    path: path.clone(),
                    detail: err.to_string(),
                })?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let config = builder
        .with_single_cert(certs, key)
        .map_err(|err| TlsError::CertKey {
            cert: files.cert.clone(),
            key: files.key.clone(),
            detail: err.to_string(),
        })?;
    Ok(Arc::new(config))
}

fn read(path: &Path, what: &'static str) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        what,
        path: path.to_owned(),
        source,
    })
}

fn read_certs(path: &Path, what: &'static str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(path, what)?;
    let bad = |detail: String| TlsError::BadPem {
        what,
        path: path.to_owned(),
        expected: "-----BEGIN CERTIFICATE----- block",
        detail,
    };
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| bad(err.to_string()))?;
    if certs.is_empty() {
        return Err(bad("the file is empty or holds other PEM blocks".to_owned()));
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read(path, "key")?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|err| TlsError::BadPem {
        what: "key",
        path: path.to_owned(),
        expected: "-----BEGIN PRIVATE KEY----- (or RSA/EC PRIVATE KEY) block",
        detail: err.to_string(),
    })
}

/// The TLS configuration in force, and the files to reload it from. Cheap to clone.
#[derive(Clone)]
pub struct TlsReloader {
    files: TlsFiles,
    current: Arc<watch::Sender<Arc<ServerConfig>>>,
}

impl std::fmt::Debug for TlsReloader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsReloader")
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

impl TlsReloader {
    /// Loads `files` for the first time.
    pub(crate) fn load(files: &TlsFiles) -> Result<Self, TlsError> {
        let config = server_config(files)?;
        Ok(TlsReloader {
            files: files.clone(),
            current: Arc::new(watch::Sender::new(config)),
        })
    }

    /// Re-reads the certificate, key and client CA files. On success new connections use
    /// them (established ones keep their session); on error nothing changes and the error
    /// names the file at fault. Reads a few small files: fine to call from async code.
    pub fn reload(&self) -> Result<(), TlsError> {
        let config = server_config(&self.files)?;
        self.current.send_replace(config);
        info!(
            cert = %self.files.cert.display(),
            key = %self.files.key.display(),
            "TLS certificate reloaded"
        );
        Ok(())
    }

    /// An acceptor with the configuration in force now.
    pub(crate) fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(self.current.borrow().clone())
    }
}
