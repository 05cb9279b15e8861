//! The exam's affine workers in ranking order, kept between requests.
//!
//! An exam spread over many workers would otherwise cost every decision a
//! look-up per affine worker and a selection among them. A [`RankIndex`]
//! instead resolves an [`ExamPlacement`]'s affinity to index positions and
//! orders it once — by sessions of the exam, most first, then by the
//! policy, then by the worker's fixed tie-break — and keeps that order for
//! the placement's [`PlacementRevision`]. A later revision of the same
//! hints (this replica's own placements, [`ExamPlacement::placed`]) moves
//! only the workers it changed. A request then walks the order until it
//! has what it wants, checking every worker against its own constraints
//! and exclusions: its cost is the workers it offers or skips, not the
//! exam's spread.
//!
//! [`RankIndex`]: super::RankIndex
//! [`PlacementRevision`]: super::PlacementRevision

use std::cmp::Reverse;
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use super::SchedulingPolicy;
use super::placement::ExamPlacement;
use crate::ids::WorkerId;
use crate::worker::WorkerView;

/// Exam orders (per policy) an index keeps; past that it forgets them all.
/// The index is replaced with every snapshot anyway.
const MAX_ORDERS: usize = 256;

/// One affine worker and its place in the order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Affine {
    /// Most sessions of the exam first, then the best by policy, then the
    /// worker's fixed tie-break.
    key: (Reverse<u32>, Reverse<i64>, u64),
    index: usize,
}

/// The workers of one snapshot an order refers to.
#[derive(Debug, Clone, Copy)]
pub(super) struct Fleet<'a> {
    pub(super) views: &'a [WorkerView],
    pub(super) by_id: &'a HashMap<WorkerId, usize>,
    pub(super) policy: SchedulingPolicy,
}

impl Fleet<'_> {
    /// `worker` in the order with `sessions` of the exam, if it could take
    /// one more as far as its state goes.
    fn affine(&self, worker: &WorkerId, sessions: u32) -> Option<Affine> {
        let index = *self.by_id.get(worker)?;
        let view = &self.views[index];
        if sessions == 0 || !view.is_schedulable() {
            return None;
        }
        let free = i64::from(view.available_sessions);
        let policy_key = match self.policy {
            SchedulingPolicy::Spread => free,
            SchedulingPolicy::Pack => -free,
        };
        Some(Affine {
            key: (Reverse(sessions), Reverse(policy_key), view.tiebreak),
            index,
        })
    }
}

/// An exam's affine workers in order, as of one revision of its hints.
#[derive(Debug, Clone)]
struct Order {
    /// The revision's latest stamp.
    stamp: u64,
    affine: Vec<Affine>,
}

impl Order {
    fn build(fleet: Fleet<'_>, placement: &ExamPlacement) -> Self {
        let mut affine: Vec<Affine> = placement
            .affinity
            .iter()
            .filter_map(|(w, &n)| fleet.affine(w, n))
            .collect();
        affine.sort_unstable();
        Self {
            stamp: placement.revision.latest(),
            affine,
        }
    }

    /// Brings the order up to `placement`, if it is a later version of the
    /// hints this order was built from; false if it is not.
    fn update(&mut self, fleet: Fleet<'_>, placement: &ExamPlacement) -> bool {
        let Some(changed) = placement.revision.since(self.stamp) else {
            return false;
        };
        for worker in changed {
            self.move_worker(fleet, worker, placement);
        }
        self.stamp = placement.revision.latest();
        true
    }

    /// Puts `worker` where its sessions in `placement` now rank it.
    fn move_worker(&mut self, fleet: Fleet<'_>, worker: &WorkerId, placement: &ExamPlacement) {
        let Some(&index) = fleet.by_id.get(worker) else {
            return;
        };
        if let Some(at) = self.affine.iter().position(|a| a.index == index) {
            self.affine.remove(at);
        }
        let sessions = placement.affinity.get(worker).copied().unwrap_or(0);
        if let Some(entry) = fleet.affine(worker, sessions) {
            let at = self.affine.partition_point(|a| *a < entry);
            self.affine.insert(at, entry);
        }
    }
}

/// The affine orders of one index, by revision origin and policy.
#[derive(Debug, Default)]
pub(super) struct AffineOrders(Mutex<HashMap<(u64, SchedulingPolicy), Order>>);

impl Clone for AffineOrders {
    /// A copy starts empty: orders are rebuilt on demand.
    fn clone(&self) -> Self {
        Self::default()
    }
}

impl AffineOrders {
    fn lock(&self) -> MutexGuard<'_, HashMap<(u64, SchedulingPolicy), Order>> {
        // A panic mid-update leaves at worst an approximate order: every
        // candidate is still checked by the request.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The best `want` affine workers of `placement` that `ok` accepts,
    /// best first, with their sessions of the exam. Workers tied on
    /// sessions and policy keep their fixed order whatever the request's
    /// seed; the caller rotates the head among the herd.
    pub(super) fn best(
        &self,
        fleet: Fleet<'_>,
        placement: &ExamPlacement,
        want: usize,
        ok: impl Fn(usize) -> bool,
    ) -> Vec<(usize, u32)> {
        if want == 0 || placement.affinity.is_empty() {
            return Vec::new();
        }
        let key = (placement.revision.origin(), fleet.policy);
        let mut orders = self.lock();
        let fresh = match orders.get_mut(&key) {
            Some(order) => order.update(fleet, placement),
            None => false,
        };
        if !fresh {
            if orders.len() >= MAX_ORDERS && !orders.contains_key(&key) {
                orders.clear();
            }
            orders.insert(key, Order::build(fleet, placement));
        }
        orders[&key]
            .affine
            .iter()
            .filter(|a| ok(a.index))
            .take(want)
            .map(|a| (a.index, a.key.0.0))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashSet};

    use proptest::prelude::*;

    use super::super::{ChoiceReason, Constraints, RankIndex, RankOptions, SchedulingPolicy};
    use super::*;
    use crate::capacity::{CapacityInput, CapacitySpec};
    use crate::health::{HealthConfig, HeartbeatStamp};
    use crate::policy::AdminPolicy;
    use crate::time::Timestamp;
    use crate::worker::{WorkerDescription, WorkerRecord, WorkerSnapshot};

    const NOW: Timestamp = Timestamp(1_000_000);

    fn id(i: usize) -> WorkerId {
        WorkerId::parse("code", format!("w{i:03}")).unwrap()
    }

    /// Worker `i` with `slots`, `dispatched` of them taken, in one of two
    /// zones, draining if `draining`.
    fn view(i: usize, slots: u32, dispatched: u32, draining: bool) -> WorkerView {
        let description = WorkerDescription {
            zone: Some(format!("zone-{}", i % 2)),
            ..Default::default()
        };
        let mut r = WorkerRecord::registered(id(i), description, NOW);
        r.capacity = Some(
            CapacitySpec::new(CapacityInput {
                total_cpu_cores: f64::from(slots),
                total_memory_mb: u64::from(slots) * 1024,
                reserved_cpu_cores: 0.0,
                reserved_memory_mb: 0,
                vm_cpu_cores: 1.0,
                vm_memory_mb: 1024,
            })
            .unwrap(),
        );
        r.last_heartbeat_at = Some(NOW);
        r.stamp = Some(HeartbeatStamp::default());
        if draining {
            r.policy = AdminPolicy::Draining { deadline: None };
        }
        let snapshot = WorkerSnapshot {
            record: r,
            version: 1,
            dispatched,
        };
        WorkerView::new(snapshot, NOW, &HealthConfig::default())
    }

    /// One request of a test: its constraints, exclusions and knobs.
    #[derive(Debug, Clone)]
    struct Request {
        zone: Option<usize>,
        tried: HashSet<usize>,
        options: RankOptions,
    }

    fn request() -> impl Strategy<Value = Request> {
        (
            proptest::option::of(0usize..2),
            proptest::collection::hash_set(0usize..30, 0..4),
            any::<bool>(),
            1usize..4,
            any::<u64>(),
            1usize..12,
        )
            .prop_map(|(zone, tried, pack, herd_width, seed, limit)| Request {
                zone,
                tried,
                options: RankOptions {
                    policy: if pack {
                        SchedulingPolicy::Pack
                    } else {
                        SchedulingPolicy::Spread
                    },
                    exam_affinity: true,
                    herd_width,
                    seed,
                    limit,
                },
            })
    }

    /// `request` ranked by `index` (whose orders may be warm).
    fn ranked(
        index: &RankIndex,
        placement: &ExamPlacement,
        request: &Request,
    ) -> Vec<(WorkerId, ChoiceReason)> {
        let constraints = Constraints {
            zone: request.zone.map(|z| format!("zone-{z}")),
            ..Default::default()
        };
        let tried: HashSet<WorkerId> = request.tried.iter().map(|&i| id(i)).collect();
        index
            .rank(&constraints, placement, &tried, &request.options)
            .candidates
            .into_iter()
            .map(|c| (c.worker, c.reason))
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// An index that keeps an exam's order between requests, as its
        /// hints move by placements (new affine workers, counts going up,
        /// more changes than a revision records) and as older copies of
        /// the hints are ranked again, answers exactly as one that orders
        /// the hints from scratch; and its affine candidates are the
        /// eligible affine workers with most sessions, then best by policy.
        #[test]
        fn kept_order_ranks_as_from_scratch(
            workers in proptest::collection::vec((0u32..6, 0u32..6, proptest::bool::weighted(0.1)), 1..30),
            affinity in proptest::collection::btree_map(0usize..30, 1u32..5, 0..12),
            sticky in proptest::option::of(0usize..30),
            placements in proptest::collection::vec(0usize..30, 0..300),
            requests in proptest::collection::vec(request(), 1..4),
        ) {
            let views: Vec<WorkerView> = workers
                .iter()
                .enumerate()
                .map(|(i, &(slots, dispatched, draining))| view(i, slots, dispatched, draining))
                .collect();
            let index = RankIndex::new(views);
            let affinity: BTreeMap<WorkerId, u32> =
                affinity.iter().map(|(&i, &n)| (id(i), n)).collect();
            let mut placement = ExamPlacement::new(sticky.map(id), affinity);
            let mut earlier = Vec::new();
            for step in 0..=placements.len() {
                for request in &requests {
                    let fresh = index.clone();
                    let expected = ranked(&fresh, &placement, request);
                    prop_assert_eq!(ranked(&index, &placement, request), expected.clone());
                    check_affine_rules(&index, &placement, request, &expected)?;
                }
                if step % 7 == 3 {
                    // A request still holding older hints.
                    let old: &ExamPlacement = &earlier[step / 2];
                    let request = &requests[0];
                    prop_assert_eq!(ranked(&index, old, request), ranked(&index.clone(), old, request));
                }
                earlier.push(placement.clone());
                if let Some(&w) = placements.get(step) {
                    placement.placed(&id(w));
                }
            }
        }
    }

    /// With no herd rotation, the affine candidates are the eligible
    /// affine workers (bar the sticky one) with most sessions, then best by
    /// policy, in that order.
    fn check_affine_rules(
        index: &RankIndex,
        placement: &ExamPlacement,
        request: &Request,
        ranked: &[(WorkerId, ChoiceReason)],
    ) -> Result<(), TestCaseError> {
        let key = |w: &WorkerId, sessions: u32| {
            let free = i64::from(index.get(w).unwrap().available_sessions);
            let policy = match request.options.policy {
                SchedulingPolicy::Spread => free,
                SchedulingPolicy::Pack => -free,
            };
            (sessions, policy)
        };
        let affine: Vec<(u32, i64)> = ranked
            .iter()
            .filter_map(|(w, r)| match r {
                ChoiceReason::Affinity { sessions } => Some(key(w, *sessions)),
                _ => None,
            })
            .collect();
        let width = request.options.herd_width.min(affine.len()).max(1);
        if affine.len() > width {
            // Past the rotated head, best first; and the head is no worse.
            prop_assert!(affine[width..].windows(2).all(|p| p[0] >= p[1]));
            prop_assert!(affine[..width].iter().all(|k| *k >= affine[width]));
        }
        let offered: HashSet<&WorkerId> = ranked.iter().map(|(w, _)| w).collect();
        let in_zone = |w: &WorkerId| {
            let zone = &index.get(w).unwrap().record.description.zone;
            request
                .zone
                .is_none_or(|z| zone.as_deref() == Some(&*format!("zone-{z}")))
        };
        let worst = affine.iter().min().copied();
        for (w, &n) in &placement.affinity {
            let eligible = index.get(w).is_some_and(|v| v.is_schedulable())
                && in_zone(w)
                && !request.tried.iter().any(|&i| id(i) == *w);
            if eligible && !offered.contains(w) {
                // Left out only for a full list of better ones.
                prop_assert_eq!(ranked.len(), request.options.limit);
                prop_assert!(worst.is_none_or(|k| key(w, n) <= k));
            }
        }
        Ok(())
    }
}
