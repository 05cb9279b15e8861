//! Cases of the prewarm pool a worker reports per exam, stored with its
//! record by the heartbeat's compare-and-set (no write of its own).

use std::collections::BTreeMap;

use super::StoreFactory;
use super::concurrency::service;
use super::fixtures::put_new;
use crate::health::HeartbeatStamp;
use crate::ids::ExamId;
use crate::store::CasOutcome;
use crate::testkit::{SimulatedWorkers, heartbeat_with_slots, wid, worker_record};
use crate::worker::{ExamPool, PoolReport};

fn exam(id: &str) -> ExamId {
    ExamId::parse("examId", id).expect("valid exam id")
}

fn report(entries: &[(&str, u32, u32, u32)]) -> PoolReport {
    PoolReport {
        exams: entries
            .iter()
            .map(|&(e, starting, ready, failed)| {
                let pool = ExamPool {
                    starting,
                    ready,
                    failed,
                };
                (exam(e), pool)
            })
            .collect::<BTreeMap<_, _>>(),
    }
}

/// The pool report is written with the record and read back by another
/// replica, in `worker` and in the listing; a later write replaces it and
/// an empty one clears it.
pub async fn prewarm_pool_is_stored_with_the_record(factory: &impl StoreFactory) {
    let store = factory.replica().await;
    let mut record = worker_record("w-pool", 8, 0);
    record.prewarm_pool = report(&[("math", 2, 3, 1), ("exam with spaces/ü", 0, 1, 0)]);
    let v1 = put_new(&store, &record).await;
    let other = factory.replica().await;
    let snap = other.worker(&record.id).await.unwrap().unwrap();
    assert_eq!(snap.record.prewarm_pool, record.prewarm_pool);
    let listed = other.workers().await.unwrap();
    let mine = listed.iter().find(|s| s.record.id == record.id).unwrap();
    assert_eq!(mine.record.prewarm_pool, record.prewarm_pool);

    record.prewarm_pool = report(&[("math", 0, 6, 0)]);
    let v2 = match store.put_worker(&record, Some(v1)).await.unwrap() {
        CasOutcome::Written { version } => version,
        other => panic!("update failed: {other:?}"),
    };
    let snap = other.worker(&record.id).await.unwrap().unwrap();
    assert_eq!(snap.record.prewarm_pool.of(&exam("math")).ready, 6);
    assert!(
        snap.record
            .prewarm_pool
            .of(&exam("exam with spaces/ü"))
            .is_empty()
    );

    record.prewarm_pool = PoolReport::default();
    assert!(matches!(
        store.put_worker(&record, Some(v2)).await.unwrap(),
        CasOutcome::Written { .. }
    ));
    let snap = other.worker(&record.id).await.unwrap().unwrap();
    assert!(snap.record.prewarm_pool.is_empty());
}

/// Heartbeats carrying pool reports applied through several replicas at
/// once: the stored report is the one of the newest heartbeat, never an
/// older one written late.
pub async fn heartbeats_on_replicas_keep_the_newest_pool_report(factory: &impl StoreFactory) {
    let workers = SimulatedWorkers::new();
    let mut tasks = Vec::new();
    for r in 0..4u64 {
        let svc = service(factory.replica().await, &workers, r, |_| {});
        tasks.push(tokio::spawn(async move {
            for seq in (r..120).step_by(4) {
                let mut hb = heartbeat_with_slots("w-pool-hb", 8, 0);
                hb.stamp = HeartbeatStamp {
                    boot_id: Some("boot-a".into()),
                    seq: Some(seq),
                };
                let n = u32::try_from(seq).unwrap();
                hb.prewarm_pool = report(&[("math", n % 3, n, n % 2)]);
                svc.fleet().heartbeat(hb).await.expect("heartbeat");
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let store = factory.replica().await;
    let snap = store.worker(&wid("w-pool-hb")).await.unwrap().unwrap();
    assert_eq!(snap.record.stamp.and_then(|s| s.seq), Some(119));
    assert_eq!(
        snap.record.prewarm_pool,
        report(&[("math", 119 % 3, 119, 1)])
    );
}
