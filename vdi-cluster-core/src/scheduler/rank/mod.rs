//! Ranking candidates, from an index of the fleet kept between snapshots.
//!
//! [`RankIndex::new`] sorts the workers that can take a session as far as
//! their state goes (healthy, accepting, a free slot) by free slots, in runs
//! of equal free slots ordered by a hash of the worker's code;
//! [`RankIndex::refresh`] brings it to a new read of the fleet moving only
//! the workers that changed (the `update` module). A query then
//! touches only the sticky worker, the first few of the exam's affine
//! workers — in an order the index keeps per revision of the exam's hints
//! (see the `affine` module) — and the first few of the policy order: its
//! cost grows neither with the fleet nor with the exam's spread. A
//! request with constraints walks the policy order of one facet instead —
//! the workers of its zone, or carrying one of its labels or capabilities,
//! whichever is smallest — kept in the same order when the index is built.
//! Why the other workers are not candidates ([`RankIndex::account`]) is a
//! separate, whole-fleet question, asked only when an explanation is
//! needed. Within a run of equally good workers the
//! walk starts at an offset drawn from the request's seed, and the first
//! `herd_width` candidates are rotated by it — the affine ones among
//! themselves, the policy ones among themselves — so replicas ranking from
//! the same snapshot and hints spread out instead of piling onto one worker.

use std::collections::{HashMap, HashSet};
mod update;

use super::affine::{AffineOrders, Fleet};
use super::order::Order;
use super::placement::ExamPlacement;
use super::{
    ChoiceReason, Constraints, Excluded, ExclusionReason, Exclusions, SchedulingPolicy, exclusion,
};
use crate::health::Availability;
use crate::ids::WorkerId;
use crate::policy::AdminPolicy;
use crate::worker::WorkerView;

/// Knobs of a ranking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RankOptions {
    /// Spread or pack.
    pub policy: SchedulingPolicy,
    /// Prefer workers holding sessions of the exam.
    pub exam_affinity: bool,
    /// Rotate the head of the policy order among this many (1: off).
    pub herd_width: usize,
    /// Seed of this request: ties and the herd rotation depend on it only.
    pub seed: u64,
    /// Return at most this many candidates.
    pub limit: usize,
}

impl Default for RankOptions {
    fn default() -> Self {
        Self {
            policy: SchedulingPolicy::Spread,
            exam_affinity: true,
            herd_width: 3,
            seed: 0,
            limit: 16,
        }
    }
}

/// One ranked candidate.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Candidate {
    /// The worker.
    pub worker: WorkerId,
    /// Why it is here.
    pub reason: ChoiceReason,
    /// Free slots in the snapshot.
    pub available_sessions: u32,
}

/// Result of a ranking.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Ranking {
    /// Candidates, best first, at most `limit`.
    pub candidates: Vec<Candidate>,
}

/// Which workers could take a request, and why the others cannot.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Accounting {
    /// Eligible workers in total.
    pub eligible: usize,
    /// Workers excluded, by reason.
    pub excluded: Exclusions,
}

/// What a constraint selects — a zone, one label, one capability — as a
/// hash of its kind and text: building the index allocates nothing per
/// worker and facet. Two facets may share a hash; the walk checks every
/// candidate against the whole constraint, so a shared hash only costs a
/// longer walk, never a wrong candidate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Facet(u64);

impl Facet {
    fn of(kind: u8, a: &str, b: &str) -> Self {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (kind, a, b).hash(&mut h);
        Self(h.finish())
    }

    fn zone(z: &str) -> Self {
        Self::of(0, z, "")
    }

    fn label(k: &str, v: &str) -> Self {
        Self::of(1, k, v)
    }

    fn capability(c: &str) -> Self {
        Self::of(2, c, "")
    }

    /// The facets `view`'s worker belongs to.
    fn of_worker(view: &WorkerView) -> impl Iterator<Item = Facet> + '_ {
        let d = &view.record.description;
        d.zone
            .iter()
            .map(|z| Facet::zone(z))
            .chain(d.labels.iter().map(|(k, v)| Facet::label(k, v)))
            .chain(d.capabilities.iter().map(|c| Facet::capability(c)))
    }

    /// The facets a request with `constraints` must be in, all of them.
    fn of_constraints(constraints: &Constraints) -> impl Iterator<Item = Facet> + '_ {
        constraints
            .zone
            .iter()
            .map(|z| Facet::zone(z))
            .chain(constraints.labels.iter().map(|(k, v)| Facet::label(k, v)))
            .chain(
                constraints
                    .capabilities
                    .iter()
                    .map(|c| Facet::capability(c)),
            )
    }
}

/// Salt of the affine candidates' herd rotation, so it does not move in
/// step with the policy order's.
const AFFINE_SALT: u64 = 0xA5F1_7E11_0000_0001;

pub(super) fn mix(x: u64) -> u64 {
    // splitmix64 finaliser: a cheap, well-distributed 64-bit mix.
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Why a worker is excluded whatever the request asks: its state.
fn state_exclusion(w: &WorkerView) -> Option<ExclusionReason> {
    use ExclusionReason as R;
    if matches!(w.record.policy, AdminPolicy::Disabled { .. }) {
        return Some(R::Disabled);
    }
    match w.availability {
        Availability::Offline => Some(R::Offline),
        Availability::Unreachable => Some(R::Unreachable),
        Availability::Pending => Some(R::Pending),
        Availability::Unhealthy => Some(R::Unhealthy),
        Availability::Healthy if !w.record.accepting() => Some(R::Draining),
        Availability::Healthy => None,
    }
}

/// The workers of one snapshot, indexed for ranking. Build it once, query
/// it for every request, and bring it to the next snapshot with
/// [`refresh`](Self::refresh).
#[derive(Debug, Clone, Default)]
pub struct RankIndex {
    views: Vec<WorkerView>,
    by_id: HashMap<WorkerId, usize>,
    /// Healthy, accepting workers with a free slot, in the policy order.
    order: Order,
    /// The same, per facet.
    facets: HashMap<Facet, Order>,
    /// Workers excluded by state alone, by reason.
    by_state: Exclusions,
    /// Healthy, accepting workers with no free slot.
    full: u32,
    /// The affine workers of the exams ranked so far, in order.
    affine: AffineOrders,
}

impl RankIndex {
    /// Indexes `views`.
    pub fn new(views: Vec<WorkerView>) -> Self {
        let by_id = views
            .iter()
            .enumerate()
            .map(|(i, v)| (v.id().clone(), i))
            .collect();
        let mut by_state = Exclusions::default();
        let mut open = Vec::new();
        let mut full = 0;
        for (i, v) in views.iter().enumerate() {
            match state_exclusion(v) {
                Some(reason) => by_state.add(reason),
                None if v.available_sessions == 0 => full += 1,
                None => open.push(i),
            }
        }
        let mut members: HashMap<Facet, Vec<usize>> = HashMap::new();
        for &i in &open {
            for facet in Facet::of_worker(&views[i]) {
                members.entry(facet).or_default().push(i);
            }
        }
        let facets = members
            .into_iter()
            .map(|(facet, open)| (facet, Order::of(&open, &views)))
            .collect();
        let order = Order::of(&open, &views);
        Self {
            views,
            by_id,
            order,
            facets,
            by_state,
            full,
            affine: AffineOrders::default(),
        }
    }

    /// The indexed workers.
    pub fn views(&self) -> &[WorkerView] {
        &self.views
    }

    /// One worker.
    pub fn get(&self, id: &WorkerId) -> Option<&WorkerView> {
        self.by_id.get(id).map(|&i| &self.views[i])
    }

    /// How many workers are eligible for a request, and why the others are
    /// not. Without constraints it costs in proportion to `tried`; with
    /// constraints it looks at every worker, so it is meant for explaining
    /// a refusal, not for every decision.
    pub fn account<S: std::hash::BuildHasher>(
        &self,
        constraints: &Constraints,
        tried: &HashSet<WorkerId, S>,
    ) -> Accounting {
        if !constraints.is_empty() {
            let mut excluded = Exclusions::default();
            let mut eligible = 0;
            for v in &self.views {
                match exclusion(v, constraints, tried) {
                    Some(reason) => excluded.add(reason),
                    None => eligible += 1,
                }
            }
            return Accounting { eligible, excluded };
        }
        let mut excluded = self.by_state.clone();
        let (mut eligible, mut full) = (self.order.len() as u32, self.full);
        for id in tried {
            if let Some(v) = self.get(id).filter(|v| state_exclusion(v).is_none()) {
                if v.available_sessions == 0 {
                    full -= 1;
                } else {
                    eligible -= 1;
                }
                excluded.add(ExclusionReason::AlreadyTried);
            }
        }
        if full > 0 {
            *excluded.0.entry(ExclusionReason::Full).or_default() += full;
        }
        Accounting {
            eligible: eligible as usize,
            excluded,
        }
    }

    /// The order a request with `constraints` walks: the whole fleet's, or
    /// that of the smallest facet the constraints name (none: no worker of
    /// that facet can take a session).
    fn order_for(&self, constraints: &Constraints) -> Option<&Order> {
        if constraints.is_empty() {
            return Some(&self.order);
        }
        let mut smallest: Option<&Order> = None;
        for facet in Facet::of_constraints(constraints) {
            let order = self.facets.get(&facet)?;
            if smallest.is_none_or(|s| order.len() < s.len()) {
                smallest = Some(order);
            }
        }
        smallest
    }

    /// Orders the workers that may take a new session for an exam.
    ///
    /// Affine workers tied on sessions and policy keep a fixed order (by
    /// the worker's hash) whatever the request's seed: the herd rotation of
    /// their head alone spreads requests among them.
    pub fn rank(
        &self,
        constraints: &Constraints,
        placement: &ExamPlacement,
        tried: &(impl Excluded + ?Sized),
        options: &RankOptions,
    ) -> Ranking {
        let ok = |i: usize| exclusion(&self.views[i], constraints, tried).is_none();
        let seed = mix(options.seed);
        let limit = options.limit.max(1);
        let candidate = |i: usize, reason: ChoiceReason| Candidate {
            worker: self.views[i].id().clone(),
            reason,
            available_sessions: self.views[i].available_sessions,
        };
        let mut taken: HashSet<usize, foldhash::fast::RandomState> = HashSet::default();
        let mut candidates = Vec::with_capacity(limit);

        if let Some(&i) = placement.sticky.as_ref().and_then(|s| self.by_id.get(s))
            && ok(i)
        {
            taken.insert(i);
            candidates.push(candidate(i, ChoiceReason::Sticky));
        }

        if options.exam_affinity {
            let fleet = Fleet {
                views: &self.views,
                by_id: &self.by_id,
                policy: options.policy,
            };
            let want = limit - candidates.len();
            let mut affine = self
                .affine
                .best(fleet, placement, want, |i| !taken.contains(&i) && ok(i));
            // Herd damping among the most affine workers too: every replica
            // holds the same affinity counts, and would otherwise try the
            // same worker until it is full.
            let width = options.herd_width.clamp(1, affine.len().max(1));
            if affine.len() > 1 {
                affine[..width].rotate_left((mix(seed ^ AFFINE_SALT) % width as u64) as usize);
            }
            for (i, sessions) in affine {
                taken.insert(i);
                candidates.push(candidate(i, ChoiceReason::Affinity { sessions }));
            }
        }

        let head = candidates.len();
        let reason = ChoiceReason::Policy {
            policy: options.policy,
        };
        if let Some(order) = self.order_for(constraints) {
            let all_runs = order.runs();
            let runs: Box<dyn Iterator<Item = &std::ops::Range<usize>>> = match options.policy {
                SchedulingPolicy::Spread => Box::new(all_runs.iter()),
                SchedulingPolicy::Pack => Box::new(all_runs.iter().rev()),
            };
            'runs: for (n, run) in runs.enumerate() {
                let len = run.len();
                let offset = (mix(seed ^ n as u64) % len as u64) as usize;
                for k in 0..len {
                    if candidates.len() >= limit {
                        break 'runs;
                    }
                    let i = order.at(run.start + (offset + k) % len);
                    if !taken.contains(&i) && ok(i) {
                        candidates.push(candidate(i, reason));
                    }
                }
            }
        }
        let rest = &mut candidates[head..];
        let width = options.herd_width.clamp(1, rest.len().max(1));
        if rest.len() > 1 {
            rest[..width].rotate_left((seed % width as u64) as usize);
        }
        Ranking { candidates }
    }
}

/// Ranks `workers` once (indexes them, then queries) and accounts for
/// every worker. For many requests on one snapshot, build a [`RankIndex`]
/// and query it instead.
pub fn rank<S: std::hash::BuildHasher>(
    workers: &[WorkerView],
    constraints: &Constraints,
    placement: &ExamPlacement,
    tried: &HashSet<WorkerId, S>,
    options: &RankOptions,
) -> (Ranking, Accounting) {
    let index = RankIndex::new(workers.to_vec());
    (
        index.rank(constraints, placement, tried, options),
        index.account(constraints, tried),
    )
}
