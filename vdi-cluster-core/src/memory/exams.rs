//! [`ExamStore`] on the in-memory backend: the calendar, its version and
//! the at-risk flags, under the store's one mutex.

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;

use super::MemoryStore;
use crate::calendar::{CalendarWrite, ExamCalendar, ExamStore};
use crate::error::Result;
use crate::exam::Exam;
use crate::ids::ExamId;
use crate::outbox::OutboxEntry;

/// The calendar's part of the state.
#[derive(Debug, Default)]
pub(super) struct ExamState {
    version: u64,
    exams: BTreeMap<ExamId, Exam>,
    risk: HashMap<ExamId, u32>,
}

impl ExamState {
    fn write(&mut self, expected: u64, apply: impl FnOnce(&mut Self)) -> CalendarWrite {
        if self.version != expected {
            return CalendarWrite::Conflict {
                current: self.version,
            };
        }
        apply(self);
        self.version += 1;
        CalendarWrite::Written {
            version: self.version,
        }
    }
}

#[async_trait]
impl ExamStore for MemoryStore {
    async fn exam_calendar(&self) -> Result<ExamCalendar> {
        let s = self.lock()?;
        Ok(ExamCalendar {
            version: s.exams.version,
            exams: s.exams.exams.values().cloned().collect(),
        })
    }

    async fn put_exam_if_version(&self, exam: &Exam, expected: u64) -> Result<CalendarWrite> {
        let mut s = self.lock()?;
        Ok(s.exams.write(expected, |c| {
            c.exams.insert(exam.id.clone(), exam.clone());
        }))
    }

    async fn delete_exam_if_version(&self, id: &ExamId, expected: u64) -> Result<CalendarWrite> {
        let mut s = self.lock()?;
        Ok(s.exams.write(expected, |c| {
            c.exams.remove(id);
            c.risk.remove(id);
        }))
    }

    async fn swap_exam_risk(
        &self,
        id: &ExamId,
        shortfall: Option<u32>,
        entries: &[OutboxEntry],
    ) -> Result<Option<u32>> {
        let mut s = self.lock()?;
        let c = &mut s.exams;
        if !c.exams.contains_key(id) {
            return Ok(None);
        }
        let before = match shortfall {
            Some(n) => c.risk.insert(id.clone(), n),
            None => c.risk.remove(id),
        };
        if before != shortfall {
            s.outbox.enqueue(entries);
        }
        Ok(before)
    }
}
