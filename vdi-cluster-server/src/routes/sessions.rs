//! The session API the exam application calls: allocate, look up and
//! release a student's session, prewarm an exam (bodies in
//! `vdi_cluster_protocol::sessions`). Unknown fields are refused. Allocation, release and prewarm run detached from the request,
//! so a client that disconnects cannot cut them short.

use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use vdi_cluster_core::service::{AllocateOutcome, Allocation};
use vdi_cluster_core::{Constraints, Error as CoreError, ExamId, SessionKey};
use vdi_cluster_protocol::ErrorBody;
use vdi_cluster_protocol::sessions::{
    AllocateSessionRequest, PrewarmExamRequest, PrewarmReportJson, ReleaseJson, SessionJson,
};

use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::{JsonBody, PathParams};
use crate::metrics::AllocationResult;
use crate::state::AppState;

fn allocation_result(result: &Result<Allocation, CoreError>) -> AllocationResult<'_> {
    match result {
        Ok(a) => AllocationResult::Done(&a.outcome),
        Err(CoreError::NoCapacity(_)) => AllocationResult::NoCapacity,
        Err(CoreError::AllocationInProgress(_)) => AllocationResult::InProgress,
        Err(CoreError::Invalid(_)) => AllocationResult::Invalid,
        Err(CoreError::Unavailable { .. }) => AllocationResult::Unavailable,
        Err(_) => AllocationResult::Error,
    }
}

/// Places a student's session on a worker, or returns the one it already
/// has (201 for a new placement, 200 for an existing one). `503` with
/// `Retry-After` when no worker can take it.
#[utoipa::path(
    post, path = "/api/vdi/sessions", tag = "sessions",
    request_body = AllocateSessionRequest,
    responses(
        (status = 201, description = "Placed", body = SessionJson),
        (status = 200, description = "Already placed: the same session", body = SessionJson),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 409, description = "The same session is being placed right now", body = ErrorBody),
        (status = 422, body = ErrorBody),
        (status = 503, description = "No capacity, or backend unavailable (Retry-After)", body = ErrorBody),
    )
)]
pub(crate) async fn allocate(
    State(state): State<AppState>,
    Caller(caller): Caller,
    JsonBody(body): JsonBody<AllocateSessionRequest>,
) -> Result<(StatusCode, Json<SessionJson>), ApiError> {
    let key = SessionKey::parse(body.exam_id, body.user_id)?;
    caller.ensure_may_act_for(&key.user_id)?;
    // Core's allocate validates the constraints.
    let constraints = Constraints::from(body.constraints.unwrap_or_default());
    let service = Arc::clone(state.service());
    let exam = key.exam_id.clone();
    let started = Instant::now();
    let joined = state
        .tasks()
        .spawn(async move { service.allocate(key, constraints).await })
        .await;
    let result = joined.map_err(|e| {
        tracing::error!(error = %e, "allocation task failed");
        ApiError::internal()
    })?;
    state
        .metrics()
        .allocation(allocation_result(&result), started.elapsed());
    state
        .metrics()
        .exams()
        .allocation(&exam, allocation_result(&result), started.elapsed());
    let allocation = result?;
    let status = match allocation.outcome {
        AllocateOutcome::Existing => StatusCode::OK,
        AllocateOutcome::Placed { .. } | AllocateOutcome::Redispatched { .. } => {
            StatusCode::CREATED
        }
    };
    Ok((status, Json(SessionJson::from(&allocation))))
}

fn session_key(state_path: (String, String)) -> Result<SessionKey, ApiError> {
    Ok(SessionKey::parse(state_path.0, state_path.1)?)
}

/// Where a student's session is.
#[utoipa::path(
    get, path = "/api/vdi/sessions/{examId}/{userId}", tag = "sessions",
    params(
        ("examId" = String, Path, description = "Exam id", pattern = "^[^\\s\\x00-\\x1f\\x7f-\\x9f](?:[^\\x00-\\x1f\\x7f-\\x9f]*[^\\s\\x00-\\x1f\\x7f-\\x9f])?$", min_length = 1, max_length = 128),
        ("userId" = String, Path, description = "Student id", pattern = "^[^\\s\\x00-\\x1f\\x7f-\\x9f](?:[^\\x00-\\x1f\\x7f-\\x9f]*[^\\s\\x00-\\x1f\\x7f-\\x9f])?$", min_length = 1, max_length = 128),
    ),
    responses(
        (status = 200, description = "The session", body = SessionJson),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 503, body = ErrorBody),
    )
)]
pub(crate) async fn get(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathParams(path): PathParams<(String, String)>,
) -> Result<Json<SessionJson>, ApiError> {
    let key = session_key(path)?;
    caller.ensure_may_act_for(&key.user_id)?;
    let dispatch = state.service().session(&key).await?;
    Ok(Json(SessionJson::from(&dispatch)))
}

/// Releases a student's session (on submission): the worker is told to
/// stop it and the dispatch is removed. Releasing twice is a no-op
/// (`released: false`).
#[utoipa::path(
    delete, path = "/api/vdi/sessions/{examId}/{userId}", tag = "sessions",
    params(
        ("examId" = String, Path, description = "Exam id", pattern = "^[^\\s\\x00-\\x1f\\x7f-\\x9f](?:[^\\x00-\\x1f\\x7f-\\x9f]*[^\\s\\x00-\\x1f\\x7f-\\x9f])?$", min_length = 1, max_length = 128),
        ("userId" = String, Path, description = "Student id", pattern = "^[^\\s\\x00-\\x1f\\x7f-\\x9f](?:[^\\x00-\\x1f\\x7f-\\x9f]*[^\\s\\x00-\\x1f\\x7f-\\x9f])?$", min_length = 1, max_length = 128),
    ),
    responses(
        (status = 200, description = "Released, or nothing to release", body = ReleaseJson),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 503, body = ErrorBody),
    )
)]
pub(crate) async fn release(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathParams(path): PathParams<(String, String)>,
) -> Result<Json<ReleaseJson>, ApiError> {
    let key = session_key(path)?;
    caller.ensure_may_act_for(&key.user_id)?;
    let service = Arc::clone(state.service());
    let task_key = key.clone();
    let released = state
        .detached(async move { service.release(&task_key).await })
        .await?;
    Ok(Json(ReleaseJson::new(&key, released.as_ref())))
}

/// Prewarms machines for an exam: split across eligible workers in
/// proportion to their free slots, capped by the cluster's free slots and
/// `VDI_PREWARM_MAX`, with `VDI_PREWARM_CONCURRENCY` worker calls in flight.
#[utoipa::path(
    post, path = "/api/vdi/exams/{examId}/prewarm", tag = "sessions",
    params(("examId" = String, Path, description = "Exam id", pattern = "^[^\\s\\x00-\\x1f\\x7f-\\x9f](?:[^\\x00-\\x1f\\x7f-\\x9f]*[^\\s\\x00-\\x1f\\x7f-\\x9f])?$", min_length = 1, max_length = 128)),
    request_body = PrewarmExamRequest,
    responses(
        (status = 200, description = "What was planned and started", body = PrewarmReportJson),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 503, body = ErrorBody),
    )
)]
pub(crate) async fn prewarm(
    State(state): State<AppState>,
    PathParams(exam): PathParams<String>,
    JsonBody(body): JsonBody<PrewarmExamRequest>,
) -> Result<Json<PrewarmReportJson>, ApiError> {
    let exam = ExamId::parse("examId", exam)?;
    let constraints = Constraints::from(body.constraints.unwrap_or_default());
    let service = Arc::clone(state.service());
    let count = body.count;
    let report = state
        .detached(async move { service.prewarm(exam, count, constraints).await })
        .await?;
    Ok(Json(PrewarmReportJson::from(&report)))
}
