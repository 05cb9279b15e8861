//! Cases of a start permit taken with compare-and-reserve and given back
//! by the confirmation or the undo (the contract of
//! [`StartPermits`](crate::pacing::StartPermits)): granted only when one
//! is free and nobody waits, given back even when the reservation is
//! gone, and never more than the limit across replicas.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use super::StoreFactory;
use super::fixtures::{add_worker, now};
use crate::dispatch::Dispatch;
use crate::ids::{SessionKey, WorkerId};
use crate::pacing::{PermitAnswer, PermitRequest, PermitReturn, StartQueue, StartSample};
use crate::store::{Reservation, Store};
use crate::testkit::{key, request};
use crate::time::Timestamp;

const LEASE: Duration = Duration::from_secs(60);
const STICKY: Duration = Duration::from_secs(60);
const KEEP: u32 = 50;

/// Reserves `key` on `worker` at `at`, asking for a permit under `limit`:
/// the reservation and the permits held with it, if granted.
async fn reserve_paced(
    store: &Arc<dyn Store>,
    key: &SessionKey,
    worker: &WorkerId,
    limit: u32,
    at: Timestamp,
) -> (Dispatch, Option<u32>) {
    let mut asked = request(key, worker, at);
    asked.permit = Some(PermitRequest {
        limit,
        now: at,
        until: at.plus(LEASE),
    });
    match store.reserve(&asked).await.expect("reserve") {
        Reservation::Reserved {
            dispatch, permit, ..
        } => (dispatch, permit),
        other => panic!("expected a reservation of {key}, got {other:?}"),
    }
}

fn given_back(worker: &WorkerId, millis: Option<u32>) -> PermitReturn {
    PermitReturn {
        worker: worker.clone(),
        sample: millis.map(|millis| StartSample {
            millis,
            in_flight: 1,
        }),
        keep: KEEP,
    }
}

fn held(view: &StartQueue) -> Vec<String> {
    let mut ids: Vec<String> = view.held.iter().map(|h| h.id.clone()).collect();
    ids.sort_unstable();
    ids
}

fn ids(dispatches: &[&Dispatch]) -> Vec<String> {
    let mut ids: Vec<String> = dispatches.iter().map(|d| d.id.to_string()).collect();
    ids.sort_unstable();
    ids
}

/// A reservation asking for a permit gets one under its dispatch id while
/// one is free, none at the limit or while a start waits (it overtakes
/// nobody), and an expired permit does not count; the confirmation gives
/// it back with its sample, the undo without, and a confirmation of a
/// reservation that is gone still gives it back.
pub async fn a_free_permit_comes_with_the_reservation_and_goes_with_its_end(
    factory: &impl StoreFactory,
) {
    let a = factory.replica().await;
    let b = factory.replica().await;
    let w = add_worker(&a, "w-paced", 10).await;
    let t = now();

    let (r1, p1) = reserve_paced(&a, &key("e", "u1"), &w, 2, t).await;
    let (r2, p2) = reserve_paced(&b, &key("e", "u2"), &w, 2, t).await;
    let (r3, p3) = reserve_paced(&a, &key("e", "u3"), &w, 2, t).await;
    assert_eq!((p1, p2, p3), (Some(1), Some(2), None), "granted while free");
    let view = b.start_queue(&w, t).await.expect("queue");
    assert_eq!(held(&view), ids(&[&r1, &r2]));
    assert!(view.held.iter().all(|h| h.since == t), "{view:?}");
    assert!(view.waiting.is_empty());

    // The start reserved without one waits for it.
    let r3_id = r3.id.to_string();
    let waiting = a
        .acquire_start_permit(&w, &r3_id, 2, t, t.plus(LEASE))
        .await
        .expect("acquire");
    assert_eq!(
        waiting,
        PermitAnswer::Waiting {
            position: 0,
            in_flight: 2
        }
    );

    // The confirmation gives the permit back with its sample.
    let confirmed = b
        .confirm(
            &r1.key,
            r1.id,
            None,
            t,
            STICKY,
            Some(&given_back(&w, Some(120))),
        )
        .await
        .expect("confirm");
    assert!(confirmed.is_some(), "confirmed");
    let view = a.start_queue(&w, t).await.expect("queue");
    assert_eq!(held(&view), ids(&[&r2]));
    assert_eq!(view.waiting, std::slice::from_ref(&r3_id));
    let millis: Vec<u32> = view.samples.iter().map(|s| s.millis).collect();
    assert_eq!(millis, [120]);

    // A permit is free, but a start waits for it: no overtaking.
    let (r4, p4) = reserve_paced(&b, &key("e", "u4"), &w, 2, t).await;
    assert_eq!(p4, None, "a waiting start is not overtaken");
    assert_eq!(
        a.acquire_start_permit(&w, &r3_id, 2, t, t.plus(LEASE))
            .await
            .expect("acquire"),
        PermitAnswer::Granted { in_flight: 2 }
    );

    // The undo gives the permit back, without a sample.
    assert!(
        a.undo(&r2.key, r2.id, None, None, Some(&given_back(&w, None)))
            .await
            .expect("undo")
    );
    let view = b.start_queue(&w, t).await.expect("queue");
    assert_eq!(held(&view), ids(&[&r3]));
    assert_eq!(view.samples.len(), 1);

    // The student left while the start ran: the confirmation finds
    // nothing to confirm and still gives the permit back.
    assert!(
        a.release(&r3.key, Some(r3.id), None, None)
            .await
            .expect("release")
            .is_some()
    );
    assert_eq!(
        held(&b.start_queue(&w, t).await.expect("queue")),
        ids(&[&r3])
    );
    let gone = b
        .confirm(
            &r3.key,
            r3.id,
            None,
            t,
            STICKY,
            Some(&given_back(&w, Some(90))),
        )
        .await
        .expect("confirm");
    assert!(gone.is_none(), "nothing to confirm");
    let view = a.start_queue(&w, t).await.expect("queue");
    assert!(view.held.is_empty() && view.waiting.is_empty(), "{view:?}");
    let millis: Vec<u32> = view.samples.iter().map(|s| s.millis).collect();
    assert_eq!(millis, [120, 90]);

    // r4 never held one: giving it back is harmless. Permits past their
    // lease do not count against a new reservation's.
    assert!(
        b.undo(&r4.key, r4.id, None, None, Some(&given_back(&w, None)))
            .await
            .expect("undo")
    );
    let later = t.plus(LEASE);
    let (_, d1) = reserve_paced(&a, &key("e", "d1"), &w, 1, t).await;
    assert_eq!(d1, Some(1));
    let (_, d2) = reserve_paced(&a, &key("e", "d2"), &w, 1, t).await;
    assert_eq!(d2, None, "at the limit of one");
    let (_, d3) = reserve_paced(&b, &key("e", "d3"), &w, 1, later).await;
    assert_eq!(d3, Some(1), "the expired permit no longer counts");
}

/// Invariant F with the permits taken by compare-and-reserve: many
/// placements on several replicas reserve one worker asking for a permit,
/// take the queue when none came with the slot, hold it for a while and
/// give it back with their confirmation; at no moment are more than the
/// limit held, each answer says so, and every start is confirmed with its
/// sample.
pub async fn reserved_permits_never_exceed_the_limit_across_replicas(factory: &impl StoreFactory) {
    const LIMIT: u32 = 3;
    const STARTS: u32 = 24;
    let setup = factory.replica().await;
    let w = add_worker(&setup, "w-paced-storm", STARTS).await;
    let holding = Arc::new(AtomicU32::new(0));
    let most = Arc::new(AtomicU32::new(0));
    let with_slot = Arc::new(AtomicU32::new(0));
    let mut tasks = Vec::new();
    for r in 0..4u32 {
        let store = factory.replica().await;
        for i in 0..STARTS / 4 {
            let (store, w) = (Arc::clone(&store), w.clone());
            let (holding, most, with_slot) = (
                Arc::clone(&holding),
                Arc::clone(&most),
                Arc::clone(&with_slot),
            );
            tasks.push(tokio::spawn(async move {
                let k = key("storm", &format!("u-{r}-{i}"));
                let (reserved, granted) = reserve_paced(&store, &k, &w, LIMIT, now()).await;
                let id = reserved.id.to_string();
                match granted {
                    Some(in_flight) => {
                        assert!(in_flight <= LIMIT, "{in_flight} permits held");
                        with_slot.fetch_add(1, Ordering::SeqCst);
                    }
                    None => loop {
                        let t = now();
                        match store
                            .acquire_start_permit(&w, &id, LIMIT, t, t.plus(LEASE))
                            .await
                            .expect("acquire")
                        {
                            PermitAnswer::Granted { in_flight } => {
                                assert!(in_flight <= LIMIT, "{in_flight} permits held");
                                break;
                            }
                            PermitAnswer::Waiting { in_flight, .. } => {
                                assert!(in_flight <= LIMIT, "{in_flight} permits held");
                                tokio::time::sleep(Duration::from_millis(2)).await;
                            }
                        }
                    },
                }
                let n = holding.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(n, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(3)).await;
                holding.fetch_sub(1, Ordering::SeqCst);
                let confirmed = store
                    .confirm(
                        &k,
                        reserved.id,
                        None,
                        now(),
                        STICKY,
                        Some(&given_back(&w, Some(3))),
                    )
                    .await
                    .expect("confirm");
                assert!(confirmed.is_some(), "{k} confirmed");
            }));
        }
    }
    let all = async {
        for t in tasks {
            t.await.expect("start task");
        }
    };
    tokio::time::timeout(Duration::from_secs(60), all)
        .await
        .expect("every start gets its permit");
    let most = most.load(Ordering::SeqCst);
    assert!(most <= LIMIT, "{most} starts held permits at once");
    assert!(
        with_slot.load(Ordering::SeqCst) >= 1,
        "the first reservation finds a free permit"
    );
    let view = setup.start_queue(&w, now()).await.expect("queue");
    assert!(view.held.is_empty() && view.waiting.is_empty(), "{view:?}");
    assert_eq!(view.samples.len(), STARTS as usize);
}
