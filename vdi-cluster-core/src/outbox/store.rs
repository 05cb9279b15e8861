//! The [`Outbox`] storage trait.

use std::fmt::Debug;

use async_trait::async_trait;

use std::time::Duration;

use super::{Attempt, Delivery, LeasedDelivery, Next, OutboxEntry, WebhookEndpoint};
use crate::dispatch::Dispatch;
use crate::error::Result;
use crate::ids::{DispatchId, SessionKey, WorkerId};
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
    /// and `entries`, in one atomic step: the entries are written only if
    /// the reservation `id` is confirmed (a re-dispatch's
    /// `session.migrated`).
    async fn confirm_with_outbox(
        &self,
        key: &SessionKey,
        id: DispatchId,
        session: Option<serde_json::Value>,
        now: Timestamp,
        sticky_ttl: Duration,
        entries: &[OutboxEntry],
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

    /// An endpoint's deliveries, newest first, at most `limit`.
    async fn deliveries(&self, endpoint: &str, limit: usize) -> Result<Vec<Delivery>>;

    /// Makes a failed delivery of `endpoint` pending, due at `now`. `false`
    /// if there is no such delivery or it is not failed.
    async fn retry_delivery(&self, endpoint: &str, id: &str, now: Timestamp) -> Result<bool>;

    /// Deletes up to `limit` deliveries that are delivered or failed and
    /// whose last attempt started before `before` (the retention's
    /// clean-up), with their de-duplication keys; answers how many. A
    /// pending or leased delivery is never deleted.
    async fn purge_deliveries(&self, before: Timestamp, limit: usize) -> Result<u32>;
}
