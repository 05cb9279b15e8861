//! Exams booked with admission control (bodies in
//! `vdi_cluster_protocol::exams`): book, list, look up, change, cancel.
//! A booking or change that does not fit answers 409 with the shortfall,
//! the peak, the exams there and the earliest start that fits.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use vdi_cluster_core::ExamId;
use vdi_cluster_core::service::Booking;
use vdi_cluster_protocol::ErrorBody;
use vdi_cluster_protocol::exams::{
    AdmissionRefusedJson, BookExamRequest, CalendarQuery, ExamCalendarJson, ExamDetailJson,
    ExamJson, PatchExamRequest,
};
use vdi_cluster_protocol::page::PageQuery;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::{JsonBody, PagedQuery, PathParams};
use crate::state::AppState;

fn answer(booking: Booking, accepted: StatusCode) -> Response {
    match booking {
        Booking::Accepted(status) => (accepted, Json(ExamJson::from(&*status))).into_response(),
        Booking::Refused(refusal) => (
            StatusCode::CONFLICT,
            Json(AdmissionRefusedJson::from(&*refusal)),
        )
            .into_response(),
    }
}

/// Books an exam if, at every instant from `startsAt − prewarm.leadSec` to
/// `endsAt + teardownSec`, the booked exams overlapping it fit the
/// schedulable capacity for their constraints, less headroom.
#[utoipa::path(
    post, path = "/api/vdi/exams", tag = "exams",
    request_body = BookExamRequest,
    responses(
        (status = 201, description = "Booked", body = ExamJson),
        (status = 409, description = "Does not fit (with the earliest start that does), or already booked", body = AdmissionRefusedJson),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 503, body = ErrorBody),
    )
)]
pub(crate) async fn book(
    State(state): State<AppState>,
    Caller(caller): Caller,
    JsonBody(body): JsonBody<BookExamRequest>,
) -> Result<Response, ApiError> {
    let exam = body.into_exam()?;
    let service = Arc::clone(state.service());
    let actor = caller.actor().to_owned();
    let booking = state
        .detached(async move { service.exams().book_exam(exam, &actor).await })
        .await?;
    Ok(answer(booking, StatusCode::CREATED))
}

/// The calendar: exams overlapping `[from, to)`, by start, then id, each
/// with whether it still fits the capacity now (`fits`, `atRisk`,
/// `shortfall`) and its prewarm readiness (`readiness`): a page of them
/// with `limit` (default: all) and `offset`.
#[utoipa::path(
    get, path = "/api/vdi/exams", tag = "exams",
    params(CalendarQuery, PageQuery),
    responses(
        (status = 200, description = "The calendar", body = ExamCalendarJson),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 503, body = ErrorBody),
    )
)]
pub(crate) async fn calendar(
    State(state): State<AppState>,
    PagedQuery(query, page): PagedQuery<CalendarQuery>,
) -> Result<Json<ExamCalendarJson>, ApiError> {
    let (from, to) = query.bounds()?;
    let page = page.page(None)?;
    let exams = state.service().exams().exam_calendar(from, to).await?;
    Ok(Json(ExamCalendarJson::new(&exams, page)))
}

/// One exam and its figures: booked students, reserved capacity, sessions
/// in use (from its dispatch records), by worker; its prewarm (target,
/// ready, starting, failed, lost, readiness, per worker, from the workers'
/// heartbeats); this replica's placed and refused allocations and
/// time-to-desktop p50/p95.
#[utoipa::path(
    get, path = "/api/vdi/exams/{examId}", tag = "exams",
    params(("examId" = String, Path, description = "Exam id")),
    responses(
        (status = 200, description = "The exam", body = ExamDetailJson),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 503, body = ErrorBody),
    )
)]
pub(crate) async fn detail(
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
) -> Result<Json<ExamDetailJson>, ApiError> {
    let id = ExamId::parse("examId", id)?;
    let figures = state.service().exams().exam_figures(&id).await?;
    let mut detail = ExamDetailJson::from(&figures);
    detail.figures.allocations = state.metrics().exams().figures(&id);
    Ok(Json(detail))
}

/// Changes an exam; a change of time, size or constraints is admitted
/// again (409 as for a booking).
#[utoipa::path(
    patch, path = "/api/vdi/exams/{examId}", tag = "exams",
    params(("examId" = String, Path, description = "Exam id")),
    request_body = PatchExamRequest,
    responses(
        (status = 200, description = "Changed", body = ExamJson),
        (status = 409, description = "The change does not fit", body = AdmissionRefusedJson),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 503, body = ErrorBody),
    )
)]
pub(crate) async fn patch(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathParams(id): PathParams<String>,
    JsonBody(body): JsonBody<PatchExamRequest>,
) -> Result<Response, ApiError> {
    let id = ExamId::parse("examId", id)?;
    let patch = body.into_patch()?;
    let service = Arc::clone(state.service());
    let actor = caller.actor().to_owned();
    let booking = state
        .detached(async move { service.exams().update_exam(&id, &patch, &actor).await })
        .await?;
    Ok(answer(booking, StatusCode::OK))
}

/// Cancels an exam, tells the workers holding its prewarmed machines to
/// discard them and removes its rehearsal's record; answers the cancelled
/// exam.
#[utoipa::path(
    delete, path = "/api/vdi/exams/{examId}", tag = "exams",
    params(("examId" = String, Path, description = "Exam id")),
    responses(
        (status = 200, description = "Cancelled", body = ExamJson),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 503, body = ErrorBody),
    )
)]
pub(crate) async fn cancel(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathParams(id): PathParams<String>,
) -> Result<Json<ExamJson>, ApiError> {
    let id = ExamId::parse("examId", id)?;
    let service = Arc::clone(state.service());
    let actor = caller.actor().to_owned();
    let exam = state
        .detached(async move { service.exams().cancel_exam(&id, &actor).await })
        .await?;
    Ok(Json(ExamJson::from(
        &vdi_cluster_core::service::ExamStatus {
            exam,
            at_risk: None,
            with_scale_up: false,
            prewarm: Default::default(),
        },
    )))
}
