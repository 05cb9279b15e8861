//! Operators' view of an exam's waiting room (body in
//! `vdi_cluster_protocol::waiting_room`).

use axum::Json;
use axum::extract::State;
use vdi_cluster_core::ExamId;
use vdi_cluster_protocol::ErrorBody;
use vdi_cluster_protocol::page::PageQuery;
use vdi_cluster_protocol::waiting_room::ExamQueueJson;

use crate::error::ApiError;
use crate::extract::{PathParams, QueryParams};
use crate::path_params::ExamPath;
use crate::state::AppState;

/// Who waits in an exam's queue, head first (by position), with positions
/// and waiting times, and the queue's totals (placed from it, abandoned):
/// a page of the waiting students with `limit` (default: all) and
/// `offset`. An exam nobody queued for has an empty queue.
#[utoipa::path(
    get, path = "/api/vdi/exams/{examId}/queue", tag = "exams",
    params(ExamPath, PageQuery),
    responses(
        (status = 200, description = "The queue, head first", body = ExamQueueJson),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 503, body = ErrorBody),
    )
)]
pub(crate) async fn queue(
    State(state): State<AppState>,
    PathParams(exam): PathParams<String>,
    QueryParams(query): QueryParams<PageQuery>,
) -> Result<Json<ExamQueueJson>, ApiError> {
    let exam = ExamId::parse("examId", exam)?;
    let page = query.page(None)?;
    let view = state.service().exams().exam_queue(&exam).await?;
    Ok(Json(ExamQueueJson::new(&view, page)))
}
