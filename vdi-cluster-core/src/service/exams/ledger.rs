//! The disruption ledger as operators and the exam application read it:
//! a session's entries and lost time, an exam's students with lost time
//! and its figures (the arithmetic is [`crate::ledger`]'s).

use super::Exams;
use crate::error::Result;
use crate::ids::{ExamId, SessionKey};
use crate::ledger::{Disruption, ExamLost, LedgerOrder, session_lost_ms};

/// A session's ledger: its entries, oldest first, and its lost time.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SessionLedger {
    /// Every interruption, oldest first.
    pub entries: Vec<Disruption>,
    /// The time they cost, overlaps counted once, milliseconds.
    pub lost_ms: u64,
}

impl Exams {
    /// A session's ledger (empty for a session with no interruption, or
    /// none at all).
    pub async fn session_ledger(&self, key: &SessionKey) -> Result<SessionLedger> {
        let mut entries = self.shared.store.disruptions(key).await?;
        entries.sort_by(|a, b| (a.started_at, &a.id).cmp(&(b.started_at, &b.id)));
        Ok(SessionLedger {
            lost_ms: session_lost_ms(&entries),
            entries,
        })
    }

    /// An exam's ledger: every student with lost time, in `order`, and the
    /// exam's total, median and largest lost time. Read for any exam id,
    /// booked or not (the ledger outlives the calendar's entry).
    pub async fn exam_ledger(&self, exam: &ExamId, order: LedgerOrder) -> Result<ExamLost> {
        let entries = self.shared.store.exam_disruptions(exam).await?;
        Ok(ExamLost::from_entries(entries, order))
    }
}
