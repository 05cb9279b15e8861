//! Capacity on schedule through the service, end to end in process: an
//! exam beyond the fleet is asked for, its workers join, the exam runs on
//! them, and after it they are drained, stopped by the hook and removed.

use std::sync::Arc;
use std::time::Duration;

use vdi_cluster_core::events::{EventKind, RecordingSink};
use vdi_cluster_core::scale::CapacityState;
use vdi_cluster_core::service::{Booking, ExamStatus};
use vdi_cluster_core::testkit::{
    FIXTURE_TIME, ScriptedScaleHook, SimulatedWorkers, exam, heartbeat_with_slots,
};
use vdi_cluster_core::{ClusterService, ManualClock, MemoryStore, ServiceConfig};

#[tokio::test]
async fn capacity_is_requested_joins_and_is_given_back_after_the_exam() {
    let clock = Arc::new(ManualClock::new(FIXTURE_TIME));
    let hook = ScriptedScaleHook::new(2);
    let events = RecordingSink::default();
    let svc = ClusterService::builder(
        Arc::new(MemoryStore::new()),
        Arc::new(SimulatedWorkers::new()),
    )
    .config(ServiceConfig {
        exam_headroom_percent: 0,
        ..ServiceConfig::default()
    })
    .clock(Arc::clone(&clock) as _)
    .events(Arc::new(events.clone()))
    .scale_hook(Arc::new(hook.clone()))
    .build();
    svc.fleet()
        .heartbeat(heartbeat_with_slots("w1", 4, 0))
        .await
        .unwrap();
    // Booked when the fleet was larger; now 6 slots short.
    let booked = exam("math", FIXTURE_TIME.plus(Duration::from_secs(3600)), 30, 10);
    svc.store().put_exam_if_version(&booked, 0).await.unwrap();
    let ops = svc.operations();

    // Not yet: the lead and the scale lead have not begun.
    ops.tend_capacity().await.unwrap();
    assert!(hook.ups().is_empty());
    clock.advance(Duration::from_secs(1_200));
    svc.fleet()
        .heartbeat(heartbeat_with_slots("w1", 4, 0))
        .await
        .unwrap();
    ops.tend_capacity().await.unwrap();
    let ups = hook.ups();
    assert_eq!(ups.len(), 1);
    assert_eq!(ups[0].slots, 6);
    assert!(
        events
            .events()
            .iter()
            .any(|e| matches!(&e.kind, EventKind::CapacityRequested { slots: 6, .. }))
    );

    // The workers join: joined.
    let codes = hook.codes(&ups[0].request);
    for code in &codes {
        svc.fleet()
            .heartbeat(heartbeat_with_slots(code.as_str(), 3, 0))
            .await
            .unwrap();
    }
    ops.tend_capacity().await.unwrap();
    assert_eq!(first(ops).await.state, CapacityState::Joined);
    assert!(svc.exams().evaluate_exam_risks().await.unwrap().is_empty());

    // After the exam's window: drained, then stopped and removed.
    clock.set(booked.window().end);
    for code in codes.iter().map(|c| c.as_str()).chain(["w1"]) {
        svc.fleet()
            .heartbeat(heartbeat_with_slots(code, 3, 0))
            .await
            .unwrap();
    }
    ops.tend_capacity().await.unwrap();
    assert_eq!(first(ops).await.state, CapacityState::Releasing);
    for code in &codes {
        svc.fleet()
            .heartbeat(heartbeat_with_slots(code.as_str(), 3, 0))
            .await
            .unwrap();
    }
    ops.tend_capacity().await.unwrap();
    let released = first(ops).await;
    assert_eq!(released.state, CapacityState::Released);
    assert_eq!(hook.downs().len(), 1);
    assert_eq!(hook.downs()[0].workers, codes);
    let left: Vec<String> = svc
        .fleet()
        .worker_views()
        .await
        .unwrap()
        .iter()
        .map(|v| v.id().to_string())
        .collect();
    assert_eq!(left, ["w1"]);
    // Nothing more happens.
    ops.tend_capacity().await.unwrap();
    assert_eq!((hook.ups().len(), hook.downs().len()), (1, 1));
}

#[tokio::test]
async fn a_deadline_passed_short_is_reported_missing_once() {
    let clock = Arc::new(ManualClock::new(FIXTURE_TIME));
    let hook = ScriptedScaleHook::new(1);
    let events = RecordingSink::default();
    let svc = ClusterService::builder(
        Arc::new(MemoryStore::new()),
        Arc::new(SimulatedWorkers::new()),
    )
    .config(ServiceConfig {
        exam_headroom_percent: 0,
        ..ServiceConfig::default()
    })
    .clock(Arc::clone(&clock) as _)
    .events(Arc::new(events.clone()))
    .scale_hook(Arc::new(hook.clone()))
    .build();
    svc.fleet()
        .heartbeat(heartbeat_with_slots("w1", 4, 0))
        .await
        .unwrap();
    let booked = exam(
        "math",
        FIXTURE_TIME.plus(Duration::from_secs(1_800)),
        30,
        10,
    );
    svc.store().put_exam_if_version(&booked, 0).await.unwrap();
    svc.operations().tend_capacity().await.unwrap();
    clock.set(booked.window().start);
    svc.operations().tend_capacity().await.unwrap();
    svc.operations().tend_capacity().await.unwrap();
    let missing: Vec<_> = events
        .events()
        .into_iter()
        .filter(|e| matches!(e.kind, EventKind::CapacityMissing { .. }))
        .collect();
    assert_eq!(missing.len(), 1);
    let request = &svc.operations().capacity_requests().await.unwrap()[0];
    assert_eq!(request.state, CapacityState::Missing);
}

async fn first(
    ops: &vdi_cluster_core::service::Operations,
) -> vdi_cluster_core::scale::CapacityRequest {
    ops.capacity_requests().await.unwrap().remove(0)
}

/// A service with the scale hook whose admission counts `scalable` slots
/// per zone, on a fleet of one 4-slot worker.
async fn counting_scalable(
    scalable: u32,
) -> (
    ClusterService,
    Arc<ManualClock>,
    ScriptedScaleHook,
    RecordingSink,
) {
    let clock = Arc::new(ManualClock::new(FIXTURE_TIME));
    let hook = ScriptedScaleHook::new(2);
    let events = RecordingSink::default();
    let svc = ClusterService::builder(
        Arc::new(MemoryStore::new()),
        Arc::new(SimulatedWorkers::new()),
    )
    .config(ServiceConfig {
        exam_headroom_percent: 0,
        admission_scalable_slots: scalable,
        ..ServiceConfig::default()
    })
    .clock(Arc::clone(&clock) as _)
    .events(Arc::new(events.clone()))
    .scale_hook(Arc::new(hook.clone()))
    .build();
    svc.fleet()
        .heartbeat(heartbeat_with_slots("w1", 4, 0))
        .await
        .unwrap();
    (svc, clock, hook, events)
}

fn accepted(booking: Booking) -> ExamStatus {
    match booking {
        Booking::Accepted(status) => *status,
        Booking::Refused(r) => panic!("refused: {r:?}"),
    }
}

#[tokio::test]
async fn admission_counts_scalable_slots_and_watches_that_the_workers_arrive() {
    let (svc, clock, hook, _) = counting_scalable(8).await;
    let start = FIXTURE_TIME.plus(Duration::from_secs(3 * 3600));
    // Off: beyond the fleet is refused.
    let (off, ..) = counting_scalable(0).await;
    let big = exam("math", start, 60, 10);
    let refused = off.exams().book_exam(big.clone(), "admin").await.unwrap();
    assert!(matches!(refused, Booking::Refused(_)));
    // On: 4 slots + 8 the hook may add hold 10 students.
    let status = accepted(svc.exams().book_exam(big.clone(), "admin").await.unwrap());
    assert!(
        status.with_scale_up && status.at_risk.is_none(),
        "{status:?}"
    );
    // The hook's slots are counted once: 3 more overlapping are refused.
    let more = exam("physics", start, 60, 3);
    let refused = svc.exams().book_exam(more, "admin").await.unwrap();
    assert!(matches!(refused, Booking::Refused(_)));
    // Not flagged at risk while the workers are awaited.
    assert!(svc.exams().evaluate_exam_risks().await.unwrap().is_empty());

    // The scale lead begins: asked for; the workers join; it fits the fleet.
    clock.set(big.window().start.minus(Duration::from_secs(600)));
    svc.fleet()
        .heartbeat(heartbeat_with_slots("w1", 4, 0))
        .await
        .unwrap();
    svc.operations().tend_capacity().await.unwrap();
    let ups = hook.ups();
    assert_eq!(ups.len(), 1);
    assert_eq!(ups[0].slots, 6);
    for code in hook.codes(&ups[0].request) {
        svc.fleet()
            .heartbeat(heartbeat_with_slots(code.as_str(), 3, 0))
            .await
            .unwrap();
    }
    let listed = svc.exams().exam_calendar(None, None).await.unwrap();
    assert!(!listed[0].with_scale_up && listed[0].at_risk.is_none());
    // The joined workers are the hook's slots, not room for another exam.
    let refused = svc
        .exams()
        .book_exam(exam("chemistry", start, 60, 3), "admin")
        .await
        .unwrap();
    assert!(matches!(refused, Booking::Refused(_)));
    clock.set(big.window().start);
    svc.fleet()
        .heartbeat(heartbeat_with_slots("w1", 4, 0))
        .await
        .unwrap();
    for code in hook.codes(&ups[0].request) {
        svc.fleet()
            .heartbeat(heartbeat_with_slots(code.as_str(), 3, 0))
            .await
            .unwrap();
    }
    assert!(svc.exams().evaluate_exam_risks().await.unwrap().is_empty());
}

#[tokio::test]
async fn an_exam_counting_on_workers_that_never_join_is_at_risk_at_its_deadline() {
    let (svc, clock, hook, events) = counting_scalable(8).await;
    let booked = exam(
        "math",
        FIXTURE_TIME.plus(Duration::from_secs(3 * 3600)),
        60,
        10,
    );
    let status = accepted(
        svc.exams()
            .book_exam(booked.clone(), "admin")
            .await
            .unwrap(),
    );
    assert!(status.with_scale_up);
    clock.set(booked.window().start.minus(Duration::from_secs(600)));
    svc.fleet()
        .heartbeat(heartbeat_with_slots("w1", 4, 0))
        .await
        .unwrap();
    svc.operations().tend_capacity().await.unwrap();
    assert_eq!(hook.ups().len(), 1);
    assert!(svc.exams().evaluate_exam_risks().await.unwrap().is_empty());
    // The deadline passes and nobody joined: missing, and the exam at risk.
    clock.set(booked.window().start);
    svc.fleet()
        .heartbeat(heartbeat_with_slots("w1", 4, 0))
        .await
        .unwrap();
    svc.operations().tend_capacity().await.unwrap();
    let flagged = svc.exams().evaluate_exam_risks().await.unwrap();
    assert!(
        matches!(
            flagged.as_slice(),
            [EventKind::ExamAtRisk { shortfall: 6, .. }]
        ),
        "{flagged:?}"
    );
    let kinds: Vec<&str> = events
        .events()
        .iter()
        .map(|e| match e.kind {
            EventKind::CapacityMissing { .. } => "capacity.missing",
            EventKind::ExamAtRisk { .. } => "exam.at_risk",
            _ => "other",
        })
        .filter(|k| *k != "other")
        .collect();
    assert_eq!(kinds, ["capacity.missing", "exam.at_risk"]);
    let listed = svc.exams().exam_calendar(None, None).await.unwrap();
    assert!(!listed[0].with_scale_up);
    assert_eq!(listed[0].at_risk.as_ref().map(|s| s.missing), Some(6));
}
