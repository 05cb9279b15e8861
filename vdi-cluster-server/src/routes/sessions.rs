//! The session API the exam application calls: allocate, look up and
//! release a student's session, prewarm an exam (bodies in
//! `vdi_cluster_protocol::sessions`; a student in a booked exam's waiting
//! room is answered with `vdi_cluster_protocol::waiting_room::QueuedJson`,
//! one whose paced start waits with `vdi_cluster_protocol::pacing::StartingJson`).
//! Unknown fields are refused. Allocation, release and prewarm run
//! detached from the request, so a client that disconnects cannot cut
//! them short.

use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use vdi_cluster_core::exam::format_rfc3339;
use vdi_cluster_core::service::{AllocateOutcome, SessionRequest, SessionState};
use vdi_cluster_core::{Constraints, Error as CoreError, ExamId, SessionKey};
use vdi_cluster_protocol::ErrorBody;
use vdi_cluster_protocol::pacing::{PREFER, StartingJson, prefers_async};
use vdi_cluster_protocol::session_answers::{AcceptedJson, SessionAnswerJson};
use vdi_cluster_protocol::sessions::{
    AllocateSessionRequest, PrewarmExamRequest, PrewarmReportJson, ReleaseJson, SessionJson,
};
use vdi_cluster_protocol::waiting_room::QueuedJson;

use utoipa::IntoParams;
use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::{ObjectBuilder, Required, Type};

use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::{JsonBody, PathParams};
use crate::metrics::AllocationResult;
use crate::path_params::{ExamPath, SessionPath};
use crate::state::AppState;

fn allocation_result(result: &Result<SessionRequest, CoreError>) -> AllocationResult<'_> {
    match result {
        Ok(SessionRequest::Placed(a)) => AllocationResult::Done(&a.outcome),
        Ok(SessionRequest::Queued(_)) => AllocationResult::Queued,
        Ok(SessionRequest::Starting(_)) => AllocationResult::Starting,
        Err(CoreError::NoCapacity(_)) => AllocationResult::NoCapacity,
        Err(CoreError::AllocationInProgress(_)) => AllocationResult::InProgress,
        Err(CoreError::Invalid(_)) => AllocationResult::Invalid,
        Err(CoreError::Unavailable { .. }) => AllocationResult::Unavailable,
        Err(_) => AllocationResult::Error,
    }
}

/// Places a student's session on a worker, or returns the one it already
/// has (201 for a new placement, 200 for an existing one). A student of a
/// booked exam with `queue` on who cannot be placed (or arrives while
/// others wait) joins the exam's queue: 202 with the position; asking
/// again answers the current position. `503` with `Retry-After` when no
/// worker can take a session of an exam that is not booked (or queues
/// nobody).
///
/// With paced starts (the default; `serve --pace-starts false` turns them
/// off), a student of a booked exam whose start must wait for a start
/// permit of its worker is answered at once: 202 with `state: starting`,
/// the worker and `estimatedReadySec`;
/// the desktop starts after the answer and `GET` shows it `starting`, then
/// placed. A request of an exam that is not booked keeps the synchronous
/// answer unless it sends `Prefer: respond-async` (docs/paced-starts.md).
#[utoipa::path(
    post, path = "/api/vdi/sessions", tag = "sessions",
    params(PreferHeader),
    request_body = AllocateSessionRequest,
    responses(
        (status = 201, description = "Placed", body = SessionJson),
        (status = 200, description = "Already placed: the same session", body = SessionJson),
        (status = 202, description = "Queued in the booked exam's waiting room, or (paced starts) starting after the answer", body = AcceptedJson),
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
    headers: HeaderMap,
    JsonBody(body): JsonBody<AllocateSessionRequest>,
) -> Result<Response, ApiError> {
    let respond_async = prefers_async(headers.get(PREFER).and_then(|v| v.to_str().ok()));
    let key = SessionKey::parse(body.exam_id, body.user_id)?;
    caller.ensure_may_act_for(&key.user_id)?;
    // Core's allocate validates the constraints.
    let constraints = Constraints::from(body.constraints.unwrap_or_default());
    let service = Arc::clone(state.service());
    let task_key = key.clone();
    let started = Instant::now();
    let joined = state
        .tasks()
        .spawn(async move {
            service
                .placement()
                .request_session_paced(task_key, constraints, respond_async)
                .await
        })
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
        .allocation(&key.exam_id, allocation_result(&result), started.elapsed());
    let allocation = match result? {
        SessionRequest::Placed(allocation) => allocation,
        SessionRequest::Queued(standing) => {
            let body = QueuedJson::new(&key, &standing);
            return Ok((StatusCode::ACCEPTED, Json(body)).into_response());
        }
        SessionRequest::Starting(starting) => {
            let body = StartingJson::new(&key, &starting);
            return Ok((StatusCode::ACCEPTED, Json(body)).into_response());
        }
    };
    let status = match allocation.outcome {
        AllocateOutcome::Existing => StatusCode::OK,
        AllocateOutcome::Placed { .. } | AllocateOutcome::Redispatched { .. } => {
            StatusCode::CREATED
        }
    };
    Ok((status, Json(SessionJson::from(&*allocation))).into_response())
}

/// The `Prefer` request header of `POST /api/vdi/sessions`, as the
/// OpenAPI document states it.
pub(crate) struct PreferHeader;

impl IntoParams for PreferHeader {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![
            ParameterBuilder::new()
                .name("Prefer")
                .parameter_in(ParameterIn::Header)
                .description(Some(
                    "respond-async: with paced starts, answer 202 `starting` when the start waits for a permit, also for an exam that is not booked",
                ))
                .required(Required::False)
                .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
                .build(),
        ]
    }
}

fn session_key(state_path: (String, String)) -> Result<SessionKey, ApiError> {
    Ok(SessionKey::parse(state_path.0, state_path.1)?)
}

/// Where a student's session is (with the student's own `endsAt` when the
/// exam is booked), the student's place in the exam's queue (`state:
/// queued`; asking counts as polling and keeps the place), or, with paced
/// starts, a desktop still starting (`state: starting`, with
/// `estimatedReadySec`).
#[utoipa::path(
    get, path = "/api/vdi/sessions/{examId}/{userId}", tag = "sessions",
    params(SessionPath),
    responses(
        (status = 200, description = "The session, the student's place in the queue, or a desktop still starting", body = SessionAnswerJson),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 503, body = ErrorBody),
    )
)]
pub(crate) async fn get(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathParams(path): PathParams<(String, String)>,
) -> Result<Json<SessionAnswerJson>, ApiError> {
    let key = session_key(path)?;
    caller.ensure_may_act_for(&key.user_id)?;
    Ok(Json(
        match state.service().placement().session_state(&key).await? {
            SessionState::Placed(dispatch) => {
                let mut json = SessionJson::from(&*dispatch);
                let end = state.service().exams().session_end(&key).await?;
                json.ends_at = end.map(|e| format_rfc3339(e.ends_at));
                let ledger = state.service().exams().session_ledger(&key).await?;
                SessionAnswerJson::Session(Box::new(json.with_ledger(&ledger)))
            }
            SessionState::Queued(standing) => {
                SessionAnswerJson::Queued(QueuedJson::new(&key, &standing))
            }
            SessionState::Starting(starting) => {
                SessionAnswerJson::Starting(StartingJson::new(&key, &starting))
            }
        },
    ))
}

/// Releases a student's session (on submission): the worker is told to
/// stop it and the dispatch is removed; a student waiting in the exam's
/// queue leaves it (`leftQueue: true`). Releasing twice is a no-op
/// (`released: false`). A released slot goes to the head of the exam's
/// queue, placed in the background.
#[utoipa::path(
    delete, path = "/api/vdi/sessions/{examId}/{userId}", tag = "sessions",
    params(SessionPath),
    responses(
        (status = 200, description = "Released, left the queue, or nothing to do", body = ReleaseJson),
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
    let departure = state
        .detached(async move { service.placement().end_session(&task_key).await })
        .await?;
    if departure.released.is_some() {
        let service = Arc::clone(state.service());
        let exam = key.exam_id.clone();
        state
            .tasks()
            .spawn(async move { service.placement().promote_after_release(&exam).await });
    }
    Ok(Json(ReleaseJson::ended(&key, &departure)))
}

/// Prewarms machines for an exam: split across eligible workers in
/// proportion to their free slots, capped by the cluster's free slots and
/// `VDI_PREWARM_MAX`, with `VDI_PREWARM_CONCURRENCY` worker calls in flight.
#[utoipa::path(
    post, path = "/api/vdi/exams/{examId}/prewarm", tag = "sessions",
    params(ExamPath),
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
        .detached(async move { service.exams().prewarm(exam, count, constraints).await })
        .await?;
    Ok(Json(PrewarmReportJson::from(&report)))
}
