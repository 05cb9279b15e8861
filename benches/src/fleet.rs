//! Synthetic fleets for benches and the load generator.

use vdi_cluster_core::health::{HealthConfig, HeartbeatStamp};
use vdi_cluster_core::store::{CasOutcome, Registry};
use vdi_cluster_core::testkit::heartbeat_with_slots;
use vdi_cluster_core::worker::{WorkerRecord, WorkerSnapshot, WorkerView};
use vdi_cluster_core::{Clock, Heartbeat, SystemClock, Timestamp, WorkerId};

/// Zones of the synthetic fleet: worker `i` is in `ZONES[i % 4]`.
pub const ZONES: [&str; 4] = ["zone-a", "zone-b", "zone-c", "zone-d"];

/// A healthy, active worker record `w-<i>` with `slots` slots, heard from
/// at `now`: in zone `ZONES[i % 4]`, labelled `room=r<i % 10>`, and every
/// eighth worker has the capability `gpu`.
pub fn worker_record(i: usize, slots: u32, now: Timestamp) -> WorkerRecord {
    let hb = heartbeat_with_slots(&worker_code(i), slots, 0);
    let mut description = hb.description.clone();
    description.zone = Some(ZONES[i % ZONES.len()].to_owned());
    description
        .labels
        .insert("room".to_owned(), format!("r{}", i % 10));
    if i.is_multiple_of(8) {
        description.capabilities.insert("gpu".to_owned());
    }
    let mut r = WorkerRecord::registered(hb.worker.clone(), description, now);
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

/// The code of synthetic worker `i` (`w-000042`).
pub fn worker_code(i: usize) -> String {
    format!("w-{i:06}")
}

/// Heartbeat number `seq` of synthetic worker `i` with `slots` slots and
/// `active` sessions, in the boot `boot`.
pub fn heartbeat(i: usize, slots: u32, active: u32, boot: &str, seq: u64) -> Heartbeat {
    let mut hb = heartbeat_with_slots(&worker_code(i), slots, active);
    hb.stamp = HeartbeatStamp {
        boot_id: Some(boot.to_owned()),
        seq: Some(seq),
    };
    hb
}

/// A cheap, well-distributed 64-bit mix (splitmix64's finaliser), for
/// picking without a random number generator.
pub fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
