//! gRPC beside HTTP: minicloud's `vdi.cluster.v1.WorkerManagementService`
//! (`serve --grpc-listen ADDR`, off unless set), the standard health
//! service (`grpc.health.v1.Health`) and server reflection.
//!
//! The service has no logic of its own: each RPC checks the request's
//! metadata with the HTTP gate's own check (`x-worker-token`,
//! `x-join-token`, `authorization`), converts its message into the JSON
//! protocol's body (`vdi-cluster-grpc`), and calls the HTTP handler of
//! the same operation; the handler's error becomes the status code of its
//! HTTP status ([`vdi_cluster_grpc::status::code_for_http`]). So both APIs
//! validate, authorise and refuse alike. Failed authentications count
//! towards the same per-address throttle.
//!
//! With `--tls-cert` the service speaks TLS (`conn`), and a worker's
//! client certificate binds its code as over HTTP. One peer address holds
//! at most as many connections as the HTTP listener allows it
//! (`--max-connections-per-peer`, trusted proxies exempt). Malformed
//! frames are refused as the sender's bad input (`framing`).
//!
//! * `service` — the RPCs.
//! * `call` — credentials from metadata, errors to statuses.
//! * `conn` — connections: the per-peer cap, TLS, who is at their other
//!   end.
//! * `framing` — the frames of a request checked as they arrive.

mod call;
mod conn;
mod framing;
mod service;

use tokio::net::TcpListener;
use tonic::transport::Server;
use tower::util::MapRequestLayer;
use vdi_cluster_grpc::pb;
use vdi_cluster_grpc::pb::worker_management_service_server::WorkerManagementServiceServer;

use crate::listener::PeerCaps;
use crate::state::AppState;

pub use service::GrpcService;

/// The gRPC server could not start or failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GrpcError {
    /// The reflection service could not read the descriptors.
    #[error("gRPC reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    /// Serving failed.
    #[error("gRPC server: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// The TLS listener could not start.
    #[error("gRPC listener: {0}")]
    Io(#[from] std::io::Error),
}

/// Serves the gRPC services of `state` on `listener` until the state's
/// shutdown token is cancelled.
pub async fn serve(listener: TcpListener, state: AppState) -> Result<(), GrpcError> {
    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_serving::<WorkerManagementServiceServer<GrpcService>>()
        .await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let shutdown = state.shutdown_token().clone();
    let acceptor = state.tls().and_then(|tls| tls.acceptor(&["h2"]));
    let peers = PeerCaps::new(
        state.limits().per_peer_cap(),
        state.throttle().config().trusted_proxies.clone(),
    );
    let incoming = conn::incoming(listener, acceptor, peers)?;
    Server::builder()
        .timeout(state.limits().request_timeout)
        .layer(MapRequestLayer::new(framing::checked))
        .add_service(health_service)
        .add_service(reflection)
        .add_service(
            WorkerManagementServiceServer::new(GrpcService::new(state))
                .max_decoding_message_size(framing::MAX_MESSAGE_BYTES),
        )
        .serve_with_incoming_shutdown(incoming, shutdown.cancelled_owned())
        .await?;
    Ok(())
}
