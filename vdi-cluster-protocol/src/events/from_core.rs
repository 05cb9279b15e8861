//! [`EventKindJson`] from core's [`EventKind`]: the one place a cluster
//! event becomes its wire body.

use vdi_cluster_core::EventKind;
use vdi_cluster_core::exam::format_rfc3339;

use super::*;

impl EventKindJson {
    /// The body of `kind`; `None` for a kind this version of the wire
    /// format does not know (core's `EventKind` is non-exhaustive).
    pub fn new(kind: &EventKind) -> Option<Self> {
        Some(match kind {
            EventKind::WorkerRegistered { worker } => Self::WorkerRegistered {
                worker: worker.to_string(),
            },
            EventKind::WorkerRestarted { worker } => Self::WorkerRestarted {
                worker: worker.to_string(),
            },
            EventKind::WorkerAvailability {
                worker,
                from,
                to,
                reason,
            } => Self::WorkerAvailability {
                worker: worker.to_string(),
                from: from.name().to_owned(),
                to: to.name().to_owned(),
                reason: reason.clone(),
            },
            EventKind::WorkerPolicy {
                worker,
                from,
                to,
                actor,
            } => Self::WorkerPolicy {
                worker: worker.to_string(),
                from: PolicyJson::from(from),
                to: PolicyJson::from(to),
                actor: actor.clone(),
            },
            EventKind::WorkerFreezeOverridden {
                worker,
                change,
                actor,
                reason,
                exams,
            } => Self::WorkerFreezeOverridden {
                worker: worker.to_string(),
                change: change.clone(),
                actor: actor.clone(),
                reason: reason.clone(),
                exam_ids: exams.iter().map(ToString::to_string).collect(),
            },
            EventKind::WorkerScheduledDrainFailed {
                worker,
                action,
                actor,
                reason,
                exams,
            } => Self::WorkerScheduledDrainFailed {
                worker: worker.to_string(),
                id: action.clone(),
                actor: actor.clone(),
                reason: reason.clone(),
                exam_ids: exams.iter().map(ToString::to_string).collect(),
            },
            EventKind::WorkerRemoved { worker } => Self::WorkerRemoved {
                worker: worker.to_string(),
            },
            EventKind::SessionMigrated { session, from, to } => Self::SessionMigrated {
                session: SessionRef::from(session),
                from: from.to_string(),
                to: to.to_string(),
            },
            EventKind::MigrationFailed {
                session,
                from,
                reason,
            } => Self::MigrationFailed {
                session: SessionRef::from(session),
                from: from.to_string(),
                reason: reason.clone(),
            },
            EventKind::SessionsOrphaned { worker, count } => Self::SessionsOrphaned {
                worker: worker.to_string(),
                count: *count,
            },
            EventKind::MigrationSuspended { reason } => Self::MigrationSuspended {
                reason: reason.clone(),
            },
            EventKind::SessionLost {
                session,
                worker,
                old_boot_id,
                new_boot_id,
            } => Self::SessionLost {
                session: SessionRef::from(session),
                worker: worker.to_string(),
                old_boot_id: old_boot_id.clone(),
                new_boot_id: new_boot_id.clone(),
            },
            EventKind::SessionExpiring {
                session,
                ends_at,
                released_at,
            } => Self::SessionExpiring {
                session: SessionRef::from(session),
                ends_at: format_rfc3339(*ends_at),
                released_at: format_rfc3339(*released_at),
            },
            EventKind::SessionExpired {
                session,
                ends_at,
                worker,
            } => Self::SessionExpired {
                session: SessionRef::from(session),
                ends_at: format_rfc3339(*ends_at),
                worker: worker.to_string(),
            },
            EventKind::SessionDisrupted {
                session,
                lost_ms,
                threshold_ms,
                crossing,
            } => Self::SessionDisrupted {
                session: SessionRef::from(session),
                lost_sec: vdi_cluster_core::ledger::seconds(*lost_ms),
                threshold_sec: vdi_cluster_core::ledger::seconds(*threshold_ms),
                crossing: *crossing,
            },
            EventKind::Reconciled { report } => Self::Reconciled {
                report: ReconcileReportJson::from(report),
            },
            EventKind::ExamAtRisk {
                exam,
                shortfall,
                peak_at,
            } => Self::ExamAtRisk {
                exam_id: exam.to_string(),
                shortfall: *shortfall,
                peak_at: format_rfc3339(*peak_at),
            },
            EventKind::ExamFitsAgain { exam } => Self::ExamFitsAgain {
                exam_id: exam.to_string(),
            },
            EventKind::ExamPrewarmReady {
                exam,
                ready,
                target,
            } => Self::ExamPrewarmReady {
                exam_id: exam.to_string(),
                ready: *ready,
                target: *target,
            },
            EventKind::ExamPrewarmBehind {
                exam,
                ready,
                target,
            } => Self::ExamPrewarmBehind {
                exam_id: exam.to_string(),
                ready: *ready,
                target: *target,
            },
            EventKind::QueuedSessionPlaced { session, worker } => Self::QueuedSessionPlaced {
                session: SessionRef::from(session),
                worker: worker.to_string(),
            },
            EventKind::ExamQueueForming { exam, waiting } => Self::ExamQueueForming {
                exam_id: exam.to_string(),
                waiting: *waiting,
            },
            EventKind::ExamRehearsalFailed {
                exam,
                run,
                go,
                failing,
                missing,
            } => Self::ExamRehearsalFailed {
                exam_id: exam.to_string(),
                run: *run,
                verdict: if *go { "go" } else { "noGo" }.to_owned(),
                failing: failing.iter().map(WorkerCheckJson::from).collect(),
                missing: *missing,
            },
            EventKind::BackendDegraded {
                since,
                until,
                failures,
                last_error,
            } => Self::BackendDegraded {
                since: since.as_millis(),
                until: until.as_millis(),
                failures: *failures,
                last_error: last_error.clone(),
            },
            EventKind::WebhookFailing {
                endpoint,
                failures,
                last_error,
            } => Self::WebhookFailing {
                webhook_id: endpoint.clone(),
                failures: *failures,
                last_error: last_error.clone(),
            },
            EventKind::CapacityRequested {
                request,
                slots,
                exams,
                workers,
                deadline,
            } => Self::CapacityRequested {
                request_id: request.clone(),
                slots: *slots,
                exam_ids: strings(exams),
                workers: strings(workers),
                deadline: format_rfc3339(*deadline),
            },
            EventKind::CapacityMissing {
                request,
                slots,
                exams,
                missing,
            } => Self::CapacityMissing {
                request_id: request.clone(),
                slots: *slots,
                exam_ids: strings(exams),
                missing: strings(missing),
            },
            _ => return None,
        })
    }
}

fn strings(ids: &[impl ToString]) -> Vec<String> {
    ids.iter().map(ToString::to_string).collect()
}
