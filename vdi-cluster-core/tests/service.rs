//! Orchestration scenarios on the in-memory backend with a manual clock:
//! heartbeats, placement, drain, failure handling and reconcile.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use vdi_cluster_core::client::{WorkerCallError, WorkerClient};
use vdi_cluster_core::events::{EventKind, RecordingSink};
use vdi_cluster_core::health::HeartbeatStamp;
use vdi_cluster_core::policy::TransitionError;
use vdi_cluster_core::service::{
    AdminOutcome, AllocateOutcome, BACKGROUND_LEASE, BackgroundConfig, HealthMonitor,
    run_background,
};
use vdi_cluster_core::testkit::{
    SimulatedWorkers, heartbeat_for, heartbeat_with_slots, key, total_dispatched, wid,
};
use vdi_cluster_core::worker::{Heartbeat, WorkerRecord};
use vdi_cluster_core::{
    AdminAction, Availability, Clock, ClusterService, DispatchStore, DrainStatus, Error, ExamId,
    FailurePolicy, LeaderLease, ManualClock, MemoryStore, Registry, ServiceConfig, SessionKey,
    Timestamp, WorkerId, WorkerStatus,
};

const START: Timestamp = Timestamp(1_800_000_000_000);

struct Harness {
    clock: ManualClock,
    store: MemoryStore,
    workers: SimulatedWorkers,
    events: RecordingSink,
    svc: ClusterService,
    seq: AtomicU32,
}

fn harness(tweak: impl FnOnce(&mut ServiceConfig)) -> Harness {
    let clock = ManualClock::new(START);
    let store = MemoryStore::with_clock(Arc::new(clock.clone()));
    let workers = SimulatedWorkers::new();
    let events = RecordingSink::default();
    let mut config = ServiceConfig {
        seed: 42,
        snapshot_max_age: Duration::ZERO,
        ..ServiceConfig::default()
    };
    tweak(&mut config);
    let svc = ClusterService::builder(Arc::new(store.clone()), Arc::new(workers.clone()))
        .config(config)
        .clock(Arc::new(clock.clone()))
        .events(Arc::new(events.clone()))
        .build();
    Harness {
        clock,
        store,
        workers,
        events,
        svc,
        seq: AtomicU32::new(0),
    }
}

impl Harness {
    /// A heartbeat with boot `boot-1` and the next sequence number.
    async fn beat(&self, code: &str, slots: u32, active: u32) {
        self.beat_with(heartbeat_with_slots(code, slots, active), "boot-1")
            .await;
    }

    async fn beat_with(&self, mut hb: Heartbeat, boot: &str) {
        hb.stamp = HeartbeatStamp {
            boot_id: Some(boot.into()),
            seq: Some(u64::from(self.seq.fetch_add(1, Ordering::SeqCst)) + 1),
        };
        assert!(self.svc.fleet().heartbeat(hb).await.unwrap().accepted);
    }

    async fn place(&self, exam: &str, user: &str) -> WorkerId {
        self.svc
            .placement()
            .allocate(key(exam, user), Default::default())
            .await
            .unwrap()
            .dispatch
            .worker
    }

    async fn admin(&self, worker: &WorkerId, action: AdminAction, actor: &str) -> AdminOutcome {
        self.svc.fleet().admin(worker, action, actor).await.unwrap()
    }

    /// Workers `w1` and `w2` of 4 slots and session `exam`/`s1` placed on
    /// one of them: returns that worker and the other one's code.
    async fn two_workers_one_session(&self) -> (WorkerId, &'static str) {
        self.beat("w1", 4, 0).await;
        self.beat("w2", 4, 0).await;
        let on = self.place("exam", "s1").await;
        let other = if on.as_str() == "w1" { "w2" } else { "w1" };
        (on, other)
    }

    async fn dispatched(&self, code: &str) -> u32 {
        self.store
            .worker(&wid(code))
            .await
            .unwrap()
            .unwrap()
            .dispatched
    }

    fn advance(&self, secs: u64) {
        self.clock.advance(Duration::from_secs(secs));
    }

    fn has_event(&self, pred: impl Fn(&EventKind) -> bool) -> bool {
        self.events.events().iter().any(|e| pred(&e.kind))
    }
}

#[tokio::test]
async fn seed_000_heartbeat_gives_18_max_and_7_available() {
    let h = harness(|_| {});
    let mut hb = heartbeat_for("worker-node-2", 32.0, 65536, 11);
    hb.capacity.reserved_cpu = vdi_cluster_core::Millicores(4000);
    hb.capacity.reserved_memory_mb = 8192;
    let ack = h.svc.fleet().heartbeat(hb).await.unwrap();
    assert_eq!((ack.max_sessions, ack.available_sessions), (18, 7));
    assert_eq!(ack.status, WorkerStatus::Active);
    assert!(ack.is_enabled && !ack.is_draining);
    assert!(
        (18.0..=22.0).contains(&ack.next_heartbeat_sec),
        "{}",
        ack.next_heartbeat_sec
    );
    let summary = h.svc.operations().summary().await.unwrap();
    assert_eq!((summary.healthy_workers, summary.total_workers), (1, 1));
    assert_eq!(
        (summary.total_available_sessions, summary.total_max_sessions),
        (7, 18)
    );
    assert_eq!(summary.total_active_sessions, 11);
}

#[tokio::test]
async fn a_replayed_heartbeat_changes_nothing() {
    let h = harness(|_| {});
    let mut hb = heartbeat_with_slots("w1", 4, 3);
    hb.stamp = HeartbeatStamp {
        boot_id: Some("b".into()),
        seq: Some(10),
    };
    assert!(h.svc.fleet().heartbeat(hb.clone()).await.unwrap().accepted);
    hb.active_sessions = 0;
    let ack = h.svc.fleet().heartbeat(hb).await.unwrap();
    assert!(!ack.accepted);
    assert_eq!(ack.used_sessions, 3, "the stored report stands");
}

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
async fn seed_000_drain_runbook() {
    let h = harness(|_| {});
    let (on, other) = h.two_workers_one_session().await;
    // 1. Drain.
    let out = h
        .admin(&on, AdminAction::Drain { deadline: None }, "proctor-1")
        .await;
    assert_eq!(out.worker.status, WorkerStatus::Draining);
    // 2. Keeps its session (a reload returns the same desktop); takes no new ones.
    let again = h
        .svc
        .placement()
        .allocate(key("exam", "s1"), Default::default())
        .await
        .unwrap();
    assert_eq!(
        (again.outcome, again.dispatch.worker.clone()),
        (AllocateOutcome::Existing, on.clone())
    );
    assert_eq!(h.place("exam", "s2").await.as_str(), other);
    // Disabling now is refused, naming the count.
    let err = h
        .svc
        .fleet()
        .admin(&on, AdminAction::Disable { force: false }, "proctor-1")
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Transition(TransitionError::SessionsRemain { count: 1 })
        ),
        "{err}"
    );
    let info = h.svc.fleet().drain_info(&on).await.unwrap();
    assert_eq!(info.drain_status, DrainStatus::Draining);
    assert_eq!(
        info.blocking
            .get(&ExamId::parse("examId", "exam").unwrap())
            .map(Vec::len),
        Some(1)
    );
    // 3. The student submits; the worker reports 0 → drained (observation).
    h.svc.placement().release(&key("exam", "s1")).await.unwrap();
    h.beat(on.as_str(), 4, 0).await;
    let info = h.svc.fleet().drain_info(&on).await.unwrap();
    assert_eq!(info.drain_status, DrainStatus::Drained);
    assert!(info.blocking.is_empty());
    // 4. Disable for maintenance.
    let out = h
        .admin(&on, AdminAction::Disable { force: false }, "proctor-1")
        .await;
    assert_eq!(out.worker.status, WorkerStatus::Disabled);
    assert!(
        h.has_event(|k| matches!(k, EventKind::WorkerPolicy { to, .. } if to.name() == "drained"))
    );
    let audit = h.store_audit().await;
    assert_eq!(audit, ["disable", "drain"]);
    // activate returns it to service.
    let out = h.admin(&on, AdminAction::Activate, "proctor-1").await;
    assert_eq!(out.worker.status, WorkerStatus::Active);
}

impl Harness {
    async fn store_audit(&self) -> Vec<String> {
        use vdi_cluster_core::AuditLog;
        self.store
            .recent_audit(10)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.action)
            .filter(|a| a != "activate")
            .collect()
    }
}

#[tokio::test]
async fn force_disable_orphans_then_migrates() {
    let h = harness(|_| {});
    let (on, _) = h.two_workers_one_session().await;
    let out = h
        .admin(&on, AdminAction::Disable { force: true }, "admin")
        .await;
    assert_eq!(out.worker.status, WorkerStatus::Disabled);
    let report = h.svc.operations().reconcile().await.unwrap();
    assert_eq!(report.migrated, 1);
    assert_ne!(
        h.svc
            .placement()
            .session(&key("exam", "s1"))
            .await
            .unwrap()
            .worker,
        on
    );
    assert_eq!(h.dispatched(on.as_str()).await, 0);
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

/// Three workers; `w1` holds three sessions and goes silent past the hard
/// timeout while the others keep heartbeating.
async fn one_worker_offline(policy: FailurePolicy) -> Harness {
    let h = harness(|c| {
        c.failure_policy = policy;
        c.exam_affinity = false;
        c.herd_width = 1;
    });
    h.beat("w1", 10, 0).await;
    h.beat("w2", 4, 0).await;
    h.beat("w3", 4, 0).await;
    for i in 0..3 {
        assert_eq!(h.place(&format!("exam-{i}"), "s").await.as_str(), "w1");
    }
    for _ in 0..7 {
        h.advance(100);
        h.beat("w2", 4, 0).await;
        h.beat("w3", 4, 0).await;
    }
    assert_eq!(
        h.svc
            .fleet()
            .worker_view(&wid("w1"))
            .await
            .unwrap()
            .availability,
        Availability::Offline
    );
    h
}

#[tokio::test]
async fn automatic_policy_migrates_sessions_of_an_offline_worker() {
    let h = one_worker_offline(FailurePolicy::Automatic).await;
    let report = h.svc.operations().reconcile().await.unwrap();
    assert_eq!((report.failed_worker_sessions, report.migrated), (3, 3));
    assert_eq!(h.dispatched("w1").await, 0);
    assert_eq!(h.dispatched("w2").await + h.dispatched("w3").await, 3);
    assert!(report.drift.is_empty());
    // Nothing left to do on the next pass.
    assert_eq!(
        h.svc
            .operations()
            .reconcile()
            .await
            .unwrap()
            .failed_worker_sessions,
        0
    );
}

#[tokio::test]
async fn manual_policy_orphans_and_alerts() {
    let h = one_worker_offline(FailurePolicy::Manual).await;
    let report = h.svc.operations().reconcile().await.unwrap();
    assert_eq!((report.orphaned, report.migrated), (3, 0));
    assert!(h.has_event(|k| matches!(k, EventKind::SessionsOrphaned { count: 3, .. })));
    let d = h
        .svc
        .placement()
        .session(&key("exam-0", "s"))
        .await
        .unwrap();
    assert_eq!(d.state, vdi_cluster_core::DispatchState::Orphaned);
    // The student comes back: re-dispatched at once.
    let again = h
        .svc
        .placement()
        .allocate(key("exam-0", "s"), Default::default())
        .await
        .unwrap();
    assert!(matches!(
        again.outcome,
        AllocateOutcome::Redispatched { .. }
    ));
    assert_eq!(h.dispatched("w1").await, 2);
}

#[tokio::test]
async fn none_policy_leaves_sessions_alone() {
    let h = one_worker_offline(FailurePolicy::None).await;
    let report = h.svc.operations().reconcile().await.unwrap();
    assert_eq!(
        (report.left_in_place, report.migrated, report.orphaned),
        (3, 0, 0)
    );
    assert_eq!(h.dispatched("w1").await, 3);
}

#[tokio::test]
async fn mass_failure_moves_nothing() {
    let h = harness(|_| {});
    for w in ["w1", "w2", "w3"] {
        h.beat(w, 10, 0).await;
    }
    for i in 0..6 {
        h.place(&format!("exam-{i}"), "s").await;
    }
    for _ in 0..7 {
        h.advance(100);
        h.beat("w3", 10, 0).await;
    }
    let report = h.svc.operations().reconcile().await.unwrap();
    assert!(report.mass_failure_guard);
    assert_eq!(report.migrated, 0);
    assert!(h.has_event(|k| matches!(k, EventKind::MigrationSuspended { .. })));
    assert_eq!(total_dispatched(&h.store).await, 6);
}

#[tokio::test]
async fn a_restarted_control_plane_gives_workers_a_grace_period() {
    let h = harness(|_| {});
    h.beat("w1", 4, 0).await;
    // The control plane was down for 20 minutes; a new one starts now.
    h.advance(1_200);
    let restarted = ClusterService::builder(Arc::new(h.store.clone()), Arc::new(h.workers.clone()))
        .clock(Arc::new(h.clock.clone()))
        .build();
    h.advance(10);
    assert_eq!(
        restarted
            .fleet()
            .worker_view(&wid("w1"))
            .await
            .unwrap()
            .availability,
        Availability::Healthy
    );
    assert_eq!(
        h.svc
            .fleet()
            .worker_view(&wid("w1"))
            .await
            .unwrap()
            .availability,
        Availability::Offline
    );
    h.advance(150);
    assert_eq!(
        restarted
            .fleet()
            .worker_view(&wid("w1"))
            .await
            .unwrap()
            .availability,
        Availability::Unreachable
    );
}

#[tokio::test]
async fn sessions_lost_to_a_worker_restart_are_moved() {
    let h = harness(|_| {});
    let (on, _) = h.two_workers_one_session().await;
    h.advance(5);
    h.beat_with(heartbeat_with_slots(on.as_str(), 4, 0), "boot-2")
        .await;
    assert!(h.has_event(|k| matches!(k, EventKind::WorkerRestarted { .. })));
    let report = h.svc.operations().reconcile().await.unwrap();
    assert_eq!(report.migrated, 1);
    assert_ne!(
        h.svc
            .placement()
            .session(&key("exam", "s1"))
            .await
            .unwrap()
            .worker,
        on
    );
}

#[tokio::test]
async fn a_session_the_worker_reports_gone_is_removed_after_the_grace() {
    let h = harness(|_| {});
    h.beat("w1", 4, 0).await;
    h.place("exam", "s1").await;
    h.place("exam", "s2").await;
    h.advance(61);
    let mut hb = heartbeat_with_slots("w1", 4, 1);
    hb.live_sessions = Some(vec![key("exam", "s2")]);
    h.beat_with(hb, "boot-1").await;
    let report = h.svc.operations().reconcile().await.unwrap();
    assert_eq!(report.gone_removed, 1);
    assert!(h.svc.placement().session(&key("exam", "s1")).await.is_err());
    assert!(h.svc.placement().session(&key("exam", "s2")).await.is_ok());
}

#[tokio::test]
async fn stuck_reservations_and_stale_dispatches_are_cleaned() {
    let h = harness(|_| {});
    h.beat("w1", 4, 0).await;
    // An allocator that died after reserving.
    let k = key("exam", "crashed");
    let d = vdi_cluster_core::Dispatch::reserve(k.clone(), wid("w1"), h.clock.now(), None, None);
    h.store
        .reserve(&vdi_cluster_core::store::ReserveRequest {
            dispatch: d,
            supersede: None,
        })
        .await
        .unwrap();
    let err = h
        .svc
        .placement()
        .allocate(k.clone(), Default::default())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::AllocationInProgress(_)), "{err}");
    h.place("exam", "old").await;
    h.advance(91);
    h.beat("w1", 4, 0).await;
    let report = h.svc.operations().reconcile().await.unwrap();
    assert_eq!(report.reservations_reclaimed, 1);
    assert_eq!(h.dispatched("w1").await, 1);
    // Six hours later with no live session evidence: stale.
    for _ in 0..217 {
        h.advance(100);
        h.beat("w1", 4, 0).await;
    }
    let report = h.svc.operations().reconcile().await.unwrap();
    assert_eq!(report.stale_removed, 1);
    assert_eq!(h.dispatched("w1").await, 0);
}

#[tokio::test]
async fn a_deposed_leaders_reconcile_writes_are_fenced_off() {
    let h = harness(|_| {});
    h.beat("w1", 4, 0).await;
    let k = key("exam", "crashed");
    let d = vdi_cluster_core::Dispatch::reserve(k.clone(), wid("w1"), h.clock.now(), None, None);
    h.store
        .reserve(&vdi_cluster_core::store::ReserveRequest {
            dispatch: d.clone(),
            supersede: None,
        })
        .await
        .unwrap();
    let ttl = Duration::from_secs(30);
    let stale = h
        .store
        .try_acquire(BACKGROUND_LEASE, "a", ttl)
        .await
        .unwrap()
        .expect("a leads");
    // a pauses past its lease; b takes over.
    h.advance(91);
    h.beat("w1", 4, 0).await;
    let current = h
        .store
        .try_acquire(BACKGROUND_LEASE, "b", ttl)
        .await
        .unwrap()
        .expect("b leads");
    let err = h
        .svc
        .operations()
        .reconcile_leased(Some(&stale))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Fenced { .. }), "{err}");
    assert_eq!(
        h.store.dispatch(&k).await.unwrap().map(|x| x.id),
        Some(d.id)
    );
    let report = h
        .svc
        .operations()
        .reconcile_leased(Some(&current))
        .await
        .unwrap();
    assert_eq!(report.reservations_reclaimed, 1);
    assert_eq!(h.dispatched("w1").await, 0);
}

#[tokio::test]
async fn reconcile_repairs_counter_drift() {
    let h = harness(|_| {});
    h.beat("w1", 4, 0).await;
    h.place("exam", "s1").await;
    h.store.corrupt_dispatched(&wid("w1"), 2);
    let report = h.svc.operations().reconcile().await.unwrap();
    assert_eq!(report.drift.len(), 1);
    assert_eq!((report.drift[0].stored, report.drift[0].actual), (3, 1));
    assert_eq!(h.dispatched("w1").await, 1);
    assert!(
        h.svc
            .operations()
            .reconcile()
            .await
            .unwrap()
            .drift
            .is_empty()
    );
}

#[tokio::test]
async fn a_drain_deadline_force_disables() {
    let h = harness(|_| {});
    let (on, _) = h.two_workers_one_session().await;
    let deadline = h.clock.now().plus(Duration::from_secs(30));
    h.svc
        .fleet()
        .admin(
            &on,
            AdminAction::Drain {
                deadline: Some(deadline),
            },
            "ops",
        )
        .await
        .unwrap();
    h.advance(31);
    // The deadline is observed at the next observation: here, a reconcile.
    let report = h.svc.operations().reconcile().await.unwrap();
    assert_eq!(report.policy_changes.len(), 1);
    let view = h.svc.fleet().worker_view(&on).await.unwrap();
    assert_eq!(
        view.record.policy,
        vdi_cluster_core::AdminPolicy::Disabled { forced: true }
    );
    assert!(
        h.has_event(|k| matches!(k, EventKind::WorkerPolicy { actor, .. } if actor == "system"))
    );
    // Its remaining session is treated as force-disabled and moved.
    assert_eq!(
        report.migrated + h.svc.operations().reconcile().await.unwrap().migrated,
        1
    );
    assert_ne!(
        h.svc
            .placement()
            .session(&key("exam", "s1"))
            .await
            .unwrap()
            .worker,
        on
    );
}

/// Counts prewarm calls in flight.
#[derive(Debug, Default)]
struct CountingClient {
    in_flight: AtomicU32,
    peak: AtomicU32,
}

#[async_trait]
impl WorkerClient for CountingClient {
    async fn allocate(
        &self,
        _: &WorkerRecord,
        _: &SessionKey,
    ) -> Result<serde_json::Value, WorkerCallError> {
        Ok(serde_json::Value::Null)
    }
    async fn release(&self, _: &WorkerRecord, _: &SessionKey) -> Result<(), WorkerCallError> {
        Ok(())
    }
    async fn prewarm(
        &self,
        _: &WorkerRecord,
        _: &ExamId,
        count: u32,
    ) -> Result<u32, WorkerCallError> {
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(20)).await;
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        Ok(count)
    }
    async fn discard_prewarm(&self, _: &WorkerRecord, _: &ExamId) -> Result<u32, WorkerCallError> {
        Ok(0)
    }
}

#[tokio::test(start_paused = true)]
async fn prewarm_splits_by_free_slots_with_bounded_concurrency() {
    let client = Arc::new(CountingClient::default());
    let svc = ClusterService::builder(
        Arc::new(MemoryStore::new()),
        Arc::<CountingClient>::clone(&client),
    )
    .build();
    for i in 0..10 {
        svc.fleet()
            .heartbeat(heartbeat_with_slots(&format!("w{i}"), 10 + i, 0))
            .await
            .unwrap();
    }
    let exam = ExamId::parse("examId", "exam").unwrap();
    let report = svc
        .exams()
        .prewarm(exam.clone(), 500, Default::default())
        .await
        .unwrap();
    assert_eq!(
        (report.requested, report.planned, report.started),
        (500, 80, 80),
        "VDI_PREWARM_MAX caps it"
    );
    assert_eq!(report.shares.len(), 10);
    assert!(
        client.peak.load(Ordering::SeqCst) <= 4,
        "VDI_PREWARM_CONCURRENCY"
    );
    let small = svc
        .exams()
        .prewarm(exam, 3, Default::default())
        .await
        .unwrap();
    assert_eq!(small.started, 3);
    assert!(
        matches!(svc.exams().prewarm(ExamId::parse("examId", "x").unwrap(), 0, Default::default()).await, Err(Error::Invalid(e)) if e.field == "count")
    );
}

#[tokio::test]
async fn health_monitor_reports_each_transition_once() {
    let h = harness(|_| {});
    h.beat("w1", 4, 0).await;
    let mut monitor = HealthMonitor::default();
    let views = h.svc.fleet().worker_views().await.unwrap();
    assert!(monitor.observe(&views, h.clock.now()).is_empty());
    h.advance(130);
    let views = h.svc.fleet().worker_views().await.unwrap();
    let events = monitor.observe(&views, h.clock.now());
    assert_eq!(events.len(), 1);
    assert!(matches!(
        &events[0],
        EventKind::WorkerAvailability {
            to: Availability::Unreachable,
            ..
        }
    ));
    assert!(monitor.observe(&views, h.clock.now()).is_empty());
    h.beat("w1", 4, 0).await;
    let views = h.svc.fleet().worker_views().await.unwrap();
    assert!(matches!(
        &monitor.observe(&views, h.clock.now())[..],
        [EventKind::WorkerAvailability {
            to: Availability::Healthy,
            ..
        }]
    ));
}

#[tokio::test]
async fn a_backend_outage_is_a_typed_error_and_heals() {
    let h = harness(|_| {});
    h.beat("w1", 4, 0).await;
    h.store.set_unavailable(true);
    let err = h
        .svc
        .placement()
        .allocate(key("e", "u"), Default::default())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Unavailable { .. }), "{err}");
    assert!(h.svc.ping().await.is_err());
    h.store.set_unavailable(false);
    h.place("e", "u").await;
}

#[tokio::test]
async fn deregistered_workers_are_offline_and_can_be_removed_when_empty() {
    let h = harness(|_| {});
    h.beat("w1", 4, 0).await;
    h.beat("w2", 4, 0).await;
    let view = h.svc.fleet().deregister(&wid("w1"), "agent").await.unwrap();
    assert_eq!(view.status, WorkerStatus::Offline);
    assert_eq!(h.place("e", "u").await.as_str(), "w2");
    let err = h
        .svc
        .fleet()
        .remove_worker(&wid("w2"), "admin")
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        Error::Transition(TransitionError::SessionsRemain { count: 1 })
    ));
    h.svc
        .fleet()
        .remove_worker(&wid("w1"), "admin")
        .await
        .unwrap();
    assert!(matches!(
        h.svc.fleet().worker_view(&wid("w1")).await,
        Err(Error::WorkerNotFound(_))
    ));
}

#[tokio::test(start_paused = true)]
async fn background_jobs_run_on_one_replica_at_a_time() {
    let store = MemoryStore::new();
    let workers = SimulatedWorkers::new();
    let make = |name: &str| {
        let sink = RecordingSink::default();
        let svc = Arc::new(
            ClusterService::builder(Arc::new(store.clone()), Arc::new(workers.clone()))
                .config(ServiceConfig {
                    replica_id: name.into(),
                    ..ServiceConfig::default()
                })
                .events(Arc::new(sink.clone()))
                .build(),
        );
        (svc, sink)
    };
    let (a, a_events) = make("a");
    let (b, b_events) = make("b");
    let config = BackgroundConfig {
        tick: Duration::from_millis(10),
        reconcile_every: Duration::from_millis(30),
        ..BackgroundConfig::default()
    };
    let reconciles = |s: &RecordingSink| {
        s.events()
            .iter()
            .filter(|e| matches!(e.kind, EventKind::Reconciled { .. }))
            .count()
    };
    let (stop_a, a_stopped) = tokio::sync::oneshot::channel::<()>();
    let (stop_b, b_stopped) = tokio::sync::oneshot::channel::<()>();
    let ja = tokio::spawn(run_background(Arc::clone(a.operations()), config, async {
        let _ = a_stopped.await;
    }));
    tokio::time::sleep(Duration::from_millis(5)).await;
    let jb = tokio::spawn(run_background(Arc::clone(b.operations()), config, async {
        let _ = b_stopped.await;
    }));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(reconciles(&a_events) > 0, "the first replica leads");
    assert_eq!(reconciles(&b_events), 0, "the second replica waits");
    // Stopping the leader gives the lease up: the other takes over.
    stop_a.send(()).unwrap();
    ja.await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(reconciles(&b_events) > 0, "the second replica took over");
    stop_b.send(()).unwrap();
    jb.await.unwrap();
}

#[tokio::test]
async fn a_returning_worker_is_told_to_stop_superseded_sessions() {
    // One silent worker of two is no mass failure here.
    let h = harness(|c| c.mass_failure_percent = 100);
    h.beat("w1", 4, 0).await;
    h.beat("w2", 4, 0).await;
    let k = key("exam", "s1");
    let on = h.place("exam", "s1").await;
    let other = if on.as_str() == "w1" { "w2" } else { "w1" };
    h.advance(100);
    h.beat(other, 4, 0).await;
    h.advance(30);
    let moved = h
        .svc
        .placement()
        .allocate(k.clone(), Default::default())
        .await
        .unwrap();
    assert_eq!(moved.dispatch.worker.as_str(), other);
    // The partition heals: the old worker still runs the old desktop. It
    // is told to stop it once the new dispatch has settled for the grace.
    let grace = h.svc.config().fleet_grace();
    h.clock.advance(grace);
    h.beat(other, 4, 1).await;
    let mut hb = heartbeat_with_slots(on.as_str(), 4, 1);
    hb.live_sessions = Some(vec![k.clone()]);
    hb.stamp = HeartbeatStamp {
        boot_id: Some("boot-1".into()),
        seq: Some(1_000),
    };
    let ack = h.svc.fleet().heartbeat(hb).await.unwrap();
    assert_eq!(ack.release_sessions, vec![k.clone()]);
    // The new worker reporting it live is told nothing.
    let mut hb = heartbeat_with_slots(other, 4, 1);
    hb.live_sessions = Some(vec![k]);
    hb.stamp = HeartbeatStamp {
        boot_id: Some("boot-1".into()),
        seq: Some(1_001),
    };
    assert!(
        h.svc
            .fleet()
            .heartbeat(hb)
            .await
            .unwrap()
            .release_sessions
            .is_empty()
    );
}

#[tokio::test]
async fn a_control_plane_with_an_empty_store_adopts_and_stops_nothing() {
    // A control plane restarted on a fresh in-memory store knows no
    // dispatch: the sessions a worker reports are adopted, not stopped.
    let h = harness(|_| {});
    let mut hb = heartbeat_with_slots("w1", 4, 2);
    hb.live_sessions = Some(vec![key("exam", "s1"), key("exam", "s2")]);
    let ack = h.svc.fleet().heartbeat(hb).await.unwrap();
    assert!(ack.release_sessions.is_empty());
    assert_eq!(ack.adopted_sessions, 2);
    assert_eq!(ack.used_sessions, 2, "its own report still holds the slots");
}
