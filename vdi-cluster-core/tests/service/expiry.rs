//! Each student's desktop released at their own end, on the leader's step.

use vdi_cluster_core::service::{Booking, EndChange, ExpiryTick};
use vdi_cluster_core::testkit::exam;

use super::*;

const MIN: u64 = 60;

fn expiring(h: &Harness, user: &str) -> usize {
    h.events
        .events()
        .iter()
        .filter(|e| matches!(&e.kind, EventKind::SessionExpiring { session, .. } if session.user_id.as_str() == user))
        .count()
}

fn expired(h: &Harness, user: &str) -> usize {
    h.events
        .events()
        .iter()
        .filter(|e| matches!(&e.kind, EventKind::SessionExpired { session, .. } if session.user_id.as_str() == user))
        .count()
}

#[tokio::test]
async fn each_student_is_released_at_their_own_end_once() {
    let h = harness(|_| {});
    h.beat("w1", 10, 0).await;
    // 10:00 → 11:00 after START; s2 has ten minutes more.
    let final_exam = exam("final", START.plus(Duration::from_secs(10 * MIN)), 60, 5);
    let booked = h.svc.exams().book_exam(final_exam, "admin").await.unwrap();
    assert!(matches!(booked, Booking::Accepted(_)));
    for user in ["s1", "s2", "s3"] {
        h.place("final", user).await;
    }
    let s2 = key("final", "s2");
    h.svc
        .exams()
        .change_session_end(
            &s2,
            EndChange::ExtendBy(10 * MIN as u32),
            "incident",
            false,
            "proctor",
        )
        .await
        .unwrap();
    let step = || h.svc.exams().expire_sessions(None);

    // Before the warning: nothing.
    h.advance(64 * MIN);
    assert_eq!(step().await.unwrap(), ExpiryTick::default());
    // Five minutes before the exam's end: s1 and s3 are warned, once.
    h.advance(MIN);
    assert_eq!(
        step().await.unwrap(),
        ExpiryTick {
            warned: 2,
            expired: 0
        }
    );
    assert_eq!(step().await.unwrap(), ExpiryTick::default());
    assert_eq!(
        (expiring(&h, "s1"), expiring(&h, "s3"), expiring(&h, "s2")),
        (1, 1, 0)
    );
    // The end plus the grace (60 s): s1 and s3 are released, s2 keeps its desktop.
    h.advance(5 * MIN);
    assert_eq!(step().await.unwrap(), ExpiryTick::default(), "the grace");
    h.advance(MIN);
    assert_eq!(
        step().await.unwrap(),
        ExpiryTick {
            warned: 0,
            expired: 2
        }
    );
    assert_eq!(
        (expired(&h, "s1"), expired(&h, "s3"), expired(&h, "s2")),
        (1, 1, 0)
    );
    assert!(h.store.dispatch(&s2).await.unwrap().is_some());
    assert!(
        h.store
            .dispatch(&key("final", "s1"))
            .await
            .unwrap()
            .is_none()
    );
    // s2's own end: warned five minutes before, released after the grace.
    h.advance(4 * MIN);
    assert_eq!(
        step().await.unwrap(),
        ExpiryTick {
            warned: 1,
            expired: 0
        }
    );
    h.advance(6 * MIN);
    assert_eq!(
        step().await.unwrap(),
        ExpiryTick {
            warned: 0,
            expired: 1
        }
    );
    assert_eq!((expiring(&h, "s2"), expired(&h, "s2")), (1, 1));
    assert!(h.store.dispatch(&s2).await.unwrap().is_none());
    assert_eq!(step().await.unwrap(), ExpiryTick::default());
    assert_eq!(h.dispatched("w1").await, 0);
}

#[tokio::test]
async fn a_second_replica_finds_nothing_left_to_do() {
    let h = harness(|_| {});
    h.beat("w1", 10, 0).await;
    let e = exam("quiz", START.plus(Duration::from_secs(10 * MIN)), 30, 2);
    h.svc.exams().book_exam(e, "admin").await.unwrap();
    h.place("quiz", "s1").await;
    let other = ClusterService::builder(Arc::new(h.store.clone()), Arc::new(h.workers.clone()))
        .config(ServiceConfig {
            snapshot_max_age: Duration::ZERO,
            ..ServiceConfig::default()
        })
        .clock(Arc::new(h.clock.clone()))
        .events(Arc::new(h.events.clone()))
        .build();
    h.advance(36 * MIN);
    assert_eq!(
        h.svc.exams().expire_sessions(None).await.unwrap(),
        ExpiryTick {
            warned: 1,
            expired: 0
        }
    );
    assert_eq!(
        other.exams().expire_sessions(None).await.unwrap(),
        ExpiryTick::default()
    );
    h.advance(6 * MIN);
    let (a, b) = tokio::join!(
        h.svc.exams().expire_sessions(None),
        other.exams().expire_sessions(None)
    );
    assert_eq!(a.unwrap().expired + b.unwrap().expired, 1, "released once");
    assert_eq!(expired(&h, "s1"), 1);
}
