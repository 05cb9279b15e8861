//! The calendar's guard of the fleet (bodies in
//! `vdi_cluster_protocol::maintenance`): maintenance windows of a worker
//! or a group, and how a change asks to be forced past the change freeze.
//! The decisions are core's (`Fleet::maintenance_windows`, the fleet's
//! `freeze`); a question that does not parse or is out of bounds is a
//! 400 naming the field.

use axum::Json;
use axum::extract::State;
use vdi_cluster_core::service::{FreezeOverride, MAX_REASON_CHARS, MaintenanceQuery};
use vdi_cluster_core::{Error as CoreError, ValidationError};
use vdi_cluster_protocol::ErrorBody;
use vdi_cluster_protocol::maintenance::{GroupWindowsQuery, MaintenanceWindowsJson, WindowsQuery};

use super::workers::worker_id;
use crate::error::ApiError;
use crate::extract::{PathParams, QueryParams};
use crate::path_params::WorkerCodePath;
use crate::state::AppState;

/// The reason of a change forced past the change freeze: `force: true`
/// needs a `reason`; `None` when the change respects the freeze. A reason
/// given is checked either way, as the schema states it: 1 to 500
/// characters, no control characters, no white space at either end.
pub(crate) fn forced_reason(
    force: Option<bool>,
    reason: Option<String>,
) -> Result<Option<String>, ApiError> {
    if let Some(r) = &reason {
        let problem = if r.is_empty() {
            Some("must not be empty".to_owned())
        } else if r.chars().count() > MAX_REASON_CHARS {
            Some(format!("must be at most {MAX_REASON_CHARS} characters"))
        } else if r.chars().any(char::is_control) {
            Some("must not contain control characters".to_owned())
        } else if r.trim() != r {
            Some("must not begin or end with white space".to_owned())
        } else {
            None
        };
        if let Some(message) = problem {
            return Err(ApiError::invalid(ValidationError::new("reason", message)));
        }
    }
    match (force, reason) {
        (Some(true), Some(reason)) => Ok(Some(reason)),
        (Some(true), None) => Err(ApiError::invalid(ValidationError::new(
            "reason",
            "is required with force: true",
        ))),
        _ => Ok(None),
    }
}

/// The freeze override of a forced reason.
pub(crate) fn override_of(reason: Option<&str>) -> FreezeOverride<'_> {
    reason.map_or(FreezeOverride::Respect, |reason| FreezeOverride::Force {
        reason,
    })
}

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
