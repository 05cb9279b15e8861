//! Passes that finish: the leader's reconcile pass runs over **steps**,
//! each a bounded amount of work, resuming from a cursor, until it has
//! covered the whole dispatch keyspace; an operator's pass runs to the end
//! at once.
//!
//! # Where the cursor lives
//!
//! In the store, beside the background lease: after each step the leader
//! saves a [`PassCheckpoint`] (the store's cursor, when the pass began,
//! its steps and dispatches so far, and the last complete pass) with
//! [`LeaderLease::save_checkpoint`](crate::store::LeaderLease::save_checkpoint),
//! fenced by the lease like every other write of the pass: a deposed
//! leader cannot move the cursor. A new leader — after a crash, a rolling
//! restart, a partition — resumes where the last step it can see ended,
//! so a pass finishes however often leadership moves; a cursor kept in a
//! replica's memory would send every new leader back to the start, and
//! with leadership moving more often than a pass lasts, no pass would
//! finish. Every replica reads the same checkpoint, so each one's
//! `/metrics` shows how far the pass got. A step that crashed before
//! saving is run again by the next leader from the previous checkpoint:
//! a dispatch may be checked twice in a pass then (every check is
//! idempotent), never skipped. A cursor the store cannot read (another
//! backend's, a damaged checkpoint) begins a new pass.
//!
//! # Per step, per pass
//!
//! Every step completes drains, checks the dispatches of failed workers
//! and of workers restarted since the pass began
//! ([`checked_first`](crate::reconcile::checked_first)), scans up to
//! `scan_pages_per_step` pages of `scan_count` dispatches from the
//! cursor, releases lost sessions, sweeps the workers' stored reports
//! against what it read, alerts when migration is first held back, and
//! writes a `reconciled` summary. The step that reaches the end of the
//! keyspace also does what needs the whole keyspace: the recount (its
//! cost grows with the dispatches, so once per pass), the orphan alerts
//! (a worker's orphans counted over the pass) and the end of a migration
//! suspension. A replica that did not run every step of the pass (it
//! took over mid-pass) alerts only about the orphans it marked; reminders
//! and catch-ups wait for a pass it runs whole.
//!
//! # Operators' passes
//!
//! [`reconcile`](Operations::reconcile) (`POST /api/vdi/workers/reconcile`)
//! is one step from the start of the keyspace to its end, bounded by
//! `on_demand_scan_pages`; it neither reads nor moves the leader's cursor
//! (an unfenced writer must not), and its report's `pass` is its own.

use std::collections::HashMap;

use super::super::{BACKGROUND_LEASE, Operations};
use super::Orphans;
use crate::error::Result;
use crate::events::EventKind;
use crate::ids::WorkerId;
use crate::outbox::alerts;
use crate::reconcile::{PassCheckpoint, ReconcileReport, StepStart};
use crate::store::Lease;
use crate::time::Timestamp;

/// Where a run's scan stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum ScanEnd {
    /// Before this cursor: the pass goes on from there.
    At(String),
    /// At the end of the keyspace: the pass is complete.
    Complete,
    /// The saved cursor was not one the store reads: a new pass begins.
    CursorRefused,
}

/// What one run (a step, or an operator's whole pass) covers.
#[derive(Debug, Clone, Copy)]
pub(super) struct Scope<'s> {
    /// Where its scan starts, and the pass it belongs to.
    pub(super) start: &'s StepStart,
    /// Scan pages it may read.
    pub(super) pages: usize,
    /// An operator's pass: alerts about what it marked even when it
    /// stopped short of the end.
    pub(super) on_demand: bool,
}

/// What a run did, for its step to save and report.
#[derive(Debug)]
pub(super) struct Run {
    pub(super) report: ReconcileReport,
    pub(super) scanned: u64,
    pub(super) end: ScanEnd,
}

/// What a replica remembers of the pass under way between its steps:
/// what only the end of the pass may decide on.
#[derive(Debug, Default)]
pub(crate) struct PassMemory {
    /// The pass it belongs to.
    started_at: Timestamp,
    /// Steps of the pass run so far (by this replica, when `whole`).
    steps: u32,
    /// Whether this replica ran every step of the pass so far.
    pub(super) whole: bool,
    /// Sessions marked orphaned by the pass, by worker.
    pub(super) orphaned: HashMap<WorkerId, Orphans>,
    /// Sessions orphaned by earlier passes and still there, by worker.
    pub(super) still_orphaned: HashMap<WorkerId, Orphans>,
    /// Whether a step of the pass held migration back.
    pub(super) suspended: bool,
}

impl PassMemory {
    /// Nothing remembered yet of the pass `start` belongs to; whole when
    /// `start` begins it.
    fn begin(start: &StepStart) -> Self {
        Self {
            started_at: start.pass_started_at,
            steps: start.steps_before,
            whole: !start.resumes(),
            ..Self::default()
        }
    }

    /// Whether the step at `start` is the next step of this memory's pass.
    fn continued_by(&self, start: &StepStart) -> bool {
        start.resumes()
            && self.started_at == start.pass_started_at
            && self.steps == start.steps_before
    }
}

impl Operations {
    /// Runs one whole reconcile pass now, from the start of the dispatch
    /// keyspace to its end (at most `on_demand_scan_pages` pages): reclaims
    /// stuck reservations, removes dispatches proven gone or stale,
    /// releases those a restarted worker's report proves lost (left over
    /// by its heartbeats), applies the failure policy to sessions of
    /// failed workers (held back by the mass-failure guard or when no
    /// healthy target exists), completes drains, and recounts every
    /// counter, repairing drift. A backend error stops the pass, so
    /// nothing is removed on an inconsistent view.
    ///
    /// Unfenced: an operator's pass on any replica; it leaves the
    /// leader's cursor alone. The background loop runs
    /// [`reconcile_step`](Self::reconcile_step).
    pub async fn reconcile(&self) -> Result<ReconcileReport> {
        self.reconcile_leased(None).await
    }

    /// [`reconcile`](Self::reconcile), with every removal and orphan mark
    /// fenced by `fence` (the background lease): the store refuses them
    /// with [`Error::Fenced`](crate::Error::Fenced) once the lease is held by another replica or
    /// under another token, and the pass stops there. Not fenced: the
    /// recount's repair (it writes the recounted truth, so a late one is
    /// corrected by the next), drain completion and the release of lost
    /// sessions (compare-and-sets on the worker's version) and re-dispatch
    /// (a compare-and-reserve that supersedes the old dispatch by id).
    pub async fn reconcile_leased(&self, fence: Option<&Lease>) -> Result<ReconcileReport> {
        let start = StepStart::new_pass(self.shared.clock.now());
        let mut memory = PassMemory::begin(&start);
        let scope = Scope {
            start: &start,
            pages: self.shared.config.on_demand_scan_pages.max(1),
            on_demand: true,
        };
        let run = self.run(fence, scope, &mut memory).await?;
        let checkpoint = PassCheckpoint::default();
        let after = match run.end {
            ScanEnd::At(cursor) => {
                checkpoint.after_step(&start, run.scanned, Some(cursor), self.shared.clock.now())
            }
            ScanEnd::Complete | ScanEnd::CursorRefused => {
                checkpoint.after_step(&start, run.scanned, None, self.shared.clock.now())
            }
        };
        let mut report = run.report;
        report.pass = after.progress(&start);
        self.summarize(report, fence).await
    }

    /// Runs one step of the leader's pass, holding `lease`: resumes from
    /// the checkpoint saved beside it (or begins a new pass), scans up to
    /// `scan_pages_per_step` pages, and saves the checkpoint again, fenced
    /// by `lease` like every removal and orphan mark of the step (see
    /// [`reconcile_leased`](Self::reconcile_leased)). The report says how
    /// far the pass got (`pass`); `pass.complete` when this step reached
    /// the end of the keyspace. See the module docs.
    pub async fn reconcile_step(&self, lease: &Lease) -> Result<ReconcileReport> {
        let saved = self.pass_checkpoint().await?.unwrap_or_default();
        let start = saved.resume(self.shared.clock.now());
        let mut memory = self.pass_memory(&start);
        let scope = Scope {
            start: &start,
            pages: self.shared.config.scan_pages_per_step.max(1),
            on_demand: false,
        };
        let run = self.run(Some(lease), scope, &mut memory).await?;
        let now = self.shared.clock.now();
        let (after, complete) = match run.end {
            ScanEnd::At(cursor) => (
                saved.after_step(&start, run.scanned, Some(cursor), now),
                false,
            ),
            ScanEnd::Complete => (saved.after_step(&start, run.scanned, None, now), true),
            ScanEnd::CursorRefused => {
                tracing::warn!(
                    "the saved reconcile cursor is not one this store reads; the next step begins a new pass"
                );
                (
                    PassCheckpoint {
                        current: None,
                        ..saved.clone()
                    },
                    false,
                )
            }
        };
        self.shared
            .store
            .save_checkpoint(lease, &after.encode())
            .await?;
        if !complete && after.current.is_some() {
            memory.steps = start.steps_before.saturating_add(1);
            *self.pass_memory_slot() = Some(memory);
        }
        let mut report = run.report;
        report.pass = after.progress(&start);
        self.summarize(report, Some(lease)).await
    }

    /// The checkpoint the leader saved after its last step (`None`: no
    /// step ran yet, or the stored text is not a checkpoint of this
    /// release). Read by any replica: the figures of
    /// [`PassCheckpoint::unchecked_age`] and the pass under way.
    pub async fn pass_checkpoint(&self) -> Result<Option<PassCheckpoint>> {
        let Some(text) = self.shared.store.checkpoint(BACKGROUND_LEASE).await? else {
            return Ok(None);
        };
        let checkpoint = PassCheckpoint::decode(&text);
        if checkpoint.is_none() {
            tracing::warn!(
                "the saved reconcile checkpoint is unreadable; the next step begins a new pass"
            );
        }
        Ok(checkpoint)
    }

    /// Runs a reconcile on an operator's request and audits it.
    pub async fn reconcile_now(&self, actor: &str) -> Result<ReconcileReport> {
        let report = self.reconcile().await?;
        let detail = serde_json::to_value(&report).unwrap_or_default();
        self.shared
            .audit(actor, "reconcile", "cluster", detail)
            .await?;
        Ok(report)
    }

    /// Writes the `reconciled` summary of a step (an observation of the
    /// leader: fenced, keyed by the step's start) and returns its report.
    async fn summarize(
        &self,
        report: ReconcileReport,
        fence: Option<&Lease>,
    ) -> Result<ReconcileReport> {
        let summary = EventKind::Reconciled {
            report: report.clone(),
        };
        let key = alerts::observed_key(&summary, report.started_at.as_millis());
        self.shared.record_observed(summary, key, fence).await?;
        Ok(report)
    }

    /// What this replica remembers of the pass `start` belongs to: its
    /// memory of the previous step when `start` continues it, else a new
    /// one (whole only if `start` begins the pass).
    fn pass_memory(&self, start: &StepStart) -> PassMemory {
        match self.pass_memory_slot().take() {
            Some(m) if m.continued_by(start) => m,
            _ => PassMemory::begin(start),
        }
    }

    fn pass_memory_slot(&self) -> std::sync::MutexGuard<'_, Option<PassMemory>> {
        self.pass_memory
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
