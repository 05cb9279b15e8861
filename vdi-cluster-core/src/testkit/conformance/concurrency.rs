//! The concurrency harness — many replicas, each with many tasks, driving
//! [`ClusterService`]s over one storage — and its cases for invariants A–C.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use super::StoreFactory;
use super::fixtures::dispatched;
use crate::dispatch::DispatchState;
use crate::error::Error;
use crate::health::HeartbeatStamp;
use crate::ids::{DispatchId, SessionKey, WorkerId};
use crate::service::{ClusterService, ServiceConfig};
use crate::store::Store;
use crate::testkit::{
    Behaviour, SimulatedWorkers, assert_no_drift, heartbeat_with_slots, key, total_dispatched, wid,
};

pub(super) fn service(
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
                svc.fleet().heartbeat(hb).await.expect("heartbeat");
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
            .fleet()
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
    assert_no_drift(&**store).await;
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
                        match svc.placement().allocate(k, Default::default()).await {
                            Ok(a) => {
                                assert!(a.dispatch.state == DispatchState::Active);
                                placed.fetch_add(1, Ordering::SeqCst);
                            }
                            Err(Error::NoCapacity(_) | Error::AllocationInProgress(_)) => {}
                            Err(e) => panic!("allocate failed: {e}"),
                        }
                    } else {
                        svc.placement().release(&k).await.expect("release");
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
                        match svc
                            .placement()
                            .allocate(k.clone(), Default::default())
                            .await
                        {
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
    assert_eq!(total_dispatched(&*first).await, sessions.len() as u32);
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
                        let _ = tokio::time::timeout(cut, svc.placement().release(&k)).await;
                    } else {
                        let _ = tokio::time::timeout(
                            cut,
                            svc.placement().allocate(k, Default::default()),
                        )
                        .await;
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
    let report = svc.operations().reconcile().await.expect("reconcile");
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
