//! What an allocation answers: the live dispatch and how it came about.

use serde::{Deserialize, Serialize};

use crate::dispatch::Dispatch;
use crate::ids::WorkerId;
use crate::scheduler::ChoiceReason;

/// How an allocation was satisfied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum AllocateOutcome {
    /// The session already had a live dispatch; it is returned unchanged.
    Existing,
    /// A new dispatch was placed.
    Placed {
        /// Why this worker.
        reason: ChoiceReason,
    },
    /// The session's previous worker failed; it was placed anew and the old
    /// dispatch superseded.
    Redispatched {
        /// Why this worker.
        reason: ChoiceReason,
        /// The failed worker.
        from: WorkerId,
    },
}

/// The result of [`Placement::allocate`](super::Placement::allocate).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Allocation {
    /// The live dispatch.
    pub dispatch: Dispatch,
    /// How it came about.
    pub outcome: AllocateOutcome,
    /// Worker calls that failed before this one succeeded.
    pub failed_calls: u32,
    /// Reservations refused because the snapshot was stale (contention).
    pub contention_retries: u32,
    /// Something the student or the exam application should know (the
    /// session's worker is silent, but it was kept during a mass failure).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
}

impl Allocation {
    /// The session's existing dispatch, handed back unchanged.
    pub(crate) fn existing(dispatch: Dispatch, warning: Option<String>) -> Self {
        Self {
            dispatch,
            outcome: AllocateOutcome::Existing,
            failed_calls: 0,
            contention_retries: 0,
            warning,
        }
    }
}
