//! Cases of [`ExamStore`](crate::store::ExamStore): the calendar's
//! compare-and-set, at-risk flags, and invariant D with bookings, changes
//! and cancellations racing on several replicas.

use std::sync::Arc;
use std::time::Duration;

use super::StoreFactory;
use super::fixtures::now;
use crate::events::RecordingSink;
use crate::exam::{Capacity, ExamPatch, admit};
use crate::service::{Booking, ClusterService, ServiceConfig};
use crate::store::{CalendarWrite, Store};
use crate::testkit::{SimulatedWorkers, exam, exam_network_policy, heartbeat_with_slots};
use crate::time::Timestamp;

const HOUR: Duration = Duration::from_secs(3600);

/// A service on `store` with no admission headroom.
pub(super) fn service(store: Arc<dyn Store>, seed: u64) -> Arc<ClusterService> {
    let config = ServiceConfig {
        seed,
        replica_id: format!("replica-{seed}"),
        exam_headroom_percent: 0,
        exam_write_attempts: 64,
        ..ServiceConfig::default()
    };
    Arc::new(
        ClusterService::builder(store, Arc::new(SimulatedWorkers::new()))
            .config(config)
            .events(Arc::new(RecordingSink::default()))
            .build(),
    )
}

/// Writes apply only on the version read; every write bumps it; deletes
/// take the at-risk flag with them.
pub async fn exam_calendar_is_compare_and_set(factory: &impl StoreFactory) {
    let a = factory.replica().await;
    let b = factory.replica().await;
    let empty = a.exam_calendar().await.unwrap();
    assert_eq!((empty.version, empty.exams.len()), (0, 0));
    let start = now().plus(HOUR);
    let e1 = crate::exam::Exam {
        network_policy: Some(exam_network_policy()),
        ..exam("exam:1 ü/*", start, 60, 30)
    };
    assert_eq!(
        a.put_exam_if_version(&e1, 0).await.unwrap(),
        CalendarWrite::Written { version: 1 }
    );
    let e2 = exam("exam-2", start, 90, 20);
    assert_eq!(
        b.put_exam_if_version(&e2, 0).await.unwrap(),
        CalendarWrite::Conflict { current: 1 }
    );
    assert_eq!(
        b.put_exam_if_version(&e2, 1).await.unwrap(),
        CalendarWrite::Written { version: 2 }
    );
    let read = b.exam_calendar().await.unwrap();
    assert_eq!(read.version, 2);
    assert_eq!(
        read.get(&e1.id),
        Some(&e1),
        "stored exactly, network policy included"
    );
    assert_eq!(read.exams.len(), 2);

    let mut bigger = e1.clone();
    bigger.students = 40;
    assert_eq!(
        a.put_exam_if_version(&bigger, 1).await.unwrap(),
        CalendarWrite::Conflict { current: 2 }
    );
    assert_eq!(
        a.put_exam_if_version(&bigger, 2).await.unwrap(),
        CalendarWrite::Written { version: 3 }
    );
    assert_eq!(
        b.exam_calendar()
            .await
            .unwrap()
            .get(&e1.id)
            .map(|e| e.students),
        Some(40)
    );

    // At-risk flags: swapped atomically, only for booked exams.
    assert_eq!(a.swap_exam_risk(&e1.id, Some(5), &[]).await.unwrap(), None);
    assert_eq!(
        b.swap_exam_risk(&e1.id, Some(7), &[]).await.unwrap(),
        Some(5)
    );
    assert_eq!(a.swap_exam_risk(&e2.id, None, &[]).await.unwrap(), None);
    let ghost = exam("ghost", start, 10, 1);
    assert_eq!(
        a.swap_exam_risk(&ghost.id, Some(1), &[]).await.unwrap(),
        None
    );
    assert_eq!(a.swap_exam_risk(&ghost.id, None, &[]).await.unwrap(), None);
    assert_eq!(
        a.exam_calendar().await.unwrap().version,
        3,
        "flags leave the version"
    );

    assert_eq!(
        b.delete_exam_if_version(&e1.id, 2).await.unwrap(),
        CalendarWrite::Conflict { current: 3 }
    );
    assert_eq!(
        b.delete_exam_if_version(&e1.id, 3).await.unwrap(),
        CalendarWrite::Written { version: 4 }
    );
    let read = a.exam_calendar().await.unwrap();
    assert_eq!((read.version, read.exams.len()), (4, 1));
    // Booked again, the exam starts without the old flag.
    assert_eq!(
        a.put_exam_if_version(&e1, 4).await.unwrap(),
        CalendarWrite::Written { version: 5 }
    );
    assert_eq!(a.swap_exam_risk(&e1.id, None, &[]).await.unwrap(), None);
}

/// Two bookings that each fit alone but not together, on two replicas at
/// once, round after round: exactly one is accepted each time.
pub async fn racing_bookings_accept_exactly_one(factory: &impl StoreFactory) {
    let a = service(factory.replica().await, 1);
    let b = service(factory.replica().await, 2);
    a.fleet()
        .heartbeat(heartbeat_with_slots("w-exam", 10, 0))
        .await
        .unwrap();
    let base = now().plus(HOUR);
    for round in 0..12u64 {
        // Rounds three hours apart never overlap.
        let start = base.plus(HOUR * 3 * u32::try_from(round).unwrap());
        let ea = exam(&format!("r{round}-a"), start, 60, 6);
        let eb = exam(&format!("r{round}-b"), start, 60, 6);
        let (ra, rb) = tokio::join!(
            a.exams().book_exam(ea, "admin"),
            b.exams().book_exam(eb, "admin")
        );
        let accepted = [ra.unwrap(), rb.unwrap()]
            .iter()
            .filter(|r| matches!(r, Booking::Accepted(_)))
            .count();
        assert_eq!(accepted, 1, "round {round}");
    }
    assert_eq!(a.exams().exam_calendar(None, None).await.unwrap().len(), 12);
}

/// Many replicas book, grow, move and cancel overlapping exams at once;
/// the calendar they leave satisfies admission at every instant, and holds
/// exactly the exams whose last answer was "accepted".
pub async fn concurrent_bookings_keep_invariant_d(factory: &impl StoreFactory) {
    let first = service(factory.replica().await, 100);
    first
        .fleet()
        .heartbeat(heartbeat_with_slots("w-exam-1", 8, 0))
        .await
        .unwrap();
    first
        .fleet()
        .heartbeat(heartbeat_with_slots("w-exam-2", 7, 0))
        .await
        .unwrap();
    let base = now().plus(HOUR);
    let mut tasks = Vec::new();
    for r in 0..6u64 {
        let svc = service(factory.replica().await, r);
        tasks.push(tokio::spawn(async move {
            let mut kept = Vec::new();
            for j in 0..4u64 {
                let id = format!("x{r}-{j}");
                let start = base.plus(Duration::from_secs(((r + j) % 5) * 1200));
                let e = exam(&id, start, 40, u32::try_from(2 + (r + j) % 4).unwrap());
                if let Booking::Accepted(s) = svc.exams().book_exam(e, "admin").await.expect("book")
                {
                    kept.push(s.exam.id);
                }
            }
            // Grow one and move another; cancel a third.
            if let Some(id) = kept.first().cloned() {
                let grow = ExamPatch {
                    students: Some(5),
                    ..ExamPatch::default()
                };
                let _ = svc
                    .exams()
                    .update_exam(&id, &grow, "admin")
                    .await
                    .expect("patch");
            }
            if let Some(id) = kept.get(1).cloned() {
                let moved = ExamPatch {
                    starts_at: Some(base.plus(Duration::from_secs(600))),
                    ends_at: Some(base.plus(Duration::from_secs(600 + 2400))),
                    ..ExamPatch::default()
                };
                let _ = svc
                    .exams()
                    .update_exam(&id, &moved, "admin")
                    .await
                    .expect("patch");
            }
            if let Some(id) = kept.get(2).cloned() {
                svc.exams().cancel_exam(&id, "admin").await.expect("cancel");
                kept.remove(2);
            }
            kept
        }));
    }
    let mut accepted = Vec::new();
    for t in tasks {
        accepted.extend(t.await.expect("task"));
    }
    let calendar = first.store().exam_calendar().await.unwrap();
    let mut stored: Vec<_> = calendar.exams.iter().map(|e| e.id.clone()).collect();
    stored.sort();
    accepted.sort();
    assert_eq!(
        stored, accepted,
        "the calendar holds exactly the accepted exams"
    );
    assert!(!stored.is_empty());
    let capacity = Capacity::of_workers(&first.fleet().worker_views().await.unwrap(), 0);
    for e in &calendar.exams {
        assert!(
            admit(e, &calendar.exams, &capacity, Timestamp(0)).is_ok(),
            "invariant D broken around {}",
            e.id
        );
    }
}
