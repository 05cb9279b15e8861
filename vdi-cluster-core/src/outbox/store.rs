//! The [`Outbox`] storage trait.

use std::fmt::Debug;

use async_trait::async_trait;

use std::time::Duration;

use super::{Attempt, Delivery, LeasedDelivery, Next, OutboxEntry, WebhookEndpoint};
use crate::dispatch::Dispatch;
use crate::error::Result;
use crate::ids::{DispatchId, SessionKey, WorkerId};
use crate::ledger::{Disruption, OpenInterruption};
use crate::pacing::PermitReturn;
use crate::page::{Page, Paged};
use crate::store::{CasOutcome, DeleteOutcome, Lease};
use crate::time::Timestamp;
use crate::worker::WorkerRecord;

/// The `webhook.failing` entries to write with an acknowledgement, if the
/// endpoint's consecutive failures reach `threshold` with it.
#[derive(Debug, Clone, Copy)]
pub struct Failing<'a> {
    /// The count at which the endpoint is failing.
    pub threshold: u32,
    /// The entries to write then (de-duplicated like any other).
    pub entries: &'a [OutboxEntry],
}

impl Failing<'_> {
    /// Whether an endpoint with `failures` consecutive failures (this
    /// attempt included) just became failing: exactly at the threshold, so
    /// the crossing is reported once per run of failures.
    pub fn reached(&self, failures: u32) -> bool {
        failures == self.threshold
    }
}

/// A dispatch its worker's report proves lost
/// ([`lost_to_report`](crate::dispatch::lost_to_report)), released by
/// [`Outbox::put_worker_releasing_lost`] with the record write that
/// carries the proof.
#[derive(Debug, Clone, PartialEq)]
pub struct LostDispatch {
    /// The session.
    pub key: SessionKey,
    /// The dispatch proven lost: removed only while it is still the
    /// session's dispatch, on the worker being written.
    pub id: DispatchId,
    /// Its `session.lost` entries, written only if it is removed.
    pub entries: Vec<OutboxEntry>,
    /// The interruption its release begins (`workerRestarted`), opened
    /// only if it is removed, as
    /// [`DisruptionLedger::open_interruption`](crate::ledger::DisruptionLedger::open_interruption)
    /// opens one.
    pub interruption: Option<OpenInterruption>,
}

/// Answer of [`Outbox::put_worker_releasing_lost`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LostRelease {
    /// The record is written; these sessions' dispatches were removed with
    /// their counters (the others had gone or changed already).
    Written {
        /// The record's new version.
        version: u64,
        /// The sessions released, in the order they were given.
        released: Vec<SessionKey>,
    },
    /// The stored version was not the expected one; nothing was written
    /// and nothing removed.
    Conflict {
        /// The stored version (`None`: no record).
        current: Option<u64>,
    },
}

/// Webhook endpoints and the outbox of deliveries.
///
/// # Contract
///
/// * **An event commits with its cause.** [`append_outbox`](Self::append_outbox)
///   writes its entries only if its `fence` holds (as the fenced writes of
///   [`DispatchStore`](crate::store::DispatchStore)), and
///   [`put_worker_with_outbox`](Self::put_worker_with_outbox) and
///   [`delete_worker_with_outbox`](Self::delete_worker_with_outbox) only
///   if their compare-and-set wins, and
///   [`confirm_with_outbox`](Self::confirm_with_outbox) only if the
///   reservation is confirmed: the entries and the write are one atomic
///   step, all or nothing.
/// * **De-duplication.** At most one entry is stored per
///   (`endpoint`, `dedup`); a second is silently skipped, in the same step.
/// * **A leased delivery has one deliverer.**
///   [`lease_deliveries`](Self::lease_deliveries) atomically takes entries
///   that are pending and due at `now`, or leased with a lease that ended
///   by `now`, and leases each until `until` under a new token, larger than
///   any the entry had. No entry is handed to two callers whose leases
///   overlap.
/// * **Acknowledgement is fenced by the delivery lease.**
///   [`finish_delivery`](Self::finish_delivery) records the attempt and
///   the next state only if the entry is still leased under that token;
///   otherwise it writes nothing and answers `None`.
/// * **A restart's report releases what it no longer runs, once.**
///   [`put_worker_releasing_lost`](Self::put_worker_releasing_lost)
///   writes the worker's record on its version (as
///   [`Registry::put_worker`](crate::store::Registry::put_worker)) and, in
///   the same atomic step, removes each lost dispatch that is still the
///   session's dispatch with that id on that worker, with the worker's
///   dispatched count and the exam's affinity count (invariant C), writing
///   each removed one's entries and opening its interruption; a stale
///   version writes and removes
///   nothing. So two replicas applying the same heartbeat free the slots
///   once: the second's compare-and-set fails, and a step computed from a
///   later read finds the dispatches gone. No slot is held: the worker
///   said it runs none of them.
/// * Entries of a deleted endpoint are leased like any other (core gives
///   them up).
#[async_trait]
pub trait Outbox: Debug + Send + Sync + 'static {
    /// Stores a new endpoint; `false` (nothing written) if its id is taken.
    async fn put_webhook(&self, endpoint: &WebhookEndpoint) -> Result<bool>;

    /// Every endpoint, oldest first.
    async fn webhooks(&self) -> Result<Vec<WebhookEndpoint>>;

    /// Deletes an endpoint; `false` if there was none.
    async fn delete_webhook(&self, id: &str) -> Result<bool>;

    /// Writes `entries` (due at once), fenced by `fence`; answers how many
    /// were new (the others were duplicates).
    async fn append_outbox(&self, entries: &[OutboxEntry], fence: Option<&Lease>) -> Result<u32>;

    /// [`Registry::put_worker`](crate::store::Registry::put_worker) (or,
    /// with `dispatched`,
    /// [`put_worker_if_dispatched`](crate::store::Registry::put_worker_if_dispatched))
    /// and `entries`, in one atomic step: the entries are written only if
    /// the record is.
    async fn put_worker_with_outbox(
        &self,
        record: &WorkerRecord,
        expected: Option<u64>,
        dispatched: Option<u32>,
        entries: &[OutboxEntry],
    ) -> Result<CasOutcome>;

    /// [`Registry::put_worker`](crate::store::Registry::put_worker) on
    /// version `expected` with `entries`, and the removal of every `lost`
    /// dispatch still stored under its id on `record`'s worker, with its
    /// counters and its own entries, in one atomic step (see the
    /// contract). Leaves `unrecorded` as `record` says.
    async fn put_worker_releasing_lost(
        &self,
        record: &WorkerRecord,
        expected: u64,
        entries: &[OutboxEntry],
        lost: &[LostDispatch],
    ) -> Result<LostRelease>;

    /// [`Registry::delete_worker`](crate::store::Registry::delete_worker)
    /// and `entries`, in one atomic step: the entries are written only if
    /// the record is deleted.
    async fn delete_worker_with_outbox(
        &self,
        id: &WorkerId,
        expected: u64,
        entries: &[OutboxEntry],
    ) -> Result<DeleteOutcome>;

    /// [`DispatchStore::confirm`](crate::store::DispatchStore::confirm)
    /// and `entries` and the ledger's `disruptions`, in one atomic step:
    /// the entries are written only if the reservation `id` is confirmed
    /// (a re-dispatch's `session.migrated` and its `workerLost` entry).
    /// A disruption already stored under its session and id is skipped,
    /// as [`DisruptionLedger::append_disruptions`](crate::ledger::DisruptionLedger::append_disruptions) does.
    /// `permit` is given back as `confirm` gives it back.
    #[allow(clippy::too_many_arguments)]
    async fn confirm_with_outbox(
        &self,
        key: &SessionKey,
        id: DispatchId,
        session: Option<serde_json::Value>,
        now: Timestamp,
        sticky_ttl: Duration,
        permit: Option<&PermitReturn>,
        entries: &[OutboxEntry],
        disruptions: &[Disruption],
    ) -> Result<Option<Dispatch>>;

    /// Leases up to `limit` due deliveries until `until` (see the contract).
    async fn lease_deliveries(
        &self,
        now: Timestamp,
        until: Timestamp,
        limit: usize,
    ) -> Result<Vec<LeasedDelivery>>;

    /// Records `attempt` on a leased delivery and applies `next` (pending
    /// until `RetryAt`, delivered, failed), and the endpoint's consecutive
    /// failures (reset by a success, one more by a failure), writing
    /// `failing`'s entries when that count reaches its threshold. `None` if
    /// the lease `token` no longer holds the entry; else the endpoint's
    /// consecutive failures now.
    async fn finish_delivery(
        &self,
        delivery: &LeasedDelivery,
        attempt: &Attempt,
        next: Next,
        failing: Option<Failing<'_>>,
    ) -> Result<Option<u32>>;

    /// One page of an endpoint's deliveries, newest first (the order they
    /// were written, reversed), and how many it has, read together.
    async fn delivery_page(&self, endpoint: &str, page: Page) -> Result<Paged<Delivery>>;

    /// An endpoint's deliveries, newest first, at most `limit`.
    async fn deliveries(&self, endpoint: &str, limit: usize) -> Result<Vec<Delivery>> {
        Ok(self
            .delivery_page(endpoint, Page::first(limit))
            .await?
            .items)
    }

    /// Makes a failed delivery of `endpoint` pending, due at `now`. `false`
    /// if there is no such delivery or it is not failed.
    async fn retry_delivery(&self, endpoint: &str, id: &str, now: Timestamp) -> Result<bool>;

    /// Deletes up to `limit` deliveries that are delivered or failed and
    /// whose last attempt started before `before` (the retention's
    /// clean-up), with their de-duplication keys; answers how many. A
    /// pending or leased delivery is never deleted.
    async fn purge_deliveries(&self, before: Timestamp, limit: usize) -> Result<u32>;
}
