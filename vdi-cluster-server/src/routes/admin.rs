//! Admin transitions of a worker (the exam platform, Aetherium): `PATCH` (drain,
//! activate, disable, enable), drain (`POST`/`PUT`) and activate, and what
//! still blocks a drain. Each runs detached from the request, as core's
//! compare-and-set on the worker's policy; the answer says what changed.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use vdi_cluster_core::{AdminAction, Timestamp, ValidationError, WorkerId};
use vdi_cluster_protocol::ErrorBody;
use vdi_cluster_protocol::workers::{
    AdminActionJson, DrainInfoJson, DrainRequest, PatchWorkerRequest,
};

use super::force::{forced_reason, override_of};
use super::workers::{now, worker_id};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::{JsonBody, OptionalJsonBody, PathParams};
use crate::path_params::WorkerCodePath;
use crate::state::AppState;

/// Longest drain deadline accepted (7 days).
const MAX_DRAIN_DEADLINE_SEC: u64 = 7 * 24 * 3600;

fn deadline(
    state: &AppState,
    field: &str,
    seconds: Option<u64>,
) -> Result<Option<Timestamp>, ApiError> {
    match seconds {
        None => Ok(None),
        Some(s) if (1..=MAX_DRAIN_DEADLINE_SEC).contains(&s) => {
            Ok(Some(now(state).plus(Duration::from_secs(s))))
        }
        Some(_) => Err(ApiError::invalid(ValidationError::new(
            field,
            format!("must be from 1 to {MAX_DRAIN_DEADLINE_SEC}"),
        ))),
    }
}

/// The admin action the exam platform's `PATCH` body asks for: exactly one of
/// `isDraining` and `isEnabled`, with `force` only on a disable and
/// `drainDeadlineSec` only on a drain.
fn patch_action(body: PatchWorkerRequest, state: &AppState) -> Result<AdminAction, ApiError> {
    let invalid =
        |field: &str, message: &str| ApiError::invalid(ValidationError::new(field, message));
    if body.force.is_some() && body.is_enabled != Some(false) && body.is_draining != Some(true) {
        return Err(invalid(
            "force",
            "is valid only with isEnabled: false or isDraining: true",
        ));
    }
    if body.drain_deadline_sec.is_some() && body.is_draining != Some(true) {
        return Err(invalid(
            "drainDeadlineSec",
            "is valid only with isDraining: true",
        ));
    }
    match (body.is_draining, body.is_enabled) {
        (Some(_), Some(_)) => Err(invalid(
            "isEnabled",
            "give either isDraining or isEnabled, not both",
        )),
        (None, None) => Err(invalid("body", "expected isDraining or isEnabled")),
        (Some(true), None) => Ok(AdminAction::Drain {
            deadline: deadline(state, "drainDeadlineSec", body.drain_deadline_sec)?,
        }),
        (Some(false), None) => Ok(AdminAction::Activate),
        (None, Some(true)) => Ok(AdminAction::Enable),
        (None, Some(false)) => Ok(AdminAction::Disable {
            force: body.force.unwrap_or(false),
        }),
    }
}

/// Runs `action` with the operator's `reason`; `forced` (a reason) forces
/// it past the change freeze.
async fn run_admin(
    state: &AppState,
    id: WorkerId,
    action: AdminAction,
    actor: String,
    reason: Option<String>,
    forced: Option<String>,
) -> Result<AdminActionJson, ApiError> {
    let service = Arc::clone(state.service());
    let outcome = state
        .detached(async move {
            service
                .fleet()
                .admin_forcing(
                    &id,
                    action,
                    &actor,
                    reason.as_deref(),
                    override_of(forced.as_deref()),
                )
                .await
        })
        .await?;
    Ok(AdminActionJson::new(action, &outcome, now(state)))
}

/// Drain, activate, disable or enable a worker (the exam platform's runbook).
/// Disabling a worker that still has sessions is refused (409, naming the
/// count) unless `force: true`. A `reason` goes to the audit trail.
/// A drain or disable that would make an exam under way fit worse is
/// refused by the change freeze (409 with the exams and `safeFrom`)
/// unless `force: true` with a `reason`.
#[utoipa::path(
    patch, path = "/api/vdi/workers/{code}", tag = "workers",
    params(WorkerCodePath),
    request_body = PatchWorkerRequest,
    responses(
        (status = 200, description = "Applied (or already so)", body = AdminActionJson),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "Illegal transition, sessions remain, or the change freeze refuses (FreezeRefusedJson)", body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 503, body = ErrorBody),
    )
)]
pub(crate) async fn patch(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathParams(code): PathParams<String>,
    JsonBody(body): JsonBody<PatchWorkerRequest>,
) -> Result<Json<AdminActionJson>, ApiError> {
    let id = worker_id(code)?;
    let reason = body.reason.clone();
    let forced = match body.force {
        Some(true) => reason.clone(),
        _ => None,
    };
    if body.is_draining == Some(true) {
        forced_reason(body.force, body.reason.clone())?;
    }
    let action = patch_action(body, &state)?;
    Ok(Json(
        run_admin(&state, id, action, caller.actor(), reason, forced).await?,
    ))
}

/// What still blocks a worker's drain: its sessions, by exam. Observing may
/// complete the drain.
#[utoipa::path(
    get, path = "/api/vdi/workers/{code}/drain", tag = "workers",
    params(WorkerCodePath),
    responses(
        (status = 200, description = "Drain state and blockers", body = DrainInfoJson),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 503, body = ErrorBody),
    )
)]
pub(crate) async fn drain_info(
    State(state): State<AppState>,
    PathParams(code): PathParams<String>,
) -> Result<Json<DrainInfoJson>, ApiError> {
    let id = worker_id(code)?;
    let service = Arc::clone(state.service());
    let info = state
        .detached(async move { service.fleet().drain_info(&id).await })
        .await?;
    Ok(Json(DrainInfoJson::from(&info)))
}

/// Drains a worker (as Aetherium): it keeps its sessions and takes no new ones;
/// `drainStatus` becomes `drained` once nothing remains on it. `PUT` does
/// the same (the idempotent form, as neon's storage controller). A drain
/// that would make an exam under way fit worse is refused by the change
/// freeze (409 with the exams and `safeFrom`) unless `force: true` with a
/// `reason`.
#[utoipa::path(
    method(post, put), path = "/api/vdi/workers/{code}/drain", tag = "workers",
    params(WorkerCodePath),
    request_body(content = Option<DrainRequest>, description = "Optional deadline"),
    responses(
        (status = 202, description = "Draining (or drained already)", body = AdminActionJson),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "Illegal transition, or the change freeze refuses (an ErrorBody with the exams and safeFrom: FreezeRefusedJson)", body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 503, body = ErrorBody),
    )
)]
pub(crate) async fn drain(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathParams(code): PathParams<String>,
    OptionalJsonBody(body): OptionalJsonBody<DrainRequest>,
) -> Result<(StatusCode, Json<AdminActionJson>), ApiError> {
    let id = worker_id(code)?;
    let body = body.unwrap_or_default();
    let forced = forced_reason(body.force, body.reason.clone())?;
    let action = AdminAction::Drain {
        deadline: deadline(&state, "deadlineSec", body.deadline_sec)?,
    };
    let json = run_admin(&state, id, action, caller.actor(), body.reason, forced).await?;
    Ok((StatusCode::ACCEPTED, Json(json)))
}

/// Returns a draining, drained or disabled worker to service (as Aetherium).
#[utoipa::path(
    post, path = "/api/vdi/workers/{code}/activate", tag = "workers",
    params(WorkerCodePath),
    responses(
        (status = 200, description = "Active", body = AdminActionJson),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 503, body = ErrorBody),
    )
)]
pub(crate) async fn activate(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathParams(code): PathParams<String>,
) -> Result<Json<AdminActionJson>, ApiError> {
    let id = worker_id(code)?;
    Ok(Json(
        run_admin(
            &state,
            id,
            AdminAction::Activate,
            caller.actor(),
            None,
            None,
        )
        .await?,
    ))
}
