//! An exam's disruption ledger for operators: every student with lost
//! time, as JSON or CSV (bodies in `vdi_cluster_protocol::ledger`).

use axum::Json;
use axum::extract::State;
use axum::http::header::{ACCEPT, CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use vdi_cluster_core::ExamId;
use vdi_cluster_protocol::ErrorBody;
use vdi_cluster_protocol::ledger::{
    CSV_MEDIA_TYPE, DisruptionsQuery, ExamDisruptionsJson, LedgerFormat, exam_csv,
};

use crate::error::ApiError;
use crate::extract::{PathParams, QueryParams};
use crate::path_params::ExamPath;
use crate::state::AppState;

/// Every student of an exam with lost time (`lostSec > 0`), with their
/// interruptions and kinds, and the exam's total, median and largest lost
/// time. `sort`: `-lostSec` (default), `lostSec` or `userId`. As CSV
/// (`userId,lostSec,kinds,disruptions,firstStartedAt,lastEndedAt`) when
/// `format=csv`, or when `Accept` names `text/csv` before any JSON type
/// and `format` is absent. Any exam id is answered (the ledger outlives
/// the calendar's entry): one with no lost time has an empty list.
#[utoipa::path(
    get, path = "/api/vdi/exams/{examId}/disruptions", tag = "exams",
    params(ExamPath, DisruptionsQuery),
    responses(
        (status = 200, description = "The exam's students with lost time",
         content(
            (ExamDisruptionsJson = "application/json"),
            (String = "text/csv", example = "userId,lostSec,kinds,disruptions,firstStartedAt,lastEndedAt\r\nu1,12.5,workerLost,1,1765000000000,1765000012500\r\n"),
         )),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 503, body = ErrorBody),
    )
)]
pub(crate) async fn exam_disruptions(
    State(state): State<AppState>,
    PathParams(exam): PathParams<String>,
    QueryParams(query): QueryParams<DisruptionsQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let exam = ExamId::parse("examId", exam)?;
    let order = query.order()?;
    let accept = headers.get(ACCEPT).and_then(|v| v.to_str().ok());
    let format = query.format(accept)?;
    let ledger = state.service().exams().exam_ledger(&exam, order).await?;
    Ok(match format {
        LedgerFormat::Json => {
            Json(ExamDisruptionsJson::new(exam.as_str(), &ledger)).into_response()
        }
        LedgerFormat::Csv => (
            [
                (CONTENT_TYPE, HeaderValue::from_static(CSV_MEDIA_TYPE)),
                (
                    CONTENT_DISPOSITION,
                    HeaderValue::from_static("attachment; filename=\"disruptions.csv\""),
                ),
            ],
            exam_csv(&ledger),
        )
            .into_response(),
    })
}
