//! The CA bundle of `--tls-ca`, read again on SIGHUP or when the file
//! changes, like the certificate: the next handshake verifies the other
//! side against the new bundle, without a restart. Open connections keep
//! what they were verified with.
//!
//! [`Ca`] is both verifiers of a host: of a client's certificate (the
//! host as a server) and of a server's (the host as a client). Each
//! handshake asks the verifiers built from the bundle last read; a
//! reload that fails (a half-written file, no certificate in it) is
//! logged and the previous bundle stays.
//!
//! It names no root hints to clients (rustls asks for them by reference,
//! and they change with the bundle): a client presents its certificate
//! anyway, and the verification is the same.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::SystemTime;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

use super::TlsError;
use super::identity::{read_certs, stamp};
use super::watch::Reloadable;

/// The verifiers built from one reading of the bundle.
#[derive(Debug, Clone)]
struct Verifiers {
    client: Arc<dyn ClientCertVerifier>,
    server: Arc<WebPkiServerVerifier>,
}

/// The CA bundle that verifies the other side, reloadable.
#[derive(Debug)]
pub struct Ca {
    path: PathBuf,
    provider: Arc<CryptoProvider>,
    mandatory: bool,
    current: RwLock<Verifiers>,
    stamp: Mutex<Option<SystemTime>>,
}

fn build(
    path: &Path,
    provider: &Arc<CryptoProvider>,
    mandatory: bool,
) -> Result<Verifiers, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in read_certs(path, "--tls-ca")? {
        roots
            .add(cert)
            .map_err(|e| TlsError::file("--tls-ca", path, e))?;
    }
    let roots = Arc::new(roots);
    let client =
        WebPkiClientVerifier::builder_with_provider(Arc::clone(&roots), Arc::clone(provider));
    // Without the requirement, a certificate presented is still verified
    // (and binds a worker's code); none is fine.
    let client = if mandatory {
        client
    } else {
        client.allow_unauthenticated()
    };
    let client = client
        .build()
        .map_err(|e| TlsError::setting("--tls-ca", e.to_string()))?;
    let server = WebPkiServerVerifier::builder_with_provider(roots, Arc::clone(provider))
        .build()
        .map_err(|e| TlsError::setting("--tls-ca", e.to_string()))?;
    Ok(Verifiers { client, server })
}

impl Ca {
    /// Reads the bundle at `path`; a client must present a certificate
    /// when `mandatory`.
    pub fn load(
        path: &Path,
        provider: Arc<CryptoProvider>,
        mandatory: bool,
    ) -> Result<Arc<Self>, TlsError> {
        let read_at = stamp(path);
        let verifiers = build(path, &provider, mandatory)?;
        Ok(Arc::new(Self {
            path: path.to_owned(),
            provider,
            mandatory,
            current: RwLock::new(verifiers),
            stamp: Mutex::new(read_at),
        }))
    }

    fn verifiers(&self) -> Verifiers {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl Reloadable for Ca {
    fn reload(&self) -> Result<(), TlsError> {
        let read_at = stamp(&self.path);
        let verifiers = build(&self.path, &self.provider, self.mandatory)?;
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = verifiers;
        *self.stamp.lock().unwrap_or_else(PoisonError::into_inner) = read_at;
        Ok(())
    }

    fn changed(&self) -> bool {
        *self.stamp.lock().unwrap_or_else(PoisonError::into_inner) != stamp(&self.path)
    }

    fn what(&self) -> &'static str {
        "TLS CA bundle"
    }

    fn path(&self) -> &Path {
        &self.path
    }
}

impl ClientCertVerifier for Ca {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.verifiers()
            .client
            .verify_client_cert(end_entity, intermediates, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        ClientCertVerifier::verify_tls12_signature(
            self.verifiers().client.as_ref(),
            message,
            cert,
            dss,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        ClientCertVerifier::verify_tls13_signature(
            self.verifiers().client.as_ref(),
            message,
            cert,
            dss,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        ClientCertVerifier::supported_verify_schemes(self.verifiers().client.as_ref())
    }
}

impl ServerCertVerifier for Ca {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.verifiers().server.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        )
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        ServerCertVerifier::verify_tls12_signature(
            self.verifiers().server.as_ref(),
            message,
            cert,
            dss,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        ServerCertVerifier::verify_tls13_signature(
            self.verifiers().server.as_ref(),
            message,
            cert,
            dss,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        ServerCertVerifier::supported_verify_schemes(self.verifiers().server.as_ref())
    }
}
