//! The RPCs of `WorkerManagementService`, each one the HTTP handler of the
//! same operation behind a conversion.

use axum::Json;
use axum::extract::State;
use tonic::{Request, Response, Status};
use vdi_cluster_core::Page;
use vdi_cluster_grpc::pb;
use vdi_cluster_grpc::pb::worker_management_service_server::WorkerManagementService;
use vdi_cluster_protocol::workers::WorkerJson;
use vdi_cluster_protocol::{DeregisterRequest, HeartbeatRequest, JOIN_TOKEN_HEADER};

use super::call::{authorize, headers, peer_cert, status};
use crate::auth::{Access, Caller};
use crate::error::ApiError;
use crate::extract::{JsonBody, OptionalJsonBody, PathParams};
use crate::routes::workers::ListQuery;
use crate::routes::{credentials, heartbeat, join, workers};
use crate::state::AppState;

/// `vdi.cluster.v1.WorkerManagementService` over a control plane's state.
#[derive(Debug, Clone)]
pub struct GrpcService {
    state: AppState,
}

impl GrpcService {
    /// The service of `state`.
    pub fn new(state: AppState) -> Self {
        Self { state }
    }

    /// A worker's view, as the HTTP detail answers it.
    async fn worker(&self, code: String) -> Result<pb::Worker, Status> {
        let Json(worker) = workers::detail(State(self.state.clone()), PathParams(code))
            .await
            .map_err(status)?;
        Ok(pb::Worker::from(&worker))
    }
}

/// An empty string as absent.
fn given(s: String) -> Option<String> {
    Some(s).filter(|s| !s.is_empty())
}

#[tonic::async_trait]
impl WorkerManagementService for GrpcService {
    async fn register_worker(
        &self,
        request: Request<pb::RegisterWorkerRequest>,
    ) -> Result<Response<pb::RegisterWorkerResponse>, Status> {
        let state = self.state.clone();
        if request.metadata().contains_key(JOIN_TOKEN_HEADER) {
            authorize(&state, &request, Access::Join).await?;
            let headers = headers(&request);
            let cert = peer_cert(&request);
            let message = request.into_inner();
            // As minicloud: a taken code gets another one, unless the worker
            // cannot take another.
            let keep = message.keep_requested_id;
            let joined = join::join_with(&state, &headers, &cert, message.into(), keep)
                .await
                .map_err(status)?;
            let worker = self.worker(joined.code.clone()).await?;
            return Ok(Response::new(pb::RegisterWorkerResponse {
                worker_id: joined.code,
                credential: Some(joined.credential),
                credential_expires_at: joined.expires_at,
                worker: Some(worker),
                credential_ttl_sec: joined.ttl_sec,
            }));
        }
        let caller = authorize(&state, &request, Access::Worker).await?;
        let cert = peer_cert(&request);
        let body = request.into_inner().into();
        let Json(worker): Json<WorkerJson> =
            heartbeat::register(State(state), Caller(caller), cert, JsonBody(body))
                .await
                .map_err(status)?;
        Ok(Response::new(pb::RegisterWorkerResponse {
            worker_id: worker.code.clone(),
            credential: None,
            credential_expires_at: None,
            worker: Some(pb::Worker::from(&worker)),
            credential_ttl_sec: None,
        }))
    }

    async fn deregister_worker(
        &self,
        request: Request<pb::DeregisterWorkerRequest>,
    ) -> Result<Response<pb::DeregisterWorkerResponse>, Status> {
        let state = self.state.clone();
        let caller = authorize(&state, &request, Access::OwnWorker).await?;
        let cert = peer_cert(&request);
        let r = request.into_inner();
        let body = DeregisterRequest {
            reason: given(r.reason),
        };
        let Json(worker) = heartbeat::deregister(
            State(state),
            Caller(caller),
            cert,
            PathParams(r.worker_id),
            OptionalJsonBody(Some(body)),
        )
        .await
        .map_err(status)?;
        Ok(Response::new(pb::DeregisterWorkerResponse {
            worker: Some(pb::Worker::from(&worker)),
        }))
    }

    async fn heartbeat(
        &self,
        request: Request<pb::HeartbeatRequest>,
    ) -> Result<Response<pb::HeartbeatResponse>, Status> {
        let state = self.state.clone();
        let caller = authorize(&state, &request, Access::Worker).await?;
        let cert = peer_cert(&request);
        let body = HeartbeatRequest::try_from(request.into_inner())
            .map(JsonBody)
            .map_err(ApiError::invalid);
        let Json(answer) = heartbeat::heartbeat(State(state), Caller(caller), cert, body)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::HeartbeatResponse::from(&answer)))
    }

    async fn list_workers(
        &self,
        request: Request<pb::ListWorkersRequest>,
    ) -> Result<Response<pb::ListWorkersResponse>, Status> {
        authorize(&self.state, &request, Access::Operator).await?;
        let r = request.into_inner();
        let query = ListQuery {
            status: given(r.status),
            zone: given(r.zone),
            label: given(r.label),
        };
        let list = query.list(&self.state, Page::ALL).await.map_err(status)?;
        Ok(Response::new(pb::ListWorkersResponse {
            workers: list.workers.iter().map(pb::Worker::from).collect(),
            total: u32::try_from(list.page.total).unwrap_or(u32::MAX),
        }))
    }

    async fn get_worker(
        &self,
        request: Request<pb::GetWorkerRequest>,
    ) -> Result<Response<pb::Worker>, Status> {
        authorize(&self.state, &request, Access::Operator).await?;
        let worker = self.worker(request.into_inner().worker_id).await?;
        Ok(Response::new(worker))
    }

    async fn rotate_credential(
        &self,
        request: Request<pb::RotateCredentialRequest>,
    ) -> Result<Response<pb::RotateCredentialResponse>, Status> {
        let state = self.state.clone();
        let caller = authorize(&state, &request, Access::Worker).await?;
        let headers = headers(&request);
        let code = request.into_inner().worker_id;
        let Json(answer) =
            credentials::rotate(State(state), Caller(caller), headers, PathParams(code))
                .await
                .map_err(status)?;
        Ok(Response::new(pb::RotateCredentialResponse {
            worker_id: answer.code,
            credential: answer.credential,
            credential_expires_at: answer.expires_at,
            credential_ttl_sec: answer.ttl_sec,
        }))
    }
}
