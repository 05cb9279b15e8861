//! Ranking candidates, from an index built once per snapshot.
//!
//! [`RankIndex::new`] sorts the workers that can take a session as far as
//! their state goes (healthy, accepting, a free slot) by free slots, in runs
//! of equal free slots ordered by a hash of the worker's code. A query then
//! touches only the sticky worker, the exam's affine workers and the first
//! few of the policy order: its cost does not grow with the fleet when the
//! request has no constraints. Within a run of equally good workers the
//! walk starts at an offset drawn from the request's seed, and the first
//! `herd_width` candidates are rotated by it, so replicas ranking from the
//! same snapshot spread out instead of piling onto one worker.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::Range;

use super::{ChoiceReason, Constraints, ExclusionReason, Exclusions, SchedulingPolicy, exclusion};
use crate::health::Availability;
use crate::ids::WorkerId;
use crate::policy::AdminPolicy;
use crate::worker::WorkerView;

/// The exam's placement hints, as the store last recorded them: the
/// sticky worker and the exam's sessions per worker.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExamPlacement {
    /// The sticky worker, if the key has not expired.
    pub sticky: Option<WorkerId>,
    /// Sessions of this exam per worker.
    pub affinity: BTreeMap<WorkerId, u32>,
}

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
    /// Eligible workers in total (may exceed `candidates.len()`).
    pub eligible: usize,
    /// Workers excluded, by reason.
    pub excluded: Exclusions,
}

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

/// The workers of one snapshot, indexed for ranking. Build it once per
/// snapshot and query it for every request.
#[derive(Debug, Clone, Default)]
pub struct RankIndex {
    views: Vec<WorkerView>,
    by_id: HashMap<WorkerId, usize>,
    /// Healthy, accepting workers with a free slot: most free slots first,
    /// then by the hash of their code.
    open: Vec<usize>,
    /// Runs of equal free slots in `open`.
    runs: Vec<Range<usize>>,
    /// Workers excluded by state alone, by reason.
    by_state: Exclusions,
    /// Healthy, accepting workers with no free slot.
    full: Vec<usize>,
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
        let mut full = Vec::new();
        for (i, v) in views.iter().enumerate() {
            match state_exclusion(v) {
                Some(reason) => by_state.add(reason),
                None if v.available_sessions == 0 => full.push(i),
                None => open.push(i),
            }
        }
        open.sort_unstable_by(|&a, &b| {
            let (va, vb) = (&views[a], &views[b]);
            vb.available_sessions
                .cmp(&va.available_sessions)
                .then(va.tiebreak.cmp(&vb.tiebreak))
        });
        let mut runs = Vec::new();
        let mut start = 0;
        for k in 1..=open.len() {
            if k == open.len()
                || views[open[k]].available_sessions != views[open[start]].available_sessions
            {
                runs.push(start..k);
                start = k;
            }
        }
        Self {
            views,
            by_id,
            open,
            runs,
            by_state,
            full,
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

    /// How many workers are eligible, and why the others are not.
    fn account(&self, constraints: &Constraints, tried: &HashSet<WorkerId>) -> (usize, Exclusions) {
        if !constraints.is_empty() {
            let mut excluded = Exclusions::default();
            let mut eligible = 0;
            for v in &self.views {
                match exclusion(v, constraints, tried) {
                    Some(reason) => excluded.add(reason),
                    None => eligible += 1,
                }
            }
            return (eligible, excluded);
        }
        let mut excluded = self.by_state.clone();
        let (mut eligible, mut full) = (self.open.len() as u32, self.full.len() as u32);
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
        (eligible as usize, excluded)
    }

    /// Orders the workers that may take a new session for an exam.
    pub fn rank(
        &self,
        constraints: &Constraints,
        placement: &ExamPlacement,
        tried: &HashSet<WorkerId>,
        options: &RankOptions,
    ) -> Ranking {
        let (eligible, excluded) = self.account(constraints, tried);
        let ok = |i: usize| exclusion(&self.views[i], constraints, tried).is_none();
        let seed = mix(options.seed);
        let limit = options.limit.max(1);
        let candidate = |i: usize, reason: ChoiceReason| Candidate {
            worker: self.views[i].id().clone(),
            reason,
            available_sessions: self.views[i].available_sessions,
        };
        let mut taken: HashSet<usize> = HashSet::new();
        let mut candidates = Vec::with_capacity(limit.min(eligible));

        if let Some(&i) = placement.sticky.as_ref().and_then(|s| self.by_id.get(s))
            && ok(i)
        {
            taken.insert(i);
            candidates.push(candidate(i, ChoiceReason::Sticky));
        }

        if options.exam_affinity {
            let policy_key = |i: usize| -> i64 {
                let free = i64::from(self.views[i].available_sessions);
                if options.policy == SchedulingPolicy::Pack {
                    -free
                } else {
                    free
                }
            };
            let tie = |i: usize| mix(self.views[i].tiebreak ^ seed);
            let mut affine: Vec<(usize, u32)> = placement
                .affinity
                .iter()
                .filter_map(|(w, n)| self.by_id.get(w).map(|&i| (i, *n)))
                .filter(|&(i, n)| n > 0 && !taken.contains(&i) && ok(i))
                .collect();
            affine.sort_unstable_by(|&(a, na), &(b, nb)| {
                nb.cmp(&na)
                    .then_with(|| policy_key(b).cmp(&policy_key(a)))
                    .then_with(|| tie(b).cmp(&tie(a)))
            });
            for (i, sessions) in affine.into_iter().take(limit - candidates.len()) {
                taken.insert(i);
                candidates.push(candidate(i, ChoiceReason::Affinity { sessions }));
            }
        }

        let head = candidates.len();
        let reason = ChoiceReason::Policy {
            policy: options.policy,
        };
        let runs: Box<dyn Iterator<Item = &Range<usize>>> = match options.policy {
            SchedulingPolicy::Spread => Box::new(self.runs.iter()),
            SchedulingPolicy::Pack => Box::new(self.runs.iter().rev()),
        };
        'runs: for (n, run) in runs.enumerate() {
            let len = run.len();
            let offset = (mix(seed ^ n as u64) % len as u64) as usize;
            for k in 0..len {
                if candidates.len() >= limit {
                    break 'runs;
                }
                let i = self.open[run.start + (offset + k) % len];
                if !taken.contains(&i) && ok(i) {
                    candidates.push(candidate(i, reason));
                }
            }
        }
        let rest = &mut candidates[head..];
        let width = options.herd_width.clamp(1, rest.len().max(1));
        if rest.len() > 1 {
            rest[..width].rotate_left((seed % width as u64) as usize);
        }
        Ranking {
            candidates,
            eligible,
            excluded,
        }
    }
}

/// Ranks `workers` once (indexes them, then queries). For many requests on
/// one snapshot, build a [`RankIndex`] and query it instead.
pub fn rank(
    workers: &[WorkerView],
    constraints: &Constraints,
    placement: &ExamPlacement,
    tried: &HashSet<WorkerId>,
    options: &RankOptions,
) -> Ranking {
    RankIndex::new(workers.to_vec()).rank(constraints, placement, tried, options)
}
