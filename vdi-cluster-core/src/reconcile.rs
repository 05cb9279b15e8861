//! What a reconcile pass decides, as values: the failure policy, the
//! report of a pass and the counters a recount checks.
//!
//! Pure: no clock, no store. The pass that reads the records and applies
//! the decisions is orchestration (`ClusterService::reconcile`).

use serde::{Deserialize, Serialize};

use crate::ids::{ExamId, WorkerId};
use crate::policy::AdminPolicy;
use crate::time::Timestamp;
use crate::validation::ValidationError;

/// What happens to sessions on a worker that failed (offline past the hard
/// timeout, force-disabled, removed, or restarted) — seed 002's policies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum FailurePolicy {
    /// Re-dispatch each session to a healthy worker.
    #[default]
    Automatic,
    /// Mark them orphaned and alert until an operator evacuates them.
    Manual,
    /// Leave them.
    None,
}

impl FailurePolicy {
    /// `automatic`, `manual` or `none`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Automatic => "automatic",
            Self::Manual => "manual",
            Self::None => "none",
        }
    }

    /// Parses `automatic`, `manual` or `none`.
    pub fn parse(field: &str, text: &str) -> Result<Self, ValidationError> {
        match text.to_ascii_lowercase().as_str() {
            "automatic" => Ok(Self::Automatic),
            "manual" => Ok(Self::Manual),
            "none" => Ok(Self::None),
            _ => Err(ValidationError::new(
                field,
                "must be automatic, manual or none",
            )),
        }
    }
}

/// A policy change made by observation during a pass.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyChange {
    /// The worker.
    pub worker: WorkerId,
    /// Before.
    pub from: AdminPolicy,
    /// After.
    pub to: AdminPolicy,
}

/// What one reconcile pass did.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReconcileReport {
    /// When the pass started.
    pub started_at: Timestamp,
    /// Workers looked at.
    pub workers_checked: u32,
    /// Dispatches read by the bounded scan.
    pub dispatches_scanned: u32,
    /// Whether the scan reached the end of the keyspace in this pass.
    pub scan_complete: bool,
    /// Reservations older than the allocate timeout, reclaimed.
    pub reservations_reclaimed: u32,
    /// Dispatches the worker reported gone, removed.
    pub gone_removed: u32,
    /// Dispatches older than the stale age with no live session, removed.
    pub stale_removed: u32,
    /// Dispatches found on failed workers.
    pub failed_worker_sessions: u32,
    /// Of those, re-dispatched to a healthy worker.
    pub migrated: u32,
    /// Of those, re-dispatch attempted and failed.
    pub migration_failed: u32,
    /// Of those, marked orphaned (`manual`).
    pub orphaned: u32,
    /// Of those, left where they are (policy `none`, mass-failure guard, no
    /// healthy target).
    pub left_in_place: u32,
    /// Whether the mass-failure guard held migration back.
    pub mass_failure_guard: bool,
    /// Policy transitions made by observation.
    pub policy_changes: Vec<PolicyChange>,
    /// Counters found wrong and repaired.
    pub drift: Vec<Drift>,
}

/// A counter a recount checks.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(tag = "counter", rename_all = "camelCase")]
pub enum Counter {
    /// Dispatches on a worker.
    #[serde(rename_all = "camelCase")]
    WorkerDispatched {
        /// The worker.
        worker: WorkerId,
    },
    /// Sessions of an exam on a worker (affinity).
    #[serde(rename_all = "camelCase")]
    ExamAffinity {
        /// The exam.
        exam_id: ExamId,
        /// The worker.
        worker: WorkerId,
    },
}

/// A counter that disagreed with a recount of the dispatch records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Drift {
    /// Which counter.
    #[serde(flatten)]
    pub counter: Counter,
    /// What it said.
    pub stored: i64,
    /// What the records say.
    pub actual: i64,
}
