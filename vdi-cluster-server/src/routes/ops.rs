//! Operations: liveness, readiness, metrics, the OpenAPI document.

use axum::Json;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;

use crate::error::ApiError;
use crate::state::AppState;
use crate::views::HealthJson;
use vdi_cluster_protocol::ErrorBody;

/// Liveness: the process answers.
#[utoipa::path(
    get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "Alive", body = HealthJson))
)]
pub(crate) async fn healthz() -> Json<HealthJson> {
    Json(HealthJson {
        status: "ok".into(),
        store: None,
    })
}

/// Readiness: the storage backend answers.
#[utoipa::path(
    get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, description = "Ready", body = HealthJson),
        (status = 503, description = "Backend unavailable", body = ErrorBody),
    )
)]
pub(crate) async fn readyz(State(state): State<AppState>) -> Result<Json<HealthJson>, ApiError> {
    state.service().ping().await?;
    Ok(Json(HealthJson {
        status: "ready".into(),
        store: Some(state.store_name().to_owned()),
    }))
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

/// This API's OpenAPI 3 document.
#[utoipa::path(
    get, path = "/api/openapi.json", tag = "operations",
    responses((status = 200, description = "OpenAPI document", body = serde_json::Value))
)]
pub(crate) async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(crate::openapi::document())
}
