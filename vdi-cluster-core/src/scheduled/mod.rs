//! Scheduled actions, pure: an operator's change of a worker that the
//! leader carries out at a set time (a drain at the start of a
//! maintenance window).
//!
//! An action is stored when it is scheduled and then only moves forward:
//!
//! ```text
//! pending ──claim──▶ firing ──finish──▶ done | failed
//!    │                  │ (claim expired: claimed again)
//!    └──cancel──▶ cancelled
//! ```
//!
//! Every move is decided here, on a record read at a version, and written
//! by the store's compare-and-set on that version
//! ([`ScheduledActions::put_scheduled`]): of several replicas that read
//! the same pending action, one claim is written and the others conflict,
//! so an action is fired once; a cancellation and a claim racing have one
//! winner, so a cancelled action never fires. A claim lasts until its
//! deadline: a leader that dies between claiming and finishing leaves the
//! action to be claimed again once the deadline has passed (a drain
//! repeated is a no-op).

mod store;

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::ids::WorkerId;
use crate::time::Timestamp;

pub use store::{ScheduledActions, ScheduledSnapshot};

/// How long a leader's claim on an action lasts before another may claim
/// it again.
pub const CLAIM_TTL: Duration = Duration::from_secs(120);

/// What a scheduled action does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ActionKind {
    /// Drain the worker (checked by the change freeze when it fires).
    Drain,
}

impl ActionKind {
    /// Its name in the API and the audit trail.
    pub fn name(self) -> &'static str {
        match self {
            Self::Drain => "drain",
        }
    }
}

/// Where a scheduled action stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "is")]
pub enum ActionState {
    /// Waiting for its time.
    Pending,
    /// A leader claimed it and is carrying it out.
    Firing {
        /// Until when the claim holds; after it the action may be claimed
        /// again.
        until: Timestamp,
    },
    /// Carried out.
    Done {
        /// When.
        at: Timestamp,
    },
    /// Cancelled before it fired.
    Cancelled {
        /// When.
        at: Timestamp,
        /// Who.
        by: String,
    },
    /// It could not be carried out (the change freeze refused it, the
    /// worker was gone, …).
    Failed {
        /// When.
        at: Timestamp,
        /// Why, for humans.
        reason: String,
    },
}

impl ActionState {
    /// Its name in the API: `pending`, `firing`, `done`, `cancelled`,
    /// `failed`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Firing { .. } => "firing",
            Self::Done { .. } => "done",
            Self::Cancelled { .. } => "cancelled",
            Self::Failed { .. } => "failed",
        }
    }

    /// Pending or firing: the action has not finished. Stores index the
    /// open actions by time.
    pub fn is_open(&self) -> bool {
        matches!(self, Self::Pending | Self::Firing { .. })
    }
}

/// An operator's change of a worker, scheduled for a time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScheduledAction {
    /// Its id (`sa_…`).
    pub id: String,
    /// The worker.
    pub worker: WorkerId,
    /// What it does.
    pub kind: ActionKind,
    /// When it is due.
    pub at: Timestamp,
    /// Who scheduled it (the change is audited under this name).
    pub actor: String,
    /// Why, as the operator gave it.
    pub reason: String,
    /// When it was scheduled.
    pub created_at: Timestamp,
    /// Where it stands.
    pub state: ActionState,
}

/// Why a move of a scheduled action is not allowed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("scheduled action {id} is {state}: it cannot be {verb}")]
pub struct ActionRefused {
    /// The action.
    pub id: String,
    /// Its state.
    pub state: &'static str,
    /// The move refused (`cancelled`).
    pub verb: &'static str,
}

impl ScheduledAction {
    /// A new pending action.
    pub fn pending(
        id: String,
        worker: WorkerId,
        kind: ActionKind,
        at: Timestamp,
        actor: &str,
        reason: &str,
        now: Timestamp,
    ) -> Self {
        Self {
            id,
            worker,
            kind,
            at,
            actor: actor.to_owned(),
            reason: reason.to_owned(),
            created_at: now,
            state: ActionState::Pending,
        }
    }

    /// Whether a leader may claim it at `now`: it is due and pending, or
    /// its previous claim has run out.
    pub fn claimable(&self, now: Timestamp) -> bool {
        self.at <= now
            && match self.state {
                ActionState::Pending => true,
                ActionState::Firing { until } => until <= now,
                _ => false,
            }
    }

    /// The action claimed at `now` until `now + ttl`, if it is claimable.
    pub fn claim(&self, now: Timestamp, ttl: Duration) -> Option<Self> {
        self.claimable(now).then(|| Self {
            state: ActionState::Firing {
                until: now.plus(ttl),
            },
            ..self.clone()
        })
    }

    /// The action cancelled by `by` at `now`; only a pending one can be.
    pub fn cancel(&self, by: &str, now: Timestamp) -> Result<Self, ActionRefused> {
        match self.state {
            ActionState::Pending => Ok(Self {
                state: ActionState::Cancelled {
                    at: now,
                    by: by.to_owned(),
                },
                ..self.clone()
            }),
            _ => Err(ActionRefused {
                id: self.id.clone(),
                state: self.state.name(),
                verb: "cancelled",
            }),
        }
    }

    /// The action finished at `now`: done, or failed with `failure`.
    /// Only a firing action finishes; `None` otherwise.
    pub fn finish(&self, now: Timestamp, failure: Option<String>) -> Option<Self> {
        matches!(self.state, ActionState::Firing { .. }).then(|| Self {
            state: match failure {
                None => ActionState::Done { at: now },
                Some(reason) => ActionState::Failed { at: now, reason },
            },
            ..self.clone()
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn action(id: &str, at: u64) -> ScheduledAction {
        ScheduledAction::pending(
            id.to_owned(),
            WorkerId::parse("code", "w1").unwrap(),
            ActionKind::Drain,
            Timestamp(at),
            "alice",
            "kernel patch",
            Timestamp(0),
        )
    }

    #[test]
    fn a_pending_action_is_claimed_once_due_and_again_only_after_its_claim_runs_out() {
        let ttl = Duration::from_millis(100);
        let a = action("sa_1", 1_000);
        assert!(a.claim(Timestamp(999), ttl).is_none(), "not due yet");
        let claimed = a.claim(Timestamp(1_000), ttl).unwrap();
        assert_eq!(
            claimed.state,
            ActionState::Firing {
                until: Timestamp(1_100)
            }
        );
        assert!(claimed.claim(Timestamp(1_099), ttl).is_none());
        assert!(claimed.claim(Timestamp(1_100), ttl).is_some(), "ran out");
        let done = claimed.finish(Timestamp(1_050), None).unwrap();
        assert_eq!(
            done.state,
            ActionState::Done {
                at: Timestamp(1_050)
            }
        );
        assert!(done.claim(Timestamp(5_000), ttl).is_none());
        assert!(done.finish(Timestamp(5_000), None).is_none());
        assert!(!done.state.is_open());
    }

    #[test]
    fn only_a_pending_action_is_cancelled_and_a_cancelled_one_never_fires() {
        let a = action("sa_1", 1_000);
        let cancelled = a.cancel("bob", Timestamp(10)).unwrap();
        assert_eq!(cancelled.state.name(), "cancelled");
        assert!(cancelled.claim(Timestamp(2_000), CLAIM_TTL).is_none());
        let firing = a.claim(Timestamp(1_000), CLAIM_TTL).unwrap();
        let refused = firing.cancel("bob", Timestamp(1_001)).unwrap_err();
        assert_eq!(refused.state, "firing");
        assert!(a.finish(Timestamp(1), None).is_none(), "a pending one");
    }

    #[test]
    fn the_record_round_trips_through_json() {
        let a = action("sa_1", 1_000)
            .claim(Timestamp(1_000), CLAIM_TTL)
            .unwrap()
            .finish(Timestamp(1_001), Some("frozen".into()))
            .unwrap();
        let json = serde_json::to_string(&a).unwrap();
        assert!(json.contains("\"is\":\"failed\""), "{json}");
        assert_eq!(serde_json::from_str::<ScheduledAction>(&json).unwrap(), a);
    }
}
