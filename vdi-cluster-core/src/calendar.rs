//! [`ExamStore`]: the exam calendar's storage — booked exams under one
//! version, written only by compare-and-set.
//!
//! # Contract
//!
//! Every implementation guarantees, for any number of handles sharing one
//! storage:
//!
//! * **One version for the whole calendar.** [`ExamStore::exam_calendar`]
//!   reads every exam and the version as one consistent view; every write
//!   to any exam bumps the version by one. An empty calendar has version 0.
//! * **Writes are compare-and-set on that version.**
//!   [`put_exam_if_version`](ExamStore::put_exam_if_version) and
//!   [`delete_exam_if_version`](ExamStore::delete_exam_if_version) apply
//!   only if the version is still the one the caller read, as one atomic
//!   step. So a decision core took over a calendar (admission) is written
//!   only if no other booking changed the calendar since: of two racing
//!   bookings, at most one is written on that version, and the other
//!   re-reads and decides again (invariant D). The backend never judges
//!   admission itself.
//! * **At-risk flags are swapped atomically** and exist only for booked
//!   exams: deleting an exam removes its flag in the same step. A swap
//!   that changes the flag writes the outbox entries it carries
//!   (`exam.at_risk`, `exam.fits_again`) in the same step, and one that
//!   changes nothing writes none: of replicas racing to observe one
//!   transition, only the one whose swap changes the flag writes it, and
//!   a crash cannot separate the flag from its event.

use std::fmt::Debug;

use async_trait::async_trait;

use crate::error::Result;
use crate::exam::Exam;
use crate::ids::ExamId;
use crate::outbox::OutboxEntry;

/// Every booked exam, with the calendar's version.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExamCalendar {
    /// Bumped by every write; 0 for a calendar never written.
    pub version: u64,
    /// The exams, in any order.
    pub exams: Vec<Exam>,
}

impl ExamCalendar {
    /// The exam with this id.
    pub fn get(&self, id: &ExamId) -> Option<&Exam> {
        self.exams.iter().find(|e| &e.id == id)
    }
}

/// Outcome of a compare-and-set on the calendar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CalendarWrite {
    /// Applied; the calendar now has this version.
    Written {
        /// New version.
        version: u64,
    },
    /// The calendar changed since it was read; nothing was written.
    Conflict {
        /// The stored version.
        current: u64,
    },
}

/// Storage of the exam calendar. See the module's contract.
#[async_trait]
pub trait ExamStore: Debug + Send + Sync + 'static {
    /// Every exam and the version, as one view.
    async fn exam_calendar(&self) -> Result<ExamCalendar>;

    /// Inserts `exam`, or replaces the exam with its id, if the calendar's
    /// version is `expected`; bumps it.
    async fn put_exam_if_version(&self, exam: &Exam, expected: u64) -> Result<CalendarWrite>;

    /// Removes the exam `id` and its at-risk flag if the calendar's version
    /// is `expected`; bumps it (also when there was no such exam).
    async fn delete_exam_if_version(&self, id: &ExamId, expected: u64) -> Result<CalendarWrite>;

    /// Sets the exam's at-risk flag to `shortfall` (`None` clears it) and
    /// returns the flag it replaced; writes `entries` to the outbox in the
    /// same atomic step if the flag it replaced differs from `shortfall`.
    /// Does nothing, and returns `None`, if no exam `id` is booked. Does
    /// not change the calendar's version.
    async fn swap_exam_risk(
        &self,
        id: &ExamId,
        shortfall: Option<u32>,
        entries: &[OutboxEntry],
    ) -> Result<Option<u32>>;
}
