//! Recount on a real Redis: exact while allocations and releases run on
//! other replicas, and thorough on counters that outlived their records.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{raw, redis_url, replica_of, shared_store};
use vdi_cluster_core::store::{Counter, Reservation};
use vdi_cluster_core::testkit::{request, worker_record};
use vdi_cluster_core::{DispatchStore, ExamId, Registry, SessionKey, Timestamp, WorkerId};
use vdi_cluster_redis::redis::{self, AsyncCommands};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn recount_during_allocations_never_reports_phantom_drift() {
    let Some(store) = shared_store().await else {
        return;
    };
    let url = redis_url();
    let workers: Vec<WorkerId> = (0..3)
        .map(|i| WorkerId::parse("code", format!("w-{i}")).unwrap())
        .collect();
    for w in &workers {
        store
            .put_worker(&worker_record(w.as_str(), 20, 0), None)
            .await
            .unwrap();
    }
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for t in 0..6_usize {
        let replica = replica_of(&url, &store).await;
        let (workers, stop) = (workers.clone(), Arc::clone(&stop));
        tasks.push(tokio::spawn(async move {
            let mut i = 0_usize;
            while !stop.load(Ordering::SeqCst) && i < 3_000 {
                i += 1;
                let key = SessionKey::parse(format!("exam-{}", i % 4), format!("s-{t}-{}", i % 25))
                    .unwrap();
                let w = workers[(i + t) % workers.len()].clone();
                if i.is_multiple_of(3) {
                    replica.release(&key, None, None, None).await.unwrap();
                    continue;
                }
                let request = request(&key, &w, Timestamp(i as u64));
                if let Reservation::Reserved { dispatch, .. } =
                    replica.reserve(&request).await.unwrap()
                {
                    if i.is_multiple_of(2) {
                        replica
                            .undo(&key, dispatch.id, None, None, None)
                            .await
                            .unwrap();
                    } else {
                        replica
                            .confirm(
                                &key,
                                dispatch.id,
                                None,
                                Timestamp(1),
                                Duration::from_secs(60),
                                None,
                            )
                            .await
                            .unwrap();
                    }
                }
            }
        }));
    }
    // Recount (read-only, then repairing) over and over while they run:
    // every reported drift would be a lie, every repair a corruption.
    let checker = replica_of(&url, &store).await;
    let mut checked = 0;
    for round in 0..40_u32 {
        let report = checker.recount(!round.is_multiple_of(2)).await.unwrap();
        assert!(report.drift.is_empty(), "phantom drift: {:?}", report.drift);
        checked += report.counters_checked;
    }
    assert!(checked > 0, "the recounts saw records");
    stop.store(true, Ordering::SeqCst);
    for t in tasks {
        t.await.unwrap();
    }
    let report = checker.recount(false).await.unwrap();
    assert!(report.drift.is_empty(), "{:?}", report.drift);
    common::delete_prefix(&url, store.prefix()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_without_records_are_found_and_cleared() {
    let Some(store) = shared_store().await else {
        return;
    };
    let (url, p) = (redis_url(), store.prefix().to_owned());
    let w = worker_record("w-ghost", 5, 0);
    store.put_worker(&w, None).await.unwrap();
    let mut conn = raw(&url).await;
    // A count on a registered worker with no record, one on a worker that
    // was never registered, and an affinity hash of an exam without any
    // record (as a crashed legacy writer might leave them).
    let _: () = conn
        .hset(format!("{p}:dispatched"), "w-ghost", 2)
        .await
        .unwrap();
    let _: () = conn
        .hset(format!("{p}:dispatched"), "w-unknown", 1)
        .await
        .unwrap();
    let _: () = conn
        .hset(
            format!("{p}:sticky:exam:Thi%20cu%E1%BB%91i%20k%E1%BB%B3:affinity"),
            "w-ghost",
            3,
        )
        .await
        .unwrap();

    let report = store.recount(false).await.unwrap();
    let exam = ExamId::parse("examId", "Thi cuối kỳ").unwrap();
    let found: Vec<(Counter, i64, i64)> = report
        .drift
        .iter()
        .map(|d| (d.counter.clone(), d.stored, d.actual))
        .collect();
    assert_eq!(
        found,
        vec![
            (
                Counter::WorkerDispatched {
                    worker: w.id.clone()
                },
                2,
                0
            ),
            (
                Counter::WorkerDispatched {
                    worker: WorkerId::parse("code", "w-unknown").unwrap()
                },
                1,
                0
            ),
            (
                Counter::ExamAffinity {
                    exam_id: exam.clone(),
                    worker: w.id.clone()
                },
                3,
                0
            ),
        ]
    );
    assert_eq!(report.counters_checked, 3);

    let repaired = store.recount(true).await.unwrap();
    assert_eq!(repaired.drift.len(), 3);
    let after = store.recount(false).await.unwrap();
    assert!(after.drift.is_empty(), "{:?}", after.drift);
    assert_eq!(after.counters_checked, 0);
    assert_eq!(store.worker(&w.id).await.unwrap().unwrap().dispatched, 0);
    assert!(
        store
            .placement(&exam, Timestamp(1))
            .await
            .unwrap()
            .affinity
            .is_empty()
    );
    common::delete_prefix(&url, &p).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn index_entries_without_records_are_repaired() {
    let Some(store) = shared_store().await else {
        return;
    };
    let (url, p) = (redis_url(), store.prefix().to_owned());
    let w = worker_record("w-index", 5, 0);
    store.put_worker(&w, None).await.unwrap();
    let key = SessionKey::parse("e", "u").unwrap();
    let request = request(&key, &w.id, Timestamp(1));
    assert!(matches!(
        store.reserve(&request).await.unwrap(),
        Reservation::Reserved { .. }
    ));
    // Delete the record behind the store's back: counters and indexes now
    // point at nothing.
    let mut conn = raw(&url).await;
    let _: () = redis::cmd("DEL")
        .arg(format!("{p}:dispatch:exam:e:user:u"))
        .query_async(&mut conn)
        .await
        .unwrap();
    let report = store.recount(true).await.unwrap();
    assert_eq!(report.drift.len(), 2, "{:?}", report.drift);
    assert!(store.recount(false).await.unwrap().drift.is_empty());
    assert!(store.worker_dispatches(&w.id, 10).await.unwrap().is_empty());
    let members: Vec<String> = conn
        .zrange(format!("{p}:index:worker-dispatches"), 0, -1)
        .await
        .unwrap();
    assert!(members.is_empty(), "{members:?}");
    let sessions: Vec<String> = conn
        .smembers(format!("{p}:sticky:exam:e:sessions"))
        .await
        .unwrap();
    assert!(sessions.is_empty(), "{sessions:?}");
    common::delete_prefix(&url, &p).await;
}
