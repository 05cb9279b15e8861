//! [`HeartbeatResponse`]: the control plane's answer to a heartbeat.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use vdi_cluster_core::service::HeartbeatAck;

use super::SessionRef;

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
    /// Slots by the exam platform's formula.
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

#[cfg(test)]
mod tests {
    use vdi_cluster_core::{SessionKey, WorkerId};

    use super::*;

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
