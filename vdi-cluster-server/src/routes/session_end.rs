//! A student's own end time, changed by an operator (bodies in
//! `vdi_cluster_protocol::session_end`): later by `extendSec` seconds, or
//! at `endsAt`. An extension that does not fit beside later bookings
//! answers 409 with the shortfall and what would fit, unless forced.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use vdi_cluster_core::SessionKey;
use vdi_cluster_core::service::EndChanged;
use vdi_cluster_protocol::ErrorBody;
use vdi_cluster_protocol::session_end::{
    ExtensionRefusedJson, PatchSessionRequest, SessionEndJson,
};

use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::{JsonBody, PathParams};
use crate::path_params::SessionPath;
use crate::routes::force::check_reason;
use crate::state::AppState;

/// Gives a student of a booked exam their own end: `extendSec` seconds
/// later than it stands, or `endsAt` (the exam's `endsAt` takes the
/// extension away), with a `reason` kept in the audit trail. The student
/// keeps a seat until the new end, admitted like a booking; one that does
/// not fit answers 409 with the shortfall and the longest extension that
/// fits, unless `force: true`. The desktop is released at the student's
/// end plus the grace. `extendSec` and `endsAt` are exclusive; a body
/// with both or neither is 422 naming `extendSec`.
#[utoipa::path(
    patch, path = "/api/vdi/sessions/{examId}/{userId}", tag = "sessions",
    params(SessionPath),
    request_body = PatchSessionRequest,
    responses(
        (status = 200, description = "The student's end now", body = SessionEndJson),
        (status = 409, description = "The extension does not fit beside later bookings", body = ExtensionRefusedJson),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, description = "The exam is not booked", body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 503, body = ErrorBody),
    )
)]
pub(crate) async fn patch(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathParams(path): PathParams<(String, String)>,
    JsonBody(body): JsonBody<PatchSessionRequest>,
) -> Result<Response, ApiError> {
    let key = SessionKey::parse(path.0, path.1)?;
    check_reason(&body.reason)?;
    let change = body.change()?;
    let force = body.force.unwrap_or(false);
    let service = Arc::clone(state.service());
    let actor = caller.actor().to_owned();
    let reason = body.reason;
    let changed = state
        .detached(async move {
            service
                .exams()
                .change_session_end(&key, change, &reason, force, &actor)
                .await
        })
        .await?;
    Ok(match changed {
        EndChanged::Granted(end) => Json(SessionEndJson::from(&end)).into_response(),
        EndChanged::Refused(refusal) => (
            StatusCode::CONFLICT,
            Json(ExtensionRefusedJson::from(&*refusal)),
        )
            .into_response(),
    })
}
