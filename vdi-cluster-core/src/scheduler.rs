//! Placement: which workers may take a session, in which order, and why.
//!
//! [`rank`] is pure: it orders candidates from a snapshot of
//! [`WorkerView`]s that may be stale. The backend's compare-and-reserve has
//! the last word, so staleness costs a retry, never correctness.
//!
//! Order: the exam's sticky worker (if eligible), then — with exam affinity
//! on — workers holding most sessions of this exam, then the rest by policy:
//! [`SchedulingPolicy::Spread`] (most free slots first, seed 000's rule) or
//! [`SchedulingPolicy::Pack`] (fullest worker that still has room first).
//! Ties break by a hash of the worker and the request's seed, so the order
//! is deterministic for a given seed; and the head of the policy-ordered
//! list is rotated by the seed among the best `herd_width`, so replicas
//! ranking from the same snapshot do not all pile onto one worker.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::ValidationError;
use crate::health::Availability;
use crate::ids::{ExamId, WorkerId};
use crate::policy::AdminPolicy;
use crate::store::ExamPlacement;
use crate::worker::{MAX_TAG_LEN, MAX_TAGS, WorkerRecord, WorkerView};

/// How workers are ordered after sticky and affinity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum SchedulingPolicy {
    /// Most available slots first (seed 000's default).
    #[default]
    Spread,
    /// Fullest worker that still has room first (depth-first).
    Pack,
}

impl SchedulingPolicy {
    /// Parses `spread` or `pack`.
    pub fn parse(field: &str, text: &str) -> Result<Self, ValidationError> {
        match text.to_ascii_lowercase().as_str() {
            "spread" => Ok(Self::Spread),
            "pack" => Ok(Self::Pack),
            _ => Err(ValidationError::new(field, "must be spread or pack")),
        }
    }
}

/// Requirements a request puts on its worker.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Constraints {
    /// Only workers in this zone.
    #[serde(default)]
    pub zone: Option<String>,
    /// Only workers carrying all of these labels with these values.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Only workers with all of these capabilities.
    #[serde(default)]
    pub capabilities: BTreeSet<String>,
}

impl Constraints {
    /// Whether `worker` satisfies every constraint.
    pub fn matches(&self, worker: &WorkerRecord) -> bool {
        let d = &worker.description;
        self.zone
            .as_ref()
            .is_none_or(|z| d.zone.as_ref() == Some(z))
            && self.labels.iter().all(|(k, v)| d.labels.get(k) == Some(v))
            && self.capabilities.is_subset(&d.capabilities)
    }

    /// Whether there is no constraint at all.
    pub fn is_empty(&self) -> bool {
        self.zone.is_none() && self.labels.is_empty() && self.capabilities.is_empty()
    }

    /// Bounds on sizes; errors name the field.
    pub fn validate(&self) -> Result<(), ValidationError> {
        let tag = |field: &str, s: &str| {
            if s.is_empty() || s.len() > MAX_TAG_LEN {
                Err(ValidationError::new(
                    field,
                    format!("must be 1 to {MAX_TAG_LEN} characters"),
                ))
            } else {
                Ok(())
            }
        };
        if let Some(z) = &self.zone {
            tag("constraints.zone", z)?;
        }
        if self.labels.len() > MAX_TAGS || self.capabilities.len() > MAX_TAGS {
            return Err(ValidationError::new(
                "constraints",
                format!("at most {MAX_TAGS} labels and {MAX_TAGS} capabilities"),
            ));
        }
        for (k, v) in &self.labels {
            tag("constraints.labels", k)?;
            tag("constraints.labels", v)?;
        }
        for c in &self.capabilities {
            tag("constraints.capabilities", c)?;
        }
        Ok(())
    }
}

/// Why a worker was not a candidate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ExclusionReason {
    /// Disabled by an operator.
    Disabled,
    /// Past the hard timeout or deregistered.
    Offline,
    /// Past the heartbeat TTL.
    Unreachable,
    /// Never heard from.
    Pending,
    /// Resource thresholds exceeded.
    Unhealthy,
    /// Draining or drained.
    Draining,
    /// Does not match the request's zone, labels or capabilities.
    ConstraintMismatch,
    /// Already tried by this request.
    AlreadyTried,
    /// No free slot.
    Full,
}

impl ExclusionReason {
    /// Lowercase name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Disabled => "disabled",
            Self::Offline => "offline",
            Self::Unreachable => "unreachable",
            Self::Pending => "pending",
            Self::Unhealthy => "unhealthy",
            Self::Draining => "draining",
            Self::ConstraintMismatch => "constraint mismatch",
            Self::AlreadyTried => "already tried",
            Self::Full => "full",
        }
    }
}

/// Why `worker` cannot take a new session for this request, if it cannot.
pub fn exclusion(
    worker: &WorkerView,
    constraints: &Constraints,
    tried: &HashSet<WorkerId>,
) -> Option<ExclusionReason> {
    use ExclusionReason as R;
    if matches!(worker.record.policy, AdminPolicy::Disabled { .. }) {
        return Some(R::Disabled);
    }
    match worker.availability {
        Availability::Offline => return Some(R::Offline),
        Availability::Unreachable => return Some(R::Unreachable),
        Availability::Pending => return Some(R::Pending),
        Availability::Unhealthy => return Some(R::Unhealthy),
        Availability::Healthy => {}
    }
    if !worker.record.accepting() {
        return Some(R::Draining);
    }
    if !constraints.matches(&worker.record) {
        return Some(R::ConstraintMismatch);
    }
    if tried.contains(worker.id()) {
        return Some(R::AlreadyTried);
    }
    if worker.available_sessions == 0 {
        return Some(R::Full);
    }
    None
}

/// How many workers were excluded for each reason.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Exclusions(pub BTreeMap<ExclusionReason, u32>);

impl Exclusions {
    /// Counts one more worker excluded for `reason`.
    pub fn add(&mut self, reason: ExclusionReason) {
        *self.0.entry(reason).or_default() += 1;
    }

    /// Workers excluded for `reason`.
    pub fn count(&self, reason: ExclusionReason) -> u32 {
        self.0.get(&reason).copied().unwrap_or(0)
    }

    /// Workers excluded for any reason.
    pub fn total(&self) -> u32 {
        self.0.values().sum()
    }
}

impl fmt::Display for Exclusions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("none excluded");
        }
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|(r, n)| format!("{n} {}", r.name()))
            .collect();
        f.write_str(&parts.join(", "))
    }
}

/// Why a candidate is where it is in the order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum ChoiceReason {
    /// The exam's sticky worker.
    Sticky,
    /// Holds sessions of this exam.
    Affinity {
        /// Sessions of the exam on it.
        sessions: u32,
    },
    /// Ordered by the scheduling policy.
    Policy {
        /// The policy.
        policy: SchedulingPolicy,
    },
}

impl fmt::Display for ChoiceReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sticky => f.write_str("sticky worker of the exam"),
            Self::Affinity { sessions } => write!(f, "holds {sessions} session(s) of the exam"),
            Self::Policy {
                policy: SchedulingPolicy::Spread,
            } => f.write_str("most free slots (spread)"),
            Self::Policy {
                policy: SchedulingPolicy::Pack,
            } => f.write_str("fullest with room (pack)"),
        }
    }
}

/// One ranked candidate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Candidate {
    /// The worker.
    pub worker: WorkerId,
    /// Why it is here.
    pub reason: ChoiceReason,
    /// Free slots in the snapshot.
    pub available_sessions: u32,
}

/// Knobs of [`rank`].
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

/// Result of [`rank`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Ranking {
    /// Candidates, best first, at most `limit`.
    pub candidates: Vec<Candidate>,
    /// Eligible workers in total (may exceed `candidates.len()`).
    pub eligible: usize,
    /// Workers excluded, by reason.
    pub excluded: Exclusions,
}

fn mix(x: u64) -> u64 {
    // splitmix64 finaliser: a cheap, well-distributed 64-bit mix.
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Orders the workers that may take a new session for an exam.
pub fn rank(
    workers: &[WorkerView],
    constraints: &Constraints,
    placement: &ExamPlacement,
    tried: &HashSet<WorkerId>,
    options: &RankOptions,
) -> Ranking {
    let mut excluded = Exclusions::default();
    let mut sticky: Option<&WorkerView> = None;
    let mut affine: Vec<(&WorkerView, u32)> = Vec::new();
    let mut rest: Vec<&WorkerView> = Vec::new();
    for w in workers {
        if let Some(reason) = exclusion(w, constraints, tried) {
            excluded.add(reason);
            continue;
        }
        if placement.sticky.as_ref() == Some(w.id()) {
            sticky = Some(w);
            continue;
        }
        let sessions = if options.exam_affinity {
            placement.affinity.get(w.id()).copied().unwrap_or(0)
        } else {
            0
        };
        if sessions > 0 {
            affine.push((w, sessions));
        } else {
            rest.push(w);
        }
    }
    let eligible = usize::from(sticky.is_some()) + affine.len() + rest.len();
    let seed = mix(options.seed);
    let tie = |w: &WorkerView| mix(w.tiebreak ^ seed);
    // Higher sort key = better.
    let policy_key = |w: &WorkerView| -> i64 {
        match options.policy {
            SchedulingPolicy::Spread => i64::from(w.available_sessions),
            SchedulingPolicy::Pack => -i64::from(w.available_sessions),
        }
    };
    let limit = options.limit.max(1);
    let mut candidates = Vec::with_capacity(limit.min(eligible));
    if let Some(w) = sticky {
        candidates.push(Candidate {
            worker: w.id().clone(),
            reason: ChoiceReason::Sticky,
            available_sessions: w.available_sessions,
        });
    }
    affine.sort_by(|(a, na), (b, nb)| {
        nb.cmp(na)
            .then_with(|| policy_key(b).cmp(&policy_key(a)))
            .then_with(|| tie(b).cmp(&tie(a)))
    });
    candidates.extend(affine.iter().take(limit).map(|(w, sessions)| Candidate {
        worker: w.id().clone(),
        reason: ChoiceReason::Affinity {
            sessions: *sessions,
        },
        available_sessions: w.available_sessions,
    }));
    let room = limit.saturating_sub(candidates.len());
    if room > 0 && !rest.is_empty() {
        let mut keyed: Vec<((i64, u64), &WorkerView)> =
            rest.iter().map(|w| ((policy_key(w), tie(w)), *w)).collect();
        let by_best = |a: &((i64, u64), &WorkerView), b: &((i64, u64), &WorkerView)| b.0.cmp(&a.0);
        if keyed.len() > room {
            keyed.select_nth_unstable_by(room - 1, by_best);
            keyed.truncate(room);
        }
        keyed.sort_unstable_by(by_best);
        let width = options.herd_width.clamp(1, keyed.len());
        keyed[..width].rotate_left((seed % width as u64) as usize);
        candidates.extend(keyed.into_iter().map(|(_, w)| Candidate {
            worker: w.id().clone(),
            reason: ChoiceReason::Policy {
                policy: options.policy,
            },
            available_sessions: w.available_sessions,
        }));
    }
    candidates.truncate(limit);
    Ranking {
        candidates,
        eligible,
        excluded,
    }
}

/// Why an allocation found no worker: operators read this in logs and in
/// the API's 503.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(rename_all = "camelCase")]
#[error("no worker can take a session for exam {exam_id}: {workers} worker(s) known; excluded: {excluded}{}",
    if *.failed_calls > 0 { format!("; {} worker call(s) failed", failed_calls) } else { String::new() })]
pub struct NoCapacity {
    /// The exam.
    pub exam_id: ExamId,
    /// Workers in the snapshot.
    pub workers: usize,
    /// Workers excluded, by reason, in the last ranking.
    pub excluded: Exclusions,
    /// Worker allocate calls that failed or timed out in this request.
    pub failed_calls: u32,
}

/// One worker's share of a prewarm.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PrewarmShare {
    /// The worker.
    pub worker: WorkerId,
    /// Machines to prewarm on it.
    pub count: u32,
}

/// Splits a prewarm of `requested` machines across workers in proportion to
/// their available slots (largest remainder). The total is
/// `min(requested, sum of available, max)`; no share exceeds its worker's
/// available slots; workers with no share are left out. Ties in the
/// remainder go to more available slots, then to the lower worker code.
pub fn plan_prewarm(available: &[(WorkerId, u32)], requested: u32, max: u32) -> Vec<PrewarmShare> {
    let sum: u64 = available.iter().map(|(_, a)| u64::from(*a)).sum();
    let total = u64::from(requested).min(sum).min(u64::from(max));
    if total == 0 {
        return Vec::new();
    }
    // quota_i = total * a_i / sum, as floor plus remainder numerator.
    let mut shares: Vec<(u64, u64, &WorkerId, u32)> = available
        .iter()
        .map(|(w, a)| {
            let num = total * u64::from(*a);
            (num / sum, num % sum, w, *a)
        })
        .collect();
    let assigned: u64 = shares.iter().map(|s| s.0).sum();
    let mut left = total - assigned;
    let mut order: Vec<usize> = (0..shares.len()).collect();
    order.sort_by(|&i, &j| {
        let (a, b) = (&shares[i], &shares[j]);
        b.1.cmp(&a.1).then(b.3.cmp(&a.3)).then(a.2.cmp(b.2))
    });
    for i in order {
        if left == 0 {
            break;
        }
        if shares[i].0 < u64::from(shares[i].3) {
            shares[i].0 += 1;
            left -= 1;
        }
    }
    shares
        .into_iter()
        .filter(|s| s.0 > 0)
        .map(|(count, _, worker, _)| PrewarmShare {
            worker: worker.clone(),
            count: u32::try_from(count).unwrap_or(u32::MAX),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(id: &str) -> WorkerId {
        WorkerId::parse("code", id).unwrap()
    }

    #[test]
    fn prewarm_largest_remainder() {
        let plan = plan_prewarm(&[(w("a"), 10), (w("b"), 5), (w("c"), 5)], 7, 80);
        let total: u32 = plan.iter().map(|s| s.count).sum();
        assert_eq!(total, 7);
        // Quotas 3.5, 1.75, 1.75: floors 3, 1, 1; the two largest remainders
        // (0.75) get the last two machines.
        let counts: Vec<u32> = plan.iter().map(|s| s.count).collect();
        assert_eq!(counts, vec![3, 2, 2]);
        assert_eq!(plan_prewarm(&[(w("a"), 3)], 100, 80)[0].count, 3);
        assert_eq!(plan_prewarm(&[(w("a"), 300)], 100, 80)[0].count, 80);
        assert!(plan_prewarm(&[(w("a"), 0)], 5, 80).is_empty());
    }
}
