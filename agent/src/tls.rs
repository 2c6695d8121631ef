//! TLS toward the broker (`mqtts://`): the `[tls]` settings and the rustls client config.
//!
//! rustls with the `ring` provider (no aws-lc-rs: smaller, and it cross-builds for the Pis
//! with a plain C compiler). The broker's certificate is verified against `ca-file` when set,
//! else against the system's roots (read by `rustls-native-certs` from `/etc/ssl/certs`, so
//! no root store is compiled into the binary). Every PEM file is read and checked when the
//! configuration is loaded, so `validate` and a SIGHUP reload catch a bad file, naming it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore};
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

impl TlsConfig {
    /// Whether any file is configured (the section is more than defaults).
    pub fn is_set(&self) -> bool {
        self.ca_file.is_some() || self.client_cert.is_some() || self.client_key.is_some()
    }
}

/// Why a TLS client configuration cannot be built. Each message names the `[tls]` key and
/// the file, and says what to do.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("`tls.{key}`: cannot read {}: {source} — check the path and its permissions", path.display())]
    Read {
        key: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "`tls.{key}`: {} is not a valid PEM file ({detail}) — it must hold \
         -----BEGIN {what}----- blocks", path.display()
    )]
    BadPem {
        key: &'static str,
        path: PathBuf,
        what: &'static str,
        detail: String,
    },
    #[error(
        "`tls.{key}`: {} holds no {what} — it must hold -----BEGIN {what}----- blocks",
        path.display()
    )]
    Empty {
        key: &'static str,
        path: PathBuf,
        what: &'static str,
    },
    #[error("`tls.ca-file`: {}: {source} — the file must hold X.509 CA certificates", path.display())]
    BadCa {
        path: PathBuf,
        #[source]
        source: rustls::Error,
    },
    #[error(
        "`tls.client-cert` and `tls.client-key` go together: set both (a certificate and its \
         private key) or neither"
    )]
    HalfClientAuth,
    #[error(
        "`tls.client-cert` / `tls.client-key`: {source} — check that the key belongs to the \
         certificate"
    )]
    ClientAuth {
        #[source]
        source: rustls::Error,
    },
    #[error(
        "no system CA certificates found ({detail}) — install the ca-certificates package or \
         set `tls.ca-file` to the CA that signed the broker's certificate"
    )]
    NoSystemRoots { detail: String },
    #[error("cannot set up TLS: {0}")]
    Rustls(#[from] rustls::Error),
}

/// Builds the rustls client configuration: roots from `ca-file` or the system, the client
/// certificate when configured. Reads every configured file.
pub fn client_config(cfg: &TlsConfig) -> Result<Arc<ClientConfig>, TlsError> {
    let roots = match &cfg.ca_file {
        Some(path) => ca_roots(path)?,
        None => system_roots()?,
    };
    let builder =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots);
    let config = match (&cfg.client_cert, &cfg.client_key) {
        (Some(cert), Some(key)) => builder
            .with_client_auth_cert(cert_chain(cert)?, private_key(key)?)
            .map_err(|source| TlsError::ClientAuth { source })?,
        (None, None) => builder.with_no_client_auth(),
        _ => return Err(TlsError::HalfClientAuth),
    };
    Ok(Arc::new(config))
}

/// Checks the `[tls]` files without keeping the result: every configured file is read and
/// parsed, and for a `mqtts://` broker the whole client config (with the system roots when
/// no `ca-file` is set) is built.
pub fn validate(cfg: &TlsConfig, broker_is_tls: bool) -> Result<(), TlsError> {
    if broker_is_tls {
        return client_config(cfg).map(|_| ());
    }
    if let Some(path) = &cfg.ca_file {
        ca_roots(path)?;
    }
    match (&cfg.client_cert, &cfg.client_key) {
        (Some(cert), Some(key)) => {
            cert_chain(cert)?;
            private_key(key)?;
            Ok(())
        }
        (None, None) => Ok(()),
        _ => Err(TlsError::HalfClientAuth),
    }
}

/// A hash of the configured files' contents, so a reload notices renewed certificates even
/// when their paths stayed the same.
pub fn fingerprint(cfg: &TlsConfig) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for path in [&cfg.ca_file, &cfg.client_cert, &cfg.client_key] {
        path.hash(&mut h);
        if let Some(path) = path {
            std::fs::read(path).ok().hash(&mut h);
        }
    }
    h.finish()
}

fn read(key: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        key,
        path: path.to_owned(),
        source,
    })
}

fn certificates(key: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(key, path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::BadPem {
            key,
            path: path.to_owned(),
            what: "CERTIFICATE",
            detail: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Empty {
            key,
            path: path.to_owned(),
            what: "CERTIFICATE",
        });
    }
    Ok(certs)
}

fn ca_roots(path: &Path) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in certificates("ca-file", path)? {
        roots.add(cert).map_err(|source| TlsError::BadCa {
            path: path.to_owned(),
            source,
        })?;
    }
    Ok(roots)
}

fn cert_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    certificates("client-cert", path)
}

fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read("client-key", path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => TlsError::Empty {
            key: "client-key",
            path: path.to_owned(),
            what: "PRIVATE KEY",
        },
        other => TlsError::BadPem {
            key: "client-key",
            path: path.to_owned(),
            what: "PRIVATE KEY",
            detail: other.to_string(),
        },
    })
}

/// The system's CA certificates (Debian: `/etc/ssl/certs`; `SSL_CERT_FILE` / `SSL_CERT_DIR`
/// override). Unparsable ones are skipped; none at all is an error.
fn system_roots() -> Result<RootCertStore, TlsError> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        let detail = match found.errors.first() {
            Some(err) => err.to_string(),
            None => "the system trust store is empty".to_owned(),
        };
        return Err(TlsError::NoSystemRoots { detail });
    }
    Ok(roots)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn unreadable_and_invalid_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let missing = TlsConfig {
            ca_file: Some(dir.path().join("nope.pem")),
            ..TlsConfig::default()
        };
        let e = validate(&missing, false).unwrap_err().to_string();
        assert!(e.contains("tls.ca-file") && e.contains("nope.pem"), "{e}");

        let garbage = write(dir.path(), "ca.pem", "hello, not a certificate\n");
        let e = validate(
            &TlsConfig {
                ca_file: Some(garbage),
                ..TlsConfig::default()
            },
            true,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("ca.pem") && e.contains("CERTIFICATE"), "{e}");

        let bad_body = write(
            dir.path(),
            "bad.pem",
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        );
        let e = validate(
            &TlsConfig {
                ca_file: Some(bad_body),
                ..TlsConfig::default()
            },
            true,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("tls.ca-file") && e.contains("bad.pem"), "{e}");
    }

    #[test]
    fn the_fingerprint_follows_file_contents() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = TlsConfig {
            ca_file: Some(write(dir.path(), "ca.pem", "one")),
            ..TlsConfig::default()
        };
        let before = fingerprint(&cfg);
        assert_eq!(before, fingerprint(&cfg));
        write(dir.path(), "ca.pem", "two");
        assert_ne!(before, fingerprint(&cfg));
    }

    #[test]
    fn client_cert_needs_its_key() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = TlsConfig {
            client_cert: Some(write(dir.path(), "c.pem", "")),
            ..TlsConfig::default()
        };
        let e = validate(&cfg, false).unwrap_err().to_string();
        assert!(e.contains("client-key"), "{e}");
        let cfg = TlsConfig {
            client_cert: Some(write(dir.path(), "c.pem", "")),
            client_key: Some(write(dir.path(), "k.pem", "no key here")),
            ..TlsConfig::default()
        };
        let e = validate(&cfg, false).unwrap_err().to_string();
        assert!(e.contains("tls.client-cert") && e.contains("c.pem"), "{e}");
    }
}
