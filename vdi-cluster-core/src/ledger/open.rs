//! Interruptions a student is still in: begun by one write (a refusal, a
//! restarted worker's heartbeat releasing the session), ended by the
//! placement that gives the student a desktop again, which writes their
//! entry with its confirmation.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Disruption, DisruptionKind};
use crate::dispatch::Dispatch;
use crate::ids::{SessionKey, WorkerId};
use crate::time::Timestamp;

/// An open interruption older than this (6 hours, the stale cleanup's
/// age) is no longer counted by the placement that finds it: the student
/// did not come back to that exam.
pub const OPEN_MAX_AGE: Duration = Duration::from_secs(21_600);

/// An interruption that began and has not ended: the student has no
/// desktop since `since`. Stored per session and kind, the first one kept
/// ([`DisruptionLedger::open_interruption`](super::DisruptionLedger::open_interruption)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OpenInterruption {
    /// The session.
    pub key: SessionKey,
    /// Why: `refused`, `workerRestarted` or `waitingRoom`.
    pub kind: DisruptionKind,
    /// Since when.
    pub since: Timestamp,
    /// The workers involved so far (the restarted worker; none for a
    /// refusal).
    pub workers: Vec<WorkerId>,
    /// What began it (a refusal's id, the dispatch released): the id of
    /// the entry that ends it, so a placement that writes it twice stores
    /// it once.
    pub cause: String,
}

impl OpenInterruption {
    /// A refusal of `key`'s session at `now`, under a fresh cause.
    pub fn refused(key: SessionKey, now: Timestamp) -> Self {
        Self {
            key,
            kind: DisruptionKind::Refused,
            since: now,
            workers: Vec::new(),
            cause: format!("refusal_{}", uuid::Uuid::new_v4().simple()),
        }
    }

    /// A session `lost` on its worker, which restarted without it: the
    /// student is without a desktop since the control plane first heard
    /// the new boot (`boot_seen_at`, else `now`).
    pub fn restarted(lost: &Dispatch, boot_seen_at: Option<Timestamp>, now: Timestamp) -> Self {
        Self {
            key: lost.key.clone(),
            kind: DisruptionKind::WorkerRestarted,
            since: boot_seen_at.unwrap_or(now).max(lost.reserved_at).min(now),
            workers: vec![lost.worker.clone()],
            cause: lost.id.to_string(),
        }
    }

    /// A student who joined the waiting room at `enqueued_at`.
    pub fn queued(key: SessionKey, enqueued_at: Timestamp) -> Self {
        Self {
            key,
            kind: DisruptionKind::WaitingRoom,
            since: enqueued_at,
            workers: Vec::new(),
            cause: format!("queued_{}", enqueued_at.as_millis()),
        }
    }

    /// Whether the placement at `now` still counts it (younger than
    /// [`OPEN_MAX_AGE`]).
    pub fn current(&self, now: Timestamp) -> bool {
        now.since(self.since) < OPEN_MAX_AGE
    }

    /// The entry that ends it with the confirmation of `active` at `now`,
    /// counted from `not_before` at the earliest (the exam's start: time
    /// before it is no exam time lost); `None` when that leaves nothing.
    pub fn close(
        &self,
        active: &Dispatch,
        now: Timestamp,
        not_before: Option<Timestamp>,
    ) -> Option<Disruption> {
        let since = not_before.map_or(self.since, |t| self.since.max(t));
        if since >= now {
            return None;
        }
        let mut workers = self.workers.clone();
        workers.push(active.worker.clone());
        Some(Disruption::new(
            active.key.clone(),
            self.kind,
            since,
            now,
            workers,
            &self.cause,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn active(at: u64) -> Dispatch {
        let key = SessionKey::parse("e1", "u1").unwrap();
        let worker = WorkerId::parse("code", "w2").unwrap();
        Dispatch::reserve(key, worker, Timestamp(at), None, None)
    }

    #[test]
    fn a_wait_before_the_exam_starts_costs_nothing() {
        let key = SessionKey::parse("e1", "u1").unwrap();
        let open = OpenInterruption::queued(key, Timestamp(1_000));
        let d = active(9_000);
        assert_eq!(
            open.close(&d, Timestamp(9_000), Some(Timestamp(9_500))),
            None
        );
        let entry = open
            .close(&d, Timestamp(9_000), Some(Timestamp(4_000)))
            .unwrap();
        assert_eq!(
            (entry.started_at, entry.span_ms()),
            (Timestamp(4_000), 5_000)
        );
        assert_eq!(entry.kind, DisruptionKind::WaitingRoom);
        assert_eq!(entry.id, "waitingRoom:queued_1000");
        let whole = open.close(&d, Timestamp(9_000), None).unwrap();
        assert_eq!(whole.span_ms(), 8_000);
    }

    #[test]
    fn a_restart_counts_from_the_new_boot() {
        let lost = active(1_000);
        let open = OpenInterruption::restarted(&lost, Some(Timestamp(5_000)), Timestamp(6_000));
        assert_eq!(open.since, Timestamp(5_000));
        assert_eq!(open.cause, lost.id.to_string());
        assert!(open.current(Timestamp(6_000)));
        assert!(!open.current(Timestamp(5_000).plus(OPEN_MAX_AGE)));
    }
}
