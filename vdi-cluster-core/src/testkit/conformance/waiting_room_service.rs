//! Invariant E through the service: students of a booked exam beyond
//! capacity request, poll, leave and are placed on several replicas at
//! once, while placed students release from every replica and each release
//! promotes on the replica that released. Nobody gets two dispatches or a
//! second placement from the queue, nobody is lost, counters never drift.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::StoreFactory;
use super::fixtures::now;
use crate::events::{EventKind, RecordingSink};
use crate::ids::{ExamId, SessionKey};
use crate::service::{ClusterService, ServiceConfig, SessionRequest, SessionState};
use crate::testkit::{SimulatedWorkers, assert_no_drift, exam, heartbeat_with_slots, wid};

const REPLICAS: usize = 3;
const STUDENTS: usize = 18;
const SLOTS: u32 = 4;

fn student(n: usize) -> SessionKey {
    SessionKey::parse("exam-e", format!("s{n}")).unwrap()
}

/// Every student requests on a replica of their own; placed ones release
/// from another replica, which promotes; queued ones poll, and every
/// fifth leaves. Ends when every student who stayed was placed once.
pub async fn queued_students_are_placed_once_across_replicas(factory: &impl StoreFactory) {
    let workers = SimulatedWorkers::new();
    let events = RecordingSink::default();
    let mut services = Vec::new();
    for r in 0..REPLICAS {
        let config = ServiceConfig {
            seed: r as u64,
            replica_id: format!("replica-{r}"),
            exam_headroom_percent: 0,
            ..ServiceConfig::default()
        };
        services.push(Arc::new(
            ClusterService::builder(factory.replica().await, Arc::new(workers.clone()))
                .config(config)
                .events(Arc::new(events.clone()))
                .build(),
        ));
    }
    services[0]
        .fleet()
        .heartbeat(heartbeat_with_slots("w1", SLOTS, 0))
        .await
        .unwrap();
    let booked = exam("exam-e", now().plus(Duration::from_secs(3600)), 60, 1);
    services[0]
        .exams()
        .book_exam(booked, "admin")
        .await
        .unwrap();
    let exam_id = ExamId::parse("examId", "exam-e").unwrap();

    let released: Arc<Mutex<BTreeSet<usize>>> = Arc::default();
    let left: Arc<Mutex<BTreeSet<usize>>> = Arc::default();
    let mut tasks = Vec::new();
    for n in 0..STUDENTS {
        let svc = Arc::clone(&services[n % REPLICAS]);
        let other = Arc::clone(&services[(n + 1) % REPLICAS]);
        let (released, left) = (Arc::clone(&released), Arc::clone(&left));
        tasks.push(tokio::spawn(async move {
            let key = student(n);
            let mut answer = svc
                .placement()
                .request_session(key.clone(), Default::default())
                .await
                .unwrap();
            let mut polls = 0;
            loop {
                if let SessionRequest::Placed(_) = answer {
                    tokio::task::yield_now().await;
                    let ended = other.placement().end_session(&key).await.unwrap();
                    // Ended while its promotion was completing: the
                    // promoter, finding the student gone, released it.
                    assert!(
                        ended.released.is_some() || ended.left_queue,
                        "{key}: nothing released"
                    );
                    other.placement().promote_after_release(&key.exam_id).await;
                    released.lock().unwrap().insert(n);
                    return;
                }
                if n % 5 == 4 && polls == 3 {
                    let ended = svc.placement().end_session(&key).await.unwrap();
                    if ended.left_queue {
                        left.lock().unwrap().insert(n);
                        return;
                    }
                    // Placed meanwhile: released by that call.
                    released.lock().unwrap().insert(n);
                    return;
                }
                polls += 1;
                tokio::time::sleep(Duration::from_millis(5)).await;
                answer = match svc.placement().session_state(&key).await.unwrap() {
                    SessionState::Placed(_) => SessionRequest::Placed(Box::new(
                        svc.placement()
                            .allocate(key.clone(), Default::default())
                            .await
                            .unwrap(),
                    )),
                    SessionState::Queued(s) => SessionRequest::Queued(s),
                    SessionState::Starting(s) => SessionRequest::Starting(s),
                };
            }
        }));
    }
    // The safety net: the leader's pass, while students come and go.
    let stop = Arc::new(AtomicBool::new(false));
    let tending = {
        let (svc, stop) = (Arc::clone(&services[2]), Arc::clone(&stop));
        tokio::spawn(async move {
            while !stop.load(Ordering::Acquire) {
                svc.exams().tend_queues().await.unwrap();
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    for t in tasks {
        t.await.unwrap();
    }
    stop.store(true, Ordering::Release);
    tending.await.unwrap();

    let released = released.lock().unwrap().clone();
    let left = left.lock().unwrap().clone();
    assert_eq!(released.len() + left.len(), STUDENTS, "nobody lost");
    assert!(released.is_disjoint(&left));

    let mut placed_from_queue: BTreeMap<SessionKey, usize> = BTreeMap::new();
    for e in events.events() {
        if let EventKind::QueuedSessionPlaced { session, .. } = e.kind {
            *placed_from_queue.entry(session).or_default() += 1;
        }
    }
    assert!(
        placed_from_queue.values().all(|n| *n == 1),
        "placed from the queue twice: {placed_from_queue:?}"
    );
    let store = factory.replica().await;
    let queue = store.exam_queue(&exam_id).await.unwrap();
    assert!(queue.entries.is_empty(), "{:?}", queue.entries);
    assert_eq!(
        queue.totals.placed,
        placed_from_queue.len() as u64,
        "the totals count each placement once"
    );
    assert!(
        workers.sessions(&wid("w1")).is_empty(),
        "no session left behind"
    );
    // One worker call per placed student, plus one for each who left
    // while being placed (undone at completion).
    let calls = workers.allocate_calls();
    assert!(
        (released.len() as u64..=(released.len() + left.len()) as u64).contains(&calls),
        "{calls} worker calls for {} placed, {} left",
        released.len(),
        left.len()
    );
    assert_no_drift(&*store).await;
}
