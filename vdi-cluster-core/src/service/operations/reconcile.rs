//! Reconcile: the checks of a run and what applies their verdicts.
//!
//! A run reads the fleet, judges each dispatch it reads ([`judge`]) and
//! applies the verdicts as store writes. The leader's pass is a sequence
//! of bounded runs, its steps, each resuming from the cursor the previous
//! one saved beside the background lease; an operator's pass is one run
//! from the start of the keyspace to its end ([`pass`]: where the cursor
//! lives, what is per step and what per pass). `alerting` holds the
//! migration and orphan alerts, `health` the health monitor.
//!
//! When a step runs in the background loop it holds the background lease,
//! renewed every tick while the step runs (see the `background` module),
//! and its writes are **fenced** by that lease
//! ([`Operations::reconcile_leased`](crate::service::Operations::reconcile_leased)): reclaiming a stuck reservation
//! (`undo`), removing a gone or stale dispatch (`release`), marking a
//! session orphaned (`mark_orphaned`) and saving the pass's checkpoint each
//! carry the lease, and the backend refuses them in the same atomic step
//! once another replica holds it or it was taken anew. The first refusal
//! ([`Error::Fenced`]) ends the step: a deposed leader stops writing at
//! once. The remaining writes are safe
//! late by construction: re-dispatch supersedes the old dispatch by its id
//! (a session already moved by the new leader is not moved again), drain
//! completion and the release of a restarted worker's lost sessions are
//! compare-and-sets on the worker's version (the report that proves them
//! lost is the record the step is conditioned on), and the recount's
//! repair writes the count it recounts in the same atomic step.

use std::collections::{BTreeMap, HashMap, HashSet};

use tokio::time::timeout;

use self::pass::{Run, ScanEnd, Scope};
use super::Operations;
use crate::dispatch::Dispatch;
use crate::error::{Error, Result};
use crate::events::EventKind;
use crate::ids::{DispatchId, WorkerId};
use crate::outbox::alerts;
use crate::policy::AdminPolicy;
use crate::reconcile::{
    ExamMigration, Failure, FailureAction, FailureContext, LeaveReason, PolicyChange,
    ReconcileReport, Verdict, checked_first, judge, on_failed_worker,
};
use crate::scheduler::Constraints;
use crate::service::fleet::{Placed, Report, Source};
use crate::store::Lease;
use crate::worker::WorkerView;

mod alerting;
mod health;
mod pass;

pub use health::HealthMonitor;
pub(crate) use pass::PassMemory;

/// Orphaned sessions on one worker: how many, and the smallest dispatch
/// id among them, which names the episode in the alert's key.
#[derive(Debug, Clone, Copy)]
struct Orphans {
    count: u32,
    first: DispatchId,
}

impl Orphans {
    /// Counts `d` among its worker's orphans in `by_worker`.
    fn note(by_worker: &mut HashMap<WorkerId, Self>, d: &Dispatch) {
        by_worker
            .entry(d.worker.clone())
            .and_modify(|o| {
                o.count += 1;
                o.first = o.first.min(d.id);
            })
            .or_insert(Self {
                count: 1,
                first: d.id,
            });
    }
}

struct Pass<'a> {
    service: &'a Operations,
    fence: Option<&'a Lease>,
    report: ReconcileReport,
    guard: bool,
    healthy_target: bool,
    /// Why migration was held back in this pass, the first reason.
    suspended: Option<String>,
    budget: usize,
    /// What the pass remembers across its steps (orphans, suspension).
    memory: &'a mut PassMemory,
    seen: HashSet<crate::ids::DispatchId>,
    /// Every dispatch the run checked, by session, for the fleet sweep.
    placed: Placed,
    /// Dispatches its restarted worker's report proves lost, by worker.
    lost: HashMap<WorkerId, Vec<Dispatch>>,
}

impl Operations {
    /// One run: a step of the leader's pass, or an operator's whole pass
    /// (see [`pass`]). Completes drains, checks the dispatches of failed
    /// and restarted workers, scans from `scope.start`'s cursor (at most
    /// `scope.pages` pages), releases lost sessions, sweeps the stored
    /// reports against what it read, and — when the scan reached the end
    /// of the keyspace, or for an operator — alerts about orphans and
    /// recounts every counter. A backend error stops the run, so nothing
    /// is removed on an inconsistent view.
    async fn run(
        &self,
        fence: Option<&Lease>,
        scope: Scope<'_>,
        memory: &mut PassMemory,
    ) -> Result<Run> {
        let started_at = self.shared.clock.now();
        let views = self.shared.worker_views().await?;
        let (share, guard) = self.shared.mass_failure_guard(&views);
        let mut pass = Pass {
            service: self,
            fence,
            report: ReconcileReport {
                started_at,
                workers_checked: u32::try_from(views.len()).unwrap_or(u32::MAX),
                mass_failure_guard: guard,
                ..Default::default()
            },
            guard,
            healthy_target: views.iter().any(WorkerView::is_schedulable),
            suspended: None,
            budget: self.shared.config.scan_count.max(1),
            memory,
            seen: HashSet::new(),
            placed: Placed::new(),
            lost: HashMap::new(),
        };
        if guard {
            pass.suspend(format!(
                "{} of {} enabled workers are silent (the guard engages at {}% and holds for {} s after): treating it as a control-plane or network fault; no session is moved",
                share.silent,
                share.enabled,
                self.shared.config.mass_failure_percent,
                self.shared.config.offline_after.as_secs()
            ));
        }

        for view in &views {
            if matches!(view.record.policy, AdminPolicy::Draining { .. })
                && let Some(t) = self.fleet.observe_policy(view).await?
            {
                pass.report.policy_changes.push(PolicyChange {
                    worker: view.id().clone(),
                    from: t.from,
                    to: t.to,
                });
            }
        }

        // Failed and restarted workers first, without waiting for the
        // cursor: as many dispatches as the scan may read, at most.
        let limit = self.shared.config.scan_count.max(1);
        let mut first = limit.saturating_mul(scope.pages.max(1));
        for view in views
            .iter()
            .filter(|v| checked_first(v, scope.start.pass_started_at))
        {
            if first == 0 {
                break;
            }
            let found = self
                .shared
                .store
                .worker_dispatches(view.id(), limit.min(first))
                .await?;
            first = first.saturating_sub(found.len());
            for d in found {
                pass.check(d, Some(view)).await?;
            }
        }

        let (scanned, end) = self.scan(&mut pass, &views, &scope).await?;
        let complete = end == ScanEnd::Complete;
        pass.report.scan_complete = complete;
        for (worker, lost) in std::mem::take(&mut pass.lost) {
            pass.report.sessions_lost += self.fleet.release_lost(&worker, &lost).await?;
        }
        let (lost, gone) = self.fleet.take_released_tally();
        pass.report.sessions_lost += lost;
        pass.report.gone_removed += gone;
        self.sweep_reports(&mut pass, &views).await?;
        let (adopted, reservations, stopped) = self.fleet.take_tally();
        pass.report.sessions_adopted += adopted;
        pass.report.reservations_adopted += reservations;
        pass.report.duplicates_stopped += stopped;

        let whole = complete && pass.memory.whole;
        pass.memory.suspended |= pass.suspended.is_some();
        if complete || scope.on_demand {
            pass.alert_orphans(whole).await?;
        }
        let episode_over = whole && !pass.memory.suspended;
        pass.alert_suspension(episode_over).await?;
        if complete || scope.on_demand {
            pass.report.drift = self.shared.store.recount(true).await?.drift;
            if !pass.report.drift.is_empty() {
                tracing::warn!(drift = ?pass.report.drift, "reconcile repaired counter drift");
            }
        }
        self.placement.invalidate_snapshot();
        Ok(Run {
            report: pass.report,
            scanned,
            end,
        })
    }

    /// Holds every reachable worker's last report of live sessions against
    /// the dispatches this run read (a step reads part of the keyspace; a
    /// session whose record it did not read is left alone, as one without
    /// a record): confirms stale reservations, and stops copies settled
    /// elsewhere by calling the worker. Sessions without a record are left
    /// to the worker's next heartbeat (a stored report may predate their
    /// release). Counted in the report.
    async fn sweep_reports(&self, pass: &mut Pass<'_>, views: &[WorkerView]) -> Result<()> {
        let no_details = BTreeMap::new();
        for view in views.iter().filter(|v| v.availability.is_reachable()) {
            let Some(live) = view.record.live_sessions.as_deref() else {
                continue;
            };
            let repair = self
                .fleet
                .repair(&Report {
                    record: &view.record,
                    live,
                    details: &no_details,
                    placed: &pass.placed,
                    source: Source::Stored,
                })
                .await?;
            pass.report.reservations_adopted += repair.reservations_adopted;
            for key in &repair.release_sessions {
                let call = timeout(
                    self.shared.config.worker_call_timeout,
                    self.shared.client.release(&view.record, key),
                )
                .await;
                if matches!(call, Ok(Ok(()))) {
                    pass.report.duplicates_stopped += 1;
                }
            }
        }
        Ok(())
    }

    /// Scans from `scope`'s cursor, checking every dispatch it reads;
    /// answers how many it read and where it stopped.
    async fn scan(
        &self,
        pass: &mut Pass<'_>,
        views: &[WorkerView],
        scope: &Scope<'_>,
    ) -> Result<(u64, ScanEnd)> {
        let by_id: HashMap<&WorkerId, &WorkerView> = views.iter().map(|v| (v.id(), v)).collect();
        let count = self.shared.config.scan_count.max(1);
        let mut cursor = scope.start.cursor.clone();
        let mut scanned = 0_u64;
        for page_number in 0..scope.pages.max(1) {
            let page = match self
                .shared
                .store
                .scan_dispatches(cursor.as_deref(), count)
                .await
            {
                Ok(page) => page,
                Err(Error::Invalid(e)) if page_number == 0 && cursor.is_some() => {
                    tracing::warn!(error = %e, "the store refused the saved reconcile cursor");
                    return Ok((scanned, ScanEnd::CursorRefused));
                }
                Err(e) => return Err(e),
            };
            let read = page.dispatches.len();
            pass.report.dispatches_scanned = pass
                .report
                .dispatches_scanned
                .saturating_add(u32::try_from(read).unwrap_or(u32::MAX));
            scanned = scanned.saturating_add(read as u64);
            for d in page.dispatches {
                let worker = by_id.get(&d.worker).copied();
                pass.check(d, worker).await?;
            }
            cursor = page.next;
            if cursor.is_none() {
                break;
            }
        }
        Ok((scanned, cursor.map_or(ScanEnd::Complete, ScanEnd::At)))
    }
}

impl Pass<'_> {
    /// Every check of one dispatch, once per pass: [`judge`] decides,
    /// this applies.
    async fn check(&mut self, d: Dispatch, worker: Option<&WorkerView>) -> Result<()> {
        if !self.seen.insert(d.id) {
            return Ok(());
        }
        self.placed.insert(d.key.clone(), d.clone());
        let store = &self.service.shared.store;
        let now = self.service.shared.clock.now();
        match judge(
            &d,
            worker,
            now,
            &self.service.shared.config.reconcile_limits(),
        ) {
            Verdict::Keep => {}
            Verdict::Reclaim => {
                // Its allocator died: the worker may run it, so its slot
                // stays held until the worker reports.
                if store
                    .undo(
                        &d.key,
                        d.id,
                        self.fence,
                        Some(&d.worker),
                        self.service
                            .shared
                            .config
                            .pacing
                            .permit_return(&d.worker, None)
                            .as_ref(),
                    )
                    .await?
                {
                    self.report.reservations_reclaimed += 1;
                }
            }
            Verdict::Gone => {
                if store
                    .release(&d.key, Some(d.id), self.fence, None)
                    .await?
                    .is_some()
                {
                    self.report.gone_removed += 1;
                }
            }
            Verdict::Stale => {
                if store
                    .release(&d.key, Some(d.id), self.fence, None)
                    .await?
                    .is_some()
                {
                    self.report.stale_removed += 1;
                }
            }
            Verdict::Lost => {
                // Released after the scan, a bounded step per worker; the
                // sweep treats the session as having no record.
                self.placed.remove(&d.key);
                self.lost.entry(d.worker.clone()).or_default().push(d);
            }
            Verdict::WorkerFailed(failure) => self.failed(d, failure).await?,
        }
        Ok(())
    }

    fn suspend(&mut self, reason: String) {
        if self.suspended.is_none() {
            tracing::warn!("{reason}");
            self.suspended = Some(reason);
        }
    }

    /// Applies the failure policy to one dispatch of a failed worker:
    /// [`on_failed_worker`] decides, this applies.
    async fn failed(&mut self, d: Dispatch, failure: Failure) -> Result<()> {
        let ctx = FailureContext {
            policy: self.service.shared.config.failure_policy,
            mass_failure_guard: self.guard,
            healthy_target: self.healthy_target,
            budget_left: self.budget > 0,
        };
        match on_failed_worker(d.state, failure, &ctx) {
            FailureAction::Ignore => return Ok(()),
            FailureAction::LeaveInPlace(why) => self.leave_in_place(&d, why),
            FailureAction::Orphan => self.orphan(&d).await?,
            FailureAction::Migrate => self.migrate(d).await?,
        }
        self.report.failed_worker_sessions += 1;
        Ok(())
    }

    fn leave_in_place(&mut self, d: &Dispatch, why: LeaveReason) {
        self.report.left_in_place += 1;
        if why == LeaveReason::AlreadyOrphaned {
            Orphans::note(&mut self.memory.still_orphaned, d);
        }
        if why == LeaveReason::NoHealthyTarget {
            self.suspend(
                "no healthy worker can take re-dispatched sessions; they stay where they are"
                    .into(),
            );
        }
    }

    async fn orphan(&mut self, d: &Dispatch) -> Result<()> {
        if self
            .service
            .shared
            .store
            .mark_orphaned(&d.key, d.id, self.fence)
            .await?
        {
            self.report.orphaned += 1;
            self.exam(d).orphaned += 1;
            Orphans::note(&mut self.memory.orphaned, d);
        }
        Ok(())
    }

    /// The exam of `d` in the pass's per-exam summary.
    fn exam(&mut self, d: &Dispatch) -> &mut ExamMigration {
        self.report
            .by_exam
            .entry(d.key.exam_id.clone())
            .or_default()
    }

    async fn migrate(&mut self, d: Dispatch) -> Result<()> {
        self.budget -= 1;
        let (key, from, id) = (d.key.clone(), d.worker.clone(), d.id);
        match self
            .service
            .placement
            .place(key.clone(), &Constraints::default(), Some(d.clone()))
            .await
        {
            Ok(_) => {
                self.report.migrated += 1;
                self.exam(&d).moved += 1;
            }
            Err(Error::NoCapacity(reason)) => {
                self.report.migration_failed += 1;
                self.exam(&d).failed += 1;
                // Once per dispatch that could not be moved.
                let kind = EventKind::MigrationFailed {
                    session: key,
                    from,
                    reason: reason.to_string(),
                };
                let key = alerts::observed_key(&kind, id);
                self.service
                    .shared
                    .record_observed(kind, key, self.fence)
                    .await?;
            }
            Err(Error::AllocationInProgress(_)) => self.report.left_in_place += 1,
            // Released since this pass read it: nothing left to move.
            Err(Error::SessionNotFound(_)) => {
                tracing::debug!(session = %d.key, "released before it could be moved");
            }
            Err(e) => return Err(e),
        }
        Ok(())
    }
}
