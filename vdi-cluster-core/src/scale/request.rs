//! A capacity request as stored.

use serde::{Deserialize, Serialize};

use crate::ids::{ExamId, WorkerId};
use crate::scheduler::Constraints;
use crate::time::Timestamp;

/// Where a capacity request stands (see the [module docs](super)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum CapacityState {
    /// Stored; the hook has not confirmed it yet (retried until it does).
    Pending,
    /// The hook confirmed it and named the workers it is starting.
    Requested,
    /// Every worker it named has joined and takes sessions.
    Joined,
    /// The deadline passed before every worker it named had joined.
    Missing,
    /// No booked exam needs its workers any more: they are draining.
    Releasing,
    /// Its workers were drained, the hook stopped them and they were
    /// removed.
    Released,
}

impl CapacityState {
    /// The state's name, as the API and the audit trail write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Requested => "requested",
            Self::Joined => "joined",
            Self::Missing => "missing",
            Self::Releasing => "releasing",
            Self::Released => "released",
        }
    }

    /// Whether the request still holds (or promises) workers.
    pub fn is_live(self) -> bool {
        !matches!(self, Self::Released)
    }
}

/// Workers asked of the scale hook for exams that would be short.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CapacityRequest {
    /// `cap-{examId}-{startsAt ms}` of the exam that needed it: the same
    /// on every replica.
    pub id: String,
    /// The exams short at the peak it covers, the one that needed it
    /// first.
    pub exams: Vec<ExamId>,
    /// What the new workers must offer (the first exam's constraints).
    pub constraints: Constraints,
    /// Slots missing at the peak.
    pub slots: u32,
    /// When the workers must have joined: the first exam's prewarm lead
    /// begins.
    pub deadline: Timestamp,
    /// The last instant any of its exams needs capacity (the latest
    /// window's end).
    pub needed_until: Timestamp,
    /// Where it stands.
    pub state: CapacityState,
    /// The workers the hook said it is starting.
    pub workers: Vec<WorkerId>,
    /// Calls of the hook for the current step so far.
    pub attempts: u32,
    /// When the current step may be tried (again).
    pub next_attempt_at: Timestamp,
    /// The last failure of the hook, until a call succeeds.
    pub last_error: Option<String>,
    /// When it was stored.
    pub created_at: Timestamp,
    /// When its state last changed.
    pub updated_at: Timestamp,
}

impl CapacityRequest {
    /// The id of the request an exam starting at `starts_at` needs.
    pub fn id_for(exam: &ExamId, starts_at: Timestamp) -> String {
        format!("cap-{exam}-{}", starts_at.as_millis())
    }

    /// This request moved to `state` at `now`, its attempts reset.
    pub fn moved_to(&self, state: CapacityState, now: Timestamp) -> Self {
        Self {
            state,
            attempts: 0,
            next_attempt_at: now,
            last_error: None,
            updated_at: now,
            ..self.clone()
        }
    }
}
