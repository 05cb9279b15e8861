//! Paced starts for operators: a worker's start pacing and an exam's
//! starts (bodies in `vdi_cluster_protocol::pacing`; how pacing works in
//! docs/paced-starts.md).

use axum::Json;
use axum::extract::State;
use vdi_cluster_core::ExamId;
use vdi_cluster_protocol::ErrorBody;
use vdi_cluster_protocol::pacing::{ExamStartsJson, WorkerStartsJson};

use super::workers::worker_id;
use crate::error::ApiError;
use crate::extract::PathParams;
use crate::path_params::{ExamPath, WorkerCodePath};
use crate::state::AppState;

/// A worker's start pacing: its configured start concurrency, the limit
/// adapted from its measured start times, starts in flight and waiting,
/// and the p50/p95 of its last starts.
#[utoipa::path(
    get, path = "/api/vdi/workers/{code}/starts", tag = "workers",
    params(WorkerCodePath),
    responses(
        (status = 200, description = "The worker's start pacing", body = WorkerStartsJson),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 503, body = ErrorBody),
    )
)]
pub(crate) async fn worker(
    State(state): State<AppState>,
    PathParams(code): PathParams<String>,
) -> Result<Json<WorkerStartsJson>, ApiError> {
    let id = worker_id(code)?;
    let view = state.service().fleet().worker_view(&id).await?;
    let pacing = state
        .service()
        .placement()
        .start_pacing(&view.record)
        .await?;
    Ok(Json(WorkerStartsJson::from(&pacing)))
}

/// An exam's starts: students whose desktop is starting, the p50/p95 of
/// the time from a seat's reservation to its desktop, and the start
/// pacing of every worker holding the exam's sessions. An exam with no
/// session has no starts.
#[utoipa::path(
    get, path = "/api/vdi/exams/{examId}/starts", tag = "exams",
    params(ExamPath),
    responses(
        (status = 200, description = "The exam's starts", body = ExamStartsJson),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 503, body = ErrorBody),
    )
)]
pub(crate) async fn exam(
    State(state): State<AppState>,
    PathParams(exam): PathParams<String>,
) -> Result<Json<ExamStartsJson>, ApiError> {
    let exam = ExamId::parse("examId", exam)?;
    let starts = state.service().exams().exam_starts(&exam).await?;
    Ok(Json(ExamStartsJson::from(&starts)))
}
