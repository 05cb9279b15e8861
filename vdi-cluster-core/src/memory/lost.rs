//! A restarted worker's lost sessions on the in-memory backend: the
//! record's compare-and-set and the removals, under the store's one lock
//! ([`Outbox::put_worker_releasing_lost`](crate::outbox::Outbox::put_worker_releasing_lost)).

use super::State;
use crate::outbox::{LostDispatch, LostRelease, OutboxEntry};
use crate::store::CasOutcome;
use crate::worker::WorkerRecord;

impl State {
    /// Writes `record` on version `expected` with `entries`, then removes
    /// each of `lost` still stored under its id on `record`'s worker, with
    /// its counters and its entries. Nothing on a conflict.
    pub(super) fn put_worker_releasing_lost(
        &mut self,
        record: &WorkerRecord,
        expected: u64,
        entries: &[OutboxEntry],
        lost: &[LostDispatch],
    ) -> LostRelease {
        let version = match self.put_worker(record, Some(expected), None) {
            CasOutcome::Written { version } => version,
            CasOutcome::Conflict { current } => return LostRelease::Conflict { current },
        };
        self.outbox.enqueue(entries);
        let mut released = Vec::new();
        for l in lost {
            let here = self
                .dispatches
                .get(&l.key)
                .is_some_and(|d| d.id == l.id && d.worker == record.id);
            if here && self.remove_dispatch(&l.key).is_some() {
                self.outbox.enqueue(&l.entries);
                if let Some(open) = &l.interruption {
                    self.ledger.open(open);
                }
                released.push(l.key.clone());
            }
        }
        LostRelease::Written { version, released }
    }
}
