//! Control plane ↔ node agent: heartbeats, registration and the worker-side
//! API.
//!
//! Everything a worker node and the control plane say to each other is
//! defined here, once, so that the control plane's HTTP
//! `HttpWorkerClient` (in `vdi-cluster-server`) and the worker mode
//! (which serves the worker-side API and runs the heartbeat agent) share the
//! same types:
//!
//! | direction | path | body | answer |
//! |---|---|---|---|
//! | worker → control plane | [`HEARTBEAT_PATH`] | [`HeartbeatRequest`] | [`HeartbeatResponse`] |
//! | worker → control plane | [`REGISTER_PATH`] | [`RegisterRequest`] | the worker |
//! | worker → control plane | [`JOIN_PATH`] (join token in [`JOIN_TOKEN_HEADER`]) | [`RegisterRequest`] | [`JoinResponse`] |
//! | worker → control plane | [`DEREGISTER_PATH`] | `{}` | the worker |
//! | control plane → worker | [`WORKER_ALLOCATE_PATH`] | [`AllocateRequest`] | [`AllocateResponse`] |
//! | control plane → worker | [`WORKER_RELEASE_PATH`] | [`ReleaseRequest`] | [`ReleaseResponse`] |
//! | control plane → worker | [`WORKER_PREWARM_PATH`] | [`PrewarmRequest`] | [`PrewarmResponse`] |
//! | operator → worker | `GET` [`WORKER_STATUS_PATH`] | — | the worker's own view |
//!
//! Calls to a worker carry the shared cluster token in [`CLUSTER_TOKEN_HEADER`];
//! heartbeats carry, in [`WORKER_TOKEN_HEADER`], the worker's own credential
//! (received by joining) or the shared worker token when the control plane
//! is configured with one. Every error, on either side, is an
//! [`ErrorBody`](crate::ErrorBody). Field names are camelCase, exactly as seed 000 writes them.
//!
//! Heartbeat and registration bodies tolerate unknown fields (an agent newer
//! than the control plane during a rolling upgrade still gets through).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use vdi_cluster_core::service::HeartbeatAck;
use vdi_cluster_core::{
    CapacityInput, CapacitySpec, Heartbeat, HeartbeatStamp, ResourceUsage, SessionKey,
    ValidationError, WorkerDescription, WorkerId,
};

/// Header carrying the worker token on heartbeats and registration.
pub const WORKER_TOKEN_HEADER: &str = "x-worker-token";
/// Header carrying the shared cluster token (control plane ↔ worker, and
/// service calls to the session API).
pub const CLUSTER_TOKEN_HEADER: &str = "x-cluster-token";

/// Control plane: a worker's heartbeat (seed 000).
pub const HEARTBEAT_PATH: &str = "/api/vdi/workers/heartbeat";
/// Control plane: registration ahead of the first heartbeat (seed 003).
pub const REGISTER_PATH: &str = "/api/vdi/workers/register";
/// Control plane: a worker leaving cleanly (seed 003).
pub const DEREGISTER_PATH: &str = "/api/vdi/workers/{code}/deregister";
/// Control plane: registration with a join token (in [`JOIN_TOKEN_HEADER`]);
/// answers the worker's own credential ([`JoinResponse`]).
pub const JOIN_PATH: &str = "/api/vdi/workers/join";
/// Header carrying a join token on [`JOIN_PATH`].
pub const JOIN_TOKEN_HEADER: &str = "x-join-token";
/// Worker node: its own view of its sessions, slots and control plane
/// (cluster token).
pub const WORKER_STATUS_PATH: &str = "/api/vdi/cluster/status";
/// Worker node: start (or return) a student's session.
pub const WORKER_ALLOCATE_PATH: &str = "/api/vdi/cluster/allocate";
/// Worker node: stop a student's session.
pub const WORKER_RELEASE_PATH: &str = "/api/vdi/cluster/release";
/// Worker node: prewarm machines for an exam.
pub const WORKER_PREWARM_PATH: &str = "/api/vdi/cluster/prewarm";

/// Longest accepted boot id.
pub const MAX_BOOT_ID_LEN: usize = 128;

/// One session, as worker heartbeats list them in `liveSessions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionRef {
    /// The exam.
    pub exam_id: String,
    /// The student.
    pub user_id: String,
    /// In a heartbeat's `liveSessions`, optionally: the worker's allocate
    /// answer for the session (its connection details), so the control
    /// plane can adopt a session it has no record of with them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<serde_json::Value>,
}

impl From<&SessionKey> for SessionRef {
    fn from(key: &SessionKey) -> Self {
        Self {
            exam_id: key.exam_id.to_string(),
            user_id: key.user_id.to_string(),
            session: None,
        }
    }
}

impl SessionRef {
    /// Validates both ids (fields `examId` and `userId`).
    pub fn to_key(&self) -> Result<SessionKey, ValidationError> {
        SessionKey::parse(self.exam_id.clone(), self.user_id.clone())
    }
}

/// A worker's heartbeat: seed 000's body, plus optional fields.
///
/// ```json
/// {"code": "worker-node-2", "name": "Worker Node 2",
///  "apiBaseUrl": "https://worker2.example.edu.vn",
///  "totalCpuCores": 32, "totalMemoryMb": 65536,
///  "reservedCpuCores": 4, "reservedMemoryMb": 8192,
///  "vmCpuCores": 1.5, "vmMemoryMb": 2048, "activeSessions": 11}
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HeartbeatRequest {
    /// The worker's code (`worker-node-2`).
    pub code: String,
    /// Display name; empty keeps the stored one.
    #[serde(default)]
    pub name: String,
    /// Base URL the control plane calls; empty keeps the stored one.
    #[serde(default)]
    pub api_base_url: String,
    /// CPU cores of the node (decimals allowed, at most 3 places).
    pub total_cpu_cores: f64,
    /// Memory of the node, MB.
    pub total_memory_mb: u64,
    /// CPU cores kept for the host (default 0).
    #[serde(default)]
    pub reserved_cpu_cores: f64,
    /// Memory kept for the host, MB (default 0).
    #[serde(default)]
    pub reserved_memory_mb: u64,
    /// CPU cores of one session's VM.
    pub vm_cpu_cores: f64,
    /// Memory of one session's VM, MB.
    pub vm_memory_mb: u64,
    /// Sessions running on the node now.
    pub active_sessions: u32,
    /// Random id the agent picks at start-up; a new one means it restarted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot_id: Option<String>,
    /// Increases by one per heartbeat within a boot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    /// The sessions the node runs, when the agent reports them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub live_sessions: Option<Vec<SessionRef>>,
    /// CPU usage percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_percent: Option<f64>,
    /// Memory usage percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_percent: Option<f64>,
    /// Disk usage percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk_percent: Option<f64>,
    /// Zone, for constraints and per-zone statistics.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
    /// Free-form labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Capabilities (`gpu`, `firecracker`).
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub capabilities: BTreeSet<String>,
}

fn check_boot_id(boot_id: &str) -> Result<(), ValidationError> {
    if boot_id.is_empty()
        || boot_id.len() > MAX_BOOT_ID_LEN
        || boot_id.chars().any(char::is_control)
    {
        return Err(ValidationError::new(
            "bootId",
            format!("must be 1 to {MAX_BOOT_ID_LEN} characters without control characters"),
        ));
    }
    Ok(())
}

impl HeartbeatRequest {
    /// Validates the body into core's [`Heartbeat`]; errors name the field.
    pub fn into_heartbeat(self) -> Result<Heartbeat, ValidationError> {
        let worker = WorkerId::parse("code", self.code)?;
        let capacity = CapacitySpec::new(CapacityInput {
            total_cpu_cores: self.total_cpu_cores,
            total_memory_mb: self.total_memory_mb,
            reserved_cpu_cores: self.reserved_cpu_cores,
            reserved_memory_mb: self.reserved_memory_mb,
            vm_cpu_cores: self.vm_cpu_cores,
            vm_memory_mb: self.vm_memory_mb,
        })?;
        if let Some(boot_id) = &self.boot_id {
            check_boot_id(boot_id)?;
        }
        let mut live_details = BTreeMap::new();
        let live_sessions = match self.live_sessions {
            None => None,
            Some(list) => Some(
                list.into_iter()
                    .enumerate()
                    .map(|(i, s)| {
                        let key = SessionKey::parse(s.exam_id, s.user_id).map_err(|e| {
                            ValidationError::new(
                                format!("liveSessions[{i}].{}", e.field),
                                e.message,
                            )
                        })?;
                        if let Some(session) = s.session {
                            live_details.insert(key.clone(), session);
                        }
                        Ok(key)
                    })
                    .collect::<Result<Vec<_>, ValidationError>>()?,
            ),
        };
        let heartbeat = Heartbeat {
            worker,
            description: WorkerDescription {
                name: self.name,
                api_base_url: self.api_base_url,
                zone: self.zone,
                labels: self.labels,
                capabilities: self.capabilities,
            },
            capacity,
            active_sessions: self.active_sessions,
            stamp: HeartbeatStamp {
                boot_id: self.boot_id,
                seq: self.seq,
            },
            live_sessions,
            live_details,
            resources: ResourceUsage {
                cpu_percent: self.cpu_percent,
                memory_percent: self.memory_percent,
                disk_percent: self.disk_percent,
            },
        };
        heartbeat.validate()?;
        Ok(heartbeat)
    }
}

/// The answer to a heartbeat: the worker's slots as the control plane sees
/// them, its admin state, and when to heartbeat next.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HeartbeatResponse {
    /// The worker's code.
    pub code: String,
    /// `false` when the heartbeat was older than one already applied (it
    /// changed nothing).
    pub accepted: bool,
    /// One status by precedence (`active`, `draining`, `disabled`, …).
    pub status: String,
    /// Slots by seed 000's formula.
    pub max_sessions: u32,
    /// Free slots: `maxSessions - usedSessions`.
    pub available_sessions: u32,
    /// `max(activeSessions, dispatchedSessions)`.
    pub used_sessions: u32,
    /// Sessions the control plane dispatched to the worker.
    pub dispatched_sessions: u32,
    /// Admin state: keep sessions, take no new ones.
    pub is_draining: bool,
    /// Admin state: in service at all (a disabled worker must refuse new
    /// sessions).
    pub is_enabled: bool,
    /// `none`, `draining` or `drained`.
    pub drain_status: String,
    /// Seconds until the next heartbeat (with jitter).
    pub next_heartbeat_sec: f64,
    /// A warning for operators (reservation above the node's size).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
    /// Sessions the worker reported live (`liveSessions`) whose dispatch
    /// has been settled on another worker for a grace period (superseded
    /// while this worker was unreachable, or placed elsewhere after a call
    /// to this worker timed out): the worker should stop them. Empty unless
    /// the heartbeat carried `liveSessions`.
    #[serde(default)]
    pub release_sessions: Vec<SessionRef>,
}

impl From<HeartbeatAck> for HeartbeatResponse {
    fn from(ack: HeartbeatAck) -> Self {
        let drain_status = serde_json::to_value(ack.drain_status)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        Self {
            code: ack.code.to_string(),
            accepted: ack.accepted,
            status: ack.status.name().to_owned(),
            max_sessions: ack.max_sessions,
            available_sessions: ack.available_sessions,
            used_sessions: ack.used_sessions,
            dispatched_sessions: ack.dispatched_sessions,
            is_draining: ack.is_draining,
            is_enabled: ack.is_enabled,
            drain_status,
            next_heartbeat_sec: ack.next_heartbeat_sec,
            warning: ack.warning,
            release_sessions: ack.release_sessions.iter().map(SessionRef::from).collect(),
        }
    }
}

/// Registration ahead of the first heartbeat (seed 003). Idempotent: a
/// known worker's description is updated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RegisterRequest {
    /// The worker's code.
    pub code: String,
    /// Display name.
    #[serde(default)]
    pub name: String,
    /// Base URL the control plane calls.
    #[serde(default)]
    pub api_base_url: String,
    /// Zone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
    /// Labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Capabilities.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub capabilities: BTreeSet<String>,
}

impl RegisterRequest {
    /// Validates the body; errors name the field.
    pub fn into_parts(self) -> Result<(WorkerId, WorkerDescription), ValidationError> {
        let id = WorkerId::parse("code", self.code)?;
        let description = WorkerDescription {
            name: self.name,
            api_base_url: self.api_base_url,
            zone: self.zone,
            labels: self.labels,
            capabilities: self.capabilities,
        };
        description.validate()?;
        Ok((id, description))
    }
}

/// Control plane → worker: the answer to a join ([`JOIN_PATH`]). The
/// credential is shown once: the worker sends it in [`WORKER_TOKEN_HEADER`]
/// from then on; the control plane keeps only its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct JoinResponse {
    /// The worker's code.
    pub code: String,
    /// The worker's own credential (`vdiw.<code>.<secret>`).
    pub credential: String,
}

/// Control plane → worker: start (or return the already started) session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AllocateRequest {
    /// The exam.
    pub exam_id: String,
    /// The student.
    pub user_id: String,
}

impl From<&SessionKey> for AllocateRequest {
    fn from(key: &SessionKey) -> Self {
        Self {
            exam_id: key.exam_id.to_string(),
            user_id: key.user_id.to_string(),
        }
    }
}

/// Worker → control plane: the started session. `session` (a JSON object:
/// remote-desktop connection details) is stored with the dispatch and handed
/// to the exam application untouched.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AllocateResponse {
    /// Connection details, opaque to the control plane.
    #[schema(value_type = Object)]
    pub session: serde_json::Value,
}

/// Control plane → worker: stop a session. Releasing an unknown session
/// succeeds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReleaseRequest {
    /// The exam.
    pub exam_id: String,
    /// The student.
    pub user_id: String,
}

impl From<&SessionKey> for ReleaseRequest {
    fn from(key: &SessionKey) -> Self {
        Self {
            exam_id: key.exam_id.to_string(),
            user_id: key.user_id.to_string(),
        }
    }
}

/// Worker → control plane: whether a session was stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReleaseResponse {
    /// `false` when the worker did not know the session.
    pub released: bool,
}

/// Control plane → worker: prewarm `count` machines for an exam.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PrewarmRequest {
    /// The exam.
    pub exam_id: String,
    /// Machines to start.
    pub count: u32,
}

/// Worker → control plane: how many machines the worker accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PrewarmResponse {
    /// Machines accepted (at most the requested count).
    pub accepted: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED_000: &str = r#"{
      "code": "worker-node-2",
      "name": "Worker Node 2",
      "apiBaseUrl": "https://worker2.example.edu.vn",
      "totalCpuCores": 32,
      "totalMemoryMb": 65536,
      "reservedCpuCores": 4,
      "reservedMemoryMb": 8192,
      "vmCpuCores": 1.5,
      "vmMemoryMb": 2048,
      "activeSessions": 11
    }"#;

    #[test]
    fn seed_000_body_parses_into_18_slots() {
        let req: HeartbeatRequest = serde_json::from_str(SEED_000).unwrap();
        let hb = req.into_heartbeat().unwrap();
        assert_eq!(hb.capacity.max_sessions(), 18);
        assert_eq!(hb.capacity.available_sessions(hb.active_sessions), 7);
        assert_eq!(hb.worker.as_str(), "worker-node-2");
    }

    #[test]
    fn unknown_fields_are_tolerated_on_heartbeats() {
        let mut v: serde_json::Value = serde_json::from_str(SEED_000).unwrap();
        v["agentVersion"] = "9.9".into();
        let req: HeartbeatRequest = serde_json::from_value(v).unwrap();
        assert!(req.into_heartbeat().is_ok());
    }

    #[test]
    fn live_sessions_may_carry_the_session_object() {
        let mut v: serde_json::Value = serde_json::from_str(SEED_000).unwrap();
        let session = serde_json::json!({"connection": "rdp://w/e/u"});
        v["liveSessions"] = serde_json::json!([
            {"examId": "e", "userId": "u", "session": session},
            {"examId": "e", "userId": "v"},
        ]);
        let req: HeartbeatRequest = serde_json::from_value(v).unwrap();
        let again = serde_json::to_value(&req).unwrap();
        assert!(
            again["liveSessions"][1].get("session").is_none(),
            "additive"
        );
        let hb = req.into_heartbeat().unwrap();
        assert_eq!(hb.live_sessions.map(|l| l.len()), Some(2));
        let u = SessionKey::parse("e", "u").unwrap();
        assert_eq!(hb.live_details.len(), 1);
        assert_eq!(hb.live_details.get(&u), Some(&session));
    }

    #[test]
    fn bad_values_name_the_field() {
        let mut v: serde_json::Value = serde_json::from_str(SEED_000).unwrap();
        v["vmCpuCores"] = 0.into();
        let req: HeartbeatRequest = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(req.into_heartbeat().unwrap_err().field, "vmCpuCores");
        v["vmCpuCores"] = 1.into();
        v["liveSessions"] = serde_json::json!([{"examId": "e", "userId": ""}]);
        let req: HeartbeatRequest = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(
            req.into_heartbeat().unwrap_err().field,
            "liveSessions[0].userId"
        );
        v["liveSessions"] = serde_json::Value::Null;
        v["bootId"] = "".into();
        let req: HeartbeatRequest = serde_json::from_value(v).unwrap();
        assert_eq!(req.into_heartbeat().unwrap_err().field, "bootId");
    }
}
