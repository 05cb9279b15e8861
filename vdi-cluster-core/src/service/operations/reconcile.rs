//! Reconcile and the health monitor.
//!
//! A pass reads the fleet, judges each dispatch ([`judge`]) and applies the
//! verdicts as store writes. When it runs in the background loop it holds
//! the background lease, renewed every tick while the pass runs (see the
//! `background` module), and its writes are **fenced** by that lease
//! ([`Operations::reconcile_leased`](crate::service::Operations::reconcile_leased)): reclaiming a stuck reservation
//! (`undo`), removing a gone or stale dispatch (`release`) and marking a
//! session orphaned (`mark_orphaned`) each carry the lease, and the backend
//! refuses them in the same atomic step once another replica holds it or
//! it was taken anew. The first refusal ([`Error::Fenced`]) ends the pass:
//! a deposed leader stops writing at once. The remaining writes are safe
//! late by construction: re-dispatch supersedes the old dispatch by its id
//! (a session already moved by the new leader is not moved again), drain
//! completion and the release of a restarted worker's lost sessions are
//! compare-and-sets on the worker's version (the report that proves them
//! lost is the record the step is conditioned on), and the recount's
//! repair writes the count it recounts in the same atomic step.

use std::collections::{BTreeMap, HashMap, HashSet};

use tokio::time::timeout;

use super::Operations;
use crate::dispatch::Dispatch;
use crate::error::{Error, Result};
use crate::events::EventKind;
use crate::health::Availability;
use crate::ids::{DispatchId, WorkerId};
use crate::outbox::alerts;
use crate::policy::AdminPolicy;
use crate::reconcile::{
    ExamMigration, Failure, FailureAction, FailureContext, LeaveReason, PolicyChange,
    ReconcileReport, Verdict, judge, on_failed_worker,
};
use crate::scheduler::Constraints;
use crate::service::fleet::{Placed, Report, Source};
use crate::store::Lease;
use crate::time::Timestamp;
use crate::worker::WorkerView;

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
    orphaned_by_worker: HashMap<WorkerId, Orphans>,
    /// Sessions marked orphaned by earlier passes and still there, by
    /// worker (the reminder's count).
    still_orphaned: HashMap<WorkerId, Orphans>,
    seen: HashSet<crate::ids::DispatchId>,
    /// Every dispatch the pass checked, by session, for the fleet sweep.
    placed: Placed,
    /// Dispatches its restarted worker's report proves lost, by worker.
    lost: HashMap<WorkerId, Vec<Dispatch>>,
}

impl Operations {
    /// Runs one reconcile pass now: reclaims stuck reservations, removes
    /// dispatches proven gone or stale, releases those a restarted worker's
    /// report proves lost (left over by its heartbeats), applies the
    /// failure policy to
    /// sessions of failed workers (held back by the mass-failure guard or
    /// when no healthy target exists), completes drains, and recounts every
    /// counter, repairing drift. Work is bounded per pass; a backend error
    /// stops the pass, so nothing is removed on an inconsistent view.
    ///
    /// Unfenced: an operator's pass on any replica. The background loop
    /// runs [`reconcile_leased`](Self::reconcile_leased).
    pub async fn reconcile(&self) -> Result<ReconcileReport> {
        self.reconcile_leased(None).await
    }

    /// [`reconcile`](Self::reconcile), with every removal and orphan mark
    /// fenced by `fence` (the background lease): the store refuses them
    /// with [`Error::Fenced`] once the lease is held by another replica or
    /// under another token, and the pass stops there. Not fenced: the
    /// recount's repair (it writes the recounted truth, so a late one is
    /// corrected by the next), drain completion and the release of lost
    /// sessions (compare-and-sets on the worker's version) and re-dispatch
    /// (a compare-and-reserve that supersedes the old dispatch by id).
    pub async fn reconcile_leased(&self, fence: Option<&Lease>) -> Result<ReconcileReport> {
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
            orphaned_by_worker: HashMap::new(),
            still_orphaned: HashMap::new(),
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

        // Workers first: their dispatches are bounded by their slots.
        let limit = self.shared.config.scan_count.max(1);
        for view in views.iter().filter(|v| v.dispatched > 0) {
            for d in self
                .shared
                .store
                .worker_dispatches(view.id(), limit)
                .await?
            {
                pass.check(d, Some(view)).await?;
            }
        }

        self.scan(&mut pass, &views).await?;
        for (worker, lost) in std::mem::take(&mut pass.lost) {
            pass.report.sessions_lost += self.fleet.release_lost(&worker, &lost).await?;
        }
        pass.report.sessions_lost += self.fleet.take_lost_tally();
        if pass.report.scan_complete {
            self.sweep_reports(&mut pass, &views).await?;
        }
        let (adopted, reservations, stopped) = self.fleet.take_tally();
        pass.report.sessions_adopted += adopted;
        pass.report.reservations_adopted += reservations;
        pass.report.duplicates_stopped += stopped;

        pass.alert_orphans().await?;
        pass.alert_suspension().await?;
        pass.report.drift = self.shared.store.recount(true).await?.drift;
        if !pass.report.drift.is_empty() {
            tracing::warn!(drift = ?pass.report.drift, "reconcile repaired counter drift");
        }
        self.placement.invalidate_snapshot();
        let report = pass.report;
        let summary = EventKind::Reconciled {
            report: report.clone(),
        };
        let key = alerts::observed_key(&summary, started_at.as_millis());
        self.shared.record_observed(summary, key, fence).await?;
        Ok(report)
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

    /// Holds every reachable worker's last report of live sessions against
    /// the dispatches the pass read (all of them: run after a complete
    /// scan): confirms stale reservations, and stops copies settled
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

    async fn scan(&self, pass: &mut Pass<'_>, views: &[WorkerView]) -> Result<()> {
        let by_id: HashMap<&WorkerId, &WorkerView> = views.iter().map(|v| (v.id(), v)).collect();
        let mut cursor: Option<String> = None;
        for _ in 0..self.shared.config.scan_pages_per_pass.max(1) {
            let page = self
                .shared
                .store
                .scan_dispatches(cursor.as_deref(), self.shared.config.scan_count.max(1))
                .await?;
            pass.report.dispatches_scanned +=
                u32::try_from(page.dispatches.len()).unwrap_or(u32::MAX);
            for d in page.dispatches {
                let worker = by_id.get(&d.worker).copied();
                pass.check(d, worker).await?;
            }
            cursor = page.next;
            if cursor.is_none() {
                pass.report.scan_complete = true;
                break;
            }
        }
        Ok(())
    }
}

impl Operations {
    fn orphan_alerts(&self) -> std::sync::MutexGuard<'_, HashMap<WorkerId, Timestamp>> {
        self.orphan_alerts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
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
                    .undo(&d.key, d.id, self.fence, Some(&d.worker))
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

    /// `migration.suspended` once per episode: when migration is first
    /// held back after a pass that was not, under a key naming the
    /// episode's first pass (a leader that takes over mid-episode starts
    /// an episode of its own, so it may repeat the alert once).
    async fn alert_suspension(&mut self) -> Result<()> {
        let service = self.service;
        let started = {
            let mut episode = service
                .suspension
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            match (&self.suspended, *episode) {
                (None, _) => {
                    *episode = None;
                    return Ok(());
                }
                (Some(_), Some(_)) => return Ok(()),
                (Some(_), None) => {
                    *episode = Some(self.report.started_at);
                    self.report.started_at
                }
            }
        };
        let kind = EventKind::MigrationSuspended {
            reason: self.suspended.clone().unwrap_or_default(),
        };
        let key = alerts::observed_key(&kind, started.as_millis());
        let written = service.shared.record_observed(kind, key, self.fence).await;
        if written.is_err() {
            // Not written: the next pass of the episode tries again.
            *service
                .suspension
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
        }
        written
    }

    /// `migration.manual_required` per worker: at once for the sessions
    /// this pass orphaned, then every `manual_migration_remind` while
    /// sessions stay orphaned on it (with their count). The leader
    /// remembers when it last alerted; one that takes over starts
    /// counting from its first pass, so a reminder never comes sooner
    /// than the interval, and at worst one interval late.
    ///
    /// The first alert of an episode is keyed by the worker and the
    /// smallest orphaned dispatch id on it, which every leader derives
    /// from the records alone. It is written after the marks, and a leader
    /// that finds orphans it has not alerted about (it just took over, or
    /// the previous one stopped between the marks and the alert) writes
    /// it again under that key: the store skips it if it was written, and
    /// writes it if a crash lost it, as long as the sessions are still
    /// orphaned (the marks are durable until an operator moves them).
    async fn alert_orphans(&mut self) -> Result<()> {
        let service = self.service;
        let now = service.shared.clock.now();
        let marked = std::mem::take(&mut self.orphaned_by_worker);
        let still = std::mem::take(&mut self.still_orphaned);
        let every = service.shared.config.manual_migration_remind;
        let mut due = Vec::new();
        {
            let mut last = service.orphan_alerts();
            last.retain(|w, _| marked.contains_key(w) || still.contains_key(w));
            for (worker, orphans) in &still {
                if marked.contains_key(worker) {
                    continue;
                }
                match (last.get(worker), every) {
                    (None, _) => {
                        last.insert(worker.clone(), now);
                        let episode = orphans.first.to_string();
                        due.push((worker.clone(), orphans.count, episode, false));
                    }
                    (Some(at), Some(every)) if now.since(*at) >= every => {
                        let episode = now.as_millis().to_string();
                        due.push((worker.clone(), orphans.count, episode, true));
                    }
                    _ => {}
                }
            }
        }
        let fresh = marked.into_iter().map(|(w, o)| {
            let first = still.get(&w).map_or(o.first, |s| s.first.min(o.first));
            (w, o.count, first.to_string(), true)
        });
        // A catch-up is not emitted to the sinks (they may have had it
        // from the previous leader).
        for (worker, count, episode, emit) in fresh.chain(due) {
            let kind = EventKind::SessionsOrphaned {
                worker: worker.clone(),
                count,
            };
            let key = alerts::observed_key(&kind, episode);
            if emit {
                service
                    .shared
                    .record_observed(kind, key, self.fence)
                    .await?;
            } else {
                service
                    .shared
                    .append_observed(&kind, key, self.fence)
                    .await?;
            }
            service.orphan_alerts().insert(worker, now);
        }
        Ok(())
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
            Orphans::note(&mut self.still_orphaned, d);
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
            Orphans::note(&mut self.orphaned_by_worker, d);
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
            Err(e) => return Err(e),
        }
        Ok(())
    }
}

/// Turns availability snapshots into events, once per transition (the
/// deltas of successive observations).
#[derive(Debug, Default)]
pub struct HealthMonitor {
    last: HashMap<WorkerId, Availability>,
}

impl HealthMonitor {
    /// Compares `views` with the previous observation and returns an event
    /// per worker whose availability changed. Workers seen for the first
    /// time are recorded silently.
    pub fn observe(&mut self, views: &[WorkerView], now: Timestamp) -> Vec<EventKind> {
        let mut events = Vec::new();
        let mut next = HashMap::with_capacity(views.len());
        for v in views {
            if let Some(&before) = self.last.get(v.id())
                && before != v.availability
            {
                events.push(EventKind::WorkerAvailability {
                    worker: v.id().clone(),
                    from: before,
                    to: v.availability,
                    reason: v.reason(now),
                });
            }
            next.insert(v.id().clone(), v.availability);
        }
        self.last = next;
        events
    }

    /// Forgets everything (after losing the lease).
    pub fn reset(&mut self) {
        self.last.clear();
    }

    /// Whether nothing was observed yet (since the start or a reset).
    pub fn is_fresh(&self) -> bool {
        self.last.is_empty()
    }

    /// On a new leader's first observation: the workers that went silent
    /// while no leader was watching (or whose alert the previous leader
    /// may not have written), as `worker.offline` transitions from
    /// `healthy`, their last known good state. Written to the outbox under
    /// the transition's key, they are skipped when the previous leader had
    /// written them.
    pub fn catch_up(views: &[WorkerView], now: Timestamp) -> Vec<EventKind> {
        views
            .iter()
            .filter(|v| !v.availability.is_reachable())
            .filter(|v| v.record.deregistered_at.is_none() && v.record.last_heartbeat_at.is_some())
            .map(|v| EventKind::WorkerAvailability {
                worker: v.id().clone(),
                from: Availability::Healthy,
                to: v.availability,
                reason: v.reason(now),
            })
            .collect()
    }
}
