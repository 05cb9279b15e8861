//! The admin page's views of workers (the exam platform, Aetherium): list, healthy,
//! summary, detail, sessions; a reconcile pass on demand; deleting a
//! worker's record.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use utoipa::IntoParams;
use vdi_cluster_core::service::WorkerFilter;
use vdi_cluster_core::{Page, Timestamp, ValidationError, WorkerId, WorkerStatus, WorkerView};
use vdi_cluster_protocol::ErrorBody;
use vdi_cluster_protocol::cluster::{StatsJson, SummaryJson};
use vdi_cluster_protocol::maintenance::ForceQuery;
use vdi_cluster_protocol::page::PageQuery;
use vdi_cluster_protocol::reconcile::ReconcileReportJson;
use vdi_cluster_protocol::workers::{WorkerJson, WorkerList, WorkerSessionsJson};

use super::force::{forced_reason, override_of};
use crate::auth::{Caller, Principal};
use crate::error::ApiError;
use crate::extract::{PagedQuery, PathParams, QueryParams, bounded};
use crate::path_params::WorkerCodePath;
use crate::state::AppState;
use crate::stats_cache::IfNoneMatch;

/// Default and largest number of sessions listed per worker.
const SESSIONS_DEFAULT_LIMIT: usize = 1000;
const SESSIONS_MAX_LIMIT: usize = 10_000;

/// `code` as a worker id (field `code`).
pub(crate) fn worker_id(code: String) -> Result<WorkerId, ApiError> {
    Ok(WorkerId::parse("code", code)?)
}

/// The control plane's clock, at which views are judged.
pub(super) fn now(state: &AppState) -> Timestamp {
    state.service().clock().now()
}

/// Filters of the worker list.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListQuery {
    /// Only this status (`active`, `draining`, `drained`, `disabled`,
    /// `pending`, `unhealthy`, `unreachable`, `offline`), or `healthy`
    /// (as minicloud: heartbeating within the TTL, resources fine); any case.
    #[param(
        pattern = "^(?:[Aa][Cc][Tt][Ii][Vv][Ee]|[Dd][Rr][Aa][Ii][Nn][Ii][Nn][Gg]|[Dd][Rr][Aa][Ii][Nn][Ee][Dd]|[Dd][Ii][Ss][Aa][Bb][Ll][Ee][Dd]|[Pp][Ee][Nn][Dd][Ii][Nn][Gg]|[Uu][Nn][Hh][Ee][Aa][Ll][Tt][Hh][Yy]|[Uu][Nn][Rr][Ee][Aa][Cc][Hh][Aa][Bb][Ll][Ee]|[Oo][Ff][Ff][Ll][Ii][Nn][Ee]|[Hh][Ee][Aa][Ll][Tt][Hh][Yy])$"
    )]
    pub(crate) status: Option<String>,
    /// Only this zone.
    pub(crate) zone: Option<String>,
    /// Only workers with this label, as `key:value`.
    #[param(pattern = "^[^:]+:.+$")]
    pub(crate) label: Option<String>,
}

/// minicloud's `status=HEALTHY`: not one status but the healthy list.
const HEALTHY: &str = "healthy";

/// Whether `v` is in the healthy list: heartbeating within the TTL,
/// resources fine, not deregistered.
fn is_healthy(v: &WorkerView) -> bool {
    v.availability.is_healthy() && v.record.deregistered_at.is_none()
}

impl ListQuery {
    /// The core filter, and whether only healthy workers pass.
    fn filter(self) -> Result<(WorkerFilter, bool), ValidationError> {
        let status = self.status.map(|s| s.to_ascii_lowercase());
        let healthy_only = status.as_deref() == Some(HEALTHY);
        let status = status
            .filter(|_| !healthy_only)
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
        let filter = WorkerFilter {
            status,
            zone: self.zone,
            label,
            schedulable_only: false,
        };
        Ok((filter, healthy_only))
    }

    /// `page` of the workers passing these filters, by code (read whole,
    /// filtered and cut into a page here: the filters are core's).
    pub(crate) async fn list(self, state: &AppState, page: Page) -> Result<WorkerList, ApiError> {
        let (filter, healthy_only) = self.filter()?;
        let views = state.service().operations().list_workers(&filter).await?;
        let passing = views.iter().filter(|v| !healthy_only || is_healthy(v));
        Ok(WorkerList::new(passing, page, now(state)))
    }
}

/// Workers, by code, filtered by `status` (any case; `healthy` as
/// minicloud's `status=HEALTHY`), `zone` and `label=key:value`; a page of
/// them with `limit` and `offset` (without `limit`, every worker from
/// `offset`), `total` counting every worker passing the filters.
#[utoipa::path(
    get, path = "/api/vdi/workers", tag = "workers",
    params(ListQuery, PageQuery),
    responses(
        (status = 200, description = "Workers", body = WorkerList),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 503, body = ErrorBody),
    )
)]
pub(crate) async fn list(
    State(state): State<AppState>,
    PagedQuery(query, page): PagedQuery<ListQuery>,
) -> Result<Json<WorkerList>, ApiError> {
    let page = page.page(None)?;
    query.list(&state, page).await.map(Json)
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
    let query = ListQuery {
        status: Some(HEALTHY.to_owned()),
        ..ListQuery::default()
    };
    query.list(&state, Page::ALL).await.map(Json)
}

/// minicloud's `GET /api/workers/stats`: the cluster statistics of
/// `GET /api/vdi/cluster/stats`, from the same cache.
#[utoipa::path(
    get, path = "/api/vdi/workers/stats", tag = "workers",
    params(IfNoneMatch),
    responses(
        (status = 200, description = "Cluster statistics", body = StatsJson, headers(
            ("ETag" = String, description = "Strong tag of the body"),
            ("Cache-Control" = String, description = "private, max-age=<seconds left in this replica's window> (no-cache without one)"),
        )),
        (status = 304, description = "Not modified: If-None-Match names the current ETag"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 503, body = ErrorBody),
    )
)]
pub(crate) async fn stats(
    state: State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    super::cluster::stats(state, headers).await
}

/// The exam platform's admin summary: `healthyWorkers/totalWorkers`,
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
    let summary = state.service().operations().summary().await?;
    Ok(Json(SummaryJson::from(&summary)))
}

/// Runs a whole reconcile pass now, from the start of the dispatch
/// keyspace to its end (bounded; the leader's cursor is left alone), and
/// returns its report with how far it got (the exam platform's manual
/// reconcile); audited with the caller.
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
        .detached(async move { service.operations().reconcile_now(&actor).await })
        .await?;
    Ok(Json(ReconcileReportJson::from(&report)))
}

/// One worker.
#[utoipa::path(
    get, path = "/api/vdi/workers/{code}", tag = "workers",
    params(WorkerCodePath),
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
    let view = state.service().fleet().worker_view(&id).await?;
    Ok(Json(WorkerJson::new(&view, now(&state))))
}

/// Deletes a worker's record; refused (409) while dispatches remain on it,
/// and by the change freeze (409 with the exams and `safeFrom`) when it
/// makes an exam under way fit worse, unless `force=true&reason=…`.
#[utoipa::path(
    delete, path = "/api/vdi/workers/{code}", tag = "workers",
    params(WorkerCodePath, ForceQuery),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "Sessions remain, or the change freeze refuses (an ErrorBody with the exams and safeFrom: FreezeRefusedJson)", body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 503, body = ErrorBody),
    )
)]
pub(crate) async fn remove(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathParams(code): PathParams<String>,
    QueryParams(force): QueryParams<ForceQuery>,
) -> Result<StatusCode, ApiError> {
    frozen_change(&state, &caller, code, force, FrozenChange::Remove).await
}

/// Clears an upgrade of the worker's agent (`install-worker.sh --upgrade`
/// asks before it restarts the agent): 204 when taking the worker out
/// keeps every exam under way fitting, audited as `agent-upgrade`; refused
/// by the change freeze (409 with the exams and `safeFrom`) otherwise,
/// unless `force=true&reason=…`.
#[utoipa::path(
    post, path = "/api/vdi/workers/{code}/upgrade", tag = "workers",
    params(WorkerCodePath, ForceQuery),
    responses(
        (status = 204, description = "The upgrade may proceed"),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "The change freeze refuses (an ErrorBody with the exams and safeFrom: FreezeRefusedJson)", body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 503, body = ErrorBody),
    )
)]
pub(crate) async fn upgrade(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathParams(code): PathParams<String>,
    QueryParams(force): QueryParams<ForceQuery>,
) -> Result<StatusCode, ApiError> {
    frozen_change(&state, &caller, code, force, FrozenChange::Upgrade).await
}

/// A change of a worker that the change freeze checks and that answers
/// nothing but 204.
enum FrozenChange {
    Remove,
    Upgrade,
}

/// Runs `change` of worker `code` (forced past the freeze with
/// `force=true&reason=…`), to the end even if the client goes away.
async fn frozen_change(
    state: &AppState,
    caller: &Principal,
    code: String,
    force: ForceQuery,
    change: FrozenChange,
) -> Result<StatusCode, ApiError> {
    let id = worker_id(code)?;
    let forced = forced_reason(force.force, force.reason)?;
    let service = Arc::clone(state.service());
    let actor = caller.actor();
    state
        .detached(async move {
            let over = override_of(forced.as_deref());
            let fleet = service.fleet();
            match change {
                FrozenChange::Remove => fleet.remove_worker_forcing(&id, &actor, over).await,
                FrozenChange::Upgrade => fleet.clear_upgrade(&id, &actor, over).await,
            }
        })
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
    params(WorkerCodePath, LimitQuery),
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
    let dispatches = state
        .service()
        .operations()
        .worker_sessions(&id, limit)
        .await?;
    Ok(Json(WorkerSessionsJson::new(&id, &dispatches)))
}
