//! Keeping a booked exam's prewarm target through the service, on the
//! in-memory backend with a manual clock and simulated workers: readiness
//! from the workers' reports, machines lost with a silent worker replaced
//! on the others (once, not again before the reports show them), the
//! readiness event, and the release of unclaimed machines at the end.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use vdi_cluster_core::events::{EventKind, RecordingSink};
use vdi_cluster_core::exam::{Prewarm, PrewarmTarget};
use vdi_cluster_core::service::Booking;
use vdi_cluster_core::testkit::{SimulatedWorkers, exam, heartbeat_with_slots, wid};
use vdi_cluster_core::worker::{ExamPool, PoolReport};
use vdi_cluster_core::{
    ClusterService, ExamId, ManualClock, MemoryStore, ServiceConfig, Timestamp,
};

const START: Timestamp = Timestamp(1_800_000_000_000);
const HOUR: Duration = Duration::from_secs(3600);

struct Harness {
    svc: ClusterService,
    clock: ManualClock,
    workers: SimulatedWorkers,
    events: RecordingSink,
    exam: ExamId,
}

impl Harness {
    /// Each of `codes` heartbeats, reporting as ready what it was asked
    /// to prewarm.
    async fn report(&self, codes: &[&str]) {
        for code in codes {
            let ready = self.workers.prewarmed(&wid(code), &self.exam);
            let mut hb = heartbeat_with_slots(code, 4, 0);
            if ready > 0 {
                let pool = ExamPool {
                    ready,
                    ..ExamPool::default()
                };
                hb.prewarm_pool = PoolReport {
                    exams: BTreeMap::from([(self.exam.clone(), pool)]),
                };
            }
            self.svc.fleet().heartbeat(hb).await.unwrap();
        }
    }

    fn prewarmed(&self, codes: &[&str]) -> u32 {
        codes
            .iter()
            .map(|c| self.workers.prewarmed(&wid(c), &self.exam))
            .sum()
    }

    fn advance(&self, secs: u64) {
        self.clock.advance(Duration::from_secs(secs));
    }
}

async fn setup() -> Harness {
    let clock = ManualClock::new(START);
    let workers = SimulatedWorkers::new();
    let events = RecordingSink::default();
    let svc = ClusterService::builder(
        Arc::new(MemoryStore::with_clock(Arc::new(clock.clone()))),
        Arc::new(workers.clone()),
    )
    .config(ServiceConfig {
        exam_headroom_percent: 0,
        ..ServiceConfig::default()
    })
    .clock(Arc::new(clock.clone()))
    .events(Arc::new(events.clone()))
    .build();
    let h = Harness {
        svc,
        clock,
        workers,
        events,
        exam: ExamId::parse("examId", "timed").unwrap(),
    };
    h.report(&["w1", "w2", "w3"]).await;
    // 6 students at START + 1 h for an hour, 6 machines 15 minutes before.
    let mut booked = exam("timed", START.plus(HOUR), 60, 6);
    booked.prewarm = Prewarm {
        target: PrewarmTarget::Count(6),
        lead_sec: 900,
    };
    assert!(matches!(
        h.svc.exams().book_exam(booked, "admin").await.unwrap(),
        Booking::Accepted(_)
    ));
    h
}

#[tokio::test]
async fn lost_machines_are_replaced_once_and_released_at_the_end() {
    let h = setup().await;
    let all = ["w1", "w2", "w3"];
    h.advance(45 * 60);
    h.report(&all).await;
    assert_eq!(h.svc.exams().start_due_prewarms().await.unwrap().len(), 1);
    assert_eq!(h.prewarmed(&all), 6);
    // Nothing reported yet: readiness 0, and no top-up of what is starting.
    h.advance(1);
    assert!(
        h.svc
            .exams()
            .keep_prewarm_targets(None)
            .await
            .unwrap()
            .is_empty()
    );
    h.report(&all).await;
    assert!(
        h.svc
            .exams()
            .keep_prewarm_targets(None)
            .await
            .unwrap()
            .is_empty()
    );
    let figures = h.svc.exams().exam_figures(&h.exam).await.unwrap();
    assert_eq!(figures.status.prewarm.readiness_percent, 100);
    assert_eq!(figures.status.prewarm.workers.len(), 3);
    let ready_events = |h: &Harness| {
        h.events
            .events()
            .iter()
            .filter(|e| {
                matches!(
                    e.kind,
                    EventKind::ExamPrewarmReady {
                        ready: 6,
                        target: 6,
                        ..
                    }
                )
            })
            .count()
    };
    assert_eq!(ready_events(&h), 1);

    // w1 falls silent: after the TTL its two machines are lost.
    h.advance(150);
    h.report(&["w2", "w3"]).await;
    let figures = h.svc.exams().exam_figures(&h.exam).await.unwrap();
    assert_eq!(figures.status.prewarm.lost, 2);
    assert_eq!(figures.status.prewarm.readiness_percent, 66);
    let topped = h.svc.exams().keep_prewarm_targets(None).await.unwrap();
    assert_eq!(topped.len(), 1);
    assert_eq!((topped[0].1.requested, topped[0].1.started), (2, 2));
    assert!(topped[0].1.shares.iter().all(|s| s.worker != wid("w1")));
    assert_eq!(h.prewarmed(&["w2", "w3"]), 6);
    // Not again until the survivors have reported after the top-up.
    assert!(
        h.svc
            .exams()
            .keep_prewarm_targets(None)
            .await
            .unwrap()
            .is_empty()
    );
    h.advance(1);
    h.report(&["w2", "w3"]).await;
    assert!(
        h.svc
            .exams()
            .keep_prewarm_targets(None)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(h.prewarmed(&["w2", "w3"]), 6);
    let figures = h.svc.exams().exam_figures(&h.exam).await.unwrap();
    assert_eq!(figures.status.prewarm.readiness_percent, 100);
    assert_eq!(ready_events(&h), 1, "once per exam");

    // At the start: fully ready, no event of falling behind.
    h.advance(15 * 60);
    h.report(&["w2", "w3"]).await;
    assert!(
        h.svc
            .exams()
            .keep_prewarm_targets(None)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        !h.events
            .events()
            .iter()
            .any(|e| matches!(e.kind, EventKind::ExamPrewarmBehind { .. }))
    );

    // Before the end nothing is released; at the end every holder is told.
    assert_eq!(h.svc.exams().release_ended_prewarms().await.unwrap(), 0);
    h.advance(60 * 60);
    h.report(&["w2", "w3"]).await;
    assert_eq!(h.svc.exams().release_ended_prewarms().await.unwrap(), 6);
    assert_eq!(h.prewarmed(&["w2", "w3"]), 0);
}

#[tokio::test]
async fn an_exam_that_starts_short_of_its_target_says_so_once() {
    let h = setup().await;
    h.advance(45 * 60);
    h.report(&["w1", "w2", "w3"]).await;
    h.svc.exams().start_due_prewarms().await.unwrap();
    // The workers never report the machines ready.
    h.advance(15 * 60);
    h.report(&["w1"]).await;
    h.svc.exams().keep_prewarm_targets(None).await.unwrap();
    h.svc.exams().keep_prewarm_targets(None).await.unwrap();
    let behind: Vec<_> = h
        .events
        .events()
        .into_iter()
        .filter(|e| matches!(e.kind, EventKind::ExamPrewarmBehind { target: 6, .. }))
        .collect();
    assert_eq!(behind.len(), 1, "{behind:?}");
    // Cancelling releases what the workers hold.
    h.advance(1);
    let mut hb = heartbeat_with_slots("w1", 4, 0);
    hb.prewarm_pool = PoolReport {
        exams: BTreeMap::from([(
            h.exam.clone(),
            ExamPool {
                ready: 2,
                ..ExamPool::default()
            },
        )]),
    };
    h.svc.fleet().heartbeat(hb).await.unwrap();
    h.svc.exams().cancel_exam(&h.exam, "admin").await.unwrap();
    assert_eq!(h.prewarmed(&["w1"]), 0);
}
