//! Invariants A–C under contention on the raw store operations: four
//! replicas (pools) × 16 tasks reserving, confirming, undoing, superseding
//! and releasing on 10 workers of 5 slots, while recount repairs run and a
//! sampler checks every snapshot for over-allocation.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use sqlx::Connection;
use vdi_cluster_core::store::{DispatchStore, Registry, Reservation, ReserveRequest};
use vdi_cluster_core::{Dispatch, Error, Timestamp, WorkerId};
use vdi_cluster_postgres::PgStore;

use common::{TestDb, register};
use vdi_cluster_core::testkit::{
    assert_no_drift, key, request, total_dispatched, wid, worker_record,
};

const REPLICAS: usize = 4;
const TASKS_PER_REPLICA: usize = 16;
const OPERATIONS: u64 = 5_000;
const WORKERS: usize = 10;
const CAPACITY: u32 = 5;

/// Over-allocation in one snapshot: a worker whose rows or counter exceed
/// its slots.
const OVER_ALLOCATED: &str = "
SELECT count(*) FROM vdi.workers w
 WHERE w.dispatched > w.max_sessions
    OR (SELECT count(*) FROM vdi.dispatches d WHERE d.worker_id = w.id) > w.max_sessions";

async fn one_operation(store: &PgStore, rng: &mut SmallRng, fleet: &[WorkerId], t: u64) {
    let k = key(
        &format!("exam-{}", rng.random_range(0..3)),
        &format!("student-{}", rng.random_range(0..150)),
    );
    let w = fleet[rng.random_range(0..fleet.len())].clone();
    match rng.random_range(0..10) {
        0..=5 => {
            // Re-dispatch away from the current worker now and then.
            let supersede = if rng.random_bool(0.3) {
                store.dispatch(&k).await.unwrap().map(|d| d.id)
            } else {
                None
            };
            let request = ReserveRequest {
                dispatch: Dispatch::reserve(k.clone(), w, Timestamp(t), None, None),
                supersede,
                permit: None,
            };
            match store.reserve(&request).await {
                Ok(Reservation::Reserved { dispatch, .. }) => {
                    if rng.random_bool(0.75) {
                        store
                            .confirm(
                                &k,
                                dispatch.id,
                                Some(serde_json::json!({"t": t})),
                                Timestamp(t),
                                Duration::from_secs(60),
                                None,
                            )
                            .await
                            .unwrap();
                    } else {
                        store.undo(&k, dispatch.id, None, None, None).await.unwrap();
                    }
                }
                Ok(
                    Reservation::Existing(_)
                    | Reservation::Full
                    | Reservation::NotAccepting
                    | Reservation::Ended,
                ) => {}
                // The session's row changed under reserve 16 times in a row:
                // allowed, and safe to retry.
                Err(Error::Conflict { .. }) => {}
                Err(e) => panic!("reserve failed: {e}"),
            }
        }
        _ => {
            store.release(&k, None, None, None).await.unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicas_never_over_allocate_duplicate_or_drift() {
    let Some(db) = TestDb::migrated().await else {
        return;
    };
    let first = db.store();
    let mut fleet = Vec::new();
    for i in 0..WORKERS {
        let record = worker_record(&format!("w-{i:02}"), CAPACITY, 0);
        register(&first, &record).await;
        fleet.push(record.id);
    }
    let fleet = Arc::new(fleet);
    let stop = Arc::new(AtomicBool::new(false));

    // Checks snapshots while the tasks run.
    let sampler = {
        let (db_conn, stop) = (db.connection().await, Arc::clone(&stop));
        tokio::spawn(async move {
            let mut conn = db_conn;
            let mut samples = 0_u64;
            while !stop.load(Ordering::SeqCst) {
                let over: i64 = sqlx::query_scalar(OVER_ALLOCATED)
                    .fetch_one(&mut conn)
                    .await
                    .unwrap();
                assert_eq!(over, 0, "a snapshot shows over-allocation");
                samples += 1;
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            let _ = conn.close().await;
            samples
        })
    };
    // Repairs run concurrently with allocations: with no drift to find they
    // must report none, and must never write a wrong count.
    let repairer = {
        let (store, stop) = (db.store(), Arc::clone(&stop));
        tokio::spawn(async move {
            let mut runs = 0_u64;
            while !stop.load(Ordering::SeqCst) {
                let report = store.recount(true).await.unwrap();
                assert!(report.drift.is_empty(), "phantom drift: {:?}", report.drift);
                runs += 1;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            runs
        })
    };

    let ops = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for r in 0..REPLICAS {
        let store = db.store();
        for t in 0..TASKS_PER_REPLICA {
            let (store, ops, fleet) = (store.clone(), Arc::clone(&ops), Arc::clone(&fleet));
            let mut rng = SmallRng::seed_from_u64((r * 1000 + t) as u64 + 1);
            tasks.push(tokio::spawn(async move {
                loop {
                    let n = ops.fetch_add(1, Ordering::SeqCst);
                    if n >= OPERATIONS {
                        break;
                    }
                    one_operation(&store, &mut rng, &fleet, n).await;
                }
            }));
        }
    }
    for t in tasks {
        t.await.unwrap();
    }
    stop.store(true, Ordering::SeqCst);
    let samples = sampler.await.unwrap();
    let repairs = repairer.await.unwrap();
    assert!(samples > 0 && repairs > 0);

    // Final state: counters equal the records, nothing over capacity, one
    // row per session (a scan sees each key once).
    let report = first.recount(false).await.unwrap();
    assert!(report.drift.is_empty(), "drift: {:?}", report.drift);
    let mut per_worker: HashMap<WorkerId, u32> = HashMap::new();
    let mut seen = std::collections::BTreeSet::new();
    let mut cursor = None;
    loop {
        let page = first.scan_dispatches(cursor.as_deref(), 64).await.unwrap();
        for d in page.dispatches {
            assert!(seen.insert(d.key.clone()), "{} scanned twice", d.key);
            *per_worker.entry(d.worker).or_default() += 1;
        }
        cursor = page.next;
        if cursor.is_none() {
            break;
        }
    }
    assert!(!seen.is_empty(), "nothing was placed");
    for snap in first.workers().await.unwrap() {
        let rows = per_worker.get(&snap.record.id).copied().unwrap_or(0);
        assert!(rows <= CAPACITY, "{} holds {rows}", snap.record.id);
        assert_eq!(snap.dispatched, rows, "counter of {}", snap.record.id);
    }
    // Affinity equals the rows per (exam, worker).
    for exam in ["exam-0", "exam-1", "exam-2"] {
        let exam_id = vdi_cluster_core::ExamId::parse("examId", exam).unwrap();
        let placement = first.placement(&exam_id, Timestamp(0)).await.unwrap();
        let mut rows: HashMap<WorkerId, u32> = HashMap::new();
        for k in seen.iter().filter(|k| k.exam_id == exam_id) {
            let d = first.dispatch(k).await.unwrap().unwrap();
            *rows.entry(d.worker).or_default() += 1;
        }
        assert_eq!(
            placement.affinity.into_iter().collect::<HashMap<_, _>>(),
            rows
        );
    }
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn crossing_supersedes_do_not_deadlock() {
    // Sessions moved A → B and B → A at the same time lock both workers;
    // the id order makes that safe. Any deadlock would surface as an error.
    let Some(db) = TestDb::migrated().await else {
        return;
    };
    let first = db.store();
    let (a, b) = (worker_record("w-a", 200, 0), worker_record("w-b", 200, 0));
    register(&first, &a).await;
    register(&first, &b).await;
    let mut tasks = Vec::new();
    for r in 0..REPLICAS {
        let store = db.store();
        for t in 0..8 {
            let store = store.clone();
            let (a, b) = (a.id.clone(), b.id.clone());
            tasks.push(tokio::spawn(async move {
                let mut moved = 0_u32;
                for i in 0..40 {
                    let k = key("exam-x", &format!("s-{}", (r * 8 + t + i) % 24));
                    let current = store.dispatch(&k).await.unwrap();
                    let (target, supersede) = match &current {
                        Some(d) if d.worker == a => (b.clone(), Some(d.id)),
                        Some(d) => (a.clone(), Some(d.id)),
                        None => (
                            if i.is_multiple_of(2) {
                                a.clone()
                            } else {
                                b.clone()
                            },
                            None,
                        ),
                    };
                    let request = ReserveRequest {
                        dispatch: Dispatch::reserve(k, target, Timestamp(1), None, None),
                        supersede,
                        permit: None,
                    };
                    match store.reserve(&request).await {
                        Ok(Reservation::Reserved {
                            superseded: Some(_),
                            ..
                        }) => moved += 1,
                        Ok(_) | Err(Error::Conflict { .. }) => {}
                        Err(e) => panic!("reserve failed: {e}"),
                    }
                }
                moved
            }));
        }
    }
    let mut moved = 0;
    for t in tasks {
        moved += t.await.unwrap();
    }
    assert!(moved > 0, "no session was moved");
    assert_no_drift(&first).await;
    assert_eq!(total_dispatched(&first).await, 24);
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn repair_under_load_writes_the_true_count() {
    // Corrupt one worker's counter, then repair while replicas allocate
    // and release on it: the repaired value equals a recount afterwards.
    let Some(db) = TestDb::migrated().await else {
        return;
    };
    let first = db.store();
    let w = worker_record("w-hot", 40, 0);
    register(&first, &w).await;
    let w_id = wid("w-hot");
    for i in 0..10 {
        let request = request(&key("exam-r", &format!("pre-{i}")), &w_id, Timestamp(1));
        first.reserve(&request).await.unwrap();
    }
    assert!(db.corrupt_dispatched(&w_id, 7).await);
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for r in 0..REPLICAS {
        let store = db.store();
        for t in 0..4 {
            let (store, stop, w_id) = (store.clone(), Arc::clone(&stop), w_id.clone());
            tasks.push(tokio::spawn(async move {
                let mut i = 0_u64;
                while !stop.load(Ordering::SeqCst) {
                    let k = key("exam-r", &format!("s-{r}-{t}-{}", i % 5));
                    if i.is_multiple_of(2) {
                        let request = request(&k, &w_id, Timestamp(i));
                        store.reserve(&request).await.unwrap();
                    } else {
                        store.release(&k, None, None, None).await.unwrap();
                    }
                    i += 1;
                }
            }));
        }
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    let report = first.recount(true).await.unwrap();
    assert_eq!(report.drift.len(), 1, "{:?}", report.drift);
    assert_eq!(report.drift[0].stored - report.drift[0].actual, 7);
    stop.store(true, Ordering::SeqCst);
    for t in tasks {
        t.await.unwrap();
    }
    let after = first.recount(false).await.unwrap();
    assert!(after.drift.is_empty(), "{:?}", after.drift);
    db.cleanup().await;
}
