//! Control plane → operators: what a reconcile pass did
//! (`POST /api/vdi/workers/reconcile` answers [`ReconcileReportJson`]; the
//! `reconciled` event carries it too), and a worker's admin policy as the
//! report and the events show it ([`PolicyJson`]).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use vdi_cluster_core::reconcile::PassProgress;
use vdi_cluster_core::service::{PolicyChange, ReconcileReport};
use vdi_cluster_core::store::{Counter, Drift};
use vdi_cluster_core::{AdminPolicy, Timestamp};

/// A worker's admin policy: `{"state": "active"}`,
/// `{"state": "draining", "deadline": ms|null}`, `{"state": "drained"}`,
/// `{"state": "disabled", "forced": bool}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "state", rename_all = "camelCase")]
pub enum PolicyJson {
    /// Takes new sessions.
    Active,
    /// Keeps its sessions, takes no new ones.
    Draining {
        /// After this instant (ms since the epoch), remaining sessions are
        /// force-disabled.
        deadline: Option<u64>,
    },
    /// Was draining and has been observed empty.
    Drained,
    /// Out of service.
    Disabled {
        /// Disabled while it still had sessions (they were dropped).
        forced: bool,
    },
}

impl From<&AdminPolicy> for PolicyJson {
    fn from(p: &AdminPolicy) -> Self {
        match *p {
            AdminPolicy::Active => Self::Active,
            AdminPolicy::Draining { deadline } => Self::Draining {
                deadline: deadline.map(Timestamp::as_millis),
            },
            AdminPolicy::Drained => Self::Drained,
            AdminPolicy::Disabled { forced } => Self::Disabled { forced },
        }
    }
}

/// A policy change a reconcile pass made by observation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PolicyChangeJson {
    /// The worker.
    pub worker: String,
    /// Before.
    pub from: PolicyJson,
    /// After.
    pub to: PolicyJson,
}

impl From<&PolicyChange> for PolicyChangeJson {
    fn from(c: &PolicyChange) -> Self {
        Self {
            worker: c.worker.to_string(),
            from: PolicyJson::from(&c.from),
            to: PolicyJson::from(&c.to),
        }
    }
}

/// Which counter drifted: `{"counter": "workerDispatched", "worker"}` or
/// `{"counter": "examAffinity", "examId", "worker"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(
    tag = "counter",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum CounterJson {
    /// Dispatches on a worker.
    WorkerDispatched {
        /// The worker.
        worker: String,
    },
    /// Sessions of an exam on a worker (affinity).
    ExamAffinity {
        /// The exam.
        exam_id: String,
        /// The worker.
        worker: String,
    },
}

/// A counter that disagreed with a recount of the dispatch records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DriftJson {
    /// Which counter, inline.
    #[serde(flatten)]
    pub counter: CounterJson,
    /// What it said.
    pub stored: i64,
    /// What the records say.
    pub actual: i64,
}

impl From<&Drift> for DriftJson {
    fn from(d: &Drift) -> Self {
        let counter = match &d.counter {
            Counter::WorkerDispatched { worker } => CounterJson::WorkerDispatched {
                worker: worker.to_string(),
            },
            Counter::ExamAffinity { exam_id, worker } => CounterJson::ExamAffinity {
                exam_id: exam_id.to_string(),
                worker: worker.to_string(),
            },
        };
        Self {
            counter,
            stored: d.stored,
            actual: d.actual,
        }
    }
}

/// How far the reconcile pass a report's step belongs to got. A pass is
/// the steps from the start of the dispatch keyspace to its end; the
/// leader runs one step at a time, resuming from the cursor it saved
/// beside its lease. An operator's pass (`POST …/workers/reconcile`) is
/// one step that runs to the end of the keyspace, bounded.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PassProgressJson {
    /// When the pass began, its first step (ms since the epoch).
    pub started_at: u64,
    /// Its steps so far, this one included.
    pub steps: u32,
    /// Dispatches its scan has read so far, this step's included.
    pub dispatches_scanned: u64,
    /// Whether this step reached the end of the keyspace: the pass is
    /// complete.
    pub complete: bool,
    /// Whether this step resumed from a saved cursor (`false`: it began
    /// the pass).
    pub resumed: bool,
    /// Every dispatch has been checked since this instant (ms since the
    /// epoch), or was created after it: the start of the last complete
    /// pass. `null` until a pass completes.
    pub checked_since: Option<u64>,
}

impl From<&PassProgress> for PassProgressJson {
    fn from(p: &PassProgress) -> Self {
        Self {
            started_at: p.started_at.as_millis(),
            steps: p.steps,
            dispatches_scanned: p.dispatches_scanned,
            complete: p.complete,
            resumed: p.resumed,
            checked_since: p.checked_since.map(Timestamp::as_millis),
        }
    }
}

/// What one reconcile step did: a step of the leader's pass, or an
/// operator's pass (one step to the end of the keyspace).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReconcileReportJson {
    /// When the step started (ms since the epoch).
    pub started_at: u64,
    /// Workers looked at.
    pub workers_checked: u32,
    /// Dispatches read by this step's bounded scan.
    pub dispatches_scanned: u32,
    /// Whether this step's scan reached the end of the keyspace (the pass
    /// is complete: `pass.complete`).
    pub scan_complete: bool,
    /// How far the pass this step belongs to got (absent from reports of
    /// earlier releases).
    #[serde(default)]
    pub pass: PassProgressJson,
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
    /// heartbeats this replica processed since its previous pass.
    pub sessions_adopted: u32,
    /// Stale reservations confirmed by their worker's report.
    pub reservations_adopted: u32,
    /// Copies of a session settled on another worker, stopped.
    pub duplicates_stopped: u32,
    /// Sessions restarted workers no longer run, released (`sessionLost`):
    /// by the heartbeats this replica processed since its previous pass,
    /// and by the pass for any they left over (absent from reports of
    /// earlier releases).
    #[serde(default)]
    pub sessions_lost: u32,
    /// Whether the mass-failure guard held migration back.
    pub mass_failure_guard: bool,
    /// Policy transitions made by observation.
    pub policy_changes: Vec<PolicyChangeJson>,
    /// Counters found wrong and repaired.
    pub drift: Vec<DriftJson>,
    /// The sessions of failed workers moved, failed to move and orphaned,
    /// per exam (SkyPanelV2's migration summary), by exam id.
    #[serde(default)]
    pub by_exam: Vec<ExamMigrationJson>,
}

/// One exam's part of a reconcile pass's migrations.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExamMigrationJson {
    /// The exam.
    pub exam_id: String,
    /// Sessions re-dispatched to a healthy worker.
    pub moved: u32,
    /// Sessions whose re-dispatch failed.
    pub failed: u32,
    /// Sessions marked orphaned (`manual` failure policy).
    pub orphaned: u32,
}

impl From<&ReconcileReport> for ReconcileReportJson {
    fn from(r: &ReconcileReport) -> Self {
        Self {
            started_at: r.started_at.as_millis(),
            workers_checked: r.workers_checked,
            dispatches_scanned: r.dispatches_scanned,
            scan_complete: r.scan_complete,
            pass: PassProgressJson::from(&r.pass),
            reservations_reclaimed: r.reservations_reclaimed,
            gone_removed: r.gone_removed,
            stale_removed: r.stale_removed,
            failed_worker_sessions: r.failed_worker_sessions,
            migrated: r.migrated,
            migration_failed: r.migration_failed,
            orphaned: r.orphaned,
            left_in_place: r.left_in_place,
            sessions_adopted: r.sessions_adopted,
            reservations_adopted: r.reservations_adopted,
            duplicates_stopped: r.duplicates_stopped,
            sessions_lost: r.sessions_lost,
            mass_failure_guard: r.mass_failure_guard,
            policy_changes: r
                .policy_changes
                .iter()
                .map(PolicyChangeJson::from)
                .collect(),
            drift: r.drift.iter().map(DriftJson::from).collect(),
            by_exam: r
                .by_exam
                .iter()
                .map(|(exam, m)| ExamMigrationJson {
                    exam_id: exam.to_string(),
                    moved: m.moved,
                    failed: m.failed,
                    orphaned: m.orphaned,
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use vdi_cluster_core::{ExamId, WorkerId};

    use super::*;

    fn w1() -> WorkerId {
        WorkerId::parse("code", "w1").unwrap()
    }

    #[test]
    fn reconcile_report_field_names() {
        let report = ReconcileReport {
            started_at: Timestamp(7),
            workers_checked: 1,
            dispatches_scanned: 2,
            scan_complete: true,
            pass: PassProgress {
                started_at: Timestamp(5),
                steps: 3,
                dispatches_scanned: 15_996,
                complete: true,
                resumed: true,
                checked_since: Some(Timestamp(5)),
            },
            reservations_reclaimed: 3,
            gone_removed: 4,
            stale_removed: 5,
            failed_worker_sessions: 6,
            migrated: 7,
            migration_failed: 8,
            orphaned: 9,
            left_in_place: 10,
            sessions_adopted: 11,
            reservations_adopted: 12,
            duplicates_stopped: 13,
            sessions_lost: 14,
            mass_failure_guard: false,
            policy_changes: vec![PolicyChange {
                worker: w1(),
                from: AdminPolicy::Draining {
                    deadline: Some(Timestamp(9)),
                },
                to: AdminPolicy::Drained,
            }],
            drift: vec![
                Drift {
                    counter: Counter::WorkerDispatched { worker: w1() },
                    stored: 2,
                    actual: 1,
                },
                Drift {
                    counter: Counter::ExamAffinity {
                        exam_id: ExamId::parse("examId", "e1").unwrap(),
                        worker: w1(),
                    },
                    stored: -1,
                    actual: 0,
                },
            ],
            by_exam: [(
                ExamId::parse("examId", "e1").unwrap(),
                vdi_cluster_core::service::ExamMigration {
                    moved: 1,
                    failed: 2,
                    orphaned: 3,
                },
            )]
            .into(),
        };
        assert_eq!(
            serde_json::to_value(ReconcileReportJson::from(&report)).unwrap(),
            json!({
                "startedAt": 7, "workersChecked": 1, "dispatchesScanned": 2,
                "scanComplete": true,
                "pass": {
                    "startedAt": 5, "steps": 3, "dispatchesScanned": 15_996,
                    "complete": true, "resumed": true, "checkedSince": 5,
                },
                "reservationsReclaimed": 3, "goneRemoved": 4,
                "staleRemoved": 5, "failedWorkerSessions": 6, "migrated": 7,
                "migrationFailed": 8, "orphaned": 9, "leftInPlace": 10,
                "sessionsAdopted": 11, "reservationsAdopted": 12, "duplicatesStopped": 13,
                "sessionsLost": 14, "massFailureGuard": false,
                "policyChanges": [{
                    "worker": "w1",
                    "from": {"state": "draining", "deadline": 9},
                    "to": {"state": "drained"},
                }],
                "drift": [
                    {"counter": "workerDispatched", "worker": "w1", "stored": 2, "actual": 1},
                    {"counter": "examAffinity", "examId": "e1", "worker": "w1",
                     "stored": -1, "actual": 0},
                ],
                "byExam": [{"examId": "e1", "moved": 1, "failed": 2, "orphaned": 3}],
            })
        );
    }

    #[test]
    fn a_report_of_an_earlier_release_reads_without_its_pass() {
        let earlier = json!({
            "startedAt": 7, "workersChecked": 1, "dispatchesScanned": 2,
            "scanComplete": false, "reservationsReclaimed": 0, "goneRemoved": 0,
            "staleRemoved": 0, "failedWorkerSessions": 0, "migrated": 0,
            "migrationFailed": 0, "orphaned": 0, "leftInPlace": 0,
            "sessionsAdopted": 0, "reservationsAdopted": 0, "duplicatesStopped": 0,
            "massFailureGuard": false, "policyChanges": [], "drift": [],
        });
        let read: ReconcileReportJson = serde_json::from_value(earlier).unwrap();
        assert_eq!(read.pass, PassProgressJson::default());
        assert_eq!(read.dispatches_scanned, 2);
    }

    #[test]
    fn policy_field_names() {
        for (policy, expected) in [
            (AdminPolicy::Active, json!({"state": "active"})),
            (
                AdminPolicy::Draining { deadline: None },
                json!({"state": "draining", "deadline": null}),
            ),
            (AdminPolicy::Drained, json!({"state": "drained"})),
            (
                AdminPolicy::Disabled { forced: true },
                json!({"state": "disabled", "forced": true}),
            ),
        ] {
            assert_eq!(
                serde_json::to_value(PolicyJson::from(&policy)).unwrap(),
                expected
            );
        }
    }
}
