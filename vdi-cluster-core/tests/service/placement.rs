//! Placement: sticky exams, spread, refusals that explain themselves, a
//! returning student: the placement wing.

use super::*;

#[tokio::test]
async fn allocations_of_an_exam_stick_together() {
    let h = harness(|_| {});
    for w in ["w1", "w2", "w3"] {
        h.beat(w, 4, 0).await;
    }
    let first = h.place("exam-a", "s0").await;
    for i in 1..4 {
        assert_eq!(
            h.place("exam-a", &format!("s{i}")).await,
            first,
            "sticky worker first"
        );
    }
    // The sticky worker is full now: the next student goes elsewhere and the
    // sticky key follows.
    let fifth = h.place("exam-a", "s4").await;
    assert_ne!(fifth, first);
    assert_eq!(h.place("exam-a", "s5").await, fifth);
    // Idempotent: the same student gets the same dispatch.
    let again = h
        .svc
        .placement()
        .allocate(key("exam-a", "s0"), Default::default())
        .await
        .unwrap();
    assert_eq!(again.outcome, AllocateOutcome::Existing);
    assert_eq!(again.dispatch.worker, first);
    assert_eq!(h.workers.sessions(&first).len(), 4);
}

#[tokio::test]
async fn spread_without_affinity_levels_the_workers() {
    let h = harness(|c| {
        c.exam_affinity = false;
        c.herd_width = 1;
    });
    for w in ["w1", "w2", "w3"] {
        h.beat(w, 10, 0).await;
    }
    for i in 0..9 {
        h.place(&format!("exam-{i}"), "s").await;
    }
    for w in ["w1", "w2", "w3"] {
        assert_eq!(h.dispatched(w).await, 3, "{w}");
    }
}

#[tokio::test]
async fn no_capacity_explains_every_exclusion() {
    let h = harness(|_| {});
    h.beat("full", 1, 1).await;
    h.beat("draining", 4, 1).await;
    h.beat("silent", 4, 0).await;
    h.svc
        .fleet()
        .admin(
            &wid("draining"),
            AdminAction::Drain { deadline: None },
            "ops",
        )
        .await
        .unwrap();
    h.advance(100);
    h.beat("full", 1, 1).await;
    h.beat("draining", 4, 1).await;
    h.advance(30);
    let err = h
        .svc
        .placement()
        .allocate(key("e", "u"), Default::default())
        .await
        .unwrap_err();
    let Error::NoCapacity(reason) = err else {
        panic!("{err}")
    };
    let text = reason.to_string();
    assert!(text.contains("1 unreachable"), "{text}");
    assert!(text.contains("1 draining"), "{text}");
    assert!(text.contains("1 full"), "{text}");
    assert_eq!(reason.workers, 3);
}

#[tokio::test]
async fn returning_student_of_an_unreachable_worker_is_redispatched_at_once() {
    // One silent worker of two is no mass failure here.
    let h = harness(|c| c.mass_failure_percent = 100);
    let (on, other) = h.two_workers_one_session().await;
    h.advance(100);
    h.beat(other, 4, 0).await;
    h.advance(30); // `on` is now 130 s silent: unreachable.
    assert_eq!(
        h.svc.fleet().worker_view(&on).await.unwrap().status,
        WorkerStatus::Unreachable
    );
    let summary = h.svc.operations().summary().await.unwrap();
    assert_eq!(
        summary.total_max_sessions, 4,
        "unreachable slots leave the totals"
    );
    let again = h
        .svc
        .placement()
        .allocate(key("exam", "s1"), Default::default())
        .await
        .unwrap();
    assert_eq!(again.dispatch.worker.as_str(), other);
    assert_eq!(
        again.outcome,
        AllocateOutcome::Redispatched {
            reason: match again.outcome {
                AllocateOutcome::Redispatched { reason, .. } => reason,
                _ => unreachable!(),
            },
            from: on.clone()
        }
    );
    assert_eq!(
        h.dispatched(on.as_str()).await,
        0,
        "old dispatch superseded"
    );
    assert_eq!(h.dispatched(other).await, 1);
    assert!(h.has_event(|k| matches!(k, EventKind::SessionMigrated { .. })));
    // New students never land on it.
    for i in 2..5 {
        assert_eq!(h.place("exam", &format!("s{i}")).await.as_str(), other);
    }
}
