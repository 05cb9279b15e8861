//! The [`DisruptionLedger`] storage trait.

use std::fmt::Debug;

use async_trait::async_trait;

use super::{Disruption, OpenInterruption};
use crate::error::Result;
use crate::ids::{ExamId, SessionKey};

/// Where the ledger's entries are kept.
///
/// # Contract
///
/// * **An entry commits with its cause.** Entries reach the store with the
///   write that caused them
///   ([`Outbox::confirm_with_outbox`](crate::outbox::Outbox::confirm_with_outbox):
///   written only if the reservation is confirmed, in the same atomic
///   step); [`append_disruptions`](Self::append_disruptions) is for a
///   cause that writes nothing else.
/// * **An entry is stored once.** A second entry with the same session
///   and id is skipped, in the same step (a cause written twice, by a
///   retry or by two replicas, has one entry).
/// * **Entries outlive the session.** Releasing a session keeps its
///   entries: the exam office reads them after the exam.
/// * **The first open interruption of a kind is kept.**
///   [`open_interruption`](Self::open_interruption) stores one only if the
///   session has none of its kind, in one step, and answers the one
///   stored; [`close_interruption`](Self::close_interruption) removes it
///   only if it is still the one given (a newer one stays).
///   [`Outbox::put_worker_releasing_lost`](crate::outbox::Outbox::put_worker_releasing_lost)
///   opens one in the same step as each release it makes.
#[async_trait]
pub trait DisruptionLedger: Debug + Send + Sync + 'static {
    /// Writes `entries` (skipping any already stored); answers how many
    /// were new.
    async fn append_disruptions(&self, entries: &[Disruption]) -> Result<u32>;

    /// A session's entries, in the order they were written.
    async fn disruptions(&self, key: &SessionKey) -> Result<Vec<Disruption>>;

    /// Every entry of an exam's sessions (any order).
    async fn exam_disruptions(&self, exam: &ExamId) -> Result<Vec<Disruption>>;

    /// Every exam with an entry in the ledger (any order), for an export.
    async fn ledger_exams(&self) -> Result<Vec<ExamId>>;

    /// Stores `open` unless its session has an open interruption of its
    /// kind; answers the one stored (`open`, or the earlier one).
    async fn open_interruption(&self, open: &OpenInterruption) -> Result<OpenInterruption>;

    /// A session's open interruptions (any order).
    async fn open_interruptions(&self, key: &SessionKey) -> Result<Vec<OpenInterruption>>;

    /// Removes `open` if it is still its session's open interruption of
    /// its kind; whether it was.
    async fn close_interruption(&self, open: &OpenInterruption) -> Result<bool>;
}
