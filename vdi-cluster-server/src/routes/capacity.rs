//! Capacity on schedule: the requests the leader made of the scale hook.

use axum::Json;
use axum::extract::State;
use vdi_cluster_protocol::ErrorBody;
use vdi_cluster_protocol::capacity::CapacityRequestList;

use crate::error::ApiError;
use crate::state::AppState;

/// Every capacity request (pending, requested, joined, missing, releasing,
/// released), newest deadline first.
#[utoipa::path(
    get, path = "/api/vdi/capacity-requests", tag = "exams",
    responses(
        (status = 200, description = "Capacity requests", body = CapacityRequestList),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 503, body = ErrorBody),
    )
)]
pub(crate) async fn list(
    State(state): State<AppState>,
) -> Result<Json<CapacityRequestList>, ApiError> {
    let requests = state.service().operations().capacity_requests().await?;
    Ok(Json(CapacityRequestList::new(&requests)))
}
