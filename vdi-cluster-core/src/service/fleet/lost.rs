//! Sessions a restarted worker no longer runs: released in the same atomic
//! step as the heartbeat that proves them lost (the record's
//! compare-and-set), and by reconcile for any a bounded step left over.
//! [`fleet::lost_sessions`] decides; this applies, with a `sessionLost`
//! event per released session, its webhook entries written with the
//! release, and, for a booked exam's student, its `workerRestarted`
//! interruption opened with it (the disruption ledger's entry is written
//! when the student is placed again).

use super::Fleet;
use super::heartbeat::CAS_ATTEMPTS;
use crate::dispatch::Dispatch;
use crate::error::Result;
use crate::events::EventKind;
use crate::fleet::{self, MAX_LOST_PER_STEP};
use crate::ids::{SessionKey, WorkerId};
use crate::outbox::LostRelease;
use crate::worker::WorkerRecord;

/// The `sessionLost` event of `d`, proven lost by `record`'s report.
fn lost_event(d: &Dispatch, record: &WorkerRecord) -> EventKind {
    EventKind::SessionLost {
        session: d.key.clone(),
        worker: record.id.clone(),
        old_boot_id: d.worker_boot_id.clone(),
        new_boot_id: record.boot_id().map(str::to_owned),
    }
}

impl Fleet {
    /// Writes `record` on version `expected` with the entries of `events`,
    /// releasing `lost` (its dispatches its report proves lost) in the
    /// same atomic step, and announces the sessions released. The caller
    /// counts them.
    pub(crate) async fn write_releasing_lost(
        &self,
        record: &WorkerRecord,
        expected: u64,
        events: &[&EventKind],
        lost: &[Dispatch],
    ) -> Result<LostRelease> {
        // A booked exam's student is followed into the ledger: the release
        // opens their `workerRestarted` interruption.
        let calendar = match lost.is_empty() {
            true => None,
            false => Some(self.placement.cached_calendar().await?),
        };
        let booked = |d: &Dispatch| {
            calendar
                .as_ref()
                .is_some_and(|c| c.get(&d.key.exam_id).is_some())
        };
        let items: Vec<(&Dispatch, EventKind, bool)> = lost
            .iter()
            .map(|d| (d, lost_event(d, record), booked(d)))
            .collect();
        let written = self
            .shared
            .put_worker_releasing_lost(record, expected, events, &items)
            .await?;
        if let LostRelease::Written { released, .. } = &written {
            self.announce_lost(&items, released);
        }
        Ok(written)
    }

    fn announce_lost(&self, items: &[(&Dispatch, EventKind, bool)], released: &[SessionKey]) {
        if released.is_empty() {
            return;
        }
        for (d, kind, _) in items.iter().filter(|(d, ..)| released.contains(&d.key)) {
            tracing::info!(session = %d.key, worker = %d.worker, "a restarted worker no longer runs the session: its slot is free");
            self.shared.emit(kind.clone());
        }
        self.placement.invalidate_snapshot();
    }

    /// Reconcile's part: releases the dispatches among `candidates` (read
    /// on `worker` by a pass) that the worker's latest stored report proves
    /// lost, in bounded steps, each a compare-and-set on the record as
    /// read (rewritten unchanged), so a late step of a deposed leader
    /// writes nothing a newer report contradicts. Answers how many were
    /// released.
    pub(crate) async fn release_lost(
        &self,
        worker: &WorkerId,
        candidates: &[Dispatch],
    ) -> Result<u32> {
        let mut released = 0u32;
        for chunk in candidates.chunks(MAX_LOST_PER_STEP) {
            for _ in 0..CAS_ATTEMPTS {
                let Some(stored) = self.shared.store.worker(worker).await? else {
                    return Ok(released);
                };
                let lost: Vec<Dispatch> = fleet::lost_sessions(chunk, &stored.record, chunk.len())
                    .into_iter()
                    .cloned()
                    .collect();
                if lost.is_empty() {
                    break;
                }
                match self
                    .write_releasing_lost(&stored.record, stored.version, &[], &lost)
                    .await?
                {
                    LostRelease::Written { released: keys, .. } => {
                        released += u32::try_from(keys.len()).unwrap_or(u32::MAX);
                        break;
                    }
                    LostRelease::Conflict { .. } => continue,
                }
            }
        }
        Ok(released)
    }
}
