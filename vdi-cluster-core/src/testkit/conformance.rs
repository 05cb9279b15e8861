//! The conformance suite: one set of behaviour and concurrency tests that
//! every backend runs against real storage.
//!
//! A backend implements [`StoreFactory`] (each call to
//! [`replica`](StoreFactory::replica) opens an independent handle — its own
//! connection or pool — on one shared, isolated storage namespace) and
//! expands [`conformance_tests!`](crate::conformance_tests) once in its
//! `tests/conformance.rs`:
//!
//! ```
//! use std::sync::Arc;
//! use vdi_cluster_core::testkit::conformance::StoreFactory;
//! use vdi_cluster_core::{MemoryStore, Store};
//!
//! struct Memory(MemoryStore);
//!
//! #[async_trait::async_trait]
//! impl StoreFactory for Memory {
//!     async fn replica(&self) -> Arc<dyn Store> {
//!         Arc::new(self.0.clone())
//!     }
//! }
//!
//! /// `None` when the backend is unreachable: the case is skipped.
//! async fn factory() -> Option<Memory> {
//!     Some(Memory(MemoryStore::new()))
//! }
//!
//! // In the backend's tests/conformance.rs:
//! // vdi_cluster_core::conformance_tests!(factory());
//! ```
//!
//! Every case then shows up by name in the test output.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;

use super::{Behaviour, SimulatedWorkers, heartbeat_with_slots};
use crate::dispatch::{Dispatch, DispatchState};
use crate::error::Error;
use crate::health::HeartbeatStamp;
use crate::ids::{DispatchId, ExamId, SessionKey, WorkerId};
use crate::policy::AdminPolicy;
use crate::service::{ClusterService, ServiceConfig};
use crate::store::{CasOutcome, Counter, DeleteOutcome, Reservation, ReserveRequest, Store};
use crate::time::{Clock, SystemClock, Timestamp};
use crate::worker::WorkerRecord;

/// Opens handles on one isolated storage namespace (a fresh database, a
/// random key prefix).
#[async_trait]
pub trait StoreFactory: Send + Sync + 'static {
    /// A new independent handle on the shared namespace: one replica.
    async fn replica(&self) -> Arc<dyn Store>;

    /// Adds `delta` to `worker`'s dispatched counter behind the store's
    /// back (clamping at zero), to prove reconcile finds and repairs drift.
    /// `false` if the backend cannot.
    async fn corrupt_dispatched(&self, worker: &WorkerId, delta: i64) -> bool {
        let _ = (worker, delta);
        false
    }

    /// Removes the namespace (drops the database, deletes the prefix's
    /// keys). Called once at the end of every case that passed.
    async fn cleanup(&self) {}
}

/// Expands to one `#[tokio::test]` per conformance case. The argument is
/// an expression evaluating to a future of `Option<impl StoreFactory>`,
/// evaluated afresh for every case (`None` skips the case).
#[macro_export]
macro_rules! conformance_tests {
    ($factory:expr) => {
        $crate::conformance_tests!(@cases $factory;
            worker_put_is_compare_and_set,
            worker_put_races_have_one_winner,
            worker_listing_and_delete,
            reserve_respects_capacity_and_policy,
            reserve_returns_the_existing_dispatch,
            dispatch_lifecycle_keeps_counters_exact,
            supersede_moves_the_session_atomically,
            orphaned_dispatch_keeps_its_slot,
            scans_cover_every_dispatch,
            sticky_worker_expires,
            hostile_ids_do_not_collide,
            recount_finds_and_repairs_drift,
            lease_is_exclusive_and_fenced,
            audit_trail_is_newest_first,
            join_tokens_are_redeemed_atomically,
            heartbeats_from_replicas_keep_the_newest,
            concurrent_allocations_never_over_allocate,
            concurrent_allocate_of_one_session_yields_one_dispatch,
            interrupted_allocations_leave_no_drift,
        );
    };
    (@cases $factory:expr; $($case:ident,)*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                let Some(factory) = $factory.await else { return };
                $crate::testkit::conformance::$case(&factory).await;
                $crate::testkit::conformance::StoreFactory::cleanup(&factory).await;
            }
        )*
    };
}

fn wid(code: &str) -> WorkerId {
    WorkerId::parse("code", code).expect("valid worker code")
}

fn key(exam: &str, user: &str) -> SessionKey {
    SessionKey::parse(exam, user).expect("valid session key")
}

fn now() -> Timestamp {
    SystemClock.now()
}

/// A worker record with exactly `slots` slots, `reported` active sessions
/// and the given policy.
fn worker_record(code: &str, slots: u32, reported: u32, policy: AdminPolicy) -> WorkerRecord {
    let hb = heartbeat_with_slots(code, slots, reported);
    let mut r = WorkerRecord::registered(hb.worker.clone(), hb.description.clone(), now());
    r.capacity = Some(hb.capacity);
    r.reported_active = reported;
    r.policy = policy;
    r.last_heartbeat_at = Some(now());
    r.stamp = Some(HeartbeatStamp {
        boot_id: Some("boot-1".into()),
        seq: Some(1),
    });
    r
}

async fn put_new(store: &Arc<dyn Store>, record: &WorkerRecord) -> u64 {
    match store.put_worker(record, None).await.expect("put_worker") {
        CasOutcome::Written { version } => version,
        other => panic!("inserting {} failed: {other:?}", record.id),
    }
}

async fn add_worker(store: &Arc<dyn Store>, code: &str, slots: u32) -> WorkerId {
    let r = worker_record(code, slots, 0, AdminPolicy::Active);
    put_new(store, &r).await;
    r.id
}

fn request(key: &SessionKey, worker: &WorkerId, supersede: Option<DispatchId>) -> ReserveRequest {
    ReserveRequest {
        dispatch: Dispatch::reserve(
            key.clone(),
            worker.clone(),
            now(),
            Some("boot-1".into()),
            Some(1),
        ),
        supersede,
    }
}

async fn reserve(store: &Arc<dyn Store>, key: &SessionKey, worker: &WorkerId) -> Reservation {
    store
        .reserve(&request(key, worker, None))
        .await
        .expect("reserve")
}

async fn reserved(store: &Arc<dyn Store>, key: &SessionKey, worker: &WorkerId) -> Dispatch {
    match reserve(store, key, worker).await {
        Reservation::Reserved {
            dispatch,
            superseded: None,
        } => dispatch,
        other => panic!("expected a reservation of {key} on {worker}, got {other:?}"),
    }
}

async fn dispatched(store: &Arc<dyn Store>, worker: &WorkerId) -> u32 {
    store
        .worker(worker)
        .await
        .expect("worker")
        .map_or(0, |s| s.dispatched)
}

async fn assert_no_drift(store: &Arc<dyn Store>) {
    let report = store.recount(false).await.expect("recount");
    assert!(report.drift.is_empty(), "counter drift: {:?}", report.drift);
}

const STICKY: Duration = Duration::from_secs(3600);

/// `put_worker` writes only on the expected version and bumps it.
pub async fn worker_put_is_compare_and_set(factory: &impl StoreFactory) {
    let store = factory.replica().await;
    let record = worker_record("w-cas", 4, 0, AdminPolicy::Active);
    let v1 = put_new(&store, &record).await;
    assert!(matches!(
        store.put_worker(&record, None).await.unwrap(),
        CasOutcome::Conflict { current: Some(v) } if v == v1
    ));
    assert!(matches!(
        store.put_worker(&record, Some(v1 + 7)).await.unwrap(),
        CasOutcome::Conflict { current: Some(v) } if v == v1
    ));
    let mut changed = record.clone();
    changed.reported_active = 3;
    let v2 = match store.put_worker(&changed, Some(v1)).await.unwrap() {
        CasOutcome::Written { version } => version,
        other => panic!("update failed: {other:?}"),
    };
    assert!(v2 > v1);
    let snap = store.worker(&record.id).await.unwrap().unwrap();
    assert_eq!(snap.version, v2);
    assert_eq!(snap.record, changed);
    assert_eq!(snap.dispatched, 0);
    assert!(store.worker(&wid("nobody")).await.unwrap().is_none());
    store.ping().await.expect("ping");
}

/// Many replicas writing on the same expected version: exactly one wins.
pub async fn worker_put_races_have_one_winner(factory: &impl StoreFactory) {
    let first = factory.replica().await;
    let record = worker_record("w-race", 4, 0, AdminPolicy::Active);
    let v1 = put_new(&first, &record).await;
    let mut tasks = Vec::new();
    for i in 0..16u32 {
        let store = factory.replica().await;
        let mut r = record.clone();
        r.reported_active = i;
        tasks.push(tokio::spawn(
            async move { store.put_worker(&r, Some(v1)).await },
        ));
    }
    let mut winners = 0;
    for t in tasks {
        if let CasOutcome::Written { .. } = t.await.unwrap().unwrap() {
            winners += 1;
        }
    }
    assert_eq!(winners, 1, "exactly one compare-and-set must win");
}

/// Listing returns every worker; delete is compare-and-set and refuses
/// while dispatches remain.
pub async fn worker_listing_and_delete(factory: &impl StoreFactory) {
    let store = factory.replica().await;
    let a = add_worker(&store, "w-a", 2).await;
    let b = add_worker(&store, "w-b", 2).await;
    let ids: BTreeSet<WorkerId> = store
        .workers()
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.record.id)
        .collect();
    assert_eq!(ids, BTreeSet::from([a.clone(), b.clone()]));
    let va = store.worker(&a).await.unwrap().unwrap().version;
    assert_eq!(
        store.delete_worker(&a, va + 1).await.unwrap(),
        DeleteOutcome::Conflict
    );
    let d = reserved(&store, &key("e1", "u1"), &a).await;
    assert_eq!(
        store.delete_worker(&a, va).await.unwrap(),
        DeleteOutcome::HasDispatches(1)
    );
    assert!(store.release(&d.key, Some(d.id)).await.unwrap().is_some());
    assert_eq!(
        store.delete_worker(&a, va).await.unwrap(),
        DeleteOutcome::Deleted
    );
    assert!(store.worker(&a).await.unwrap().is_none());
    assert_eq!(store.workers().await.unwrap().len(), 1);
    assert!(matches!(
        reserve(&store, &key("e1", "u2"), &a).await,
        Reservation::NotAccepting
    ));
}

/// Compare-and-reserve checks `max(reported, dispatched) < max` and policy.
pub async fn reserve_respects_capacity_and_policy(factory: &impl StoreFactory) {
    let store = factory.replica().await;
    let w = add_worker(&store, "w-cap", 2).await;
    reserved(&store, &key("e", "u1"), &w).await;
    reserved(&store, &key("e", "u2"), &w).await;
    assert_eq!(
        reserve(&store, &key("e", "u3"), &w).await,
        Reservation::Full
    );
    assert_eq!(dispatched(&store, &w).await, 2);

    // The worker's own report counts too: 3 active of 3 slots, none dispatched.
    put_new(&store, &worker_record("w-busy", 3, 3, AdminPolicy::Active)).await;
    assert_eq!(
        reserve(&store, &key("e", "u4"), &wid("w-busy")).await,
        Reservation::Full
    );

    for (code, policy) in [
        ("w-draining", AdminPolicy::Draining { deadline: None }),
        ("w-drained", AdminPolicy::Drained),
        ("w-disabled", AdminPolicy::Disabled { forced: false }),
    ] {
        put_new(&store, &worker_record(code, 5, 0, policy)).await;
        assert_eq!(
            reserve(&store, &key("e", "u5"), &wid(code)).await,
            Reservation::NotAccepting,
            "{code}"
        );
    }
    let mut gone = worker_record("w-gone", 5, 0, AdminPolicy::Active);
    gone.deregistered_at = Some(now());
    put_new(&store, &gone).await;
    assert_eq!(
        reserve(&store, &key("e", "u5"), &gone.id).await,
        Reservation::NotAccepting
    );
    assert_eq!(
        reserve(&store, &key("e", "u5"), &wid("w-unknown")).await,
        Reservation::NotAccepting
    );

    // A heartbeat raising the slots is respected by the next reservation.
    let snap = store.worker(&w).await.unwrap().unwrap();
    let bigger = worker_record("w-cap", 3, 0, AdminPolicy::Active);
    assert!(matches!(
        store.put_worker(&bigger, Some(snap.version)).await.unwrap(),
        CasOutcome::Written { .. }
    ));
    assert_eq!(
        dispatched(&store, &w).await,
        2,
        "a put never touches the dispatched count"
    );
    reserved(&store, &key("e", "u3"), &w).await;
    assert_eq!(
        reserve(&store, &key("e", "u6"), &w).await,
        Reservation::Full
    );
    assert!(store.dispatch(&key("e", "u5")).await.unwrap().is_none());
    assert_no_drift(&store).await;
}

/// A second reservation for a session answers with the first (invariant B).
pub async fn reserve_returns_the_existing_dispatch(factory: &impl StoreFactory) {
    let store = factory.replica().await;
    let a = add_worker(&store, "w-a", 5).await;
    let b = add_worker(&store, "w-b", 5).await;
    let k = key("exam-1", "student-1");
    let first = reserved(&store, &k, &a).await;
    match reserve(&store, &k, &b).await {
        Reservation::Existing(d) => assert_eq!(d.id, first.id),
        other => panic!("expected Existing, got {other:?}"),
    }
    // Superseding with a wrong id changes nothing.
    match store
        .reserve(&request(&k, &b, Some(DispatchId::new())))
        .await
        .unwrap()
    {
        Reservation::Existing(d) => assert_eq!(d.id, first.id),
        other => panic!("expected Existing, got {other:?}"),
    }
    // Superseding onto the same worker changes nothing either.
    match store
        .reserve(&request(&k, &a, Some(first.id)))
        .await
        .unwrap()
    {
        Reservation::Existing(d) => assert_eq!(d.id, first.id),
        other => panic!("expected Existing, got {other:?}"),
    }
    assert_eq!(dispatched(&store, &a).await, 1);
    assert_eq!(dispatched(&store, &b).await, 0);
    let stored = store.dispatch(&k).await.unwrap().unwrap();
    assert_eq!(stored, first);
    assert_eq!(stored.state, DispatchState::Reserved);
}

/// Reserve → confirm → release, undo and idempotent release; counters,
/// sticky and affinity follow exactly.
pub async fn dispatch_lifecycle_keeps_counters_exact(factory: &impl StoreFactory) {
    let store = factory.replica().await;
    let other = factory.replica().await;
    let w = add_worker(&store, "w-life", 5).await;
    let exam = ExamId::parse("examId", "exam-life").unwrap();
    let k1 = key("exam-life", "u1");
    let k2 = key("exam-life", "u2");
    let d1 = reserved(&store, &k1, &w).await;
    let d2 = reserved(&store, &k2, &w).await;
    assert_eq!(dispatched(&other, &w).await, 2);
    let placement = other.placement(&exam, now()).await.unwrap();
    assert_eq!(placement.affinity.get(&w), Some(&2));
    assert_eq!(placement.sticky, None, "sticky moves only on confirm");

    // Confirm with a wrong id does nothing.
    assert!(
        other
            .confirm(&k1, DispatchId::new(), None, now(), STICKY)
            .await
            .unwrap()
            .is_none()
    );
    let session = serde_json::json!({"connection": "rdp://w-life/1", "nested": {"a": [1, 2]}});
    let active = other
        .confirm(&k1, d1.id, Some(session.clone()), now(), STICKY)
        .await
        .unwrap()
        .expect("confirmed");
    assert_eq!(active.state, DispatchState::Active);
    assert_eq!(active.session, Some(session));
    assert!(active.activated_at.is_some());
    assert_eq!(store.dispatch(&k1).await.unwrap(), Some(active.clone()));
    assert_eq!(
        store.placement(&exam, now()).await.unwrap().sticky,
        Some(w.clone())
    );
    // A confirmed dispatch cannot be confirmed again or undone.
    assert!(
        store
            .confirm(&k1, d1.id, None, now(), STICKY)
            .await
            .unwrap()
            .is_none()
    );
    assert!(!store.undo(&k1, d1.id).await.unwrap());

    // Undo the other reservation: only with its id.
    assert!(!store.undo(&k2, DispatchId::new()).await.unwrap());
    assert!(store.undo(&k2, d2.id).await.unwrap());
    assert!(!store.undo(&k2, d2.id).await.unwrap());
    assert_eq!(dispatched(&store, &w).await, 1);

    // Release: wrong id no-op, then release, then idempotent.
    assert!(
        store
            .release(&k1, Some(DispatchId::new()))
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        store.release(&k1, Some(d1.id)).await.unwrap().map(|d| d.id),
        Some(d1.id)
    );
    assert!(store.release(&k1, Some(d1.id)).await.unwrap().is_none());
    assert!(store.release(&k1, None).await.unwrap().is_none());
    assert_eq!(dispatched(&store, &w).await, 0);
    assert!(
        store
            .placement(&exam, now())
            .await
            .unwrap()
            .affinity
            .is_empty()
    );
    assert!(store.dispatch(&k1).await.unwrap().is_none());

    // Release without an id removes whatever is there.
    let d3 = reserved(&store, &k1, &w).await;
    assert_eq!(
        store.release(&k1, None).await.unwrap().map(|d| d.id),
        Some(d3.id)
    );
    assert_no_drift(&store).await;
}

/// Superseding removes the old dispatch and its counters in the same step.
pub async fn supersede_moves_the_session_atomically(factory: &impl StoreFactory) {
    let store = factory.replica().await;
    let a = add_worker(&store, "w-old", 5).await;
    let b = add_worker(&store, "w-new", 1).await;
    let exam = ExamId::parse("examId", "exam-move").unwrap();
    let k = key("exam-move", "u1");
    let old = reserved(&store, &k, &a).await;
    store
        .confirm(&k, old.id, None, now(), STICKY)
        .await
        .unwrap()
        .unwrap();
    // Fill b, then a supersede onto it is refused and nothing changes.
    let filler = reserved(&store, &key("other", "x"), &b).await;
    assert_eq!(
        store.reserve(&request(&k, &b, Some(old.id))).await.unwrap(),
        Reservation::Full
    );
    assert_eq!(
        store.dispatch(&k).await.unwrap().map(|d| d.id),
        Some(old.id)
    );
    assert!(
        store
            .release(&filler.key, Some(filler.id))
            .await
            .unwrap()
            .is_some()
    );

    match store.reserve(&request(&k, &b, Some(old.id))).await.unwrap() {
        Reservation::Reserved {
            dispatch,
            superseded,
        } => {
            assert_eq!(dispatch.worker, b);
            assert_eq!(superseded.map(|d| d.id), Some(old.id));
        }
        other => panic!("expected a superseding reservation, got {other:?}"),
    }
    assert_eq!(dispatched(&store, &a).await, 0);
    assert_eq!(dispatched(&store, &b).await, 1);
    let affinity = store.placement(&exam, now()).await.unwrap().affinity;
    assert_eq!(affinity, BTreeMap::from([(b.clone(), 1)]));
    assert_no_drift(&store).await;
}

/// An orphaned dispatch stays (and keeps its slot) until released.
pub async fn orphaned_dispatch_keeps_its_slot(factory: &impl StoreFactory) {
    let store = factory.replica().await;
    let w = add_worker(&store, "w-orphan", 1).await;
    let k = key("e", "u");
    let d = reserved(&store, &k, &w).await;
    store
        .confirm(&k, d.id, None, now(), STICKY)
        .await
        .unwrap()
        .unwrap();
    assert!(!store.mark_orphaned(&k, DispatchId::new()).await.unwrap());
    assert!(store.mark_orphaned(&k, d.id).await.unwrap());
    assert_eq!(
        store.dispatch(&k).await.unwrap().unwrap().state,
        DispatchState::Orphaned
    );
    assert_eq!(dispatched(&store, &w).await, 1);
    assert_eq!(
        reserve(&store, &key("e", "u2"), &w).await,
        Reservation::Full
    );
    assert!(store.release(&k, Some(d.id)).await.unwrap().is_some());
    assert_no_drift(&store).await;
}

/// Paged scans and per-worker listings return every dispatch.
pub async fn scans_cover_every_dispatch(factory: &impl StoreFactory) {
    let store = factory.replica().await;
    let a = add_worker(&store, "w-scan-a", 40).await;
    let b = add_worker(&store, "w-scan-b", 40).await;
    let mut all = BTreeSet::new();
    for i in 0..25 {
        let w = if i % 3 == 0 { &b } else { &a };
        let d = reserved(
            &store,
            &key(&format!("exam-{}", i % 4), &format!("user-{i}")),
            w,
        )
        .await;
        all.insert(d.key);
    }
    let mut seen = BTreeSet::new();
    let mut cursor: Option<String> = None;
    for _ in 0..1000 {
        let page = store.scan_dispatches(cursor.as_deref(), 7).await.unwrap();
        seen.extend(page.dispatches.into_iter().map(|d| d.key));
        cursor = page.next;
        if cursor.is_none() {
            break;
        }
    }
    assert!(cursor.is_none(), "the scan must end");
    assert_eq!(seen, all);
    let on_b = store.worker_dispatches(&b, 100).await.unwrap();
    assert_eq!(on_b.len(), 9);
    assert!(on_b.iter().all(|d| d.worker == b));
    assert_eq!(store.worker_dispatches(&a, 5).await.unwrap().len(), 5);
    assert!(
        store
            .worker_dispatches(&wid("w-none"), 5)
            .await
            .unwrap()
            .is_empty()
    );
}

/// The sticky worker expires after its TTL, judged at the `now` the
/// control plane passes.
pub async fn sticky_worker_expires(factory: &impl StoreFactory) {
    let store = factory.replica().await;
    let w = add_worker(&store, "w-sticky", 5).await;
    let exam = ExamId::parse("examId", "exam-sticky").unwrap();
    let k = key("exam-sticky", "u");
    let d = reserved(&store, &k, &w).await;
    let t0 = now();
    store
        .confirm(&k, d.id, None, t0, Duration::from_secs(60))
        .await
        .unwrap()
        .unwrap();
    let before = store
        .placement(&exam, t0.plus(Duration::from_secs(59)))
        .await
        .unwrap();
    assert_eq!(before.sticky, Some(w.clone()));
    let after = store
        .placement(&exam, t0.plus(Duration::from_secs(61)))
        .await
        .unwrap();
    assert_eq!(after.sticky, None, "sticky key outlived its TTL");
    assert_eq!(after.affinity.get(&w), Some(&1), "affinity does not expire");
}

/// Identifiers that would collide under naive key concatenation stay apart.
pub async fn hostile_ids_do_not_collide(factory: &impl StoreFactory) {
    let store = factory.replica().await;
    let w = add_worker(&store, "w-hostile", 50).await;
    let keys = [
        key("a:user:b", "c"),
        key("a", "b:user:c"),
        key("a*", "b"),
        key("a", "*"),
        key("a?", "[b]"),
        key("a%3A", "b"),
        key("a:", "b"),
        key("Toán cao cấp", "Nguyễn Văn A"),
        key("exam 1", "user 1"),
        key("exam\\1", "u"),
    ];
    let mut ids = Vec::new();
    for k in &keys {
        ids.push(reserved(&store, k, &w).await.id);
    }
    for (k, id) in keys.iter().zip(&ids) {
        let d = store.dispatch(k).await.unwrap().expect("stored");
        assert_eq!(&d.key, k);
        assert_eq!(&d.id, id);
    }
    let mut cursor = None;
    let mut seen = BTreeSet::new();
    loop {
        let page = store.scan_dispatches(cursor.as_deref(), 3).await.unwrap();
        seen.extend(page.dispatches.into_iter().map(|d| d.key));
        cursor = page.next;
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(seen, keys.iter().cloned().collect());
    assert_eq!(dispatched(&store, &w).await, keys.len() as u32);
    for k in &keys {
        assert!(store.release(k, None).await.unwrap().is_some());
    }
    assert_eq!(dispatched(&store, &w).await, 0);
    assert_no_drift(&store).await;
}

/// Recount reports counters that disagree with the records and repairs
/// them when asked.
pub async fn recount_finds_and_repairs_drift(factory: &impl StoreFactory) {
    let store = factory.replica().await;
    let w = add_worker(&store, "w-drift", 10).await;
    let k = key("e", "u");
    reserved(&store, &k, &w).await;
    assert_no_drift(&store).await;
    if !factory.corrupt_dispatched(&w, 3).await {
        eprintln!("backend cannot corrupt counters; drift repair not exercised");
        return;
    }
    let report = store.recount(false).await.unwrap();
    let drift = report
        .drift
        .iter()
        .find(|d| d.counter == Counter::WorkerDispatched { worker: w.clone() })
        .expect("drift reported");
    assert_eq!((drift.stored, drift.actual), (4, 1));
    assert_eq!(
        dispatched(&store, &w).await,
        4,
        "recount(false) repairs nothing"
    );
    let repaired = store.recount(true).await.unwrap();
    assert!(!repaired.drift.is_empty());
    assert_eq!(dispatched(&store, &w).await, 1);
    assert_no_drift(&store).await;
}

/// One holder at a time; renewal keeps the token; a stale lease cannot be
/// released; expiry frees it.
pub async fn lease_is_exclusive_and_fenced(factory: &impl StoreFactory) {
    let a = factory.replica().await;
    let b = factory.replica().await;
    let ttl = Duration::from_secs(30);
    let la = a
        .try_acquire("jobs", "replica-a", ttl)
        .await
        .unwrap()
        .expect("a acquires");
    assert!(
        b.try_acquire("jobs", "replica-b", ttl)
            .await
            .unwrap()
            .is_none()
    );
    let renewed = a
        .try_acquire("jobs", "replica-a", ttl)
        .await
        .unwrap()
        .expect("a renews");
    assert_eq!(renewed.token, la.token);
    assert!(
        b.try_acquire("other", "replica-b", ttl)
            .await
            .unwrap()
            .is_some()
    );
    let forged = crate::store::Lease {
        holder: "replica-b".into(),
        ..la.clone()
    };
    assert!(!b.release_lease(&forged).await.unwrap());
    assert!(a.release_lease(&la).await.unwrap());
    let lb = b
        .try_acquire("jobs", "replica-b", ttl)
        .await
        .unwrap()
        .expect("b acquires");
    assert!(
        lb.token > la.token,
        "a new holder gets a larger fencing token"
    );
    assert!(!a.release_lease(&la).await.unwrap(), "a lost the lease");
    assert!(
        a.try_acquire("jobs", "replica-a", ttl)
            .await
            .unwrap()
            .is_none()
    );

    let short = a
        .try_acquire("short", "replica-a", Duration::from_millis(100))
        .await
        .unwrap()
        .expect("a acquires");
    tokio::time::sleep(Duration::from_millis(400)).await;
    let taken = b
        .try_acquire("short", "replica-b", ttl)
        .await
        .unwrap()
        .expect("expired lease is free");
    assert!(taken.token > short.token);
}

/// The audit trail keeps entries, newest first.
pub async fn audit_trail_is_newest_first(factory: &impl StoreFactory) {
    let store = factory.replica().await;
    for i in 0..5u64 {
        store
            .append_audit(&crate::store::AuditEntry {
                at: Timestamp(1_000 + i),
                actor: format!("admin-{i}"),
                action: "drain".into(),
                target: "w-1".into(),
                detail: serde_json::json!({ "i": i }),
            })
            .await
            .unwrap();
    }
    let recent = store.recent_audit(3).await.unwrap();
    let actors: Vec<&str> = recent.iter().map(|e| e.actor.as_str()).collect();
    assert_eq!(actors, ["admin-4", "admin-3", "admin-2"]);
    assert_eq!(recent[0].detail, serde_json::json!({ "i": 4 }));
}

fn join_token(
    id: &str,
    hash: &str,
    max_uses: u32,
    expires_at: Timestamp,
) -> crate::store::JoinToken {
    crate::store::JoinToken {
        id: id.into(),
        token_hash: hash.into(),
        created_by: "admin".into(),
        created_at: Timestamp(expires_at.0.saturating_sub(60_000)),
        expires_at,
        max_uses,
        uses: 0,
    }
}

/// Join tokens: unique, redeemed at most `max_uses` times even by racing
/// replicas, refused once expired or revoked; worker credentials replace.
pub async fn join_tokens_are_redeemed_atomically(factory: &impl StoreFactory) {
    let store = factory.replica().await;
    let t0 = now();
    let later = t0.plus(Duration::from_secs(3600));
    store
        .put_join_token(&join_token("jt-1", "hash-1", 3, later))
        .await
        .unwrap();
    store
        .put_join_token(&join_token("jt-2", "hash-2", 1, t0))
        .await
        .unwrap();
    assert!(matches!(
        store
            .put_join_token(&join_token("jt-1", "hash-9", 1, later))
            .await,
        Err(Error::Conflict { .. })
    ));
    assert!(matches!(
        store
            .put_join_token(&join_token("jt-9", "hash-1", 1, later))
            .await,
        Err(Error::Conflict { .. })
    ));
    assert_eq!(store.join_tokens().await.unwrap().len(), 2);
    // Expired at `now`, or unknown: refused.
    assert!(
        store
            .redeem_join_token("hash-2", t0)
            .await
            .unwrap()
            .is_none()
    );
    assert!(store.redeem_join_token("nope", t0).await.unwrap().is_none());
    // Twelve replicas race for three uses.
    let mut tasks = Vec::new();
    for _ in 0..12 {
        let s = factory.replica().await;
        tasks.push(tokio::spawn(async move {
            s.redeem_join_token("hash-1", t0).await
        }));
    }
    let mut granted = Vec::new();
    for t in tasks {
        if let Some(token) = t.await.unwrap().unwrap() {
            granted.push(token.uses);
        }
    }
    granted.sort_unstable();
    assert_eq!(granted, vec![1, 2, 3]);
    let stored = store.join_tokens().await.unwrap();
    let jt1 = stored.iter().find(|t| t.id == "jt-1").unwrap();
    assert_eq!(
        (jt1.uses, jt1.max_uses, jt1.token_hash.as_str()),
        (3, 3, "hash-1")
    );
    assert!(store.revoke_join_token("jt-2").await.unwrap());
    assert!(!store.revoke_join_token("jt-2").await.unwrap());
    assert_eq!(store.join_tokens().await.unwrap().len(), 1);

    let w = wid("w-cred");
    assert!(store.worker_credential(&w).await.unwrap().is_none());
    store.put_worker_credential(&w, "cred-1").await.unwrap();
    store.put_worker_credential(&w, "cred-2").await.unwrap();
    let other = factory.replica().await;
    assert_eq!(
        other.worker_credential(&w).await.unwrap().as_deref(),
        Some("cred-2")
    );
}

fn service(
    store: Arc<dyn Store>,
    workers: &SimulatedWorkers,
    seed: u64,
    tweak: impl FnOnce(&mut ServiceConfig),
) -> Arc<ClusterService> {
    let mut config = ServiceConfig {
        seed,
        replica_id: format!("replica-{seed}"),
        snapshot_max_age: Duration::from_millis(20),
        ..ServiceConfig::default()
    };
    tweak(&mut config);
    Arc::new(
        ClusterService::builder(store, Arc::new(workers.clone()))
            .config(config)
            .events(Arc::new(crate::events::RecordingSink::default()))
            .build(),
    )
}

/// Heartbeats of one worker applied through many replicas at once: the
/// newest sequence number always wins.
pub async fn heartbeats_from_replicas_keep_the_newest(factory: &impl StoreFactory) {
    let workers = SimulatedWorkers::new();
    let mut tasks = Vec::new();
    for r in 0..4u64 {
        let svc = service(factory.replica().await, &workers, r, |_| {});
        tasks.push(tokio::spawn(async move {
            for seq in (r..200).step_by(4) {
                let mut hb = heartbeat_with_slots("w-hb", 8, (seq % 8) as u32);
                hb.stamp = HeartbeatStamp {
                    boot_id: Some("boot-a".into()),
                    seq: Some(seq),
                };
                svc.heartbeat(hb).await.expect("heartbeat");
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let store = factory.replica().await;
    let snap = store.worker(&wid("w-hb")).await.unwrap().unwrap();
    assert_eq!(snap.record.stamp.and_then(|s| s.seq), Some(199));
    assert_eq!(snap.record.reported_active, (199 % 8) as u32);
}

/// Scale of the concurrency cases.
#[derive(Debug, Clone, Copy)]
pub struct Scale {
    /// Independent store handles (control-plane replicas).
    pub replicas: usize,
    /// Concurrent tasks per replica.
    pub tasks_per_replica: usize,
    /// Operations in total.
    pub operations: usize,
    /// Workers.
    pub workers: usize,
    /// Slots per worker.
    pub capacity: u32,
}

/// What the concurrency cases run: 4 replicas × 16 tasks, 5,000 operations
/// on 10 workers of 5 slots.
pub const SCALE: Scale = Scale {
    replicas: 4,
    tasks_per_replica: 16,
    operations: 5_000,
    workers: 10,
    capacity: 5,
};

/// A small deterministic generator (xorshift64*), so the suite needs no
/// random-number crate.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

async fn register_fleet(
    store: &Arc<dyn Store>,
    workers: &SimulatedWorkers,
    scale: Scale,
) -> Vec<WorkerId> {
    let svc = service(Arc::clone(store), workers, 999, |_| {});
    let mut ids = Vec::new();
    for i in 0..scale.workers {
        let ack = svc
            .heartbeat(heartbeat_with_slots(
                &format!("w-{i:02}"),
                scale.capacity,
                0,
            ))
            .await
            .expect("heartbeat");
        ids.push(ack.code);
    }
    ids
}

/// Checks invariants A–C on the final state.
async fn assert_invariants(store: &Arc<dyn Store>, scale: Scale) {
    let mut per_worker: HashMap<WorkerId, u32> = HashMap::new();
    let mut keys = BTreeSet::new();
    let mut cursor = None;
    loop {
        let page = store.scan_dispatches(cursor.as_deref(), 100).await.unwrap();
        for d in page.dispatches {
            if keys.insert(d.key.clone()) {
                *per_worker.entry(d.worker).or_default() += 1;
            }
        }
        cursor = page.next;
        if cursor.is_none() {
            break;
        }
    }
    for snap in store.workers().await.unwrap() {
        let records = per_worker.get(&snap.record.id).copied().unwrap_or(0);
        assert!(
            records <= scale.capacity,
            "over-allocation: {} holds {records} > {}",
            snap.record.id,
            scale.capacity
        );
        assert_eq!(snap.dispatched, records, "drift on {}", snap.record.id);
        let listed = store
            .worker_dispatches(&snap.record.id, 1000)
            .await
            .unwrap();
        assert_eq!(listed.len() as u32, records);
    }
    assert_no_drift(store).await;
}

/// Invariant A: replicas allocating and releasing at once never place more
/// sessions on a worker than it holds, and counters match the records.
pub async fn concurrent_allocations_never_over_allocate(factory: &impl StoreFactory) {
    let scale = SCALE;
    let workers = SimulatedWorkers::new();
    let first = factory.replica().await;
    let fleet = register_fleet(&first, &workers, scale).await;
    // One worker refuses every call: its reservations must be undone.
    workers.set_behaviour(&fleet[0], Behaviour::Failing);
    let stop = Arc::new(AtomicBool::new(false));
    let over = Arc::new(AtomicU64::new(0));
    let sampler = {
        let (store, stop, over) = (Arc::clone(&first), Arc::clone(&stop), Arc::clone(&over));
        tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                for snap in store.workers().await.unwrap() {
                    if snap.dispatched > snap.record.max_sessions() {
                        over.fetch_add(1, Ordering::SeqCst);
                    }
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
    };
    let ops = Arc::new(AtomicU64::new(0));
    let placed = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for r in 0..scale.replicas {
        let svc = service(factory.replica().await, &workers, r as u64 + 1, |c| {
            c.retry_count = 2
        });
        for t in 0..scale.tasks_per_replica {
            let (svc, ops, placed) = (Arc::clone(&svc), Arc::clone(&ops), Arc::clone(&placed));
            let mut rng = Rng(0x9E37_79B9 ^ ((r * 1000 + t) as u64 + 1));
            tasks.push(tokio::spawn(async move {
                while ops.fetch_add(1, Ordering::SeqCst) < scale.operations as u64 {
                    let k = key(
                        &format!("exam-{}", rng.below(3)),
                        &format!("student-{}", rng.below(120)),
                    );
                    if rng.below(10) < 6 {
                        match svc.allocate(k, Default::default()).await {
                            Ok(a) => {
                                assert!(a.dispatch.state == DispatchState::Active);
                                placed.fetch_add(1, Ordering::SeqCst);
                            }
                            Err(Error::NoCapacity(_) | Error::AllocationInProgress(_)) => {}
                            Err(e) => panic!("allocate failed: {e}"),
                        }
                    } else {
                        svc.release(&k).await.expect("release");
                    }
                }
            }));
        }
    }
    for t in tasks {
        t.await.unwrap();
    }
    stop.store(true, Ordering::SeqCst);
    sampler.await.unwrap();
    assert_eq!(
        over.load(Ordering::SeqCst),
        0,
        "a sample saw over-allocation"
    );
    assert!(placed.load(Ordering::SeqCst) > 0, "nothing was placed");
    assert_eq!(
        dispatched(&first, &fleet[0]).await,
        0,
        "failing worker keeps no reservation"
    );
    assert_invariants(&first, scale).await;
}

/// Invariant B: many replicas allocating the same sessions at once agree on
/// one dispatch per session.
pub async fn concurrent_allocate_of_one_session_yields_one_dispatch(factory: &impl StoreFactory) {
    let scale = SCALE;
    let workers = SimulatedWorkers::new();
    let first = factory.replica().await;
    register_fleet(&first, &workers, scale).await;
    let sessions: Vec<SessionKey> = (0..20)
        .map(|i| key("exam-b", &format!("student-{i}")))
        .collect();
    let mut tasks = Vec::new();
    for r in 0..scale.replicas {
        let svc = service(factory.replica().await, &workers, r as u64 + 1, |_| {});
        for t in 0..scale.tasks_per_replica {
            let (svc, sessions) = (Arc::clone(&svc), sessions.clone());
            tasks.push(tokio::spawn(async move {
                let mut got = Vec::new();
                for i in 0..sessions.len() {
                    let k = sessions[(i + t) % sessions.len()].clone();
                    for _ in 0..50 {
                        match svc.allocate(k.clone(), Default::default()).await {
                            Ok(a) => {
                                got.push((k.clone(), a.dispatch.id));
                                break;
                            }
                            Err(Error::AllocationInProgress(_)) => tokio::task::yield_now().await,
                            Err(e) => panic!("allocate failed: {e}"),
                        }
                    }
                }
                got
            }));
        }
    }
    let mut ids: HashMap<SessionKey, BTreeSet<DispatchId>> = HashMap::new();
    for t in tasks {
        for (k, id) in t.await.unwrap() {
            ids.entry(k).or_default().insert(id);
        }
    }
    for k in &sessions {
        let seen = ids.get(k).cloned().unwrap_or_default();
        assert_eq!(seen.len(), 1, "{k} got {} different dispatches", seen.len());
        let stored = first.dispatch(k).await.unwrap().expect("stored");
        assert!(seen.contains(&stored.id));
    }
    let total: u32 = first
        .workers()
        .await
        .unwrap()
        .iter()
        .map(|s| s.dispatched)
        .sum();
    assert_eq!(total, sessions.len() as u32);
    assert_invariants(&first, scale).await;
}

/// Invariant C: allocations cut short mid-flight (their tasks dropped, as
/// when a replica crashes) leave reservations that reconcile reclaims;
/// afterwards every counter equals a recount.
pub async fn interrupted_allocations_leave_no_drift(factory: &impl StoreFactory) {
    let scale = SCALE;
    let workers = SimulatedWorkers::new();
    let first = factory.replica().await;
    let fleet = register_fleet(&first, &workers, scale).await;
    for w in &fleet {
        workers.set_behaviour(w, Behaviour::Slow(Duration::from_millis(3)));
    }
    let mut tasks = Vec::new();
    for r in 0..scale.replicas {
        let svc = service(factory.replica().await, &workers, r as u64 + 1, |c| {
            c.allocate_timeout = Duration::from_millis(1);
        });
        for t in 0..4 {
            let svc = Arc::clone(&svc);
            let mut rng = Rng((r * 100 + t + 7) as u64);
            tasks.push(tokio::spawn(async move {
                for _ in 0..60 {
                    let k = key("exam-c", &format!("student-{}", rng.below(80)));
                    let cut = Duration::from_millis(rng.below(6) as u64);
                    if rng.below(4) == 0 {
                        let _ = tokio::time::timeout(cut, svc.release(&k)).await;
                    } else {
                        let _ =
                            tokio::time::timeout(cut, svc.allocate(k, Default::default())).await;
                    }
                }
            }));
        }
    }
    for t in tasks {
        t.await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(20)).await;
    let svc = service(Arc::clone(&first), &workers, 77, |c| {
        c.allocate_timeout = Duration::from_millis(1);
    });
    let report = svc.reconcile().await.expect("reconcile");
    assert!(
        report.drift.is_empty(),
        "drift after interrupted allocations: {:?}",
        report.drift
    );
    let mut cursor = None;
    loop {
        let page = first.scan_dispatches(cursor.as_deref(), 100).await.unwrap();
        for d in &page.dispatches {
            assert_ne!(
                d.state,
                DispatchState::Reserved,
                "reservation {} survived reconcile",
                d.key
            );
        }
        cursor = page.next;
        if cursor.is_none() {
            break;
        }
    }
    assert_invariants(&first, scale).await;
}
