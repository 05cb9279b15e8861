//! Worker → control plane: heartbeats and registration, and the
//! control plane's answer to a heartbeat.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use vdi_cluster_core::service::HeartbeatAck;
use vdi_cluster_core::{
    CapacityInput, CapacitySpec, Heartbeat, HeartbeatStamp, HostInfo, ResourceUsage, SessionKey,
    ValidationError, WorkerDescription, WorkerId,
};

use crate::decode::keyed;

/// One session, as worker heartbeats list them in `liveSessions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionRef {
    /// The exam.
    #[schema(
        pattern = "^[^\\s\\x00-\\x1f\\x7f-\\x9f](?:[^\\x00-\\x1f\\x7f-\\x9f]*[^\\s\\x00-\\x1f\\x7f-\\x9f])?$",
        min_length = 1,
        max_length = 128
    )]
    pub exam_id: String,
    /// The student.
    #[schema(
        pattern = "^[^\\s\\x00-\\x1f\\x7f-\\x9f](?:[^\\x00-\\x1f\\x7f-\\x9f]*[^\\s\\x00-\\x1f\\x7f-\\x9f])?$",
        min_length = 1,
        max_length = 128
    )]
    pub user_id: String,
    /// In a heartbeat's `liveSessions`, optionally: the worker's allocate
    /// answer for the session (its connection details), so the control
    /// plane can adopt a session it has no record of with them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub session: Option<serde_json::Map<String, serde_json::Value>>,
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

/// The descriptive fields a worker sends on registration and on every
/// heartbeat: who it is and where to reach it. Flattened into
/// [`RegisterRequest`] and [`HeartbeatRequest`], so both bodies spell them
/// the same way.
///
/// Each field names itself when its value has the wrong JSON type (a
/// flattened field is read from a buffer, where serde loses its path).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DescriptionJson {
    /// Display name; on a heartbeat, empty keeps the stored one.
    #[serde(default, deserialize_with = "name")]
    #[schema(max_length = 200, pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*$")]
    pub name: String,
    /// Base URL the control plane calls (required): an absolute `http://`
    /// or `https://` URL with a host, at most 512 characters.
    #[serde(default, deserialize_with = "api_base_url")]
    #[schema(
        required = true,
        min_length = 1,
        max_length = 512,
        pattern = "^https?://[A-Za-z0-9][A-Za-z0-9.-]*(?::(?:[1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?(?:[/?#][^\\s\\x00-\\x1f\\x7f-\\x9f]*)?$"
    )]
    pub api_base_url: String,
    /// Zone, for constraints and per-zone statistics.
    #[serde(
        default,
        deserialize_with = "zone",
        skip_serializing_if = "Option::is_none"
    )]
    pub zone: Option<String>,
    /// Free-form labels.
    #[serde(
        default,
        deserialize_with = "labels",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub labels: BTreeMap<String, String>,
    /// Capabilities (`gpu`, `firecracker`).
    #[serde(
        default,
        deserialize_with = "capabilities",
        skip_serializing_if = "BTreeSet::is_empty"
    )]
    pub capabilities: BTreeSet<String>,
}

fn name<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    keyed("name", d)
}

fn api_base_url<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    keyed("apiBaseUrl", d)
}

fn zone<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    keyed("zone", d)
}

fn labels<'de, D: serde::Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    keyed("labels", d)
}

fn capabilities<'de, D: serde::Deserializer<'de>>(d: D) -> Result<BTreeSet<String>, D::Error> {
    keyed("capabilities", d)
}

/// The wire requires `apiBaseUrl` on every heartbeat and registration
/// (core, called in process, also takes an empty one as "keep the stored
/// one"); its syntax is core's to check.
fn require_api_base_url(d: &DescriptionJson) -> Result<(), ValidationError> {
    if d.api_base_url.is_empty() {
        return Err(ValidationError::new(
            "apiBaseUrl",
            "required: an absolute http:// or https:// URL with a host",
        ));
    }
    Ok(())
}

impl From<&WorkerDescription> for DescriptionJson {
    fn from(d: &WorkerDescription) -> Self {
        Self {
            name: d.name.clone(),
            api_base_url: d.api_base_url.clone(),
            zone: d.zone.clone(),
            labels: d.labels.clone(),
            capabilities: d.capabilities.clone(),
        }
    }
}

impl From<DescriptionJson> for WorkerDescription {
    fn from(d: DescriptionJson) -> Self {
        Self {
            name: d.name,
            api_base_url: d.api_base_url,
            zone: d.zone,
            labels: d.labels,
            capabilities: d.capabilities,
        }
    }
}

/// What a worker tells about its host (seeds 002 and 004): flattened into
/// [`HeartbeatRequest`]. Every field is optional; one left out keeps what
/// the control plane stored.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HostJson {
    /// The node's host name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(
        min_length = 1,
        max_length = 255,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]+$"
    )]
    pub hostname: Option<String>,
    /// Disk size, GB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(maximum = 1_073_741_824)]
    pub disk_gb: Option<u64>,
    /// Disk in use, GB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(maximum = 1_073_741_824)]
    pub used_disk_gb: Option<u64>,
    /// Operating system and version (`Ubuntu 22.04`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(
        min_length = 1,
        max_length = 255,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]+$"
    )]
    pub os: Option<String>,
    /// Version of the worker agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(
        min_length = 1,
        max_length = 255,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]+$"
    )]
    pub agent_version: Option<String>,
}

impl From<HostJson> for HostInfo {
    fn from(h: HostJson) -> Self {
        Self {
            hostname: h.hostname,
            disk_gb: h.disk_gb,
            used_disk_gb: h.used_disk_gb,
            os: h.os,
            agent_version: h.agent_version,
        }
    }
}

impl From<&HostInfo> for HostJson {
    fn from(h: &HostInfo) -> Self {
        Self {
            hostname: h.hostname.clone(),
            disk_gb: h.disk_gb,
            used_disk_gb: h.used_disk_gb,
            os: h.os.clone(),
            agent_version: h.agent_version.clone(),
        }
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
    #[schema(
        pattern = "^[A-Za-z0-9][A-Za-z0-9._-]*$",
        min_length = 1,
        max_length = 64
    )]
    pub code: String,
    /// Name, URL, zone, labels, capabilities.
    #[serde(flatten)]
    pub description: DescriptionJson,
    /// CPU cores of the node (decimals allowed, at most 3 places).
    #[schema(minimum = 0, maximum = 65_536, multiple_of = 0.001)]
    pub total_cpu_cores: f64,
    /// Memory of the node, MB.
    #[schema(maximum = 67_108_864)]
    pub total_memory_mb: u64,
    /// CPU cores kept for the host (default 0).
    #[serde(default)]
    #[schema(minimum = 0, maximum = 65_536, multiple_of = 0.001)]
    pub reserved_cpu_cores: f64,
    /// Memory kept for the host, MB (default 0).
    #[serde(default)]
    #[schema(maximum = 67_108_864)]
    pub reserved_memory_mb: u64,
    /// CPU cores of one session's VM (more than 0).
    #[schema(exclusive_minimum = 0, maximum = 65_536, multiple_of = 0.001)]
    pub vm_cpu_cores: f64,
    /// Memory of one session's VM, MB (more than 0).
    #[schema(minimum = 1, maximum = 67_108_864)]
    pub vm_memory_mb: u64,
    /// Sessions running on the node now.
    #[schema(maximum = 1_000_000)]
    pub active_sessions: u32,
    /// Random id the agent picks at start-up; a new one means it restarted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(
        min_length = 1,
        max_length = 128,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]+$"
    )]
    pub boot_id: Option<String>,
    /// Increases by one per heartbeat within a boot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    /// The sessions the node runs, when the agent reports them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_items = 10_000)]
    pub live_sessions: Option<Vec<SessionRef>>,
    /// CPU usage percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0, maximum = 100)]
    pub cpu_percent: Option<f64>,
    /// Memory usage percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0, maximum = 100)]
    pub memory_percent: Option<f64>,
    /// Disk usage percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0, maximum = 100)]
    pub disk_percent: Option<f64>,
    /// Host name, disk, OS and agent version.
    #[serde(flatten)]
    pub host: HostJson,
}

impl HeartbeatRequest {
    /// Converts the body into core's [`Heartbeat`]. Only what core's types
    /// need to exist is checked here (the code, the capacity figures, the
    /// session ids); everything else is validated once, by core's
    /// `ClusterService::heartbeat`. Errors name the field.
    pub fn into_heartbeat(self) -> Result<Heartbeat, ValidationError> {
        let worker = WorkerId::parse("code", self.code)?;
        require_api_base_url(&self.description)?;
        let capacity = CapacitySpec::new(CapacityInput {
            total_cpu_cores: self.total_cpu_cores,
            total_memory_mb: self.total_memory_mb,
            reserved_cpu_cores: self.reserved_cpu_cores,
            reserved_memory_mb: self.reserved_memory_mb,
            vm_cpu_cores: self.vm_cpu_cores,
            vm_memory_mb: self.vm_memory_mb,
        })?;
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
                            live_details.insert(key.clone(), serde_json::Value::Object(session));
                        }
                        Ok(key)
                    })
                    .collect::<Result<Vec<_>, ValidationError>>()?,
            ),
        };
        Ok(Heartbeat {
            worker,
            description: self.description.into(),
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
            host: self.host.into(),
        })
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
    /// Sessions the worker reported live (`liveSessions`) that the control
    /// plane no longer places on it — released, or superseded while the
    /// worker was unreachable: the worker should stop them. Empty unless the
    /// heartbeat carried `liveSessions`.
    #[serde(default)]
    pub release_sessions: Vec<SessionRef>,
    /// Sessions the worker reported live that the control plane had no
    /// record of, adopted by this heartbeat.
    #[serde(default)]
    pub adopted_sessions: u32,
    /// Reservations on the worker confirmed by this heartbeat's report (the
    /// allocation that made them never confirmed).
    #[serde(default)]
    pub adopted_reservations: u32,
}

impl From<&HeartbeatAck> for HeartbeatResponse {
    fn from(ack: &HeartbeatAck) -> Self {
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
            drain_status: ack.drain_status.name().to_owned(),
            next_heartbeat_sec: ack.next_heartbeat_sec,
            warning: ack.warning.clone(),
            release_sessions: ack.release_sessions.iter().map(SessionRef::from).collect(),
            adopted_sessions: ack.adopted_sessions,
            adopted_reservations: ack.adopted_reservations,
        }
    }
}

/// Registration ahead of the first heartbeat (seed 003). Idempotent: a
/// known worker's description is updated. Without `code`, or with one
/// another worker (on another host) holds, the control plane assigns one
/// and answers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RegisterRequest {
    /// The worker's code, as requested.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(
        pattern = "^[A-Za-z0-9][A-Za-z0-9._-]*$",
        min_length = 1,
        max_length = 64
    )]
    pub code: Option<String>,
    /// Name, URL, zone, labels, capabilities.
    #[serde(flatten)]
    pub description: DescriptionJson,
    /// Host name, disk, OS and agent version (seed 002).
    #[serde(flatten)]
    pub host: HostJson,
}

impl RegisterRequest {
    /// The requested id (field `code`), if any, the description and the
    /// host metadata. Both are validated by core
    /// (`ClusterService::register_assigned`), not here.
    #[allow(clippy::type_complexity)]
    pub fn into_parts(
        self,
    ) -> Result<(Option<WorkerId>, WorkerDescription, HostInfo), ValidationError> {
        let id = self
            .code
            .map(|code| WorkerId::parse("code", code))
            .transpose()?;
        require_api_base_url(&self.description)?;
        Ok((id, self.description.into(), self.host.into()))
    }
}

/// A worker leaving cleanly (seed 003), optionally saying why.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeregisterRequest {
    /// Why (`shutdown`, `maintenance`, ...), shown in the worker's detail
    /// and the audit trail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 500, pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*$")]
    pub reason: Option<String>,
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
    fn a_live_session_object_must_be_an_object() {
        let mut v: serde_json::Value = serde_json::from_str(SEED_000).unwrap();
        v["liveSessions"] = serde_json::json!([{"examId": "e", "userId": "u", "session": 6.5e261}]);
        let e =
            crate::decode::parse_json::<HeartbeatRequest>(v.to_string().as_bytes()).unwrap_err();
        assert!(e.field.starts_with("liveSessions"), "{e:?}");
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
        // The boot id is core's to judge, once.
        let hb = req.into_heartbeat().unwrap();
        assert_eq!(hb.validate().unwrap_err().field, "bootId");
    }

    #[test]
    fn description_fields_name_themselves_through_flatten() {
        let mut v: serde_json::Value = serde_json::from_str(SEED_000).unwrap();
        v["labels"] = serde_json::json!(["a"]);
        let e =
            crate::decode::parse_json::<HeartbeatRequest>(v.to_string().as_bytes()).unwrap_err();
        assert_eq!(e.field, "labels");
        let e = crate::decode::parse_json::<RegisterRequest>(br#"{"code": "w", "zone": 5}"#)
            .unwrap_err();
        assert_eq!(e.field, "zone");
    }

    #[test]
    fn heartbeat_and_register_bodies_keep_their_field_names() {
        let req: HeartbeatRequest = serde_json::from_str(SEED_000).unwrap();
        let mut req = req;
        req.description.zone = Some("z".into());
        req.description.labels.insert("rack".into(), "1".into());
        req.description.capabilities.insert("gpu".into());
        req.boot_id = Some("b".into());
        req.seq = Some(1);
        req.live_sessions = Some(vec![SessionRef {
            exam_id: "e".into(),
            user_id: "u".into(),
            session: None,
        }]);
        req.cpu_percent = Some(1.0);
        req.memory_percent = Some(2.0);
        req.disk_percent = Some(3.0);
        let mut keys: Vec<String> = serde_json::to_value(&req)
            .unwrap()
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "activeSessions",
                "apiBaseUrl",
                "bootId",
                "capabilities",
                "code",
                "cpuPercent",
                "diskPercent",
                "labels",
                "liveSessions",
                "memoryPercent",
                "name",
                "reservedCpuCores",
                "reservedMemoryMb",
                "seq",
                "totalCpuCores",
                "totalMemoryMb",
                "vmCpuCores",
                "vmMemoryMb",
                "zone",
            ]
        );
        let register = RegisterRequest {
            code: Some("w".into()),
            description: req.description.clone(),
            host: HostJson::default(),
        };
        assert_eq!(
            serde_json::to_value(&register).unwrap(),
            serde_json::json!({
                "code": "w", "name": "Worker Node 2",
                "apiBaseUrl": "https://worker2.example.edu.vn",
                "zone": "z", "labels": {"rack": "1"}, "capabilities": ["gpu"],
            })
        );
    }

    #[test]
    fn heartbeat_response_field_names() {
        let w = WorkerId::parse("code", "w1").unwrap();
        let ack = HeartbeatAck {
            code: w,
            accepted: true,
            status: vdi_cluster_core::WorkerStatus::Draining,
            max_sessions: 4,
            available_sessions: 3,
            used_sessions: 1,
            dispatched_sessions: 1,
            is_draining: true,
            is_enabled: true,
            drain_status: vdi_cluster_core::DrainStatus::Draining,
            next_heartbeat_sec: 10.5,
            warning: None,
            release_sessions: vec![SessionKey::parse("e", "u").unwrap()],
            adopted_sessions: 2,
            adopted_reservations: 1,
        };
        assert_eq!(
            serde_json::to_value(HeartbeatResponse::from(&ack)).unwrap(),
            serde_json::json!({
                "code": "w1", "accepted": true, "status": "draining",
                "maxSessions": 4, "availableSessions": 3, "usedSessions": 1,
                "dispatchedSessions": 1, "isDraining": true, "isEnabled": true,
                "drainStatus": "draining", "nextHeartbeatSec": 10.5,
                "releaseSessions": [{"examId": "e", "userId": "u"}],
                "adoptedSessions": 2, "adoptedReservations": 1,
            })
        );
    }
}
