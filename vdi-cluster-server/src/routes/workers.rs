//! The admin page's views of workers (seeds 000/004): list, healthy,
//! summary, detail, sessions; a reconcile pass on demand; deleting a
//! worker's record.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::IntoParams;
use vdi_cluster_core::service::WorkerFilter;
use vdi_cluster_core::{Timestamp, ValidationError, WorkerId, WorkerStatus};
use vdi_cluster_protocol::ErrorBody;
use vdi_cluster_protocol::cluster::SummaryJson;
use vdi_cluster_protocol::reconcile::ReconcileReportJson;
use vdi_cluster_protocol::workers::{WorkerJson, WorkerList, WorkerSessionsJson};

use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::{PathParams, QueryParams, bounded};
use crate::state::AppState;

/// Default and largest number of sessions listed per worker.
const SESSIONS_DEFAULT_LIMIT: usize = 1000;
const SESSIONS_MAX_LIMIT: usize = 10_000;

/// `code` as a worker id (field `code`).
pub(super) fn worker_id(code: String) -> Result<WorkerId, ApiError> {
    Ok(WorkerId::parse("code", code)?)
}

/// The control plane's clock, at which views are judged.
pub(super) fn now(state: &AppState) -> Timestamp {
    state.service().clock().now()
}

/// Filters of the worker list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListQuery {
    /// Only this status (`active`, `draining`, `drained`, `disabled`,
    /// `pending`, `unhealthy`, `unreachable`, `offline`).
    #[param(
        pattern = "^(active|draining|drained|disabled|pending|unhealthy|unreachable|offline)$"
    )]
    status: Option<String>,
    /// Only this zone.
    zone: Option<String>,
    /// Only workers with this label, as `key:value`.
    #[param(pattern = "^[^:]+:.+$")]
    label: Option<String>,
}

impl ListQuery {
    fn filter(self) -> Result<WorkerFilter, ValidationError> {
        let status = self
            .status
            .map(|s| WorkerStatus::parse("status", &s))
            .transpose()?;
        let label = match self.label {
            None => None,
            Some(l) => {
                let (k, v) = l
                    .split_once(':')
                    .filter(|(k, v)| !k.is_empty() && !v.is_empty())
                    .ok_or_else(|| ValidationError::new("label", "must be key:value"))?;
                Some((k.to_owned(), v.to_owned()))
            }
        };
        Ok(WorkerFilter {
            status,
            zone: self.zone,
            label,
            schedulable_only: false,
        })
    }
}

/// Workers, by code, filtered by `status`, `zone` and `label=key:value`.
#[utoipa::path(
    get, path = "/api/vdi/workers", tag = "workers",
    params(ListQuery),
    responses(
        (status = 200, description = "Workers", body = WorkerList),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 503, body = ErrorBody),
    )
)]
pub(crate) async fn list(
    State(state): State<AppState>,
    QueryParams(query): QueryParams<ListQuery>,
) -> Result<Json<WorkerList>, ApiError> {
    let filter = query.filter()?;
    let views = state.service().list_workers(&filter).await?;
    Ok(Json(WorkerList::new(&views, now(&state))))
}

/// Workers whose heartbeat is within the TTL and whose resources are fine.
#[utoipa::path(
    get, path = "/api/vdi/workers/healthy", tag = "workers",
    responses(
        (status = 200, description = "Healthy workers", body = WorkerList),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 503, body = ErrorBody),
    )
)]
pub(crate) async fn healthy(State(state): State<AppState>) -> Result<Json<WorkerList>, ApiError> {
    let views = state
        .service()
        .list_workers(&WorkerFilter::default())
        .await?;
    let healthy = views
        .iter()
        .filter(|v| v.availability.is_healthy() && v.record.deregistered_at.is_none());
    Ok(Json(WorkerList::new(healthy, now(&state))))
}

/// Seed 000's admin summary: `healthyWorkers/totalWorkers`,
/// `totalAvailableSessions/totalMaxSessions`, `totalActiveSessions`, drain
/// counts.
#[utoipa::path(
    get, path = "/api/vdi/workers/summary", tag = "workers",
    responses(
        (status = 200, description = "Summary", body = SummaryJson),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 503, body = ErrorBody),
    )
)]
pub(crate) async fn summary(State(state): State<AppState>) -> Result<Json<SummaryJson>, ApiError> {
    let summary = state.service().summary().await?;
    Ok(Json(SummaryJson::from(&summary)))
}

/// Runs a reconcile pass now and returns its report (seed 000 "manual
/// reconcile"); audited with the caller.
#[utoipa::path(
    post, path = "/api/vdi/workers/reconcile", tag = "workers",
    responses(
        (status = 200, description = "What the pass did", body = ReconcileReportJson),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 503, body = ErrorBody),
    )
)]
pub(crate) async fn reconcile(
    State(state): State<AppState>,
    Caller(caller): Caller,
) -> Result<Json<ReconcileReportJson>, ApiError> {
    let service = Arc::clone(state.service());
    let actor = caller.actor();
    let report = state
        .detached(async move { service.reconcile_now(&actor).await })
        .await?;
    Ok(Json(ReconcileReportJson::from(&report)))
}

/// One worker.
#[utoipa::path(
    get, path = "/api/vdi/workers/{code}", tag = "workers",
    params(("code" = String, Path, description = "Worker code", pattern = "^[A-Za-z0-9][A-Za-z0-9._-]*$", min_length = 1, max_length = 64)),
    responses(
        (status = 200, description = "The worker", body = WorkerJson),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 503, body = ErrorBody),
    )
)]
pub(crate) async fn detail(
    State(state): State<AppState>,
    PathParams(code): PathParams<String>,
) -> Result<Json<WorkerJson>, ApiError> {
    let id = worker_id(code)?;
    let view = state.service().worker_view(&id).await?;
    Ok(Json(WorkerJson::new(&view, now(&state))))
}

/// Deletes a worker's record; refused (409) while dispatches remain on it.
#[utoipa::path(
    delete, path = "/api/vdi/workers/{code}", tag = "workers",
    params(("code" = String, Path, description = "Worker code", pattern = "^[A-Za-z0-9][A-Za-z0-9._-]*$", min_length = 1, max_length = 64)),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 503, body = ErrorBody),
    )
)]
pub(crate) async fn remove(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathParams(code): PathParams<String>,
) -> Result<StatusCode, ApiError> {
    let id = worker_id(code)?;
    let service = Arc::clone(state.service());
    let actor = caller.actor();
    state
        .detached(async move { service.remove_worker(&id, &actor).await })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// How many sessions to list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct LimitQuery {
    /// At most this many (default 1000, at most 10000).
    #[param(minimum = 1, maximum = 10_000)]
    limit: Option<usize>,
}

/// A worker's sessions.
#[utoipa::path(
    get, path = "/api/vdi/workers/{code}/sessions", tag = "workers",
    params(("code" = String, Path, description = "Worker code", pattern = "^[A-Za-z0-9][A-Za-z0-9._-]*$", min_length = 1, max_length = 64), LimitQuery),
    responses(
        (status = 200, description = "Its sessions", body = WorkerSessionsJson),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 503, body = ErrorBody),
    )
)]
pub(crate) async fn sessions(
    State(state): State<AppState>,
    PathParams(code): PathParams<String>,
    QueryParams(query): QueryParams<LimitQuery>,
) -> Result<Json<WorkerSessionsJson>, ApiError> {
    let id = worker_id(code)?;
    let limit = bounded(
        "limit",
        query.limit,
        SESSIONS_DEFAULT_LIMIT,
        SESSIONS_MAX_LIMIT,
    )?;
    let dispatches = state.service().worker_sessions(&id, limit).await?;
    Ok(Json(WorkerSessionsJson::new(&id, &dispatches)))
}
