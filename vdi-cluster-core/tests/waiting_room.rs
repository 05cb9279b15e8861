//! The waiting room through the service on the in-memory backend with a
//! manual clock: who is placed, who is queued, promotion in order after a
//! release, fairness to those already waiting, abandoning, and the exam's
//! figures.

use std::sync::Arc;
use std::time::Duration;

use vdi_cluster_core::events::{EventKind, RecordingSink};
use vdi_cluster_core::service::{SessionRequest, SessionState};
use vdi_cluster_core::testkit::{SimulatedWorkers, exam, heartbeat_with_slots};
use vdi_cluster_core::{
    ClusterService, Error, ExamId, ManualClock, MemoryStore, ServiceConfig, SessionKey, Timestamp,
};

const START: Timestamp = Timestamp(1_800_000_000_000);

struct Room {
    svc: ClusterService,
    clock: ManualClock,
    events: RecordingSink,
}

/// One worker of `slots` slots and the exam `wr` booked (`queue` as given).
async fn room(slots: u32, queue: bool) -> Room {
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
    .clock(Arc::new(clock.clone()))
    .events(Arc::new(events.clone()))
    .build();
    svc.fleet()
        .heartbeat(heartbeat_with_slots("w1", slots, 0))
        .await
        .unwrap();
    let mut booked = exam("wr", START.plus(Duration::from_secs(3600)), 60, 1);
    booked.queue = queue;
    svc.exams().book_exam(booked, "admin").await.unwrap();
    Room { svc, clock, events }
}

fn key(user: &str) -> SessionKey {
    SessionKey::parse("wr", user).unwrap()
}

async fn request(r: &Room, user: &str) -> SessionRequest {
    r.svc
        .placement()
        .request_session(key(user), Default::default())
        .await
        .unwrap()
}

fn position(answer: &SessionRequest) -> Option<u32> {
    match answer {
        SessionRequest::Queued(s) => Some(s.position),
        SessionRequest::Placed(_) | SessionRequest::Starting(_) => None,
    }
}

fn wr() -> ExamId {
    ExamId::parse("examId", "wr").unwrap()
}

#[tokio::test]
async fn beyond_capacity_students_queue_and_releases_promote_them_in_order() {
    let r = room(2, true).await;
    let mut positions = Vec::new();
    for n in 1..=5 {
        positions.push(position(&request(&r, &format!("s{n}")).await));
    }
    assert_eq!(positions, vec![None, None, Some(1), Some(2), Some(3)]);
    // Asking again keeps the place; no second entry.
    assert_eq!(position(&request(&r, "s4").await), Some(2));
    assert_eq!(r.svc.exams().queue_figures(&wr()).await.unwrap().queued, 3);

    // A release promotes the head, only the head.
    r.svc.placement().end_session(&key("s1")).await.unwrap();
    assert_eq!(r.svc.placement().promote_queue(&wr()).await.unwrap(), 1);
    assert!(matches!(
        r.svc.placement().session_state(&key("s3")).await.unwrap(),
        SessionState::Placed(_)
    ));
    match r.svc.placement().session_state(&key("s5")).await.unwrap() {
        SessionState::Queued(s) => assert_eq!(s.position, 2),
        other => panic!("{other:?}"),
    }
    let placed: Vec<SessionKey> = r
        .events
        .events()
        .into_iter()
        .filter_map(|e| match e.kind {
            EventKind::QueuedSessionPlaced { session, .. } => Some(session),
            _ => None,
        })
        .collect();
    assert_eq!(placed, vec![key("s3")]);

    // Nothing free: promotion places nobody and the head stays the head.
    assert_eq!(r.svc.placement().promote_queue(&wr()).await.unwrap(), 0);
    r.svc.placement().end_session(&key("s2")).await.unwrap();
    r.svc.placement().end_session(&key("s3")).await.unwrap();
    assert_eq!(r.svc.placement().promote_queue(&wr()).await.unwrap(), 2);
    let figures = r.svc.exams().exam_figures(&wr()).await.unwrap().queue;
    assert_eq!((figures.queued, figures.placed_total), (0, 3));
}

#[tokio::test]
async fn a_new_arrival_joins_the_back_while_others_wait() {
    let r = room(1, true).await;
    assert_eq!(position(&request(&r, "a").await), None);
    assert_eq!(position(&request(&r, "b").await), Some(1));
    // A slot frees, but nobody has promoted b yet: c must not take it.
    r.svc.placement().end_session(&key("a")).await.unwrap();
    assert_eq!(position(&request(&r, "c").await), Some(2));
    assert_eq!(r.svc.placement().promote_queue(&wr()).await.unwrap(), 1);
    assert!(matches!(
        r.svc.placement().session_state(&key("b")).await.unwrap(),
        SessionState::Placed(_)
    ));
}

#[tokio::test]
async fn students_who_stop_polling_leave_and_leaving_is_at_once() {
    let r = room(1, true).await;
    request(&r, "a").await;
    for user in ["b", "c", "d"] {
        request(&r, user).await;
    }
    let left = r.svc.placement().end_session(&key("d")).await.unwrap();
    assert!(left.left_queue && left.released.is_none());
    r.clock.advance(Duration::from_secs(45));
    // c polls, b does not.
    r.svc.placement().session_state(&key("c")).await.unwrap();
    r.clock.advance(Duration::from_secs(30));
    let tick = r.svc.exams().tend_queues().await.unwrap();
    assert_eq!((tick.abandoned, tick.placed), (1, 0));
    let view = r.svc.exams().exam_queue(&wr()).await.unwrap();
    let users: Vec<&str> = view.waiting.iter().map(|w| w.entry.user.as_str()).collect();
    assert_eq!(users, vec!["c"]);
    assert_eq!(view.waiting[0].position, 1);
    assert_eq!(view.figures.abandoned_total, 1);
    assert!(matches!(
        r.svc.placement().session_state(&key("b")).await,
        Err(Error::SessionNotFound(_))
    ));
}

#[tokio::test]
async fn exams_not_booked_or_without_a_queue_refuse_as_before() {
    let r = room(1, false).await;
    request(&r, "a").await;
    let refused = r
        .svc
        .placement()
        .request_session(key("b"), Default::default())
        .await;
    assert!(matches!(refused, Err(Error::NoCapacity(_))), "{refused:?}");
    let other = SessionKey::parse("not-booked", "b").unwrap();
    let refused = r
        .svc
        .placement()
        .request_session(other, Default::default())
        .await;
    assert!(matches!(refused, Err(Error::NoCapacity(_))), "{refused:?}");
    assert_eq!(r.svc.exams().queue_figures(&wr()).await.unwrap().queued, 0);
}
