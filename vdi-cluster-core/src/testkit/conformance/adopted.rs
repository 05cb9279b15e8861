//! The mark of an adopted dispatch ([`Dispatch::adopted`]): stored and
//! read back by every read, dropped when a placement replaces the
//! dispatch, and what lets a release that raced the report that had the
//! session adopted free its slot at the worker's next report instead of
//! after the live-session grace.

use std::sync::Arc;

use super::StoreFactory;
use super::concurrency::service;
use super::fixtures::{STICKY, add_worker, dispatched, now, superseding};
use crate::ClusterService;
use crate::dispatch::{Dispatch, DispatchState};
use crate::health::HeartbeatStamp;
use crate::ids::{SessionKey, WorkerId};
use crate::service::HeartbeatAck;
use crate::store::{Adoption, Reservation, Store};
use crate::testkit::{FIXTURE_BOOT, SimulatedWorkers, assert_no_drift, heartbeat_with_slots, key};

/// The active dispatch of `key` on `worker`, as a report at sequence 2
/// adopts it (`adopted`), or as a dump written before the mark existed
/// copies one in.
fn adoption(key: &SessionKey, worker: &WorkerId, adopted: bool) -> Dispatch {
    let at = now();
    let mut d = Dispatch::reserve(
        key.clone(),
        worker.clone(),
        at,
        Some(FIXTURE_BOOT.into()),
        Some(2),
    );
    d.state = DispatchState::Active;
    d.activated_at = Some(at);
    d.adopted = adopted;
    d
}

/// The stored dispatch of `key`, as each read answers it: alone, among its
/// worker's, and in a scan.
async fn read_back(store: &Arc<dyn Store>, key: &SessionKey) -> [Dispatch; 3] {
    let alone = store.dispatch(key).await.unwrap().expect("its dispatch");
    let on_worker = store
        .worker_dispatches(&alone.worker, 100)
        .await
        .unwrap()
        .into_iter()
        .find(|d| &d.key == key)
        .expect("among its worker's dispatches");
    let mut cursor = None;
    let scanned = loop {
        let page = store.scan_dispatches(cursor.as_deref(), 100).await.unwrap();
        if let Some(d) = page.dispatches.into_iter().find(|d| &d.key == key) {
            break d;
        }
        cursor = Some(page.next.expect("scanned before the end"));
    };
    [alone, on_worker, scanned]
}

/// An adopted dispatch keeps its mark (with the sequence of the report
/// that adopted it) through every read, one adopted without the mark
/// reads back without it, and a placement that replaces an adopted
/// dispatch writes one without the mark.
pub async fn an_adopted_mark_is_stored_and_dropped_by_a_placement(factory: &impl StoreFactory) {
    let store = factory.replica().await;
    let w = add_worker(&store, "w-mark", 2).await;
    let other = add_worker(&store, "w-mark-2", 2).await;
    let k = key("exam-mark", "u1");
    let marked = adoption(&k, &w, true);
    let Adoption::Adopted(written) = store.adopt(&marked, STICKY).await.unwrap() else {
        panic!("{k} was not adopted");
    };
    assert!(written.adopted);
    for d in read_back(&store, &k).await {
        assert_eq!((d.id, d.adopted, d.worker_seq), (marked.id, true, Some(2)));
    }

    let plain_key = key("exam-mark", "u2");
    let plain = adoption(&plain_key, &w, false);
    assert!(matches!(
        store.adopt(&plain, STICKY).await.unwrap(),
        Adoption::Adopted(_)
    ));
    for d in read_back(&store, &plain_key).await {
        assert_eq!((d.id, d.adopted), (plain.id, false));
    }

    // Moved by a placement: the new dispatch is the placement's.
    let Reservation::Reserved {
        dispatch,
        superseded,
        ..
    } = store
        .reserve(&superseding(&k, &other, marked.id))
        .await
        .unwrap()
    else {
        panic!("{k} was not moved");
    };
    assert!(superseded.expect("the adopted dispatch").adopted);
    assert!(!dispatch.adopted);
    for d in read_back(&store, &k).await {
        assert_eq!((d.id, d.adopted), (dispatch.id, false), "reserved");
    }
    store
        .confirm(&k, dispatch.id, None, now(), STICKY, None)
        .await
        .unwrap()
        .expect("confirmed");
    for d in read_back(&store, &k).await {
        assert_eq!(
            (d.id, d.state, d.adopted),
            (dispatch.id, DispatchState::Active, false),
            "confirmed"
        );
    }
    assert_eq!(dispatched(&store, &w).await, 1);
    assert_eq!(dispatched(&store, &other).await, 1);
    assert_no_drift(&*store).await;
}

/// A heartbeat of `code` (`slots` slots) at sequence `seq` listing `live`.
async fn beat(
    svc: &ClusterService,
    code: &str,
    slots: u32,
    seq: u64,
    live: Vec<SessionKey>,
) -> HeartbeatAck {
    let mut hb = heartbeat_with_slots(code, slots, live.len() as u32);
    hb.stamp = HeartbeatStamp {
        boot_id: Some(format!("{code}-boot")),
        seq: Some(seq),
    };
    hb.live_sessions = Some(live);
    let ack = svc.fleet().heartbeat(hb).await.expect("heartbeat");
    assert!(ack.accepted, "heartbeat {seq}");
    ack
}

/// Through the service, on a worker with one slot: a heartbeat the worker
/// composed while it ran a student's desktop, applied after the student's
/// release stopped it, has the session adopted; the worker's next report,
/// which omits it, frees the slot in its own write — well within the
/// live-session grace — and the next student is placed there.
pub async fn a_release_racing_a_heartbeat_frees_the_slot_at_the_next_report(
    factory: &impl StoreFactory,
) {
    let workers = SimulatedWorkers::new();
    let svc = service(factory.replica().await, &workers, 1, |_| {});
    let code = "w-release-race";
    beat(&svc, code, 1, 1, Vec::new()).await;
    let (first, second) = (key("exam-rr", "s1"), key("exam-rr", "s2"));
    let placed = svc
        .placement()
        .allocate(first.clone(), Default::default())
        .await
        .expect("the first student is placed");
    let worker = placed.dispatch.worker;

    // Composed while the desktop runs; delivered after the release.
    let composed = workers.sessions(&worker);
    assert_eq!(composed, vec![first.clone()]);
    svc.placement().release(&first).await.unwrap();
    assert!(workers.sessions(&worker).is_empty(), "the desktop stopped");
    let late = beat(&svc, code, 1, 2, composed).await;
    assert_eq!(late.adopted_sessions, 1, "the late report adopts it");
    let store = factory.replica().await;
    let adopted = store.dispatch(&first).await.unwrap().expect("adopted");
    assert_eq!((adopted.adopted, adopted.worker_seq), (true, Some(2)));
    assert!(
        svc.placement()
            .allocate(second.clone(), Default::default())
            .await
            .is_err(),
        "the slot is held by the adopted record"
    );

    let next = beat(&svc, code, 1, 3, workers.sessions(&worker)).await;
    assert_eq!(
        (next.dispatched_sessions, next.available_sessions),
        (0, 1),
        "the next report frees the slot"
    );
    assert_eq!(store.dispatch(&first).await.unwrap(), None);
    let seated = svc
        .placement()
        .allocate(second.clone(), Default::default())
        .await
        .expect("the next student is placed without waiting for the grace");
    assert_eq!(seated.dispatch.worker, worker);
    assert_eq!(workers.sessions(&worker), vec![second]);
    assert_no_drift(&*store).await;
}
