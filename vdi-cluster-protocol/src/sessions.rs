//! Exam application ↔ control plane: the session API (allocate, look up,
//! release a student's session; prewarm an exam).
//!
//! | method | path | body | answer |
//! |---|---|---|---|
//! | `POST` | `/api/vdi/sessions` | [`AllocateSessionRequest`] | [`SessionJson`] |
//! | `GET` | `/api/vdi/sessions/{examId}/{userId}` | — | [`SessionJson`] |
//! | `DELETE` | `/api/vdi/sessions/{examId}/{userId}` | — | [`ReleaseJson`] |
//! | `POST` | `/api/vdi/exams/{examId}/prewarm` | [`PrewarmExamRequest`] | [`PrewarmReportJson`] |
//!
//! Request bodies refuse unknown fields. Times are milliseconds since the
//! Unix epoch on the control plane's clock.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use vdi_cluster_core::ledger::seconds;
use vdi_cluster_core::scheduler::PrewarmShare;
use vdi_cluster_core::service::SessionLedger;
use vdi_cluster_core::service::{
    AllocateOutcome, Allocation, Departure, PrewarmFailure, PrewarmReport,
};
use vdi_cluster_core::{Constraints, Dispatch, SessionKey, Timestamp};

use crate::ledger::DisruptionJson;

/// Requirements on the worker that takes a session. Checked by core
/// (`Constraints::validate`), once.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConstraintsJson {
    /// Only workers in this zone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
    /// Only workers with all of these labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Only workers with all of these capabilities.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub capabilities: BTreeSet<String>,
}

impl From<ConstraintsJson> for Constraints {
    fn from(c: ConstraintsJson) -> Self {
        Constraints {
            zone: c.zone,
            labels: c.labels,
            capabilities: c.capabilities,
        }
    }
}

/// `POST /api/vdi/sessions`: `{"examId", "userId", "constraints"?}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AllocateSessionRequest {
    /// The exam: 1 to 128 characters, no control characters, no white
    /// space at either end.
    #[schema(
        pattern = "^[^\\s\\x00-\\x1f\\x7f-\\x9f](?:[^\\x00-\\x1f\\x7f-\\x9f]*[^\\s\\x00-\\x1f\\x7f-\\x9f])?$",
        min_length = 1,
        max_length = 128
    )]
    pub exam_id: String,
    /// The student (same rules).
    #[schema(
        pattern = "^[^\\s\\x00-\\x1f\\x7f-\\x9f](?:[^\\x00-\\x1f\\x7f-\\x9f]*[^\\s\\x00-\\x1f\\x7f-\\x9f])?$",
        min_length = 1,
        max_length = 128
    )]
    pub user_id: String,
    /// Optional requirements on the worker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub constraints: Option<ConstraintsJson>,
}

/// `POST /api/vdi/exams/{examId}/prewarm`: `{"count", "constraints"?}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PrewarmExamRequest {
    /// Machines wanted (1 to 100000; capped by free slots and
    /// `VDI_PREWARM_MAX`).
    #[schema(minimum = 1, maximum = 100_000)]
    pub count: u32,
    /// Optional requirements on the workers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub constraints: Option<ConstraintsJson>,
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
    /// For an allocation: something the student or the exam application
    /// should know (the desktop is kept on a silent worker while many
    /// workers are silent at once).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
    /// The student's own end (RFC 3339) when the exam is booked: the
    /// exam's `endsAt` plus any extension. The desktop is released at it
    /// (after the grace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ends_at: Option<String>,
    /// For the session's `GET`: every interruption the student had, oldest
    /// first (the disruption ledger).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disruptions: Option<Vec<DisruptionJson>>,
    /// For the session's `GET`: the time those interruptions cost,
    /// overlaps counted once, seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lost_sec: Option<f64>,
}

impl SessionJson {
    /// With the session's ledger (the session's `GET`).
    pub fn with_ledger(mut self, ledger: &SessionLedger) -> Self {
        self.disruptions = Some(ledger.entries.iter().map(DisruptionJson::from).collect());
        self.lost_sec = Some(seconds(ledger.lost_ms));
        self
    }
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
            warning: None,
            ends_at: None,
            disruptions: None,
            lost_sec: None,
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
        json.warning = a.warning.clone();
        json
    }
}

/// The answer to a release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
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
    /// The student was waiting in the exam's queue and left it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub left_queue: bool,
}

impl ReleaseJson {
    /// The answer to releasing `key`: `released` is the dispatch removed,
    /// if there was one.
    pub fn new(key: &SessionKey, released: Option<&Dispatch>) -> Self {
        Self {
            exam_id: key.exam_id.to_string(),
            user_id: key.user_id.to_string(),
            released: released.is_some(),
            worker_code: released.map(|d| d.worker.to_string()),
            left_queue: false,
        }
    }

    /// The answer to ending `key`'s session: the student left the queue
    /// and/or the dispatch was released.
    pub fn ended(key: &SessionKey, departure: &Departure) -> Self {
        Self {
            left_queue: departure.left_queue,
            ..Self::new(key, departure.released.as_ref())
        }
    }
}

/// One worker's share of a prewarm.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PrewarmShareJson {
    /// The worker.
    pub worker: String,
    /// Machines asked of it.
    pub count: u32,
}

impl From<&PrewarmShare> for PrewarmShareJson {
    fn from(s: &PrewarmShare) -> Self {
        Self {
            worker: s.worker.to_string(),
            count: s.count,
        }
    }
}

/// A worker's prewarm call that failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PrewarmFailureJson {
    /// The worker.
    pub worker: String,
    /// Its share.
    pub count: u32,
    /// Why it failed.
    pub error: String,
}

impl From<&PrewarmFailure> for PrewarmFailureJson {
    fn from(f: &PrewarmFailure) -> Self {
        Self {
            worker: f.worker.to_string(),
            count: f.count,
            error: f.error.clone(),
        }
    }
}

/// What a prewarm planned and started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PrewarmReportJson {
    /// The exam.
    pub exam_id: String,
    /// Machines asked for.
    pub requested: u32,
    /// Machines planned: `min(requested, cluster available, prewarm max)`.
    pub planned: u32,
    /// Machines the workers accepted.
    pub started: u32,
    /// The split across workers.
    pub shares: Vec<PrewarmShareJson>,
    /// Calls that failed.
    pub failures: Vec<PrewarmFailureJson>,
}

impl From<&PrewarmReport> for PrewarmReportJson {
    fn from(r: &PrewarmReport) -> Self {
        Self {
            exam_id: r.exam_id.to_string(),
            requested: r.requested,
            planned: r.planned,
            started: r.started,
            shares: r.shares.iter().map(PrewarmShareJson::from).collect(),
            failures: r.failures.iter().map(PrewarmFailureJson::from).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use vdi_cluster_core::scheduler::ChoiceReason;
    use vdi_cluster_core::{DispatchState, ExamId, WorkerId};

    use super::*;

    fn dispatch() -> Dispatch {
        let key = SessionKey::parse("e1", "u1").unwrap();
        let worker = WorkerId::parse("code", "w1").unwrap();
        let mut d = Dispatch::reserve(key, worker, Timestamp(5), None, None);
        d.state = DispatchState::Active;
        d.activated_at = Some(Timestamp(6));
        d.session = Some(json!({"rdp": "x"}));
        d
    }

    #[test]
    fn session_field_names() {
        let d = dispatch();
        let id = d.id.to_string();
        assert_eq!(
            serde_json::to_value(SessionJson::from(&d)).unwrap(),
            json!({
                "examId": "e1", "userId": "u1", "dispatchId": id, "workerCode": "w1",
                "state": "active", "reservedAt": 5, "activatedAt": 6,
                "session": {"rdp": "x"},
            })
        );
        let a = Allocation {
            dispatch: d,
            outcome: AllocateOutcome::Placed {
                reason: ChoiceReason::Sticky,
            },
            failed_calls: 1,
            contention_retries: 0,
            warning: Some("kept".into()),
        };
        assert_eq!(
            serde_json::to_value(SessionJson::from(&a)).unwrap(),
            json!({
                "examId": "e1", "userId": "u1", "dispatchId": id, "workerCode": "w1",
                "state": "active", "reservedAt": 5, "activatedAt": 6,
                "session": {"rdp": "x"}, "outcome": "placed",
                "reason": "sticky worker of the exam", "failedCalls": 1,
                "warning": "kept",
            })
        );
    }

    #[test]
    fn release_field_names() {
        let d = dispatch();
        assert_eq!(
            serde_json::to_value(ReleaseJson::new(&d.key, Some(&d))).unwrap(),
            json!({"examId": "e1", "userId": "u1", "released": true, "workerCode": "w1"})
        );
        assert_eq!(
            serde_json::to_value(ReleaseJson::new(&d.key, None)).unwrap(),
            json!({"examId": "e1", "userId": "u1", "released": false, "workerCode": null})
        );
    }

    #[test]
    fn request_field_names() {
        let req: AllocateSessionRequest = serde_json::from_value(json!({
            "examId": "e", "userId": "u",
            "constraints": {"zone": "z", "labels": {"a": "b"}, "capabilities": ["gpu"]},
        }))
        .unwrap();
        let c = Constraints::from(req.constraints.unwrap());
        assert_eq!(c.zone.as_deref(), Some("z"));
        assert!(c.capabilities.contains("gpu"));
        assert!(
            serde_json::from_value::<AllocateSessionRequest>(
                json!({"examId": "e", "userId": "u", "extra": 1})
            )
            .is_err()
        );
        let p: PrewarmExamRequest = serde_json::from_value(json!({"count": 3})).unwrap();
        assert_eq!(p.count, 3);
    }

    #[test]
    fn prewarm_report_field_names() {
        let w = WorkerId::parse("code", "w1").unwrap();
        let r = PrewarmReport {
            exam_id: ExamId::parse("examId", "e1").unwrap(),
            requested: 5,
            planned: 4,
            started: 2,
            shares: vec![PrewarmShare {
                worker: w.clone(),
                count: 4,
            }],
            failures: vec![PrewarmFailure {
                worker: w,
                count: 2,
                error: "boom".into(),
            }],
        };
        assert_eq!(
            serde_json::to_value(PrewarmReportJson::from(&r)).unwrap(),
            json!({
                "examId": "e1", "requested": 5, "planned": 4, "started": 2,
                "shares": [{"worker": "w1", "count": 4}],
                "failures": [{"worker": "w1", "count": 2, "error": "boom"}],
            })
        );
    }
}
