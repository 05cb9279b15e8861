//! Cases of [`DispatchStore::adopt`](crate::store::DispatchStore::adopt):
//! recording a session a worker runs without a record, alone and racing
//! allocations of the same session on other replicas.

use std::sync::Arc;

use super::StoreFactory;
use super::concurrency::service;
use super::fixtures::{STICKY, add_worker, dispatched, now, reserve, reserved};
use crate::client::WorkerClient;
use crate::dispatch::{Dispatch, DispatchState};
use crate::health::HeartbeatStamp;
use crate::ids::{ExamId, SessionKey, WorkerId};
use crate::store::{Adoption, Reservation, Store};
use crate::testkit::{
    FIXTURE_BOOT, SimulatedWorkers, assert_no_drift, heartbeat_with_slots, key, total_dispatched,
    wid,
};

/// The active dispatch of `key` adopted on `worker` now.
fn adoption(key: &SessionKey, worker: &WorkerId) -> Dispatch {
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
    d.session = Some(serde_json::json!({"connection": format!("rdp://{worker}/{key}")}));
    d
}

async fn adopt(store: &Arc<dyn Store>, d: &Dispatch) -> Adoption {
    store.adopt(d, STICKY).await.expect("adopt")
}

/// Adoption writes the active dispatch with every counter and the sticky
/// worker, only when the session has no dispatch and the worker is
/// registered; it checks no capacity (the session already runs).
pub async fn adopt_records_a_session_without_a_dispatch(factory: &impl StoreFactory) {
    let store = factory.replica().await;
    let w = add_worker(&store, "w-adopt", 1).await;
    let exam = ExamId::parse("examId", "exam-adopt").unwrap();
    let k1 = key("exam-adopt", "u1");

    let mut wanted = adoption(&k1, &w);
    wanted.state = DispatchState::Reserved;
    let Adoption::Adopted(d) = adopt(&store, &wanted).await else {
        panic!("{k1} was not adopted");
    };
    assert_eq!(d.state, DispatchState::Active, "stored active");
    let stored = store
        .dispatch(&k1)
        .await
        .unwrap()
        .expect("the adopted record");
    assert_eq!(stored.id, wanted.id);
    assert_eq!(stored.worker, w);
    assert_eq!(stored.state, DispatchState::Active);
    assert_eq!(stored.session, wanted.session, "connection details kept");
    assert_eq!(dispatched(&store, &w).await, 1);
    let placement = store.placement(&exam, now()).await.unwrap();
    assert_eq!(placement.sticky, Some(w.clone()));
    assert_eq!(placement.affinity.get(&w), Some(&1));

    // A second adoption of the session, even on another worker, writes nothing.
    let other = add_worker(&store, "w-adopt-2", 5).await;
    match adopt(&store, &adoption(&k1, &other)).await {
        Adoption::Existing(existing) => assert_eq!(existing.id, wanted.id),
        answer => panic!("expected the existing dispatch, got {answer:?}"),
    }
    assert_eq!(dispatched(&store, &other).await, 0);

    // No capacity check: the worker is full, yet it runs this session too.
    let k2 = key("exam-adopt", "u2");
    assert_eq!(reserve(&store, &k2, &w).await, Reservation::Full);
    assert!(matches!(
        adopt(&store, &adoption(&k2, &w)).await,
        Adoption::Adopted(_)
    ));
    assert_eq!(dispatched(&store, &w).await, 2);
    assert_eq!(
        store
            .placement(&exam, now())
            .await
            .unwrap()
            .affinity
            .get(&w),
        Some(&2)
    );

    // A reservation is a dispatch: adoption leaves it alone.
    let k3 = key("exam-adopt", "u3");
    let r = reserved(&store, &k3, &other).await;
    match adopt(&store, &adoption(&k3, &w)).await {
        Adoption::Existing(existing) => {
            assert_eq!(
                (existing.id, existing.state),
                (r.id, DispatchState::Reserved)
            );
        }
        answer => panic!("expected the reservation, got {answer:?}"),
    }

    // An unknown worker: nothing is written.
    let k4 = key("exam-adopt", "u4");
    assert_eq!(
        adopt(&store, &adoption(&k4, &wid("w-adopt-nobody"))).await,
        Adoption::UnknownWorker
    );
    assert_eq!(store.dispatch(&k4).await.unwrap(), None);

    // An adopted dispatch releases like any other.
    let released = store
        .release(&k1, Some(wanted.id), None, None)
        .await
        .unwrap();
    assert_eq!(released.map(|d| d.id), Some(wanted.id));
    store.release(&k2, None, None, None).await.unwrap();
    assert_eq!(dispatched(&store, &w).await, 0);
    assert_no_drift(&*store).await;
}

/// Replicas on each side of [`adoption_races_allocation_to_one_dispatch`].
const RACE_REPLICAS: usize = 4;

/// Heartbeats adopting sessions on one replica while allocations of the
/// same sessions reserve and confirm them elsewhere on other replicas:
/// exactly one dispatch per session, one winner per race, invariant A on
/// the allocations' worker and no drift.
pub async fn adoption_races_allocation_to_one_dispatch(factory: &impl StoreFactory) {
    const SESSIONS: usize = 40;
    const SLOTS: u32 = 25;
    let setup = factory.replica().await;
    let running = add_worker(&setup, "w-race-runs", 1).await;
    let placing = add_worker(&setup, "w-race-places", SLOTS).await;
    // A few replicas on each side, shared round-robin by the races: each
    // is its own handle (its own pool, for a networked backend), and the
    // cases stay within a server's connection limit.
    let mut adopters = Vec::new();
    let mut allocators = Vec::new();
    for _ in 0..RACE_REPLICAS {
        adopters.push(factory.replica().await);
        allocators.push(factory.replica().await);
    }
    let mut tasks = Vec::new();
    for i in 0..SESSIONS {
        let adopter = Arc::clone(&adopters[i % RACE_REPLICAS]);
        let allocator = Arc::clone(&allocators[i % RACE_REPLICAS]);
        let (running, placing) = (running.clone(), placing.clone());
        tasks.push(tokio::spawn(async move {
            let k = key("exam-race", &format!("u{i}"));
            let adoption = adoption(&k, &running);
            let (adopted, reservation) = tokio::join!(
                adopt(&adopter, &adoption),
                reserve(&allocator, &k, &placing)
            );
            if let Reservation::Reserved { dispatch, .. } = &reservation {
                allocator
                    .confirm(&k, dispatch.id, None, now(), STICKY, None)
                    .await
                    .expect("confirm");
            }
            let adopted = matches!(adopted, Adoption::Adopted(_));
            let reserved = matches!(reservation, Reservation::Reserved { .. });
            (k, adopted, reserved)
        }));
    }
    let (mut adopted, mut reserved) = (0, 0);
    for task in tasks {
        let (k, a, r) = task.await.unwrap();
        assert!(a ^ r, "{k}: adopted {a}, reserved {r}: exactly one wins");
        let d = setup.dispatch(&k).await.unwrap().expect("one dispatch");
        assert_eq!(d.state, DispatchState::Active);
        assert_eq!(d.worker == running, a, "{k}: the winner's worker");
        adopted += usize::from(a);
        reserved += usize::from(r);
    }
    assert_eq!(
        adopted + reserved,
        SESSIONS,
        "every session has exactly one dispatch"
    );
    assert!(
        dispatched(&setup, &placing).await <= SLOTS,
        "invariant A on the allocations' worker"
    );
    assert_eq!(
        total_dispatched(&*setup).await as usize,
        SESSIONS,
        "one count per dispatch"
    );
    assert_no_drift(&*setup).await;
}

/// Through the service: a worker's heartbeat adopting the sessions it runs
/// without records, on one replica, while other replicas allocate the same
/// sessions. Every allocation succeeds with the one dispatch its session
/// has, counters never drift, and no worker is over-allocated.
pub async fn heartbeat_adoption_races_allocations_on_replicas(factory: &impl StoreFactory) {
    const SESSIONS: usize = 30;
    let workers = SimulatedWorkers::new();
    let beat = |code: &str, slots: u32, seq: u64, live: Option<Vec<SessionKey>>| {
        let mut hb = heartbeat_with_slots(code, slots, live.as_ref().map_or(0, |l| l.len() as u32));
        hb.stamp = HeartbeatStamp {
            boot_id: Some(format!("{code}-boot")),
            seq: Some(seq),
        };
        hb.live_sessions = live;
        hb
    };
    let beating = service(factory.replica().await, &workers, 1, |_| {});
    beating
        .fleet()
        .heartbeat(beat("w-hb-runs", 40, 1, None))
        .await
        .unwrap();
    beating
        .fleet()
        .heartbeat(beat("w-hb-other", 8, 1, None))
        .await
        .unwrap();
    let runs = wid("w-hb-runs");
    let record = beating.fleet().worker_view(&runs).await.unwrap().record;
    let keys: Vec<SessionKey> = (0..SESSIONS)
        .map(|i| key("exam-hb-race", &format!("u{i}")))
        .collect();
    for k in &keys {
        workers
            .allocate(&record, k, &Default::default())
            .await
            .unwrap();
    }

    let mut tasks = Vec::new();
    for (r, chunk) in keys.chunks(SESSIONS / 3).enumerate() {
        let svc = service(factory.replica().await, &workers, 10 + r as u64, |_| {});
        let chunk = chunk.to_vec();
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            for k in chunk {
                let a = svc
                    .placement()
                    .allocate(k.clone(), Default::default())
                    .await;
                got.push((k, a.expect("allocate").dispatch.id));
            }
            got
        }));
    }
    let live = Some(keys.clone());
    let adopted = beating
        .fleet()
        .heartbeat(beat("w-hb-runs", 40, 2, live))
        .await
        .unwrap();
    let mut answered = Vec::new();
    for t in tasks {
        answered.extend(t.await.unwrap());
    }
    assert_eq!(answered.len(), SESSIONS);
    let store = factory.replica().await;
    for (k, id) in &answered {
        let d = store.dispatch(k).await.unwrap().expect("one dispatch");
        assert_eq!(
            &d.id, id,
            "{k}: the allocation returned the stored dispatch"
        );
        assert_eq!(d.state, DispatchState::Active);
    }
    assert!(adopted.adopted_sessions as usize <= SESSIONS);
    assert_eq!(total_dispatched(&*store).await as usize, SESSIONS);
    assert!(
        dispatched(&store, &wid("w-hb-other")).await <= 8,
        "invariant A"
    );
    assert_no_drift(&*store).await;
}
