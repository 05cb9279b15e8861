//! Drains scheduled for a time (bodies in
//! `vdi_cluster_protocol::scheduled`): schedule one at an instant or at
//! the start of the worker's next maintenance window, list the open ones
//! (of a worker, of the fleet), cancel one. The leader carries them out
//! through the change freeze (`Fleet::fire_due_scheduled` in core).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use vdi_cluster_protocol::ErrorBody;
use vdi_cluster_protocol::scheduled::{
    ScheduleDrainRequest, ScheduledDrainJson, ScheduledDrainsJson,
};

use super::force::check_reason;
use super::workers::worker_id;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::{JsonBody, PathParams};
use crate::path_params::WorkerCodePath;
use crate::state::AppState;

/// Schedules a drain of this worker: at `at`, or at the start of its next
/// maintenance window of `duration` (`window: "next"`). When it is due the
/// leader drains the worker as the operator who scheduled it, through the
/// change freeze: a drain the freeze refuses then is not forced; it is
/// marked failed, audited, and `worker.scheduled_drain_failed` is sent.
#[utoipa::path(
    post, path = "/api/vdi/workers/{code}/scheduled-drains", tag = "workers",
    params(WorkerCodePath),
    request_body = ScheduleDrainRequest,
    responses(
        (status = 201, description = "Scheduled", body = ScheduledDrainJson),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, description = "No such worker", body = ErrorBody),
        (status = 422, description = "A bad or past time, a bad or missing duration, no window in the next seven days, a bad reason (names the field)", body = ErrorBody),
        (status = 503, body = ErrorBody),
    )
)]
pub(crate) async fn schedule(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathParams(code): PathParams<String>,
    JsonBody(body): JsonBody<ScheduleDrainRequest>,
) -> Result<(StatusCode, Json<ScheduledDrainJson>), ApiError> {
    let id = worker_id(code)?;
    check_reason(&body.reason)?;
    let when = body.drain_at().map_err(ApiError::invalid)?;
    let service = Arc::clone(state.service());
    let action = state
        .detached(async move {
            service
                .fleet()
                .schedule_drain(&id, when, &caller.actor(), &body.reason)
                .await
        })
        .await?;
    Ok((StatusCode::CREATED, Json(ScheduledDrainJson::from(&action))))
}

/// This worker's open scheduled drains (pending, or being carried out),
/// by time.
#[utoipa::path(
    get, path = "/api/vdi/workers/{code}/scheduled-drains", tag = "workers",
    params(WorkerCodePath),
    responses(
        (status = 200, description = "The open drains, by time", body = ScheduledDrainsJson),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 503, body = ErrorBody),
    )
)]
pub(crate) async fn worker_list(
    State(state): State<AppState>,
    PathParams(code): PathParams<String>,
) -> Result<Json<ScheduledDrainsJson>, ApiError> {
    let id = worker_id(code)?;
    let drains = state.service().fleet().scheduled_drains(Some(&id)).await?;
    Ok(Json(ScheduledDrainsJson::new(&drains)))
}

/// Every open scheduled drain of the fleet, by time.
#[utoipa::path(
    get, path = "/api/vdi/scheduled-drains", tag = "workers",
    responses(
        (status = 200, description = "The open drains, by time", body = ScheduledDrainsJson),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 503, body = ErrorBody),
    )
)]
pub(crate) async fn fleet_list(
    State(state): State<AppState>,
) -> Result<Json<ScheduledDrainsJson>, ApiError> {
    let drains = state.service().fleet().scheduled_drains(None).await?;
    Ok(Json(ScheduledDrainsJson::new(&drains)))
}

/// Cancels a pending scheduled drain of this worker (audited).
#[utoipa::path(
    delete, path = "/api/vdi/workers/{code}/scheduled-drains/{id}", tag = "workers",
    params(WorkerCodePath, ("id" = String, Path, description = "Scheduled drain id")),
    responses(
        (status = 200, description = "Cancelled", body = ScheduledDrainJson),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, description = "No such scheduled drain of this worker", body = ErrorBody),
        (status = 409, description = "It already fired, finished or was cancelled", body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 503, body = ErrorBody),
    )
)]
pub(crate) async fn cancel(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathParams((code, drain)): PathParams<(String, String)>,
) -> Result<Json<ScheduledDrainJson>, ApiError> {
    let id = worker_id(code)?;
    let service = Arc::clone(state.service());
    let action = state
        .detached(async move {
            service
                .fleet()
                .cancel_scheduled_drain(&id, &drain, &caller.actor())
                .await
        })
        .await?;
    Ok(Json(ScheduledDrainJson::from(&action)))
}
