//! [`Rehearsals`] on the in-memory backend: records by exam with their
//! versions, under the store's one mutex.

use async_trait::async_trait;

use super::MemoryStore;
use crate::error::Result;
use crate::ids::ExamId;
use crate::outbox::OutboxEntry;
use crate::rehearsal::{Rehearsal, Rehearsals, StoredRehearsal};

#[async_trait]
impl Rehearsals for MemoryStore {
    async fn rehearsal(&self, exam: &ExamId) -> Result<Option<StoredRehearsal>> {
        Ok(self.lock()?.rehearsals.get(exam).cloned())
    }

    async fn rehearsals(&self) -> Result<Vec<StoredRehearsal>> {
        Ok(self.lock()?.rehearsals.values().cloned().collect())
    }

    async fn put_rehearsal(
        &self,
        rehearsal: &Rehearsal,
        expected: u64,
        entries: &[OutboxEntry],
    ) -> Result<bool> {
        let mut s = self.lock()?;
        let stored = s
            .rehearsals
            .get(&rehearsal.exam_id)
            .map_or(0, |r| r.version);
        if stored != expected {
            return Ok(false);
        }
        s.rehearsals.insert(
            rehearsal.exam_id.clone(),
            StoredRehearsal {
                rehearsal: rehearsal.clone(),
                version: expected + 1,
            },
        );
        s.outbox.enqueue(entries);
        Ok(true)
    }

    async fn remove_rehearsal(&self, exam: &ExamId, expected: u64) -> Result<bool> {
        let mut s = self.lock()?;
        if s.rehearsals.get(exam).map(|r| r.version) != Some(expected) {
            return Ok(false);
        }
        s.rehearsals.remove(exam);
        Ok(true)
    }
}
