//! A restarted worker's report releases what it no longer runs
//! ([`Outbox::put_worker_releasing_lost`](crate::outbox::Outbox::put_worker_releasing_lost)):
//! the record's compare-and-set and the removals are one atomic step, each
//! removal carries its own alert, and two replicas applying the same
//! heartbeat free the slots once.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Barrier;

use super::StoreFactory;
use super::fixtures::{now, put_new, reserve};
use super::outbox::{endpoint, entry, states};
use crate::dispatch::Dispatch;
use crate::health::HeartbeatStamp;
use crate::ids::{DispatchId, SessionKey};
use crate::outbox::{DeliveryState, LostDispatch, LostRelease};
use crate::store::{Reservation, Store};
use crate::testkit::{
    assert_no_drift, key, request, reserve_and_confirm, total_dispatched, worker_record,
};
use crate::worker::WorkerRecord;

const TTL: Duration = Duration::from_secs(60);

/// `record` as a heartbeat of a new boot writes it: nothing live.
fn restarted(record: &WorkerRecord) -> WorkerRecord {
    WorkerRecord {
        stamp: Some(HeartbeatStamp {
            boot_id: Some("boot-2".into()),
            seq: Some(1),
        }),
        live_sessions: Some(Vec::new()),
        reported_active: 0,
        ..record.clone()
    }
}

/// `d` to release, with one entry for `endpoint` under a key naming it.
fn lost(d: &Dispatch, endpoint: &str) -> LostDispatch {
    lost_as(&d.key, d.id, endpoint)
}

fn lost_as(key: &SessionKey, id: DispatchId, endpoint: &str) -> LostDispatch {
    let name = format!("lost-{}-{}", key.exam_id, key.user_id);
    LostDispatch {
        key: key.clone(),
        id,
        entries: vec![entry(&format!("msg_{name}"), endpoint, &name, now())],
        interruption: None,
    }
}

/// Confirms `users` of `exam` on `record`'s worker.
async fn place(
    store: &Arc<dyn Store>,
    record: &WorkerRecord,
    exam: &str,
    users: &[&str],
) -> Vec<Dispatch> {
    let mut placed = Vec::new();
    for user in users {
        let r = request(&key(exam, user), &record.id, now());
        placed.push(reserve_and_confirm(&**store, &r, now(), TTL).await);
    }
    placed
}

/// The record's compare-and-set and the removals of the lost dispatches
/// are one step: a stale version removes nothing and writes no alert; the
/// current one writes the record and removes exactly the dispatches still
/// stored under their id on that worker, each with its counters and its
/// own alert, freeing their slots at once.
pub async fn restarted_worker_releases_lost_sessions_in_one_step(factory: &impl StoreFactory) {
    let store = factory.replica().await;
    assert!(
        store
            .put_webhook(&endpoint("wh_lost", now()))
            .await
            .unwrap()
    );
    let record = worker_record("w-restart", 4, 0);
    let version = put_new(&store, &record).await;
    let other = worker_record("w-steady", 2, 0);
    put_new(&store, &other).await;
    let a_b = place(&store, &record, "e-lost", &["a", "b"]).await;
    let c = place(&store, &record, "e-kept", &["c"]).await.remove(0);
    let x = place(&store, &other, "e-lost", &["x"]).await.remove(0);
    let d = key("e-kept", "d");
    let Reservation::Reserved { .. } = reserve(&store, &d, &record.id).await else {
        panic!("{d} is reserved");
    };
    assert_eq!(
        reserve(&store, &key("e-lost", "full"), &record.id).await,
        Reservation::Full
    );
    let report = restarted(&record);
    let items = [
        lost(&a_b[0], "wh_lost"),
        lost(&a_b[1], "wh_lost"),
        // Not its dispatch any more (another id), and not on this worker.
        lost_as(&c.key, DispatchId::new(), "wh_lost"),
        lost(&x, "wh_lost"),
    ];
    let record_entry = [entry("msg_rec", "wh_lost", "rec", now())];

    let stale = store
        .put_worker_releasing_lost(&report, version + 1, &record_entry, &items)
        .await
        .unwrap();
    assert_eq!(
        stale,
        LostRelease::Conflict {
            current: Some(version)
        }
    );
    assert!(
        states(&store, "wh_lost").await.is_empty(),
        "nothing written"
    );
    assert_eq!(
        store.worker(&record.id).await.unwrap().unwrap().dispatched,
        4
    );

    let written = store
        .put_worker_releasing_lost(&report, version, &record_entry, &items)
        .await
        .unwrap();
    let LostRelease::Written {
        version: now_at,
        released,
    } = written
    else {
        panic!("the current version writes: {written:?}");
    };
    assert!(now_at > version);
    assert_eq!(released, vec![a_b[0].key.clone(), a_b[1].key.clone()]);
    let snap = store.worker(&record.id).await.unwrap().expect("kept");
    assert_eq!((snap.version, snap.dispatched), (now_at, 2));
    assert_eq!(snap.record.boot_id(), Some("boot-2"));
    assert!(store.dispatch(&a_b[0].key).await.unwrap().is_none());
    assert!(store.dispatch(&c.key).await.unwrap().is_some());
    assert_eq!(
        store.dispatch(&x.key).await.unwrap().map(|d| d.id),
        Some(x.id)
    );
    let affinity = store.placement(&a_b[0].key.exam_id, now()).await.unwrap();
    assert_eq!(affinity.affinity.get(&record.id), None, "{affinity:?}");
    assert_eq!(affinity.affinity.get(&other.id), Some(&1));
    let pending = DeliveryState::Pending;
    assert_eq!(
        states(&store, "wh_lost").await,
        vec![
            ("msg_lost-e-lost-a".into(), pending),
            ("msg_lost-e-lost-b".into(), pending),
            ("msg_rec".into(), pending),
        ],
        "the record's alert and one per session released, no other"
    );
    assert_no_drift(&*store).await;

    // Their slots are free at once; the worker's own count still holds.
    for user in ["n1", "n2"] {
        let r = reserve(&store, &key("e-new", user), &record.id).await;
        assert!(matches!(r, Reservation::Reserved { .. }), "{r:?}");
    }
    assert_eq!(
        reserve(&store, &key("e-new", "n3"), &record.id).await,
        Reservation::Full
    );
    assert_no_drift(&*store).await;
}

/// Two replicas (two independent handles) apply the same restart
/// heartbeat at once, several times: one step wins and frees the slots,
/// the other writes and removes nothing; a step computed from a later
/// read finds nothing left to free. Counters equal a recount, and each
/// session's alert is written once.
pub async fn replicas_applying_one_restart_free_its_slots_once(factory: &impl StoreFactory) {
    const ROUNDS: usize = 3;
    const SESSIONS: usize = 6;
    let first = factory.replica().await;
    let second = factory.replica().await;
    assert!(
        first
            .put_webhook(&endpoint("wh_once", now()))
            .await
            .unwrap()
    );
    for round in 0..ROUNDS {
        let record = worker_record(&format!("w-once-{round}"), 8, 0);
        let version = put_new(&first, &record).await;
        let users: Vec<String> = (0..SESSIONS).map(|i| format!("u{round}-{i}")).collect();
        let users: Vec<&str> = users.iter().map(String::as_str).collect();
        let placed = place(&first, &record, &format!("e-once-{round}"), &users).await;
        let items: Vec<LostDispatch> = placed.iter().map(|d| lost(d, "wh_once")).collect();
        let (report, items) = (Arc::new(restarted(&record)), Arc::new(items));
        let barrier = Arc::new(Barrier::new(2));
        let tasks: Vec<_> = [&first, &second]
            .into_iter()
            .map(|store| {
                let store = Arc::clone(store);
                let (report, items, barrier) = (
                    Arc::clone(&report),
                    Arc::clone(&items),
                    Arc::clone(&barrier),
                );
                tokio::spawn(async move {
                    barrier.wait().await;
                    store
                        .put_worker_releasing_lost(&report, version, &[], &items)
                        .await
                        .expect("step")
                })
            })
            .collect();
        let mut outcomes = Vec::new();
        for t in tasks {
            outcomes.push(t.await.unwrap());
        }
        let wins: Vec<&LostRelease> = outcomes
            .iter()
            .filter(|o| matches!(o, LostRelease::Written { .. }))
            .collect();
        assert_eq!(wins.len(), 1, "one step wins: {outcomes:?}");
        let LostRelease::Written {
            version: won,
            released,
        } = wins[0]
        else {
            unreachable!("filtered");
        };
        assert_eq!(released.len(), SESSIONS);
        // A replica that read after the winner: nothing is left to free.
        let late = second
            .put_worker_releasing_lost(&report, *won, &[], &items)
            .await
            .unwrap();
        assert!(
            matches!(&late, LostRelease::Written { released, .. } if released.is_empty()),
            "{late:?}"
        );
        let snap = first.worker(&record.id).await.unwrap().expect("kept");
        assert_eq!(snap.dispatched, 0, "freed once, never below zero");
        assert_no_drift(&*first).await;
    }
    assert_eq!(total_dispatched(&*first).await, 0);
    assert_eq!(
        states(&first, "wh_once").await.len(),
        ROUNDS * SESSIONS,
        "one alert per session"
    );
}
