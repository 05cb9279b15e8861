//! Placement: which workers may take a session, in which order, and why.
//!
//! [`rank`] is pure: it orders candidates from a snapshot of
//! [`WorkerView`]s that may be stale. The backend's compare-and-reserve has
//! the last word, so staleness costs a retry, never correctness.
//!
//! Order: the exam's sticky worker (if eligible), then — with exam affinity
//! on — workers holding most sessions of this exam, then the rest by policy:
//! [`SchedulingPolicy::Spread`] (most free slots first, the exam platform's rule) or
//! [`SchedulingPolicy::Pack`] (fullest worker that still has room first).
//! Ties break by a hash of the worker and the request's seed (among affine
//! workers, by the worker's fixed hash alone), so the order is deterministic
//! for a given seed; and the head of the policy-ordered list (and of the
//! affine workers) is rotated by the seed among the best `herd_width`, so
//! replicas ranking from the same snapshot do not all pile onto one worker.

mod affine;
mod order;
mod placement;
mod prewarm;
mod rank;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt;
use std::hash::BuildHasher;

use serde::{Deserialize, Serialize};

use crate::health::Availability;
use crate::ids::{ExamId, WorkerId};
use crate::policy::AdminPolicy;
use crate::validation::ValidationError;
use crate::worker::{MAX_TAG_LEN, MAX_TAGS, WorkerDescription, WorkerRecord, WorkerView};

pub use placement::{ExamPlacement, PlacementRevision};
pub use prewarm::{PrewarmShare, plan_prewarm};
pub use rank::{Accounting, Candidate, RankIndex, RankOptions, Ranking, rank};

/// A set of worker codes under a fast, randomly seeded hash: the sets a
/// ranking looks its candidates up in (tried, found full), where the
/// standard library's SipHash of every code skipped was a measurable part
/// of a decision.
pub type WorkerSet = HashSet<WorkerId, foldhash::fast::RandomState>;

/// The workers a ranking skips as already tried or known full: one set,
/// or several read as their union without copying them into one.
pub trait Excluded {
    /// Whether `worker` is skipped.
    fn excludes(&self, worker: &WorkerId) -> bool;
}

impl<S: BuildHasher> Excluded for HashSet<WorkerId, S> {
    fn excludes(&self, worker: &WorkerId) -> bool {
        !self.is_empty() && self.contains(worker)
    }
}

impl<T: Excluded + ?Sized> Excluded for [&T] {
    fn excludes(&self, worker: &WorkerId) -> bool {
        self.iter().any(|set| set.excludes(worker))
    }
}

/// How workers are ordered after sticky and affinity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum SchedulingPolicy {
    /// Most available slots first (the exam platform's default).
    #[default]
    Spread,
    /// Fullest worker that still has room first (depth-first).
    Pack,
}

impl SchedulingPolicy {
    /// `spread` or `pack`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Spread => "spread",
            Self::Pack => "pack",
        }
    }

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
        self.matches_description(&worker.description)
    }

    /// Whether a worker described by `d` satisfies every constraint.
    pub fn matches_description(&self, d: &WorkerDescription) -> bool {
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
            if s.is_empty() || s.chars().count() > MAX_TAG_LEN || s.chars().any(char::is_control) {
                Err(ValidationError::new(
                    field,
                    format!("must be 1 to {MAX_TAG_LEN} characters without control characters"),
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
    tried: &(impl Excluded + ?Sized),
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
    if tried.excludes(worker.id()) {
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
