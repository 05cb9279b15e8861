//! The node's calls to the control plane, over HTTP with the protocol's
//! bodies: join (registration with a join token), heartbeat and
//! deregister. Errors are classified so the agent can tell an unreachable
//! control plane from one that refuses.

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use vdi_cluster_core::WorkerId;
use vdi_cluster_protocol::{
    CREDENTIAL_ROTATE_PATH, DEREGISTER_PATH, ErrorBody, HEARTBEAT_PATH, HeartbeatRequest,
    HeartbeatResponse, JOIN_PATH, JOIN_TOKEN_HEADER, JoinResponse, RegisterRequest,
    WORKER_TOKEN_HEADER,
};

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
}

/// An HTTP client of one control plane's API.
#[derive(Debug, Clone)]
pub struct ControlPlaneClient {
    http: reqwest::Client,
    base: String,
    timeout: Duration,
}

impl ControlPlaneClient {
    /// A client of the API at `base` (`…/api`), each call within `timeout`.
    pub fn new(base: String, timeout: Duration) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("vdi-cluster-worker/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            http,
            base,
            timeout,
        })
    }

    /// The API base.
    pub fn base(&self) -> &str {
        &self.base
    }

    async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
        header: Option<(&str, &str)>,
        timeout: Option<Duration>,
    ) -> Result<T, CallError> {
        let mut request = self.http.post(join_url(&self.base, path)).json(body);
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
        self.post(JOIN_PATH, body, Some((JOIN_TOKEN_HEADER, join_token)), None)
            .await
    }

    /// Sends one heartbeat with `credential` (if any).
    pub async fn heartbeat(
        &self,
        body: &HeartbeatRequest,
        credential: Option<&str>,
    ) -> Result<HeartbeatResponse, CallError> {
        let header = credential.map(|c| (WORKER_TOKEN_HEADER, c));
        self.post(HEARTBEAT_PATH, body, header, None).await
    }

    /// Worker `code`, presenting its current `credential`, gets a new one.
    pub async fn rotate(
        &self,
        code: &WorkerId,
        credential: &str,
    ) -> Result<JoinResponse, CallError> {
        let path = CREDENTIAL_ROTATE_PATH.replace("{code}", code.as_str());
        self.post(
            &path,
            &serde_json::json!({}),
            Some((WORKER_TOKEN_HEADER, credential)),
            None,
        )
        .await
    }

    /// Tells the control plane worker `code` leaves (seed 003), within
    /// [`DEREGISTER_TIMEOUT`].
    pub async fn deregister(
        &self,
        code: &WorkerId,
        credential: Option<&str>,
    ) -> Result<(), CallError> {
        let path = DEREGISTER_PATH.replace("{code}", code.as_str());
        let header = credential.map(|c| (WORKER_TOKEN_HEADER, c));
        let timeout = self.timeout.min(DEREGISTER_TIMEOUT);
        let _: serde_json::Value = self
            .post(&path, &serde_json::json!({}), header, Some(timeout))
            .await?;
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
}
