//! This host's certificate and key, read from their PEM files and read
//! again on SIGHUP or when a file changes, without a restart.
//!
//! [`Identity`] answers rustls both as a server (the certificate every
//! new handshake presents) and as a client (the certificate presented to
//! a peer that asks for one), so one file pair serves a host's listener
//! and its calls. A reload swaps what the next handshake gets; open
//! connections keep theirs. A reload that fails (a half-written file, a
//! key that does not match) is logged and the previous pair stays.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::SystemTime;

use rustls::SignatureScheme;
use rustls::client::ResolvesClientCert;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::TlsError;
use super::watch::Reloadable;

/// A certificate chain and key that can be read again.
#[derive(Debug)]
pub struct Identity {
    cert_path: PathBuf,
    key_path: PathBuf,
    provider: Arc<CryptoProvider>,
    current: RwLock<Arc<CertifiedKey>>,
    stamps: Mutex<Stamps>,
}

/// The files' modification times at the last read.
type Stamps = (Option<SystemTime>, Option<SystemTime>);

/// A file's modification time, when it can be read.
pub(super) fn stamp(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// Reads the certificate chain (or bundle) of `flag`.
pub(super) fn read_certs(
    path: &Path,
    flag: &'static str,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .map_err(|e| TlsError::file(flag, path, e))?;
    if certs.is_empty() {
        return Err(TlsError::file(flag, path, "no PEM certificate in the file"));
    }
    Ok(certs)
}

fn load(
    cert_path: &Path,
    key_path: &Path,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, TlsError> {
    let certs = read_certs(cert_path, "--tls-cert")?;
    let key = PrivateKeyDer::from_pem_file(key_path)
        .map_err(|e| TlsError::file("--tls-key", key_path, e))?;
    CertifiedKey::from_der(certs, key, provider).map_err(|e| {
        TlsError::file(
            "--tls-key",
            key_path,
            format!("does not fit --tls-cert: {e}"),
        )
    })
}

impl Identity {
    /// Reads the pair, or says which file is wrong and why.
    pub fn load(
        cert_path: &Path,
        key_path: &Path,
        provider: Arc<CryptoProvider>,
    ) -> Result<Arc<Self>, TlsError> {
        let stamps = (stamp(cert_path), stamp(key_path));
        let key = load(cert_path, key_path, &provider)?;
        Ok(Arc::new(Self {
            cert_path: cert_path.to_owned(),
            key_path: key_path.to_owned(),
            provider,
            current: RwLock::new(Arc::new(key)),
            stamps: Mutex::new(stamps),
        }))
    }

    /// The pair the next handshake presents.
    pub fn current(&self) -> Arc<CertifiedKey> {
        Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner))
    }
}

impl Reloadable for Identity {
    /// Reads the files again; the next handshakes present the new pair.
    /// On an error the previous pair stays.
    fn reload(&self) -> Result<(), TlsError> {
        let stamps = (stamp(&self.cert_path), stamp(&self.key_path));
        let key = load(&self.cert_path, &self.key_path, &self.provider)?;
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(key);
        *self.stamps.lock().unwrap_or_else(PoisonError::into_inner) = stamps;
        Ok(())
    }

    fn changed(&self) -> bool {
        let now = (stamp(&self.cert_path), stamp(&self.key_path));
        *self.stamps.lock().unwrap_or_else(PoisonError::into_inner) != now
    }

    fn what(&self) -> &'static str {
        "TLS certificate"
    }

    fn path(&self) -> &Path {
        &self.cert_path
    }
}

impl ResolvesServerCert for Identity {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

impl ResolvesClientCert for Identity {
    fn resolve(&self, _: &[&[u8]], _: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }

    fn has_certs(&self) -> bool {
        true
    }
}
