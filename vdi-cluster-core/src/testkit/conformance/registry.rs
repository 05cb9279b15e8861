//! Cases of [`Registry`](crate::store::Registry): compare-and-set writes,
//! listing and delete.

use std::collections::BTreeSet;

use super::StoreFactory;
use super::fixtures::{add_worker, put_new, reserve, reserved};
use crate::ids::WorkerId;
use crate::store::{CasOutcome, DeleteOutcome, Reservation};
use crate::testkit::{key, wid, worker_record};

/// `put_worker` writes only on the expected version and bumps it.
pub async fn worker_put_is_compare_and_set(factory: &impl StoreFactory) {
    let store = factory.replica().await;
    let record = worker_record("w-cas", 4, 0);
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
    // Stored beside the record and read back into it.
    changed.unrecorded = 2;
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
    let record = worker_record("w-race", 4, 0);
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
    assert!(
        store
            .release(&d.key, Some(d.id), None, None)
            .await
            .unwrap()
            .is_some()
    );
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
