//! Cases of [`DispatchStore`](crate::store::DispatchStore): compare-and-reserve,
//! the dispatch lifecycle and its counters, supersede, scans, sticky
//! workers, hostile identifiers and recount.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::StoreFactory;
use super::fixtures::{
    STICKY, add_worker, dispatched, now, put_new, reserve, reserved, reserved_leaving, superseding,
    with_policy,
};
use crate::dispatch::DispatchState;
use crate::ids::{DispatchId, ExamId};
use crate::policy::AdminPolicy;
use crate::store::{CasOutcome, Counter, Reservation};
use crate::testkit::{assert_no_drift, key, wid, worker_record};

/// Compare-and-reserve checks `dispatched + unrecorded < max` and policy.
pub async fn reserve_respects_capacity_and_policy(factory: &impl StoreFactory) {
    let store = factory.replica().await;
    let w = add_worker(&store, "w-cap", 2).await;
    // Each reservation answers the slots it leaves free.
    assert_eq!(reserved_leaving(&store, &key("e", "u1"), &w).await.1, 1);
    assert_eq!(reserved_leaving(&store, &key("e", "u2"), &w).await.1, 0);
    assert_eq!(
        reserve(&store, &key("e", "u3"), &w).await,
        Reservation::Full
    );
    assert_eq!(dispatched(&store, &w).await, 2);

    // The worker's own report counts too: 3 active of 3 slots, none dispatched.
    put_new(&store, &worker_record("w-busy", 3, 3)).await;
    assert_eq!(
        reserve(&store, &key("e", "u4"), &wid("w-busy")).await,
        Reservation::Full
    );
    // 1 of 4 running unrecorded: a reservation leaves 2.
    put_new(&store, &worker_record("w-part", 4, 1)).await;
    let part = reserved_leaving(&store, &key("e", "u-part"), &wid("w-part")).await;
    assert_eq!(part.1, 2);
    assert!(
        store
            .release(&part.0.key, Some(part.0.id), None, None)
            .await
            .unwrap()
            .is_some()
    );

    for (code, policy) in [
        ("w-draining", AdminPolicy::Draining { deadline: None }),
        ("w-drained", AdminPolicy::Drained),
        ("w-disabled", AdminPolicy::Disabled { forced: false }),
    ] {
        put_new(&store, &with_policy(worker_record(code, 5, 0), policy)).await;
        assert_eq!(
            reserve(&store, &key("e", "u5"), &wid(code)).await,
            Reservation::NotAccepting,
            "{code}"
        );
    }
    let mut gone = worker_record("w-gone", 5, 0);
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
    let bigger = worker_record("w-cap", 3, 0);
    assert!(matches!(
        store.put_worker(&bigger, Some(snap.version)).await.unwrap(),
        CasOutcome::Written { .. }
    ));
    assert_eq!(
        dispatched(&store, &w).await,
        2,
        "a put never touches the dispatched count"
    );
    assert_eq!(reserved_leaving(&store, &key("e", "u3"), &w).await.1, 0);
    assert_eq!(
        reserve(&store, &key("e", "u6"), &w).await,
        Reservation::Full
    );
    assert!(store.dispatch(&key("e", "u5")).await.unwrap().is_none());
    assert_no_drift(&*store).await;
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
        .reserve(&superseding(&k, &b, DispatchId::new()))
        .await
        .unwrap()
    {
        Reservation::Existing(d) => assert_eq!(d.id, first.id),
        other => panic!("expected Existing, got {other:?}"),
    }
    // Superseding onto the same worker changes nothing either.
    match store.reserve(&superseding(&k, &a, first.id)).await.unwrap() {
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
            .confirm(&k1, DispatchId::new(), None, now(), STICKY, None)
            .await
            .unwrap()
            .is_none()
    );
    let session = serde_json::json!({"connection": "rdp://w-life/1", "nested": {"a": [1, 2]}});
    let active = other
        .confirm(&k1, d1.id, Some(session.clone()), now(), STICKY, None)
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
            .confirm(&k1, d1.id, None, now(), STICKY, None)
            .await
            .unwrap()
            .is_none()
    );
    assert!(!store.undo(&k1, d1.id, None, None, None).await.unwrap());

    // Undo the other reservation: only with its id.
    assert!(
        !store
            .undo(&k2, DispatchId::new(), None, None, None)
            .await
            .unwrap()
    );
    assert!(store.undo(&k2, d2.id, None, None, None).await.unwrap());
    assert!(!store.undo(&k2, d2.id, None, None, None).await.unwrap());
    assert_eq!(dispatched(&store, &w).await, 1);

    // Release: wrong id no-op, then release, then idempotent.
    assert!(
        store
            .release(&k1, Some(DispatchId::new()), None, None)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        store
            .release(&k1, Some(d1.id), None, None)
            .await
            .unwrap()
            .map(|d| d.id),
        Some(d1.id)
    );
    assert!(
        store
            .release(&k1, Some(d1.id), None, None)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .release(&k1, None, None, None)
            .await
            .unwrap()
            .is_none()
    );
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
        store
            .release(&k1, None, None, None)
            .await
            .unwrap()
            .map(|d| d.id),
        Some(d3.id)
    );
    assert_no_drift(&*store).await;
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
        .confirm(&k, old.id, None, now(), STICKY, None)
        .await
        .unwrap()
        .unwrap();
    // Fill b, then a supersede onto it is refused and nothing changes.
    let filler = reserved(&store, &key("other", "x"), &b).await;
    assert_eq!(
        store.reserve(&superseding(&k, &b, old.id)).await.unwrap(),
        Reservation::Full
    );
    assert_eq!(
        store.dispatch(&k).await.unwrap().map(|d| d.id),
        Some(old.id)
    );
    assert!(
        store
            .release(&filler.key, Some(filler.id), None, None)
            .await
            .unwrap()
            .is_some()
    );

    match store.reserve(&superseding(&k, &b, old.id)).await.unwrap() {
        Reservation::Reserved {
            dispatch,
            superseded,
            slots_left,
            permit: None,
        } => {
            assert_eq!(dispatch.worker, b);
            assert_eq!(superseded.map(|d| d.id), Some(old.id));
            assert_eq!(slots_left, 0, "b's one slot is taken");
        }
        other => panic!("expected a superseding reservation, got {other:?}"),
    }
    assert_eq!(dispatched(&store, &a).await, 0);
    assert_eq!(dispatched(&store, &b).await, 1);
    let affinity = store.placement(&exam, now()).await.unwrap().affinity;
    assert_eq!(affinity, BTreeMap::from([(b.clone(), 1)]));
    assert_no_drift(&*store).await;
}

/// An orphaned dispatch stays (and keeps its slot) until released.
pub async fn orphaned_dispatch_keeps_its_slot(factory: &impl StoreFactory) {
    let store = factory.replica().await;
    let w = add_worker(&store, "w-orphan", 1).await;
    let k = key("e", "u");
    let d = reserved(&store, &k, &w).await;
    store
        .confirm(&k, d.id, None, now(), STICKY, None)
        .await
        .unwrap()
        .unwrap();
    assert!(
        !store
            .mark_orphaned(&k, DispatchId::new(), None)
            .await
            .unwrap()
    );
    assert!(store.mark_orphaned(&k, d.id, None).await.unwrap());
    assert_eq!(
        store.dispatch(&k).await.unwrap().unwrap().state,
        DispatchState::Orphaned
    );
    assert_eq!(dispatched(&store, &w).await, 1);
    assert_eq!(
        reserve(&store, &key("e", "u2"), &w).await,
        Reservation::Full
    );
    assert!(
        store
            .release(&k, Some(d.id), None, None)
            .await
            .unwrap()
            .is_some()
    );
    assert_no_drift(&*store).await;
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
        .confirm(&k, d.id, None, t0, Duration::from_secs(60), None)
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
        assert!(store.release(k, None, None, None).await.unwrap().is_some());
    }
    assert_eq!(dispatched(&store, &w).await, 0);
    assert_no_drift(&*store).await;
}

/// Recount reports counters that disagree with the records and repairs
/// them when asked.
pub async fn recount_finds_and_repairs_drift(factory: &impl StoreFactory) {
    let store = factory.replica().await;
    let w = add_worker(&store, "w-drift", 10).await;
    let k = key("e", "u");
    reserved(&store, &k, &w).await;
    assert_no_drift(&*store).await;
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
    assert_no_drift(&*store).await;
}
