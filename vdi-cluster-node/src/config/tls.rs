//! The TLS flags, flattened into both `vdi-cluster worker`
//! ([`WorkerArgs`](super::WorkerArgs)) and `vdi-cluster serve`: the same
//! names mean the same on the control plane and its workers (see
//! [`crate::tls`]).

use std::path::PathBuf;

use clap::builder::BoolishValueParser;
use clap::{ArgAction, Args};

use crate::tls::{TlsError, TlsSettings};

/// `--tls-cert`, `--tls-key`, `--tls-ca`, `--tls-require-client-cert`.
#[derive(Debug, Clone, Default, Args)]
pub struct TlsArgs {
    /// This host's certificate chain (PEM): its listeners speak TLS, and
    /// its calls present it when the other side asks. Reloaded on SIGHUP
    /// and when the file changes; open connections are kept.
    #[arg(long, env = "VDI_TLS_CERT", value_name = "PEM", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// The private key of `--tls-cert` (PEM).
    #[arg(long, env = "VDI_TLS_KEY", value_name = "PEM", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// The CA (PEM) that verifies the other side: the worker verifies the
    /// control plane with it, the control plane the worker. With it, calls
    /// go over https:// only. Unset: the public roots verify servers.
    #[arg(long, env = "VDI_TLS_CA", value_name = "PEM")]
    pub tls_ca: Option<PathBuf>,

    /// Mutual TLS: the other side must present a certificate from
    /// `--tls-ca`. On `serve`, workers' heartbeats, registrations, joins
    /// and deregistrations need one naming the worker's code (its CN or a DNS
    /// SAN), while operators and the exam application need none; on
    /// `worker`, the control plane's calls need one.
    #[arg(long, env = "VDI_TLS_REQUIRE_CLIENT_CERT", default_value_t = false,
          num_args = 0..=1, default_missing_value = "true", action = ArgAction::Set,
          value_parser = BoolishValueParser::new(), value_name = "BOOL")]
    pub tls_require_client_cert: bool,
}

impl TlsArgs {
    /// The settings, checked to hold together (a flag without the one it
    /// needs is refused, naming it); the files are read by
    /// [`Tls::load`](crate::tls::Tls::load).
    pub fn settings(&self) -> Result<TlsSettings, TlsError> {
        let identity = match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Some((cert.clone(), key.clone())),
            (None, None) => None,
            (Some(_), None) => return Err(TlsError::setting("--tls-cert", "needs --tls-key")),
            (None, Some(_)) => return Err(TlsError::setting("--tls-key", "needs --tls-cert")),
        };
        if self.tls_require_client_cert && self.tls_ca.is_none() {
            return Err(TlsError::setting(
                "--tls-require-client-cert",
                "needs --tls-ca, the CA that verifies the other side's certificate",
            ));
        }
        if self.tls_require_client_cert && identity.is_none() {
            return Err(TlsError::setting(
                "--tls-require-client-cert",
                "needs --tls-cert and --tls-key: client certificates are asked for over TLS",
            ));
        }
        Ok(TlsSettings {
            identity,
            ca: self.tls_ca.clone(),
            require_client_cert: self.tls_require_client_cert,
        })
    }
}
