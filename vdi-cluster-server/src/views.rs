//! JSON views of workers and sessions (camelCase, as seed 000 and the admin
//! page read them). Times are milliseconds since the Unix epoch on the
//! control plane's clock.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use vdi_cluster_core::service::{AllocateOutcome, Allocation};
use vdi_cluster_core::{Dispatch, DrainStatus, Timestamp, WorkerView};

/// `none`, `draining` or `drained`.
pub fn drain_status_name(status: DrainStatus) -> &'static str {
    match status {
        DrainStatus::None => "none",
        DrainStatus::Draining => "draining",
        DrainStatus::Drained => "drained",
    }
}

/// A worker as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkerJson {
    /// The worker's code.
    pub code: String,
    /// Display name.
    pub name: String,
    /// Base URL the control plane calls.
    pub api_base_url: String,
    /// Zone.
    pub zone: Option<String>,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Capabilities.
    pub capabilities: BTreeSet<String>,
    /// One status by precedence: `disabled`, `offline`, `unreachable`,
    /// `unhealthy`, `draining`/`drained`, `pending`, `active`.
    pub status: String,
    /// Why, for humans.
    pub reason: String,
    /// `pending`, `healthy`, `unhealthy`, `unreachable` or `offline`.
    pub availability: String,
    /// Heartbeating within the TTL, resources fine.
    pub is_healthy: bool,
    /// Takes new sessions now.
    pub is_schedulable: bool,
    /// Admin: keep sessions, take no new ones.
    pub is_draining: bool,
    /// Admin: in service at all.
    pub is_enabled: bool,
    /// `none`, `draining` or `drained`.
    pub drain_status: String,
    /// Slots by seed 000's formula.
    pub max_sessions: u32,
    /// Free slots.
    pub available_sessions: u32,
    /// `max(activeSessions, dispatchedSessions)`.
    pub used_sessions: u32,
    /// Sessions the worker last reported.
    pub active_sessions: u32,
    /// Sessions the control plane dispatched to it.
    pub dispatched_sessions: u32,
    /// CPU cores of the node.
    pub total_cpu_cores: Option<f64>,
    /// Memory of the node, MB.
    pub total_memory_mb: Option<u64>,
    /// CPU cores kept for the host.
    pub reserved_cpu_cores: Option<f64>,
    /// Memory kept for the host, MB.
    pub reserved_memory_mb: Option<u64>,
    /// CPU cores of one session's VM.
    pub vm_cpu_cores: Option<f64>,
    /// Memory of one session's VM, MB.
    pub vm_memory_mb: Option<u64>,
    /// CPU usage percent.
    pub cpu_percent: Option<f64>,
    /// Memory usage percent.
    pub memory_percent: Option<f64>,
    /// Disk usage percent.
    pub disk_percent: Option<f64>,
    /// Boot id of the latest heartbeat.
    pub boot_id: Option<String>,
    /// Sequence number of the latest heartbeat.
    pub seq: Option<u64>,
    /// When the latest heartbeat arrived (ms since the epoch).
    pub last_heartbeat_at: Option<u64>,
    /// Seconds since the latest heartbeat.
    pub last_heartbeat_age_sec: Option<u64>,
    /// When the worker was first registered (ms since the epoch).
    pub registered_at: u64,
    /// When it deregistered, if it did.
    pub deregistered_at: Option<u64>,
    /// A warning for operators (reservation above the node's size).
    pub warning: Option<String>,
}

impl WorkerJson {
    /// The view of `view` at `now`.
    pub fn new(view: &WorkerView, now: Timestamp) -> Self {
        let r = &view.record;
        let d = &r.description;
        let cap = r.capacity;
        Self {
            code: r.id.to_string(),
            name: d.name.clone(),
            api_base_url: d.api_base_url.clone(),
            zone: d.zone.clone(),
            labels: d.labels.clone(),
            capabilities: d.capabilities.clone(),
            status: view.status.name().to_owned(),
            reason: view.reason(now),
            availability: view.availability.name().to_owned(),
            is_healthy: view.availability.is_healthy(),
            is_schedulable: view.is_schedulable(),
            is_draining: r.policy.is_draining(),
            is_enabled: r.policy.is_enabled(),
            drain_status: drain_status_name(view.drain_status()).to_owned(),
            max_sessions: view.max_sessions,
            available_sessions: view.available_sessions,
            used_sessions: view.used_sessions,
            active_sessions: r.reported_active,
            dispatched_sessions: view.dispatched,
            total_cpu_cores: cap.map(|c| c.total_cpu.as_cores()),
            total_memory_mb: cap.map(|c| c.total_memory_mb),
            reserved_cpu_cores: cap.map(|c| c.reserved_cpu.as_cores()),
            reserved_memory_mb: cap.map(|c| c.reserved_memory_mb),
            vm_cpu_cores: cap.map(|c| c.vm_cpu.as_cores()),
            vm_memory_mb: cap.map(|c| c.vm_memory_mb),
            cpu_percent: r.resources.cpu_percent,
            memory_percent: r.resources.memory_percent,
            disk_percent: r.resources.disk_percent,
            boot_id: r.boot_id().map(str::to_owned),
            seq: r.stamp.as_ref().and_then(|s| s.seq),
            last_heartbeat_at: r.last_heartbeat_at.map(Timestamp::as_millis),
            last_heartbeat_age_sec: r.last_heartbeat_at.map(|t| now.since(t).as_secs()),
            registered_at: r.registered_at.as_millis(),
            deregistered_at: r.deregistered_at.map(Timestamp::as_millis),
            warning: cap.and_then(|c| c.warning()),
        }
    }
}

/// A list of workers (seed 004: `{"workers": [...], "total": n}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkerList {
    /// The workers, by code.
    pub workers: Vec<WorkerJson>,
    /// How many.
    pub total: usize,
}

/// A student's session: where it is dispatched and how to reach it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionJson {
    /// The exam.
    pub exam_id: String,
    /// The student.
    pub user_id: String,
    /// This dispatch attempt.
    pub dispatch_id: String,
    /// The worker holding it.
    pub worker_code: String,
    /// `reserved`, `active` or `orphaned`.
    pub state: String,
    /// When the slot was reserved (ms since the epoch).
    pub reserved_at: u64,
    /// When the worker confirmed it.
    pub activated_at: Option<u64>,
    /// The worker's answer (remote-desktop connection details), untouched.
    #[schema(value_type = Option<Object>)]
    pub session: Option<serde_json::Value>,
    /// For an allocation: `existing`, `placed` or `redispatched`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    /// For a placement: why this worker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// For a re-dispatch: the failed worker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redispatched_from: Option<String>,
    /// For an allocation: worker calls that failed before this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_calls: Option<u32>,
}

impl From<&Dispatch> for SessionJson {
    fn from(d: &Dispatch) -> Self {
        Self {
            exam_id: d.key.exam_id.to_string(),
            user_id: d.key.user_id.to_string(),
            dispatch_id: d.id.to_string(),
            worker_code: d.worker.to_string(),
            state: d.state.name().to_owned(),
            reserved_at: d.reserved_at.as_millis(),
            activated_at: d.activated_at.map(Timestamp::as_millis),
            session: d.session.clone(),
            outcome: None,
            reason: None,
            redispatched_from: None,
            failed_calls: None,
        }
    }
}

impl From<&Allocation> for SessionJson {
    fn from(a: &Allocation) -> Self {
        let mut json = Self::from(&a.dispatch);
        let (outcome, reason, from) = match &a.outcome {
            AllocateOutcome::Existing => ("existing", None, None),
            AllocateOutcome::Placed { reason } => ("placed", Some(reason.to_string()), None),
            AllocateOutcome::Redispatched { reason, from } => (
                "redispatched",
                Some(reason.to_string()),
                Some(from.to_string()),
            ),
        };
        json.outcome = Some(outcome.to_owned());
        json.reason = reason;
        json.redispatched_from = from;
        json.failed_calls = Some(a.failed_calls);
        json
    }
}

/// A worker's sessions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkerSessionsJson {
    /// The worker.
    pub code: String,
    /// Its sessions (up to the limit).
    pub sessions: Vec<SessionJson>,
    /// How many are listed.
    pub total: usize,
}

/// The answer to an admin action on a worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AdminActionJson {
    /// The worker.
    pub code: String,
    /// Its status after the action.
    pub status: String,
    /// Policy before: `active`, `draining`, `drained`, `disabled`.
    pub from: String,
    /// Policy after.
    pub to: String,
    /// Whether anything changed (repeating a state is a no-op).
    pub changed: bool,
    /// What it means, for humans.
    pub message: String,
    /// The worker after the action.
    pub worker: WorkerJson,
}

/// The answer to a release.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReleaseJson {
    /// The exam.
    pub exam_id: String,
    /// The student.
    pub user_id: String,
    /// `false` when there was nothing to release (releasing twice is a
    /// no-op).
    pub released: bool,
    /// The worker that held it.
    pub worker_code: Option<String>,
}

/// One worker's sessions in the distribution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DistributionEntry {
    /// The worker.
    pub code: String,
    /// Its zone.
    pub zone: Option<String>,
    /// Its status.
    pub status: String,
    /// Sessions in use.
    pub used_sessions: u32,
    /// Sessions listed.
    pub session_count: usize,
    /// The sessions (up to `perWorker`).
    pub sessions: Vec<SessionJson>,
}

/// Sessions per worker (seed 004's distribution).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DistributionJson {
    /// Per worker, by code.
    pub distribution: Vec<DistributionEntry>,
    /// Workers listed.
    pub total_workers: usize,
}

/// `/healthz` and `/readyz`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HealthJson {
    /// `ok` or `ready`.
    pub status: String,
    /// The backend (`memory`, `redis`, `postgres`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<String>,
}
