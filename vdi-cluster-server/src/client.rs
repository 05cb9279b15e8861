//! [`HttpWorkerClient`]: core's [`WorkerClient`] over HTTP.
//!
//! Calls `apiBaseUrl` + the exam platform's `/api/vdi/cluster/allocate|release|prewarm`
//! (and `DELETE /api/vdi/cluster/prewarm/:examId` to discard an exam's
//! prewarmed machines, `/api/vdi/cluster/check` for a rehearsal's check)
//! with the cluster token in `x-cluster-token`, using the wire format of
//! [`protocol`](vdi_cluster_protocol). An allocate or prewarm of an exam
//! booked with a network policy carries it (`networkPolicy`). Core applies `CLUSTER_API_TIMEOUT_MS` to
//! every call; the client uses the same figure as its own limit so that no
//! connection outlives it — except a rehearsal's check, which starts and
//! stops a desktop and is bounded by core's `--rehearsal-timeout-sec`
//! (the client's own limit for it is [`MAX_CHECK_CALL`]). Failures map to [`WorkerCallError`]:
//!
//! | what happened | error |
//! |---|---|
//! | no answer in time | `Timeout` |
//! | connection refused, DNS, TLS, reset; no `apiBaseUrl` | `Unreachable` |
//! | a non-2xx status (`release`: except 404, an unknown session) | `Refused { status, message }` |
//! | an answer that is not the expected JSON, or too large | `BadAnswer` |
//!
//! Redirects are not followed (the cluster token must not travel to another
//! host).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use reqwest::StatusCode;
use reqwest::header::CONTENT_TYPE;
use serde::Serialize;
use serde::de::DeserializeOwned;
use vdi_cluster_core::rehearsal::CheckReport;
use vdi_cluster_core::{
    DesktopSettings, ExamId, SessionKey, WorkerCallError, WorkerClient, WorkerRecord,
};
use vdi_cluster_node::tls::Tls;

use vdi_cluster_protocol::{
    AllocateRequest, AllocateResponse, CLUSTER_TOKEN_HEADER, CheckRequest, CheckResponse,
    ErrorBody, PrewarmDiscardResponse, PrewarmRequest, PrewarmResponse, ReleaseRequest,
    WORKER_ALLOCATE_PATH, WORKER_CHECK_PATH, WORKER_PREWARM_PATH, WORKER_RELEASE_PATH,
};

/// The client's own limit on a rehearsal's check (core's timeout, shorter,
/// applies first).
pub const MAX_CHECK_CALL: Duration = Duration::from_secs(3_600);

/// Largest answer read from a worker.
pub const MAX_ANSWER_BYTES: usize = 256 * 1024;

/// The HTTP client could not be built (TLS initialisation).
#[derive(Debug, thiserror::Error)]
#[error("cannot build the worker HTTP client: {0}")]
pub struct ClientBuildError(#[from] reqwest::Error);

/// A worker has no base URL to call.
#[derive(Debug, thiserror::Error)]
#[error("worker {0} has no apiBaseUrl")]
struct NoBaseUrl(String);

/// Calls worker nodes over HTTP(S).
#[derive(Clone)]
pub struct HttpWorkerClient {
    http: reqwest::Client,
    cluster_token: Option<Arc<str>>,
}

impl fmt::Debug for HttpWorkerClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpWorkerClient")
            .field("cluster_token", &self.cluster_token.as_ref().map(|_| ".."))
            .finish_non_exhaustive()
    }
}

impl HttpWorkerClient {
    /// A client sending `cluster_token` (if any) and giving up after
    /// `timeout` (use `CLUSTER_API_TIMEOUT_MS`).
    pub fn new(cluster_token: Option<&str>, timeout: Duration) -> Result<Self, ClientBuildError> {
        Self::with_tls(cluster_token, timeout, None)
    }

    /// As [`new`](Self::new), verifying workers and presenting this
    /// control plane's certificate as `tls` says; with a CA, a worker
    /// whose URL is plain `http://` is not called.
    pub fn with_tls(
        cluster_token: Option<&str>,
        timeout: Duration,
        tls: Option<&Tls>,
    ) -> Result<Self, ClientBuildError> {
        let mut http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("vdi-cluster/", env!("CARGO_PKG_VERSION")));
        if let Some(tls) = tls {
            http = http
                .use_preconfigured_tls(tls.client_config())
                .https_only(tls.https_only());
        }
        let http = http.build()?;
        Ok(Self {
            http,
            cluster_token: cluster_token.map(Arc::from),
        })
    }

    async fn call<B: Serialize>(
        &self,
        worker: &WorkerRecord,
        path: &str,
        body: &B,
    ) -> Result<(StatusCode, Vec<u8>), WorkerCallError> {
        let request = self.post(worker, path, body)?;
        self.send(request).await
    }

    fn post<B: Serialize>(
        &self,
        worker: &WorkerRecord,
        path: &str,
        body: &B,
    ) -> Result<reqwest::RequestBuilder, WorkerCallError> {
        let base = base_url(worker)?;
        let payload = serde_json::to_vec(body)
            .map_err(|e| WorkerCallError::BadAnswer(format!("cannot encode the request: {e}")))?;
        Ok(self
            .http
            .post(format!("{base}{path}"))
            .header(CONTENT_TYPE, "application/json")
            .body(payload))
    }

    /// `DELETE` on `path` followed by `segment` as one percent-encoded
    /// path segment.
    async fn delete(
        &self,
        worker: &WorkerRecord,
        path: &str,
        segment: &str,
    ) -> Result<(StatusCode, Vec<u8>), WorkerCallError> {
        let base = base_url(worker)?;
        let mut url = reqwest::Url::parse(&format!("{base}{path}"))
            .map_err(|e| WorkerCallError::Unreachable(Box::new(e)))?;
        url.path_segments_mut()
            .map_err(|()| WorkerCallError::Unreachable(Box::new(NoBaseUrl(worker.id.to_string()))))?
            .push(segment);
        self.send(self.http.delete(url)).await
    }

    async fn send(
        &self,
        mut request: reqwest::RequestBuilder,
    ) -> Result<(StatusCode, Vec<u8>), WorkerCallError> {
        if let Some(token) = &self.cluster_token {
            request = request.header(CLUSTER_TOKEN_HEADER, token.as_ref());
        }
        let mut response = request.send().await.map_err(transport_error)?;
        let status = response.status();
        let mut bytes = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(transport_error)? {
            if bytes.len() + chunk.len() > MAX_ANSWER_BYTES {
                return Err(WorkerCallError::BadAnswer(format!(
                    "answer larger than {MAX_ANSWER_BYTES} bytes"
                )));
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok((status, bytes))
    }
}

fn base_url(worker: &WorkerRecord) -> Result<&str, WorkerCallError> {
    let base = worker.description.api_base_url.trim_end_matches('/');
    if base.is_empty() {
        return Err(WorkerCallError::Unreachable(Box::new(NoBaseUrl(
            worker.id.to_string(),
        ))));
    }
    Ok(base)
}

fn transport_error(e: reqwest::Error) -> WorkerCallError {
    if e.is_timeout() {
        WorkerCallError::Timeout
    } else {
        WorkerCallError::Unreachable(Box::new(e))
    }
}

fn refused(status: StatusCode, bytes: &[u8]) -> WorkerCallError {
    let message = serde_json::from_slice::<ErrorBody>(bytes)
        .map(|b| b.message)
        .unwrap_or_else(|_| {
            let text = String::from_utf8_lossy(bytes);
            text.chars().take(200).collect()
        });
    WorkerCallError::Refused {
        status: status.as_u16(),
        message,
    }
}

fn decode<T: DeserializeOwned>(status: StatusCode, bytes: &[u8]) -> Result<T, WorkerCallError> {
    if !status.is_success() {
        return Err(refused(status, bytes));
    }
    serde_json::from_slice(bytes).map_err(|e| WorkerCallError::BadAnswer(e.to_string()))
}

#[async_trait]
impl WorkerClient for HttpWorkerClient {
    async fn allocate(
        &self,
        worker: &WorkerRecord,
        key: &SessionKey,
        settings: &DesktopSettings,
    ) -> Result<serde_json::Value, WorkerCallError> {
        let body = AllocateRequest::new(key, settings);
        let (status, bytes) = self.call(worker, WORKER_ALLOCATE_PATH, &body).await?;
        let answer: AllocateResponse = decode(status, &bytes)?;
        if !answer.session.is_object() {
            return Err(WorkerCallError::BadAnswer(
                "session must be a JSON object".into(),
            ));
        }
        Ok(answer.session)
    }

    async fn release(
        &self,
        worker: &WorkerRecord,
        key: &SessionKey,
    ) -> Result<(), WorkerCallError> {
        let (status, bytes) = self
            .call(worker, WORKER_RELEASE_PATH, &ReleaseRequest::from(key))
            .await?;
        if status.is_success() || status == StatusCode::NOT_FOUND {
            Ok(())
        } else {
            Err(refused(status, &bytes))
        }
    }

    async fn prewarm(
        &self,
        worker: &WorkerRecord,
        exam: &ExamId,
        count: u32,
        settings: &DesktopSettings,
    ) -> Result<u32, WorkerCallError> {
        let body = PrewarmRequest::new(exam, count, settings);
        let (status, bytes) = self.call(worker, WORKER_PREWARM_PATH, &body).await?;
        let answer: PrewarmResponse = decode(status, &bytes)?;
        Ok(answer.accepted.min(count))
    }

    async fn discard_prewarm(
        &self,
        worker: &WorkerRecord,
        exam: &ExamId,
    ) -> Result<u32, WorkerCallError> {
        let (status, bytes) = self
            .delete(worker, WORKER_PREWARM_PATH, exam.as_str())
            .await?;
        let answer: PrewarmDiscardResponse = decode(status, &bytes)?;
        Ok(answer.discarded)
    }

    async fn check(
        &self,
        worker: &WorkerRecord,
        exam: &ExamId,
        settings: &DesktopSettings,
    ) -> Result<CheckReport, WorkerCallError> {
        let request = self
            .post(
                worker,
                WORKER_CHECK_PATH,
                &CheckRequest::new(exam, settings),
            )?
            .timeout(MAX_CHECK_CALL);
        let (status, bytes) = self.send(request).await?;
        let answer: CheckResponse = decode(status, &bytes)?;
        Ok(CheckReport::from(answer))
    }
}
