//! The heartbeat agent: registration (by join token), heartbeats with
//! exponential backoff, the control plane's instructions, deregistration.
//!
//! * **Heartbeats** go to `CONTROL_PLANE_API_BASE` + `/vdi/workers/heartbeat`
//!   (the base includes `/api`, as in the exam platform's runbook) right away, then every
//!   `nextHeartbeatSec` of the previous answer (`HEARTBEAT_INTERVAL_SEC`
//!   until one arrives). Each carries the node's size and load, a boot id
//!   (random per process), a sequence number and the live sessions.
//! * **Several control-plane URLs** (replicas on one store): every call —
//!   join, heartbeat, rotation, deregister — goes to the URL that last
//!   answered, and on to the next right away when it is unreachable or
//!   answers a 5xx ([`endpoints`](crate::endpoints)); a refusal (4xx) is an
//!   answer. Only a call that failed at every URL counts as a failure
//!   below. The status view's `url` is the current one.
//! * **Failures** never stop the worker: the next attempt waits an
//!   exponentially growing delay with jitter ([`backoff`](crate::backoff)),
//!   capped by `HEARTBEAT_BACKOFF_MAX_SEC`; the worker-side API keeps
//!   serving.
//! * **Answers**: the admin state is logged when it changes and respected
//!   by the [session table](crate::sessions::WorkerNode); `releaseSessions`
//!   are stopped (only the incarnation the heartbeat reported).
//! * **Credentials** ([`credential`]): with a join token
//!   and no credential of its own, the agent joins first, retrying with the
//!   same backoff until the control plane accepts; if the control plane
//!   later refuses the credential (401) and a join token is configured, it
//!   joins again — which the control plane allows only after an admin
//!   reset the worker's credential, and only with a join token bound to it
//!   (a join never takes a live worker over). The own credential is rotated at two thirds of its
//!   lifetime (before a heartbeat; a failed rotation is retried at the
//!   next one while the current credential keeps working) and the new one
//!   replaces it in the credential file.
//! * **Deregistration** on shutdown (`POST …/workers/{code}/deregister`).
//!
//! The calls themselves are [`ControlPlaneClient`]'s.

use std::fmt;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio_util::sync::CancellationToken;
use vdi_cluster_core::pacing::default_concurrency;
use vdi_cluster_core::worker::{MAX_LIVE_SESSIONS, api_base_url_host};
use vdi_cluster_core::{CapacitySpec, SessionKey, WorkerDescription, WorkerId};
use vdi_cluster_protocol::node_status::{ControlPlaneStatus, CredentialKind};
use vdi_cluster_protocol::{
    DescriptionJson, HeartbeatRequest, HeartbeatResponse, HostJson, PoolJson, RegisterRequest,
    SessionRef,
};

use crate::admin::AdminView;
use crate::backoff::{backoff, backoff_base, next_interval};
use crate::config::CapacityConfig;
use crate::control_plane::{CallError, ControlPlaneClient};
use crate::credential::{self, Credential};
use crate::host::{HostFacts, HostIdentity, HostProbe, HostUsage};
use crate::sessions::WorkerNode;
use crate::tls::Tls;

/// What the agent needs from the worker's configuration.
#[derive(Clone)]
pub struct AgentConfig {
    /// The worker's code.
    pub code: WorkerId,
    /// Its description (the base URL filled in).
    pub description: WorkerDescription,
    /// Node size and session profile.
    pub capacity: CapacityConfig,
    /// Control plane API bases, in the order tried (at least one).
    pub control_planes: Vec<String>,
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
    /// `--max-concurrent-starts`, reported in every heartbeat (`None`: a
    /// quarter of the slots, rounded up, between 1 and 8).
    pub max_concurrent_starts: Option<u32>,
    /// TLS towards the control plane (its CA, this host's certificate).
    pub tls: Option<Tls>,
}

impl fmt::Debug for AgentConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AgentConfig")
            .field("code", &self.code)
            .field("control_planes", &self.control_planes)
            .field("heartbeat_interval", &self.heartbeat_interval)
            .finish_non_exhaustive()
    }
}

struct Inner {
    credential: Credential,
    view: ControlPlaneStatus,
}

/// The heartbeat agent of one worker process.
pub struct Agent {
    config: AgentConfig,
    node: Arc<WorkerNode>,
    host: Mutex<HostProbe>,
    facts: HostFacts,
    identity: HostIdentity,
    client: ControlPlaneClient,
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

impl Agent {
    /// An agent for `node`; `facts` is the host's size (overridden by the
    /// capacity configuration where set).
    pub fn new(
        config: AgentConfig,
        node: Arc<WorkerNode>,
        host: HostProbe,
        facts: HostFacts,
    ) -> Result<Self, reqwest::Error> {
        let client = ControlPlaneClient::with_tls(
            config.control_planes.clone(),
            config.timeout,
            config.tls.as_ref(),
        )?;
        let credential = Credential::initial(
            config.credential_file.as_deref(),
            config.worker_token.as_deref(),
            config.join_token.is_some(),
        );
        let view = ControlPlaneStatus {
            url: client.base().to_owned(),
            urls: client.bases().to_vec(),
            reachable: false,
            registered: false,
            credential: credential.kind(),
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
            identity: HostIdentity::current(),
            client,
            boot_id: uuid::Uuid::new_v4().to_string(),
            seq: AtomicU64::new(0),
            inner: Mutex::new(Inner { credential, view }),
        })
    }

    fn inner(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// This process's boot id.
    pub fn boot_id(&self) -> &str {
        &self.boot_id
    }

    /// The sequence number of the latest heartbeat.
    pub fn seq(&self) -> u64 {
        self.seq.load(Ordering::Relaxed)
    }

    /// The agent's view of the control plane, as the status endpoint
    /// reports it.
    pub fn view(&self) -> ControlPlaneStatus {
        self.inner().view.clone()
    }

    fn credential(&self) -> Credential {
        self.inner().credential.clone()
    }

    fn set_credential(&self, credential: Credential) {
        let mut inner = self.inner();
        inner.view.credential = credential.kind();
        inner.credential = credential;
    }

    fn needs_join(&self) -> bool {
        self.config.join_token.is_some() && self.credential().kind() != CredentialKind::Own
    }

    fn note(&self, result: Result<(), &CallError>, next: Duration) {
        let mut inner = self.inner();
        let view = &mut inner.view;
        self.client.base().clone_into(&mut view.url);
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
                view.reachable = e.answered();
                view.consecutive_failures += 1;
                view.last_error = Some(e.to_string());
                view.heartbeats_failed += 1;
            }
        }
        view.next_attempt_sec = next.as_secs_f64();
    }

    fn register_body(&self) -> RegisterRequest {
        let d = &self.config.description;
        RegisterRequest {
            code: Some(self.config.code.to_string()),
            description: DescriptionJson::from(d),
            host: HostJson::default(),
        }
    }

    /// Registers with the join token and keeps the credential received.
    pub async fn join(&self) -> Result<(), CallError> {
        let Some(token) = self.config.join_token.as_deref() else {
            return Ok(());
        };
        let answer = self.client.join(token, &self.register_body()).await?;
        self.keep(Credential::received(
            answer.credential,
            now_millis(),
            answer.ttl_sec,
        ));
        tracing::info!(code = %self.config.code, "joined the control plane: using this worker's own credential from now on");
        Ok(())
    }

    /// Uses `credential` from now on, and keeps it in the credential file.
    fn keep(&self, credential: Credential) {
        if let Some(path) = &self.config.credential_file
            && let Err(e) = credential::write(path, &credential)
        {
            tracing::warn!(path = %path.display(), error = %e, "cannot keep the worker credential in its file");
        }
        self.set_credential(credential);
    }

    /// Rotates the worker's own credential: the control plane answers a
    /// new one and keeps accepting the current one for a short overlap, so
    /// heartbeats never stop. A control plane without rotation (404) is
    /// not asked again.
    pub async fn rotate(&self) -> Result<(), CallError> {
        let current = self.credential();
        let Some(secret) = current
            .secret()
            .filter(|_| current.kind() == CredentialKind::Own)
        else {
            return Ok(());
        };
        match self.client.rotate(&self.config.code, secret).await {
            Ok(answer) => {
                self.keep(Credential::received(
                    answer.credential,
                    now_millis(),
                    answer.ttl_sec,
                ));
                tracing::info!(code = %self.config.code, expires_at_ms = ?answer.expires_at, "rotated this worker's credential");
                Ok(())
            }
            Err(CallError::Refused {
                status: 404 | 405, ..
            }) => {
                tracing::info!(code = %self.config.code, "the control plane does not rotate credentials");
                self.keep(Credential::received(secret.to_owned(), now_millis(), None));
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Rotates the credential if it is due; a failure is logged and tried
    /// again at the next heartbeat (the current credential still works).
    async fn rotate_if_due(&self) {
        if !self.credential().rotation_due(now_millis()) {
            return;
        }
        if let Err(e) = self.rotate().await {
            tracing::warn!(code = %self.config.code, error = %e, "rotating the worker credential failed; retrying at the next heartbeat");
        }
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
                    session: snapshot.details.get(k).and_then(|v| v.as_object().cloned()),
                    ..SessionRef::from(k)
                })
                .collect()
        });
        let seq = self.seq.fetch_add(1, Ordering::Relaxed) + 1;
        let body = HeartbeatRequest {
            code: self.config.code.to_string(),
            description: DescriptionJson::from(d),
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
            host: HostJson {
                hostname: self.identity.hostname.clone(),
                disk_gb: usage.disk_gb,
                used_disk_gb: usage.used_disk_gb,
                os: self.identity.os.clone(),
                agent_version: Some(env!("CARGO_PKG_VERSION").to_owned()),
                ip_address: address_of(&d.api_base_url),
                ..HostJson::default()
            },
            prewarm_pool: PoolJson::from(&self.node.pool_report()),
            max_concurrent_starts: Some(self.config.max_concurrent_starts.unwrap_or_else(|| {
                let slots = CapacitySpec::new(input).map_or(0, |c| c.max_sessions());
                default_concurrency(slots)
            })),
        };
        (body, snapshot.live)
    }

    /// Sends one heartbeat and applies the answer.
    pub async fn heartbeat(&self) -> Result<HeartbeatResponse, CallError> {
        let (body, live) = self.heartbeat_body();
        let credential = self.credential();
        let answer = self.client.heartbeat(&body, credential.secret()).await?;
        self.apply(&answer, &live);
        Ok(answer)
    }

    fn apply(&self, answer: &HeartbeatResponse, live: &[(SessionKey, u64)]) {
        let view = AdminView::from(answer);
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

    fn backoff(&self, failures: u32) -> Duration {
        backoff(
            failures,
            backoff_base(self.config.heartbeat_interval),
            self.config.backoff_max,
            rand::random::<f64>(),
        )
    }

    /// One attempt to join; the wait before the next attempt.
    async fn join_once(&self, failures: &mut u32) -> Duration {
        match self.join().await {
            Ok(()) => {
                *failures = 0;
                Duration::ZERO
            }
            Err(e) => {
                *failures = failures.saturating_add(1);
                let wait = self.backoff(*failures);
                tracing::warn!(code = %self.config.code, attempt = *failures, retry_in_sec = wait.as_secs_f64(), error = %e, "joining the control plane failed");
                self.note(Err(&e), wait);
                wait
            }
        }
    }

    /// One heartbeat; the wait before the next one.
    async fn heartbeat_once(&self, failures: &mut u32) -> Duration {
        match self.heartbeat().await {
            Ok(answer) => {
                if *failures > 0 {
                    tracing::info!(code = %self.config.code, after_failures = *failures, "heartbeats answered again");
                }
                *failures = 0;
                let wait = next_interval(answer.next_heartbeat_sec, self.config.heartbeat_interval);
                self.note(Ok(()), wait);
                wait
            }
            Err(e) => {
                *failures = failures.saturating_add(1);
                let wait = self.backoff(*failures);
                tracing::warn!(code = %self.config.code, attempt = *failures, retry_in_sec = wait.as_secs_f64(), error = %e, "heartbeat failed; the worker keeps serving its sessions");
                self.note(Err(&e), wait);
                if matches!(e, CallError::Refused { status: 401, .. })
                    && self.config.join_token.is_some()
                    && self.credential().kind() == CredentialKind::Own
                {
                    tracing::warn!(code = %self.config.code, "the control plane refused this worker's credential: joining again");
                    self.inner().credential = Credential::none();
                }
                wait
            }
        }
    }

    /// Joins (if configured), then heartbeats until `shutdown`; never gives
    /// up on failures.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let mut failures: u32 = 0;
        loop {
            let wait = if self.needs_join() {
                self.join_once(&mut failures).await
            } else {
                self.rotate_if_due().await;
                self.heartbeat_once(&mut failures).await
            };
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = shutdown.cancelled() => return,
            }
        }
    }

    /// Tells the control plane this worker leaves (as minicloud's workers do).
    pub async fn deregister(&self) -> Result<(), CallError> {
        let credential = self.credential();
        self.client
            .deregister(&self.config.code, credential.secret())
            .await
    }
}

/// The node's address as the control plane reaches it: the host of its
/// API base URL when that is an IP address (a host name is not resolved).
fn address_of(api_base_url: &str) -> Option<String> {
    api_base_url_host(api_base_url)
        .and_then(|host| host.parse::<IpAddr>().ok())
        .map(|ip| ip.to_string())
}
