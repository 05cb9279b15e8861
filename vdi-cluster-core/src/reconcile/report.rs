//! What a reconcile step reports ([`ReconcileReport`]) and the counters a
//! recount checks ([`Counter`], [`Drift`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::PassProgress;
use crate::ids::{ExamId, WorkerId};
use crate::policy::AdminPolicy;
use crate::time::Timestamp;

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

/// What one reconcile step did (a step of the leader's pass, or an
/// operator's pass, which is one step that runs to the end of the
/// keyspace).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReconcileReport {
    /// When the step started.
    pub started_at: Timestamp,
    /// Workers looked at.
    pub workers_checked: u32,
    /// Dispatches read by this step's bounded scan.
    pub dispatches_scanned: u32,
    /// Whether this step's scan reached the end of the keyspace: the pass
    /// is complete (`pass.complete`).
    pub scan_complete: bool,
    /// How far the pass this step belongs to got.
    #[serde(default)]
    pub pass: PassProgress,
    /// Reservations older than the allocate timeout, reclaimed.
    pub reservations_reclaimed: u32,
    /// Dispatches the worker reported gone, removed: by this pass, and,
    /// adopted ones a later report omitted, by the heartbeats this replica
    /// processed since its previous pass.
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
    /// Sessions workers reported running without a record, adopted by the
    /// heartbeats this replica processed since its previous pass (each
    /// adoption is also a `sessionAdopted` event, from any replica).
    pub sessions_adopted: u32,
    /// Stale reservations confirmed by their worker's report: by those
    /// heartbeats, and by the pass's sweep of the reports workers last sent.
    pub reservations_adopted: u32,
    /// Copies a worker ran of a session settled on another, stopped: by
    /// those heartbeats' answers, and by the sweep calling the worker.
    pub duplicates_stopped: u32,
    /// Dispatches restarted workers no longer run, released (`sessionLost`):
    /// by those heartbeats, and by this pass for any they left over.
    #[serde(default)]
    pub sessions_lost: u32,
    /// Whether the mass-failure guard held migration back.
    pub mass_failure_guard: bool,
    /// Policy transitions made by observation.
    pub policy_changes: Vec<PolicyChange>,
    /// Counters found wrong and repaired.
    pub drift: Vec<Drift>,
    /// The sessions of failed workers moved, failed to move and orphaned
    /// by this pass, per exam (exams with none are absent).
    #[serde(default)]
    pub by_exam: BTreeMap<ExamId, ExamMigration>,
}

/// One exam's part of a pass's migrations (SkyPanelV2's migration summary).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExamMigration {
    /// Re-dispatched to a healthy worker.
    pub moved: u32,
    /// Re-dispatch attempted and failed.
    pub failed: u32,
    /// Marked orphaned (`manual`).
    pub orphaned: u32,
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
