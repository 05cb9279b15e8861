//! Cases of the ledger's open interruptions
//! ([`DisruptionLedger::open_interruption`](crate::ledger::DisruptionLedger::open_interruption)):
//! the first of a kind is kept and a close removes only itself; a
//! restarted worker's release opens one in its own step; and through the
//! service, a refusal, a restart and a wait in the waiting room become the
//! `refused`, `workerRestarted` and `waitingRoom` entries of the placement
//! that ends them, written with its confirmation.

use std::sync::Arc;
use std::time::Duration;

use super::StoreFactory;
use super::fixtures::now;
use crate::error::Error;
use crate::health::HeartbeatStamp;
use crate::ids::SessionKey;
use crate::ledger::{Disruption, DisruptionKind, OpenInterruption};
use crate::outbox::{LostDispatch, LostRelease};
use crate::service::{ClusterService, ServiceConfig, SessionRequest};
use crate::store::Store;
use crate::testkit::{
    Behaviour, SimulatedWorkers, exam, heartbeat_with_slots, key, request, reserve_and_confirm,
    wid, worker_record,
};
use crate::time::{Clock, ManualClock, Timestamp};

const SECOND: Duration = Duration::from_secs(1);

/// Opening keeps the first interruption of a kind; a close of another
/// leaves it; a close of it removes it; the exams with ledger entries are
/// listed.
pub async fn open_interruptions_keep_the_first_and_close_only_themselves(
    factory: &impl StoreFactory,
) {
    let store = factory.replica().await;
    let session = key("e-open", "u1");
    let first = OpenInterruption::refused(session.clone(), Timestamp(1_000));
    let later = OpenInterruption::refused(session.clone(), Timestamp(2_000));
    assert_eq!(store.open_interruption(&first).await.unwrap(), first);
    assert_eq!(
        store.open_interruption(&later).await.unwrap(),
        first,
        "the first refusal is kept"
    );
    let lost = crate::dispatch::Dispatch::reserve(
        session.clone(),
        wid("w-open"),
        Timestamp(500),
        None,
        None,
    );
    let restart = OpenInterruption::restarted(&lost, Some(Timestamp(3_000)), Timestamp(4_000));
    store.open_interruption(&restart).await.unwrap();
    let mut open = store.open_interruptions(&session).await.unwrap();
    open.sort_by_key(|o| o.kind);
    assert_eq!(open, vec![restart.clone(), first.clone()]);
    assert!(
        store
            .open_interruptions(&key("e-open", "other"))
            .await
            .unwrap()
            .is_empty()
    );

    assert!(!store.close_interruption(&later).await.unwrap());
    assert!(store.close_interruption(&first).await.unwrap());
    assert!(!store.close_interruption(&first).await.unwrap());
    assert_eq!(
        store.open_interruptions(&session).await.unwrap(),
        vec![restart]
    );
    let again = store.open_interruption(&later).await.unwrap();
    assert_eq!(again, later, "a new refusal opens once the first closed");

    assert!(store.ledger_exams().await.unwrap().is_empty());
    let entry = |exam: &str| {
        Disruption::new(
            key(exam, "u"),
            DisruptionKind::WorkerLost,
            Timestamp(0),
            Timestamp(1_000),
            Vec::new(),
            "c",
        )
    };
    store
        .append_disruptions(&[entry("e-open-a"), entry("e-open-b"), entry("e-open-a")])
        .await
        .unwrap();
    let mut exams: Vec<String> = store
        .ledger_exams()
        .await
        .unwrap()
        .iter()
        .map(|e| e.as_str().to_owned())
        .collect();
    exams.sort();
    assert_eq!(exams, ["e-open-a", "e-open-b"]);
}

/// A restarted worker's report that releases a lost session opens its
/// interruption in the same step: a stale version opens none, and a
/// dispatch that is no longer the session's is neither released nor
/// opened.
pub async fn a_restarts_release_opens_its_interruption_in_the_same_step(
    factory: &impl StoreFactory,
) {
    let store = factory.replica().await;
    let t = now();
    let record = worker_record("w-open-lost", 4, 0);
    store.put_worker(&record, None).await.unwrap();
    let a = key("e-open-lost", "a");
    let b = key("e-open-lost", "b");
    let ttl = Duration::from_secs(60);
    let da = reserve_and_confirm(&*store, &request(&a, &record.id, t), t, ttl).await;
    let db = reserve_and_confirm(&*store, &request(&b, &record.id, t), t, ttl).await;
    let snapshot = store.worker(&record.id).await.unwrap().expect("stored");
    let mut report = snapshot.record.clone();
    report.stamp = Some(HeartbeatStamp {
        boot_id: Some("boot-2".into()),
        seq: Some(1),
    });
    report.boot_seen_at = Some(t.plus(SECOND));
    report.live_sessions = Some(Vec::new());
    let item = |d: &crate::dispatch::Dispatch, id| LostDispatch {
        key: d.key.clone(),
        id,
        entries: Vec::new(),
        interruption: Some(OpenInterruption::restarted(
            d,
            report.boot_seen_at,
            t.plus(SECOND),
        )),
    };
    let items = [
        item(&da, da.id),
        // Not its dispatch any more.
        item(&db, crate::ids::DispatchId::new()),
    ];
    let stale = store
        .put_worker_releasing_lost(&report, snapshot.version + 1, &[], &items)
        .await
        .unwrap();
    assert!(matches!(stale, LostRelease::Conflict { .. }), "{stale:?}");
    assert!(store.open_interruptions(&a).await.unwrap().is_empty());

    let written = store
        .put_worker_releasing_lost(&report, snapshot.version, &[], &items)
        .await
        .unwrap();
    let LostRelease::Written { released, .. } = written else {
        panic!("written: {written:?}");
    };
    assert_eq!(released, vec![a.clone()]);
    let open = store.open_interruptions(&a).await.unwrap();
    assert_eq!(open, vec![items[0].interruption.clone().unwrap()]);
    assert_eq!(open[0].kind, DisruptionKind::WorkerRestarted);
    assert_eq!(open[0].since, t.plus(SECOND));
    assert!(store.open_interruptions(&b).await.unwrap().is_empty());
}

/// A service on `store` with a manual clock.
fn service(
    store: Arc<dyn Store>,
    workers: &SimulatedWorkers,
    clock: &Arc<ManualClock>,
) -> ClusterService {
    ClusterService::builder(store, Arc::new(workers.clone()))
        .config(ServiceConfig {
            exam_headroom_percent: 0,
            ..ServiceConfig::default()
        })
        .clock(Arc::clone(clock) as Arc<dyn crate::time::Clock>)
        .build()
}

/// The session's entries of `kind`.
async fn entries_of(store: &dyn Store, key: &SessionKey, kind: DisruptionKind) -> Vec<Disruption> {
    store
        .disruptions(key)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == kind)
        .collect()
}

/// A student of a booked exam refused for want of a slot, refused again,
/// then placed once a slot frees: one `refused` entry from the first
/// refusal to the placement, the interruption closed, and nothing more on
/// the next request.
pub async fn a_refused_student_is_placed_with_a_refused_entry(factory: &impl StoreFactory) {
    let store = factory.replica().await;
    let workers = SimulatedWorkers::new();
    let t = now();
    let clock = Arc::new(ManualClock::new(t));
    let svc = service(Arc::clone(&store), &workers, &clock);
    svc.fleet()
        .heartbeat(heartbeat_with_slots("w-refused", 1, 0))
        .await
        .unwrap();
    let mut booked = exam("e-refused", t.minus(Duration::from_secs(60)), 60, 1);
    booked.queue = false;
    svc.exams().book_exam(booked, "admin").await.unwrap();
    let first = key("e-refused", "first");
    let late = key("e-refused", "late");
    let request_session = |k: &SessionKey| {
        svc.placement()
            .request_session(k.clone(), Default::default())
    };
    assert!(matches!(
        request_session(&first).await.unwrap(),
        SessionRequest::Placed(_)
    ));
    clock.advance(SECOND);
    let refused_at = clock.now();
    let refusal = request_session(&late).await;
    assert!(matches!(refusal, Err(Error::NoCapacity(_))), "{refusal:?}");
    clock.advance(SECOND);
    assert!(matches!(
        request_session(&late).await,
        Err(Error::NoCapacity(_))
    ));
    assert_eq!(store.open_interruptions(&late).await.unwrap().len(), 1);

    clock.advance(3 * SECOND);
    svc.placement().end_session(&first).await.unwrap();
    let placed_at = clock.now();
    let SessionRequest::Placed(placed) = request_session(&late).await.unwrap() else {
        panic!("placed once a slot freed");
    };
    let refused = entries_of(&*store, &late, DisruptionKind::Refused).await;
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(
        (refused[0].started_at, refused[0].ended_at),
        (refused_at, placed_at)
    );
    assert_eq!(refused[0].workers, vec![placed.dispatch.worker.clone()]);
    assert!(store.open_interruptions(&late).await.unwrap().is_empty());
    assert!(
        entries_of(&*store, &first, DisruptionKind::Refused)
            .await
            .is_empty()
    );
    clock.advance(SECOND);
    request_session(&late).await.unwrap();
    assert_eq!(store.disruptions(&late).await.unwrap().len(), 1);
}

/// A booked exam's student whose worker restarted without their desktop is
/// released by the worker's next heartbeat; their next request places them
/// anew with
/// a `workerRestarted` entry from when the new boot was first heard to the
/// confirmation.
pub async fn a_restarted_workers_student_is_placed_with_its_entry(factory: &impl StoreFactory) {
    let store = factory.replica().await;
    let workers = SimulatedWorkers::new();
    let t = now();
    let clock = Arc::new(ManualClock::new(t));
    let svc = service(Arc::clone(&store), &workers, &clock);
    let beat = |boot: &str, seq: u64, live: Vec<SessionKey>| {
        let mut hb = heartbeat_with_slots("w-restart", 2, live.len() as u32);
        hb.stamp = HeartbeatStamp {
            boot_id: Some(boot.into()),
            seq: Some(seq),
        };
        hb.live_sessions = Some(live);
        hb
    };
    svc.fleet()
        .heartbeat(beat("boot-1", 1, Vec::new()))
        .await
        .unwrap();
    let mut booked = exam("e-restart", t.minus(Duration::from_secs(60)), 60, 1);
    booked.queue = false;
    svc.exams().book_exam(booked, "admin").await.unwrap();
    let student = key("e-restart", "u1");
    svc.placement()
        .allocate(student.clone(), Default::default())
        .await
        .unwrap();
    clock.advance(SECOND);
    svc.fleet()
        .heartbeat(beat("boot-1", 2, vec![student.clone()]))
        .await
        .unwrap();

    workers.kill(&wid("w-restart"));
    workers.set_behaviour(&wid("w-restart"), Behaviour::Healthy);
    clock.advance(4 * SECOND);
    let heard = clock.now();
    svc.fleet()
        .heartbeat(beat("boot-2", 1, Vec::new()))
        .await
        .unwrap();
    assert!(
        store.dispatch(&student).await.unwrap().is_none(),
        "released"
    );
    assert!(
        store.disruptions(&student).await.unwrap().is_empty(),
        "no entry before the student has a desktop again"
    );

    clock.advance(7 * SECOND);
    let placed_at = clock.now();
    svc.placement()
        .allocate(student.clone(), Default::default())
        .await
        .unwrap();
    let restarted = entries_of(&*store, &student, DisruptionKind::WorkerRestarted).await;
    assert_eq!(restarted.len(), 1, "{restarted:?}");
    assert_eq!(
        (restarted[0].started_at, restarted[0].ended_at),
        (heard, placed_at)
    );
    assert_eq!(
        restarted[0].workers,
        vec![wid("w-restart"), wid("w-restart")]
    );
    assert!(store.open_interruptions(&student).await.unwrap().is_empty());
}

/// Students who wait in a started exam's waiting room are placed with a
/// `waitingRoom` entry from joining the queue, or the exam's start if
/// later, to the confirmation.
pub async fn a_wait_in_a_started_exams_waiting_room_is_an_entry(factory: &impl StoreFactory) {
    let store = factory.replica().await;
    let workers = SimulatedWorkers::new();
    let t = now();
    let clock = Arc::new(ManualClock::new(t));
    let svc = service(Arc::clone(&store), &workers, &clock);
    svc.fleet()
        .heartbeat(heartbeat_with_slots("w-queue", 1, 0))
        .await
        .unwrap();
    let starts = t.plus(10 * SECOND);
    svc.exams()
        .book_exam(exam("e-queue", starts, 60, 1), "admin")
        .await
        .unwrap();
    let first = key("e-queue", "first");
    let waiting = key("e-queue", "waiting");
    let request_session = |k: &SessionKey| {
        svc.placement()
            .request_session(k.clone(), Default::default())
    };
    assert!(matches!(
        request_session(&first).await.unwrap(),
        SessionRequest::Placed(_)
    ));
    clock.advance(SECOND);
    assert!(matches!(
        request_session(&waiting).await.unwrap(),
        SessionRequest::Queued(_)
    ));
    clock.advance(30 * SECOND);
    svc.placement().end_session(&first).await.unwrap();
    svc.placement().promote_queue(&first.exam_id).await.unwrap();
    let placed_at = clock.now();
    let dispatch = store.dispatch(&waiting).await.unwrap().expect("promoted");
    let waited = entries_of(&*store, &waiting, DisruptionKind::WaitingRoom).await;
    assert_eq!(waited.len(), 1, "{waited:?}");
    assert_eq!(
        (waited[0].started_at, waited[0].ended_at),
        (starts, placed_at),
        "counted from the exam's start"
    );
    assert_eq!(waited[0].workers, vec![dispatch.worker]);
    assert!(
        store.disruptions(&first).await.unwrap().is_empty(),
        "placed at once: no entry"
    );
}
