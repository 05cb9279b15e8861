//! Prewarm readiness and top-up planning, property-tested: readiness is a
//! bounded percentage that is 100 exactly when the target is met; a top-up
//! never plans on a worker that is not live or has no room, never more than
//! is missing, fills the gap when room allows, and waits while a live
//! worker's report predates the last call.

use proptest::prelude::*;
use vdi_cluster_core::exam::{PoolSight, TopUp, plan_top_up, readiness, readiness_percent};
use vdi_cluster_core::worker::ExamPool;
use vdi_cluster_core::{Timestamp, WorkerId};

const SINCE: Timestamp = Timestamp(1_000);

/// ready, starting, failed, live, room, reported after `SINCE`.
type RawSight = (u32, u32, u32, bool, Option<u32>, bool);

fn sight() -> impl Strategy<Value = RawSight> {
    (
        0u32..20,
        0u32..20,
        0u32..5,
        any::<bool>(),
        proptest::option::of(0u32..20),
        any::<bool>(),
    )
}

fn sights(raw: &[RawSight]) -> Vec<PoolSight> {
    raw.iter()
        .enumerate()
        .map(
            |(i, &(ready, starting, failed, live, room, fresh))| PoolSight {
                worker: WorkerId::parse("code", format!("w{i:02}")).unwrap(),
                pool: ExamPool {
                    starting,
                    ready,
                    failed,
                },
                live,
                room: room.filter(|_| live),
                reported_at: Some(if fresh {
                    Timestamp(2_000)
                } else {
                    Timestamp(500)
                }),
            },
        )
        .collect()
}

fn held_by_live(s: &[PoolSight]) -> u32 {
    s.iter().filter(|s| s.live).map(|s| s.pool.held()).sum()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn readiness_is_a_bounded_percentage(ready in any::<u32>(), target in any::<u32>()) {
        let pct = readiness_percent(ready, target);
        prop_assert!(pct <= 100);
        prop_assert_eq!(pct == 100, target == 0 || ready >= target);
        if target > 0 && ready < target {
            // Rounded down: never claims more than is ready.
            prop_assert!(u64::from(pct) * u64::from(target) <= u64::from(ready) * 100);
        }
        // More ready never lowers it.
        prop_assert!(readiness_percent(ready.saturating_add(1), target) >= pct);
    }

    #[test]
    fn the_fleet_readiness_counts_live_machines_only(
        raw in proptest::collection::vec(sight(), 0..8),
        target in 0u32..60,
    ) {
        let s = sights(&raw);
        let r = readiness(target, &s);
        let live_ready: u32 = s.iter().filter(|s| s.live).map(|s| s.pool.ready).sum();
        let lost: u32 = s.iter().filter(|s| !s.live).map(|s| s.pool.held()).sum();
        prop_assert_eq!(r.live.ready, live_ready);
        prop_assert_eq!(r.lost, lost);
        prop_assert_eq!(r.readiness_percent, readiness_percent(live_ready, target));
        prop_assert!(r.workers.iter().all(|(_, w)| w.readiness_percent <= 100));
        prop_assert_eq!(r.workers.len(), s.iter().filter(|s| !s.pool.is_empty()).count());
    }

    #[test]
    fn a_top_up_fills_the_gap_on_live_workers_with_room(
        raw in proptest::collection::vec(sight(), 0..8),
        target in 0u32..60,
        max in 1u32..100,
    ) {
        let s = sights(&raw);
        let counted = held_by_live(&s);
        match plan_top_up(target, &s, SINCE, max) {
            TopUp::Enough => prop_assert!(counted >= target),
            TopUp::Wait { worker } => {
                prop_assert!(counted < target);
                let w = s.iter().find(|s| s.worker == worker).unwrap();
                prop_assert!(w.live && w.reported_at <= Some(SINCE));
            }
            TopUp::NoRoom { missing } => {
                prop_assert_eq!(missing, target - counted);
                prop_assert!(s.iter().all(|s| !s.live || s.room.unwrap_or(0) == 0));
            }
            TopUp::Start { missing, shares } => {
                prop_assert_eq!(missing, target - counted);
                prop_assert!(s.iter().all(|s| !s.live || s.reported_at > Some(SINCE)));
                let total: u32 = shares.iter().map(|x| x.count).sum();
                prop_assert!(total >= 1 && total <= missing && total <= max);
                for share in &shares {
                    let w = s.iter().find(|s| s.worker == share.worker).unwrap();
                    prop_assert!(w.live, "never on a worker that is not live");
                    prop_assert!(share.count <= w.room.unwrap_or(0), "within room");
                }
                // Failed workers only when the clean ones have no room.
                let clean_room: u32 = s
                    .iter()
                    .filter(|s| s.live && s.pool.failed == 0)
                    .filter_map(|s| s.room)
                    .sum();
                if clean_room > 0 {
                    for share in &shares {
                        let w = s.iter().find(|s| s.worker == share.worker).unwrap();
                        prop_assert_eq!(w.pool.failed, 0);
                    }
                }
                // The gap is filled when the room and the cap allow it.
                let room: u32 = if clean_room > 0 {
                    clean_room
                } else {
                    s.iter().filter(|s| s.live).filter_map(|s| s.room).sum()
                };
                prop_assert_eq!(total, missing.min(room).min(max));
            }
        }
    }
}
