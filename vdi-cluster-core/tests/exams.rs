//! Booking exams through the service on the in-memory backend with a
//! manual clock: refusals an organiser can act on, re-admission on change,
//! at-risk flags and their events.

use std::sync::Arc;
use std::time::Duration;

use vdi_cluster_core::Page;
use vdi_cluster_core::events::{EventKind, RecordingSink};
use vdi_cluster_core::exam::{Prewarm, PrewarmTarget};
use vdi_cluster_core::service::Booking;
use vdi_cluster_core::testkit::{SimulatedWorkers, exam, heartbeat_with_slots, wid};
use vdi_cluster_core::{
    AdminAction, ClusterService, Error, ExamId, ExamPatch, ManualClock, MemoryStore, ServiceConfig,
    Timestamp,
};

const START: Timestamp = Timestamp(1_800_000_000_000);
const HOUR: Duration = Duration::from_secs(3600);

fn setup() -> (ClusterService, RecordingSink) {
    let clock = ManualClock::new(START);
    let events = RecordingSink::default();
    let svc = ClusterService::builder(
        Arc::new(MemoryStore::with_clock(Arc::new(clock.clone()))),
        Arc::new(SimulatedWorkers::new()),
    )
    .config(ServiceConfig {
        exam_headroom_percent: 0,
        ..ServiceConfig::default()
    })
    .clock(Arc::new(clock))
    .events(Arc::new(events.clone()))
    .build();
    (svc, events)
}

fn accepted(b: Booking) -> vdi_cluster_core::service::ExamStatus {
    match b {
        Booking::Accepted(s) => *s,
        Booking::Refused(r) => panic!("refused: {r:?}"),
    }
}

#[tokio::test]
async fn a_refusal_suggests_a_start_that_is_then_accepted() {
    let (svc, _) = setup();
    svc.fleet()
        .heartbeat(heartbeat_with_slots("w1", 4, 0))
        .await
        .unwrap();
    svc.fleet()
        .heartbeat(heartbeat_with_slots("w2", 4, 0))
        .await
        .unwrap();
    let start = START.plus(HOUR);
    accepted(
        svc.exams()
            .book_exam(exam("morning", start, 60, 6), "admin")
            .await
            .unwrap(),
    );
    let late = exam("late", start.plus(Duration::from_secs(1800)), 60, 4);
    let Booking::Refused(refusal) = svc.exams().book_exam(late.clone(), "admin").await.unwrap()
    else {
        panic!("6 + 4 students do not fit 8 slots");
    };
    assert_eq!(refusal.shortfall.missing, 2);
    assert_eq!(refusal.shortfall.demand, 10);
    assert_eq!(refusal.shortfall.overlapping.len(), 2);
    // Morning's window closes at start + 60 min + 5 min; late's lead is 15 min.
    let suggested = refusal.earliest_start.expect("a start that fits");
    assert_eq!(suggested, start.plus(Duration::from_secs(80 * 60)));
    let moved = accepted(
        svc.exams()
            .book_exam(late.moved_to(suggested), "admin")
            .await
            .unwrap(),
    );
    assert!(moved.at_risk.is_none());
    assert!(matches!(
        svc.exams()
            .book_exam(exam("morning", start, 10, 1), "admin")
            .await,
        Err(Error::ExamExists(_))
    ));
}

#[tokio::test]
async fn changes_are_admitted_again_and_cancel_frees_capacity() {
    let (svc, _) = setup();
    svc.fleet()
        .heartbeat(heartbeat_with_slots("w1", 8, 0))
        .await
        .unwrap();
    let start = START.plus(HOUR);
    accepted(
        svc.exams()
            .book_exam(exam("a", start, 60, 4), "admin")
            .await
            .unwrap(),
    );
    accepted(
        svc.exams()
            .book_exam(exam("b", start, 60, 4), "admin")
            .await
            .unwrap(),
    );
    let a = exam("a", start, 60, 4).id;
    let grow = ExamPatch {
        students: Some(5),
        ..ExamPatch::default()
    };
    assert!(matches!(
        svc.exams().update_exam(&a, &grow, "admin").await.unwrap(),
        Booking::Refused(_)
    ));
    let rename = ExamPatch {
        name: Some("Renamed".into()),
        ..ExamPatch::default()
    };
    let renamed = accepted(svc.exams().update_exam(&a, &rename, "admin").await.unwrap());
    assert_eq!(
        (renamed.exam.name.as_str(), renamed.exam.students),
        ("Renamed", 4)
    );
    svc.exams()
        .cancel_exam(&exam("b", start, 1, 1).id, "admin")
        .await
        .unwrap();
    assert_eq!(
        accepted(svc.exams().update_exam(&a, &grow, "admin").await.unwrap())
            .exam
            .students,
        5
    );
    assert!(matches!(
        svc.exams()
            .cancel_exam(&exam("b", start, 1, 1).id, "admin")
            .await,
        Err(Error::ExamNotFound(_))
    ));
    let bad = ExamPatch {
        ends_at: Some(start),
        ..ExamPatch::default()
    };
    match svc.exams().update_exam(&a, &bad, "admin").await {
        Err(Error::Invalid(e)) => assert_eq!(e.field, "endsAt"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn draining_a_worker_flags_exams_at_risk_once() {
    let (svc, events) = setup();
    let hook = svc
        .operations()
        .create_webhook(
            "admin",
            "http://hooks.example/",
            vec!["exam.at_risk".into(), "exam.fits_again".into()],
            None,
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into(),
        )
        .await
        .unwrap();
    svc.fleet()
        .heartbeat(heartbeat_with_slots("w1", 4, 0))
        .await
        .unwrap();
    svc.fleet()
        .heartbeat(heartbeat_with_slots("w2", 4, 0))
        .await
        .unwrap();
    let start = START.plus(HOUR);
    accepted(
        svc.exams()
            .book_exam(exam("big", start, 60, 7), "admin")
            .await
            .unwrap(),
    );
    assert!(svc.exams().evaluate_exam_risks().await.unwrap().is_empty());

    svc.fleet()
        .admin(&wid("w2"), AdminAction::Drain { deadline: None }, "ops")
        .await
        .unwrap();
    let changes = svc.exams().evaluate_exam_risks().await.unwrap();
    assert!(
        matches!(&changes[..], [EventKind::ExamAtRisk { shortfall: 3, .. }]),
        "{changes:?}"
    );
    assert!(
        svc.exams().evaluate_exam_risks().await.unwrap().is_empty(),
        "once per change"
    );
    let listed = svc.exams().exam_calendar(None, None).await.unwrap();
    assert_eq!(listed[0].at_risk.as_ref().map(|s| s.missing), Some(3));
    let figures = svc.exams().exam_figures(&listed[0].exam.id).await.unwrap();
    assert_eq!((figures.booked_students, figures.reserved_capacity), (7, 4));

    svc.fleet()
        .admin(&wid("w2"), AdminAction::Activate, "ops")
        .await
        .unwrap();
    let changes = svc.exams().evaluate_exam_risks().await.unwrap();
    assert!(matches!(&changes[..], [EventKind::ExamFitsAgain { .. }]));
    let names: Vec<_> = events.events().iter().map(|e| e.kind.name()).collect();
    assert_eq!(
        names
            .iter()
            .filter(|n| n.starts_with("exam"))
            .collect::<Vec<_>>(),
        [&"examAtRisk", &"examFitsAgain"]
    );
    // Each written to the outbox when its flag was swapped.
    let mut written: Vec<_> = svc
        .operations()
        .webhook_deliveries(&hook.id, Page::first(10))
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|d| d.entry.event.kind.name())
        .collect();
    written.reverse();
    assert_eq!(written, ["examAtRisk", "examFitsAgain"]);
}

#[tokio::test]
async fn a_booked_exam_is_prewarmed_once_when_its_lead_begins() {
    let clock = ManualClock::new(START);
    let workers = SimulatedWorkers::new();
    let svc = ClusterService::builder(
        Arc::new(MemoryStore::with_clock(Arc::new(clock.clone()))),
        Arc::new(workers.clone()),
    )
    .config(ServiceConfig {
        exam_headroom_percent: 0,
        ..ServiceConfig::default()
    })
    .clock(Arc::new(clock.clone()))
    .build();
    for code in ["w1", "w2"] {
        svc.fleet()
            .heartbeat(heartbeat_with_slots(code, 4, 0))
            .await
            .unwrap();
    }
    // 6 students at START + 1 h, 4 machines prewarmed 15 minutes before.
    let mut booked = exam("timed", START.plus(HOUR), 60, 6);
    booked.prewarm = Prewarm {
        target: PrewarmTarget::Count(4),
        lead_sec: 900,
    };
    accepted(svc.exams().book_exam(booked, "admin").await.unwrap());
    let prewarmed = || {
        ["w1", "w2"]
            .iter()
            .map(|w| workers.prewarmed(&wid(w), &ExamId::parse("examId", "timed").unwrap()))
            .sum::<u32>()
    };

    // Not yet: the lead has not begun.
    clock.advance(Duration::from_secs(44 * 60));
    assert!(svc.exams().start_due_prewarms().await.unwrap().is_empty());
    assert_eq!(prewarmed(), 0);

    // The lead begins: 4 machines across the (live) workers, once.
    clock.advance(Duration::from_secs(60));
    for code in ["w1", "w2"] {
        svc.fleet()
            .heartbeat(heartbeat_with_slots(code, 4, 0))
            .await
            .unwrap();
    }
    let started = svc.exams().start_due_prewarms().await.unwrap();
    assert_eq!(started.len(), 1);
    assert_eq!(prewarmed(), 4);
    assert!(svc.exams().start_due_prewarms().await.unwrap().is_empty());
    assert_eq!(prewarmed(), 4);
    let calendar = svc.exams().exam_calendar(None, None).await.unwrap();
    assert!(calendar[0].exam.prewarm_started_at.is_some());
    let audit = svc.store().recent_audit(10).await.unwrap();
    assert!(
        audit
            .iter()
            .any(|e| e.actor == "system" && e.action == "prewarm"),
        "{audit:?}"
    );
}
