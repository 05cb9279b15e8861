//! [`DisruptionLedger`] in memory: each exam's entries by session, in the
//! order they were written, and each session's open interruptions by
//! kind.

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;

use super::MemoryStore;
use crate::error::Result;
use crate::ids::{ExamId, SessionKey};
use crate::ledger::{Disruption, DisruptionKind, DisruptionLedger, OpenInterruption};

/// The ledger's entries.
#[derive(Debug, Default)]
pub(super) struct LedgerState {
    by_exam: HashMap<ExamId, BTreeMap<SessionKey, Vec<Disruption>>>,
    open: HashMap<(SessionKey, DisruptionKind), OpenInterruption>,
}

impl LedgerState {
    /// Writes the entries not stored yet (by session and id); how many.
    pub(super) fn append(&mut self, entries: &[Disruption]) -> u32 {
        let mut written = 0;
        for e in entries {
            let session = self
                .by_exam
                .entry(e.key.exam_id.clone())
                .or_default()
                .entry(e.key.clone())
                .or_default();
            if session.iter().all(|s| s.id != e.id) {
                session.push(e.clone());
                written += 1;
            }
        }
        written
    }

    /// Opens `open` unless its session has one of its kind; the one kept.
    pub(super) fn open(&mut self, open: &OpenInterruption) -> OpenInterruption {
        self.open
            .entry((open.key.clone(), open.kind))
            .or_insert_with(|| open.clone())
            .clone()
    }
}

#[async_trait]
impl DisruptionLedger for MemoryStore {
    async fn append_disruptions(&self, entries: &[Disruption]) -> Result<u32> {
        Ok(self.lock()?.ledger.append(entries))
    }

    async fn disruptions(&self, key: &SessionKey) -> Result<Vec<Disruption>> {
        Ok(self
            .lock()?
            .ledger
            .by_exam
            .get(&key.exam_id)
            .and_then(|sessions| sessions.get(key))
            .cloned()
            .unwrap_or_default())
    }

    async fn exam_disruptions(&self, exam: &ExamId) -> Result<Vec<Disruption>> {
        Ok(self
            .lock()?
            .ledger
            .by_exam
            .get(exam)
            .map(|sessions| sessions.values().flatten().cloned().collect())
            .unwrap_or_default())
    }

    async fn ledger_exams(&self) -> Result<Vec<ExamId>> {
        Ok(self.lock()?.ledger.by_exam.keys().cloned().collect())
    }

    async fn open_interruption(&self, open: &OpenInterruption) -> Result<OpenInterruption> {
        Ok(self.lock()?.ledger.open(open))
    }

    async fn open_interruptions(&self, key: &SessionKey) -> Result<Vec<OpenInterruption>> {
        let s = self.lock()?;
        Ok(DisruptionKind::ALL
            .into_iter()
            .filter_map(|kind| s.ledger.open.get(&(key.clone(), kind)).cloned())
            .collect())
    }

    async fn close_interruption(&self, open: &OpenInterruption) -> Result<bool> {
        let mut s = self.lock()?;
        let slot = (open.key.clone(), open.kind);
        if s.ledger.open.get(&slot) == Some(open) {
            s.ledger.open.remove(&slot);
            return Ok(true);
        }
        Ok(false)
    }
}
