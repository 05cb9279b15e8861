//! Used slots are `dispatched + unrecorded`: a removal frees its slot at
//! once, one that holds it keeps it in use, and invariant A holds with
//! releases interleaved.

use std::sync::Arc;

use tokio::sync::Barrier;

use super::StoreFactory;
use super::fixtures::{add_worker, reserve, reserved};
use crate::store::{CasOutcome, Reservation};
use crate::testkit::{assert_no_drift, key};

/// A release frees its slot at once; an undo or release that holds the
/// slot keeps it in use (the worker may still run the session), moves the
/// worker's version, and counts in `unrecorded`.
pub async fn held_removals_keep_the_slot_and_others_free_it(factory: &impl StoreFactory) {
    let store = factory.replica().await;
    let w = add_worker(&store, "w-freed", 2).await;
    let (a, b) = (key("exam-freed", "a"), key("exam-freed", "b"));
    let da = reserved(&store, &a, &w).await;
    reserved(&store, &b, &w).await;
    assert_eq!(
        reserve(&store, &key("exam-freed", "c"), &w).await,
        Reservation::Full
    );

    // Released, the worker confirmed the stop: usable at once.
    let before = store.worker(&w).await.unwrap().expect("stored");
    store
        .release(&a, Some(da.id), None, None)
        .await
        .unwrap()
        .expect("released");
    let after = store.worker(&w).await.unwrap().expect("stored");
    assert_eq!(
        (after.dispatched, after.record.unrecorded, after.version),
        (1, 0, before.version),
        "a plain release neither holds nor moves the version"
    );
    let c = key("exam-freed", "c");
    let dc = reserved(&store, &c, &w).await;

    // Released, the stop failed: the slot stays held.
    store
        .release(&c, Some(dc.id), None, Some(&w))
        .await
        .unwrap()
        .expect("released");
    let held = store.worker(&w).await.unwrap().expect("stored");
    assert_eq!((held.dispatched, held.record.unrecorded), (1, 1));
    assert!(
        held.version > after.version,
        "a held removal moves the version"
    );
    assert_eq!(
        reserve(&store, &key("exam-freed", "d"), &w).await,
        Reservation::Full
    );

    // A heartbeat written from a read before the hold conflicts.
    let mut stale = after.record.clone();
    stale.unrecorded = 0;
    assert!(matches!(
        store.put_worker(&stale, Some(after.version)).await.unwrap(),
        CasOutcome::Conflict { .. }
    ));
    // One written from a fresh read settles it (the worker reported the
    // session stopped): the slot is usable again.
    let mut fresh = held.record.clone();
    fresh.unrecorded = 0;
    assert!(matches!(
        store.put_worker(&fresh, Some(held.version)).await.unwrap(),
        CasOutcome::Written { .. }
    ));
    let d = key("exam-freed", "d");
    let dd = reserved(&store, &d, &w).await;

    // An undo that holds keeps the slot too; one that finds nothing to
    // remove holds nothing.
    assert!(store.undo(&d, dd.id, None, Some(&w), None).await.unwrap());
    let undone = store.worker(&w).await.unwrap().expect("stored");
    assert_eq!((undone.dispatched, undone.record.unrecorded), (1, 1));
    assert!(!store.undo(&d, dd.id, None, Some(&w), None).await.unwrap());
    assert!(
        store
            .release(&d, None, None, Some(&w))
            .await
            .unwrap()
            .is_none()
    );
    let unchanged = store.worker(&w).await.unwrap().expect("stored");
    assert_eq!(
        (unchanged.record.unrecorded, unchanged.version),
        (1, undone.version)
    );
    assert_eq!(
        reserve(&store, &key("exam-freed", "e"), &w).await,
        Reservation::Full
    );
    assert_no_drift(&*store).await;
}

/// Replicas reserving and releasing on one worker at once, a release
/// holding its slot every third time: no reservation ever lands on a full
/// worker, so `dispatched + unrecorded` never exceeds its slots.
pub async fn freed_slots_keep_invariant_a_under_concurrency(factory: &impl StoreFactory) {
    const REPLICAS: usize = 4;
    const TASKS: usize = 4;
    const ROUNDS: usize = 12;
    const SLOTS: u32 = 6;
    let first = factory.replica().await;
    let w = add_worker(&first, "w-churn", SLOTS).await;
    let barrier = Arc::new(Barrier::new(REPLICAS * TASKS));
    let mut tasks = Vec::new();
    for r in 0..REPLICAS {
        let store = factory.replica().await;
        for t in 0..TASKS {
            let (store, w, barrier) = (Arc::clone(&store), w.clone(), Arc::clone(&barrier));
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                let (mut placed, mut held) = (0u32, 0u32);
                for i in 0..ROUNDS {
                    let k = key("exam-churn", &format!("s-{r}-{t}-{i}"));
                    if let Reservation::Reserved { dispatch, .. } = reserve(&store, &k, &w).await {
                        placed += 1;
                        let hold = (i % 3 == 0).then_some(&w);
                        held += u32::from(hold.is_some());
                        store
                            .release(&k, Some(dispatch.id), None, hold)
                            .await
                            .expect("release")
                            .expect("its own dispatch");
                    }
                }
                (placed, held)
            }));
        }
    }
    let (mut placed, mut held) = (0, 0);
    for t in tasks {
        let (p, h) = t.await.unwrap();
        placed += p;
        held += h;
    }
    let snap = first.worker(&w).await.unwrap().expect("stored");
    assert_eq!(snap.dispatched, 0, "every reservation was released");
    assert_eq!(snap.record.unrecorded, held, "every held release counts");
    assert!(
        held <= SLOTS,
        "{held} held slots on a worker of {SLOTS}: a reservation landed on a full worker"
    );
    assert!(
        placed >= SLOTS,
        "free slots were refused: only {placed} placed"
    );
    let late = reserve(&first, &key("exam-churn", "late"), &w).await;
    if held < SLOTS {
        assert!(matches!(late, Reservation::Reserved { .. }), "{late:?}");
    } else {
        assert_eq!(late, Reservation::Full);
    }
    assert_no_drift(&*first).await;
}
