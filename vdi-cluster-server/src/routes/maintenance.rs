//! The calendar's guard of the fleet (bodies in
//! `vdi_cluster_protocol::maintenance`): maintenance windows of a worker
//! or a group (how a change asks to be forced past the freeze is `force`).
//! The decisions are core's (`Fleet::maintenance_windows`, the fleet's
//! `freeze`); a question that does not parse or is out of bounds is a
//! 400 naming the field.

use axum::Json;
use axum::extract::State;
use vdi_cluster_core::service::MaintenanceQuery;
use vdi_cluster_core::{Error as CoreError, ValidationError};
use vdi_cluster_protocol::ErrorBody;
use vdi_cluster_protocol::maintenance::{GroupWindowsQuery, MaintenanceWindowsJson, WindowsQuery};

use super::workers::worker_id;
use crate::error::ApiError;
use crate::extract::{PathParams, QueryParams};
use crate::path_params::WorkerCodePath;
use crate::state::AppState;

fn bad_question(error: ValidationError) -> ApiError {
    ApiError::bad_request(error.field, error.message)
}

async fn answer(
    state: &AppState,
    query: MaintenanceQuery,
) -> Result<Json<MaintenanceWindowsJson>, ApiError> {
    let plan = state
        .service()
        .fleet()
        .maintenance_windows(query)
        .await
        .map_err(|e| match e {
            CoreError::Invalid(v) => bad_question(v),
            other => ApiError::from(other),
        })?;
    Ok(Json(MaintenanceWindowsJson::from(&plan)))
}

/// The windows in which taking this worker out for `duration` keeps every
/// booked exam fitting as it does (searched from `from`, now by default,
/// to `to`, 7 days later by default, at most 31).
#[utoipa::path(
    get, path = "/api/vdi/workers/{code}/maintenance-windows", tag = "workers",
    params(WorkerCodePath, WindowsQuery),
    responses(
        (status = 200, description = "The windows, in order", body = MaintenanceWindowsJson),
        (status = 400, description = "A bad duration, time or range (names the field)", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 503, body = ErrorBody),
    )
)]
pub(crate) async fn worker_windows(
    State(state): State<AppState>,
    PathParams(code): PathParams<String>,
    QueryParams(query): QueryParams<WindowsQuery>,
) -> Result<Json<MaintenanceWindowsJson>, ApiError> {
    let id = worker_id(code)?;
    let query = query.into_query(vec![id]).map_err(bad_question)?;
    answer(&state, query).await
}

/// The same for a group of workers taken out together (a rack, a zone):
/// `workers` lists their codes, comma-separated.
#[utoipa::path(
    get, path = "/api/vdi/maintenance-windows", tag = "workers",
    params(GroupWindowsQuery),
    responses(
        (status = 200, description = "The windows, in order", body = MaintenanceWindowsJson),
        (status = 400, description = "A bad worker list, duration, time or range (names the field)", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 503, body = ErrorBody),
    )
)]
pub(crate) async fn group_windows(
    State(state): State<AppState>,
    QueryParams(query): QueryParams<GroupWindowsQuery>,
) -> Result<Json<MaintenanceWindowsJson>, ApiError> {
    let query = query.into_query().map_err(bad_question)?;
    answer(&state, query).await
}
