//! Aetherium's resource view (docs/compat/aetherium.md): sessions and
//! prewarmed machines as VMs, and the workers under Aetherium's field
//! names, converted from the same bodies as `GET /api/vdi/workers`.

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use utoipa::IntoParams;
use vdi_cluster_core::Page;
use vdi_cluster_core::vm::VmId;
use vdi_cluster_protocol::ErrorBody;
use vdi_cluster_protocol::aetherium::{AetheriumWorkerJson, AetheriumWorkerList, VmJson, VmList};
use vdi_cluster_protocol::workers::WorkerJson;

use super::workers::{ListQuery, now, worker_id};
use crate::error::ApiError;
use crate::extract::{PathParams, QueryParams, bounded};
use crate::path_params::{VmIdPath, WorkerCodePath};
use crate::state::AppState;

/// Default and largest number of VMs listed.
const VMS_DEFAULT_LIMIT: usize = 1000;
const VMS_MAX_LIMIT: usize = 10_000;

/// How many VMs to list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct VmsQuery {
    /// At most this many (default 1000, at most 10000).
    #[param(minimum = 1, maximum = 10_000)]
    limit: Option<usize>,
}

/// Every session and prewarmed machine as a VM (Aetherium's `GET /vms`),
/// by worker code: each worker's sessions, then its prewarmed machines.
#[utoipa::path(
    get, path = "/api/vdi/vms", tag = "aetherium",
    params(VmsQuery),
    responses(
        (status = 200, description = "VMs", body = VmList),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 503, body = ErrorBody),
    )
)]
pub(crate) async fn vms(
    State(state): State<AppState>,
    QueryParams(query): QueryParams<VmsQuery>,
) -> Result<Json<VmList>, ApiError> {
    let limit = bounded("limit", query.limit, VMS_DEFAULT_LIMIT, VMS_MAX_LIMIT)?;
    let vms = state.service().operations().vms(limit).await?;
    Ok(Json(VmList::new(&vms)))
}

/// One VM (Aetherium's `GET /vms/{id}`); 404 naming the id when no session
/// or prewarmed machine has it (also when it has the form of an id whose
/// parts decode to no exam, student or worker); 422 naming `id` when it
/// has not the form of one.
#[utoipa::path(
    get, path = "/api/vdi/vms/{id}", tag = "aetherium",
    params(VmIdPath),
    responses(
        (status = 200, description = "The VM", body = VmJson),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 503, body = ErrorBody),
    )
)]
pub(crate) async fn vm(
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
) -> Result<Json<VmJson>, ApiError> {
    let id = match VmId::parse("id", &id) {
        Ok(id) => id,
        Err(_) if vdi_cluster_core::vm::well_formed(&id) => {
            return Err(vdi_cluster_core::Error::VmNotFound(id).into());
        }
        Err(invalid) => return Err(invalid.into()),
    };
    let vm = state.service().operations().vm(&id).await?;
    Ok(Json(VmJson::from(&vm)))
}

/// Workers under Aetherium's field names (`cpu_usage_percent`, `vm_count`,
/// `max_vms`, `last_seen`, …), filtered as `GET /api/vdi/workers`.
#[utoipa::path(
    get, path = "/api/vdi/aetherium/workers", tag = "aetherium",
    params(ListQuery),
    responses(
        (status = 200, description = "Workers", body = AetheriumWorkerList),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 503, body = ErrorBody),
    )
)]
pub(crate) async fn workers(
    State(state): State<AppState>,
    QueryParams(query): QueryParams<ListQuery>,
) -> Result<Json<AetheriumWorkerList>, ApiError> {
    let list = query.list(&state, Page::ALL).await?;
    Ok(Json(AetheriumWorkerList::from(&list)))
}

/// One worker under Aetherium's field names.
#[utoipa::path(
    get, path = "/api/vdi/aetherium/workers/{code}", tag = "aetherium",
    params(WorkerCodePath),
    responses(
        (status = 200, description = "The worker", body = AetheriumWorkerJson),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 503, body = ErrorBody),
    )
)]
pub(crate) async fn worker(
    State(state): State<AppState>,
    PathParams(code): PathParams<String>,
) -> Result<Json<AetheriumWorkerJson>, ApiError> {
    let id = worker_id(code)?;
    let view = state.service().fleet().worker_view(&id).await?;
    let ours = WorkerJson::new(&view, now(&state));
    Ok(Json(AetheriumWorkerJson::from(&ours)))
}
