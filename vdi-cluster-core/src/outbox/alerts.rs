//! Which events become webhooks, under which type name, and who receives
//! them.
//!
//! | type | when |
//! |---|---|
//! | `worker.registered` | a worker appeared |
//! | `worker.removed` | a worker deregistered or was removed |
//! | `worker.offline` | a worker that was reachable went silent past `WORKER_HEARTBEAT_TTL_SEC` (`unreachable`) or was judged `offline`; once per outage |
//! | `worker.unhealthy` | a worker crossed a resource threshold; `reason` names the metric and its value |
//! | `worker.recovered` | an unhealthy, unreachable or offline worker is healthy again |
//! | `worker.policy_changed` | drain, drained, disable or activate |
//! | `worker.freeze_overridden` | an operator forced a drain, disable, removal or credential change that the change freeze refused (who, why, the exams it hurts) |
//! | `worker.scheduled_drain_failed` | a drain scheduled for a time could not be carried out when due (the change freeze refused it: the exams that need the worker; or the worker was gone); the scheduled action is marked failed |
//! | `session.migrated` | a session moved off a failed worker (tell the student) |
//! | `session.migration_failed` | a session could not be moved off a failed worker |
//! | `session.lost` | a worker restarted (new boot id) and no longer runs the session: its slot was freed with the heartbeat that proved it (or by the next reconcile pass); the student's next request places it anew. Carries the worker, both boot ids and the session's exam and student; written with the release |
//! | `session.expiring` | a student's own end (the exam's `endsAt`, or later with an extension) is `session_expiry_warning` away (5 min): the desktop is released at `releasedAt`; once per end of a student |
//! | `session.expired` | a student's own end plus the grace passed: the leader released the desktop (the worker named); written ahead of the release, once |
//! | `session.disrupted` | a student's lost time in the disruption ledger reached `disruption_alert` (default 60 s), or a further multiple of it; once per crossing, written with the disruption that made it. Carries the session, the lost time and the threshold in milliseconds, and which multiple |
//! | `migration.manual_required` | the `manual` failure policy marked sessions orphaned: an operator must evacuate them; repeated every `manual_migration_remind` while they remain |
//! | `migration.suspended` | the mass-failure guard (or the lack of a healthy target) held migration back; once per episode (until a pass no longer holds it back) |
//! | `migration.summary` | a reconcile pass moved, failed to move or orphaned sessions of failed workers (the pass's report, with moved / failed / orphaned per exam) |
//! | `exam.at_risk` / `exam.fits_again` | a booked exam no longer fits the capacity, or fits again |
//! | `exam.prewarm_ready` | a booked exam's prewarmed machines reached its target; once |
//! | `exam.prewarm_behind` | a booked exam started with fewer machines ready than its target; once, at its start |
//! | `exam.queue_forming` | an exam's waiting room reached `queue_alert_at` students (the first, by default); once until it empties |
//! | `exam.rehearsal_failed` | an exam's rehearsal (a whole run, or a worker's re-check) found failing workers: which and why, whether the exam still fits without them (go or no-go) and how many students it would miss; written with the rehearsal's record |
//! | `capacity.requested` | the scale hook confirmed a capacity request for exams that would be short (the request, its slots, exams, workers and deadline) |
//! | `capacity.missing` | a capacity request's deadline passed before its workers joined; once per request |
//! | `backend.degraded` | the store failed the leader's steps and answers again: written on recovery, with the outage's start, end and failed steps (nothing can be written to an outbox in a store that is down) |
//! | `webhook.failing` | an endpoint failed [`RetryPolicy::failing_after`](super::RetryPolicy::failing_after) attempts in a row |

use crate::events::{Event, EventKind};
use crate::health::Availability;

use super::{OutboxEntry, WebhookEndpoint};

/// Every webhook type, as an endpoint's filter names them.
pub const WEBHOOK_TYPES: &[&str] = &[
    "worker.registered",
    "worker.removed",
    "worker.offline",
    "worker.unhealthy",
    "worker.recovered",
    "worker.policy_changed",
    "worker.freeze_overridden",
    "worker.scheduled_drain_failed",
    "session.migrated",
    "session.migration_failed",
    "session.lost",
    "session.expiring",
    "session.expired",
    "session.disrupted",
    "migration.manual_required",
    "migration.suspended",
    "migration.summary",
    "exam.at_risk",
    "exam.fits_again",
    "exam.prewarm_ready",
    "exam.prewarm_behind",
    "exam.queue_forming",
    "exam.rehearsal_failed",
    "capacity.requested",
    "capacity.missing",
    "backend.degraded",
    "webhook.failing",
];

/// The webhook type of an event, or `None` when it is not delivered by
/// webhook (log and events stream only).
pub fn webhook_type(kind: &EventKind) -> Option<&'static str> {
    use Availability::{Healthy, Offline, Unhealthy, Unreachable};
    Some(match kind {
        EventKind::WorkerRegistered { .. } => "worker.registered",
        EventKind::WorkerRemoved { .. } => "worker.removed",
        EventKind::WorkerAvailability { from, to, .. } => match (from, to) {
            (Unreachable | Offline, Unreachable | Offline) => return None,
            (_, Unreachable | Offline) => "worker.offline",
            (_, Unhealthy) => "worker.unhealthy",
            (Unhealthy | Unreachable | Offline, Healthy) => "worker.recovered",
            _ => return None,
        },
        EventKind::WorkerPolicy { .. } => "worker.policy_changed",
        EventKind::WorkerFreezeOverridden { .. } => "worker.freeze_overridden",
        EventKind::WorkerScheduledDrainFailed { .. } => "worker.scheduled_drain_failed",
        EventKind::SessionMigrated { .. } => "session.migrated",
        EventKind::MigrationFailed { .. } => "session.migration_failed",
        EventKind::SessionLost { .. } => "session.lost",
        EventKind::SessionExpiring { .. } => "session.expiring",
        EventKind::SessionExpired { .. } => "session.expired",
        EventKind::SessionDisrupted { .. } => "session.disrupted",
        EventKind::SessionsOrphaned { .. } => "migration.manual_required",
        EventKind::MigrationSuspended { .. } => "migration.suspended",
        EventKind::Reconciled { report }
            if report.migrated + report.migration_failed + report.orphaned > 0 =>
        {
            "migration.summary"
        }
        EventKind::ExamAtRisk { .. } => "exam.at_risk",
        EventKind::ExamFitsAgain { .. } => "exam.fits_again",
        EventKind::ExamPrewarmReady { .. } => "exam.prewarm_ready",
        EventKind::ExamPrewarmBehind { .. } => "exam.prewarm_behind",
        EventKind::ExamQueueForming { .. } => "exam.queue_forming",
        EventKind::ExamRehearsalFailed { .. } => "exam.rehearsal_failed",
        EventKind::CapacityRequested { .. } => "capacity.requested",
        EventKind::CapacityMissing { .. } => "capacity.missing",
        EventKind::BackendDegraded { .. } => "backend.degraded",
        EventKind::WebhookFailing { .. } => "webhook.failing",
        _ => return None,
    })
}

/// The entries of `event` for the endpoints that want it, each under a new
/// id from `new_id` and the de-duplication key `dedup`. An endpoint never
/// receives its own `webhook.failing`.
pub fn route(
    event: &Event,
    dedup: &str,
    endpoints: &[WebhookEndpoint],
    mut new_id: impl FnMut() -> String,
) -> Vec<OutboxEntry> {
    let Some(kind) = webhook_type(&event.kind) else {
        return Vec::new();
    };
    let about = match &event.kind {
        EventKind::WebhookFailing { endpoint, .. } => Some(endpoint.as_str()),
        _ => None,
    };
    endpoints
        .iter()
        .filter(|e| e.wants(kind) && about != Some(e.id.as_str()))
        .map(|e| OutboxEntry {
            id: new_id(),
            endpoint: e.id.clone(),
            dedup: dedup.to_owned(),
            event: event.clone(),
        })
        .collect()
}

/// The de-duplication key of an occurrence a leader observed from the
/// store's records: `{type}:{subject}:{episode}`, the same on every
/// replica that observes it, so a second leader does not write it again.
/// The subject is the worker, session or exam the event is about
/// (`cluster` for the cluster as a whole); `episode` names the occurrence
/// (the worker's last heartbeat time for health transitions, the time a
/// mark was set on the calendar, a reconcile pass's start, …). `None` for
/// an event that is not a webhook type.
pub fn observed_key(kind: &EventKind, episode: impl std::fmt::Display) -> Option<String> {
    let name = webhook_type(kind)?;
    let subject = match kind {
        EventKind::WorkerAvailability { worker, .. }
        | EventKind::WorkerRegistered { worker }
        | EventKind::WorkerRemoved { worker }
        | EventKind::WorkerPolicy { worker, .. }
        | EventKind::WorkerFreezeOverridden { worker, .. }
        | EventKind::WorkerScheduledDrainFailed { worker, .. }
        | EventKind::SessionsOrphaned { worker, .. } => worker.to_string(),
        EventKind::SessionMigrated { session, .. }
        | EventKind::MigrationFailed { session, .. }
        | EventKind::SessionLost { session, .. }
        | EventKind::SessionExpiring { session, .. }
        | EventKind::SessionExpired { session, .. }
        | EventKind::SessionDisrupted { session, .. } => session.to_string(),
        EventKind::ExamAtRisk { exam, .. }
        | EventKind::ExamFitsAgain { exam }
        | EventKind::ExamPrewarmReady { exam, .. }
        | EventKind::ExamPrewarmBehind { exam, .. }
        | EventKind::ExamQueueForming { exam, .. }
        | EventKind::ExamRehearsalFailed { exam, .. } => exam.to_string(),
        EventKind::WebhookFailing { endpoint, .. } => endpoint.clone(),
        EventKind::CapacityRequested { request, .. }
        | EventKind::CapacityMissing { request, .. } => request.clone(),
        _ => "cluster".to_owned(),
    };
    Some(format!("{name}:{subject}:{episode}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::WorkerId;
    use crate::time::Timestamp;

    fn availability(from: Availability, to: Availability) -> EventKind {
        EventKind::WorkerAvailability {
            worker: WorkerId::parse("code", "w-1").unwrap(),
            from,
            to,
            reason: String::new(),
        }
    }

    #[test]
    fn availability_transitions_map_to_skypanel_alerts() {
        use Availability::*;
        let t = |from, to| webhook_type(&availability(from, to));
        assert_eq!(t(Healthy, Unreachable), Some("worker.offline"));
        assert_eq!(t(Unhealthy, Offline), Some("worker.offline"));
        assert_eq!(t(Unreachable, Offline), None, "one alert per outage");
        assert_eq!(t(Healthy, Unhealthy), Some("worker.unhealthy"));
        assert_eq!(t(Unreachable, Healthy), Some("worker.recovered"));
        assert_eq!(t(Unhealthy, Healthy), Some("worker.recovered"));
        assert_eq!(t(Pending, Healthy), None);
    }

    #[test]
    fn every_type_is_listed() {
        use Availability::*;
        let exam = crate::ids::ExamId::parse("examId", "math").unwrap();
        let kinds = [
            availability(Healthy, Offline),
            availability(Healthy, Unhealthy),
            availability(Offline, Healthy),
            EventKind::WebhookFailing {
                endpoint: "wh_1".into(),
                failures: 5,
                last_error: String::new(),
            },
            EventKind::ExamPrewarmBehind {
                exam: exam.clone(),
                ready: 1,
                target: 2,
            },
            EventKind::ExamPrewarmReady {
                exam: exam.clone(),
                ready: 2,
                target: 2,
            },
            EventKind::ExamQueueForming {
                exam: exam.clone(),
                waiting: 1,
            },
            EventKind::WorkerFreezeOverridden {
                worker: WorkerId::parse("code", "w-1").unwrap(),
                change: "drain".into(),
                actor: "admin".into(),
                reason: "kernel patch".into(),
                exams: vec![exam.clone()],
            },
            EventKind::CapacityRequested {
                request: "cap-math-1".into(),
                slots: 4,
                exams: vec![exam.clone()],
                workers: vec![WorkerId::parse("code", "cap-1").unwrap()],
                deadline: Timestamp(1),
            },
            EventKind::CapacityMissing {
                request: "cap-math-1".into(),
                slots: 4,
                exams: vec![exam],
                missing: Vec::new(),
            },
            EventKind::WorkerScheduledDrainFailed {
                worker: WorkerId::parse("code", "w-1").unwrap(),
                action: "sa_1".into(),
                actor: "admin".into(),
                reason: "change freeze".into(),
                exams: Vec::new(),
            },
            EventKind::SessionLost {
                session: crate::ids::SessionKey::parse("math", "u1").unwrap(),
                worker: WorkerId::parse("code", "w-1").unwrap(),
                old_boot_id: None,
                new_boot_id: Some("b2".into()),
            },
            EventKind::SessionDisrupted {
                session: crate::ids::SessionKey::parse("math", "u1").unwrap(),
                lost_ms: 61_000,
                threshold_ms: 60_000,
                crossing: 1,
            },
            EventKind::BackendDegraded {
                since: Timestamp(1),
                until: Timestamp(2),
                failures: 1,
                last_error: String::new(),
            },
        ];
        for k in kinds {
            assert!(WEBHOOK_TYPES.contains(&webhook_type(&k).unwrap()));
        }
    }

    #[test]
    fn routing_filters_and_skips_the_failing_endpoint_itself() {
        let ep = |id: &str, types: &[&str]| WebhookEndpoint {
            id: id.into(),
            url: "http://h/".into(),
            types: types.iter().map(|t| (*t).to_owned()).collect(),
            description: None,
            secret: "whsec_x".into(),
            created_at: Timestamp(0),
        };
        let endpoints = [
            ep("a", &[]),
            ep("b", &["worker.recovered"]),
            ep("c", &["webhook.failing"]),
        ];
        let offline = Event {
            at: Timestamp(1),
            kind: availability(Availability::Healthy, Availability::Offline),
        };
        let mut n = 0;
        let entries = route(&offline, "k", &endpoints, || {
            n += 1;
            format!("msg_{n}")
        });
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].endpoint, "a");
        let failing = Event {
            at: Timestamp(1),
            kind: EventKind::WebhookFailing {
                endpoint: "c".into(),
                failures: 5,
                last_error: String::new(),
            },
        };
        let to: Vec<_> = route(&failing, "k", &endpoints, || "m".into())
            .into_iter()
            .map(|e| e.endpoint)
            .collect();
        assert_eq!(to, vec!["a".to_owned()]);
        assert_eq!(
            observed_key(&offline.kind, 42).as_deref(),
            Some("worker.offline:w-1:42")
        );
    }
}
