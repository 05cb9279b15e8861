//! Scheduled drains: an operator asks for a worker to be drained at a
//! set time — at an instant, or at the start of the worker's next
//! maintenance window — and the leader carries it out then.
//!
//! The action is stored ([`ScheduledActions`](crate::scheduled::ScheduledActions)),
//! listed while open, and cancellable until it fires. The leader's tick
//! ([`Fleet::fire_due_scheduled`]) claims each due action by a
//! compare-and-set on its version, so of several replicas one fires it,
//! and drains the worker as its scheduling operator (audited under that
//! name). The drain goes through the change freeze as an operator's
//! would: a window answered safe when the drain was scheduled may no
//! longer be safe when it is due (an exam booked since, workers lost).
//! A refused drain is not forced: the action is marked failed with the
//! refusal, audited, and `worker.scheduled_drain_failed` names the exams
//! that need the worker.

use std::time::Duration;

use super::CAS_ATTEMPTS;
use super::Fleet;
use super::maintenance::{MAX_MAINTENANCE_RANGE, MaintenanceQuery};
use crate::error::{Error, Result};
use crate::events::EventKind;
use crate::exam::format_rfc3339;
use crate::ids::{ExamId, WorkerId};
use crate::outbox::alerts;
use crate::policy::AdminAction;
use crate::scheduled::{ActionKind, ActionState, CLAIM_TTL, ScheduledAction, ScheduledSnapshot};
use crate::service::shared::new_id;
use crate::service::shared::reason::validate_reason;
use crate::store::{CasOutcome, Lease};
use crate::time::Timestamp;

/// Most open scheduled drains listed.
pub const MAX_SCHEDULED_LISTED: usize = 1000;
/// Most due actions a leader's tick claims.
const FIRED_PER_TICK: usize = 20;

/// When a scheduled drain happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DrainAt {
    /// At this instant (in the future, at most 31 days ahead).
    At(Timestamp),
    /// At the start of the worker's next maintenance window of this
    /// duration (within the next seven days).
    NextWindow {
        /// How long the worker is to be out.
        duration: Duration,
    },
}

impl Fleet {
    /// Schedules a drain of `worker` by `actor`, for `reason` (audited,
    /// and the drain's reason when it fires). An unknown worker is
    /// [`Error::WorkerNotFound`]; a time in the past or too far ahead is
    /// [`Error::Invalid`] naming `at`; a window asked for with a bad
    /// duration names `duration`, and none in the next seven days names
    /// `window`.
    pub async fn schedule_drain(
        &self,
        worker: &WorkerId,
        when: DrainAt,
        actor: &str,
        reason: &str,
    ) -> Result<ScheduledAction> {
        let reason = validate_reason(reason)?;
        let now = self.shared.clock.now();
        let at = match when {
            DrainAt::At(at) => {
                if at <= now {
                    return Err(Error::invalid("at", "must be in the future"));
                }
                if at.since(now) > MAX_MAINTENANCE_RANGE {
                    return Err(Error::invalid("at", "must be at most 31 days ahead"));
                }
                self.shared.worker_view(worker).await?;
                at
            }
            DrainAt::NextWindow { duration } => {
                let plan = self
                    .maintenance_windows(MaintenanceQuery {
                        workers: vec![worker.clone()],
                        duration,
                        from: None,
                        to: None,
                    })
                    .await?;
                let Some(next) = plan.windows.first() else {
                    return Err(Error::invalid(
                        "window",
                        "no maintenance window of that duration in the next seven days",
                    ));
                };
                next.start
            }
        };
        let action = ScheduledAction::pending(
            new_id("sa"),
            worker.clone(),
            ActionKind::Drain,
            at,
            actor,
            reason,
            now,
        );
        if let CasOutcome::Conflict { .. } = self.shared.store.put_scheduled(&action, None).await? {
            return Err(Error::Conflict {
                what: format!("scheduled action {}", action.id),
            });
        }
        self.audit_scheduled(actor, "schedule-drain", &action)
            .await?;
        Ok(action)
    }

    /// The open scheduled drains (pending, or being carried out), of
    /// `worker` or of the whole fleet, by time.
    pub async fn scheduled_drains(
        &self,
        worker: Option<&WorkerId>,
    ) -> Result<Vec<ScheduledAction>> {
        Ok(self
            .shared
            .store
            .open_scheduled(None, MAX_SCHEDULED_LISTED)
            .await?
            .into_iter()
            .map(|s| s.action)
            .filter(|a| a.kind == ActionKind::Drain && worker.is_none_or(|w| &a.worker == w))
            .collect())
    }

    /// Cancels `worker`'s pending scheduled drain `id`, by `actor`
    /// (audited). One of another worker, or none, is
    /// [`Error::ScheduledNotFound`]; one that already fired, finished or
    /// was cancelled is [`Error::ScheduledRefused`].
    pub async fn cancel_scheduled_drain(
        &self,
        worker: &WorkerId,
        id: &str,
        actor: &str,
    ) -> Result<ScheduledAction> {
        for _ in 0..CAS_ATTEMPTS {
            let snapshot = self
                .shared
                .store
                .scheduled(id)
                .await?
                .filter(|s| &s.action.worker == worker && s.action.kind == ActionKind::Drain)
                .ok_or_else(|| Error::ScheduledNotFound(id.to_owned()))?;
            let cancelled = snapshot.action.cancel(actor, self.shared.clock.now())?;
            let written = self
                .shared
                .store
                .put_scheduled(&cancelled, Some(snapshot.version))
                .await?;
            if let CasOutcome::Written { .. } = written {
                self.audit_scheduled(actor, "cancel-scheduled-drain", &cancelled)
                    .await?;
                return Ok(cancelled);
            }
        }
        Err(Error::Conflict {
            what: format!("scheduled action {id}"),
        })
    }

    /// The leader's step (run by the background loop's tick): claims each
    /// due action (one replica wins each claim) and carries it out.
    /// Answers how many it fired. `fence` is the background lease, carried
    /// by a failure's alert.
    pub async fn fire_due_scheduled(&self, fence: Option<&Lease>) -> Result<u32> {
        let now = self.shared.clock.now();
        let due = self
            .shared
            .store
            .open_scheduled(Some(now), FIRED_PER_TICK)
            .await?;
        let mut fired = 0;
        for snapshot in due {
            let Some(claimed) = snapshot.action.claim(now, CLAIM_TTL) else {
                continue;
            };
            let written = self
                .shared
                .store
                .put_scheduled(&claimed, Some(snapshot.version))
                .await?;
            let CasOutcome::Written { version } = written else {
                continue;
            };
            self.fire(
                ScheduledSnapshot {
                    action: claimed,
                    version,
                },
                fence,
            )
            .await?;
            fired += 1;
        }
        Ok(fired)
    }

    /// Carries out a claimed action and records how it went. A failure
    /// the store causes leaves the action claimed: it is claimed again
    /// once the claim runs out.
    async fn fire(&self, claimed: ScheduledSnapshot, fence: Option<&Lease>) -> Result<()> {
        let a = &claimed.action;
        let drained = self
            .admin_with_reason(
                &a.worker,
                AdminAction::Drain { deadline: None },
                &a.actor,
                Some(&a.reason),
            )
            .await;
        let failure: Option<(String, Vec<ExamId>)> = match drained {
            Ok(_) => None,
            Err(Error::Frozen(frozen)) => {
                let exams = frozen
                    .freeze
                    .exams
                    .iter()
                    .map(|e| e.exam.id.clone())
                    .collect();
                Some((Error::Frozen(frozen).to_string(), exams))
            }
            Err(e @ (Error::WorkerNotFound(_) | Error::Transition(_) | Error::Invalid(_))) => {
                Some((e.to_string(), Vec::new()))
            }
            Err(e) => return Err(e),
        };
        if let Some((reason, exams)) = &failure {
            let kind = EventKind::WorkerScheduledDrainFailed {
                worker: a.worker.clone(),
                action: a.id.clone(),
                actor: a.actor.clone(),
                reason: reason.clone(),
                exams: exams.clone(),
            };
            // Written ahead of the mark, under a key naming the action: a
            // leader that fires it again after a crash writes it once.
            let key = alerts::observed_key(&kind, &a.id);
            self.shared.record_observed(kind, key, fence).await?;
        }
        let now = self.shared.clock.now();
        let Some(finished) = a.finish(now, failure.map(|(reason, _)| reason)) else {
            return Ok(());
        };
        let written = self
            .shared
            .store
            .put_scheduled(&finished, Some(claimed.version))
            .await?;
        if let CasOutcome::Written { .. } = written {
            self.audit_scheduled(&a.actor, "scheduled-drain", &finished)
                .await?;
        }
        Ok(())
    }

    /// Audits `action` of `scheduled` (in the state it was written in)
    /// by `actor`.
    async fn audit_scheduled(
        &self,
        actor: &str,
        action: &str,
        scheduled: &ScheduledAction,
    ) -> Result<()> {
        let mut detail = serde_json::json!({
            "id": scheduled.id,
            "at": format_rfc3339(scheduled.at),
            "reason": scheduled.reason,
            "state": scheduled.state.name(),
        });
        if let ActionState::Failed { reason, .. } = &scheduled.state {
            detail["failure"] = reason.clone().into();
        }
        self.shared
            .audit(actor, action, scheduled.worker.as_str(), detail)
            .await
    }
}
