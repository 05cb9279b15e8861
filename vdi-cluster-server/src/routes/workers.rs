//! Worker routes: heartbeat and registration (worker token), the admin page
//! (list, summary, detail, sessions, drain, PATCH, reconcile).

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use vdi_cluster_core::policy::Transition;
use vdi_cluster_core::service::{
    AdminOutcome, ClusterSummary, DrainInfo, ReconcileReport, WorkerFilter,
};
use vdi_cluster_core::{AdminAction, AdminPolicy, ValidationError, WorkerId, WorkerStatus};

use super::check_not_reserved;
use crate::auth::{Caller, Principal, ensure_worker};
use crate::error::ApiError;
use crate::extract::{JsonBody, OptionalJsonBody, PathParams, QueryParams};
use crate::state::AppState;
use crate::views::{AdminActionJson, SessionJson, WorkerJson, WorkerList, WorkerSessionsJson};
use vdi_cluster_protocol::{ErrorBody, HeartbeatRequest, HeartbeatResponse, RegisterRequest};

/// Longest drain deadline accepted (7 days).
const MAX_DRAIN_DEADLINE_SEC: u64 = 7 * 24 * 3600;
/// Default and largest number of sessions listed per worker.
const SESSIONS_DEFAULT_LIMIT: usize = 1000;
const SESSIONS_MAX_LIMIT: usize = 10_000;

fn worker_id(code: String) -> Result<WorkerId, ApiError> {
    Ok(WorkerId::parse("code", code)?)
}

fn worker_json(state: &AppState, view: &vdi_cluster_core::WorkerView) -> WorkerJson {
    WorkerJson::new(view, state.service().clock().now())
}

/// A worker's heartbeat (seed 000). Unknown workers are registered; unknown
/// fields are ignored; an older heartbeat changes nothing (`accepted: false`).
#[utoipa::path(
    post, path = "/api/vdi/workers/heartbeat", tag = "workers",
    request_body = HeartbeatRequest,
    responses(
        (status = 200, description = "Applied (or stale: accepted false)", body = HeartbeatResponse),
        (status = 400, description = "Malformed body", body = ErrorBody),
        (status = 401, description = "Missing or wrong x-worker-token", body = ErrorBody),
        (status = 403, description = "A worker credential of another worker", body = ErrorBody),
        (status = 422, description = "Invalid value", body = ErrorBody),
        (status = 503, description = "Backend unavailable", body = ErrorBody),
    )
)]
pub(crate) async fn heartbeat(
    State(state): State<AppState>,
    Caller(caller): Caller,
    body: Result<JsonBody<HeartbeatRequest>, ApiError>,
) -> Result<Json<HeartbeatResponse>, ApiError> {
    let result = apply_heartbeat(&state, &caller, body).await;
    match &result {
        Ok(ack) if ack.accepted => state.metrics().heartbeat_accepted(),
        Ok(_) => state.metrics().heartbeat_stale(),
        Err(_) => state.metrics().heartbeat_rejected(),
    }
    result.map(Json)
}

async fn apply_heartbeat(
    state: &AppState,
    caller: &Principal,
    body: Result<JsonBody<HeartbeatRequest>, ApiError>,
) -> Result<HeartbeatResponse, ApiError> {
    let JsonBody(request) = body?;
    let heartbeat = request.into_heartbeat()?;
    check_not_reserved(&heartbeat.worker)?;
    ensure_worker(state, caller, &heartbeat.worker).await?;
    let service = Arc::clone(state.service());
    let ack = state
        .detached(async move { service.heartbeat(heartbeat).await })
        .await?;
    Ok(HeartbeatResponse::from(&ack))
}

/// Registers a worker ahead of its first heartbeat (seed 003); idempotent.
#[utoipa::path(
    post, path = "/api/vdi/workers/register", tag = "workers",
    request_body = RegisterRequest,
    responses(
        (status = 200, description = "Registered or updated", body = WorkerJson),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 503, body = ErrorBody),
    )
)]
pub(crate) async fn register(
    State(state): State<AppState>,
    Caller(caller): Caller,
    JsonBody(request): JsonBody<RegisterRequest>,
) -> Result<Json<WorkerJson>, ApiError> {
    let (id, description) = request.into_parts()?;
    check_not_reserved(&id)?;
    ensure_worker(&state, &caller, &id).await?;
    let service = Arc::clone(state.service());
    let view = state
        .detached(async move { service.register(id, description).await })
        .await?;
    Ok(Json(worker_json(&state, &view)))
}

/// A worker leaving cleanly (seed 003): offline at once, takes no sessions;
/// its sessions go to the failure policy at the next reconcile. A later
/// heartbeat brings it back.
#[utoipa::path(
    post, path = "/api/vdi/workers/{code}/deregister", tag = "workers",
    params(("code" = String, Path, description = "Worker code")),
    responses(
        (status = 200, description = "Deregistered", body = WorkerJson),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 503, body = ErrorBody),
    )
)]
pub(crate) async fn deregister(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathParams(code): PathParams<String>,
) -> Result<Json<WorkerJson>, ApiError> {
    let id = worker_id(code)?;
    ensure_worker(&state, &caller, &id).await?;
    let actor = match caller {
        Principal::User(u) => u.sub,
        _ => format!("worker:{id}"),
    };
    let service = Arc::clone(state.service());
    let view = state
        .detached(async move { service.deregister(&id, &actor).await })
        .await?;
    Ok(Json(worker_json(&state, &view)))
}

/// Filters of the worker list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListQuery {
    /// Only this status (`active`, `draining`, `drained`, `disabled`,
    /// `pending`, `unhealthy`, `unreachable`, `offline`).
    status: Option<String>,
    /// Only this zone.
    zone: Option<String>,
    /// Only workers with this label, as `key:value`.
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
    let workers: Vec<WorkerJson> = views.iter().map(|v| worker_json(&state, v)).collect();
    Ok(Json(WorkerList {
        total: workers.len(),
        workers,
    }))
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
    let workers: Vec<WorkerJson> = views
        .iter()
        .filter(|v| v.availability.is_healthy() && v.record.deregistered_at.is_none())
        .map(|v| worker_json(&state, v))
        .collect();
    Ok(Json(WorkerList {
        total: workers.len(),
        workers,
    }))
}

/// Seed 000's admin summary: `healthyWorkers/totalWorkers`,
/// `totalAvailableSessions/totalMaxSessions`, `totalActiveSessions`, drain
/// counts.
#[utoipa::path(
    get, path = "/api/vdi/workers/summary", tag = "workers",
    responses(
        (status = 200, description = "Summary", body = serde_json::Value),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 503, body = ErrorBody),
    )
)]
pub(crate) async fn summary(
    State(state): State<AppState>,
) -> Result<Json<ClusterSummary>, ApiError> {
    Ok(Json(state.service().summary().await?))
}

/// Runs a reconcile pass now and returns its report (seed 000 "manual
/// reconcile"); audited with the caller.
#[utoipa::path(
    post, path = "/api/vdi/workers/reconcile", tag = "workers",
    responses(
        (status = 200, description = "What the pass did", body = serde_json::Value),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 503, body = ErrorBody),
    )
)]
pub(crate) async fn reconcile(
    State(state): State<AppState>,
    Caller(caller): Caller,
) -> Result<Json<ReconcileReport>, ApiError> {
    let service = Arc::clone(state.service());
    let actor = caller.actor();
    let report = state
        .detached(async move { service.reconcile_now(&actor).await })
        .await?;
    Ok(Json(report))
}

/// One worker.
#[utoipa::path(
    get, path = "/api/vdi/workers/{code}", tag = "workers",
    params(("code" = String, Path, description = "Worker code")),
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
    Ok(Json(worker_json(&state, &view)))
}

/// Seed 000's `PATCH` body: `{"isDraining": bool}` or
/// `{"isEnabled": bool, "force": bool}`. Unknown fields are refused.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct PatchWorkerRequest {
    /// `true`: drain (keep sessions, take no new ones); `false`: activate.
    is_draining: Option<bool>,
    /// `false`: disable (refused while sessions remain unless `force`);
    /// `true`: enable.
    is_enabled: Option<bool>,
    /// With `isEnabled: false`: disable even with sessions (they are
    /// dropped).
    force: Option<bool>,
    /// With `isDraining: true`: after this many seconds, remaining sessions
    /// are dropped as by a forced disable.
    drain_deadline_sec: Option<u64>,
}

fn deadline(
    state: &AppState,
    field: &str,
    seconds: Option<u64>,
) -> Result<Option<vdi_cluster_core::Timestamp>, ApiError> {
    match seconds {
        None => Ok(None),
        Some(s) if (1..=MAX_DRAIN_DEADLINE_SEC).contains(&s) => Ok(Some(
            state.service().clock().now().plus(Duration::from_secs(s)),
        )),
        Some(_) => Err(ApiError::invalid(ValidationError::new(
            field,
            format!("must be from 1 to {MAX_DRAIN_DEADLINE_SEC}"),
        ))),
    }
}

impl PatchWorkerRequest {
    fn action(self, state: &AppState) -> Result<AdminAction, ApiError> {
        let invalid =
            |field: &str, message: &str| ApiError::invalid(ValidationError::new(field, message));
        if self.force.is_some() && self.is_enabled != Some(false) {
            return Err(invalid("force", "is valid only with isEnabled: false"));
        }
        if self.drain_deadline_sec.is_some() && self.is_draining != Some(true) {
            return Err(invalid(
                "drainDeadlineSec",
                "is valid only with isDraining: true",
            ));
        }
        match (self.is_draining, self.is_enabled) {
            (Some(_), Some(_)) => Err(invalid(
                "isEnabled",
                "give either isDraining or isEnabled, not both",
            )),
            (None, None) => Err(invalid("body", "expected isDraining or isEnabled")),
            (Some(true), None) => Ok(AdminAction::Drain {
                deadline: deadline(state, "drainDeadlineSec", self.drain_deadline_sec)?,
            }),
            (Some(false), None) => Ok(AdminAction::Activate),
            (None, Some(true)) => Ok(AdminAction::Enable),
            (None, Some(false)) => Ok(AdminAction::Disable {
                force: self.force.unwrap_or(false),
            }),
        }
    }
}

fn message(action: AdminAction, t: &Transition, sessions: u32) -> String {
    if !t.changed() {
        return format!("No change: the worker is already {}.", t.to.name());
    }
    match (action, t.to) {
        (_, AdminPolicy::Drained) => "Worker drained: no sessions remain.".into(),
        (_, AdminPolicy::Draining { .. }) => format!(
            "Worker marked as draining: it keeps its {sessions} session(s) and takes no new ones."
        ),
        (_, AdminPolicy::Disabled { forced: true }) => {
            "Worker disabled by force: its sessions were dropped and go to the failure policy."
                .into()
        }
        (_, AdminPolicy::Disabled { forced: false }) => "Worker disabled.".into(),
        (AdminAction::Enable, AdminPolicy::Active) => {
            "Worker enabled: it takes new sessions again.".into()
        }
        (_, AdminPolicy::Active) => "Worker activated: it takes new sessions again.".into(),
    }
}

async fn run_admin(
    state: &AppState,
    id: WorkerId,
    action: AdminAction,
    actor: String,
) -> Result<AdminActionJson, ApiError> {
    let service = Arc::clone(state.service());
    let AdminOutcome { worker, transition } = state
        .detached(async move { service.admin(&id, action, &actor).await })
        .await?;
    Ok(AdminActionJson {
        code: worker.id().to_string(),
        status: worker.status.name().to_owned(),
        from: transition.from.name().to_owned(),
        to: transition.to.name().to_owned(),
        changed: transition.changed(),
        message: message(action, &transition, worker.occupancy().sessions()),
        worker: worker_json(state, &worker),
    })
}

/// Drain, activate, disable or enable a worker (seed 000's runbook).
/// Disabling a worker that still has sessions is refused (409, naming the
/// count) unless `force: true`.
#[utoipa::path(
    patch, path = "/api/vdi/workers/{code}", tag = "workers",
    params(("code" = String, Path, description = "Worker code")),
    request_body = PatchWorkerRequest,
    responses(
        (status = 200, description = "Applied (or already so)", body = AdminActionJson),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "Illegal transition, or sessions remain", body = ErrorBody),
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
    let action = body.action(&state)?;
    Ok(Json(run_admin(&state, id, action, caller.actor()).await?))
}

/// Deletes a worker's record; refused (409) while dispatches remain on it.
#[utoipa::path(
    delete, path = "/api/vdi/workers/{code}", tag = "workers",
    params(("code" = String, Path, description = "Worker code")),
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
    limit: Option<usize>,
}

fn limit(limit: Option<usize>, default: usize, max: usize) -> Result<usize, ApiError> {
    match limit {
        None => Ok(default),
        Some(n) if (1..=max).contains(&n) => Ok(n),
        Some(_) => Err(ApiError::invalid(ValidationError::new(
            "limit",
            format!("must be from 1 to {max}"),
        ))),
    }
}

/// A worker's sessions.
#[utoipa::path(
    get, path = "/api/vdi/workers/{code}/sessions", tag = "workers",
    params(("code" = String, Path, description = "Worker code"), LimitQuery),
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
    let limit = limit(query.limit, SESSIONS_DEFAULT_LIMIT, SESSIONS_MAX_LIMIT)?;
    let dispatches = state.service().worker_sessions(&id, limit).await?;
    let sessions: Vec<SessionJson> = dispatches.iter().map(SessionJson::from).collect();
    Ok(Json(WorkerSessionsJson {
        code: id.to_string(),
        total: sessions.len(),
        sessions,
    }))
}

/// What still blocks a worker's drain: its sessions, by exam. Observing may
/// complete the drain.
#[utoipa::path(
    get, path = "/api/vdi/workers/{code}/drain", tag = "workers",
    params(("code" = String, Path, description = "Worker code")),
    responses(
        (status = 200, description = "Drain state and blockers", body = serde_json::Value),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 503, body = ErrorBody),
    )
)]
pub(crate) async fn drain_info(
    State(state): State<AppState>,
    PathParams(code): PathParams<String>,
) -> Result<Json<DrainInfo>, ApiError> {
    let id = worker_id(code)?;
    let service = Arc::clone(state.service());
    let info = state
        .detached(async move { service.drain_info(&id).await })
        .await?;
    Ok(Json(info))
}

/// Optional body of the drain action.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct DrainRequest {
    /// After this many seconds, remaining sessions are dropped as by a
    /// forced disable.
    deadline_sec: Option<u64>,
}

async fn start_drain(
    state: AppState,
    caller: Principal,
    code: String,
    body: Option<DrainRequest>,
) -> Result<(StatusCode, Json<AdminActionJson>), ApiError> {
    let id = worker_id(code)?;
    let seconds = body.unwrap_or_default().deadline_sec;
    let action = AdminAction::Drain {
        deadline: deadline(&state, "deadlineSec", seconds)?,
    };
    let json = run_admin(&state, id, action, caller.actor()).await?;
    Ok((StatusCode::ACCEPTED, Json(json)))
}

/// Drains a worker (seed 004): it keeps its sessions and takes no new ones;
/// `drainStatus` becomes `drained` once nothing remains on it.
#[utoipa::path(
    post, path = "/api/vdi/workers/{code}/drain", tag = "workers",
    params(("code" = String, Path, description = "Worker code")),
    request_body(content = Option<DrainRequest>, description = "Optional deadline"),
    responses(
        (status = 202, description = "Draining (or drained already)", body = AdminActionJson),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 503, body = ErrorBody),
    )
)]
pub(crate) async fn drain(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathParams(code): PathParams<String>,
    OptionalJsonBody(body): OptionalJsonBody<DrainRequest>,
) -> Result<(StatusCode, Json<AdminActionJson>), ApiError> {
    start_drain(state, caller, code, body).await
}

/// Drains a worker (PUT form, as neon's storage controller).
#[utoipa::path(
    put, path = "/api/vdi/workers/{code}/drain", tag = "workers",
    params(("code" = String, Path, description = "Worker code")),
    request_body(content = Option<DrainRequest>, description = "Optional deadline"),
    responses(
        (status = 202, description = "Draining (or drained already)", body = AdminActionJson),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 503, body = ErrorBody),
    )
)]
pub(crate) async fn drain_put(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathParams(code): PathParams<String>,
    OptionalJsonBody(body): OptionalJsonBody<DrainRequest>,
) -> Result<(StatusCode, Json<AdminActionJson>), ApiError> {
    start_drain(state, caller, code, body).await
}

/// Returns a draining, drained or disabled worker to service (seed 004).
#[utoipa::path(
    post, path = "/api/vdi/workers/{code}/activate", tag = "workers",
    params(("code" = String, Path, description = "Worker code")),
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
        run_admin(&state, id, AdminAction::Activate, caller.actor()).await?,
    ))
}
