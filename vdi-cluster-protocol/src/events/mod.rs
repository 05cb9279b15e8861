//! Control plane → operators: cluster events, as `GET /api/vdi/events`
//! streams them (server-sent events named after the event's `type`, with
//! [`EventJson`] as data): `{"at": ms, "type": "workerPolicy", …}`.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use vdi_cluster_core::Event;

use crate::node::SessionRef;
use crate::reconcile::{PolicyJson, ReconcileReportJson};
use crate::rehearsal::WorkerCheckJson;

mod from_core;

/// What happened; `type` names it (core's `EventKind::name`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(
    tag = "type",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum EventKindJson {
    /// A worker appeared (registration or first heartbeat).
    WorkerRegistered {
        /// The worker.
        worker: String,
    },
    /// A worker heartbeated with a new boot id.
    WorkerRestarted {
        /// The worker.
        worker: String,
    },
    /// A worker's availability changed.
    WorkerAvailability {
        /// The worker.
        worker: String,
        /// Before: `pending`, `healthy`, `unhealthy`, `unreachable`,
        /// `offline`.
        from: String,
        /// After.
        to: String,
        /// Why, for humans.
        reason: String,
    },
    /// A worker's admin policy changed.
    WorkerPolicy {
        /// The worker.
        worker: String,
        /// Before.
        from: PolicyJson,
        /// After.
        to: PolicyJson,
        /// Who (`system` for observed transitions).
        actor: String,
    },
    /// An operator forced a change the change freeze refused.
    WorkerFreezeOverridden {
        /// The worker.
        worker: String,
        /// `drain`, `disable`, `remove`, `revoke-credential` or
        /// `reset-credential`.
        change: String,
        /// Who forced it.
        actor: String,
        /// Why, as the operator gave it.
        reason: String,
        /// The exams under way it makes fit worse.
        exam_ids: Vec<String>,
    },
    /// A drain scheduled for a time could not be carried out when due.
    WorkerScheduledDrainFailed {
        /// The worker.
        worker: String,
        /// The scheduled drain's id.
        id: String,
        /// Who scheduled it.
        actor: String,
        /// Why it failed, for humans.
        reason: String,
        /// The exams that needed the worker, when the change freeze
        /// refused it.
        exam_ids: Vec<String>,
    },
    /// A worker deregistered or was removed.
    WorkerRemoved {
        /// The worker.
        worker: String,
    },
    /// A session moved off a failed worker.
    SessionMigrated {
        /// The session.
        session: SessionRef,
        /// Old worker.
        from: String,
        /// New worker.
        to: String,
    },
    /// A session could not be moved off a failed worker.
    MigrationFailed {
        /// The session.
        session: SessionRef,
        /// Its worker.
        from: String,
        /// Why.
        reason: String,
    },
    /// Sessions were marked orphaned (`manual` failure policy).
    SessionsOrphaned {
        /// The failed worker.
        worker: String,
        /// How many.
        count: u32,
    },
    /// Migration was held back (mass failure, no healthy target).
    MigrationSuspended {
        /// Why.
        reason: String,
    },
    /// A session its worker no longer runs after a restart: its report
    /// under a new boot id omits it, so its dispatch was released and the
    /// slot freed (webhook `session.lost`). The student's next request
    /// places it anew.
    SessionLost {
        /// The session (exam and student).
        session: SessionRef,
        /// The worker that restarted.
        worker: String,
        /// The boot the session was placed on, when known.
        old_boot_id: Option<String>,
        /// The boot whose report proved it gone.
        new_boot_id: Option<String>,
    },
    /// A student's own end is near (webhook `session.expiring`): the
    /// desktop is released at `releasedAt`.
    SessionExpiring {
        /// The session (exam and student).
        session: SessionRef,
        /// The student's own end (RFC 3339).
        ends_at: String,
        /// When the desktop is released: the end plus the grace (RFC 3339).
        released_at: String,
    },
    /// A student's own end plus the grace passed: the desktop was
    /// released (webhook `session.expired`).
    SessionExpired {
        /// The session (exam and student).
        session: SessionRef,
        /// The student's own end (RFC 3339).
        ends_at: String,
        /// The worker that held it.
        worker: String,
    },
    /// A student's lost time in the disruption ledger reached a multiple
    /// of the alert threshold (webhook `session.disrupted`), once per
    /// crossing.
    SessionDisrupted {
        /// The session (exam and student).
        session: SessionRef,
        /// The student's lost time now, seconds (milliseconds as decimals).
        lost_sec: f64,
        /// The alert threshold, seconds.
        threshold_sec: f64,
        /// Which multiple of the threshold was reached (1 the first time).
        crossing: u64,
    },
    /// A reconcile pass finished.
    Reconciled {
        /// What it did.
        report: ReconcileReportJson,
    },
    /// A booked exam no longer fits the schedulable capacity.
    ExamAtRisk {
        /// The exam.
        exam_id: String,
        /// Students that cannot be placed at the peak.
        shortfall: u32,
        /// The peak instant (RFC 3339).
        peak_at: String,
    },
    /// A booked exam flagged at risk fits again.
    ExamFitsAgain {
        /// The exam.
        exam_id: String,
    },
    /// A booked exam's prewarmed machines reached its target.
    ExamPrewarmReady {
        /// The exam.
        exam_id: String,
        /// Machines ready.
        ready: u32,
        /// The prewarm target.
        target: u32,
    },
    /// A booked exam started with fewer machines ready than its target.
    ExamPrewarmBehind {
        /// The exam.
        exam_id: String,
        /// Machines ready.
        ready: u32,
        /// The prewarm target.
        target: u32,
    },
    /// A student waiting in an exam's queue was placed.
    QueuedSessionPlaced {
        /// The session.
        session: SessionRef,
        /// Where.
        worker: String,
    },
    /// An exam's waiting room formed (reached the configured number of
    /// waiting students); once until it empties.
    ExamQueueForming {
        /// The exam.
        exam_id: String,
        /// Students waiting when it was observed.
        waiting: u32,
    },
    /// An exam's rehearsal found failing workers, left out of the exam
    /// until a re-check passes.
    ExamRehearsalFailed {
        /// The exam.
        exam_id: String,
        /// The rehearsal's run.
        run: u32,
        /// `go` (the exam fits without them) or `noGo`.
        verdict: String,
        /// The failing workers and why.
        failing: Vec<WorkerCheckJson>,
        /// Students the exam could not place at its peak without them.
        missing: u32,
    },
    /// The store failed the leader's steps for a while and answers again.
    BackendDegraded {
        /// The first failed step (ms since the epoch).
        since: u64,
        /// The first step that succeeded again (ms since the epoch).
        until: u64,
        /// Steps that failed in between.
        failures: u32,
        /// The last failure, for humans.
        last_error: String,
    },
    /// A webhook endpoint failed this many delivery attempts in a row.
    WebhookFailing {
        /// The endpoint's id.
        webhook_id: String,
        /// Consecutive failed attempts.
        failures: u32,
        /// The last attempt's status or error.
        last_error: String,
    },
    /// The scale hook confirmed a capacity request (webhook
    /// `capacity.requested`).
    CapacityRequested {
        /// The request's id.
        request_id: String,
        /// Slots missing.
        slots: u32,
        /// The exams that need them.
        exam_ids: Vec<String>,
        /// The workers the hook is starting.
        workers: Vec<String>,
        /// When they must have joined (RFC 3339).
        deadline: String,
    },
    /// A capacity request's deadline passed before its workers joined
    /// (webhook `capacity.missing`).
    CapacityMissing {
        /// The request's id.
        request_id: String,
        /// Slots missing.
        slots: u32,
        /// The exams that need them.
        exam_ids: Vec<String>,
        /// The workers named that have not joined.
        missing: Vec<String>,
    },
}

/// One server-sent event of `GET /api/vdi/events`, as its fields arrive
/// on the wire: `event:` (`ready`, or the cluster event's `type`) and
/// `data:` (`{}` for `ready`, else an [`EventJson`] as JSON text).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ServerSentEvent {
    /// The event's name.
    pub event: String,
    /// JSON text.
    pub data: String,
    /// Event id, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

/// An event with its time: `{"at": ms, "type": …, …}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventJson {
    /// When (ms since the epoch, on the control plane's clock).
    pub at: u64,
    /// What, inline.
    #[serde(flatten)]
    pub kind: EventKindJson,
}

impl EventJson {
    /// The body of `event`; `None` for a kind this version does not know.
    pub fn new(event: &Event) -> Option<Self> {
        Some(Self {
            at: event.at.as_millis(),
            kind: EventKindJson::new(&event.kind)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use vdi_cluster_core::service::ReconcileReport;
    use vdi_cluster_core::{AdminPolicy, Availability, EventKind, SessionKey, Timestamp, WorkerId};

    use super::*;

    fn body(kind: EventKind) -> serde_json::Value {
        let event = Event {
            at: Timestamp(42),
            kind,
        };
        serde_json::to_value(EventJson::new(&event).unwrap()).unwrap()
    }

    #[test]
    fn event_field_names() {
        let w = || WorkerId::parse("code", "w1").unwrap();
        let w2 = || WorkerId::parse("code", "w2").unwrap();
        let key = || SessionKey::parse("e1", "u1").unwrap();
        let cases = [
            (
                EventKind::WorkerRegistered { worker: w() },
                json!({"at": 42, "type": "workerRegistered", "worker": "w1"}),
            ),
            (
                EventKind::WorkerRestarted { worker: w() },
                json!({"at": 42, "type": "workerRestarted", "worker": "w1"}),
            ),
            (
                EventKind::WorkerAvailability {
                    worker: w(),
                    from: Availability::Healthy,
                    to: Availability::Unreachable,
                    reason: "silent".into(),
                },
                json!({"at": 42, "type": "workerAvailability", "worker": "w1",
                       "from": "healthy", "to": "unreachable", "reason": "silent"}),
            ),
            (
                EventKind::WorkerPolicy {
                    worker: w(),
                    from: AdminPolicy::Active,
                    to: AdminPolicy::Disabled { forced: false },
                    actor: "admin".into(),
                },
                json!({"at": 42, "type": "workerPolicy", "worker": "w1",
                       "from": {"state": "active"},
                       "to": {"state": "disabled", "forced": false}, "actor": "admin"}),
            ),
            (
                EventKind::WorkerFreezeOverridden {
                    worker: w(),
                    change: "drain".into(),
                    actor: "admin".into(),
                    reason: "kernel patch".into(),
                    exams: vec![vdi_cluster_core::ExamId::parse("examId", "math").unwrap()],
                },
                json!({"at": 42, "type": "workerFreezeOverridden", "worker": "w1",
                       "change": "drain", "actor": "admin", "reason": "kernel patch",
                       "examIds": ["math"]}),
            ),
            (
                EventKind::WorkerScheduledDrainFailed {
                    worker: w(),
                    action: "sa_1".into(),
                    actor: "admin".into(),
                    reason: "change freeze".into(),
                    exams: vec![vdi_cluster_core::ExamId::parse("examId", "math").unwrap()],
                },
                json!({"at": 42, "type": "workerScheduledDrainFailed", "worker": "w1",
                       "id": "sa_1", "actor": "admin", "reason": "change freeze",
                       "examIds": ["math"]}),
            ),
            (
                EventKind::WorkerRemoved { worker: w() },
                json!({"at": 42, "type": "workerRemoved", "worker": "w1"}),
            ),
            (
                EventKind::SessionMigrated {
                    session: key(),
                    from: w(),
                    to: w2(),
                },
                json!({"at": 42, "type": "sessionMigrated",
                       "session": {"examId": "e1", "userId": "u1"}, "from": "w1", "to": "w2"}),
            ),
            (
                EventKind::MigrationFailed {
                    session: key(),
                    from: w(),
                    reason: "full".into(),
                },
                json!({"at": 42, "type": "migrationFailed",
                       "session": {"examId": "e1", "userId": "u1"}, "from": "w1",
                       "reason": "full"}),
            ),
            (
                EventKind::SessionLost {
                    session: key(),
                    worker: w(),
                    old_boot_id: Some("b1".into()),
                    new_boot_id: Some("b2".into()),
                },
                json!({"at": 42, "type": "sessionLost",
                       "session": {"examId": "e1", "userId": "u1"}, "worker": "w1",
                       "oldBootId": "b1", "newBootId": "b2"}),
            ),
            (
                EventKind::SessionExpiring {
                    session: key(),
                    ends_at: vdi_cluster_core::Timestamp(0),
                    released_at: vdi_cluster_core::Timestamp(60_000),
                },
                json!({"at": 42, "type": "sessionExpiring",
                       "session": {"examId": "e1", "userId": "u1"},
                       "endsAt": "1970-01-01T00:00:00Z", "releasedAt": "1970-01-01T00:01:00Z"}),
            ),
            (
                EventKind::SessionExpired {
                    session: key(),
                    ends_at: vdi_cluster_core::Timestamp(0),
                    worker: w(),
                },
                json!({"at": 42, "type": "sessionExpired",
                       "session": {"examId": "e1", "userId": "u1"},
                       "endsAt": "1970-01-01T00:00:00Z", "worker": "w1"}),
            ),
            (
                EventKind::SessionDisrupted {
                    session: key(),
                    lost_ms: 61_500,
                    threshold_ms: 60_000,
                    crossing: 1,
                },
                json!({"at": 42, "type": "sessionDisrupted",
                       "session": {"examId": "e1", "userId": "u1"}, "lostSec": 61.5,
                       "thresholdSec": 60.0, "crossing": 1}),
            ),
            (
                EventKind::SessionsOrphaned {
                    worker: w(),
                    count: 3,
                },
                json!({"at": 42, "type": "sessionsOrphaned", "worker": "w1", "count": 3}),
            ),
            (
                EventKind::MigrationSuspended {
                    reason: "mass failure".into(),
                },
                json!({"at": 42, "type": "migrationSuspended", "reason": "mass failure"}),
            ),
            (
                EventKind::ExamAtRisk {
                    exam: vdi_cluster_core::ExamId::parse("examId", "math").unwrap(),
                    shortfall: 4,
                    peak_at: vdi_cluster_core::Timestamp(0),
                },
                json!({"at": 42, "type": "examAtRisk", "examId": "math", "shortfall": 4,
                       "peakAt": "1970-01-01T00:00:00Z"}),
            ),
            (
                EventKind::ExamFitsAgain {
                    exam: vdi_cluster_core::ExamId::parse("examId", "math").unwrap(),
                },
                json!({"at": 42, "type": "examFitsAgain", "examId": "math"}),
            ),
            (
                EventKind::ExamPrewarmReady {
                    exam: vdi_cluster_core::ExamId::parse("examId", "math").unwrap(),
                    ready: 6,
                    target: 6,
                },
                json!({"at": 42, "type": "examPrewarmReady", "examId": "math", "ready": 6,
                       "target": 6}),
            ),
            (
                EventKind::ExamPrewarmBehind {
                    exam: vdi_cluster_core::ExamId::parse("examId", "math").unwrap(),
                    ready: 2,
                    target: 6,
                },
                json!({"at": 42, "type": "examPrewarmBehind", "examId": "math", "ready": 2,
                       "target": 6}),
            ),
            (
                EventKind::QueuedSessionPlaced {
                    session: vdi_cluster_core::SessionKey::parse("e1", "u1").unwrap(),
                    worker: w(),
                },
                json!({"at": 42, "type": "queuedSessionPlaced",
                       "session": {"examId": "e1", "userId": "u1"}, "worker": "w1"}),
            ),
            (
                EventKind::ExamQueueForming {
                    exam: vdi_cluster_core::ExamId::parse("examId", "math").unwrap(),
                    waiting: 1,
                },
                json!({"at": 42, "type": "examQueueForming", "examId": "math", "waiting": 1}),
            ),
            (
                EventKind::BackendDegraded {
                    since: vdi_cluster_core::Timestamp(10),
                    until: vdi_cluster_core::Timestamp(40),
                    failures: 6,
                    last_error: "connection refused".into(),
                },
                json!({"at": 42, "type": "backendDegraded", "since": 10, "until": 40,
                       "failures": 6, "lastError": "connection refused"}),
            ),
        ];
        for (kind, expected) in cases {
            let name = kind.name();
            let json = body(kind);
            assert_eq!(json, expected);
            assert_eq!(json["type"], name);
        }
        let json = body(EventKind::Reconciled {
            report: ReconcileReport::default(),
        });
        assert_eq!(json["type"], "reconciled");
        assert_eq!(json["report"]["startedAt"], 0);
        assert_eq!(json["report"]["drift"], json!([]));
    }
}
