//! Operations: liveness, readiness, metrics, the OpenAPI document.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::{Extension, Json};
use vdi_cluster_protocol::ErrorBody;
use vdi_cluster_protocol::ops::HealthJson;

use crate::error::ApiError;
use crate::state::AppState;

/// Liveness: the process answers.
#[utoipa::path(
    get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "Alive", body = HealthJson))
)]
pub(crate) async fn healthz() -> Json<HealthJson> {
    Json(HealthJson::alive())
}

/// Longest time readiness waits for the store's answer.
pub(crate) const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// Readiness: the storage backend answers a real read within
/// [`READY_TIMEOUT`].
#[utoipa::path(
    get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, description = "Ready", body = HealthJson),
        (status = 503, description = "Backend unavailable", body = ErrorBody),
    )
)]
pub(crate) async fn readyz(State(state): State<AppState>) -> Result<Json<HealthJson>, ApiError> {
    match tokio::time::timeout(READY_TIMEOUT, state.service().ping()).await {
        Ok(answer) => answer?,
        Err(_) => {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "the {} store did not answer a read within {} s",
                    state.store_name(),
                    READY_TIMEOUT.as_secs()
                ),
            )
            .with_retry_after(crate::error::UNAVAILABLE_RETRY_AFTER_SECS));
        }
    }
    Ok(Json(HealthJson::ready(
        state.store_name(),
        state.service().store().primary(),
    )))
}

/// Metrics in the OpenMetrics text format (Prometheus scrapes it).
#[utoipa::path(
    get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Metrics", content_type = "application/openmetrics-text", body = String))
)]
pub(crate) async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let text = state.metrics().render(state.service()).await;
    ([(CONTENT_TYPE, crate::metrics::CONTENT_TYPE)], text)
}

/// This API's OpenAPI 3 document (built by the router from the route
/// table, handed over as an extension).
#[utoipa::path(
    get, path = "/api/openapi.json", tag = "operations",
    responses((status = 200, description = "OpenAPI document", body = serde_json::Value))
)]
pub(crate) async fn openapi(
    Extension(document): Extension<Arc<serde_json::Value>>,
) -> Json<serde_json::Value> {
    Json(serde_json::Value::clone(&document))
}
