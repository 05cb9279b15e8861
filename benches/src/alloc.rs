//! One allocation's outcome, the tally of a phase of them, and the
//! students of a run: shared by every target (in process, over HTTP) and
//! scenario.

use std::sync::Arc;

use vdi_cluster_core::service::{AllocateOutcome, Allocation, SessionRequest};
use vdi_cluster_core::{Error, SessionKey};

use crate::driver::{Tally, count_failure, merge_failure};

/// Outcomes of allocations.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct AllocTally {
    /// New placements.
    pub placed: u64,
    /// Answered with an existing dispatch (never expected in a surge).
    pub existing: u64,
    /// Typed `NoCapacity` refusals.
    pub no_capacity: u64,
    /// Students of a booked exam answered with a place in its waiting
    /// room (HTTP 202).
    pub queued: u64,
    /// Any other error.
    pub errors: u64,
    /// The first such error.
    pub first_error: Option<String>,
    /// Reservations refused because the snapshot was stale, summed.
    pub contention_retries: u64,
    /// Allocations that needed at least one such retry.
    pub contended: u64,
    /// Worker calls that failed, summed.
    pub failed_calls: u64,
}

/// The result of one allocation, as the driver tallies it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllocOutcome {
    /// Placed anew, after this many contention retries and failed worker
    /// calls.
    Placed {
        /// Reservations refused because the snapshot was stale.
        retries: u32,
        /// Worker calls that failed.
        failed_calls: u32,
    },
    /// The session's existing dispatch was returned.
    Existing,
    /// A typed `NoCapacity` refusal (HTTP 503).
    NoCapacity,
    /// A place in the exam's waiting room (HTTP 202).
    Queued,
    /// Anything else.
    Failed(String),
}

impl AllocOutcome {
    /// Classifies the answer of [`Placement::allocate`](vdi_cluster_core::service::Placement::allocate).
    pub fn of(result: Result<Allocation, Error>) -> Self {
        match result {
            Ok(a) if a.outcome == AllocateOutcome::Existing => Self::Existing,
            Ok(a) => Self::Placed {
                retries: a.contention_retries,
                failed_calls: a.failed_calls,
            },
            Err(Error::NoCapacity(_)) => Self::NoCapacity,
            Err(e) => Self::Failed(e.to_string()),
        }
    }

    /// Classifies the answer of [`Placement::request_session`](vdi_cluster_core::service::Placement::request_session)
    /// (the session API's entry point).
    pub fn of_request(result: Result<SessionRequest, Error>) -> Self {
        match result {
            Ok(SessionRequest::Placed(a)) => Self::of(Ok(*a)),
            // A seat held while its start waits for a permit: the
            // student has it, the desktop comes after the answer.
            Ok(SessionRequest::Starting(_)) => Self::Placed {
                retries: 0,
                failed_calls: 0,
            },
            Ok(SessionRequest::Queued(_)) => Self::Queued,
            Err(e) => Self::of(Err(e)),
        }
    }
}

impl Tally for AllocTally {
    type Outcome = AllocOutcome;

    fn add(&mut self, outcome: Self::Outcome) {
        match outcome {
            AllocOutcome::Placed {
                retries,
                failed_calls,
            } => {
                self.placed += 1;
                self.contention_retries += u64::from(retries);
                self.contended += u64::from(retries > 0);
                self.failed_calls += u64::from(failed_calls);
            }
            AllocOutcome::Existing => self.existing += 1,
            AllocOutcome::NoCapacity => self.no_capacity += 1,
            AllocOutcome::Queued => self.queued += 1,
            AllocOutcome::Failed(e) => count_failure(&mut self.errors, &mut self.first_error, e),
        }
    }

    fn merge(&mut self, other: Self) {
        self.placed += other.placed;
        self.existing += other.existing;
        self.no_capacity += other.no_capacity;
        self.queued += other.queued;
        merge_failure(
            (&mut self.errors, &mut self.first_error),
            (other.errors, other.first_error),
        );
        self.contention_retries += other.contention_retries;
        self.contended += other.contended;
        self.failed_calls += other.failed_calls;
    }
}

/// The session key of student `i` of a run.
pub fn student(i: usize, exams: usize) -> SessionKey {
    SessionKey::parse(
        format!("exam-{}", i % exams.max(1)),
        format!("student-{i:07}"),
    )
    .expect("valid session key")
}

/// The students of a run, `0..n`, spread over `exams` exams.
pub fn students(n: usize, exams: usize) -> Arc<Vec<SessionKey>> {
    Arc::new((0..n).map(|i| student(i, exams)).collect())
}
