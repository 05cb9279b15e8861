//! The fleet's report is the truth about what runs: adoption of sessions
//! nobody holds, of stale reservations, stopping duplicates
//! (`adoption.rs`); worker calls that time out or lose their answer,
//! coalesced duplicate allocations, reloads during a mass failure and
//! releases (`calls.rs`); a restarted worker's report freeing what it no
//! longer runs (`restart.rs`). In-memory backend, manual clock, simulated
//! workers.

mod adoption;
mod calls;
mod restart;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use vdi_cluster_core::client::WorkerClient;
use vdi_cluster_core::events::{EventKind, RecordingSink};
use vdi_cluster_core::health::HeartbeatStamp;
use vdi_cluster_core::service::HeartbeatAck;
use vdi_cluster_core::testkit::{SimulatedWorkers, heartbeat_with_slots, wid};
use vdi_cluster_core::{
    ClusterService, ManualClock, MemoryStore, Registry, ServiceConfig, SessionKey, Timestamp,
};

pub(crate) const START: Timestamp = Timestamp(1_800_000_000_000);

pub(crate) struct Harness {
    pub(crate) clock: ManualClock,
    pub(crate) store: MemoryStore,
    pub(crate) workers: SimulatedWorkers,
    pub(crate) events: RecordingSink,
    pub(crate) svc: Arc<ClusterService>,
    pub(crate) seq: Arc<AtomicU64>,
}

pub(crate) fn config(tweak: impl FnOnce(&mut ServiceConfig)) -> ServiceConfig {
    let mut config = ServiceConfig {
        seed: 7,
        snapshot_max_age: Duration::ZERO,
        ..ServiceConfig::default()
    };
    tweak(&mut config);
    config
}

pub(crate) fn harness(tweak: impl FnOnce(&mut ServiceConfig)) -> Harness {
    let clock = ManualClock::new(START);
    let store = MemoryStore::with_clock(Arc::new(clock.clone()));
    on_store(store, clock, SimulatedWorkers::new(), config(tweak))
}

/// A control plane over `store`, calling `workers`.
pub(crate) fn on_store(
    store: MemoryStore,
    clock: ManualClock,
    workers: SimulatedWorkers,
    config: ServiceConfig,
) -> Harness {
    let events = RecordingSink::default();
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
        svc: Arc::new(svc),
        seq: Arc::new(AtomicU64::new(0)),
    }
}

impl Harness {
    /// A heartbeat of `code` (`slots` slots) listing what the simulated
    /// worker runs, with `details` for each when asked.
    pub(crate) async fn report(&self, code: &str, slots: u32, details: bool) -> HeartbeatAck {
        let live = self.workers.sessions(&wid(code));
        self.report_live(code, slots, live, details).await
    }

    pub(crate) async fn report_live(
        &self,
        code: &str,
        slots: u32,
        live: Vec<SessionKey>,
        details: bool,
    ) -> HeartbeatAck {
        let mut hb = heartbeat_with_slots(code, slots, live.len() as u32);
        hb.stamp = HeartbeatStamp {
            boot_id: Some(format!("{code}-boot")),
            seq: Some(self.seq.fetch_add(1, Ordering::SeqCst) + 1),
        };
        if details {
            hb.live_details = live
                .iter()
                .map(|k| {
                    (
                        k.clone(),
                        serde_json::json!({"connection": format!("rdp://{code}/{k}")}),
                    )
                })
                .collect();
        }
        hb.live_sessions = Some(live);
        let ack = self.svc.fleet().heartbeat(hb).await.expect("heartbeat");
        assert!(ack.accepted);
        ack
    }

    /// Starts `key` on `code` behind the control plane's back.
    pub(crate) async fn run_on(&self, code: &str, key: &SessionKey) {
        let record = self.store.worker(&wid(code)).await.unwrap().unwrap().record;
        self.workers
            .allocate(&record, key, &Default::default())
            .await
            .unwrap();
    }

    /// `code`'s dispatched count as stored.
    pub(crate) async fn dispatched(&self, code: &str) -> u32 {
        self.store
            .worker(&wid(code))
            .await
            .unwrap()
            .unwrap()
            .dispatched
    }

    pub(crate) fn advance(&self, d: Duration) {
        self.clock.advance(d);
    }

    pub(crate) fn count(&self, pred: impl Fn(&EventKind) -> bool) -> usize {
        self.events
            .events()
            .iter()
            .filter(|e| pred(&e.kind))
            .count()
    }
}
