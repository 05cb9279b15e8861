//! Cluster-wide views (as Aetherium): statistics with zones, session
//! distribution, the audit trail and the events stream.

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::IntoParams;
use vdi_cluster_protocol::ErrorBody;
use vdi_cluster_protocol::cluster::{AuditJson, DistributionJson, StatsJson};
use vdi_cluster_protocol::events::ServerSentEvent;
use vdi_cluster_protocol::page::PageQuery;

use crate::error::ApiError;
use crate::events::sse_stream;
use crate::extract::{QueryParams, bounded};
use crate::state::AppState;
use crate::stats_cache::{IfNoneMatch, json_body};

const DISTRIBUTION_DEFAULT: usize = 100;
const DISTRIBUTION_MAX: usize = 10_000;
const AUDIT_DEFAULT: usize = 100;

/// Cluster statistics: the summary, workers per status, figures per zone
/// (`default` for workers without one), total CPU and memory. Kept by
/// this replica for `--stats-cache-sec` (`Cache-Control: private,
/// max-age=` the seconds left), with a strong `ETag`: a request naming it
/// in `If-None-Match` is answered 304 without a body.
#[utoipa::path(
    get, path = "/api/vdi/cluster/stats", tag = "cluster",
    params(IfNoneMatch),
    responses(
        (status = 200, description = "Statistics", body = StatsJson, headers(
            ("ETag" = String, description = "Strong tag of the body"),
            ("Cache-Control" = String, description = "private, max-age=<seconds left in this replica's window> (no-cache without one)"),
        )),
        (status = 304, description = "Not modified: If-None-Match names the current ETag"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 503, body = ErrorBody),
    )
)]
pub(crate) async fn stats(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let now = state.service().clock().now();
    let read = || async {
        let stats = state.service().operations().stats().await?;
        json_body(&StatsJson::from(&stats))
    };
    state
        .stats_cache()
        .answer(now, &headers, state.metrics(), read)
        .await
}

/// How many sessions to list per worker.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct DistributionQuery {
    /// Sessions listed per worker (default 100, at most 10000).
    #[param(minimum = 1, maximum = 10_000)]
    per_worker: Option<usize>,
}

/// Sessions per worker.
#[utoipa::path(
    get, path = "/api/vdi/cluster/distribution", tag = "cluster",
    params(DistributionQuery),
    responses(
        (status = 200, description = "Sessions per worker", body = DistributionJson),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 503, body = ErrorBody),
    )
)]
pub(crate) async fn distribution(
    State(state): State<AppState>,
    QueryParams(query): QueryParams<DistributionQuery>,
) -> Result<Json<DistributionJson>, ApiError> {
    let per_worker = bounded(
        "perWorker",
        query.per_worker,
        DISTRIBUTION_DEFAULT,
        DISTRIBUTION_MAX,
    )?;
    let rows = state
        .service()
        .operations()
        .distribution(per_worker)
        .await?;
    Ok(Json(DistributionJson::new(&rows)))
}

/// The audit trail of admin actions (drain, disable, reconcile, …) with
/// their actor, newest first (by the order they were written): a page of
/// it with `limit` (default 100) and `offset`, `total` counting every
/// entry kept.
#[utoipa::path(
    get, path = "/api/vdi/audit", tag = "cluster",
    params(PageQuery),
    responses(
        (status = 200, description = "Entries", body = AuditJson),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 503, body = ErrorBody),
    )
)]
pub(crate) async fn audit(
    State(state): State<AppState>,
    QueryParams(query): QueryParams<PageQuery>,
) -> Result<Json<AuditJson>, ApiError> {
    let page = query.page(Some(AUDIT_DEFAULT))?;
    let entries = state.service().store().audit_page(page).await?;
    Ok(Json(AuditJson::new(&entries, page)))
}

/// Cluster events as server-sent events: a `ready` event, then one event
/// per cluster event, named after its `type`, with the event as JSON data.
#[utoipa::path(
    get, path = "/api/vdi/events", tag = "cluster",
    responses(
        (status = 200, description = "text/event-stream: a `ready` event, then one per cluster event", content_type = "text/event-stream", body = ServerSentEvent),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
    )
)]
pub(crate) async fn events(State(state): State<AppState>) -> impl IntoResponse {
    let stream = sse_stream(state.events(), state.shutdown_token().clone());
    Sse::new(stream).keep_alive(KeepAlive::default())
}
