//! The node agent's gRPC client of a control plane: join (registration
//! with a join token), heartbeat, credential rotation and deregistration,
//! taking and answering the JSON protocol's bodies so the agent's logic is
//! the same over either transport.

use std::time::Duration;

use tonic::metadata::MetadataValue;
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Status};
use vdi_cluster_core::WorkerId;
use vdi_cluster_protocol::{
    HeartbeatRequest, HeartbeatResponse, JOIN_TOKEN_HEADER, JoinResponse, RegisterRequest,
    WORKER_TOKEN_HEADER,
};

use crate::convert;
use crate::pb;
use crate::pb::worker_management_service_client::WorkerManagementServiceClient;

/// URL scheme of a gRPC control plane (`grpc://host:port`: HTTP/2
/// without TLS, as minicloud's `negotiation-type: plaintext`; put a TLS
/// proxy in front for anything beyond a private network).
pub const GRPC_SCHEME: &str = "grpc://";

/// Whether `url` names a gRPC control plane (any case of the scheme).
pub fn is_grpc_url(url: &str) -> bool {
    url.trim().to_ascii_lowercase().starts_with(GRPC_SCHEME)
}

/// The HTTP/2 URI tonic connects to for `url` (`grpc://h:p` →
/// `http://h:p`); an error for humans when `url` is not a
/// `grpc://host:port` URL.
pub fn endpoint_uri(url: &str) -> Result<String, String> {
    let trimmed = url.trim().trim_end_matches('/');
    if !is_grpc_url(trimmed) {
        return Err(format!("{url:?} is not a grpc:// URL"));
    }
    let rest = &trimmed[GRPC_SCHEME.len()..];
    let valid = !rest.is_empty()
        && !rest.contains(['/', '?', '#', ' '])
        && rest.parse::<tonic::codegen::http::uri::Authority>().is_ok();
    if !valid {
        return Err(format!("{url:?}: expected grpc://host:port"));
    }
    Ok(format!("http://{rest}"))
}

/// A gRPC client of one control plane.
#[derive(Debug, Clone)]
pub struct GrpcControlPlane {
    client: WorkerManagementServiceClient<Channel>,
    url: String,
}

/// `request` with `value` in metadata `name`.
fn with_header<T>(
    mut request: Request<T>,
    name: &'static str,
    value: &str,
) -> Result<Request<T>, Status> {
    let value: MetadataValue<_> = value
        .parse()
        .map_err(|_| Status::invalid_argument(format!("{name}: not a valid metadata value")))?;
    request.metadata_mut().insert(name, value);
    Ok(request)
}

impl GrpcControlPlane {
    /// A client of the control plane at `url` (`grpc://host:port`), each
    /// call within `timeout`. Connects on first use.
    pub fn new(url: &str, timeout: Duration) -> Result<Self, Status> {
        let target = url
            .strip_prefix("grpc://")
            .map(|rest| format!("http://{rest}"))
            .or_else(|| {
                url.strip_prefix("grpcs://")
                    .map(|rest| format!("https://{rest}"))
            })
            .ok_or_else(|| Status::invalid_argument(format!("{url}: not a grpc:// URL")))?;
        let endpoint = Endpoint::from_shared(target)
            .map_err(|e| Status::invalid_argument(format!("{url}: {e}")))?
            .connect_timeout(timeout)
            .timeout(timeout)
            .user_agent(concat!("vdi-cluster-worker/", env!("CARGO_PKG_VERSION")))
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        Ok(Self {
            client: WorkerManagementServiceClient::new(endpoint.connect_lazy()),
            url: url.to_owned(),
        })
    }

    /// The control plane's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Registers with a join token under the code of `body` (a taken code
    /// is refused with `ALREADY_EXISTS`: an agent's code is fixed by its
    /// configuration); answers the worker's own credential.
    pub async fn join(
        &self,
        join_token: &str,
        body: &RegisterRequest,
    ) -> Result<JoinResponse, Status> {
        let message = pb::RegisterWorkerRequest {
            keep_requested_id: true,
            ..pb::RegisterWorkerRequest::from(body)
        };
        let request = with_header(Request::new(message), JOIN_TOKEN_HEADER, join_token)?;
        let answer = self
            .client
            .clone()
            .register_worker(request)
            .await?
            .into_inner();
        convert::joined(answer)
            .ok_or_else(|| Status::internal("the control plane answered no credential"))
    }

    /// Sends one heartbeat with `credential` (if any).
    pub async fn heartbeat(
        &self,
        body: &HeartbeatRequest,
        credential: Option<&str>,
    ) -> Result<HeartbeatResponse, Status> {
        let mut request = Request::new(pb::HeartbeatRequest::from(body));
        if let Some(c) = credential {
            request = with_header(request, WORKER_TOKEN_HEADER, c)?;
        }
        let answer = self.client.clone().heartbeat(request).await?.into_inner();
        Ok(answer.into())
    }

    /// Worker `code`, presenting its current `credential`, gets a new one.
    pub async fn rotate(&self, code: &WorkerId, credential: &str) -> Result<JoinResponse, Status> {
        let request = with_header(
            Request::new(pb::RotateCredentialRequest {
                worker_id: code.to_string(),
            }),
            WORKER_TOKEN_HEADER,
            credential,
        )?;
        let answer = self
            .client
            .clone()
            .rotate_credential(request)
            .await?
            .into_inner();
        Ok(answer.into())
    }

    /// Tells the control plane worker `code` leaves, for `reason`, within
    /// `timeout`.
    pub async fn deregister(
        &self,
        code: &WorkerId,
        credential: Option<&str>,
        reason: &str,
        timeout: Duration,
    ) -> Result<(), Status> {
        let mut request = Request::new(pb::DeregisterWorkerRequest {
            worker_id: code.to_string(),
            reason: reason.to_owned(),
        });
        request.set_timeout(timeout);
        if let Some(c) = credential {
            request = with_header(request, WORKER_TOKEN_HEADER, c)?;
        }
        self.client.clone().deregister_worker(request).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_grpc_urls_make_a_client() {
        assert!(is_grpc_url("grpc://127.0.0.1:9090"));
        assert!(!is_grpc_url("http://127.0.0.1:8080/api"));
        assert!(is_grpc_url("GRPC://cp:9090"));
        assert!(GrpcControlPlane::new("http://127.0.0.1:9090", Duration::from_secs(1)).is_err());
        assert_eq!(endpoint_uri("grpc://cp:9090/").unwrap(), "http://cp:9090");
        assert!(endpoint_uri("grpc://").is_err());
        assert!(endpoint_uri("grpc://cp:9090/api").is_err());
    }

    #[tokio::test]
    async fn an_unreachable_control_plane_is_unavailable() {
        let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("grpc://{}", free.local_addr().unwrap());
        drop(free);
        let client = GrpcControlPlane::new(&url, Duration::from_secs(2)).unwrap();
        let code = WorkerId::parse("code", "w1").unwrap();
        let e = client
            .deregister(&code, None, "test", Duration::from_secs(2))
            .await
            .unwrap_err();
        assert_eq!(e.code(), tonic::Code::Unavailable, "{e}");
    }
}
