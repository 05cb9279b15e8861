use std::collections::{BTreeMap, BTreeSet, HashSet};

use proptest::prelude::*;

use super::super::{RankIndex, RankOptions};
use crate::capacity::{CapacityInput, CapacitySpec};
use crate::health::{HealthConfig, HeartbeatStamp};
use crate::ids::WorkerId;
use crate::policy::AdminPolicy;
use crate::scheduler::{Constraints, ExamPlacement, SchedulingPolicy};
use crate::time::Timestamp;
use crate::worker::{WorkerDescription, WorkerRecord, WorkerSnapshot, WorkerView};

const NOW: Timestamp = Timestamp(1_000_000);
const WORKERS: usize = 40;

fn id(i: usize) -> WorkerId {
    WorkerId::parse("code", format!("w{i:03}")).unwrap()
}

/// What a test sets of a worker.
#[derive(Debug, Clone, Copy)]
struct State {
    slots: u32,
    dispatched: u32,
    draining: bool,
    heartbeat: bool,
    zone: Option<u8>,
    room: u8,
    gpu: bool,
    version: u64,
}

fn state() -> impl Strategy<Value = State> {
    (
        1u32..6,
        0u32..7,
        proptest::bool::weighted(0.15),
        proptest::bool::weighted(0.9),
        proptest::option::of(0u8..3),
        0u8..3,
        any::<bool>(),
        0u64..3,
    )
        .prop_map(
            |(slots, dispatched, draining, heartbeat, zone, room, gpu, version)| State {
                slots,
                dispatched,
                draining,
                heartbeat,
                zone,
                room,
                gpu,
                version,
            },
        )
}

fn view(i: usize, s: State) -> WorkerView {
    let description = WorkerDescription {
        zone: s.zone.map(|z| format!("zone-{z}")),
        labels: BTreeMap::from([("room".to_owned(), format!("r{}", s.room))]),
        capabilities: if s.gpu {
            BTreeSet::from(["gpu".to_owned()])
        } else {
            BTreeSet::new()
        },
        ..Default::default()
    };
    let mut r = WorkerRecord::registered(id(i), description, NOW);
    r.capacity = Some(
        CapacitySpec::new(CapacityInput {
            total_cpu_cores: f64::from(s.slots),
            total_memory_mb: u64::from(s.slots) * 1024,
            reserved_cpu_cores: 0.0,
            reserved_memory_mb: 0,
            vm_cpu_cores: 1.0,
            vm_memory_mb: 1024,
        })
        .unwrap(),
    );
    if s.heartbeat {
        r.last_heartbeat_at = Some(NOW);
        r.stamp = Some(HeartbeatStamp::default());
    }
    if s.draining {
        r.policy = AdminPolicy::Draining { deadline: None };
    }
    let snapshot = WorkerSnapshot {
        record: r,
        version: s.version,
        dispatched: s.dispatched,
    };
    WorkerView::new(snapshot, NOW, &HealthConfig::default())
}

/// A change of the fleet: a worker's new state, or its removal.
type Change = (usize, Option<State>);

fn requests() -> Vec<(Constraints, HashSet<WorkerId>)> {
    let zone = |z: u8| Constraints {
        zone: Some(format!("zone-{z}")),
        ..Default::default()
    };
    let room = Constraints {
        labels: BTreeMap::from([("room".to_owned(), "r1".to_owned())]),
        ..Default::default()
    };
    let gpu = Constraints {
        capabilities: BTreeSet::from(["gpu".to_owned()]),
        ..Default::default()
    };
    let tried: HashSet<WorkerId> = (0..WORKERS).step_by(7).map(id).collect();
    vec![
        (Constraints::default(), HashSet::new()),
        (Constraints::default(), tried.clone()),
        (zone(0), HashSet::new()),
        (zone(2), tried),
        (room, HashSet::new()),
        (gpu, HashSet::new()),
    ]
}

/// Asserts that `index` ranks and accounts exactly as `fresh`, and holds
/// the same workers in the same orders.
fn same_as_fresh(index: &RankIndex, fresh: &RankIndex) -> Result<(), TestCaseError> {
    let ids = |x: &RankIndex, order: &super::super::Order| -> Vec<WorkerId> {
        order.indexes().map(|i| x.views[i].id().clone()).collect()
    };
    prop_assert_eq!(ids(index, &index.order), ids(fresh, &fresh.order));
    prop_assert_eq!(index.order.runs(), fresh.order.runs());
    prop_assert_eq!(
        index.facets.keys().collect::<HashSet<_>>(),
        fresh.facets.keys().collect::<HashSet<_>>()
    );
    for (facet, order) in &fresh.facets {
        prop_assert_eq!(ids(index, &index.facets[facet]), ids(fresh, order));
        prop_assert_eq!(index.facets[facet].runs(), order.runs());
    }
    prop_assert_eq!(&index.by_state, &fresh.by_state);
    prop_assert_eq!(index.full, fresh.full);
    prop_assert_eq!(index.views.len(), fresh.views.len());
    for v in &fresh.views {
        prop_assert_eq!(index.get(v.id()), Some(v));
    }
    let affinity: BTreeMap<WorkerId, u32> = (0..WORKERS)
        .step_by(3)
        .map(|i| (id(i), (i % 4) as u32 + 1))
        .collect();
    let placements = [
        ExamPlacement::default(),
        ExamPlacement::new(Some(id(5)), affinity),
    ];
    for (constraints, tried) in requests() {
        prop_assert_eq!(
            index.account(&constraints, &tried),
            fresh.account(&constraints, &tried)
        );
        for placement in &placements {
            for seed in 0..4 {
                for policy in [SchedulingPolicy::Spread, SchedulingPolicy::Pack] {
                    let options = RankOptions {
                        policy,
                        seed,
                        limit: 6,
                        ..RankOptions::default()
                    };
                    prop_assert_eq!(
                        index.rank(&constraints, placement, &tried, &options),
                        fresh.rank(&constraints, placement, &tried, &options)
                    );
                }
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// After any sequence of workers changed, added and removed, an index
    /// updated worker by worker, and one refreshed from the final read of
    /// the fleet (in any order), rank exactly as one built from that read.
    #[test]
    fn updated_index_ranks_as_a_fresh_one(
        initial in proptest::collection::btree_map(0..WORKERS, state(), 0..WORKERS),
        changes in proptest::collection::vec((0..WORKERS, proptest::option::weighted(0.8, state())), 0..80),
        shuffle in any::<u64>(),
    ) {
        let read = |fleet: &BTreeMap<usize, State>| -> Vec<WorkerView> {
            fleet.iter().map(|(&i, &s)| view(i, s)).collect()
        };
        let mut fleet = initial.clone();
        let mut index = RankIndex::new(read(&fleet));
        // Warm an exam's affine order, which every change must drop.
        let warm = ExamPlacement::new(None, BTreeMap::from([(id(1), 2), (id(2), 1)]));
        index.rank(&Constraints::default(), &warm, &HashSet::new(), &RankOptions::default());
        let mut refreshed = RankIndex::new(read(&fleet));
        for &(i, change) in &changes {
            let change: Change = (i, change);
            match change {
                (i, Some(s)) => {
                    fleet.insert(i, s);
                    index.upsert(view(i, s));
                }
                (i, None) => {
                    let had = fleet.remove(&i).is_some();
                    prop_assert_eq!(index.remove(&id(i)).is_some(), had);
                }
            }
        }
        let fresh = RankIndex::new(read(&fleet));
        same_as_fresh(&index, &fresh)?;
        let mut views = read(&fleet);
        // A store may read the fleet in another order each time.
        let n = views.len().max(1);
        views.rotate_left((shuffle % n as u64) as usize);
        if shuffle % 2 == 0 {
            views.reverse();
        }
        refreshed.refresh(views);
        same_as_fresh(&refreshed, &fresh)?;
    }
}
