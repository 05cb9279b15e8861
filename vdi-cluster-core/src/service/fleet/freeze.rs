//! The change freeze: a change that takes workers out of service (drain,
//! disable, removal, a credential revoked or reset, an agent upgrade) is
//! checked against the exam calendar before it is written.
//!
//! The decision is [`exam::freeze`](crate::exam::freeze): the admission of
//! every exam under way, recomputed on the schedulable capacity without
//! the workers. A frozen change is refused with
//! [`Error::Frozen`](crate::Error::Frozen) (the exams, their shortfall and
//! the earliest instant the change is safe), unless the operator forces it
//! with a reason: then it goes through, audited as `freeze-override` with
//! the actor and the reason, and its `worker.freeze_overridden` event is
//! written with the change (in the change's own atomic step for a drain,
//! a disable and a removal; right after it for a credential, whose store
//! has no outbox).
//!
//! The check reads the calendar and the fleet when the change is asked
//! for; a booking racing it is admitted against the fleet it reads, and
//! the leader's at-risk pass flags what a later change leaves short.

use super::Fleet;
use crate::error::{Error, Result};
use crate::events::EventKind;
use crate::exam::{Capacity, FrozenChange, format_rfc3339, freeze};
use crate::ids::WorkerId;
use crate::service::shared::reason::validate_reason;
use crate::worker::WorkerView;

/// Whether an operator forces a change past the freeze.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FreezeOverride<'a> {
    /// The change is refused if frozen.
    #[default]
    Respect,
    /// The change goes through even if frozen; `reason` is audited and
    /// sent with `worker.freeze_overridden`.
    Force {
        /// Why (1 to 500 characters once trimmed, no control characters).
        reason: &'a str,
    },
}

/// A frozen change the operator forced: what to write and audit with it.
#[derive(Debug, Clone)]
pub(crate) struct Forced {
    /// `worker.freeze_overridden`, written with the change.
    pub(crate) event: EventKind,
    /// The audit entry's detail.
    pub(crate) detail: serde_json::Value,
}

impl Fleet {
    /// The schedulable capacity of `views` (headroom taken off), with and
    /// without `out`.
    pub(crate) fn capacities(
        &self,
        views: &[WorkerView],
        out: &[WorkerId],
    ) -> (Capacity, Capacity) {
        let headroom = self.shared.config.exam_headroom_percent;
        let rest: Vec<WorkerView> = views
            .iter()
            .filter(|v| !out.contains(v.id()))
            .cloned()
            .collect();
        (
            Capacity::of_workers(views, headroom),
            Capacity::of_workers(&rest, headroom),
        )
    }

    /// Checks `change` of `worker` by `actor` against the calendar now:
    /// `Ok(None)` when it keeps every exam under way fitting, the event
    /// and audit detail to write with it when it is frozen and forced,
    /// [`Error::Frozen`] when it is frozen and not forced.
    pub(crate) async fn check_freeze(
        &self,
        worker: &WorkerId,
        change: &str,
        actor: &str,
        force: FreezeOverride<'_>,
    ) -> Result<Option<Forced>> {
        let reason = match force {
            FreezeOverride::Respect => None,
            FreezeOverride::Force { reason } => Some(validate_reason(reason)?),
        };
        let calendar = self.shared.store.exam_calendar().await?;
        if calendar.exams.is_empty() {
            return Ok(None);
        }
        let views = self.shared.worker_views().await?;
        let out = [worker.clone()];
        let (with, without) = self.capacities(&views, &out);
        let now = self.shared.clock.now();
        let Some(found) = freeze(&calendar.exams, &with, &without, now) else {
            return Ok(None);
        };
        let Some(reason) = reason else {
            return Err(Error::Frozen(Box::new(FrozenChange {
                workers: out.to_vec(),
                change: change.to_owned(),
                freeze: found,
            })));
        };
        let exams: Vec<_> = found.exams.iter().map(|e| e.exam.id.clone()).collect();
        let detail = serde_json::json!({
            "change": change,
            "reason": reason,
            "exams": exams.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "safeFrom": format_rfc3339(found.safe_from),
        });
        Ok(Some(Forced {
            event: EventKind::WorkerFreezeOverridden {
                worker: worker.clone(),
                change: change.to_owned(),
                actor: actor.to_owned(),
                reason: reason.to_owned(),
                exams,
            },
            detail,
        }))
    }

    /// Audits and emits a forced change once it is written.
    pub(crate) async fn forced_written(
        &self,
        worker: &WorkerId,
        actor: &str,
        forced: Forced,
    ) -> Result<()> {
        self.shared.emit(forced.event);
        self.shared
            .audit(actor, "freeze-override", worker.as_str(), forced.detail)
            .await
    }

    /// [`forced_written`](Self::forced_written) for a change whose store
    /// has no outbox (a credential): the event's entries are appended
    /// first, right after the change.
    pub(crate) async fn forced_appended(
        &self,
        worker: &WorkerId,
        actor: &str,
        forced: Forced,
    ) -> Result<()> {
        self.shared
            .append_observed(&forced.event, None, None)
            .await?;
        self.forced_written(worker, actor, forced).await
    }
}
