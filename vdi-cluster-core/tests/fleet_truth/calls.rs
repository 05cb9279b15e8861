//! Worker calls that time out, are slow or lose their answer; duplicate
//! allocations that coalesce; reloads during a mass failure; releases.

use std::sync::Arc;
use std::time::Duration;

use vdi_cluster_core::events::EventKind;
use vdi_cluster_core::service::AllocateOutcome;
use vdi_cluster_core::testkit::{Behaviour, assert_no_drift, key, request, wid};
use vdi_cluster_core::{DispatchState, DispatchStore, Error, Registry, WorkerId};

use crate::{START, config, harness, on_store};

#[tokio::test]
async fn a_timed_out_worker_call_is_adopted_or_stopped() {
    let h = harness(|c| {
        c.worker_call_timeout = Duration::from_millis(30);
        c.retry_count = 3;
    });
    h.report("w1", 4, false).await;
    let (alone, elsewhere) = (key("exam", "alone"), key("exam", "elsewhere"));
    h.workers.set_behaviour(&wid("w1"), Behaviour::Hanging);
    let err = h
        .svc
        .placement()
        .allocate(alone.clone(), Default::default())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NoCapacity(_)), "{err:?}");
    assert!(
        h.store.dispatch(&alone).await.unwrap().is_none(),
        "reservation undone"
    );

    // The worker started it anyway: its next report has it adopted.
    h.workers.set_behaviour(&wid("w1"), Behaviour::Healthy);
    h.run_on("w1", &alone).await;
    assert_eq!(h.report("w1", 4, true).await.adopted_sessions, 1);
    let back = h
        .svc
        .placement()
        .allocate(alone.clone(), Default::default())
        .await
        .unwrap();
    assert_eq!(
        (back.dispatch.worker.as_str(), back.outcome),
        ("w1", AllocateOutcome::Existing)
    );

    // With a second worker the student is placed there; the slow worker's
    // copy is stopped once that dispatch has settled.
    h.report("w2", 4, false).await;
    h.workers.set_behaviour(&wid("w1"), Behaviour::Hanging);
    let mut placed = None;
    for _ in 0..8 {
        let a = h
            .svc
            .placement()
            .allocate(elsewhere.clone(), Default::default())
            .await
            .unwrap();
        if a.dispatch.worker.as_str() == "w2" {
            placed = Some(a);
            break;
        }
        h.svc.placement().release(&elsewhere).await.unwrap();
    }
    assert!(placed.is_some(), "placed on w2");
    h.workers.set_behaviour(&wid("w1"), Behaviour::Healthy);
    h.run_on("w1", &elsewhere).await;
    h.advance(h.svc.config().fleet_grace());
    h.report("w2", 4, false).await;
    let ack = h.report("w1", 4, false).await;
    assert_eq!(ack.release_sessions, vec![elsewhere.clone()]);
    assert_eq!(
        h.svc
            .placement()
            .session(&elsewhere)
            .await
            .unwrap()
            .worker
            .as_str(),
        "w2"
    );
    assert_no_drift(&h.store).await;
}

#[tokio::test]
async fn a_copy_left_by_a_lost_answer_is_released_once_placed_elsewhere() {
    let h = harness(|c| {
        c.worker_call_timeout = Duration::from_millis(30);
        c.retry_count = 3;
    });
    h.report("w1", 4, false).await;
    h.report("w2", 4, false).await;
    h.workers.set_behaviour(&wid("w1"), Behaviour::LostAnswers);
    // One student per exam (no affinity), until one is tried on w1 first.
    let mut left_on_w1 = None;
    for i in 0..16 {
        let k = key(&format!("exam-{i}"), "student");
        let a = h
            .svc
            .placement()
            .allocate(k.clone(), Default::default())
            .await
            .unwrap();
        assert_eq!(a.dispatch.worker.as_str(), "w2");
        if a.failed_calls == 1 {
            left_on_w1 = Some(k);
            break;
        }
    }
    let k = left_on_w1.expect("a student tried on w1 first");
    // w1 started it; now that it runs on w2, w1 is told to release its
    // copy at once, not after the fleet grace (the clock stands still).
    let mut polls = 0;
    while h.workers.sessions(&wid("w1")).contains(&k) {
        polls += 1;
        assert!(polls < 1_000, "w1 never told to release its copy");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let ack = h.report("w1", 4, false).await;
    assert!(ack.release_sessions.is_empty(), "{ack:?}");
    assert_eq!((ack.dispatched_sessions, ack.available_sessions), (0, 4));
    assert_eq!(
        h.svc.placement().session(&k).await.unwrap().worker.as_str(),
        "w2"
    );
    assert_no_drift(&h.store).await;
}

#[tokio::test]
async fn a_report_confirming_a_slow_call_hands_the_allocator_that_dispatch() {
    // Generous delays: the report only has to come before the worker's
    // answer (or the call's timeout); nothing measures them.
    for behaviour in [Behaviour::Slow(Duration::from_secs(3)), Behaviour::Hanging] {
        let h = harness(|c| c.worker_call_timeout = Duration::from_secs(6));
        h.report("w1", 4, false).await;
        h.workers.set_behaviour(&wid("w1"), behaviour);
        let k = key("exam", "slow");
        let svc = Arc::clone(&h.svc);
        let call = tokio::spawn({
            let k = k.clone();
            async move { svc.placement().allocate(k, Default::default()).await }
        });
        let reserved = loop {
            if let Some(d) = h.store.dispatch(&k).await.unwrap() {
                break d;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        // The worker reports the session before the allocator hears back.
        h.advance(h.svc.config().fleet_grace());
        let ack = h.report_live("w1", 4, vec![k.clone()], true).await;
        assert_eq!(ack.adopted_reservations, 1, "{behaviour:?}");
        assert_eq!(ack.dispatched_sessions, 1, "the answer counts it");
        let a = call
            .await
            .unwrap()
            .expect("the allocator returns the adopted dispatch");
        assert_eq!(
            (a.dispatch.id, a.dispatch.state),
            (reserved.id, DispatchState::Active)
        );
        assert!(a.dispatch.session.is_some(), "{behaviour:?}");
        assert_eq!(h.svc.placement().session(&k).await.unwrap().id, reserved.id);
        assert_no_drift(&h.store).await;
    }
}

#[tokio::test]
async fn concurrent_duplicates_coalesce_on_the_last_slot() {
    let h = harness(|_| {});
    // One slot left in the whole cluster, a slow worker.
    h.report("w1", 1, false).await;
    h.workers
        .set_behaviour(&wid("w1"), Behaviour::Slow(Duration::from_millis(100)));
    let replica = on_store(
        h.store.clone(),
        h.clock.clone(),
        h.workers.clone(),
        config(|c| c.seed = 8),
    );
    let k = key("exam", "clicker");
    let mut tasks = Vec::new();
    for i in 0..12 {
        let svc = if i % 2 == 0 {
            Arc::clone(&h.svc)
        } else {
            Arc::clone(&replica.svc)
        };
        let k = k.clone();
        tasks.push(tokio::spawn(async move {
            svc.placement().allocate(k, Default::default()).await
        }));
    }
    let mut ids = std::collections::BTreeSet::new();
    for t in tasks {
        let a = t.await.unwrap().expect("every duplicate gets the session");
        ids.insert(a.dispatch.id);
        assert_eq!(a.dispatch.state, DispatchState::Active);
    }
    assert_eq!(ids.len(), 1, "one dispatch for all");
    assert_eq!(h.workers.allocate_calls(), 1, "the worker was asked once");
    assert_eq!(h.dispatched("w1").await, 1);
    assert_no_drift(&h.store).await;
}

#[tokio::test]
async fn the_wait_for_an_allocation_in_flight_is_bounded() {
    let h = harness(|c| c.coalesce_wait = Some(Duration::from_millis(50)));
    h.report("w1", 4, false).await;
    let k = key("exam", "s1");
    // A reservation in flight on another replica that never finishes.
    h.store
        .reserve(&request(&k, &wid("w1"), START))
        .await
        .unwrap();
    let err = h
        .svc
        .placement()
        .allocate(k, Default::default())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::AllocationInProgress(_)), "{err:?}");
}

#[tokio::test]
async fn a_reload_during_a_mass_failure_keeps_the_dispatch() {
    let h = harness(|_| {});
    for w in ["w1", "w2", "w3"] {
        h.report(w, 4, false).await;
    }
    let k = key("exam", "s1");
    let first = h
        .svc
        .placement()
        .allocate(k.clone(), Default::default())
        .await
        .unwrap();
    let on: WorkerId = first.dispatch.worker.clone();
    let up = ["w1", "w2", "w3"]
        .into_iter()
        .find(|w| *w != on.as_str())
        .unwrap();
    // Two of three workers go silent at once, the session's among them.
    h.advance(Duration::from_secs(100));
    h.report(up, 4, false).await;
    h.advance(Duration::from_secs(30));

    let reload = h
        .svc
        .placement()
        .allocate(k.clone(), Default::default())
        .await
        .unwrap();
    assert_eq!(reload.dispatch.id, first.dispatch.id, "the same desktop");
    assert_eq!(reload.outcome, AllocateOutcome::Existing);
    assert!(reload.warning.is_some(), "the API can tell the student");
    assert_eq!(h.svc.placement().session(&k).await.unwrap().worker, on);
    assert!(
        h.count(|e| matches!(e, EventKind::SessionMigrated { .. })) == 0,
        "nothing moved"
    );
}

#[tokio::test]
async fn a_released_slot_is_usable_before_the_next_heartbeat() {
    let h = harness(|_| {});
    h.report("w1", 1, false).await;
    let (first, second) = (key("exam", "first"), key("exam", "second"));
    h.svc
        .placement()
        .allocate(first.clone(), Default::default())
        .await
        .unwrap();
    // The worker reports it: one slot, in use.
    assert_eq!(h.report("w1", 1, false).await.available_sessions, 0);
    let full = h
        .svc
        .placement()
        .allocate(second.clone(), Default::default())
        .await;
    assert!(matches!(full, Err(Error::NoCapacity(_))), "{full:?}");

    // Released, the worker confirmed the stop: the next student is placed
    // at once, with the worker's last report still listing the first.
    h.svc
        .placement()
        .release(&first)
        .await
        .unwrap()
        .expect("released");
    let placed = h
        .svc
        .placement()
        .allocate(second.clone(), Default::default())
        .await
        .unwrap();
    assert_eq!(placed.dispatch.worker.as_str(), "w1");
    assert_eq!(h.workers.sessions(&wid("w1")), vec![second]);
    assert_no_drift(&h.store).await;
}

#[tokio::test]
async fn a_release_the_worker_did_not_confirm_holds_the_slot_until_it_reports() {
    let h = harness(|c| c.worker_call_timeout = Duration::from_millis(30));
    h.report("w1", 1, false).await;
    let (first, second) = (key("exam", "first"), key("exam", "second"));
    h.svc
        .placement()
        .allocate(first.clone(), Default::default())
        .await
        .unwrap();
    h.report("w1", 1, false).await;

    // The stop call hangs: the record goes, the slot stays held.
    h.workers.set_behaviour(&wid("w1"), Behaviour::Hanging);
    h.svc
        .placement()
        .release(&first)
        .await
        .unwrap()
        .expect("released");
    assert!(h.store.dispatch(&first).await.unwrap().is_none());
    let snap = h.store.worker(&wid("w1")).await.unwrap().unwrap();
    assert_eq!((snap.dispatched, snap.record.unrecorded), (0, 1));
    h.workers.set_behaviour(&wid("w1"), Behaviour::Healthy);
    let held = h
        .svc
        .placement()
        .allocate(second.clone(), Default::default())
        .await;
    assert!(matches!(held, Err(Error::NoCapacity(_))), "{held:?}");

    // The worker's next report says the session is gone: the slot is free.
    h.report_live("w1", 1, Vec::new(), false).await;
    let placed = h
        .svc
        .placement()
        .allocate(second.clone(), Default::default())
        .await
        .unwrap();
    assert_eq!(placed.dispatch.worker.as_str(), "w1");
    assert_no_drift(&h.store).await;
}
