//! [`StartPermits`]: the start permits of every worker, its queue of
//! starts waiting for one, and its last starts.
//!
//! # Contract
//!
//! Every implementation guarantees, for any number of handles sharing one
//! storage:
//!
//! * **Permits never exceed the limit (invariant F).**
//!   [`acquire_start_permit`](StartPermits::acquire_start_permit) drops the
//!   worker's expired permits and waiters (`until <= now`), then, as one
//!   indivisible step: renews `id`'s permit if it holds one (granted);
//!   otherwise puts `id` at the back of the worker's queue unless it is
//!   already in it, renews its place, and grants it a permit — leaving the
//!   queue — only if the permits held plus the waiters ahead of it are
//!   fewer than `limit`. So a grant never makes more than `limit` permits
//!   held on the worker, however many handles ask at once, and nobody
//!   overtakes a start that asked earlier and still asks.
//! * **Leases.** Every permit and place in the queue carries the `until`
//!   of the last call that took or renewed it. Past it, the permit or the
//!   place is gone for every handle: a replica that died holding permits
//!   gives them back when their lease ends.
//! * **Release records the start.**
//!   [`release_start_permit`](StartPermits::release_start_permit) removes
//!   `id`'s permit or place and, with a sample, appends it to the worker's
//!   last starts, keeping the newest `keep`, in the same step. Releasing
//!   twice is harmless.
//! * **A permit with the reservation.** Compare-and-reserve given a
//!   [`PermitRequest`](super::PermitRequest)
//!   ([`ReserveRequest::permit`](crate::store::ReserveRequest::permit))
//!   drops the worker's expired permits and waiters, then grants a permit
//!   under the new dispatch's id, in the same atomic step as the
//!   reservation, only if it reserves and fewer than `limit` permits are
//!   held on the worker and nobody waits in its queue; otherwise the slot
//!   is reserved without one (a start that must wait takes the queue,
//!   as ever). So the grant keeps invariant F as a grant of
//!   `acquire_start_permit` does, and overtakes no waiter.
//! * **The reservation's end gives it back.**
//!   [`confirm`](crate::store::DispatchStore::confirm),
//!   [`confirm_with_outbox`](crate::outbox::Outbox::confirm_with_outbox)
//!   and [`undo`](crate::store::DispatchStore::undo) given a
//!   [`PermitReturn`](super::PermitReturn) remove the permit or place
//!   held under the dispatch's id on its worker and record its sample, as
//!   `release_start_permit` does, in the same atomic step as their own
//!   write, whether or not the reservation was still there to confirm or
//!   undo (a fenced undo that is refused writes nothing).
//! * **One view.** [`start_queue`](StartPermits::start_queue) answers the
//!   unexpired permits (oldest grant first, ties by id), the unexpired
//!   queue in order and the samples (oldest first) as one consistent read.
//!
//! The store never decides the limit nor the estimate: core does
//! ([`start_limit`](super::start_limit), [`estimate_ready`](super::estimate_ready)).
//! Times are the control plane's clock, as the waiting room's.

use std::fmt::Debug;

use async_trait::async_trait;

use super::{PermitAnswer, StartQueue, StartSample};
use crate::error::Result;
use crate::ids::WorkerId;
use crate::time::Timestamp;

/// Storage of the workers' start permits. See the module's contract.
#[async_trait]
pub trait StartPermits: Debug + Send + Sync + 'static {
    /// Takes or renews `id`'s start permit on `worker`, or its place in
    /// the worker's queue, until `until`; grants only while fewer than
    /// `limit` permits (with the waiters ahead) are held.
    async fn acquire_start_permit(
        &self,
        worker: &WorkerId,
        id: &str,
        limit: u32,
        now: Timestamp,
        until: Timestamp,
    ) -> Result<PermitAnswer>;

    /// Gives back `id`'s permit or place on `worker`; with `sample`,
    /// records it among the worker's last `keep` starts. Whether `id` held
    /// a permit.
    async fn release_start_permit(
        &self,
        worker: &WorkerId,
        id: &str,
        sample: Option<StartSample>,
        keep: u32,
    ) -> Result<bool>;

    /// The worker's unexpired permits and queue at `now`, and its last
    /// starts.
    async fn start_queue(&self, worker: &WorkerId, now: Timestamp) -> Result<StartQueue>;
}
