//! The worker side over gRPC: `vdi.cluster.v1.WorkerService`
//! (`worker_service.proto` in `vdi-cluster-grpc`), what minicloud's control
//! plane calls on a worker (`docs/compat/minicloud.md`), served with
//! `--grpc-listen` beside the HTTP worker API.
//!
//! Another door, not another node: every RPC checks the same cluster
//! token (metadata `x-cluster-token`) and runs the same operation of
//! [`WorkerApi`] as the HTTP route, on the same session table; an error is
//! the gRPC code of the HTTP status the route answers
//! ([`code_for_http`]).

use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};
use vdi_cluster_grpc::pb::worker_service_server::{WorkerService, WorkerServiceServer};
use vdi_cluster_grpc::pb::{
    CheckExamRequest, CheckExamResponse, DiscardPrewarmedRequest, DiscardPrewarmedResponse,
    GetNodeStatusRequest, GetNodeStatusResponse, ListSessionsRequest, ListSessionsResponse,
    NodeSession, PrewarmMachinesRequest, PrewarmMachinesResponse, StartSessionRequest,
    StartSessionResponse, StopSessionRequest, StopSessionResponse,
};
use vdi_cluster_grpc::status::code_for_http;
use vdi_cluster_protocol::decode::parse_json;
use vdi_cluster_protocol::node::NetworkPolicyJson;
use vdi_cluster_protocol::{
    AllocateRequest, CLUSTER_TOKEN_HEADER, CheckRequest, PrewarmRequest, ReleaseRequest,
};

use crate::api::WorkerApi;
use crate::http::HttpError;

/// `vdi.cluster.v1.WorkerService` over a [`WorkerApi`].
#[derive(Debug, Clone)]
pub struct WorkerGrpc {
    api: WorkerApi,
}

impl WorkerGrpc {
    /// The service of `api`.
    pub fn new(api: WorkerApi) -> Self {
        Self { api }
    }

    /// The cluster token's check, as the HTTP API's.
    fn authorize<T>(&self, request: &Request<T>) -> Result<(), Status> {
        match request.metadata().get(CLUSTER_TOKEN_HEADER) {
            Some(v) if self.api.is_cluster_token(v.as_bytes()) => Ok(()),
            Some(_) => Err(Status::unauthenticated("invalid x-cluster-token")),
            None => Err(Status::unauthenticated("x-cluster-token is required")),
        }
    }
}

/// A JSON `networkPolicy` as the HTTP body carries it, read by the same
/// rules (`INVALID_ARGUMENT` naming the field).
fn network_policy(json: Option<String>) -> Result<Option<NetworkPolicyJson>, Status> {
    json.map(|text| {
        parse_json(text.as_bytes())
            .map_err(|e| Status::invalid_argument(format!("networkPolicy.{e}")))
    })
    .transpose()
}

/// The HTTP API's error as the gRPC status of its HTTP status.
fn status_of(e: HttpError) -> Status {
    Status::new(code_for_http(e.status().as_u16()), e.body().message.clone())
}

fn to_json(value: &impl serde::Serialize) -> Result<String, Status> {
    serde_json::to_string(value).map_err(|e| Status::internal(e.to_string()))
}

#[tonic::async_trait]
impl WorkerService for WorkerGrpc {
    async fn start_session(
        &self,
        request: Request<StartSessionRequest>,
    ) -> Result<Response<StartSessionResponse>, Status> {
        self.authorize(&request)?;
        let StartSessionRequest {
            exam_id,
            user_id,
            network_policy_json,
        } = request.into_inner();
        let body = AllocateRequest {
            exam_id,
            user_id,
            network_policy: network_policy(network_policy_json)?,
        };
        let answer = self.api.allocate(body).await.map_err(status_of)?;
        Ok(Response::new(StartSessionResponse {
            session_json: to_json(&answer.session)?,
        }))
    }

    async fn stop_session(
        &self,
        request: Request<StopSessionRequest>,
    ) -> Result<Response<StopSessionResponse>, Status> {
        self.authorize(&request)?;
        let StopSessionRequest { exam_id, user_id } = request.into_inner();
        let answer = self
            .api
            .release(ReleaseRequest { exam_id, user_id })
            .await
            .map_err(status_of)?;
        Ok(Response::new(StopSessionResponse {
            released: answer.released,
        }))
    }

    async fn list_sessions(
        &self,
        request: Request<ListSessionsRequest>,
    ) -> Result<Response<ListSessionsResponse>, Status> {
        self.authorize(&request)?;
        let mut sessions = Vec::new();
        for s in self.api.sessions() {
            sessions.push(NodeSession {
                exam_id: s.key.exam_id.to_string(),
                user_id: s.key.user_id.to_string(),
                state: s.state.name().to_owned(),
                prewarmed: s.prewarmed,
                session_json: s.details.as_ref().map(to_json).transpose()?,
            });
        }
        Ok(Response::new(ListSessionsResponse { sessions }))
    }

    async fn prewarm_machines(
        &self,
        request: Request<PrewarmMachinesRequest>,
    ) -> Result<Response<PrewarmMachinesResponse>, Status> {
        self.authorize(&request)?;
        let PrewarmMachinesRequest {
            exam_id,
            count,
            network_policy_json,
        } = request.into_inner();
        let body = PrewarmRequest {
            exam_id,
            count,
            network_policy: network_policy(network_policy_json)?,
        };
        let answer = self.api.prewarm(body).map_err(status_of)?;
        Ok(Response::new(PrewarmMachinesResponse {
            accepted: answer.accepted,
        }))
    }

    async fn discard_prewarmed(
        &self,
        request: Request<DiscardPrewarmedRequest>,
    ) -> Result<Response<DiscardPrewarmedResponse>, Status> {
        self.authorize(&request)?;
        let answer = self
            .api
            .discard_prewarm(request.into_inner().exam_id)
            .map_err(status_of)?;
        Ok(Response::new(DiscardPrewarmedResponse {
            discarded: answer.discarded,
        }))
    }

    async fn get_node_status(
        &self,
        request: Request<GetNodeStatusRequest>,
    ) -> Result<Response<GetNodeStatusResponse>, Status> {
        self.authorize(&request)?;
        let status = self.api.status().map_err(status_of)?;
        Ok(Response::new(GetNodeStatusResponse {
            status_json: to_json(&status)?,
        }))
    }

    async fn check_exam(
        &self,
        request: Request<CheckExamRequest>,
    ) -> Result<Response<CheckExamResponse>, Status> {
        self.authorize(&request)?;
        let CheckExamRequest {
            exam_id,
            network_policy_json,
        } = request.into_inner();
        let body = CheckRequest {
            exam_id,
            network_policy: network_policy(network_policy_json)?,
        };
        let answer = self.api.check(body).await.map_err(status_of)?;
        Ok(Response::new(CheckExamResponse::from(&answer)))
    }
}

/// Serves `WorkerService` of `api` on `listener` until `shutdown` is
/// cancelled.
pub async fn serve(
    listener: TcpListener,
    api: WorkerApi,
    shutdown: CancellationToken,
) -> Result<(), tonic::transport::Error> {
    tonic::transport::Server::builder()
        .add_service(WorkerServiceServer::new(WorkerGrpc::new(api)))
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown.cancelled_owned())
        .await
}

#[cfg(test)]
mod tests;
