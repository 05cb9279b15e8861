//! Admin transitions: drain, activate, disable, enable.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::CAS_ATTEMPTS;
use super::Fleet;
use super::freeze::{Forced, FreezeOverride};
use crate::error::{Error, Result};
use crate::events::EventKind;
use crate::ids::{ExamId, UserId, WorkerId};
use crate::policy::{AdminAction, AdminPolicy, DrainStatus, PolicyEvent, Transition, transition};
use crate::service::shared::reason::validate_reason;
use crate::store::CasOutcome;
use crate::time::Timestamp;
use crate::worker::WorkerView;

/// Most dispatches listed when showing what blocks a drain.
const DRAIN_LISTING_LIMIT: usize = 10_000;

/// The result of an admin action.
#[derive(Debug, Clone, PartialEq)]
pub struct AdminOutcome {
    /// The worker after the action.
    pub worker: WorkerView,
    /// Policy before and after (equal for a no-op).
    pub transition: Transition,
}

/// What a worker's drain is waiting for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DrainInfo {
    /// The worker.
    pub code: WorkerId,
    /// `none | draining | drained`.
    pub drain_status: DrainStatus,
    /// Admin flag.
    pub is_draining: bool,
    /// Drain deadline, if any.
    pub deadline: Option<Timestamp>,
    /// `activeSessions` the worker last reported.
    pub reported_active: u32,
    /// Dispatch records and reservations still on the worker.
    pub dispatched: u32,
    /// The students still on it, by exam.
    pub blocking: BTreeMap<ExamId, Vec<UserId>>,
}

impl Fleet {
    /// Applies an operator's action as a compare-and-set on the worker's
    /// current policy; retried from a fresh read when a heartbeat or a
    /// reservation races it.
    /// Illegal actions and disabling a worker that still has sessions
    /// without `force` are errors. Audited with `actor`.
    pub async fn admin(
        &self,
        id: &WorkerId,
        action: AdminAction,
        actor: &str,
    ) -> Result<AdminOutcome> {
        self.admin_with_reason(id, action, actor, None).await
    }

    /// [`admin`](Self::admin) with the operator's reason (a forced disable
    /// asks for one), kept in the audit entry. A reason is 1 to
    /// [`MAX_REASON_CHARS`] characters once trimmed, without control
    /// characters.
    pub async fn admin_with_reason(
        &self,
        id: &WorkerId,
        action: AdminAction,
        actor: &str,
        reason: Option<&str>,
    ) -> Result<AdminOutcome> {
        self.admin_forcing(id, action, actor, reason, FreezeOverride::Respect)
            .await
    }

    /// [`admin_with_reason`](Self::admin_with_reason), where a drain or a
    /// disable that changes the worker's policy is first checked against
    /// the change freeze (see the `freeze` module): refused with
    /// [`Error::Frozen`] when it makes an exam under way fit worse, unless
    /// `force` forces it (audited as `freeze-override`, with
    /// `worker.freeze_overridden` written in the policy's own atomic step).
    pub async fn admin_forcing(
        &self,
        id: &WorkerId,
        action: AdminAction,
        actor: &str,
        reason: Option<&str>,
        force: FreezeOverride<'_>,
    ) -> Result<AdminOutcome> {
        let reason = reason.map(validate_reason).transpose()?;
        let takes_out = matches!(
            action,
            AdminAction::Drain { .. } | AdminAction::Disable { .. }
        );
        let mut checked: Option<Option<Forced>> = None;
        for _ in 0..CAS_ATTEMPTS {
            let view = self.shared.worker_view(id).await?;
            let now = self.shared.clock.now();
            let t = transition(
                view.record.policy,
                PolicyEvent::Admin(action),
                view.occupancy(),
                now,
            )?;
            if !t.changed() {
                return Ok(AdminOutcome {
                    worker: view,
                    transition: t,
                });
            }
            if takes_out && checked.is_none() {
                checked = Some(self.check_freeze(id, action.name(), actor, force).await?);
            }
            let forced = checked.as_ref().and_then(Option::as_ref);
            let extra = forced.map(|f| &f.event);
            if let CasOutcome::Written { .. } = self.write_policy(&view, t, actor, extra).await? {
                self.placement.invalidate_snapshot();
                let mut detail = serde_json::json!({
                    "from": t.from.name(),
                    "to": t.to.name(),
                    "sessions": view.occupancy().sessions(),
                });
                if let Some(reason) = reason {
                    detail["reason"] = reason.into();
                }
                self.shared
                    .audit(actor, action.name(), id.as_str(), detail)
                    .await?;
                if let Some(forced) = checked.flatten() {
                    self.forced_written(id, actor, forced).await?;
                }
                return Ok(AdminOutcome {
                    worker: self.shared.worker_view(id).await?,
                    transition: t,
                });
            }
        }
        Err(Error::Conflict {
            what: format!("worker {id}"),
        })
    }

    /// Writes `t.to` as a compare-and-set on the version `view` was read
    /// at. A transition decided because the worker was empty also checks,
    /// in the backend's atomic step, that its dispatched count is still the
    /// one `view` saw, so a reservation racing it either lands first (and
    /// the write conflicts; the caller decides again from a fresh read) or
    /// reads the new policy and is refused.
    ///
    /// Its `WorkerPolicy` event (by `actor`), and `extra` if any, are
    /// written to the outbox in the same atomic step; the policy event is
    /// emitted once written.
    async fn write_policy(
        &self,
        view: &WorkerView,
        t: Transition,
        actor: &str,
        extra: Option<&EventKind>,
    ) -> Result<CasOutcome> {
        let mut record = view.record.clone();
        record.policy = t.to;
        let event = EventKind::WorkerPolicy {
            worker: view.id().clone(),
            from: t.from,
            to: t.to,
            actor: actor.to_owned(),
        };
        let dispatched = t.requires_empty().then_some(view.dispatched);
        let mut events = vec![&event];
        events.extend(extra);
        let outcome = self
            .shared
            .put_worker_alerting(&record, Some(view.version), dispatched, &events)
            .await?;
        if let CasOutcome::Written { .. } = outcome {
            self.shared.emit(event);
        }
        Ok(outcome)
    }

    /// Applies the observation transition (draining → drained when empty,
    /// deadline → force-disabled) if it changes anything.
    pub(crate) async fn observe_policy(&self, view: &WorkerView) -> Result<Option<Transition>> {
        let t = transition(
            view.record.policy,
            PolicyEvent::Observed,
            view.occupancy(),
            self.shared.clock.now(),
        )?;
        if !t.changed() {
            return Ok(None);
        }
        match self.write_policy(view, t, "system", None).await? {
            CasOutcome::Written { .. } => {
                self.placement.invalidate_snapshot();
                Ok(Some(t))
            }
            // Someone else wrote first; the next observation sees it.
            CasOutcome::Conflict { .. } => Ok(None),
        }
    }

    /// Shows what still blocks a worker's drain (the exam platform's "drain graceful"):
    /// its sessions by exam. Observing may complete the drain.
    pub async fn drain_info(&self, id: &WorkerId) -> Result<DrainInfo> {
        let mut view = self.shared.worker_view(id).await?;
        if self.observe_policy(&view).await?.is_some() {
            view = self.shared.worker_view(id).await?;
        }
        let mut blocking: BTreeMap<ExamId, Vec<UserId>> = BTreeMap::new();
        for d in self
            .shared
            .store
            .worker_dispatches(id, DRAIN_LISTING_LIMIT)
            .await?
        {
            blocking
                .entry(d.key.exam_id)
                .or_default()
                .push(d.key.user_id);
        }
        Ok(DrainInfo {
            code: id.clone(),
            drain_status: view.drain_status(),
            is_draining: view.record.policy.is_draining(),
            deadline: match view.record.policy {
                AdminPolicy::Draining { deadline } => deadline,
                _ => None,
            },
            reported_active: view.record.reported_active,
            dispatched: view.dispatched,
            blocking,
        })
    }
}
