//! The placement wing: where a student's session goes.
//!
//! The session API enters at [`Placement::request_session`] (`request`):
//! a booked exam with its waiting room on may queue the student, anything
//! else is [`Placement::allocate`] (`allocate`: rank, compare-and-reserve,
//! start on the worker — `start` — confirm, with failover), which judges
//! a dispatch the reservation answers in `existing`; with paced starts,
//! `pacing` takes each start's permit (its limit from the inputs this
//! replica keeps, `limits`) and answers a student whose start waits
//! before the desktop is up. `release` ends a
//! session, `promote` places the head of an exam's waiting room when a
//! slot frees (the waiting room's claim).
//!
//! **Owns** this replica's ranking snapshot (`snapshot`) and its placement
//! hints and cached calendar (`hints`): they order candidates and tell
//! whether an exam queues; compare-and-reserve has the last word.
//!
//! **Writes** through [`DispatchStore`](crate::store::DispatchStore)
//! (reserve, confirm, undo, release, adopt), the confirmation of a
//! re-dispatch with its outbox entry
//! ([`Outbox`](crate::outbox::Outbox)), and the waiting room's enqueue,
//! claim and completion ([`WaitingRoom`](crate::waiting_room::WaitingRoom)),
//! and start permits ([`StartPermits`](crate::pacing::StartPermits)).
//!
//! **Keeps** invariants A (no over-allocation: only compare-and-reserve
//! takes a slot), B (one dispatch per session: duplicates coalesce on the
//! one in flight) and E (the waiting room: a new arrival never overtakes
//! one queued earlier; the head is placed under a fenced claim) and F (no
//! start without its worker's permit, when starts are paced).

mod allocate;
mod allocation;
mod attempt;
mod excluded;
mod existing;
mod hints;
mod limits;
mod open;
mod pacing;
mod promote;
mod release;
mod request;
mod snapshot;
mod start;

use std::sync::Arc;

pub use allocation::{AllocateOutcome, Allocation};
pub use pacing::StartPacing;
pub use request::{Departure, QueueStanding, SessionRequest, SessionState, Starting};

use super::shared::Shared;
use excluded::Excluded;
use hints::Hints;
use limits::StartInputs;
use snapshot::SnapshotCache;

/// The placement wing (see the module docs); reached through
/// `ClusterService::placement`.
#[derive(Debug)]
pub struct Placement {
    shared: Arc<Shared>,
    snapshots: SnapshotCache,
    /// Placement hints and the calendar, as this replica last read them.
    hints: Hints,
    /// The workers each booked exam's rehearsal left out, as last read.
    excluded: Excluded,
    /// Each worker's last starts, the inputs of its start limit, as this
    /// replica last read or made them.
    start_inputs: StartInputs,
}

impl Placement {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Self {
            shared,
            snapshots: SnapshotCache::default(),
            hints: Hints::default(),
            excluded: Excluded::default(),
            start_inputs: StartInputs::default(),
        }
    }
}
