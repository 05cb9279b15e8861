//! Events the control plane emits, and where they go.
//!
//! Events are values; an [`EventSink`] delivers them. [`LogSink`] writes
//! them to `tracing` (always on in the server); the server adds a
//! server-sent-events stream and a webhook. Sinks must not block: emit is
//! called on the allocation path.

use std::fmt::Debug;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::health::Availability;
use crate::ids::{ExamId, SessionKey, WorkerId};
use crate::policy::AdminPolicy;
use crate::reconcile::ReconcileReport;
use crate::time::Timestamp;

/// Something an operator may want to know about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
#[non_exhaustive]
pub enum EventKind {
    /// A worker appeared (registration or first heartbeat).
    WorkerRegistered {
        /// The worker.
        worker: WorkerId,
    },
    /// A worker heartbeated with a new boot id.
    WorkerRestarted {
        /// The worker.
        worker: WorkerId,
    },
    /// A worker's availability changed.
    WorkerAvailability {
        /// The worker.
        worker: WorkerId,
        /// Before.
        from: Availability,
        /// After.
        to: Availability,
        /// Why, for humans.
        reason: String,
    },
    /// A worker's admin policy changed.
    WorkerPolicy {
        /// The worker.
        worker: WorkerId,
        /// Before.
        from: AdminPolicy,
        /// After.
        to: AdminPolicy,
        /// Who (`system` for observed transitions).
        actor: String,
    },
    /// An operator forced a change of a worker that the change freeze
    /// refused: it made exams under way fit worse (see
    /// [`exam::freeze`](crate::exam::freeze)).
    WorkerFreezeOverridden {
        /// The worker.
        worker: WorkerId,
        /// The change (`drain`, `disable`, `remove`, `revoke-credential`,
        /// `reset-credential`).
        change: String,
        /// Who forced it.
        actor: String,
        /// Why, as the operator gave it.
        reason: String,
        /// The exams it hurts.
        exams: Vec<ExamId>,
    },
    /// A drain scheduled for a time could not be carried out when it was
    /// due (the change freeze refused it, the worker was gone, …).
    WorkerScheduledDrainFailed {
        /// The worker.
        worker: WorkerId,
        /// The scheduled action's id.
        action: String,
        /// Who scheduled it.
        actor: String,
        /// Why it failed, for humans.
        reason: String,
        /// The exams that needed the worker, when the change freeze
        /// refused it.
        exams: Vec<ExamId>,
    },
    /// A worker deregistered or was removed.
    WorkerRemoved {
        /// The worker.
        worker: WorkerId,
    },
    /// A session moved off a failed worker.
    SessionMigrated {
        /// The session.
        session: SessionKey,
        /// Old worker.
        from: WorkerId,
        /// New worker.
        to: WorkerId,
    },
    /// A session could not be moved off a failed worker.
    MigrationFailed {
        /// The session.
        session: SessionKey,
        /// Its worker.
        from: WorkerId,
        /// Why.
        reason: String,
    },
    /// Sessions were marked orphaned (`manual` failure policy): an operator
    /// must evacuate them.
    SessionsOrphaned {
        /// The failed worker.
        worker: WorkerId,
        /// How many.
        count: u32,
    },
    /// Migration was held back (mass failure, no healthy target).
    MigrationSuspended {
        /// Why.
        reason: String,
    },
    /// A session a worker reported running, with no dispatch record, was
    /// adopted: its active dispatch now names that worker.
    SessionAdopted {
        /// The session.
        session: SessionKey,
        /// The worker running it.
        worker: WorkerId,
    },
    /// A reservation on a worker that reported the session running was
    /// confirmed by that report (its allocator died or was late).
    ReservationAdopted {
        /// The session.
        session: SessionKey,
        /// The worker running it.
        worker: WorkerId,
    },
    /// A worker was told to stop a session it runs whose dispatch is on
    /// another worker (a duplicate).
    SessionStopped {
        /// The session.
        session: SessionKey,
        /// The worker told to stop it.
        worker: WorkerId,
        /// The worker its dispatch names.
        holder: WorkerId,
    },
    /// A session its worker no longer runs after a restart: the worker's
    /// report under a new boot id omits it, so its dispatch was released
    /// with the heartbeat that proved it (or by the next reconcile pass),
    /// freeing the slot. The student keeps the key: the next request
    /// places the session anew.
    SessionLost {
        /// The session (exam and student).
        session: SessionKey,
        /// The worker that restarted.
        worker: WorkerId,
        /// The boot the session was placed on (`None` when the dispatch
        /// did not record it).
        old_boot_id: Option<String>,
        /// The boot whose report proved it gone.
        new_boot_id: Option<String>,
    },
    /// A student's own end is near: the leader releases the desktop at
    /// `released_at` (the end plus the grace). Once per end of a student.
    SessionExpiring {
        /// The session (exam and student).
        session: SessionKey,
        /// The student's own end.
        ends_at: Timestamp,
        /// When the desktop is released.
        released_at: Timestamp,
    },
    /// A student's own end plus the grace passed: the leader released the
    /// desktop.
    SessionExpired {
        /// The session (exam and student).
        session: SessionKey,
        /// The student's own end.
        ends_at: Timestamp,
        /// The worker that held it.
        worker: WorkerId,
    },
    /// A student's lost time (the disruption ledger) reached a multiple
    /// of the alert threshold: once per crossing, written with the
    /// disruption that made it.
    SessionDisrupted {
        /// The session (exam and student).
        session: SessionKey,
        /// The student's lost time now, milliseconds.
        lost_ms: u64,
        /// The threshold, milliseconds.
        threshold_ms: u64,
        /// Which multiple of the threshold was reached (1 the first time).
        crossing: u64,
    },
    /// A reconcile pass finished.
    Reconciled {
        /// What it did.
        report: ReconcileReport,
    },
    /// A booked exam no longer fits the schedulable capacity (or its
    /// shortfall changed): emitted once per change.
    ExamAtRisk {
        /// The exam.
        exam: ExamId,
        /// Students that cannot be placed at the peak.
        shortfall: u32,
        /// The peak instant.
        peak_at: Timestamp,
    },
    /// A booked exam flagged at risk fits again.
    ExamFitsAgain {
        /// The exam.
        exam: ExamId,
    },
    // Prewarm progress of booked exams (timed prewarm and its target).
    /// A booked exam's prewarmed machines reached its target (readiness
    /// 100 %): emitted once per exam.
    ExamPrewarmReady {
        /// The exam.
        exam: ExamId,
        /// Machines ready.
        ready: u32,
        /// The prewarm target.
        target: u32,
    },
    /// A booked exam started with fewer machines ready than its target:
    /// emitted once, at its start.
    ExamPrewarmBehind {
        /// The exam.
        exam: ExamId,
        /// Machines ready.
        ready: u32,
        /// The prewarm target.
        target: u32,
    },
    /// A student waiting in an exam's queue was placed.
    QueuedSessionPlaced {
        /// The session.
        session: SessionKey,
        /// Where.
        worker: WorkerId,
    },
    /// An exam's waiting room formed: it reached the configured number
    /// of waiting students (the first, by default). Once per episode: the
    /// queue must empty before it is reported again.
    ExamQueueForming {
        /// The exam.
        exam: ExamId,
        /// Students waiting when it was observed.
        waiting: u32,
    },
    /// An exam's rehearsal (a whole run, or a worker's re-check) found
    /// failing workers: the exam leaves them out until a re-check passes.
    ExamRehearsalFailed {
        /// The exam.
        exam: ExamId,
        /// The rehearsal's run.
        run: u32,
        /// Whether the report is go (the exam fits without them).
        go: bool,
        /// The failing workers' checks.
        failing: Vec<crate::rehearsal::WorkerCheck>,
        /// Students the exam could not place at its peak without them.
        missing: u32,
    },
    /// The store failed the leader's steps for a while and answers again:
    /// written on recovery (the outbox lives in that store), with the
    /// outage as the leader saw it.
    BackendDegraded {
        /// The first failed step.
        since: Timestamp,
        /// The first step that succeeded again.
        until: Timestamp,
        /// Steps that failed in between.
        failures: u32,
        /// The last failure, for humans.
        last_error: String,
    },
    /// A webhook endpoint failed this many delivery attempts in a row.
    WebhookFailing {
        /// The endpoint's id.
        endpoint: String,
        /// Consecutive failed attempts.
        failures: u32,
        /// The last attempt's status or error.
        last_error: String,
    },
    /// The scale hook confirmed a capacity request: workers are starting
    /// for exams that would be short.
    CapacityRequested {
        /// The request's id.
        request: String,
        /// Slots missing.
        slots: u32,
        /// The exams that need them.
        exams: Vec<ExamId>,
        /// The workers the hook is starting.
        workers: Vec<WorkerId>,
        /// When they must have joined.
        deadline: Timestamp,
    },
    /// A capacity request's deadline passed before its workers joined:
    /// its exams are still short.
    CapacityMissing {
        /// The request's id.
        request: String,
        /// Slots missing.
        slots: u32,
        /// The exams that need them.
        exams: Vec<ExamId>,
        /// The workers named that have not joined.
        missing: Vec<WorkerId>,
    },
}

impl EventKind {
    /// The event's type as the API names it: `workerRegistered`,
    /// `sessionMigrated`, …
    pub fn name(&self) -> &'static str {
        match self {
            Self::WorkerRegistered { .. } => "workerRegistered",
            Self::WorkerRestarted { .. } => "workerRestarted",
            Self::WorkerAvailability { .. } => "workerAvailability",
            Self::WorkerPolicy { .. } => "workerPolicy",
            Self::WorkerFreezeOverridden { .. } => "workerFreezeOverridden",
            Self::WorkerScheduledDrainFailed { .. } => "workerScheduledDrainFailed",
            Self::WorkerRemoved { .. } => "workerRemoved",
            Self::SessionMigrated { .. } => "sessionMigrated",
            Self::MigrationFailed { .. } => "migrationFailed",
            Self::SessionsOrphaned { .. } => "sessionsOrphaned",
            Self::MigrationSuspended { .. } => "migrationSuspended",
            Self::SessionAdopted { .. } => "sessionAdopted",
            Self::ReservationAdopted { .. } => "reservationAdopted",
            Self::SessionStopped { .. } => "sessionStopped",
            Self::SessionLost { .. } => "sessionLost",
            Self::SessionExpiring { .. } => "sessionExpiring",
            Self::SessionExpired { .. } => "sessionExpired",
            Self::SessionDisrupted { .. } => "sessionDisrupted",
            Self::Reconciled { .. } => "reconciled",
            Self::ExamAtRisk { .. } => "examAtRisk",
            Self::ExamFitsAgain { .. } => "examFitsAgain",
            Self::ExamPrewarmReady { .. } => "examPrewarmReady",
            Self::ExamPrewarmBehind { .. } => "examPrewarmBehind",
            Self::QueuedSessionPlaced { .. } => "queuedSessionPlaced",
            Self::ExamQueueForming { .. } => "examQueueForming",
            Self::ExamRehearsalFailed { .. } => "examRehearsalFailed",
            Self::BackendDegraded { .. } => "backendDegraded",
            Self::WebhookFailing { .. } => "webhookFailing",
            Self::CapacityRequested { .. } => "capacityRequested",
            Self::CapacityMissing { .. } => "capacityMissing",
        }
    }
}

/// An event with its time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    /// When, on the control plane's clock.
    pub at: Timestamp,
    /// What.
    #[serde(flatten)]
    pub kind: EventKind,
}

/// Where events go. Must not block.
pub trait EventSink: Debug + Send + Sync + 'static {
    /// Delivers one event.
    fn emit(&self, event: &Event);
}

/// Writes every event to `tracing` at `info` (or `warn` for failures).
#[derive(Debug, Clone, Copy, Default)]
pub struct LogSink;

impl EventSink for LogSink {
    fn emit(&self, event: &Event) {
        let json = serde_json::to_string(&event.kind).unwrap_or_default();
        match &event.kind {
            EventKind::MigrationFailed { .. }
            | EventKind::SessionLost { .. }
            | EventKind::SessionsOrphaned { .. }
            | EventKind::MigrationSuspended { .. }
            | EventKind::ExamAtRisk { .. }
            | EventKind::ExamPrewarmBehind { .. }
            | EventKind::ExamRehearsalFailed { .. }
            | EventKind::BackendDegraded { .. }
            | EventKind::CapacityMissing { .. }
            | EventKind::WebhookFailing { .. } => {
                tracing::warn!(target: "vdi_cluster::events", event = %json, "cluster event")
            }
            _ => tracing::info!(target: "vdi_cluster::events", event = %json, "cluster event"),
        }
    }
}

/// Delivers each event to several sinks.
#[derive(Debug, Clone, Default)]
pub struct FanoutSink(pub Vec<Arc<dyn EventSink>>);

impl EventSink for FanoutSink {
    fn emit(&self, event: &Event) {
        for sink in &self.0 {
            sink.emit(event);
        }
    }
}

/// Keeps every event in memory (tests, the example's timeline).
#[derive(Debug, Clone, Default)]
pub struct RecordingSink(Arc<Mutex<Vec<Event>>>);

impl RecordingSink {
    /// Everything emitted so far.
    pub fn events(&self) -> Vec<Event> {
        self.0.lock().map(|v| v.clone()).unwrap_or_default()
    }

    /// Takes everything emitted so far.
    pub fn drain(&self) -> Vec<Event> {
        self.0
            .lock()
            .map(|mut v| std::mem::take(&mut *v))
            .unwrap_or_default()
    }
}

impl EventSink for RecordingSink {
    fn emit(&self, event: &Event) {
        if let Ok(mut v) = self.0.lock() {
            v.push(event.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_the_serialized_type_tag() {
        let w = WorkerId::parse("code", "w-1").unwrap();
        let s = SessionKey::parse("e", "u").unwrap();
        let kinds = [
            EventKind::WorkerRegistered { worker: w.clone() },
            EventKind::WorkerRestarted { worker: w.clone() },
            EventKind::WorkerAvailability {
                worker: w.clone(),
                from: Availability::Healthy,
                to: Availability::Offline,
                reason: String::new(),
            },
            EventKind::WorkerPolicy {
                worker: w.clone(),
                from: AdminPolicy::Active,
                to: AdminPolicy::Drained,
                actor: String::new(),
            },
            EventKind::WorkerRemoved { worker: w.clone() },
            EventKind::SessionMigrated {
                session: s.clone(),
                from: w.clone(),
                to: w.clone(),
            },
            EventKind::MigrationFailed {
                session: s.clone(),
                from: w.clone(),
                reason: String::new(),
            },
            EventKind::SessionLost {
                session: s.clone(),
                worker: w.clone(),
                old_boot_id: Some("b1".into()),
                new_boot_id: Some("b2".into()),
            },
            EventKind::SessionExpiring {
                session: s.clone(),
                ends_at: Timestamp(7),
                released_at: Timestamp(8),
            },
            EventKind::SessionExpired {
                session: s,
                ends_at: Timestamp(7),
                worker: w.clone(),
            },
            EventKind::ExamAtRisk {
                exam: ExamId::parse("examId", "e").unwrap(),
                shortfall: 3,
                peak_at: Timestamp(7),
            },
            EventKind::ExamFitsAgain {
                exam: ExamId::parse("examId", "e").unwrap(),
            },
            EventKind::SessionsOrphaned {
                worker: w,
                count: 1,
            },
            EventKind::MigrationSuspended {
                reason: String::new(),
            },
            EventKind::Reconciled {
                report: Default::default(),
            },
            EventKind::WebhookFailing {
                endpoint: "wh_1".into(),
                failures: 5,
                last_error: String::new(),
            },
        ];
        for kind in kinds {
            let json = serde_json::to_value(&kind).unwrap();
            assert_eq!(json["type"], kind.name());
        }
    }
}
