//! Store steps the cases share: put a worker, reserve, read a count.

use std::sync::Arc;
use std::time::Duration;

use crate::dispatch::Dispatch;
use crate::ids::{DispatchId, SessionKey, WorkerId};
use crate::policy::AdminPolicy;
use crate::store::{CasOutcome, Reservation, ReserveRequest, Store};
use crate::testkit::{request, worker_record};
use crate::time::{Clock, SystemClock, Timestamp};
use crate::worker::WorkerRecord;

/// The system clock: backends under test compare with real time.
pub(super) fn now() -> Timestamp {
    SystemClock.now()
}

/// `record` with `policy`.
pub(super) fn with_policy(record: WorkerRecord, policy: AdminPolicy) -> WorkerRecord {
    WorkerRecord { policy, ..record }
}

/// Inserts `record` (none stored yet) and returns its version.
pub(super) async fn put_new(store: &Arc<dyn Store>, record: &WorkerRecord) -> u64 {
    match store.put_worker(record, None).await.expect("put_worker") {
        CasOutcome::Written { version } => version,
        other => panic!("inserting {} failed: {other:?}", record.id),
    }
}

/// Inserts an active worker `code` with `slots` free slots.
pub(super) async fn add_worker(store: &Arc<dyn Store>, code: &str, slots: u32) -> WorkerId {
    let r = worker_record(code, slots, 0);
    put_new(store, &r).await;
    r.id
}

/// A reservation of `key` on `worker` now that supersedes `old`.
pub(super) fn superseding(key: &SessionKey, worker: &WorkerId, old: DispatchId) -> ReserveRequest {
    ReserveRequest {
        supersede: Some(old),
        ..request(key, worker, now())
    }
}

/// Reserves `key` on `worker` now.
pub(super) async fn reserve(
    store: &Arc<dyn Store>,
    key: &SessionKey,
    worker: &WorkerId,
) -> Reservation {
    store
        .reserve(&request(key, worker, now()))
        .await
        .expect("reserve")
}

/// Reserves `key` on `worker` now; panics unless a new reservation is made.
pub(super) async fn reserved(
    store: &Arc<dyn Store>,
    key: &SessionKey,
    worker: &WorkerId,
) -> Dispatch {
    reserved_leaving(store, key, worker).await.0
}

/// [`reserved`], with the free slots the store says `worker` has left.
pub(super) async fn reserved_leaving(
    store: &Arc<dyn Store>,
    key: &SessionKey,
    worker: &WorkerId,
) -> (Dispatch, u32) {
    match reserve(store, key, worker).await {
        Reservation::Reserved {
            dispatch,
            superseded: None,
            slots_left,
            permit: None,
        } => (dispatch, slots_left),
        other => panic!("expected a reservation of {key} on {worker}, got {other:?}"),
    }
}

/// `worker`'s dispatched count (0 if it is not stored).
pub(super) async fn dispatched(store: &Arc<dyn Store>, worker: &WorkerId) -> u32 {
    store
        .worker(worker)
        .await
        .expect("worker")
        .map_or(0, |s| s.dispatched)
}

/// Sticky TTL the cases confirm with.
pub(super) const STICKY: Duration = Duration::from_secs(3600);
