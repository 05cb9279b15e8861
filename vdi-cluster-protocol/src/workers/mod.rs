//! Control plane → operators: workers as the admin page reads them (list,
//! detail, sessions), the answers to admin actions (drain, activate,
//! disable, enable) and the drain's blockers, and the admin request bodies.
//!
//! | method | path | body | answer |
//! |---|---|---|---|
//! | `GET` | `/api/vdi/workers`, `/api/vdi/workers/healthy` | — | [`WorkerList`] |
//! | `GET` | `/api/vdi/workers/{code}` | — | [`WorkerJson`] |
//! | `PATCH` | `/api/vdi/workers/{code}` | [`PatchWorkerRequest`] | [`AdminActionJson`] |
//! | `POST`/`PUT` | `/api/vdi/workers/{code}/drain` | [`DrainRequest`] (optional) | [`AdminActionJson`] |
//! | `POST` | `/api/vdi/workers/{code}/activate` | — | [`AdminActionJson`] |
//! | `GET` | `/api/vdi/workers/{code}/drain` | — | [`DrainInfoJson`] |
//! | `GET` | `/api/vdi/workers/{code}/sessions` | — | [`WorkerSessionsJson`] |
//!
//! Registration and heartbeats answer [`WorkerJson`] and
//! [`HeartbeatResponse`](crate::HeartbeatResponse) (see [`node`](crate::node)).
//! Times are milliseconds since the Unix epoch on the control plane's clock.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use vdi_cluster_core::policy::Transition;
use vdi_cluster_core::service::{AdminOutcome, DrainInfo};
use vdi_cluster_core::worker::SlotUsage;
use vdi_cluster_core::{AdminAction, AdminPolicy, Dispatch, Timestamp, WorkerId, WorkerView};

use crate::sessions::SessionJson;

mod list;

pub use list::WorkerList;

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
    /// Slots by the exam platform's formula.
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
    /// Why it deregistered, as it said, while it is deregistered.
    pub deregister_reason: Option<String>,
    /// The node's host name, as the agent reports it.
    pub hostname: Option<String>,
    /// Operating system and version, as the agent reports it.
    pub os: Option<String>,
    /// Version of the worker agent.
    pub agent_version: Option<String>,
    /// The node's IP address, as the agent reports it.
    pub ip_address: Option<String>,
    /// Container runtime and version, as the agent reports it.
    pub container_runtime: Option<String>,
    /// Nix version, as the agent reports it.
    pub nix_version: Option<String>,
    /// Disk size, GB, as the agent reports it.
    pub disk_gb: Option<u64>,
    /// Disk in use, GB, as the agent reports it.
    pub used_disk_gb: Option<u64>,
    /// CPU of the sessions in use: `usedSessions × vmCpuCores`.
    pub used_cpu_cores: Option<f64>,
    /// Memory of the sessions in use, MB: `usedSessions × vmMemoryMb`.
    pub used_memory_mb: Option<u64>,
    /// When the control plane first heard from the worker's current boot
    /// (ms since the epoch).
    pub started_at: Option<u64>,
    /// Time since `startedAt`, as `2h30m45s` (as Aetherium).
    pub uptime: Option<String>,
}

/// `d` as Aetherium writes uptimes: `2h30m45s`, `5m0s`, `12s`.
pub fn uptime_text(d: std::time::Duration) -> String {
    let s = d.as_secs();
    let (h, m, s) = (s / 3600, s / 60 % 60, s % 60);
    if h > 0 {
        format!("{h}h{m}m{s}s")
    } else if m > 0 {
        format!("{m}m{s}s")
    } else {
        format!("{s}s")
    }
}

impl WorkerJson {
    /// The view of `view` at `now`.
    pub fn new(view: &WorkerView, now: Timestamp) -> Self {
        let r = &view.record;
        let d = &r.description;
        let cap = r.capacity;
        let usage = cap.map(|c| SlotUsage::of(&c, view.used_sessions));
        // Uptime counts only while the boot is heard from.
        let started = r.boot_seen_at.filter(|_| r.deregistered_at.is_none());
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
            drain_status: view.drain_status().name().to_owned(),
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
            deregister_reason: r.deregister_reason.clone(),
            hostname: r.host.hostname.clone(),
            os: r.host.os.clone(),
            agent_version: r.host.agent_version.clone(),
            ip_address: r.host.ip_address.clone(),
            container_runtime: r.host.container_runtime.clone(),
            nix_version: r.host.nix_version.clone(),
            disk_gb: r.host.disk_gb,
            used_disk_gb: r.host.used_disk_gb,
            used_cpu_cores: usage.map(|u| u.used_cpu.as_cores()),
            used_memory_mb: usage.map(|u| u.used_memory_mb),
            started_at: started.map(Timestamp::as_millis),
            uptime: started.map(|t| uptime_text(now.since(t))),
        }
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

impl WorkerSessionsJson {
    /// Worker `code`'s `dispatches`.
    pub fn new(code: &WorkerId, dispatches: &[Dispatch]) -> Self {
        let sessions: Vec<SessionJson> = dispatches.iter().map(SessionJson::from).collect();
        Self {
            code: code.to_string(),
            total: sessions.len(),
            sessions,
        }
    }
}

impl AdminActionJson {
    /// The answer to `action`, which ended in `outcome`, at `now`.
    pub fn new(action: AdminAction, outcome: &AdminOutcome, now: Timestamp) -> Self {
        let AdminOutcome { worker, transition } = outcome;
        Self {
            code: worker.id().to_string(),
            status: worker.status.name().to_owned(),
            from: transition.from.name().to_owned(),
            to: transition.to.name().to_owned(),
            changed: transition.changed(),
            message: message(action, transition, worker.occupancy().sessions()),
            worker: WorkerJson::new(worker, now),
        }
    }
}

/// What an admin action did, for humans.
fn message(action: AdminAction, t: &Transition, sessions: u32) -> String {
    if !t.changed() {
        return format!("No change: the worker is already {}.", t.to.name());
    }
    match (action, t.to) {
        (_, AdminPolicy::Drained) => "Worker drained: no sessions remain.".into(),
        (_, AdminPolicy::Draining { .. }) => format!(
            "Worker marked as draining: it keeps its {sessions} session(s) and takes no new ones."
        ),
        (_, AdminPolicy::Disabled { forced: true }) => {
            "Worker disabled by force: its sessions were dropped and go to the failure policy."
                .into()
        }
        (_, AdminPolicy::Disabled { forced: false }) => "Worker disabled.".into(),
        (AdminAction::Enable, AdminPolicy::Active) => {
            "Worker enabled: it takes new sessions again.".into()
        }
        (_, AdminPolicy::Active) => "Worker activated: it takes new sessions again.".into(),
    }
}

/// What a worker's drain still waits for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DrainInfoJson {
    /// The worker.
    pub code: String,
    /// `none`, `draining` or `drained`.
    pub drain_status: String,
    /// Admin flag.
    pub is_draining: bool,
    /// Drain deadline (ms since the epoch), if any.
    pub deadline: Option<u64>,
    /// `activeSessions` the worker last reported.
    pub reported_active: u32,
    /// Dispatch records and reservations still on the worker.
    pub dispatched: u32,
    /// The students still on it (`userId`s), by `examId`.
    pub blocking: BTreeMap<String, Vec<String>>,
}

impl From<&DrainInfo> for DrainInfoJson {
    fn from(d: &DrainInfo) -> Self {
        Self {
            code: d.code.to_string(),
            drain_status: d.drain_status.name().to_owned(),
            is_draining: d.is_draining,
            deadline: d.deadline.map(Timestamp::as_millis),
            reported_active: d.reported_active,
            dispatched: d.dispatched,
            blocking: d
                .blocking
                .iter()
                .map(|(exam, users)| {
                    (
                        exam.to_string(),
                        users.iter().map(ToString::to_string).collect(),
                    )
                })
                .collect(),
        }
    }
}

/// The exam platform's `PATCH` body: `{"isDraining": bool}` or
/// `{"isEnabled": bool, "force": bool}`, each with an optional `reason`.
/// Unknown fields are refused.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PatchWorkerRequest {
    /// `true`: drain (keep sessions, take no new ones); `false`: activate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_draining: Option<bool>,
    /// `false`: disable (refused while sessions remain unless `force`);
    /// `true`: enable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_enabled: Option<bool>,
    /// With `isEnabled: false`: disable even with sessions (they are
    /// dropped). With `reason`, on a drain or a disable: go through even
    /// if the change freeze refuses it (audited, `worker.freeze_overridden`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub force: Option<bool>,
    /// With `isDraining: true`: after this many seconds, remaining sessions
    /// are dropped as by a forced disable (1 to 604800).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 604_800)]
    pub drain_deadline_sec: Option<u64>,
    /// Why (1 to 500 characters): kept in the audit trail with the action.
    /// The operator's page asks for one before a forced disable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(
        min_length = 1,
        max_length = 500,
        pattern = "^[^\\s\\x00-\\x1f\\x7f-\\x9f](?:[^\\x00-\\x1f\\x7f-\\x9f]*[^\\s\\x00-\\x1f\\x7f-\\x9f])?$"
    )]
    pub reason: Option<String>,
}

/// Optional body of the drain action.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DrainRequest {
    /// After this many seconds, remaining sessions are dropped as by a
    /// forced disable (1 to 604800).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 604_800)]
    pub deadline_sec: Option<u64>,
    /// `true` with `reason`: drain even if the change freeze refuses it
    /// (audited, `worker.freeze_overridden`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub force: Option<bool>,
    /// Why (1 to 500 characters, no control characters, no white space at
    /// either end), kept in the audit trail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(
        min_length = 1,
        max_length = 500,
        pattern = "^[^\\s\\x00-\\x1f\\x7f-\\x9f](?:[^\\x00-\\x1f\\x7f-\\x9f]*[^\\s\\x00-\\x1f\\x7f-\\x9f])?$"
    )]
    pub reason: Option<String>,
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use vdi_cluster_core::health::HealthConfig;
    use vdi_cluster_core::policy::Transition;
    use vdi_cluster_core::worker::{WorkerRecord, WorkerSnapshot};
    use vdi_cluster_core::{DrainStatus, ExamId, UserId, WorkerDescription};

    use super::*;

    pub(super) fn view() -> WorkerView {
        let id = WorkerId::parse("code", "w1").unwrap();
        let record = WorkerRecord::registered(id, WorkerDescription::default(), Timestamp(1000));
        let snapshot = WorkerSnapshot {
            record,
            version: 1,
            dispatched: 0,
        };
        WorkerView::new(snapshot, Timestamp(2000), &HealthConfig::default())
    }

    pub(super) use crate::test_support::sorted_keys as keys;

    #[test]
    fn worker_field_names() {
        let json = serde_json::to_value(WorkerJson::new(&view(), Timestamp(2000))).unwrap();
        assert_eq!(
            keys(&json),
            [
                "activeSessions",
                "agentVersion",
                "apiBaseUrl",
                "availability",
                "availableSessions",
                "bootId",
                "capabilities",
                "code",
                "containerRuntime",
                "cpuPercent",
                "deregisterReason",
                "deregisteredAt",
                "diskGb",
                "diskPercent",
                "dispatchedSessions",
                "drainStatus",
                "hostname",
                "ipAddress",
                "isDraining",
                "isEnabled",
                "isHealthy",
                "isSchedulable",
                "labels",
                "lastHeartbeatAgeSec",
                "lastHeartbeatAt",
                "maxSessions",
                "memoryPercent",
                "name",
                "nixVersion",
                "os",
                "reason",
                "registeredAt",
                "reservedCpuCores",
                "reservedMemoryMb",
                "seq",
                "startedAt",
                "status",
                "totalCpuCores",
                "totalMemoryMb",
                "uptime",
                "usedCpuCores",
                "usedDiskGb",
                "usedMemoryMb",
                "usedSessions",
                "vmCpuCores",
                "vmMemoryMb",
                "warning",
                "zone",
            ]
        );
        assert_eq!(json["status"], "pending");
        assert_eq!(json["drainStatus"], "none");
        assert_eq!(json["registeredAt"], 1000);
        assert_eq!(
            uptime_text(std::time::Duration::from_secs(9045)),
            "2h30m45s"
        );
        assert_eq!(uptime_text(std::time::Duration::from_secs(300)), "5m0s");
        assert_eq!(uptime_text(std::time::Duration::from_secs(12)), "12s");
    }

    #[test]
    fn worker_sessions_field_names() {
        let id = WorkerId::parse("code", "w1").unwrap();
        assert_eq!(
            serde_json::to_value(WorkerSessionsJson::new(&id, &[])).unwrap(),
            json!({"code": "w1", "sessions": [], "total": 0})
        );
    }

    #[test]
    fn admin_action_field_names() {
        let outcome = AdminOutcome {
            worker: view(),
            transition: Transition {
                from: AdminPolicy::Active,
                to: AdminPolicy::Draining { deadline: None },
            },
        };
        let json = serde_json::to_value(AdminActionJson::new(
            AdminAction::Drain { deadline: None },
            &outcome,
            Timestamp(2000),
        ))
        .unwrap();
        assert_eq!(
            keys(&json),
            [
                "changed", "code", "from", "message", "status", "to", "worker"
            ]
        );
        assert_eq!(json["from"], "active");
        assert_eq!(json["to"], "draining");
        assert_eq!(json["changed"], true);
    }

    #[test]
    fn drain_info_field_names() {
        let info = DrainInfo {
            code: WorkerId::parse("code", "w1").unwrap(),
            drain_status: DrainStatus::Draining,
            is_draining: true,
            deadline: None,
            reported_active: 2,
            dispatched: 1,
            blocking: [(
                ExamId::parse("examId", "e1").unwrap(),
                vec![UserId::parse("userId", "u1").unwrap()],
            )]
            .into(),
        };
        assert_eq!(
            serde_json::to_value(DrainInfoJson::from(&info)).unwrap(),
            json!({
                "code": "w1", "drainStatus": "draining", "isDraining": true,
                "deadline": null, "reportedActive": 2, "dispatched": 1,
                "blocking": {"e1": ["u1"]},
            })
        );
    }

    #[test]
    fn admin_request_field_names() {
        let p: PatchWorkerRequest = serde_json::from_value(json!({
            "isDraining": true, "drainDeadlineSec": 60,
        }))
        .unwrap();
        assert_eq!(p.is_draining, Some(true));
        assert_eq!(p.drain_deadline_sec, Some(60));
        let p: PatchWorkerRequest =
            serde_json::from_value(json!({"isEnabled": false, "force": true})).unwrap();
        assert_eq!((p.is_enabled, p.force), (Some(false), Some(true)));
        let p: PatchWorkerRequest = serde_json::from_value(json!({
            "isEnabled": false, "force": true, "reason": "disk failing",
        }))
        .unwrap();
        assert_eq!(p.reason.as_deref(), Some("disk failing"));
        assert!(serde_json::from_value::<PatchWorkerRequest>(json!({"isDrainig": true})).is_err());
        let d: DrainRequest = serde_json::from_value(json!({"deadlineSec": 5})).unwrap();
        assert_eq!(d.deadline_sec, Some(5));
    }
}
