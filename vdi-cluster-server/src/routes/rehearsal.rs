//! An exam's rehearsal for operators: run it, re-check one worker, read
//! the go / no-go report (bodies in `vdi_cluster_protocol::rehearsal`; how
//! a rehearsal works in docs/rehearsal.md).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use vdi_cluster_core::ExamId;
use vdi_cluster_protocol::ErrorBody;
use vdi_cluster_protocol::rehearsal::RehearsalJson;

use super::workers::worker_id;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::PathParams;
use crate::path_params::{ExamPath, WorkerCodePath};
use crate::state::AppState;

/// Runs the exam's rehearsal now: one test desktop on each eligible
/// worker (through its start permit when starts are paced), each worker
/// recorded as ok, slow, image missing or failed with its reason; answers
/// the go / no-go report. Failing workers are left out of the exam's
/// placement and prewarm until a re-check passes. Audited; writes
/// `exam.rehearsal_failed` when a worker fails. Takes as long as the
/// slowest check (at most `--rehearsal-timeout-sec`).
#[utoipa::path(
    post, path = "/api/vdi/exams/{examId}/rehearsal", tag = "exams",
    params(ExamPath),
    responses(
        (status = 200, description = "The rehearsal just run and its go / no-go report", body = RehearsalJson),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, description = "No such exam on the calendar", body = ErrorBody),
        (status = 409, description = "Another rehearsal of the exam kept writing", body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 503, body = ErrorBody),
    )
)]
pub(crate) async fn run(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathParams(exam): PathParams<String>,
) -> Result<Json<RehearsalJson>, ApiError> {
    let exam = ExamId::parse("examId", exam)?;
    let service = Arc::clone(state.service());
    let actor = caller.actor();
    let done = state
        .detached(async move { service.exams().rehearse(&exam, &actor).await })
        .await?;
    Ok(Json(RehearsalJson::from(&done)))
}

/// The exam's last rehearsal and its go / no-go report now: which
/// workers failed and why, whether the exam still fits without them.
/// Before the first run: `verdict` `notRehearsed`, no worker.
#[utoipa::path(
    get, path = "/api/vdi/exams/{examId}/rehearsal", tag = "exams",
    params(ExamPath),
    responses(
        (status = 200, description = "The exam's rehearsal and go / no-go report", body = RehearsalJson),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, description = "No such exam on the calendar", body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 503, body = ErrorBody),
    )
)]
pub(crate) async fn report(
    State(state): State<AppState>,
    PathParams(exam): PathParams<String>,
) -> Result<Json<RehearsalJson>, ApiError> {
    let exam = ExamId::parse("examId", exam)?;
    Ok(Json(
        match state.service().exams().rehearsal(&exam).await? {
            Some(report) => RehearsalJson::from(&report),
            None => RehearsalJson::not_rehearsed(&exam),
        },
    ))
}

/// Checks one worker again for the exam's rehearsal and replaces its
/// result: a failing worker that passes is back in the exam. Audited.
#[utoipa::path(
    post, path = "/api/vdi/exams/{examId}/rehearsal/workers/{code}", tag = "exams",
    params(ExamPath, WorkerCodePath),
    responses(
        (status = 200, description = "The rehearsal after the worker's re-check", body = RehearsalJson),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, description = "No such exam or worker", body = ErrorBody),
        (status = 409, description = "Another rehearsal of the exam kept writing", body = ErrorBody),
        (status = 422, description = "A bad id, or the exam was never rehearsed", body = ErrorBody),
        (status = 503, body = ErrorBody),
    )
)]
pub(crate) async fn recheck(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathParams((exam, code)): PathParams<(String, String)>,
) -> Result<Json<RehearsalJson>, ApiError> {
    let exam = ExamId::parse("examId", exam)?;
    let worker = worker_id(code)?;
    let service = Arc::clone(state.service());
    let actor = caller.actor();
    let done = state
        .detached(async move { service.exams().recheck_worker(&exam, &worker, &actor).await })
        .await?;
    Ok(Json(RehearsalJson::from(&done)))
}
