//! [`Rehearsals`]: the exams' rehearsal records.
//!
//! # Contract
//!
//! Every implementation guarantees, for any number of handles sharing one
//! storage:
//!
//! * **Insert if absent, then compare-and-set.**
//!   [`put_rehearsal`](Rehearsals::put_rehearsal) with `expected` 0 writes
//!   an exam's record only if none is stored, at version 1; with a
//!   version, it replaces the record only if that is still the stored
//!   version, and bumps it. Each is one atomic step: of replicas racing to
//!   write the same exam's record from the same read, exactly one wins.
//! * **Events ride the write.** The outbox entries passed with a write are
//!   written in the same atomic step, and only if the write applied
//!   (`exam.rehearsal_failed` commits with the record that names the
//!   failing workers).
//! * **One view.** A record is read with its version as one consistent
//!   read; [`rehearsals`](Rehearsals::rehearsals) answers every record by
//!   exam id.
//! * **Removal compares too.** [`remove_rehearsal`](Rehearsals::remove_rehearsal)
//!   deletes an exam's record only if its stored version is the one the
//!   caller read, in one atomic step: a write that came after that read
//!   is never lost to it.
//! * The backend never judges a worker nor decides go or no-go: core does.

use std::fmt::Debug;

use async_trait::async_trait;

use super::Rehearsal;
use crate::error::Result;
use crate::ids::ExamId;
use crate::outbox::OutboxEntry;

/// A rehearsal as stored, with its version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRehearsal {
    /// The record.
    pub rehearsal: Rehearsal,
    /// Bumped by every write; 1 once inserted.
    pub version: u64,
}

/// Storage of the exams' rehearsals. See the module's contract.
#[async_trait]
pub trait Rehearsals: Debug + Send + Sync + 'static {
    /// `exam`'s record, if it was rehearsed.
    async fn rehearsal(&self, exam: &ExamId) -> Result<Option<StoredRehearsal>>;

    /// Every stored record, by exam id.
    async fn rehearsals(&self) -> Result<Vec<StoredRehearsal>>;

    /// Writes `rehearsal` (under its exam) and `entries` to the outbox if
    /// the stored version is `expected` (0: none stored); bumps the
    /// version. `false` (nothing written) otherwise.
    async fn put_rehearsal(
        &self,
        rehearsal: &Rehearsal,
        expected: u64,
        entries: &[OutboxEntry],
    ) -> Result<bool>;

    /// Removes `exam`'s record if its stored version is `expected` (a
    /// cancelled exam's, see `Exams::cancel_exam`); `false` (nothing
    /// removed) when none is stored or the version is another.
    async fn remove_rehearsal(&self, exam: &ExamId, expected: u64) -> Result<bool>;
}
