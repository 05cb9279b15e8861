//! A worker's own credential after joining: rotation by the worker
//! (before it expires; the old one stays accepted for a short overlap),
//! revocation and reset by an admin. The rules are core's
//! (`vdi_cluster_core::credential`); this module maps them to HTTP.
//!
//! * `POST /api/vdi/workers/{code}/credential/rotate` — the worker,
//!   presenting its credential in `x-worker-token`, gets a new one.
//! * `DELETE /api/vdi/workers/{code}/credential` — revoked: refused from
//!   the next request on; the code stays taken.
//! * `POST /api/vdi/workers/{code}/credential/reset` — nothing is accepted,
//!   and the answer carries a one-use join token bound to the worker (shown
//!   once) with which it joins again.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use vdi_cluster_core::WorkerId;
use vdi_cluster_core::credential::CredentialCheck;
use vdi_cluster_core::service::RotateOutcome;
use vdi_cluster_protocol::join::CredentialReset;
use vdi_cluster_protocol::maintenance::ForceQuery;
use vdi_cluster_protocol::{ErrorBody, JoinResponse, WORKER_TOKEN_HEADER};

use super::force::{forced_reason, override_of};
use super::join::{DEFAULT_JOIN_TOKEN_TTL_SEC, credential_answer, issue_join_token};
use crate::auth::{Caller, Principal, hash_hex, matches_hash_hex, new_worker_credential};
use crate::error::ApiError;
use crate::extract::{PathParams, QueryParams};
use crate::path_params::WorkerCodePath;
use crate::state::AppState;

/// Why a worker's credential is refused, for its 401.
pub(crate) fn refused(worker: &WorkerId, check: CredentialCheck) -> ApiError {
    ApiError::unauthorized(match check {
        CredentialCheck::Expired => format!(
            "x-worker-token: the credential of worker {worker} expired; \
             an admin must reset it (the node agent rotates it before expiry)"
        ),
        CredentialCheck::Revoked => {
            format!("x-worker-token: the credential of worker {worker} was revoked by an admin")
        }
        CredentialCheck::Reset => format!(
            "x-worker-token: the credential of worker {worker} was reset by an admin; \
             join again with a join token bound to it"
        ),
        CredentialCheck::Unknown | CredentialCheck::Valid(_) => {
            format!("invalid credential for worker {worker}")
        }
    })
}

/// The worker, presenting its own credential, gets a new one (shown once);
/// the presented one stays accepted for a short overlap, so heartbeats in
/// flight are not refused.
#[utoipa::path(
    post, path = "/api/vdi/workers/{code}/credential/rotate", tag = "workers",
    params(WorkerCodePath),
    responses(
        (status = 200, description = "Rotated; the new credential is shown once", body = JoinResponse),
        (status = 401, description = "Not this worker's own credential, or it is expired, revoked or reset", body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 503, body = ErrorBody),
    )
)]
pub(crate) async fn rotate(
    State(state): State<AppState>,
    Caller(caller): Caller,
    headers: HeaderMap,
    PathParams(code): PathParams<String>,
) -> Result<Json<JoinResponse>, ApiError> {
    let id = WorkerId::parse("code", code)?;
    match &caller {
        Principal::WorkerNode(own) if *own == id => {}
        Principal::WorkerNode(own) => {
            return Err(ApiError::forbidden(format!(
                "this credential belongs to worker {own}, not {id}"
            )));
        }
        _ => {
            return Err(ApiError::unauthorized(format!(
                "x-worker-token: only worker {id}'s own credential may rotate it"
            )));
        }
    }
    let presented = headers
        .get(WORKER_TOKEN_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let credential = new_worker_credential(&id);
    let next_hash = hash_hex(&credential);
    let service = Arc::clone(state.service());
    let worker = id.clone();
    let outcome = state
        .detached(async move {
            let matches = move |stored: &str| matches_hash_hex(&presented, stored);
            service
                .fleet()
                .rotate_credential(&worker, &matches, &next_hash)
                .await
        })
        .await?;
    match outcome {
        RotateOutcome::Rotated(secret) => {
            tracing::info!(code = %id, "worker rotated its credential");
            Ok(Json(credential_answer(&id, credential, &secret)))
        }
        RotateOutcome::Refused(check) => Err(refused(&id, check)),
    }
}

/// Revokes a worker's own credential: it is refused from its next request
/// on. Its code stays taken (reset it to let it join again).
/// Refused by the change freeze (409 with the exams and `safeFrom`) when
/// losing the worker makes an exam under way fit worse, unless
/// `force=true&reason=…`.
#[utoipa::path(
    delete, path = "/api/vdi/workers/{code}/credential", tag = "workers",
    params(WorkerCodePath, ForceQuery),
    responses(
        (status = 204, description = "Revoked"),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, description = "The worker has no own credential", body = ErrorBody),
        (status = 409, description = "Conflict, or the change freeze refuses (an ErrorBody with the exams and safeFrom: FreezeRefusedJson)", body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 503, body = ErrorBody),
    )
)]
pub(crate) async fn revoke(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathParams(code): PathParams<String>,
    QueryParams(force): QueryParams<ForceQuery>,
) -> Result<StatusCode, ApiError> {
    let id = WorkerId::parse("code", code)?;
    let forced = forced_reason(force.force, force.reason)?;
    let service = Arc::clone(state.service());
    let actor = caller.actor();
    let worker = id.clone();
    let revoked = state
        .detached(async move {
            service
                .fleet()
                .revoke_credential_forcing(&worker, &actor, override_of(forced.as_deref()))
                .await
        })
        .await?;
    if revoked {
        tracing::warn!(code = %id, "worker credential revoked");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!(
            "Worker {id} has no own credential"
        )))
    }
}

/// Resets a worker's own credential: nothing it holds is accepted any
/// more, and the answer carries a one-use join token bound to it (shown
/// once, valid one hour) with which it joins again. Refused by the change
/// freeze like a revocation, unless `force=true&reason=…`.
#[utoipa::path(
    post, path = "/api/vdi/workers/{code}/credential/reset", tag = "workers",
    params(WorkerCodePath, ForceQuery),
    responses(
        (status = 200, description = "Reset; the bound join token is shown once", body = CredentialReset),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "Conflict, or the change freeze refuses (an ErrorBody with the exams and safeFrom: FreezeRefusedJson)", body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 503, body = ErrorBody),
    )
)]
pub(crate) async fn reset(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathParams(code): PathParams<String>,
    QueryParams(force): QueryParams<ForceQuery>,
) -> Result<Json<CredentialReset>, ApiError> {
    let id = WorkerId::parse("code", code)?;
    let forced = forced_reason(force.force, force.reason)?;
    let service = Arc::clone(state.service());
    let actor = caller.actor();
    let worker = id.clone();
    let who = actor.clone();
    state
        .detached(async move {
            service
                .fleet()
                .reset_credential_forcing(&worker, &who, override_of(forced.as_deref()))
                .await
        })
        .await?;
    let join_token = issue_join_token(
        &state,
        actor,
        DEFAULT_JOIN_TOKEN_TTL_SEC,
        1,
        Some(id.clone()),
    )
    .await?;
    tracing::warn!(code = %id, "worker credential reset; a bound join token was issued");
    Ok(Json(CredentialReset {
        code: id.to_string(),
        join_token,
    }))
}
