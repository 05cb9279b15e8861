//! Mutual TLS at the workers' routes: a worker's code is bound to the
//! client certificate it connected with.
//!
//! The listener (HTTP) and the gRPC server put the names of a verified
//! client certificate (its CN and DNS SANs) in each request; a worker's
//! heartbeat, registration, join and deregistration are then accepted
//! only for a code among them, so a host holding another worker's token still
//! cannot speak for it. With `--tls-require-client-cert`, a worker's call
//! without a certificate is refused; operators (an ADMIN JWT) and the
//! exam application need none.

use std::convert::Infallible;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use vdi_cluster_core::{ValidationError, WorkerId};
use vdi_cluster_node::tls::PeerCertificate;

use crate::auth::Principal;
use crate::error::ApiError;
use crate::state::AppState;

/// The client certificate of the request's connection, if it presented
/// one.
#[derive(Debug, Clone, Default)]
pub struct PeerCert(pub Option<PeerCertificate>);

impl<S: Send + Sync> FromRequestParts<S> for PeerCert {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Infallible> {
        Ok(Self(parts.extensions.get::<PeerCertificate>().cloned()))
    }
}

/// Refuses a worker's call for `code` (`None`: a registration that asks
/// for a code to be assigned) unless its client certificate names that
/// code; without a certificate, refuses it only where mutual TLS is
/// required. An operator's call (a JWT) is not a worker's.
pub(crate) fn ensure_certificate(
    state: &AppState,
    caller: &Principal,
    cert: &PeerCert,
    code: Option<&WorkerId>,
) -> Result<(), ApiError> {
    if matches!(caller, Principal::User(_)) {
        return Ok(());
    }
    match (&cert.0, code) {
        (Some(cert), Some(code)) if cert.names(code.as_str()) => Ok(()),
        (Some(cert), Some(code)) => Err(ApiError::forbidden(format!(
            "the client certificate is for {}, not worker {code}",
            cert.describe()
        ))),
        (Some(_), None) => Err(ApiError::invalid(ValidationError::new(
            "code",
            "required with a client certificate: the code the certificate names",
        ))),
        (None, _) if state.tls().is_some_and(|tls| tls.requires_client_cert()) => {
            Err(ApiError::unauthorized(
                "a worker must present a client certificate from the control plane's CA (--tls-ca)",
            ))
        }
        (None, _) => Ok(()),
    }
}
