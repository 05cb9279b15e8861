//! The request-time gate: the per-route middleware that checks a request's
//! credential against its route's [`Access`] — including workers' own
//! credentials, whose hashes are in the store — and hands the handler a
//! [`Principal`]; and `ensure_worker`, which handlers of worker routes
//! call once they know which worker the body names.
//!
//! The gate also throttles failed authentication
//! ([`throttle`](crate::throttle)): the peer is the connection's address
//! (`ConnectInfo`, which the listener puts in every request), or the
//! nearest untrusted `X-Forwarded-For` hop when the connection is a trusted
//! proxy. A throttled peer is answered 429 with `Retry-After` before any
//! credential is checked; every 401 of a gated route counts as a failure.
//! A request without `ConnectInfo` (a router driven without the listener)
//! is not throttled.
//!
//! The pure pieces (access model, JWTs, secrets, [`AuthConfig`]) are in
//! [`auth`](crate::auth); this module adds what needs [`AppState`].
//!
//! [`AuthConfig`]: crate::auth::AuthConfig

use std::net::SocketAddr;
use std::time::Instant;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use vdi_cluster_core::WorkerId;
use vdi_cluster_core::credential::CredentialCheck;
use vdi_cluster_core::store::Lane;
use vdi_cluster_protocol::{HEARTBEAT_PATH, WORKER_TOKEN_HEADER};

use crate::auth::session::PageSession;
use crate::auth::{
    Access, Principal, WORKER_CREDENTIAL_PREFIX, credential_worker, matches_hash_hex,
};
use crate::error::ApiError;
use crate::metrics::HeartbeatOutcome;
use crate::routes::credentials;
use crate::state::AppState;
use crate::throttle::PeerKey;

/// State of the per-route middleware: the app and the route's access.
#[derive(Debug, Clone)]
pub(crate) struct Gate {
    pub(crate) state: AppState,
    pub(crate) access: Access,
}

/// A worker's own credential, checked against the hashes in the store
/// (an acceptance possibly from this replica's read of them at most
/// `--worker-credential-cache-ms` old, a refusal always from a fresh one;
/// so a revocation holds from the next request on through this replica,
/// within that time through another): accepted until it expires, or for
/// the overlap after a rotation. The lookup runs on the store's liveness
/// lane, as the heartbeat it lets in does.
async fn verify_worker_credential(
    state: &AppState,
    presented: &str,
) -> Result<Principal, ApiError> {
    let Some(worker) = credential_worker(presented) else {
        return Err(ApiError::unauthorized("invalid x-worker-token"));
    };
    let fleet = state.service().fleet();
    let check = fleet.check_credential(&worker, |stored| matches_hash_hex(presented, stored));
    let check = Lane::Liveness.scope(check).await?;
    match check {
        CredentialCheck::Valid(_) => Ok(Principal::WorkerNode(worker)),
        refused => Err(credentials::refused(&worker, refused)),
    }
}

/// Checks `headers` against `access`, including workers' own credentials
/// (a store lookup); `page` is the operators' page session the request's
/// cookie proved, if any.
pub async fn authorize_request(
    state: &AppState,
    access: Access,
    headers: &HeaderMap,
    page: Option<&PageSession>,
) -> Result<Principal, ApiError> {
    if matches!(access, Access::Worker | Access::OwnWorker)
        && let Some(value) = headers.get(WORKER_TOKEN_HEADER)
        && !state.auth().is_shared_worker_token(value.as_bytes())
        && let Ok(text) = value.to_str()
        && text.starts_with(WORKER_CREDENTIAL_PREFIX)
    {
        return verify_worker_credential(state, text).await;
    }
    state
        .auth()
        .authorize_with(access, headers, page.map(|p| &p.user))
}

/// Whether `caller` may act as worker `code` on a worker route: its own
/// credential must name it; the shared token, or an anonymous caller
/// (where anonymous heartbeats are allowed), only for a worker that has
/// no own credential — whatever its state: a worker whose credential was
/// revoked or reset is not let back in by the fleet-wide token (the shared
/// token joins; it never impersonates). What each may change is core's
/// decision (`Registrant`).
pub(crate) async fn ensure_worker(
    state: &AppState,
    caller: &Principal,
    code: &WorkerId,
) -> Result<(), ApiError> {
    let shared = match caller {
        Principal::WorkerNode(own) if own == code => return Ok(()),
        Principal::WorkerNode(own) => {
            return Err(ApiError::forbidden(format!(
                "this credential belongs to worker {own}, not {code}"
            )));
        }
        Principal::Anonymous => false,
        Principal::Worker => true,
        Principal::Joining | Principal::User(_) => return Ok(()),
    };
    let own = state.service().fleet().has_own_credential(code).await?;
    match own {
        false => Ok(()),
        true if shared => Err(ApiError::forbidden(format!(
            "worker {code} has its own credential: it is accepted only with it (x-worker-token: vdiw.…), never with the shared worker token"
        ))),
        true => Err(ApiError::unauthorized(format!(
            "worker {code} joined with a join token: send its own credential in x-worker-token"
        ))),
    }
}

/// The peer `req` is counted under, when it came through the listener.
fn peer(state: &AppState, req: &Request) -> Option<PeerKey> {
    let ConnectInfo(addr) = req.extensions().get::<ConnectInfo<SocketAddr>>()?;
    let forwarded = req
        .headers()
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok());
    Some(state.throttle().peer(addr.ip(), forwarded))
}

/// The per-route middleware: refuses a throttled peer, checks the
/// credential, then hands the handler a [`Principal`]; counts every 401.
pub(crate) async fn gate(State(gate): State<Gate>, mut req: Request, next: Next) -> Response {
    let throttled = gate.access != Access::Public;
    let peer = if throttled {
        peer(&gate.state, &req)
    } else {
        None
    };
    if let Some(peer) = peer
        && let Some(wait) = gate.state.throttle().blocked(peer, Instant::now())
    {
        let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        return ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            format!("too many failed authentications from this address; retry in {seconds} s"),
        )
        .with_retry_after(seconds.max(1))
        .into_response();
    }
    let page = req.extensions().get::<PageSession>();
    let checked = authorize_request(&gate.state, gate.access, req.headers(), page).await;
    let response = match checked {
        Ok(principal) => {
            req.extensions_mut().insert(principal);
            next.run(req).await
        }
        Err(e) => {
            if req.uri().path() == HEARTBEAT_PATH {
                gate.state
                    .metrics()
                    .heartbeat(None, HeartbeatOutcome::Refused(e.status()), None);
            }
            e.into_response()
        }
    };
    if let Some(peer) = peer
        && response.status() == StatusCode::UNAUTHORIZED
    {
        gate.state.throttle().record_failure(peer, Instant::now());
    }
    response
}
