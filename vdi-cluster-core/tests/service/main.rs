//! Orchestration scenarios on the in-memory backend with a manual clock,
//! one module per wing of the service: heartbeats, placement, drain,
//! failure handling and reconcile.

mod exams;
mod expiry;
mod fleet;
mod operations;
mod pacing;
mod placement;
mod scheduled;

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
