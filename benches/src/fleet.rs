//! Synthetic fleets for benches and the load generator.

use vdi_cluster_core::health::{HealthConfig, HeartbeatStamp};
use vdi_cluster_core::store::{CasOutcome, Registry};
use vdi_cluster_core::testkit::heartbeat_with_slots;
use vdi_cluster_core::worker::{WorkerRecord, WorkerSnapshot, WorkerView};
use vdi_cluster_core::{Clock, SystemClock, Timestamp, WorkerId};

/// A healthy, active worker record `w-<i>` with `slots` slots, heard from at `now`.
pub fn worker_record(i: usize, slots: u32, now: Timestamp) -> WorkerRecord {
    let hb = heartbeat_with_slots(&format!("w-{i:06}"), slots, 0);
    let mut r = WorkerRecord::registered(hb.worker.clone(), hb.description.clone(), now);
    r.capacity = Some(hb.capacity);
    r.last_heartbeat_at = Some(now);
    r.stamp = Some(HeartbeatStamp {
        boot_id: Some("boot".into()),
        seq: Some(1),
    });
    r
}

/// Views of `n` healthy workers with `slots` slots and varied occupancy.
pub fn fleet_views(n: usize, slots: u32) -> Vec<WorkerView> {
    let now = Timestamp(1_000_000);
    (0..n)
        .map(|i| {
            let snapshot = WorkerSnapshot {
                record: worker_record(i, slots, now),
                version: 1,
                dispatched: (i as u32 * 7) % slots,
            };
            WorkerView::new(snapshot, now, &HealthConfig::default())
        })
        .collect()
}

/// Writes `n` workers of `slots` slots into `registry`; returns their ids.
pub async fn register_fleet(registry: &dyn Registry, n: usize, slots: u32) -> Vec<WorkerId> {
    let now = SystemClock.now();
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let r = worker_record(i, slots, now);
        match registry.put_worker(&r, None).await.expect("put_worker") {
            CasOutcome::Written { .. } => ids.push(r.id),
            CasOutcome::Conflict { .. } => panic!("worker {} already exists", r.id),
        }
    }
    ids
}
