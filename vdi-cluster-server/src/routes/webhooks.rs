//! Alerts by webhook: an admin configures endpoints (the signing secret is
//! in the creation's answer only), lists their deliveries with every
//! attempt, and retries a failed one. Deliveries themselves are sent by
//! the leader replica's background loop (see `crate::webhooks`).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use vdi_cluster_protocol::ErrorBody;
use vdi_cluster_protocol::page::PageQuery;
use vdi_cluster_protocol::webhooks::{
    CreateWebhook, CreatedWebhook, DeliveryList, WebhookJson, WebhookList,
};

use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::{JsonBody, PathParams, QueryParams};
use crate::state::AppState;
use crate::webhooks::generate_secret;

/// Deliveries listed by default.
const DELIVERIES_DEFAULT: usize = 50;

/// Creates an endpoint; its signing secret is in this answer only.
#[utoipa::path(
    post, path = "/api/vdi/webhooks", tag = "webhooks",
    request_body = CreateWebhook,
    responses(
        (status = 201, description = "Created; the secret is shown once", body = CreatedWebhook),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, description = "A field is invalid (url, eventTypes, description)", body = ErrorBody),
        (status = 503, body = ErrorBody),
    )
)]
pub(crate) async fn create(
    State(state): State<AppState>,
    Caller(caller): Caller,
    JsonBody(body): JsonBody<CreateWebhook>,
) -> Result<(StatusCode, Json<CreatedWebhook>), ApiError> {
    let service = Arc::clone(state.service());
    let endpoint = state
        .detached(async move {
            service
                .operations()
                .create_webhook(
                    &caller.actor(),
                    body.url.trim(),
                    body.event_types,
                    body.description,
                    generate_secret(),
                )
                .await
        })
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedWebhook {
            webhook: WebhookJson::from(&endpoint),
            secret: endpoint.secret.clone(),
        }),
    ))
}

/// Every endpoint (never its secret).
#[utoipa::path(
    get, path = "/api/vdi/webhooks", tag = "webhooks",
    responses(
        (status = 200, description = "Endpoints", body = WebhookList),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 503, body = ErrorBody),
    )
)]
pub(crate) async fn list(State(state): State<AppState>) -> Result<Json<WebhookList>, ApiError> {
    let endpoints = state.service().operations().webhooks().await?;
    Ok(Json(WebhookList {
        webhooks: endpoints.iter().map(WebhookJson::from).collect(),
    }))
}

/// Deletes an endpoint; its pending deliveries are given up.
#[utoipa::path(
    delete, path = "/api/vdi/webhooks/{id}", tag = "webhooks",
    params(("id" = String, Path, description = "Webhook id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 503, body = ErrorBody),
    )
)]
pub(crate) async fn delete(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathParams(id): PathParams<String>,
) -> Result<StatusCode, ApiError> {
    let service = Arc::clone(state.service());
    state
        .detached(async move {
            service
                .operations()
                .delete_webhook(&caller.actor(), &id)
                .await
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// An endpoint's deliveries, newest first (by the order they were
/// written), each with its attempts (time, status code or error,
/// latency): a page of them with `limit` (default 50) and `offset`,
/// `total` counting every delivery kept for the endpoint.
#[utoipa::path(
    get, path = "/api/vdi/webhooks/{id}/deliveries", tag = "webhooks",
    params(("id" = String, Path, description = "Webhook id"), PageQuery),
    responses(
        (status = 200, description = "Deliveries", body = DeliveryList),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, description = "limit or offset out of range", body = ErrorBody),
        (status = 503, body = ErrorBody),
    )
)]
pub(crate) async fn deliveries(
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
    QueryParams(query): QueryParams<PageQuery>,
) -> Result<Json<DeliveryList>, ApiError> {
    let page = query.page(Some(DELIVERIES_DEFAULT))?;
    let deliveries = state
        .service()
        .operations()
        .webhook_deliveries(&id, page)
        .await?;
    Ok(Json(DeliveryList::new(&deliveries, page)))
}

/// Retries a failed delivery now (one more attempt, with the same
/// `webhook-id`).
#[utoipa::path(
    post, path = "/api/vdi/webhooks/{id}/deliveries/{deliveryId}/retry", tag = "webhooks",
    params(
        ("id" = String, Path, description = "Webhook id"),
        ("deliveryId" = String, Path, description = "Delivery id (its webhook-id)"),
    ),
    responses(
        (status = 202, description = "Due now"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "The delivery is not failed", body = ErrorBody),
        (status = 503, body = ErrorBody),
    )
)]
pub(crate) async fn retry(
    State(state): State<AppState>,
    Caller(caller): Caller,
    PathParams((id, delivery)): PathParams<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let service = Arc::clone(state.service());
    state
        .detached(async move {
            service
                .operations()
                .retry_webhook_delivery(&caller.actor(), &id, &delivery)
                .await
        })
        .await?;
    Ok(StatusCode::ACCEPTED)
}
