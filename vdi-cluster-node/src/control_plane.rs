//! The node's calls to the control plane, over HTTP with the protocol's
//! bodies: join (registration with a join token), heartbeat and
//! deregister. Errors are classified so the agent can tell an unreachable
//! control plane from one that refuses.
//!
//! With a `grpc://host:port` base, the same calls go to the control
//! plane's gRPC service instead (minicloud's), with the same bodies converted
//! by `vdi-cluster-grpc`; its status codes are classified as the HTTP
//! statuses they stand for. `grpcs://host:port` is the same over TLS, as
//! the HTTP client's `https://`: the CA verifies the control plane and
//! the host's certificate is presented for mutual TLS (`crate::tls`); with
//! a CA configured, plain `grpc://` is refused.
//!
//! With several API bases (replicas of the control plane), every call goes
//! through one [`UrlRotation`]: to the base that last answered, and on to
//! the next right away when one is unreachable or answers a 5xx (see
//! [`endpoints`](crate::endpoints) for the rules).

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use vdi_cluster_core::WorkerId;
use vdi_cluster_protocol::{
    CREDENTIAL_ROTATE_PATH, DEREGISTER_PATH, DeregisterRequest, ErrorBody, HEARTBEAT_PATH,
    HeartbeatRequest, HeartbeatResponse, JOIN_PATH, JOIN_TOKEN_HEADER, JoinResponse,
    RegisterRequest, WORKER_TOKEN_HEADER,
};

use vdi_cluster_grpc::client::{GrpcControlPlane, endpoint, is_grpc_url, is_tls_url};
use vdi_cluster_grpc::status::http_for_code;
use vdi_cluster_grpc::tonic::{Code, Status};

use crate::endpoints::{Next, Outcome, UrlRotation};
use crate::tls::Tls;

/// Timeout of the deregistration call on shutdown (at most).
pub const DEREGISTER_TIMEOUT: Duration = Duration::from_secs(5);

/// `base` (`https://cp/api` or `https://cp`) joined with an API `path`
/// (`/api/vdi/…`): the base's own `/api` is not repeated.
pub fn join_url(base: &str, path: &str) -> String {
    let base = base.trim_end_matches('/');
    match (base.strip_suffix("/api"), path.strip_prefix("/api/")) {
        (Some(_), Some(rest)) => format!("{base}/{rest}"),
        _ => format!("{base}{path}"),
    }
}

/// Why a call to the control plane failed.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// Not reached, or no answer in time.
    #[error("control plane unreachable: {0}")]
    Unreachable(String),
    /// Answered with an error status.
    #[error("control plane answered {status}: {message}")]
    Refused {
        /// The status.
        status: u16,
        /// Its message.
        message: String,
    },
    /// Answered with something that is not the expected JSON.
    #[error("control plane answered something unexpected: {0}")]
    BadAnswer(String),
}

impl CallError {
    /// The control plane answered (it is reachable, whatever it said).
    pub fn answered(&self) -> bool {
        matches!(self, Self::Refused { .. } | Self::BadAnswer(_))
    }

    /// The call should go to the next control-plane URL: this one was not
    /// reached, did not answer in time, or answered a 5xx. Any other
    /// answer (a 401 included) comes from a live control plane.
    pub fn tries_next(&self) -> bool {
        match self {
            Self::Unreachable(_) => true,
            Self::Refused { status, .. } => *status >= 500,
            Self::BadAnswer(_) => false,
        }
    }
}

/// The reason the agent gives when it deregisters on shutdown.
pub const DEREGISTER_REASON: &str = "worker agent shutting down";

/// A gRPC failure as the agent classifies failures: not reached or no
/// answer in time is unreachable; any other code is the answer of a live
/// control plane, with the HTTP status it stands for.
fn grpc_error(status: &Status) -> CallError {
    match status.code() {
        Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled => {
            CallError::Unreachable(status.message().to_owned())
        }
        code => CallError::Refused {
            status: http_for_code(code),
            message: status.message().to_owned(),
        },
    }
}

/// A client of a control plane's API, at one or several HTTP bases, or at
/// one gRPC URL.
#[derive(Debug)]
pub struct ControlPlaneClient {
    http: reqwest::Client,
    bases: Vec<String>,
    rotation: Mutex<UrlRotation>,
    timeout: Duration,
    /// The gRPC client when the base is `grpc://` (or why it could not be
    /// made: every call then fails as unreachable).
    grpc: Option<Result<GrpcControlPlane, String>>,
}

/// The gRPC client of `url`: over TLS for `grpcs://` (verifying the
/// control plane and presenting this host's certificate as `tls` says),
/// in plain text for `grpc://` unless a CA makes TLS the rule.
fn grpc_client(
    url: &str,
    timeout: Duration,
    tls: Option<&Tls>,
) -> Result<GrpcControlPlane, String> {
    match tls {
        Some(tls) if is_tls_url(url) => {
            let endpoint = endpoint(url, timeout).map_err(|e| e.message().to_owned())?;
            Ok(GrpcControlPlane::with_channel(
                url,
                endpoint.connect_with_connector_lazy(tls.grpc_connector()),
            ))
        }
        Some(tls) if tls.https_only() => Err(format!(
            "--tls-ca is set, and {url} is plain text: use grpcs://host:port"
        )),
        _ => GrpcControlPlane::new(url, timeout).map_err(|e| e.message().to_owned()),
    }
}

impl ControlPlaneClient {
    /// A client of the API at `base` (`…/api`), each call within `timeout`.
    pub fn new(base: String, timeout: Duration) -> Result<Self, reqwest::Error> {
        Self::with_bases(vec![base], timeout)
    }

    /// A client of the API at `bases` (replicas, in the order tried), each
    /// attempt within `timeout`. No base at all is taken as one empty base,
    /// at which every call fails as unreachable.
    pub fn with_bases(bases: Vec<String>, timeout: Duration) -> Result<Self, reqwest::Error> {
        Self::with_tls(bases, timeout, None)
    }

    /// As [`with_bases`](Self::with_bases), verifying the control plane
    /// and presenting this host's certificate as `tls` says; with a CA,
    /// plain `http://` is refused.
    pub fn with_tls(
        mut bases: Vec<String>,
        timeout: Duration,
        tls: Option<&Tls>,
    ) -> Result<Self, reqwest::Error> {
        if bases.is_empty() {
            bases.push(String::new());
        }
        let mut http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("vdi-cluster-worker/", env!("CARGO_PKG_VERSION")));
        if let Some(tls) = tls {
            http = http
                .use_preconfigured_tls(tls.client_config())
                .https_only(tls.https_only());
        }
        let http = http.build()?;
        let grpc = match bases.as_slice() {
            [one] if is_grpc_url(one) => Some(grpc_client(one, timeout, tls)),
            _ => None,
        };
        Ok(Self {
            http,
            rotation: Mutex::new(UrlRotation::new(bases.len())),
            bases,
            timeout,
            grpc,
        })
    }

    /// The gRPC client, when the control plane is reached over gRPC.
    fn grpc(&self) -> Option<Result<&GrpcControlPlane, CallError>> {
        self.grpc
            .as_ref()
            .map(|g| g.as_ref().map_err(|e| CallError::Unreachable(e.clone())))
    }

    /// The API base calls go to now: the one that last answered.
    pub fn base(&self) -> &str {
        &self.bases[self.current()]
    }

    /// Every API base, in the order tried.
    pub fn bases(&self) -> &[String] {
        &self.bases
    }

    fn current(&self) -> usize {
        self.rotation
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .current()
    }

    /// One call, at the current base and then, while they fail, at the
    /// next ones; the error of the last attempt once every base failed.
    async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
        header: Option<(&str, &str)>,
        timeout: Option<Duration>,
    ) -> Result<T, CallError> {
        let mut index = self.current();
        let mut attempts = 0;
        loop {
            let base = &self.bases[index];
            let result = self.post_once(base, path, body, header, timeout).await;
            attempts += 1;
            let outcome = match &result {
                Err(e) if e.tries_next() => Outcome::Failed,
                _ => Outcome::Answered,
            };
            let next = self
                .rotation
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .record(index, outcome);
            match next {
                Next::Try(other) if attempts < self.bases.len() => {
                    if let Err(e) = &result {
                        tracing::warn!(failed = %base, next = %self.bases[other], error = %e, "control plane failed: trying the next URL");
                    }
                    index = other;
                }
                _ => return result,
            }
        }
    }

    /// One attempt at `base`.
    async fn post_once<B: Serialize, T: DeserializeOwned>(
        &self,
        base: &str,
        path: &str,
        body: &B,
        header: Option<(&str, &str)>,
        timeout: Option<Duration>,
    ) -> Result<T, CallError> {
        let mut request = self.http.post(join_url(base, path)).json(body);
        if let Some((name, value)) = header {
            request = request.header(name, value);
        }
        if let Some(t) = timeout {
            request = request.timeout(t);
        }
        let response = request
            .send()
            .await
            .map_err(|e| CallError::Unreachable(e.without_url().to_string()))?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| CallError::Unreachable(e.without_url().to_string()))?;
        if !status.is_success() {
            let message = serde_json::from_slice::<ErrorBody>(&bytes)
                .map(|b| b.message)
                .unwrap_or_else(|_| String::from_utf8_lossy(&bytes).chars().take(200).collect());
            return Err(CallError::Refused {
                status: status.as_u16(),
                message,
            });
        }
        serde_json::from_slice(&bytes).map_err(|e| CallError::BadAnswer(e.to_string()))
    }

    /// Registers with a join token; answers the worker's own credential.
    pub async fn join(
        &self,
        join_token: &str,
        body: &RegisterRequest,
    ) -> Result<JoinResponse, CallError> {
        if let Some(grpc) = self.grpc() {
            return grpc?
                .join(join_token, body)
                .await
                .map_err(|e| grpc_error(&e));
        }
        self.post(JOIN_PATH, body, Some((JOIN_TOKEN_HEADER, join_token)), None)
            .await
    }

    /// Sends one heartbeat with `credential` (if any).
    pub async fn heartbeat(
        &self,
        body: &HeartbeatRequest,
        credential: Option<&str>,
    ) -> Result<HeartbeatResponse, CallError> {
        if let Some(grpc) = self.grpc() {
            return grpc?
                .heartbeat(body, credential)
                .await
                .map_err(|e| grpc_error(&e));
        }
        let header = credential.map(|c| (WORKER_TOKEN_HEADER, c));
        self.post(HEARTBEAT_PATH, body, header, None).await
    }

    /// Worker `code`, presenting its current `credential`, gets a new one.
    pub async fn rotate(
        &self,
        code: &WorkerId,
        credential: &str,
    ) -> Result<JoinResponse, CallError> {
        if let Some(grpc) = self.grpc() {
            return grpc?
                .rotate(code, credential)
                .await
                .map_err(|e| grpc_error(&e));
        }
        let path = CREDENTIAL_ROTATE_PATH.replace("{code}", code.as_str());
        self.post(
            &path,
            &serde_json::json!({}),
            Some((WORKER_TOKEN_HEADER, credential)),
            None,
        )
        .await
    }

    /// Tells the control plane worker `code` leaves (as minicloud's workers do), with
    /// [`DEREGISTER_REASON`], within [`DEREGISTER_TIMEOUT`].
    pub async fn deregister(
        &self,
        code: &WorkerId,
        credential: Option<&str>,
    ) -> Result<(), CallError> {
        let timeout = self.timeout.min(DEREGISTER_TIMEOUT);
        if let Some(grpc) = self.grpc() {
            return grpc?
                .deregister(code, credential, DEREGISTER_REASON, timeout)
                .await
                .map_err(|e| grpc_error(&e));
        }
        let path = DEREGISTER_PATH.replace("{code}", code.as_str());
        let header = credential.map(|c| (WORKER_TOKEN_HEADER, c));
        let body = DeregisterRequest {
            reason: Some(DEREGISTER_REASON.to_owned()),
        };
        let _: serde_json::Value = self.post(&path, &body, header, Some(timeout)).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_join_without_repeating_api() {
        assert_eq!(
            join_url("https://cp.example.edu.vn/api", HEARTBEAT_PATH),
            "https://cp.example.edu.vn/api/vdi/workers/heartbeat"
        );
        assert_eq!(
            join_url("https://cp.example.edu.vn/api/", HEARTBEAT_PATH),
            "https://cp.example.edu.vn/api/vdi/workers/heartbeat"
        );
        assert_eq!(
            join_url("http://127.0.0.1:8080", HEARTBEAT_PATH),
            "http://127.0.0.1:8080/api/vdi/workers/heartbeat"
        );
    }

    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A control plane on loopback that answers every call with `status`
    /// (and `{}`); counts the calls.
    async fn replica(status: u16) -> (String, Arc<AtomicUsize>) {
        let calls = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&calls);
        let app = axum::Router::new().fallback(move || {
            let counter = Arc::clone(&counter);
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
                (
                    axum::http::StatusCode::from_u16(status).unwrap(),
                    axum::Json(serde_json::json!({})),
                )
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        (format!("http://{addr}/api"), calls)
    }

    /// A base where nothing listens.
    fn dead() -> String {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/api", listener.local_addr().unwrap())
    }

    fn client(bases: &[&String]) -> ControlPlaneClient {
        let bases = bases.iter().map(|b| (*b).clone()).collect();
        ControlPlaneClient::with_bases(bases, Duration::from_secs(5)).unwrap()
    }

    async fn call(client: &ControlPlaneClient) -> Result<(), CallError> {
        client
            .deregister(&WorkerId::parse("code", "w1").unwrap(), None)
            .await
    }

    #[test]
    fn grpc_failures_are_classified_as_http_ones() {
        let e = grpc_error(&Status::unavailable("connection refused"));
        assert!(
            matches!(e, CallError::Unreachable(_)) && e.tries_next(),
            "{e}"
        );
        let e = grpc_error(&Status::unauthenticated("invalid x-worker-token"));
        assert!(matches!(e, CallError::Refused { status: 401, .. }), "{e}");
        assert!(e.answered() && !e.tries_next());
        let e = grpc_error(&Status::unimplemented("no rotation"));
        assert!(matches!(e, CallError::Refused { status: 405, .. }), "{e}");
    }

    #[tokio::test]
    async fn a_dead_or_failing_replica_is_skipped_and_the_live_one_sticks() {
        let dead = dead();
        let (failing, failing_calls) = replica(503).await;
        let (live, live_calls) = replica(200).await;
        let c = client(&[&dead, &failing, &live]);
        assert_eq!(c.base(), dead);
        call(&c).await.unwrap();
        assert_eq!(c.base(), live);
        assert_eq!(failing_calls.load(Ordering::SeqCst), 1);
        // The next call goes straight to the one that answered.
        call(&c).await.unwrap();
        assert_eq!(failing_calls.load(Ordering::SeqCst), 1);
        assert_eq!(live_calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_refusal_is_an_answer() {
        let (refusing, _) = replica(401).await;
        let (live, live_calls) = replica(200).await;
        let c = client(&[&refusing, &live]);
        let e = call(&c).await.unwrap_err();
        assert!(matches!(e, CallError::Refused { status: 401, .. }), "{e}");
        assert_eq!(c.base(), refusing);
        assert_eq!(live_calls.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn when_every_replica_fails_the_call_fails_once_per_round() {
        let dead = dead();
        let (failing, failing_calls) = replica(500).await;
        let c = client(&[&dead, &failing]);
        let e = call(&c).await.unwrap_err();
        assert!(e.tries_next(), "{e}");
        assert_eq!(failing_calls.load(Ordering::SeqCst), 1);
        // The next round starts where this one did.
        assert_eq!(c.base(), dead);
        let none = ControlPlaneClient::with_bases(Vec::new(), Duration::from_secs(1)).unwrap();
        assert!(matches!(call(&none).await, Err(CallError::Unreachable(_))));
        let single = client(&[&failing]);
        assert!(call(&single).await.is_err());
        assert_eq!(failing_calls.load(Ordering::SeqCst), 2);
    }
}
