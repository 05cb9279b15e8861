//! TLS between hosts: the control plane and its workers, each with a
//! certificate, verifying the other with a configured CA.
//!
//! `serve` and `worker` take the same flags ([`TlsArgs`](crate::config::TlsArgs)):
//! `--tls-cert` and `--tls-key` (PEM) put the host's listeners on TLS and
//! are presented as its client certificate when it calls the other;
//! `--tls-ca` is the CA that verifies the other side (the worker
//! verifies the control plane, the control plane the worker; without it,
//! the public roots verify a server and no client certificate is checked);
//! `--tls-require-client-cert` makes the other side present one (mutual
//! TLS). With a CA, a host's calls go over `https://` only.
//!
//! Rustls with the ring provider, so building needs cargo alone. The
//! parts:
//!
//! * `identity` — [`Identity`]: the certificate and key, reloaded on
//!   SIGHUP or when a file changes, without dropping open connections;
//! * `ca` — [`Ca`]: the CA bundle, reloaded alike, that verifies the other
//!   side's certificate at each new handshake;
//! * `watch` — the reloads: SIGHUP, and the files' modification times;
//! * `connector` — [`GrpcTlsConnector`], the gRPC client's connections
//!   to a `grpcs://` control plane;
//! * `peer` — [`PeerCertificate`]: the names of the certificate a client
//!   presented (its CN and DNS SANs), to which `serve` binds a worker's
//!   code;
//! * `stream` — [`MaybeTls`], a connection over TLS or not, and
//!   [`TlsIncoming`], the worker's listener for axum.
//!
//! No certificate is committed: the tests make theirs with rcgen.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use tokio_util::sync::CancellationToken;

mod ca;
mod connector;
mod identity;
mod peer;
mod stream;
mod watch;

pub use ca::Ca;
pub use connector::GrpcTlsConnector;
pub use identity::Identity;
pub use peer::PeerCertificate;
pub use stream::{HANDSHAKE_TIMEOUT, MaybeTls, TlsIncoming};
pub use tokio_rustls::TlsAcceptor;
pub use watch::WATCH_EVERY;

use watch::Reloadable;

/// What `--tls-*` resolved to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsSettings {
    /// This host's certificate chain and key (`--tls-cert`, `--tls-key`).
    pub identity: Option<(PathBuf, PathBuf)>,
    /// The CA that verifies the other side (`--tls-ca`).
    pub ca: Option<PathBuf>,
    /// The other side must present a certificate from the CA
    /// (`--tls-require-client-cert`).
    pub require_client_cert: bool,
}

/// A TLS file or setting is wrong; the message names the flag.
#[derive(Debug, thiserror::Error)]
#[error("{flag}: {message}")]
pub struct TlsError {
    flag: &'static str,
    message: String,
}

impl TlsError {
    /// A setting that does not hold together.
    pub fn setting(flag: &'static str, message: impl Into<String>) -> Self {
        Self {
            flag,
            message: message.into(),
        }
    }

    fn file(flag: &'static str, path: &Path, why: impl fmt::Display) -> Self {
        Self::setting(flag, format!("cannot use {}: {why}", path.display()))
    }

    /// The flag at fault.
    pub fn flag(&self) -> &'static str {
        self.flag
    }
}

/// The process's crypto provider: ring.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The loaded TLS of one process: its identity, the CA, and the server
/// and client configurations built from them.
#[derive(Debug, Clone)]
pub struct Tls {
    identity: Option<Arc<Identity>>,
    server: Option<Arc<ServerConfig>>,
    client: Arc<ClientConfig>,
    ca: Option<Arc<Ca>>,
    require_client_cert: bool,
}

impl Tls {
    /// Reads the files of `settings`: every error names its flag. With
    /// `--tls-require-client-cert`, a handshake without a client
    /// certificate fails.
    pub fn load(settings: &TlsSettings) -> Result<Self, TlsError> {
        Self::load_with(settings, true)
    }

    /// As [`load`](Self::load); with `in_handshake` false, a handshake
    /// without a client certificate succeeds even with
    /// `--tls-require-client-cert`, and the requirement is left to the
    /// server's routes ([`requires_client_cert`](Self::requires_client_cert)):
    /// the control plane requires one of workers only, not of operators
    /// or the exam application. A certificate presented is verified
    /// either way.
    pub fn load_with(settings: &TlsSettings, in_handshake: bool) -> Result<Self, TlsError> {
        if settings.require_client_cert && settings.ca.is_none() {
            return Err(TlsError::setting(
                "--tls-require-client-cert",
                "needs --tls-ca, the CA that verifies the other side's certificate",
            ));
        }
        let provider = provider();
        let identity = match &settings.identity {
            Some((cert, key)) => Some(Identity::load(cert, key, Arc::clone(&provider))?),
            None => None,
        };
        let ca = match &settings.ca {
            Some(path) => Some(Ca::load(
                path,
                Arc::clone(&provider),
                settings.require_client_cert && in_handshake,
            )?),
            None => None,
        };
        let server = match &identity {
            Some(identity) => Some(server_config(identity, ca.as_ref(), &provider)?),
            None => None,
        };
        let client = client_config(identity.as_ref(), ca.as_ref(), &provider)?;
        Ok(Self {
            identity,
            server,
            client: Arc::new(client),
            ca,
            require_client_cert: settings.require_client_cert,
        })
    }

    /// The acceptor of a listener speaking `protocols` (ALPN names:
    /// `http/1.1`, `h2`), when this host has a certificate.
    pub fn acceptor(&self, protocols: &[&str]) -> Option<TlsAcceptor> {
        let mut config = ServerConfig::clone(self.server.as_ref()?);
        config.alpn_protocols = protocols.iter().map(|p| p.as_bytes().to_vec()).collect();
        Some(TlsAcceptor::from(Arc::new(config)))
    }

    /// The rustls configuration of this host's calls (the CA, or the
    /// public roots; its certificate when the other side asks).
    pub fn client_config(&self) -> ClientConfig {
        (*self.client).clone()
    }

    /// The connector of this host's gRPC calls to a `grpcs://` control
    /// plane: its client configuration, HTTP/2 only.
    pub fn grpc_connector(&self) -> GrpcTlsConnector {
        GrpcTlsConnector::new(self.client_config())
    }

    /// Whether a CA is configured: calls then go over `https://` (or
    /// `grpcs://`) only.
    pub fn https_only(&self) -> bool {
        self.ca.is_some()
    }

    /// Whether the other side must present a certificate.
    pub fn requires_client_cert(&self) -> bool {
        self.require_client_cert
    }

    /// The scheme of this host's listeners: `https` or `http`.
    pub fn scheme(&self) -> &'static str {
        if self.server.is_some() {
            "https"
        } else {
            "http"
        }
    }

    /// Reloads the certificate and the CA bundle on SIGHUP and on file
    /// change, until `shutdown`; nothing to do without either.
    pub fn watch(&self, shutdown: CancellationToken) {
        let identity = self
            .identity
            .iter()
            .map(|i| Arc::clone(i) as Arc<dyn Reloadable>);
        let ca = self.ca.iter().map(|c| Arc::clone(c) as Arc<dyn Reloadable>);
        watch::watch(identity.chain(ca).collect(), shutdown);
    }
}

fn server_config(
    identity: &Arc<Identity>,
    ca: Option<&Arc<Ca>>,
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<ServerConfig>, TlsError> {
    let builder = ServerConfig::builder_with_provider(Arc::clone(provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::setting("--tls-cert", e.to_string()))?;
    let builder = match ca {
        Some(ca) => builder.with_client_cert_verifier(Arc::clone(ca) as _),
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(
        builder.with_cert_resolver(Arc::clone(identity) as _),
    ))
}

fn client_config(
    identity: Option<&Arc<Identity>>,
    ca: Option<&Arc<Ca>>,
    provider: &Arc<CryptoProvider>,
) -> Result<ClientConfig, TlsError> {
    let builder = ClientConfig::builder_with_provider(Arc::clone(provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::setting("--tls-ca", e.to_string()))?;
    let builder = match ca {
        // `dangerous` is rustls's door to any verifier; this one is
        // webpki's own, over the bundle as last read.
        Some(ca) => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::clone(ca) as _),
        None => builder.with_root_certificates(RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        }),
    };
    let mut config = match identity {
        Some(identity) => builder.with_client_cert_resolver(Arc::clone(identity) as _),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

#[cfg(test)]
mod tests;
