//! A worker node's own view of itself: the body of
//! `GET` [`WORKER_STATUS_PATH`](crate::WORKER_STATUS_PATH) ([`NodeStatus`]),
//! served by the node agent to operators and tests (cluster token), and of
//! its open `GET /healthz` ([`Health`]).
//!
//! ```json
//! {"code": "w1", "bootId": "…", "seq": 12, "provisioner": "simulated",
//!  "maxSessions": 4, "activeSessions": 1,
//!  "sessions": [{"examId": "e1", "userId": "u1", "state": "running",
//!                "startedAt": 1764480000000, "prewarmed": false,
//!                "session": {"host": "10.0.0.5", "port": 5901}}],
//!  "prewarmed": {"e1": 2}, "prewarming": 0,
//!  "admin": {"status": "active", "isDraining": false, "isEnabled": true,
//!            "drainStatus": "none"},
//!  "controlPlane": {"url": "http://127.0.0.1:8080/api",
//!                   "urls": ["http://127.0.0.1:8080/api"], "reachable": true,
//!                   "registered": true, "credential": "shared",
//!                   "lastOkAt": 1764480000000, "consecutiveFailures": 0,
//!                   "lastError": null, "nextAttemptSec": 20.0,
//!                   "heartbeatsOk": 12, "heartbeatsFailed": 0}}
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The body of a node's `GET /healthz`: `{"status": "ok"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    /// `ok` while the node serves.
    pub status: String,
}

impl Health {
    /// `{"status": "ok"}`.
    pub fn ok() -> Self {
        Self {
            status: "ok".to_owned(),
        }
    }
}

/// The worker's own view (`GET /api/vdi/cluster/status`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeStatus {
    /// The worker's code.
    pub code: String,
    /// Random id of this process.
    pub boot_id: String,
    /// Sequence number of the latest heartbeat.
    pub seq: u64,
    /// `simulated` or `command`.
    pub provisioner: String,
    /// Slots by the capacity formula.
    pub max_sessions: u32,
    /// Sessions starting, running or stopping.
    pub active_sessions: u64,
    /// The sessions, sorted by exam then student.
    pub sessions: Vec<NodeSessionStatus>,
    /// Idle prewarmed machines per exam.
    pub prewarmed: BTreeMap<String, u64>,
    /// Prewarmed machines still starting.
    pub prewarming: u64,
    /// The admin state the control plane last sent (`null`: none yet).
    pub admin: Option<NodeAdminStatus>,
    /// The heartbeat agent's view of the control plane.
    pub control_plane: ControlPlaneStatus,
}

/// One session, as the node reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeSessionStatus {
    /// The exam.
    pub exam_id: String,
    /// The student.
    pub user_id: String,
    /// `starting`, `running` or `stopping`.
    pub state: String,
    /// When it started (ms since the epoch), once running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<u64>,
    /// Whether it runs on a prewarmed machine.
    pub prewarmed: bool,
    /// Its connection details, once running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<serde_json::Value>,
    /// Whose network policy its desktop got: `exam` (booked with the
    /// exam, sent with the allocation) or `node` (the worker's own
    /// `EXAM_*` default). Absent from nodes older than this field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_policy: Option<String>,
}

/// What the control plane last said about the node's admin state (from
/// its heartbeat answers).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeAdminStatus {
    /// One status by precedence (`active`, `draining`, `disabled`, …).
    pub status: String,
    /// Keep sessions, take no new ones.
    pub is_draining: bool,
    /// In service at all.
    pub is_enabled: bool,
    /// `none`, `draining` or `drained`.
    pub drain_status: String,
}

/// Which credential the node's heartbeats carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum CredentialKind {
    /// None (the control plane accepts heartbeats without a token).
    None,
    /// The shared worker token.
    Shared,
    /// The worker's own credential, from joining.
    Own,
}

/// The heartbeat agent's view of the control plane.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ControlPlaneStatus {
    /// The control plane's API base calls go to now (with several, the one
    /// that last answered).
    pub url: String,
    /// Every configured API base, in the order tried (absent from older
    /// nodes' bodies).
    #[serde(default)]
    pub urls: Vec<String>,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_body_round_trips() {
        let text = r#"{"code": "w1", "bootId": "b", "seq": 12, "provisioner": "simulated",
          "maxSessions": 4, "activeSessions": 2,
          "sessions": [{"examId": "e1", "userId": "u1", "state": "running",
                        "startedAt": 1764480000000, "prewarmed": false,
                        "session": {"port": 5901}},
                       {"examId": "e1", "userId": "u2", "state": "starting",
                        "prewarmed": false}],
          "prewarmed": {"e1": 2}, "prewarming": 0, "admin": null,
          "controlPlane": {"url": "http://cp-b/api",
                           "urls": ["http://cp-a/api", "http://cp-b/api"],
                           "reachable": false,
                           "registered": false, "credential": "none",
                           "lastOkAt": null, "consecutiveFailures": 3,
                           "lastError": "control plane unreachable: refused",
                           "nextAttemptSec": 4.0, "heartbeatsOk": 0,
                           "heartbeatsFailed": 3}}"#;
        let status: NodeStatus = serde_json::from_str(text).unwrap();
        assert_eq!(status.sessions[1].started_at, None);
        assert_eq!(status.control_plane.credential, CredentialKind::None);
        assert_eq!(status.control_plane.urls.len(), 2);
        let expected: serde_json::Value = serde_json::from_str(text).unwrap();
        assert_eq!(serde_json::to_value(&status).unwrap(), expected);
    }

    #[test]
    fn an_older_control_plane_view_without_urls_reads() {
        let text = r#"{"url": "http://cp/api", "reachable": true, "registered": true,
          "credential": "shared", "lastOkAt": 1, "consecutiveFailures": 0,
          "lastError": null, "nextAttemptSec": 1.0, "heartbeatsOk": 1,
          "heartbeatsFailed": 0}"#;
        let view: ControlPlaneStatus = serde_json::from_str(text).unwrap();
        assert!(view.urls.is_empty());
    }
}
