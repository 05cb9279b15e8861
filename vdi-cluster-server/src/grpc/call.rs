//! What every RPC does around its handler: the credential in the
//! request's metadata, checked as the HTTP gate checks headers (with the
//! same throttle of failed authentications), and the handler's
//! [`ApiError`] as a gRPC [`Status`].

use std::net::SocketAddr;
use std::time::Instant;

use axum::http::HeaderMap;
use tonic::{Request, Status};
use vdi_cluster_grpc::status::code_for_http;

use crate::auth::{Access, Principal};
use crate::error::ApiError;
use crate::peer_cert::PeerCert;

use super::conn::GrpcPeer;
use crate::gate::authorize_request;
use crate::state::AppState;

/// `error` as a status: the code of its HTTP status, its message.
pub(super) fn status(error: ApiError) -> Status {
    Status::new(code_for_http(error.status().as_u16()), error.message())
}

/// The address of the request's peer.
fn peer_addr<T>(request: &Request<T>) -> Option<SocketAddr> {
    request
        .remote_addr()
        .or_else(|| request.extensions().get::<GrpcPeer>().map(|peer| peer.addr))
}

/// The client certificate of the request's connection (TLS).
pub(super) fn peer_cert<T>(request: &Request<T>) -> PeerCert {
    PeerCert(
        request
            .extensions()
            .get::<GrpcPeer>()
            .and_then(|peer| peer.certificate.clone()),
    )
}

/// The request's metadata as HTTP headers (ASCII entries).
pub(super) fn headers<T>(request: &Request<T>) -> HeaderMap {
    request.metadata().clone().into_headers()
}

/// Checks the credential in `request`'s metadata against `access`, as
/// the HTTP gate does; a peer over its failure budget is refused with
/// `RESOURCE_EXHAUSTED`, and every refusal counts against it.
pub(super) async fn authorize<T>(
    state: &AppState,
    request: &Request<T>,
    access: Access,
) -> Result<Principal, Status> {
    let peer = peer_addr(request).map(|addr| state.throttle().peer(addr.ip(), None));
    if let Some(peer) = peer
        && let Some(wait) = state.throttle().blocked(peer, Instant::now())
    {
        return Err(Status::resource_exhausted(format!(
            "too many failed authentications from this address; retry in {} s",
            wait.as_secs().max(1)
        )));
    }
    match authorize_request(state, access, &headers(request), None).await {
        Ok(principal) => Ok(principal),
        Err(e) => {
            if let Some(peer) = peer
                && e.status() == axum::http::StatusCode::UNAUTHORIZED
            {
                state.throttle().record_failure(peer, Instant::now());
            }
            Err(status(e))
        }
    }
}
