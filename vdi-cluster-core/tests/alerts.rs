//! Alerts written with their cause, on the in-memory backend with a manual
//! clock: registrations and removals, reconcile's alerts (the per-exam
//! summary, `migration.manual_required` reminded at its interval,
//! `migration.suspended` once per episode), re-dispatches and forming
//! waiting rooms. No replica keeps an event for later: each test reads the
//! outbox right after the cause, with no background tick in between.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use vdi_cluster_core::Page;
use vdi_cluster_core::events::{EventKind, RecordingSink};
use vdi_cluster_core::health::HeartbeatStamp;
use vdi_cluster_core::service::BACKGROUND_LEASE;
use vdi_cluster_core::testkit::{SimulatedWorkers, heartbeat_with_slots, key, wid};
use vdi_cluster_core::waiting_room::WaitingRoom;
use vdi_cluster_core::{
    ClusterService, DispatchStore, ExamId, FailurePolicy, LeaderLease, ManualClock, MemoryStore,
    ServiceConfig, Timestamp, UserId,
};

const START: Timestamp = Timestamp(1_800_000_000_000);
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

struct Harness {
    clock: ManualClock,
    store: MemoryStore,
    events: RecordingSink,
    svc: ClusterService,
    endpoint: String,
    seq: AtomicU64,
}

async fn harness(tweak: impl FnOnce(&mut ServiceConfig)) -> Harness {
    let clock = ManualClock::new(START);
    let store = MemoryStore::with_clock(Arc::new(clock.clone()));
    let events = RecordingSink::default();
    let mut config = ServiceConfig {
        seed: 42,
        snapshot_max_age: Duration::ZERO,
        exam_affinity: false,
        herd_width: 1,
        ..ServiceConfig::default()
    };
    tweak(&mut config);
    let svc = ClusterService::builder(Arc::new(store.clone()), Arc::new(SimulatedWorkers::new()))
        .config(config)
        .clock(Arc::new(clock.clone()))
        .events(Arc::new(events.clone()))
        .build();
    let endpoint = svc
        .operations()
        .create_webhook(
            "admin",
            "http://hooks.example/",
            vec![],
            None,
            SECRET.into(),
        )
        .await
        .unwrap()
        .id;
    Harness {
        clock,
        store,
        events,
        svc,
        endpoint,
        seq: AtomicU64::new(0),
    }
}

impl Harness {
    async fn beat(&self, code: &str, slots: u32) {
        let mut hb = heartbeat_with_slots(code, slots, 0);
        hb.stamp = HeartbeatStamp {
            boot_id: Some("boot-1".into()),
            seq: Some(self.seq.fetch_add(1, Ordering::SeqCst) + 1),
        };
        assert!(self.svc.fleet().heartbeat(hb).await.unwrap().accepted);
    }

    /// Advances `secs` in steps of 100 s, `alive` heartbeating at each.
    async fn advance(&self, secs: u64, alive: &[&str]) {
        for _ in 0..secs / 100 {
            self.clock.advance(Duration::from_secs(100));
            for w in alive {
                self.beat(w, 4).await;
            }
        }
    }

    /// The outbox's entries for the endpoint, by event name, oldest first.
    async fn outbox(&self) -> Vec<EventKind> {
        let mut all = self
            .svc
            .operations()
            .webhook_deliveries(&self.endpoint, Page::first(200))
            .await
            .unwrap()
            .items;
        all.reverse();
        all.into_iter().map(|d| d.entry.event.kind).collect()
    }

    async fn count(&self, name: &str) -> usize {
        self.outbox()
            .await
            .iter()
            .filter(|k| k.name() == name)
            .count()
    }

    fn emitted(&self, name: &str) -> usize {
        self.events
            .events()
            .iter()
            .filter(|e| e.kind.name() == name)
            .count()
    }

    /// `w1` (10 slots) holds one session of each of three exams and goes
    /// offline; `w2` and `w3` stay.
    async fn one_worker_offline(&self) {
        self.beat("w1", 10).await;
        self.beat("w2", 4).await;
        self.beat("w3", 4).await;
        for i in 0..3 {
            let placed = self
                .svc
                .placement()
                .allocate(key(&format!("exam-{i}"), "s"), Default::default())
                .await
                .unwrap();
            assert_eq!(placed.dispatch.worker.as_str(), "w1");
        }
        self.advance(700, &["w2", "w3"]).await;
    }
}

#[tokio::test]
async fn registrations_and_removals_commit_their_alerts() {
    let h = harness(|_| {}).await;
    h.beat("w1", 4).await;
    assert_eq!(h.count("workerRegistered").await, 1);
    h.beat("w1", 4).await;
    assert_eq!(
        h.count("workerRegistered").await,
        1,
        "a heartbeat writes none"
    );
    h.svc.fleet().deregister(&wid("w1"), "w1").await.unwrap();
    assert_eq!(h.count("workerRemoved").await, 1);
    h.svc
        .fleet()
        .remove_worker(&wid("w1"), "admin")
        .await
        .unwrap();
    assert_eq!(h.count("workerRemoved").await, 2);
}

#[tokio::test]
async fn migrations_are_summarised_per_exam_and_each_move_is_written() {
    let h = harness(|c| c.failure_policy = FailurePolicy::Automatic).await;
    h.one_worker_offline().await;
    let report = h.svc.operations().reconcile().await.unwrap();
    assert_eq!(report.migrated, 3);
    assert_eq!(report.by_exam.len(), 3);
    for (exam, m) in &report.by_exam {
        assert_eq!((m.moved, m.failed, m.orphaned), (1, 0, 0), "{exam}");
    }
    assert_eq!(h.count("sessionMigrated").await, 3);
    let summary = h
        .outbox()
        .await
        .into_iter()
        .find_map(|k| match k {
            EventKind::Reconciled { report } => Some(report),
            _ => None,
        })
        .expect("migration.summary");
    assert_eq!(summary.by_exam, report.by_exam);
    // A pass with nothing to report writes no summary.
    h.svc.operations().reconcile().await.unwrap();
    assert_eq!(h.count("reconciled").await, 1);
}

#[tokio::test]
async fn manual_migration_is_reminded_at_its_interval_until_resolved() {
    let h = harness(|c| {
        c.failure_policy = FailurePolicy::Manual;
        c.manual_migration_remind = Some(Duration::from_secs(600));
    })
    .await;
    h.one_worker_offline().await;
    let report = h.svc.operations().reconcile().await.unwrap();
    assert_eq!(report.orphaned, 3);
    assert_eq!(report.by_exam.values().map(|m| m.orphaned).sum::<u32>(), 3);
    assert_eq!(h.count("sessionsOrphaned").await, 1);
    h.svc.operations().reconcile().await.unwrap();
    h.advance(500, &["w2", "w3"]).await;
    h.svc.operations().reconcile().await.unwrap();
    assert_eq!(
        h.count("sessionsOrphaned").await,
        1,
        "not before the interval"
    );
    h.advance(100, &["w2", "w3"]).await;
    h.svc.operations().reconcile().await.unwrap();
    h.svc.operations().reconcile().await.unwrap();
    assert_eq!(h.count("sessionsOrphaned").await, 2, "reminded once");
    assert!(
        h.outbox()
            .await
            .iter()
            .all(|k| !matches!(k, EventKind::SessionsOrphaned { count, .. } if *count != 3))
    );

    // Resolved: the students came back and were moved; no more reminders.
    for i in 0..3 {
        h.svc
            .placement()
            .allocate(key(&format!("exam-{i}"), "s"), Default::default())
            .await
            .unwrap();
    }
    h.advance(600, &["w2", "w3"]).await;
    h.svc.operations().reconcile().await.unwrap();
    assert_eq!(h.count("sessionsOrphaned").await, 2);
}

/// A pass over several steps marks a worker's orphans as its cursor
/// reaches them, and alerts once, with their count, at the end of the
/// pass: `migration.manual_required` counts a worker's orphans over the
/// whole keyspace.
#[tokio::test]
async fn orphans_marked_over_steps_are_alerted_once_at_the_end_of_the_pass() {
    let h = harness(|c| {
        c.failure_policy = FailurePolicy::Manual;
        c.scan_count = 1;
        c.scan_pages_per_step = 1;
    })
    .await;
    h.one_worker_offline().await;
    let lease = h
        .store
        .try_acquire(BACKGROUND_LEASE, "leader", Duration::from_secs(30))
        .await
        .unwrap()
        .expect("leads");
    let mut steps = 0;
    loop {
        let report = h.svc.operations().reconcile_step(&lease).await.unwrap();
        steps += 1;
        if report.pass.complete {
            break;
        }
        assert_eq!(h.count("sessionsOrphaned").await, 0, "not mid-pass");
        assert!(steps < 10, "the pass must end");
    }
    assert!(steps > 1, "a pass of several steps");
    let alerts: Vec<u32> = h
        .outbox()
        .await
        .into_iter()
        .filter_map(|k| match k {
            EventKind::SessionsOrphaned { count, .. } => Some(count),
            _ => None,
        })
        .collect();
    assert_eq!(alerts, [3], "once, with the pass's count");
}

#[tokio::test]
async fn a_suspension_is_alerted_once_per_episode() {
    let h = harness(|_| {}).await;
    for w in ["w1", "w2", "w3"] {
        h.beat(w, 10).await;
    }
    for i in 0..6 {
        h.svc
            .placement()
            .allocate(key(&format!("exam-{i}"), "s"), Default::default())
            .await
            .unwrap();
    }
    h.advance(700, &["w3"]).await;
    for _ in 0..3 {
        assert!(
            h.svc
                .operations()
                .reconcile()
                .await
                .unwrap()
                .mass_failure_guard
        );
    }
    assert_eq!(h.count("migrationSuspended").await, 1);
    assert_eq!(h.emitted("migrationSuspended"), 1);

    // The workers come back and the guard lets go: the episode ends.
    h.advance(700, &["w1", "w2", "w3"]).await;
    assert!(
        !h.svc
            .operations()
            .reconcile()
            .await
            .unwrap()
            .mass_failure_guard
    );
    // A second mass failure is a second episode.
    h.advance(700, &["w3"]).await;
    assert!(
        h.svc
            .operations()
            .reconcile()
            .await
            .unwrap()
            .mass_failure_guard
    );
    h.svc.operations().reconcile().await.unwrap();
    assert_eq!(h.count("migrationSuspended").await, 2);
}

#[tokio::test]
async fn a_forming_queue_is_alerted_once_per_episode() {
    let h = harness(|c| c.queue_alert_at = 2).await;
    let exam = ExamId::parse("examId", "math").unwrap();
    let user = |u: &str| UserId::parse("userId", u).unwrap();
    let now = START;
    h.store.enqueue(&exam, &user("u1"), now).await.unwrap();
    assert!(
        h.svc.exams().watch_queues(None).await.unwrap().is_empty(),
        "below 2"
    );
    h.store.enqueue(&exam, &user("u2"), now).await.unwrap();
    assert_eq!(h.svc.exams().watch_queues(None).await.unwrap().len(), 1);
    h.store.enqueue(&exam, &user("u3"), now).await.unwrap();
    assert!(
        h.svc.exams().watch_queues(None).await.unwrap().is_empty(),
        "once"
    );
    assert_eq!(h.count("examQueueForming").await, 1);

    for u in ["u1", "u2", "u3"] {
        h.store.leave_queue(&exam, &user(u)).await.unwrap();
    }
    assert!(h.svc.exams().watch_queues(None).await.unwrap().is_empty());
    h.store.enqueue(&exam, &user("u4"), now).await.unwrap();
    h.store.enqueue(&exam, &user("u5"), now).await.unwrap();
    assert_eq!(h.svc.exams().watch_queues(None).await.unwrap().len(), 1);
    assert_eq!(h.count("examQueueForming").await, 2, "a new episode");
}

#[tokio::test]
async fn a_redispatch_writes_its_migration_with_the_confirmation() {
    // One silent worker of two is no mass failure here.
    let h = harness(|c| c.mass_failure_percent = 100).await;
    h.beat("w1", 4).await;
    let placed = h
        .svc
        .placement()
        .allocate(key("exam-r", "s1"), Default::default())
        .await
        .unwrap();
    assert_eq!(placed.dispatch.worker.as_str(), "w1");
    assert_eq!(
        h.outbox().await.len(),
        1,
        "an ordinary placement writes nothing (only w1's registration)"
    );
    h.beat("w2", 4).await;
    h.advance(200, &["w2"]).await;
    let moved = h
        .svc
        .placement()
        .allocate(key("exam-r", "s1"), Default::default())
        .await
        .unwrap();
    assert_eq!(moved.dispatch.worker.as_str(), "w2");
    let migrated: Vec<_> = h
        .outbox()
        .await
        .into_iter()
        .filter(|k| k.name() == "sessionMigrated")
        .collect();
    assert_eq!(
        migrated,
        vec![EventKind::SessionMigrated {
            session: key("exam-r", "s1"),
            from: wid("w1"),
            to: wid("w2"),
        }]
    );
    assert_eq!(h.emitted("sessionMigrated"), 1);
    h.svc
        .placement()
        .allocate(key("exam-r", "s1"), Default::default())
        .await
        .unwrap();
    assert_eq!(
        h.count("sessionMigrated").await,
        1,
        "a reload moves nothing"
    );
}

#[tokio::test]
async fn orphans_marked_by_a_leader_that_stopped_before_alerting_are_alerted_once() {
    let h = harness(|c| c.failure_policy = FailurePolicy::Manual).await;
    h.one_worker_offline().await;
    // A leader marks the sessions orphaned and stops before its alert.
    let marked = h.store.worker_dispatches(&wid("w1"), 10).await.unwrap();
    assert_eq!(marked.len(), 3);
    for d in &marked {
        assert!(h.store.mark_orphaned(&d.key, d.id, None).await.unwrap());
    }
    assert_eq!(h.count("sessionsOrphaned").await, 0);
    // The next leader re-observes them and writes the alert ...
    let report = h.svc.operations().reconcile().await.unwrap();
    assert_eq!(report.orphaned, 0, "already marked");
    assert_eq!(h.count("sessionsOrphaned").await, 1);
    // ... under the key every leader derives, so one more writes nothing.
    let next =
        ClusterService::builder(Arc::new(h.store.clone()), Arc::new(SimulatedWorkers::new()))
            .config(ServiceConfig {
                failure_policy: FailurePolicy::Manual,
                ..ServiceConfig::default()
            })
            .clock(Arc::new(h.clock.clone()))
            .build();
    next.operations().reconcile().await.unwrap();
    assert_eq!(h.count("sessionsOrphaned").await, 1);
}
