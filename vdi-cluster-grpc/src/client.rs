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

/// URL scheme of a gRPC control plane in plain text (`grpc://host:port`:
/// HTTP/2 without TLS, as minicloud's `negotiation-type: plaintext`).
pub const GRPC_SCHEME: &str = "grpc://";
/// URL scheme of a gRPC control plane over TLS (`grpcs://host:port`):
/// the connections are made by the caller's connector
/// ([`GrpcControlPlane::with_channel`]), which does the TLS.
pub const GRPCS_SCHEME: &str = "grpcs://";

/// The part of `url` after a gRPC scheme (any case), and whether it is
/// the TLS one.
fn split_scheme(url: &str) -> Option<(&str, bool)> {
    let url = url.trim();
    let lower = url.to_ascii_lowercase();
    [(GRPC_SCHEME, false), (GRPCS_SCHEME, true)]
        .into_iter()
        .find(|(scheme, _)| lower.starts_with(scheme))
        .map(|(scheme, tls)| (&url[scheme.len()..], tls))
}

/// Whether `url` names a gRPC control plane (`grpc://` or `grpcs://`,
/// any case of the scheme).
pub fn is_grpc_url(url: &str) -> bool {
    split_scheme(url).is_some()
}

/// Whether `url` names a gRPC control plane over TLS (`grpcs://`).
pub fn is_tls_url(url: &str) -> bool {
    split_scheme(url).is_some_and(|(_, tls)| tls)
}

/// The HTTP/2 URI tonic connects to for `url` (`grpc://h:p` and
/// `grpcs://h:p` → `http://h:p`: TLS, when asked for, is the
/// connector's); an error for humans when `url` is not a
/// `grpc://host:port` or `grpcs://host:port` URL.
pub fn endpoint_uri(url: &str) -> Result<String, String> {
    let trimmed = url.trim().trim_end_matches('/');
    let Some((rest, _)) = split_scheme(trimmed) else {
        return Err(format!("{url:?} is not a grpc:// or grpcs:// URL"));
    };
    let valid = !rest.is_empty()
        && !rest.contains(['/', '?', '#', ' '])
        && rest.parse::<tonic::codegen::http::uri::Authority>().is_ok();
    if !valid {
        return Err(format!("{url:?}: expected grpc://host:port"));
    }
    Ok(format!("http://{rest}"))
}

/// The endpoint of the control plane at `url`, each call (and each
/// connection) within `timeout`.
pub fn endpoint(url: &str, timeout: Duration) -> Result<Endpoint, Status> {
    let target = endpoint_uri(url).map_err(Status::invalid_argument)?;
    Endpoint::from_shared(target)
        .map_err(|e| Status::invalid_argument(format!("{url}: {e}")))?
        .connect_timeout(timeout)
        .timeout(timeout)
        .user_agent(concat!("vdi-cluster-worker/", env!("CARGO_PKG_VERSION")))
        .map_err(|e| Status::invalid_argument(e.to_string()))
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
    /// A client of the control plane at `url` (`grpc://host:port`, plain
    /// text), each call within `timeout`. Connects on first use. A
    /// `grpcs://` URL is refused here: its connections need TLS
    /// ([`with_channel`](Self::with_channel)).
    pub fn new(url: &str, timeout: Duration) -> Result<Self, Status> {
        if is_tls_url(url) {
            return Err(Status::invalid_argument(format!(
                "{url}: grpcs:// needs a TLS connector"
            )));
        }
        Ok(Self::with_channel(
            url,
            endpoint(url, timeout)?.connect_lazy(),
        ))
    }

    /// A client of the control plane at `url` over `channel`: the
    /// [`endpoint`] of `url` connected by the caller (the node agent's
    /// TLS connector for `grpcs://`).
    pub fn with_channel(url: &str, channel: Channel) -> Self {
        Self {
            client: WorkerManagementServiceClient::new(channel),
            url: url.to_owned(),
        }
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
        assert!(is_grpc_url("grpcs://cp:9090") && is_tls_url("GRPCS://cp:9090"));
        assert!(!is_tls_url("grpc://cp:9090"));
        assert!(GrpcControlPlane::new("http://127.0.0.1:9090", Duration::from_secs(1)).is_err());
        assert!(GrpcControlPlane::new("grpcs://127.0.0.1:9090", Duration::from_secs(1)).is_err());
        assert_eq!(endpoint_uri("grpc://cp:9090/").unwrap(), "http://cp:9090");
        assert_eq!(endpoint_uri("grpcs://cp:9090").unwrap(), "http://cp:9090");
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
