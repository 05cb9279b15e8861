//! [`DisruptionLedger`] in memory: each exam's entries by session, in the
//! order they were written.

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;

use super::MemoryStore;
use crate::error::Result;
use crate::ids::{ExamId, SessionKey};
use crate::ledger::{Disruption, DisruptionLedger};

/// The ledger's entries.
#[derive(Debug, Default)]
pub(super) struct LedgerState {
    by_exam: HashMap<ExamId, BTreeMap<SessionKey, Vec<Disruption>>>,
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
}
