//! The storage traits every backend implements.
//!
//! A backend stores and performs atomic steps; it never decides. Scheduling,
//! health and drain decisions are made in this crate and handed to the
//! backend as values to write. The traits are object safe (`#[async_trait]`)
//! so a server can hold an `Arc<dyn Store>`.
//!
//! # Contract
//!
//! Every implementation guarantees, for any number of handles (processes,
//! connections, replicas) sharing one storage:
//!
//! * **Compare-and-reserve is atomic.** [`DispatchStore::reserve`] reads the
//!   target worker's `max_sessions`, `unrecorded`, `accepting` flag and
//!   dispatched count, and the session's existing dispatch, and writes the
//!   reservation, the per-worker count and the per-exam affinity count, as
//!   one indivisible step. It never reserves on a worker whose
//!   `dispatched + unrecorded >= max_sessions`, or that is not accepting,
//!   as last recorded (invariant A); never creates a second dispatch for a
//!   session (invariant B). Asked for a start permit
//!   ([`ReserveRequest::permit`]), it grants one in the same step when one
//!   is free; [`DispatchStore::confirm`] and [`DispatchStore::undo`] give
//!   it back in theirs ([`StartPermits`]'s contract).
//! * **A held slot stays held.** [`DispatchStore::undo`] and
//!   [`DispatchStore::release`] take `hold: Option<&WorkerId>`: the worker
//!   that may still run the session although its record goes (the call
//!   that should have started or stopped it failed or timed out). When the
//!   removal happens, in the same atomic step, that worker's `unrecorded`
//!   count grows by one and its record version is bumped, so the slot stays
//!   in use until the worker's next report says what it runs, and a
//!   heartbeat computed before the removal fails its compare-and-set instead
//!   of overwriting the count. [`Registry::put_worker`] stores
//!   [`WorkerRecord::unrecorded`] beside the record (it is not serialised in
//!   it) and every read returns the stored count in that field.
//! * **Counters never drift.** Every step that adds or removes a dispatch
//!   record updates the worker's dispatched count and the exam's affinity
//!   count in the same atomic step (invariant C). [`DispatchStore::recount`]
//!   checks and repairs each counter atomically with respect to those steps.
//! * **Adoption is atomic.** [`DispatchStore::adopt`] checks that the
//!   session has no dispatch and the worker is registered, and writes the
//!   active dispatch with the per-worker count, the per-exam affinity count
//!   and the exam's sticky worker, as one indivisible step: it never creates
//!   a second dispatch for a session (invariant B) and keeps every counter
//!   equal to a recount (invariant C). It checks no capacity: the session
//!   already runs on the worker, whose own report counts it. The dispatch
//!   is stored as given, its [`adopted`](crate::Dispatch::adopted) mark
//!   included, and every read returns the mark; a reservation that
//!   supersedes it is stored as given too, so a placement's dispatch never
//!   carries the mark of the one it replaced.
//! * **Reconcile's writes are fenced.** [`DispatchStore::undo`],
//!   [`DispatchStore::release`] and [`DispatchStore::mark_orphaned`] take a
//!   `fence: Option<&Lease>`. With `Some(lease)`, the backend checks that
//!   the lease `lease.name` is held, unexpired on the storage's clock, by
//!   `lease.holder` under `lease.token`, in the same atomic step as the
//!   write; otherwise it writes nothing and answers
//!   [`Error::Fenced`](crate::Error::Fenced). A deposed leader's late write
//!   is refused. `None` writes unfenced (allocation, a student's release).
//! * **Scans page by position.** [`DispatchStore::scan_dispatches`] orders
//!   the dispatches by a position the backend derives from each dispatch
//!   and that does not change while that dispatch (its id) exists — the
//!   session key in memory and PostgreSQL, the worker and the session key
//!   in Redis — and a page's cursor names the last position it returned:
//!   the next page starts strictly after it. A cursor is a position, not
//!   state kept by the storage: it never expires, and any handle reads it.
//!   So a walk from `None` until `next` is `None`, resumed from its cursor
//!   on any handle and at any later time, returns every dispatch that
//!   exists throughout the walk exactly once, and no dispatch twice; one
//!   added or removed during the walk (a supersede removes one and adds
//!   another) may or may not be returned. A cursor the backend cannot
//!   read is [`Error::Invalid`].
//! * **A lease keeps its holder's checkpoint.** [`LeaderLease::save_checkpoint`]
//!   writes the text beside the lease, fenced by it like reconcile's
//!   writes: only while the lease is held, unexpired, by its holder under
//!   its token, checked in the same atomic step as the write. The text
//!   outlives the lease (its expiry, its release, a new holder), and every
//!   handle reads the last one written ([`LeaderLease::checkpoint`]).
//! * **Compare-and-set on worker records.** [`Registry::put_worker`] writes
//!   only if the stored version is the expected one, and bumps it. It never
//!   touches the dispatched count.
//! * **Policy writes that need an empty worker exclude reservations.**
//!   [`Registry::put_worker_if_dispatched`] compares the version **and** the
//!   worker's dispatched count and writes the record, as one indivisible
//!   step that is serialised with compare-and-reserve (and adoption) on the
//!   same worker: a reservation either lands before the write — then the
//!   count differs and nothing is written — or after it, and then it reads
//!   the written `accepting` flag. Core uses it for the transitions it chose
//!   because the worker was empty (to `drained`, or to `disabled` without
//!   force), so a transition that reports success leaves no dispatch on the
//!   worker and no reservation lands after it.
//! * **Unavailability is typed.** When the storage cannot be reached, every
//!   method returns [`Error::Unavailable`](crate::Error::Unavailable) within
//!   the backend's configured timeout; nothing panics, and the handle works
//!   again once the storage is back.

use std::fmt::Debug;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::credential::{CredentialSnapshot, WorkerCredential};
use crate::dispatch::Dispatch;
use crate::error::{Error, Result};
use crate::ids::{DispatchId, ExamId, SessionKey, WorkerId};
use crate::operator_session::OperatorSession;
use crate::pacing::{PermitRequest, PermitReturn};
use crate::page::{Page, Paged};
use crate::time::Timestamp;
use crate::worker::{WorkerRecord, WorkerSnapshot};

mod credentials;
mod lane;

pub use credentials::{ClaimOutcome, Credentials, JoinClaim, JoinToken};
pub use lane::Lane;

pub use crate::calendar::{CalendarWrite, ExamCalendar, ExamStore};
pub use crate::ledger::DisruptionLedger;
pub use crate::outbox::{LostDispatch, LostRelease, Outbox};
pub use crate::pacing::StartPermits;
pub use crate::reconcile::{Counter, Drift};
pub use crate::rehearsal::Rehearsals;
pub use crate::scale::{CapacityRequests, StoredCapacityRequest};
pub use crate::scheduled::{ScheduledActions, ScheduledSnapshot};
pub use crate::scheduler::ExamPlacement;
pub use crate::waiting_room::{Completion, Enqueued, Standing, WaitingRoom};

/// Outcome of a compare-and-set write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CasOutcome {
    /// Written; the record now has this version.
    Written {
        /// New version.
        version: u64,
    },
    /// The stored version was not the expected one; nothing was written.
    Conflict {
        /// The stored version (`None`: no record).
        current: Option<u64>,
    },
}

/// Outcome of [`Registry::delete_worker`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteOutcome {
    /// The record is gone.
    Deleted,
    /// The stored version was not the expected one.
    Conflict,
    /// Dispatch records still point at the worker; nothing was deleted.
    HasDispatches(u32),
}

/// The registry of worker nodes.
#[async_trait]
pub trait Registry: Debug + Send + Sync + 'static {
    /// Checks that the storage answers a real read of the data an
    /// allocation reads (not only that a connection is open): a store whose
    /// tables are locked or whose data cannot be read fails here, within
    /// the store's own call timeout.
    async fn ping(&self) -> Result<()>;

    /// The store node serving writes now, when the backend follows a
    /// primary that can move (Redis through Sentinel): its `host:port`, for
    /// readiness and the operators. `None` for a backend on one fixed
    /// server or in memory.
    fn primary(&self) -> Option<String> {
        None
    }

    /// One worker, with its version and dispatched count.
    async fn worker(&self, id: &WorkerId) -> Result<Option<WorkerSnapshot>>;

    /// Every worker, in any order.
    async fn workers(&self) -> Result<Vec<WorkerSnapshot>>;

    /// Writes `record` if the stored version equals `expected` (`None`:
    /// only if no record exists). Leaves the dispatched count alone.
    async fn put_worker(&self, record: &WorkerRecord, expected: Option<u64>) -> Result<CasOutcome>;

    /// Writes `record` if the stored version equals `expected` **and** the
    /// worker's dispatched count equals `dispatched`, both checked in the
    /// same atomic step as the write and as compare-and-reserve (see the
    /// module's contract). Otherwise nothing is written and the answer is
    /// [`CasOutcome::Conflict`] with the stored version. Leaves the
    /// dispatched count alone.
    async fn put_worker_if_dispatched(
        &self,
        record: &WorkerRecord,
        expected: u64,
        dispatched: u32,
    ) -> Result<CasOutcome>;

    /// Deletes the record if its version is `expected` and no dispatch
    /// record points at it.
    async fn delete_worker(&self, id: &WorkerId, expected: u64) -> Result<DeleteOutcome>;
}

/// A compare-and-reserve request.
#[derive(Debug, Clone, PartialEq)]
pub struct ReserveRequest {
    /// The new dispatch, in state [`Reserved`](crate::DispatchState::Reserved),
    /// naming the target worker.
    pub dispatch: Dispatch,
    /// Replace the session's existing dispatch if it has this id and sits on
    /// another worker (re-dispatch away from a failed worker). The old
    /// record and its counters are removed in the same atomic step. If the
    /// session has no dispatch any more, nothing is written
    /// ([`Reservation::Ended`]): a move never brings back a session that
    /// was released since it was read.
    pub supersede: Option<DispatchId>,
    /// Take a start permit of the worker under the new dispatch's id in the
    /// same atomic step, when one is free and nobody waits for one (see
    /// [`StartPermits`]'s contract); `None` when starts are not paced.
    pub permit: Option<PermitRequest>,
}

/// Answer of a compare-and-reserve.
// One value per allocation, moved once and never stored in bulk: boxing the
// dispatch would only add an allocation to the hot path.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Reservation {
    /// The slot is reserved.
    Reserved {
        /// The stored reservation.
        dispatch: Dispatch,
        /// The dispatch it replaced, if `supersede` matched.
        superseded: Option<Dispatch>,
        /// The worker's free slots left just after this reservation, as
        /// the store counts them (its maximum less its dispatches and
        /// unrecorded sessions): at 0 the allocator knows the worker is
        /// full before another reservation is refused there.
        slots_left: u32,
        /// The start permit asked for with it, when granted: the permits
        /// held on the worker now, this one included. `None` when none
        /// was asked for or none was free.
        permit: Option<u32>,
    },
    /// The session already has a dispatch (and it was not superseded).
    Existing(Dispatch),
    /// The request named a dispatch to supersede, and the session has none:
    /// it ended (was released) since that dispatch was read. Nothing was
    /// written.
    Ended,
    /// The worker has no free slot.
    Full,
    /// The worker is unknown, deregistered or its policy refuses new
    /// sessions.
    NotAccepting,
}

/// Answer of [`DispatchStore::adopt`].
// One value per adoption, moved once: see `Reservation`.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Adoption {
    /// The dispatch is written, with its counters.
    Adopted(Dispatch),
    /// The session already has a dispatch; nothing was written.
    Existing(Dispatch),
    /// The worker is not registered; nothing was written.
    UnknownWorker,
}

/// One page of a dispatch scan.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DispatchPage {
    /// Dispatches in this page, in the backend's order (a walk never
    /// returns one twice: see the module's contract).
    pub dispatches: Vec<Dispatch>,
    /// Cursor of the next page (the position of this page's last entry);
    /// `None` when the scan is complete.
    pub next: Option<String>,
}

/// What a recount found.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecountReport {
    /// Counters checked: every counter that exists or that a dispatch record
    /// says should exist.
    pub counters_checked: u64,
    /// Counters that were wrong (repaired when asked to).
    pub drift: Vec<Drift>,
}

/// Dispatch records, per-worker counts, sticky workers and affinity.
#[async_trait]
pub trait DispatchStore: Debug + Send + Sync + 'static {
    /// Compare-and-reserve: see the module's contract.
    async fn reserve(&self, request: &ReserveRequest) -> Result<Reservation>;

    /// Marks the reservation `id` active with the worker's answer and moves
    /// the exam's sticky worker to it for `sticky_ttl`. `None` if the
    /// reservation is gone (reclaimed) or is not `id`. With `permit`, gives
    /// back the start permit held under `id`, with its sample, in the same
    /// atomic step, confirmed or not (see [`StartPermits`]'s contract).
    async fn confirm(
        &self,
        key: &SessionKey,
        id: DispatchId,
        session: Option<serde_json::Value>,
        now: Timestamp,
        sticky_ttl: Duration,
        permit: Option<&PermitReturn>,
    ) -> Result<Option<Dispatch>>;

    /// Records a session that a worker reports running and that has no
    /// dispatch: writes `dispatch` (its state is stored as
    /// [`Active`](crate::DispatchState::Active)) with the worker's
    /// dispatched count and the exam's affinity count, and moves the exam's
    /// sticky worker to it until `activated_at + sticky_ttl` (or
    /// `reserved_at` when not activated) — all in one atomic step, and only
    /// if the session has no dispatch at all and the worker is registered.
    /// See the module's contract.
    async fn adopt(&self, dispatch: &Dispatch, sticky_ttl: Duration) -> Result<Adoption>;

    /// Removes the reservation `id` if it is still only reserved, with its
    /// counters. `false` if there was nothing to undo. Fenced by `fence`
    /// when given; holds a slot of `hold` when it removes (see the module's
    /// contract). With `permit`, gives back the start permit or queue place
    /// held under `id` in the same atomic step, undone or not (see
    /// [`StartPermits`]'s contract).
    async fn undo(
        &self,
        key: &SessionKey,
        id: DispatchId,
        fence: Option<&Lease>,
        hold: Option<&WorkerId>,
        permit: Option<&PermitReturn>,
    ) -> Result<bool>;

    /// Removes the session's dispatch (only if it is `id`, when given) with
    /// its counters. Idempotent: `None` if there was nothing to remove.
    /// Fenced by `fence` when given; holds a slot of `hold` when it removes
    /// (see the module's contract).
    async fn release(
        &self,
        key: &SessionKey,
        id: Option<DispatchId>,
        fence: Option<&Lease>,
        hold: Option<&WorkerId>,
    ) -> Result<Option<Dispatch>>;

    /// Marks dispatch `id` orphaned (its worker failed, `manual` policy).
    /// Fenced by `fence` when given (see the module's contract).
    async fn mark_orphaned(
        &self,
        key: &SessionKey,
        id: DispatchId,
        fence: Option<&Lease>,
    ) -> Result<bool>;

    /// The session's dispatch.
    async fn dispatch(&self, key: &SessionKey) -> Result<Option<Dispatch>>;

    /// Up to `limit` dispatches on `worker`.
    async fn worker_dispatches(&self, worker: &WorkerId, limit: usize) -> Result<Vec<Dispatch>>;

    /// One page of up to `count` dispatches after the position `cursor`
    /// names (`None`: from the start), in the backend's order; see the
    /// module's contract ("scans page by position").
    async fn scan_dispatches(&self, cursor: Option<&str>, count: usize) -> Result<DispatchPage>;

    /// The exam's sticky worker (if unexpired at `now`) and affinity counts.
    async fn placement(&self, exam: &ExamId, now: Timestamp) -> Result<ExamPlacement>;

    /// Recounts every counter from the dispatch records; repairs drift when
    /// `repair` is set.
    async fn recount(&self, repair: bool) -> Result<RecountReport>;
}

/// A held lease. Passed as the `fence` of a write, it makes the write
/// conditional on the lease still being held (see the module's contract).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// Lease name (`background` for the background jobs).
    pub name: String,
    /// Who holds it.
    pub holder: String,
    /// Fencing token: grows with every new acquisition, unchanged by renewal.
    pub token: u64,
}

impl Lease {
    /// The refusal of a write fenced by this lease ([`Error::Fenced`]).
    pub fn refusal(&self) -> Error {
        Error::Fenced {
            lease: self.name.clone(),
            token: self.token,
        }
    }
}

/// A lease so background jobs run on one replica at a time.
#[async_trait]
pub trait LeaderLease: Debug + Send + Sync + 'static {
    /// Acquires `name` for `holder` for `ttl` if it is free, expired, or
    /// already held by `holder` (then it is renewed). `None` if another
    /// holder has it. Expiry is judged on the storage's own clock.
    async fn try_acquire(&self, name: &str, holder: &str, ttl: Duration) -> Result<Option<Lease>>;

    /// Gives the lease up if `lease` still holds it (same holder and token).
    async fn release_lease(&self, lease: &Lease) -> Result<bool>;

    /// The checkpoint last saved beside lease `name` by one of its holders
    /// (`None`: none was ever saved). Any handle may read it, held or not.
    async fn checkpoint(&self, name: &str) -> Result<Option<String>>;

    /// Saves `checkpoint` beside `lease.name`, replacing the previous one,
    /// fenced by `lease`: see the module's contract. Refused with
    /// [`Error::Fenced`] (nothing written) once the lease is held by
    /// another holder or under another token, or has expired.
    async fn save_checkpoint(&self, lease: &Lease, checkpoint: &str) -> Result<()>;
}

/// One admin action, for the audit trail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntry {
    /// When.
    pub at: Timestamp,
    /// Who (the JWT subject, or `system`).
    pub actor: String,
    /// What (`drain`, `force-disable`, `reconcile`, …).
    pub action: String,
    /// On what (a worker code, an exam id).
    pub target: String,
    /// Details.
    pub detail: serde_json::Value,
}

/// The audit trail of admin actions.
#[async_trait]
pub trait AuditLog: Debug + Send + Sync + 'static {
    /// Appends an entry.
    async fn append_audit(&self, entry: &AuditEntry) -> Result<()>;

    /// One page of the trail, newest first (the order entries were
    /// appended, reversed), and how many entries it holds, read together.
    async fn audit_page(&self, page: Page) -> Result<Paged<AuditEntry>>;

    /// The newest `limit` entries, newest first.
    async fn recent_audit(&self, limit: usize) -> Result<Vec<AuditEntry>> {
        Ok(self.audit_page(Page::first(limit)).await?.items)
    }
}

/// Everything a backend provides. Implemented for every type that
/// implements the thirteen traits.
pub trait Store:
    Registry
    + DispatchStore
    + LeaderLease
    + AuditLog
    + Credentials
    + ExamStore
    + WaitingRoom
    + Outbox
    + CapacityRequests
    + ScheduledActions
    + StartPermits
    + DisruptionLedger
    + Rehearsals
{
}

impl<T> Store for T where
    T: Registry
        + DispatchStore
        + LeaderLease
        + AuditLog
        + Credentials
        + ExamStore
        + WaitingRoom
        + Outbox
        + CapacityRequests
        + ScheduledActions
        + StartPermits
        + DisruptionLedger
        + Rehearsals
{
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn traits_are_object_safe() {
        fn takes(
            _: Option<Arc<dyn Store>>,
            _: Option<Arc<dyn Registry>>,
            _: Option<Arc<dyn DispatchStore>>,
        ) {
        }
        takes(None, None, None);
    }
}
