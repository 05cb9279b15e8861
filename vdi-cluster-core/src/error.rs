//! The public error type of vdi-cluster.
//!
//! One enum with the variants callers act on. Backends keep private error
//! types and convert into [`Error::Unavailable`] (the store could not be
//! reached or answered wrongly) keeping the source, never a string of it.

use std::fmt;

use crate::ids::{ExamId, SessionKey, WorkerId};
use crate::policy::TransitionError;
use crate::scheduler::NoCapacity;
use crate::validation::ValidationError;

/// A result with vdi-cluster's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in vdi-cluster.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Input was rejected; nothing was written.
    #[error("invalid input: {0}")]
    Invalid(#[from] ValidationError),

    /// The worker is not registered.
    #[error("Worker not found: {0}")]
    WorkerNotFound(WorkerId),

    /// The session has no dispatch.
    #[error("Session not found: {0}")]
    SessionNotFound(SessionKey),

    /// No exam is booked with this id.
    #[error("Exam not found: {0}")]
    ExamNotFound(ExamId),

    /// No webhook endpoint has this id.
    #[error("Webhook not found: {0}")]
    WebhookNotFound(String),

    /// No scheduled action has this id.
    #[error("Scheduled action not found: {0}")]
    ScheduledNotFound(String),

    /// No session or prewarmed machine has this VM id
    /// ([`VmId`](crate::vm::VmId)).
    #[error("VM not found: {0}")]
    VmNotFound(String),

    /// A scheduled action cannot make the move asked (a cancellation of
    /// one that already fired).
    #[error(transparent)]
    ScheduledRefused(#[from] crate::scheduled::ActionRefused),

    /// An exam with this id is already booked.
    #[error("Exam already booked: {0}")]
    ExamExists(ExamId),

    /// An admin transition is not allowed from the worker's current state.
    #[error(transparent)]
    Transition(#[from] TransitionError),

    /// Another request is placing the same session right now; retry shortly.
    #[error("an allocation for {0} is already in progress")]
    AllocationInProgress(SessionKey),

    /// The caller may not move the worker to another host (it holds only
    /// the shared worker token, or none).
    #[error(transparent)]
    Relocation(#[from] crate::worker::RelocationRefused),

    /// Another live process holds the worker's record: a second agent
    /// reporting the same code is refused, not given the record.
    #[error(transparent)]
    Takeover(#[from] crate::worker::TakeoverRefused),

    /// A concurrent writer kept changing the record; the operation was not
    /// applied. Retrying is safe.
    #[error("conflicting concurrent update of {what}; retry")]
    Conflict {
        /// What was contended.
        what: String,
    },

    /// The change freeze refused a change of workers: exams under way
    /// would fit worse without them. Forcing it with a reason overrides.
    #[error(
        "change freeze: {} would make {} exam(s) under way fit worse; safe from {}",
        .0.change, .0.freeze.exams.len(), crate::exam::format_rfc3339(.0.freeze.safe_from)
    )]
    Frozen(Box<crate::exam::FrozenChange>),

    /// No worker can take the session now.
    #[error(transparent)]
    NoCapacity(Box<NoCapacity>),

    /// A worker node refused or failed a call that had no fallback.
    #[error("worker {worker} failed: {source}")]
    Worker {
        /// The worker that failed.
        worker: WorkerId,
        /// What went wrong.
        #[source]
        source: crate::client::WorkerCallError,
    },

    /// A fenced write was refused: the lease it carried is no longer held
    /// by its holder under its token (it expired, or another replica took
    /// it). Nothing was written.
    #[error("lease {lease} is no longer held under token {token}; the write was refused")]
    Fenced {
        /// The lease's name.
        lease: String,
        /// The token the write carried.
        token: u64,
    },

    /// The storage backend is unreachable or answered wrongly. The outcome
    /// of the step is unknown (a write whose answer was lost may have been
    /// applied); every step is idempotent or guarded by a dispatch id or a
    /// version, so retrying later is safe.
    #[error("storage backend unavailable: {source}")]
    Unavailable {
        /// The backend's own error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
}

impl Error {
    /// Wraps a backend error as [`Error::Unavailable`].
    pub fn unavailable(source: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Unavailable {
            source: Box::new(source),
        }
    }

    /// A [`ValidationError`] as an [`Error`].
    pub fn invalid(field: impl Into<String>, message: impl fmt::Display) -> Self {
        Self::Invalid(ValidationError::new(field, message.to_string()))
    }
}

impl From<NoCapacity> for Error {
    fn from(value: NoCapacity) -> Self {
        Self::NoCapacity(Box::new(value))
    }
}
