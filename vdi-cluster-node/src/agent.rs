//! The heartbeat agent: registration (by join token), heartbeats with
//! exponential backoff, the control plane's instructions, deregistration.
//!
//! * **Heartbeats** go to `CONTROL_PLANE_API_BASE` + `/vdi/workers/heartbeat`
//!   (the base includes `/api`, as in seed 000) right away, then every
//!   `nextHeartbeatSec` of the previous answer (`HEARTBEAT_INTERVAL_SEC`
//!   until one arrives). Each carries the node's size and load, a boot id
//!   (random per process), a sequence number and the live sessions.
//! * **Failures** never stop the worker: the next attempt waits an
//!   exponentially growing delay with jitter, capped by
//!   `HEARTBEAT_BACKOFF_MAX_SEC`; the worker-side API keeps serving.
//! * **Answers**: the admin state is logged when it changes and respected
//!   by the [node](super::node::WorkerNode); `releaseSessions` are stopped
//!   (only the incarnation the heartbeat reported).
//! * **Credentials**: the worker's own credential (from joining, or the
//!   credential file), else the shared `WORKER_HEARTBEAT_TOKEN`, else none.
//!   With a join token and no credential, the agent joins first, retrying
//!   with the same backoff until the control plane accepts; if the control
//!   plane later refuses the credential (401) and a join token is
//!   configured, it joins again.
//! * **Deregistration** on shutdown (`POST …/workers/{code}/deregister`).

use std::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;
use vdi_cluster_core::worker::MAX_LIVE_SESSIONS;
use vdi_cluster_core::{SessionKey, WorkerDescription, WorkerId};

use crate::config::CapacityConfig;
use crate::host::{HostFacts, HostProbe, HostUsage};
use crate::node::{AdminView, WorkerNode};
use vdi_cluster_protocol::{
    DEREGISTER_PATH, ErrorBody, HEARTBEAT_PATH, HeartbeatRequest, HeartbeatResponse, JOIN_PATH,
    JOIN_TOKEN_HEADER, JoinResponse, RegisterRequest, SessionRef, WORKER_TOKEN_HEADER,
};

/// Shortest wait between two heartbeats, whatever an answer asks.
pub const MIN_HEARTBEAT_INTERVAL: Duration = Duration::from_millis(100);
/// Longest wait between two heartbeats, whatever an answer asks.
pub const MAX_HEARTBEAT_INTERVAL: Duration = Duration::from_secs(3600);
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

/// The exponential backoff after `failures` consecutive failures (1 or
/// more): `base · 2^(failures-1)`, capped by `cap`, then a uniformly random
/// share of it between one half and all of it.
pub fn backoff(failures: u32, base: Duration, cap: Duration, unit_random: f64) -> Duration {
    let exponent = failures.saturating_sub(1).min(30);
    let grown = base.saturating_mul(1u32 << exponent).min(cap);
    let share = 0.5 + 0.5 * unit_random.clamp(0.0, 1.0);
    grown.mul_f64(share)
}

/// Which credential heartbeats carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum CredentialKind {
    /// None (the control plane accepts heartbeats without a token).
    None,
    /// The shared `WORKER_HEARTBEAT_TOKEN`.
    Shared,
    /// The worker's own credential, from joining.
    Own,
}

/// The agent's view of the control plane, for the status endpoint.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ControlPlaneView {
    /// The control plane's API base.
    pub url: String,
    /// The latest heartbeat was answered.
    pub reachable: bool,
    /// The control plane knows this worker (a heartbeat was accepted since
    /// this process started).
    pub registered: bool,
    /// Which credential heartbeats carry.
    pub credential: CredentialKind,
    /// When the latest answer arrived (ms since the epoch).
    pub last_ok_at: Option<u64>,
    /// Failed attempts since the latest answer.
    pub consecutive_failures: u32,
    /// Why the latest attempt failed.
    pub last_error: Option<String>,
    /// Seconds until the next attempt, as planned after the latest one.
    pub next_attempt_sec: f64,
    /// Heartbeats answered since start.
    pub heartbeats_ok: u64,
    /// Heartbeats failed since start.
    pub heartbeats_failed: u64,
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

struct Inner {
    credential: Option<String>,
    kind: CredentialKind,
    view: ControlPlaneView,
}

/// What the agent needs from the worker's configuration.
#[derive(Clone)]
pub struct AgentConfig {
    /// The worker's code.
    pub code: WorkerId,
    /// Its description (the base URL filled in).
    pub description: WorkerDescription,
    /// Node size and session profile.
    pub capacity: CapacityConfig,
    /// Control plane API base.
    pub control_plane: String,
    /// Shared heartbeat token.
    pub worker_token: Option<String>,
    /// Join token.
    pub join_token: Option<String>,
    /// Where the joined credential is kept.
    pub credential_file: Option<std::path::PathBuf>,
    /// Heartbeat interval until the control plane says otherwise.
    pub heartbeat_interval: Duration,
    /// Backoff cap.
    pub backoff_max: Duration,
    /// Timeout of one call.
    pub timeout: Duration,
    /// Report CPU, memory and disk usage.
    pub report_usage: bool,
}

impl fmt::Debug for AgentConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AgentConfig")
            .field("code", &self.code)
            .field("control_plane", &self.control_plane)
            .field("heartbeat_interval", &self.heartbeat_interval)
            .finish_non_exhaustive()
    }
}

/// The heartbeat agent of one worker process.
pub struct Agent {
    config: AgentConfig,
    node: Arc<WorkerNode>,
    host: Mutex<HostProbe>,
    facts: HostFacts,
    http: reqwest::Client,
    boot_id: String,
    seq: AtomicU64,
    inner: Mutex<Inner>,
}

impl fmt::Debug for Agent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Agent")
            .field("code", &self.config.code)
            .field("boot_id", &self.boot_id)
            .field("seq", &self.seq.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

fn read_credential(path: &Path) -> Option<String> {
    match std::fs::read_to_string(path) {
        Ok(text) => Some(text.trim().to_owned()).filter(|t| !t.is_empty()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "cannot read the credential file");
            None
        }
    }
}

fn write_credential(path: &Path, credential: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(credential.as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()
}

impl Agent {
    /// An agent for `node`; `facts` is the host's size (overridden by the
    /// capacity configuration where set).
    pub fn new(
        config: AgentConfig,
        node: Arc<WorkerNode>,
        host: HostProbe,
        facts: HostFacts,
    ) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("vdi-cluster-worker/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let from_file = config.credential_file.as_deref().and_then(read_credential);
        let (credential, kind) = match (from_file, &config.worker_token) {
            (Some(c), _) => (Some(c), CredentialKind::Own),
            (None, Some(t)) if config.join_token.is_none() => {
                (Some(t.clone()), CredentialKind::Shared)
            }
            _ => (None, CredentialKind::None),
        };
        let view = ControlPlaneView {
            url: config.control_plane.clone(),
            reachable: false,
            registered: false,
            credential: kind,
            last_ok_at: None,
            consecutive_failures: 0,
            last_error: None,
            next_attempt_sec: 0.0,
            heartbeats_ok: 0,
            heartbeats_failed: 0,
        };
        Ok(Self {
            config,
            node,
            host: Mutex::new(host),
            facts,
            http,
            boot_id: uuid::Uuid::new_v4().to_string(),
            seq: AtomicU64::new(0),
            inner: Mutex::new(Inner {
                credential,
                kind,
                view,
            }),
        })
    }

    /// This process's boot id.
    pub fn boot_id(&self) -> &str {
        &self.boot_id
    }

    /// The sequence number of the latest heartbeat.
    pub fn seq(&self) -> u64 {
        self.seq.load(Ordering::Relaxed)
    }

    /// The agent's view of the control plane.
    pub fn view(&self) -> ControlPlaneView {
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .view
            .clone()
    }

    fn credential(&self) -> (Option<String>, CredentialKind) {
        let inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        (inner.credential.clone(), inner.kind)
    }

    fn needs_join(&self) -> bool {
        self.config.join_token.is_some() && self.credential().1 != CredentialKind::Own
    }

    fn note(&self, result: Result<(), &CallError>, next: Duration) {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let view = &mut inner.view;
        match result {
            Ok(()) => {
                view.reachable = true;
                view.registered = true;
                view.last_ok_at = Some(now_millis());
                view.consecutive_failures = 0;
                view.last_error = None;
                view.heartbeats_ok += 1;
            }
            Err(e) => {
                view.reachable = matches!(e, CallError::Refused { .. } | CallError::BadAnswer(_));
                view.consecutive_failures += 1;
                view.last_error = Some(e.to_string());
                view.heartbeats_failed += 1;
            }
        }
        view.next_attempt_sec = next.as_secs_f64();
    }

    async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
        headers: &[(&str, &str)],
        timeout: Option<Duration>,
    ) -> Result<T, CallError> {
        let url = join_url(&self.config.control_plane, path);
        let mut request = self.http.post(&url).json(body);
        for (name, value) in headers {
            request = request.header(*name, *value);
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

    fn register_body(&self) -> RegisterRequest {
        let d = &self.config.description;
        RegisterRequest {
            code: self.config.code.to_string(),
            name: d.name.clone(),
            api_base_url: d.api_base_url.clone(),
            zone: d.zone.clone(),
            labels: d.labels.clone(),
            capabilities: d.capabilities.clone(),
        }
    }

    /// Registers with the join token and keeps the credential received.
    pub async fn join(&self) -> Result<(), CallError> {
        let Some(token) = self.config.join_token.clone() else {
            return Ok(());
        };
        let answer: JoinResponse = self
            .post(
                JOIN_PATH,
                &self.register_body(),
                &[(JOIN_TOKEN_HEADER, token.as_str())],
                None,
            )
            .await?;
        if let Some(path) = &self.config.credential_file
            && let Err(e) = write_credential(path, &answer.credential)
        {
            tracing::warn!(path = %path.display(), error = %e, "cannot keep the worker credential in its file");
        }
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        inner.credential = Some(answer.credential);
        inner.kind = CredentialKind::Own;
        inner.view.credential = CredentialKind::Own;
        drop(inner);
        tracing::info!(code = %self.config.code, "joined the control plane: using this worker's own credential from now on");
        Ok(())
    }

    fn heartbeat_body(&self) -> (HeartbeatRequest, Vec<(SessionKey, u64)>) {
        let usage = if self.config.report_usage {
            self.host
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .usage()
        } else {
            HostUsage::default()
        };
        let snapshot = self.node.snapshot();
        let input = self
            .config
            .capacity
            .input(self.facts.cpu_cores, self.facts.memory_mb);
        let d = &self.config.description;
        let live = (snapshot.live.len() <= MAX_LIVE_SESSIONS).then(|| {
            snapshot
                .live
                .iter()
                .map(|(k, _)| SessionRef {
                    session: snapshot.details.get(k).cloned(),
                    ..SessionRef::from(k)
                })
                .collect()
        });
        let seq = self.seq.fetch_add(1, Ordering::Relaxed) + 1;
        let body = HeartbeatRequest {
            code: self.config.code.to_string(),
            name: d.name.clone(),
            api_base_url: d.api_base_url.clone(),
            total_cpu_cores: input.total_cpu_cores,
            total_memory_mb: input.total_memory_mb,
            reserved_cpu_cores: input.reserved_cpu_cores,
            reserved_memory_mb: input.reserved_memory_mb,
            vm_cpu_cores: input.vm_cpu_cores,
            vm_memory_mb: input.vm_memory_mb,
            active_sessions: u32::try_from(snapshot.active).unwrap_or(u32::MAX),
            boot_id: Some(self.boot_id.clone()),
            seq: Some(seq),
            live_sessions: live,
            cpu_percent: usage.cpu_percent,
            memory_percent: usage.memory_percent,
            disk_percent: usage.disk_percent,
            zone: d.zone.clone(),
            labels: d.labels.clone(),
            capabilities: d.capabilities.clone(),
        };
        (body, snapshot.live)
    }

    /// Sends one heartbeat and applies the answer.
    pub async fn heartbeat(&self) -> Result<HeartbeatResponse, CallError> {
        let (body, live) = self.heartbeat_body();
        let (credential, _) = self.credential();
        let headers: Vec<(&str, &str)> = credential
            .as_deref()
            .map(|c| vec![(WORKER_TOKEN_HEADER, c)])
            .unwrap_or_default();
        let answer: HeartbeatResponse = self.post(HEARTBEAT_PATH, &body, &headers, None).await?;
        self.apply(&answer, &live);
        Ok(answer)
    }

    fn apply(&self, answer: &HeartbeatResponse, live: &[(SessionKey, u64)]) {
        let view = AdminView {
            status: answer.status.clone(),
            is_draining: answer.is_draining,
            is_enabled: answer.is_enabled,
            drain_status: answer.drain_status.clone(),
        };
        let previous = self.node.set_admin(view.clone());
        if previous.as_ref() != Some(&view) {
            let code = &self.config.code;
            if !view.is_enabled {
                tracing::warn!(code = %code, status = %view.status, "the control plane disabled this worker: new sessions are refused");
            } else if view.is_draining {
                tracing::warn!(code = %code, status = %view.status, drain = %view.drain_status, "the control plane is draining this worker: it keeps its sessions and takes no new ones");
            } else {
                tracing::info!(code = %code, status = %view.status, "admin state from the control plane");
            }
        }
        if let Some(w) = &answer.warning {
            tracing::warn!(code = %self.config.code, warning = %w, "control plane warning");
        }
        for session in &answer.release_sessions {
            let Ok(key) = session.to_key() else { continue };
            let Some((_, incarnation)) = live.iter().find(|(k, _)| *k == key) else {
                continue;
            };
            if self.node.release_if_incarnation(&key, *incarnation) {
                tracing::warn!(session = %key, "the control plane no longer places this session here: stopping it");
            }
        }
    }

    fn next_interval(&self, answer: &HeartbeatResponse) -> Duration {
        let asked = answer.next_heartbeat_sec;
        if asked.is_finite() && asked > 0.0 {
            Duration::from_secs_f64(asked.min(MAX_HEARTBEAT_INTERVAL.as_secs_f64()))
                .max(MIN_HEARTBEAT_INTERVAL)
        } else {
            self.config.heartbeat_interval
        }
    }

    fn backoff(&self, failures: u32) -> Duration {
        let base = self
            .config
            .heartbeat_interval
            .min(Duration::from_secs(1))
            .max(MIN_HEARTBEAT_INTERVAL);
        backoff(
            failures,
            base,
            self.config.backoff_max,
            rand::random::<f64>(),
        )
    }

    /// Joins (if configured), then heartbeats until `shutdown`; never gives
    /// up on failures.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let mut failures: u32 = 0;
        loop {
            let wait = if self.needs_join() {
                match self.join().await {
                    Ok(()) => {
                        failures = 0;
                        Duration::ZERO
                    }
                    Err(e) => {
                        failures = failures.saturating_add(1);
                        let wait = self.backoff(failures);
                        tracing::warn!(code = %self.config.code, attempt = failures, retry_in_sec = wait.as_secs_f64(), error = %e, "joining the control plane failed");
                        self.note(Err(&e), wait);
                        wait
                    }
                }
            } else {
                match self.heartbeat().await {
                    Ok(answer) => {
                        if failures > 0 {
                            tracing::info!(code = %self.config.code, after_failures = failures, "heartbeats answered again");
                        }
                        failures = 0;
                        let wait = self.next_interval(&answer);
                        self.note(Ok(()), wait);
                        wait
                    }
                    Err(e) => {
                        failures = failures.saturating_add(1);
                        let wait = self.backoff(failures);
                        tracing::warn!(code = %self.config.code, attempt = failures, retry_in_sec = wait.as_secs_f64(), error = %e, "heartbeat failed; the worker keeps serving its sessions");
                        self.note(Err(&e), wait);
                        if matches!(e, CallError::Refused { status: 401, .. })
                            && self.config.join_token.is_some()
                            && self.credential().1 == CredentialKind::Own
                        {
                            tracing::warn!(code = %self.config.code, "the control plane refused this worker's credential: joining again");
                            let mut inner =
                                self.inner.lock().unwrap_or_else(PoisonError::into_inner);
                            inner.credential = None;
                            inner.kind = CredentialKind::None;
                        }
                        wait
                    }
                }
            };
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = shutdown.cancelled() => return,
            }
        }
    }

    /// Tells the control plane this worker leaves (seed 003).
    pub async fn deregister(&self) -> Result<(), CallError> {
        let path = DEREGISTER_PATH.replace("{code}", self.config.code.as_str());
        let (credential, _) = self.credential();
        let headers: Vec<(&str, &str)> = credential
            .as_deref()
            .map(|c| vec![(WORKER_TOKEN_HEADER, c)])
            .unwrap_or_default();
        let timeout = self.config.timeout.min(DEREGISTER_TIMEOUT);
        let _: serde_json::Value = self
            .post(&path, &serde_json::json!({}), &headers, Some(timeout))
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

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        let base = Duration::from_secs(1);
        let cap = Duration::from_secs(60);
        assert_eq!(backoff(1, base, cap, 1.0), Duration::from_secs(1));
        assert_eq!(backoff(1, base, cap, 0.0), Duration::from_millis(500));
        assert_eq!(backoff(4, base, cap, 1.0), Duration::from_secs(8));
        assert_eq!(backoff(20, base, cap, 1.0), cap);
        assert_eq!(backoff(u32::MAX, base, cap, 0.0), Duration::from_secs(30));
        let jittered = backoff(3, base, cap, 0.5);
        assert!(jittered > Duration::from_secs(2) && jittered < Duration::from_secs(4));
    }
}
