//! Rehearsals: each exam's record written once from one read across
//! replicas, its `exam.rehearsal_failed` committed with it, a failing
//! worker left out of the exam's placements on every replica, and a
//! cancelled exam's record removed (at the version read), by the cancel
//! or else by the leader's tick.

use std::sync::Arc;
use std::time::Duration;

use super::StoreFactory;
use super::fixtures::now;
use super::outbox::{endpoint, entry, states};
use crate::ids::{ExamId, SessionKey};
use crate::outbox::DeliveryState;
use crate::rehearsal::{Outcome, ProvisionerCheck, Rehearsal, Verdict, WorkerCheck};
use crate::service::{Booking, ClusterService, ServiceConfig};
use crate::store::Store;
use crate::testkit::{CheckBehaviour, SimulatedWorkers, exam, heartbeat_with_slots, wid};

const REPLICAS: usize = 4;

fn record(exam: &str, run: u32) -> Rehearsal {
    let t = now();
    let failed = WorkerCheck {
        worker: wid("w-r2"),
        outcome: Outcome::Failed,
        reason: Some("check network-allow-list failed: lms unreachable".into()),
        start_ms: Some(2_500),
        image: Some("sot-exam-linux".into()),
        checks: vec![ProvisionerCheck {
            name: "network-allow-list".into(),
            ok: false,
            detail: Some("lms unreachable".into()),
        }],
        checked_at: t,
    };
    let ok = WorkerCheck {
        worker: wid("w-r1"),
        outcome: Outcome::Ok,
        reason: None,
        start_ms: Some(900),
        image: None,
        checks: Vec::new(),
        checked_at: t,
    };
    let id = ExamId::parse("examId", exam).unwrap();
    let mut r = Rehearsal::run(None, id, "admin", t, vec![failed, ok], t);
    r.run = run;
    r
}

/// Insert-if-absent and compare-and-set on the version, also when every
/// replica races for the same exam's record from the same read; records
/// come back whole and listed by exam.
pub async fn rehearsals_are_inserted_once_and_compare_and_set(factory: &impl StoreFactory) {
    let mut stores: Vec<Arc<dyn Store>> = Vec::new();
    for _ in 0..REPLICAS {
        stores.push(factory.replica().await);
    }
    let first = record("exam-rb", 1);
    let inserts = futures::future::join_all(
        stores
            .iter()
            .map(|s| async { s.put_rehearsal(&first, 0, &[]).await.unwrap() }),
    )
    .await;
    assert_eq!(inserts.iter().filter(|won| **won).count(), 1);
    let stored = stores[1].rehearsal(&first.exam_id).await.unwrap().unwrap();
    assert_eq!((&stored.rehearsal, stored.version), (&first, 1));

    let second = record("exam-rb", 2);
    let updates = futures::future::join_all(
        stores
            .iter()
            .map(|s| async { s.put_rehearsal(&second, 1, &[]).await.unwrap() }),
    )
    .await;
    assert_eq!(updates.iter().filter(|won| **won).count(), 1);
    // A stale version, an insert over a record, or a version of a record
    // never stored writes nothing.
    assert!(!stores[2].put_rehearsal(&first, 1, &[]).await.unwrap());
    assert!(!stores[2].put_rehearsal(&first, 0, &[]).await.unwrap());
    let other = record("exam-ra", 1);
    assert!(!stores[2].put_rehearsal(&other, 3, &[]).await.unwrap());
    assert!(stores[3].rehearsal(&other.exam_id).await.unwrap().is_none());
    assert!(stores[3].put_rehearsal(&other, 0, &[]).await.unwrap());

    let all = stores[0].rehearsals().await.unwrap();
    let listed: Vec<_> = all
        .iter()
        .map(|s| (s.rehearsal.exam_id.as_str(), s.rehearsal.run, s.version))
        .collect();
    assert_eq!(listed, vec![("exam-ra", 1, 1), ("exam-rb", 2, 2)]);
}

/// A record's outbox entries are written with it, and not at all by a
/// write that loses its compare-and-set.
pub async fn rehearsal_failures_commit_with_their_record(factory: &impl StoreFactory) {
    let store = factory.replica().await;
    let t = now();
    assert!(store.put_webhook(&endpoint("wh_r", t)).await.unwrap());
    let r = record("exam-rc", 1);
    assert!(
        store
            .put_rehearsal(&r, 0, &[entry("msg_r1", "wh_r", "r1", t)])
            .await
            .unwrap()
    );
    assert!(
        !store
            .put_rehearsal(&r, 0, &[entry("msg_r2", "wh_r", "r2", t)])
            .await
            .unwrap(),
        "a second insert loses"
    );
    assert!(
        !store
            .put_rehearsal(&r, 7, &[entry("msg_r3", "wh_r", "r3", t)])
            .await
            .unwrap(),
        "a stale version loses"
    );
    assert_eq!(
        states(&store, "wh_r").await,
        vec![("msg_r1".into(), DeliveryState::Pending)],
        "only the write that won carried its event"
    );
}

fn service(store: Arc<dyn Store>, workers: &SimulatedWorkers, seed: u64) -> ClusterService {
    let config = ServiceConfig {
        seed,
        replica_id: format!("replica-{seed}"),
        exam_headroom_percent: 0,
        snapshot_max_age: Duration::ZERO,
        ..ServiceConfig::default()
    };
    ClusterService::builder(store, Arc::new(workers.clone()))
        .config(config)
        .build()
}

/// A rehearsal run on one replica whose check fails on one worker: the
/// report names it, every replica's placements of the exam avoid it, a
/// prewarm skips it, and a re-check that passes brings it back.
pub async fn a_failing_worker_is_left_out_of_its_exam_on_every_replica(
    factory: &impl StoreFactory,
) {
    let workers = SimulatedWorkers::new();
    let a = service(factory.replica().await, &workers, 301);
    let b = service(factory.replica().await, &workers, 302);
    for code in ["w-rh1", "w-rh2"] {
        a.fleet()
            .heartbeat(heartbeat_with_slots(code, 4, 0))
            .await
            .unwrap();
    }
    workers.set_check(&wid("w-rh2"), CheckBehaviour::Fails("disk full".into()));
    let booked = exam("exam-rh", now().plus(Duration::from_secs(3 * 3600)), 60, 6);
    let exam_id = booked.id.clone();
    assert!(matches!(
        a.exams().book_exam(booked, "admin").await.unwrap(),
        Booking::Accepted(_)
    ));

    let done = a.exams().rehearse(&exam_id, "admin").await.unwrap();
    assert_eq!(done.rehearsal.workers.len(), 2);
    assert_eq!(done.report.failing.len(), 1);
    assert_eq!(done.report.failing[0].worker, wid("w-rh2"));
    assert!(
        done.report.failing[0]
            .reason
            .as_deref()
            .unwrap()
            .contains("disk full")
    );
    assert_eq!(done.report.verdict, Verdict::NoGo, "4 slots for 6 students");
    assert_eq!(done.report.missing, 2);

    let seen = b.exams().rehearsal(&exam_id).await.unwrap().unwrap();
    assert_eq!(seen.report, done.report);
    for s in 0..3 {
        let key = SessionKey::parse("exam-rh", format!("s{s}")).unwrap();
        let placed = b
            .placement()
            .allocate(key, Default::default())
            .await
            .unwrap();
        assert_eq!(
            placed.dispatch.worker,
            wid("w-rh1"),
            "the failing worker is left out"
        );
    }
    let prewarm = b
        .exams()
        .prewarm(exam_id.clone(), 1, Default::default())
        .await
        .unwrap();
    assert!(prewarm.shares.iter().all(|s| s.worker == wid("w-rh1")));

    workers.set_check(&wid("w-rh2"), CheckBehaviour::Passes);
    let again = b
        .exams()
        .recheck_worker(&exam_id, &wid("w-rh2"), "admin")
        .await
        .unwrap();
    assert!(again.report.failing.is_empty());
    assert_eq!(again.report.verdict, Verdict::Go);
    assert_eq!(again.rehearsal.run, 1, "a re-check keeps the run");
    let mut on = Vec::new();
    for s in 3..6 {
        let key = SessionKey::parse("exam-rh", format!("s{s}")).unwrap();
        on.push(
            a.placement()
                .allocate(key, Default::default())
                .await
                .unwrap()
                .dispatch
                .worker,
        );
    }
    assert!(on.contains(&wid("w-rh2")), "back in the exam: {on:?}");
}

/// A record is removed only at the version read: not at another, not
/// twice, not one never stored; of replicas racing to remove it from the
/// same read exactly one does; other exams' records stay.
pub async fn rehearsals_are_removed_only_at_the_version_read(factory: &impl StoreFactory) {
    let mut stores: Vec<Arc<dyn Store>> = Vec::new();
    for _ in 0..REPLICAS {
        stores.push(factory.replica().await);
    }
    let kept = record("exam-rk", 1);
    assert!(stores[0].put_rehearsal(&kept, 0, &[]).await.unwrap());
    let gone = record("exam-rg", 1);
    assert!(stores[0].put_rehearsal(&gone, 0, &[]).await.unwrap());
    assert!(
        stores[0]
            .put_rehearsal(&record("exam-rg", 2), 1, &[])
            .await
            .unwrap()
    );
    let id = gone.exam_id.clone();
    for stale in [0, 1, 3] {
        assert!(
            !stores[1].remove_rehearsal(&id, stale).await.unwrap(),
            "version {stale} is not the stored 2"
        );
    }
    assert_eq!(stores[2].rehearsal(&id).await.unwrap().unwrap().version, 2);
    let removals = futures::future::join_all(
        stores
            .iter()
            .map(|s| async { s.remove_rehearsal(&id, 2).await.unwrap() }),
    )
    .await;
    assert_eq!(removals.iter().filter(|done| **done).count(), 1);
    assert!(stores[3].rehearsal(&id).await.unwrap().is_none());
    let never = ExamId::parse("examId", "exam-rn").unwrap();
    assert!(!stores[3].remove_rehearsal(&never, 1).await.unwrap());
    let listed: Vec<_> = stores[0]
        .rehearsals()
        .await
        .unwrap()
        .into_iter()
        .map(|s| (s.rehearsal.exam_id.to_string(), s.version))
        .collect();
    assert_eq!(
        listed,
        vec![("exam-rk".to_owned(), 1)],
        "the other exam's stays"
    );
    // Removed, the exam's record starts again from none.
    assert!(stores[1].put_rehearsal(&gone, 0, &[]).await.unwrap());
}

/// Cancelling a rehearsed exam removes its record. A record the cancel
/// left (its removal failed, or a run wrote after it: written here
/// straight to the store) is removed by the leader's next tick on
/// another replica, and the rehearsals of booked exams stay. The exam
/// booked again under the same id starts unrehearsed, its workers all in.
pub async fn a_cancelled_exams_rehearsal_is_removed(factory: &impl StoreFactory) {
    let workers = SimulatedWorkers::new();
    let a = service(factory.replica().await, &workers, 311);
    let b = service(factory.replica().await, &workers, 312);
    for code in ["w-rx1", "w-rx2"] {
        a.fleet()
            .heartbeat(heartbeat_with_slots(code, 4, 0))
            .await
            .unwrap();
    }
    workers.set_check(&wid("w-rx2"), CheckBehaviour::Fails("disk full".into()));
    let starts = now().plus(Duration::from_secs(3 * 3600));
    for id in ["exam-rx", "exam-ry"] {
        assert!(matches!(
            a.exams()
                .book_exam(exam(id, starts, 60, 2), "admin")
                .await
                .unwrap(),
            Booking::Accepted(_)
        ));
    }
    let cancelled = ExamId::parse("examId", "exam-rx").unwrap();
    let booked = ExamId::parse("examId", "exam-ry").unwrap();
    for id in [&cancelled, &booked] {
        let done = a.exams().rehearse(id, "admin").await.unwrap();
        assert_eq!(done.report.failing.len(), 1);
    }
    let left_out = a
        .placement()
        .excluded_by_rehearsal(&cancelled)
        .await
        .unwrap();
    assert!(left_out.contains(&wid("w-rx2")), "{left_out:?}");
    let store = factory.replica().await;

    a.exams().cancel_exam(&cancelled, "admin").await.unwrap();
    assert!(
        store.rehearsal(&cancelled).await.unwrap().is_none(),
        "the cancel removes the record"
    );
    assert!(store.rehearsal(&booked).await.unwrap().is_some());
    assert_eq!(b.exams().remove_cancelled_rehearsals().await.unwrap(), 0);

    // A record the cancel did not remove.
    assert!(
        store
            .put_rehearsal(&record("exam-rx", 1), 0, &[])
            .await
            .unwrap()
    );
    assert_eq!(b.exams().remove_cancelled_rehearsals().await.unwrap(), 1);
    assert!(store.rehearsal(&cancelled).await.unwrap().is_none());
    assert_eq!(
        store.rehearsal(&booked).await.unwrap().unwrap().version,
        1,
        "a booked exam's rehearsal stays"
    );
    assert_eq!(b.exams().remove_cancelled_rehearsals().await.unwrap(), 0);

    assert!(matches!(
        b.exams()
            .book_exam(exam("exam-rx", starts, 60, 2), "admin")
            .await
            .unwrap(),
        Booking::Accepted(_)
    ));
    assert!(a.exams().rehearsal(&cancelled).await.unwrap().is_none());
    let left_out = a
        .placement()
        .excluded_by_rehearsal(&cancelled)
        .await
        .unwrap();
    assert!(left_out.is_empty(), "no worker left out: {left_out:?}");
}
