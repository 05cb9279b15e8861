//! The worker-side API (the exam platform's): `POST /api/vdi/cluster/allocate`,
//! `/release` and `/prewarm`, and `DELETE /api/vdi/cluster/prewarm/:examId`
//! (discard the exam's prewarmed machines), `POST /api/vdi/cluster/check` (a
//! rehearsal's test desktop, [`check`](crate::provision::check)), called by the control plane with the shared
//! cluster token in `x-cluster-token`; `GET /api/vdi/cluster/status`, the
//! node's own view ([`status`](crate::status), same token; 404 on a node
//! API built without the heartbeat agent whose view it reports);
//! `GET /healthz` (open). Every body is the protocol crate's; errors are Aetherium's body,
//! and bad input names the field.
//!
//! | failure | status |
//! |---|---|
//! | missing or wrong `x-cluster-token` | 401 |
//! | malformed body | 400; invalid ids, count or `networkPolicy` 422 (naming the entry) |
//! | disabled or draining (new sessions only), no free slot | 409 |
//! | the provisioner failed | 502; did not finish in time 504 |

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::{Method, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;
use vdi_cluster_core::{ExamId, SessionKey, ValidationError};

use vdi_cluster_protocol::credentials::TokenHash;
use vdi_cluster_protocol::{
    AllocateRequest, AllocateResponse, CLUSTER_TOKEN_HEADER, CheckRequest, CheckResponse,
    PrewarmDiscardResponse, PrewarmRequest, PrewarmResponse, ReleaseRequest, ReleaseResponse,
    WORKER_ALLOCATE_PATH, WORKER_CHECK_PATH, WORKER_PREWARM_DISCARD_PATH, WORKER_PREWARM_PATH,
    WORKER_RELEASE_PATH, WORKER_STATUS_PATH,
};

use vdi_cluster_protocol::node::desktop_settings;
use vdi_cluster_protocol::node_status::{Health, NodeStatus};

use crate::agent::Agent;
use crate::http::{HttpError, JsonBody};
use crate::provision::ProvisionError;
use crate::sessions::{NodeError, SessionView, WorkerNode};
use crate::status::status;

/// Largest request body the worker reads.
pub const WORKER_BODY_LIMIT: usize = 64 * 1024;
/// Most machines one prewarm call may ask for.
pub const MAX_PREWARM_PER_CALL: u32 = 10_000;

/// Shared state of the worker-side API.
#[derive(Debug, Clone)]
pub struct WorkerApi {
    node: Arc<WorkerNode>,
    agent: Option<Arc<Agent>>,
    cluster_token: Arc<TokenHash>,
}

impl WorkerApi {
    /// The API of `node`, reporting `agent`'s view, accepting
    /// `cluster_token`.
    pub fn new(node: Arc<WorkerNode>, agent: Arc<Agent>, cluster_token: &str) -> Self {
        Self {
            agent: Some(agent),
            ..Self::without_agent(node, cluster_token)
        }
    }

    /// The API of a `node` that runs no heartbeat agent (a node embedded
    /// in a test harness or a load generator, registered by other means):
    /// the same sessions API, without the status endpoint.
    pub fn without_agent(node: Arc<WorkerNode>, cluster_token: &str) -> Self {
        Self {
            node,
            agent: None,
            cluster_token: Arc::new(TokenHash::new(cluster_token)),
        }
    }
}

impl From<NodeError> for HttpError {
    fn from(e: NodeError) -> Self {
        let status = match &e {
            NodeError::Disabled(_) | NodeError::Draining(_) | NodeError::Full { .. } => {
                StatusCode::CONFLICT
            }
            NodeError::Provision(ProvisionError::Timeout(_)) => StatusCode::GATEWAY_TIMEOUT,
            NodeError::Provision(_) | NodeError::StartFailed(_) => StatusCode::BAD_GATEWAY,
        };
        HttpError::new(status, e.to_string())
    }
}

async fn require_cluster_token(State(api): State<WorkerApi>, req: Request, next: Next) -> Response {
    match req.headers().get(CLUSTER_TOKEN_HEADER) {
        Some(v) if api.is_cluster_token(v.as_bytes()) => next.run(req).await,
        Some(_) => {
            HttpError::new(StatusCode::UNAUTHORIZED, "invalid x-cluster-token").into_response()
        }
        None => {
            HttpError::new(StatusCode::UNAUTHORIZED, "x-cluster-token is required").into_response()
        }
    }
}

fn key(exam_id: String, user_id: String) -> Result<SessionKey, HttpError> {
    Ok(SessionKey::parse(exam_id, user_id)?)
}

/// The operations of the worker-side API, whatever door they come
/// through (HTTP here, gRPC in [`grpc`](crate::grpc)): each checks its
/// input and answers the protocol crate's body or the error HTTP answers.
impl WorkerApi {
    /// Whether `token` is the cluster token.
    pub(crate) fn is_cluster_token(&self, token: &[u8]) -> bool {
        self.cluster_token.matches(token)
    }

    /// Starts (or answers the already started) session.
    pub(crate) async fn allocate(
        &self,
        body: AllocateRequest,
    ) -> Result<AllocateResponse, HttpError> {
        let settings = desktop_settings(body.network_policy.as_ref())?;
        let key = key(body.exam_id, body.user_id)?;
        let session = self.node.allocate(&key, &settings).await?;
        Ok(AllocateResponse { session })
    }

    /// Stops a session; an unknown one is no error.
    pub(crate) async fn release(&self, body: ReleaseRequest) -> Result<ReleaseResponse, HttpError> {
        let key = key(body.exam_id, body.user_id)?;
        let released = self.node.release(&key).await?;
        Ok(ReleaseResponse { released })
    }

    /// Prewarms machines for an exam.
    pub(crate) fn prewarm(&self, body: PrewarmRequest) -> Result<PrewarmResponse, HttpError> {
        let exam = ExamId::parse("examId", body.exam_id)?;
        if body.count == 0 || body.count > MAX_PREWARM_PER_CALL {
            return Err(HttpError::invalid(ValidationError::new(
                "count",
                format!("must be from 1 to {MAX_PREWARM_PER_CALL}"),
            )));
        }
        let settings = desktop_settings(body.network_policy.as_ref())?;
        let accepted = self.node.prewarm(&exam, body.count, &settings)?;
        Ok(PrewarmResponse { accepted })
    }

    /// Discards an exam's prewarmed machines.
    pub(crate) fn discard_prewarm(
        &self,
        exam_id: String,
    ) -> Result<PrewarmDiscardResponse, HttpError> {
        let exam = ExamId::parse("examId", exam_id)?;
        let discarded = self.node.discard_prewarm(&exam);
        Ok(PrewarmDiscardResponse { discarded })
    }

    /// A rehearsal's check of an exam: one test desktop, timed; what the
    /// provisioner found is the answer, a desktop that did not start
    /// included (the control plane judges it).
    pub(crate) async fn check(&self, body: CheckRequest) -> Result<CheckResponse, HttpError> {
        let exam = ExamId::parse("examId", body.exam_id)?;
        let settings = desktop_settings(body.network_policy.as_ref())?;
        Ok(self.node.check(&exam, &settings).await)
    }

    /// The node's sessions, as they are now.
    pub(crate) fn sessions(&self) -> Vec<SessionView> {
        self.node.sessions()
    }

    /// The node's own view; 404 without a heartbeat agent.
    pub(crate) fn status(&self) -> Result<NodeStatus, HttpError> {
        match &self.agent {
            Some(agent) => Ok(status(&self.node, agent)),
            None => Err(HttpError::new(
                StatusCode::NOT_FOUND,
                "this node runs no heartbeat agent: it has no status to report",
            )),
        }
    }
}

async fn allocate(
    State(api): State<WorkerApi>,
    JsonBody(body): JsonBody<AllocateRequest>,
) -> Result<Json<AllocateResponse>, HttpError> {
    api.allocate(body).await.map(Json)
}

async fn release(
    State(api): State<WorkerApi>,
    JsonBody(body): JsonBody<ReleaseRequest>,
) -> Result<Json<ReleaseResponse>, HttpError> {
    api.release(body).await.map(Json)
}

async fn prewarm(
    State(api): State<WorkerApi>,
    JsonBody(body): JsonBody<PrewarmRequest>,
) -> Result<Json<PrewarmResponse>, HttpError> {
    api.prewarm(body).map(Json)
}

async fn check(
    State(api): State<WorkerApi>,
    JsonBody(body): JsonBody<CheckRequest>,
) -> Result<Json<CheckResponse>, HttpError> {
    api.check(body).await.map(Json)
}

async fn discard_prewarm(
    State(api): State<WorkerApi>,
    Path(exam_id): Path<String>,
) -> Result<Json<PrewarmDiscardResponse>, HttpError> {
    api.discard_prewarm(exam_id).map(Json)
}

async fn status_handler(State(api): State<WorkerApi>) -> Result<Json<NodeStatus>, HttpError> {
    api.status().map(Json)
}

async fn healthz() -> Json<Health> {
    Json(Health::ok())
}

async fn not_found(method: Method, uri: Uri) -> HttpError {
    HttpError::new(
        StatusCode::NOT_FOUND,
        format!("No route for {method} {}", uri.path()),
    )
}

fn panicked(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("a worker handler panicked");
    HttpError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal error; the request may be retried",
    )
    .into_response()
}

/// The worker-side router.
pub fn router(api: WorkerApi) -> Router {
    let guarded = Router::new()
        .route(WORKER_ALLOCATE_PATH, post(allocate))
        .route(WORKER_RELEASE_PATH, post(release))
        .route(WORKER_PREWARM_PATH, post(prewarm))
        .route(WORKER_PREWARM_DISCARD_PATH, delete(discard_prewarm))
        .route(WORKER_CHECK_PATH, post(check))
        .route(WORKER_STATUS_PATH, get(status_handler))
        .route_layer(middleware::from_fn_with_state(
            api.clone(),
            require_cluster_token,
        ));
    Router::new()
        .merge(guarded)
        .route("/healthz", get(healthz))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(WORKER_BODY_LIMIT))
        .layer(CatchPanicLayer::custom(panicked))
        .layer(TraceLayer::new_for_http().on_response(DefaultOnResponse::new().level(Level::DEBUG)))
        .with_state(api)
}
