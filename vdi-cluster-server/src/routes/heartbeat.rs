//! The worker routes (worker token or the worker's own credential):
//! heartbeat (the exam platform's), registration and deregistration (as
//! minicloud).

use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::extract::State;
use vdi_cluster_core::WorkerId;
use vdi_cluster_core::store::Lane;
use vdi_cluster_protocol::workers::WorkerJson;
use vdi_cluster_protocol::{
    DeregisterRequest, ErrorBody, HeartbeatRequest, HeartbeatResponse, RegisterRequest,
};

use super::reserved::{check_not_reserved, is_reserved};
use crate::auth::{Caller, Principal};
use crate::error::ApiError;
use crate::extract::{JsonBody, OptionalJsonBody, PathParams};
use crate::gate::ensure_worker;
use crate::metrics::HeartbeatOutcome;
use crate::path_params::WorkerCodePath;
use crate::peer_cert::{PeerCert, ensure_certificate};
use crate::state::AppState;

/// A worker's heartbeat (the exam platform's). Unknown workers are registered; unknown
/// fields are ignored; an older heartbeat changes nothing (`accepted: false`).
#[utoipa::path(
    post, path = "/api/vdi/workers/heartbeat", tag = "workers",
    request_body = HeartbeatRequest,
    responses(
        (status = 200, description = "Applied (or stale: accepted false)", body = HeartbeatResponse),
        (status = 400, description = "Malformed body", body = ErrorBody),
        (status = 401, description = "Missing or wrong x-worker-token", body = ErrorBody),
        (status = 403, description = "A worker credential of another worker, a client certificate for another code, or a move to another host with the shared token", body = ErrorBody),
        (status = 422, description = "Invalid value", body = ErrorBody),
        (status = 503, description = "Backend unavailable", body = ErrorBody),
    )
)]
pub(crate) async fn heartbeat(
    State(state): State<AppState>,
    Caller(caller): Caller,
    cert: PeerCert,
    body: Result<JsonBody<HeartbeatRequest>, ApiError>,
) -> Result<Json<HeartbeatResponse>, ApiError> {
    let started = Instant::now();
    let worker = body
        .as_ref()
        .ok()
        .and_then(|JsonBody(request)| WorkerId::parse("code", request.code.as_str()).ok());
    let result = apply_heartbeat(&state, &caller, &cert, body).await;
    let outcome = match &result {
        Ok(ack) if ack.accepted => HeartbeatOutcome::Accepted,
        Ok(_) => HeartbeatOutcome::Stale,
        Err(e) => HeartbeatOutcome::Refused(e.status()),
    };
    state
        .metrics()
        .heartbeat(worker.as_ref(), outcome, Some(started.elapsed()));
    result.map(Json)
}

async fn apply_heartbeat(
    state: &AppState,
    caller: &Principal,
    cert: &PeerCert,
    body: Result<JsonBody<HeartbeatRequest>, ApiError>,
) -> Result<HeartbeatResponse, ApiError> {
    let JsonBody(request) = body?;
    // Only the shape is converted here; core's heartbeat validates.
    let heartbeat = request.into_heartbeat()?;
    check_not_reserved(&heartbeat.worker)?;
    ensure_certificate(state, caller, cert, Some(&heartbeat.worker))?;
    // On the liveness lane, as core's heartbeat.
    Lane::Liveness
        .scope(ensure_worker(state, caller, &heartbeat.worker))
        .await?;
    let service = Arc::clone(state.service());
    let who = caller.registrant();
    let ack = state
        .detached(async move { service.fleet().heartbeat_as(heartbeat, who).await })
        .await?;
    Ok(HeartbeatResponse::from(&ack))
}

/// Registers a worker ahead of its first heartbeat (as minicloud); idempotent.
/// The control plane assigns the code: the requested one, or one derived
/// from the host name when none is requested, unless another worker (on
/// another host) holds it — then another, answered in `code`.
#[utoipa::path(
    post, path = "/api/vdi/workers/register", tag = "workers",
    request_body = RegisterRequest,
    responses(
        (status = 200, description = "Registered or updated; `code` is the code assigned", body = WorkerJson),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 503, body = ErrorBody),
    )
)]
pub(crate) async fn register(
    State(state): State<AppState>,
    Caller(caller): Caller,
    cert: PeerCert,
    JsonBody(request): JsonBody<RegisterRequest>,
) -> Result<Json<WorkerJson>, ApiError> {
    // Only the shape is converted here; core's register validates.
    let (requested, description, host) = request.into_parts()?;
    let requested = match (&caller, requested) {
        // A worker's own credential registers that worker.
        (Principal::WorkerNode(own), None) => Some(own.clone()),
        // Without a credential, the code is what `ensure_worker` checks.
        (Principal::Anonymous, None) => {
            return Err(ApiError::invalid(vdi_cluster_core::ValidationError::new(
                "code",
                "required without a worker token",
            )));
        }
        (_, requested) => requested,
    };
    ensure_certificate(&state, &caller, &cert, requested.as_ref())?;
    if let Some(id) = &requested {
        check_not_reserved(id)?;
        ensure_worker(&state, &caller, id).await?;
    }
    let service = Arc::clone(state.service());
    let who = caller.registrant();
    let view = state
        .detached(async move {
            service
                .fleet()
                .register_assigned(requested, description, host, who, is_reserved)
                .await
        })
        .await?;
    Ok(Json(WorkerJson::new(&view, state.service().clock().now())))
}

/// A worker leaving cleanly (as minicloud), optionally saying why
/// (`{"reason": "maintenance"}`): offline at once, takes no sessions; its
/// sessions go to the failure policy at the next reconcile. A later
/// heartbeat brings it back. The reason shows in the worker's detail and
/// the audit trail. Needs the worker's own credential or an ADMIN JWT:
/// never anonymous, never the shared worker token.
#[utoipa::path(
    post, path = "/api/vdi/workers/{code}/deregister", tag = "workers",
    params(WorkerCodePath),
    request_body(content = Option<DeregisterRequest>, description = "Optional reason"),
    responses(
        (status = 200, description = "Deregistered", body = WorkerJson),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 503, body = ErrorBody),
    )
)]
pub(crate) async fn deregister(
    State(state): State<AppState>,
    Caller(caller): Caller,
    cert: PeerCert,
    PathParams(code): PathParams<String>,
    OptionalJsonBody(body): OptionalJsonBody<DeregisterRequest>,
) -> Result<Json<WorkerJson>, ApiError> {
    let id = WorkerId::parse("code", code)?;
    ensure_certificate(&state, &caller, &cert, Some(&id))?;
    ensure_worker(&state, &caller, &id).await?;
    let actor = match caller {
        Principal::User(u) => u.sub,
        _ => format!("worker:{id}"),
    };
    let reason = body.and_then(|b| b.reason);
    let service = Arc::clone(state.service());
    let view = state
        .detached(async move {
            service
                .fleet()
                .deregister_with_reason(&id, &actor, reason)
                .await
        })
        .await?;
    Ok(Json(WorkerJson::new(&view, state.service().clock().now())))
}
