//! Transitions to `drained` and `disabled` against compare-and-reserve: the
//! backend's guarded policy write and its reservations exclude each other.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Barrier;

use super::StoreFactory;
use super::concurrency::service;
use super::fixtures::{add_worker, dispatched, reserve, reserved, with_policy};
use crate::error::Error;
use crate::policy::{AdminAction, AdminPolicy, TransitionError};
use crate::store::{CasOutcome, Reservation};
use crate::testkit::{SimulatedWorkers, assert_no_drift, key};

/// `put_worker_if_dispatched` writes only when both the version and the
/// dispatched count are the expected ones, and bumps the version.
pub async fn guarded_worker_put_checks_the_dispatched_count(factory: &impl StoreFactory) {
    let store = factory.replica().await;
    let w = add_worker(&store, "w-guard", 4).await;
    let snap = store.worker(&w).await.unwrap().expect("stored");
    let drained = with_policy(snap.record.clone(), AdminPolicy::Drained);
    let k = key("exam-guard", "student-1");
    reserved(&store, &k, &w).await;

    // One dispatch on the worker: a write expecting none conflicts.
    assert_eq!(
        store
            .put_worker_if_dispatched(&drained, snap.version, 0)
            .await
            .unwrap(),
        CasOutcome::Conflict {
            current: Some(snap.version)
        }
    );
    // A wrong version conflicts even with the right count.
    assert!(matches!(
        store
            .put_worker_if_dispatched(&drained, snap.version + 5, 1)
            .await
            .unwrap(),
        CasOutcome::Conflict { current: Some(v) } if v == snap.version
    ));
    let stored = store.worker(&w).await.unwrap().expect("stored");
    assert_eq!(stored.version, snap.version);
    assert_eq!(stored.record.policy, AdminPolicy::Active);

    store
        .release(&k, None, None, None)
        .await
        .unwrap()
        .expect("released");
    let version = match store
        .put_worker_if_dispatched(&drained, snap.version, 0)
        .await
        .unwrap()
    {
        CasOutcome::Written { version } => version,
        other => panic!("guarded write on an empty worker failed: {other:?}"),
    };
    assert!(version > snap.version);
    let stored = store.worker(&w).await.unwrap().expect("stored");
    assert_eq!(stored.version, version);
    assert_eq!(stored.record.policy, AdminPolicy::Drained);
    assert_eq!(stored.dispatched, 0);
    assert_eq!(
        reserve(&store, &key("exam-guard", "student-2"), &w).await,
        Reservation::NotAccepting
    );
}

/// Rounds of [`drain_and_disable_exclude_reservations`].
const ROUNDS: usize = 16;
/// Replicas reserving in each round, besides the operator's.
const RESERVING_REPLICAS: usize = 3;
/// Reserving tasks per replica.
const TASKS: usize = 4;
/// Reservations each task attempts per round.
const ATTEMPTS: usize = 6;

/// Many concurrent reservations from several replicas against an
/// operator's drain (or disable without force) from another: a transition
/// that reports `drained`/`disabled` leaves no dispatch on the worker, no
/// reservation lands after any transition, and invariants A–C hold.
pub async fn drain_and_disable_exclude_reservations(factory: &impl StoreFactory) {
    let first = factory.replica().await;
    let workers = SimulatedWorkers::new();
    let operator = service(factory.replica().await, &workers, 41, |_| {});
    let mut reservers = Vec::new();
    for _ in 0..RESERVING_REPLICAS {
        reservers.push(factory.replica().await);
    }
    let capacity = (RESERVING_REPLICAS * TASKS * ATTEMPTS) as u32;
    let (mut empty_wins, mut raced) = (0, 0);
    for round in 0..ROUNDS {
        let w = add_worker(&first, &format!("w-race-{round:02}"), capacity).await;
        let action = if (round / 2) % 2 == 0 {
            AdminAction::Drain { deadline: None }
        } else {
            AdminAction::Disable { force: false }
        };
        let barrier = Arc::new(Barrier::new(RESERVING_REPLICAS * TASKS + 1));
        let mut tasks = Vec::new();
        for (r, store) in reservers.iter().enumerate() {
            for t in 0..TASKS {
                let (store, w, barrier) = (Arc::clone(store), w.clone(), Arc::clone(&barrier));
                tasks.push(tokio::spawn(async move {
                    barrier.wait().await;
                    // Every other round, give the operator a head start,
                    // so that either side wins some rounds on every backend.
                    if round % 2 == 1 {
                        tokio::time::sleep(Duration::from_millis(1 + (round % 3) as u64)).await;
                    }
                    let (mut placed, mut refused) = (0u32, false);
                    for i in 0..ATTEMPTS {
                        let k = key("exam-race", &format!("s-{round}-{r}-{t}-{i}"));
                        match reserve(&store, &k, &w).await {
                            Reservation::Reserved { .. } => {
                                // The policy never returns to active in a
                                // round: a reservation after a refusal
                                // landed after the transition.
                                assert!(!refused, "{k} was reserved on {w} after a refusal");
                                placed += 1;
                            }
                            Reservation::NotAccepting => refused = true,
                            other => panic!("reserve of {k} on {w}: {other:?}"),
                        }
                    }
                    placed
                }));
            }
        }
        let admin = {
            let (operator, w, barrier) = (Arc::clone(&operator), w.clone(), Arc::clone(&barrier));
            tokio::spawn(async move {
                barrier.wait().await;
                operator.fleet().admin(&w, action, "conformance").await
            })
        };
        let mut placed = 0;
        for t in tasks {
            placed += t.await.unwrap();
        }
        let outcome = admin.await.unwrap();

        let snap = first.worker(&w).await.unwrap().expect("stored");
        let records = first.worker_dispatches(&w, 1000).await.unwrap();
        assert_eq!(snap.dispatched, placed, "drift on {w}");
        assert_eq!(records.len() as u32, placed, "records on {w}");
        assert!(placed <= capacity, "over-allocation on {w}");
        match outcome {
            Ok(done) => {
                assert_eq!(
                    snap.record.policy, done.transition.to,
                    "stored policy of {w}"
                );
                match done.transition.to {
                    AdminPolicy::Drained | AdminPolicy::Disabled { forced: false } => {
                        assert_eq!(
                            placed, 0,
                            "{w} became {} while {placed} reservation(s) landed",
                            done.transition.to
                        );
                        empty_wins += 1;
                    }
                    AdminPolicy::Draining { .. } => {
                        assert!(placed > 0, "{w} draining with nothing on it");
                        raced += 1;
                    }
                    other => panic!("{action:?} on {w} ended {other}"),
                }
            }
            Err(Error::Transition(TransitionError::SessionsRemain { count })) => {
                assert_eq!(snap.record.policy, AdminPolicy::Active);
                assert!(count > 0 && placed > 0);
                raced += 1;
            }
            // Every fresh read lost to a racing reservation.
            Err(Error::Conflict { .. }) => raced += 1,
            Err(e) => panic!("{action:?} on {w} failed: {e}"),
        }
        // Whatever happened, a transition that took effect refuses from now.
        if !snap.record.accepting() {
            assert_eq!(
                reserve(&first, &key("exam-race", &format!("late-{round}")), &w).await,
                Reservation::NotAccepting
            );
            assert_eq!(dispatched(&first, &w).await, placed);
        }
    }
    assert_eq!(empty_wins + raced, ROUNDS);
    assert_no_drift(&*first).await;
}
