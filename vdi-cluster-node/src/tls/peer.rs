//! The certificate a client presented, reduced to the names a worker's
//! code is bound to.

use rustls_pki_types::CertificateDer;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::FromDer;

/// The names of a verified client certificate: the subject's common
/// names and its DNS subject alternative names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerCertificate {
    names: Vec<String>,
}

impl PeerCertificate {
    /// The names of the end-entity certificate `der` (`None` when it
    /// cannot be read, which a certificate rustls verified always can).
    pub fn from_der(der: &CertificateDer<'_>) -> Option<Self> {
        let (_, cert) = X509Certificate::from_der(der.as_ref()).ok()?;
        let mut names: Vec<String> = cert
            .subject()
            .iter_common_name()
            .filter_map(|cn| cn.as_str().ok())
            .map(str::to_owned)
            .collect();
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            for name in &san.value.general_names {
                if let GeneralName::DNSName(dns) = name {
                    names.push((*dns).to_owned());
                }
            }
        }
        Some(Self { names })
    }

    /// The names of the connection's client certificate, if it presented
    /// one.
    pub fn of(connection: &rustls::ServerConnection) -> Option<Self> {
        connection
            .peer_certificates()?
            .first()
            .and_then(Self::from_der)
    }

    /// Whether `name` is one of the certificate's names, exactly.
    pub fn names(&self, name: &str) -> bool {
        self.names.iter().any(|n| n == name)
    }

    /// The certificate's names, for messages.
    pub fn describe(&self) -> String {
        if self.names.is_empty() {
            "no name".to_owned()
        } else {
            self.names.join(", ")
        }
    }
}
