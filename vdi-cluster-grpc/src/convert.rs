//! Between the gRPC messages and the JSON protocol's bodies.
//!
//! Requests convert into the protocol's request types, which convert into
//! core's the same way for both APIs, so validation happens once, in the
//! same places, with the same field names (`totalCpuCores`,
//! `liveSessions[0].userId`). Answers are built from the protocol's answer
//! types, which the HTTP handlers also answer.

use vdi_cluster_core::ValidationError;
use vdi_cluster_protocol::node::{CheckResponse, ProvisionerCheckJson};
use vdi_cluster_protocol::workers::WorkerJson;
use vdi_cluster_protocol::{
    DescriptionJson, ExamPoolJson, HeartbeatRequest, HeartbeatResponse, HostJson, JoinResponse,
    PoolJson, RegisterRequest, SessionRef,
};

use crate::pb;

/// An empty string as absent.
fn non_empty(s: String) -> Option<String> {
    if s.is_empty() { None } else { Some(s) }
}

impl From<pb::WorkerDescription> for DescriptionJson {
    fn from(d: pb::WorkerDescription) -> Self {
        Self {
            name: d.name,
            api_base_url: d.api_base_url,
            zone: d.zone,
            labels: d.labels.into_iter().collect(),
            capabilities: d.capabilities.into_iter().collect(),
        }
    }
}

impl From<&DescriptionJson> for pb::WorkerDescription {
    fn from(d: &DescriptionJson) -> Self {
        Self {
            name: d.name.clone(),
            api_base_url: d.api_base_url.clone(),
            zone: d.zone.clone(),
            labels: d.labels.clone().into_iter().collect(),
            capabilities: d.capabilities.iter().cloned().collect(),
        }
    }
}

impl From<pb::HostInfo> for HostJson {
    fn from(h: pb::HostInfo) -> Self {
        Self {
            hostname: h.hostname,
            disk_gb: h.disk_gb,
            used_disk_gb: h.used_disk_gb,
            os: h.os,
            agent_version: h.agent_version,
            ip_address: h.ip_address,
            container_runtime: h.container_runtime,
            nix_version: h.nix_version,
        }
    }
}

impl From<&HostJson> for pb::HostInfo {
    fn from(h: &HostJson) -> Self {
        Self {
            hostname: h.hostname.clone(),
            disk_gb: h.disk_gb,
            used_disk_gb: h.used_disk_gb,
            os: h.os.clone(),
            agent_version: h.agent_version.clone(),
            ip_address: h.ip_address.clone(),
            container_runtime: h.container_runtime.clone(),
            nix_version: h.nix_version.clone(),
        }
    }
}

/// A session reference; `field` names it in errors (`liveSessions[3]`).
fn session_from_pb(s: pb::SessionRef, field: &str) -> Result<SessionRef, ValidationError> {
    let session = match s.session_json {
        None => None,
        Some(text) => match serde_json::from_str::<serde_json::Value>(&text) {
            Ok(serde_json::Value::Object(map)) => Some(map),
            _ => {
                return Err(ValidationError::new(
                    format!("{field}.sessionJson"),
                    "must be a JSON object",
                ));
            }
        },
    };
    Ok(SessionRef {
        exam_id: s.exam_id,
        user_id: s.user_id,
        session,
    })
}

impl From<&SessionRef> for pb::SessionRef {
    fn from(s: &SessionRef) -> Self {
        Self {
            exam_id: s.exam_id.clone(),
            user_id: s.user_id.clone(),
            session_json: s
                .session
                .as_ref()
                .map(|m| serde_json::Value::Object(m.clone()).to_string()),
        }
    }
}

impl TryFrom<pb::HeartbeatRequest> for HeartbeatRequest {
    type Error = ValidationError;

    /// Fails only on what the JSON body could not express either (no
    /// capacity, a session's details that are not an object); every value
    /// is left to the protocol's and core's checks.
    fn try_from(r: pb::HeartbeatRequest) -> Result<Self, ValidationError> {
        let capacity = r
            .capacity
            .ok_or_else(|| ValidationError::new("capacity", "required"))?;
        let live_sessions = if r.reports_live_sessions {
            Some(
                r.live_sessions
                    .into_iter()
                    .enumerate()
                    .map(|(i, s)| session_from_pb(s, &format!("liveSessions[{i}]")))
                    .collect::<Result<Vec<_>, _>>()?,
            )
        } else {
            None
        };
        Ok(Self {
            code: r.worker_id,
            description: r.description.unwrap_or_default().into(),
            total_cpu_cores: capacity.total_cpu_cores,
            total_memory_mb: capacity.total_memory_mb,
            reserved_cpu_cores: capacity.reserved_cpu_cores,
            reserved_memory_mb: capacity.reserved_memory_mb,
            vm_cpu_cores: capacity.vm_cpu_cores,
            vm_memory_mb: capacity.vm_memory_mb,
            active_sessions: r.active_sessions,
            boot_id: r.boot_id,
            seq: r.seq,
            live_sessions,
            cpu_percent: r.cpu_percent,
            memory_percent: r.memory_percent,
            disk_percent: r.disk_percent,
            host: r.host.unwrap_or_default().into(),
            prewarm_pool: PoolJson(
                r.prewarm_pool
                    .into_iter()
                    .map(|(exam, p)| {
                        let pool = ExamPoolJson {
                            starting: p.starting,
                            ready: p.ready,
                            failed: p.failed,
                        };
                        (exam, pool)
                    })
                    .collect(),
            ),
            max_concurrent_starts: r.max_concurrent_starts,
        })
    }
}

impl From<&HeartbeatRequest> for pb::HeartbeatRequest {
    fn from(r: &HeartbeatRequest) -> Self {
        Self {
            worker_id: r.code.clone(),
            description: Some((&r.description).into()),
            capacity: Some(pb::Capacity {
                total_cpu_cores: r.total_cpu_cores,
                total_memory_mb: r.total_memory_mb,
                reserved_cpu_cores: r.reserved_cpu_cores,
                reserved_memory_mb: r.reserved_memory_mb,
                vm_cpu_cores: r.vm_cpu_cores,
                vm_memory_mb: r.vm_memory_mb,
            }),
            active_sessions: r.active_sessions,
            boot_id: r.boot_id.clone(),
            seq: r.seq,
            reports_live_sessions: r.live_sessions.is_some(),
            live_sessions: r
                .live_sessions
                .iter()
                .flatten()
                .map(pb::SessionRef::from)
                .collect(),
            cpu_percent: r.cpu_percent,
            memory_percent: r.memory_percent,
            disk_percent: r.disk_percent,
            host: Some((&r.host).into()),
            prewarm_pool: r
                .prewarm_pool
                .0
                .iter()
                .map(|(exam, p)| {
                    let pool = pb::ExamPool {
                        starting: p.starting,
                        ready: p.ready,
                        failed: p.failed,
                    };
                    (exam.clone(), pool)
                })
                .collect(),
            max_concurrent_starts: r.max_concurrent_starts,
        }
    }
}

impl From<&HeartbeatResponse> for pb::HeartbeatResponse {
    fn from(r: &HeartbeatResponse) -> Self {
        Self {
            worker_id: r.code.clone(),
            accepted: r.accepted,
            status: r.status.clone(),
            max_sessions: r.max_sessions,
            available_sessions: r.available_sessions,
            used_sessions: r.used_sessions,
            dispatched_sessions: r.dispatched_sessions,
            warning: r.warning.clone(),
            adopted_sessions: r.adopted_sessions,
            adopted_reservations: r.adopted_reservations,
            instructions: Some(pb::Instructions {
                accept_sessions: r.is_enabled && !r.is_draining,
                is_draining: r.is_draining,
                is_enabled: r.is_enabled,
                drain_status: r.drain_status.clone(),
                next_heartbeat_sec: r.next_heartbeat_sec,
                stop_sessions: r
                    .release_sessions
                    .iter()
                    .map(pb::SessionRef::from)
                    .collect(),
            }),
        }
    }
}

impl From<pb::HeartbeatResponse> for HeartbeatResponse {
    fn from(r: pb::HeartbeatResponse) -> Self {
        let i = r.instructions.unwrap_or_default();
        Self {
            code: r.worker_id,
            accepted: r.accepted,
            status: r.status,
            max_sessions: r.max_sessions,
            available_sessions: r.available_sessions,
            used_sessions: r.used_sessions,
            dispatched_sessions: r.dispatched_sessions,
            is_draining: i.is_draining,
            is_enabled: i.is_enabled,
            drain_status: i.drain_status,
            next_heartbeat_sec: i.next_heartbeat_sec,
            warning: r.warning,
            // Our own server sends only objects: anything else is dropped.
            release_sessions: i
                .stop_sessions
                .into_iter()
                .filter_map(|s| session_from_pb(s, "stopSessions").ok())
                .collect(),
            adopted_sessions: r.adopted_sessions,
            adopted_reservations: r.adopted_reservations,
        }
    }
}

impl From<pb::RegisterWorkerRequest> for RegisterRequest {
    /// An empty `requested_id` asks for an assigned code.
    fn from(r: pb::RegisterWorkerRequest) -> Self {
        Self {
            code: non_empty(r.requested_id),
            description: r.description.unwrap_or_default().into(),
            host: r.host.unwrap_or_default().into(),
        }
    }
}

impl From<&RegisterRequest> for pb::RegisterWorkerRequest {
    /// A registration that accepts an assigned id.
    fn from(r: &RegisterRequest) -> Self {
        Self {
            requested_id: r.code.clone().unwrap_or_default(),
            description: Some((&r.description).into()),
            host: Some((&r.host).into()),
            keep_requested_id: false,
        }
    }
}

impl From<&WorkerJson> for pb::Worker {
    fn from(w: &WorkerJson) -> Self {
        Self {
            worker_id: w.code.clone(),
            description: Some(pb::WorkerDescription {
                name: w.name.clone(),
                api_base_url: w.api_base_url.clone(),
                zone: w.zone.clone(),
                labels: w.labels.clone().into_iter().collect(),
                capabilities: w.capabilities.iter().cloned().collect(),
            }),
            host: Some(pb::HostInfo {
                hostname: w.hostname.clone(),
                disk_gb: w.disk_gb,
                used_disk_gb: w.used_disk_gb,
                os: w.os.clone(),
                agent_version: w.agent_version.clone(),
                ip_address: w.ip_address.clone(),
                container_runtime: w.container_runtime.clone(),
                nix_version: w.nix_version.clone(),
            }),
            status: w.status.clone(),
            reason: w.reason.clone(),
            availability: w.availability.clone(),
            is_healthy: w.is_healthy,
            is_schedulable: w.is_schedulable,
            is_draining: w.is_draining,
            is_enabled: w.is_enabled,
            drain_status: w.drain_status.clone(),
            max_sessions: w.max_sessions,
            available_sessions: w.available_sessions,
            used_sessions: w.used_sessions,
            active_sessions: w.active_sessions,
            dispatched_sessions: w.dispatched_sessions,
            total_cpu_cores: w.total_cpu_cores,
            total_memory_mb: w.total_memory_mb,
            used_cpu_cores: w.used_cpu_cores,
            used_memory_mb: w.used_memory_mb,
            cpu_percent: w.cpu_percent,
            memory_percent: w.memory_percent,
            disk_percent: w.disk_percent,
            last_heartbeat_at: w.last_heartbeat_at,
            registered_at: w.registered_at,
            deregistered_at: w.deregistered_at,
            deregister_reason: w.deregister_reason.clone(),
            started_at: w.started_at,
            uptime: w.uptime.clone(),
        }
    }
}

/// The credential a registration with a join token answered, if any.
pub fn joined(r: pb::RegisterWorkerResponse) -> Option<JoinResponse> {
    Some(JoinResponse {
        code: r.worker_id,
        credential: r.credential?,
        expires_at: r.credential_expires_at,
        ttl_sec: r.credential_ttl_sec,
    })
}

impl From<pb::RotateCredentialResponse> for JoinResponse {
    fn from(r: pb::RotateCredentialResponse) -> Self {
        Self {
            code: r.worker_id,
            credential: r.credential,
            expires_at: r.credential_expires_at,
            ttl_sec: r.credential_ttl_sec,
        }
    }
}

impl From<&CheckResponse> for pb::CheckExamResponse {
    fn from(r: &CheckResponse) -> Self {
        Self {
            started: r.started,
            start_ms: r.start_ms,
            image_present: r.image_present,
            image: r.image.clone(),
            checks: r
                .checks
                .iter()
                .map(|c| pb::ProvisionerCheck {
                    name: c.name.clone(),
                    ok: c.ok,
                    detail: c.detail.clone(),
                })
                .collect(),
            error: r.error.clone(),
        }
    }
}

impl From<pb::CheckExamResponse> for CheckResponse {
    fn from(r: pb::CheckExamResponse) -> Self {
        Self {
            started: r.started,
            start_ms: r.start_ms,
            image_present: r.image_present,
            image: r.image,
            checks: r
                .checks
                .into_iter()
                .map(|c| ProvisionerCheckJson {
                    name: c.name,
                    ok: c.ok,
                    detail: c.detail,
                })
                .collect(),
            error: r.error,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_check_answer_survives_the_round_trip() {
        let json: CheckResponse = serde_json::from_value(serde_json::json!({
            "started": true, "startMs": 8200, "imagePresent": true,
            "image": "sot-exam-linux:latest",
            "checks": [{"name": "network-allow-list", "ok": false, "detail": "lms unreachable"},
                       {"name": "mount", "ok": true}],
        }))
        .unwrap();
        let m = pb::CheckExamResponse::from(&json);
        assert_eq!(m.checks.len(), 2);
        assert_eq!(CheckResponse::from(m), json);
        let not_started: CheckResponse = serde_json::from_value(serde_json::json!({
            "started": false, "startMs": 0, "error": "no space left on device",
        }))
        .unwrap();
        let m = pb::CheckExamResponse::from(&not_started);
        assert_eq!((m.image_present, m.image.as_deref()), (None, None));
        assert_eq!(CheckResponse::from(m), not_started);
    }

    fn heartbeat() -> HeartbeatRequest {
        serde_json::from_value(serde_json::json!({
            "code": "worker-node-2", "name": "Worker Node 2",
            "apiBaseUrl": "https://worker2.example.edu.vn",
            "totalCpuCores": 32, "totalMemoryMb": 65536,
            "reservedCpuCores": 4, "reservedMemoryMb": 8192,
            "vmCpuCores": 1.5, "vmMemoryMb": 2048, "activeSessions": 11,
            "bootId": "b1", "seq": 3, "liveSessions": [],
            "hostname": "node1", "diskGb": 500, "ipAddress": "10.0.0.7",
            "containerRuntime": "docker 24.0.0", "nixVersion": "2.18.0",
            "prewarmPool": {"math": {"starting": 1, "ready": 2, "failed": 3}},
            "maxConcurrentStarts": 4,
        }))
        .unwrap()
    }

    #[test]
    fn a_heartbeat_survives_the_round_trip() {
        let json = heartbeat();
        let back = HeartbeatRequest::try_from(pb::HeartbeatRequest::from(&json)).unwrap();
        assert_eq!(back, json);
        let hb = back.into_heartbeat().unwrap();
        assert_eq!(hb.capacity.max_sessions(), 18);
        assert_eq!(hb.live_sessions, Some(Vec::new()));
    }

    #[test]
    fn what_json_cannot_express_is_refused_with_a_field() {
        let mut m = pb::HeartbeatRequest::from(&heartbeat());
        m.capacity = None;
        assert_eq!(HeartbeatRequest::try_from(m).unwrap_err().field, "capacity");
        let mut m = pb::HeartbeatRequest::from(&heartbeat());
        m.live_sessions.push(pb::SessionRef {
            exam_id: "e".into(),
            user_id: "u".into(),
            session_json: Some("[1]".into()),
        });
        assert_eq!(
            HeartbeatRequest::try_from(m).unwrap_err().field,
            "liveSessions[0].sessionJson"
        );
    }

    #[test]
    fn instructions_carry_the_admin_state() {
        let json = HeartbeatResponse {
            code: "w1".into(),
            accepted: true,
            status: "draining".into(),
            max_sessions: 4,
            available_sessions: 0,
            used_sessions: 1,
            dispatched_sessions: 1,
            is_draining: true,
            is_enabled: true,
            drain_status: "draining".into(),
            next_heartbeat_sec: 27.5,
            warning: None,
            release_sessions: vec![SessionRef {
                exam_id: "e".into(),
                user_id: "u".into(),
                session: None,
            }],
            adopted_sessions: 0,
            adopted_reservations: 0,
        };
        let m = pb::HeartbeatResponse::from(&json);
        let i = m.instructions.as_ref().unwrap();
        assert!(!i.accept_sessions);
        assert_eq!(i.next_heartbeat_sec, 27.5);
        assert_eq!(HeartbeatResponse::from(m), json);
    }
}
