//! [`Rehearsals`] on Redis: every exam's record in one hash of
//! `<version> <json>`, each write one Lua script that compares the version
//! and writes, with its outbox entries (which workers fail is decided in
//! core); a removal compares the version and deletes in one script too.

use async_trait::async_trait;
use vdi_cluster_core::Result;
use vdi_cluster_core::ids::ExamId;
use vdi_cluster_core::outbox::OutboxEntry;
use vdi_cluster_core::rehearsal::{Rehearsal, Rehearsals, StoredRehearsal};

use crate::error::BackendError;
use crate::scripts::SCRIPTS;
use crate::store::RedisStore;

/// A stored record, `<version> <json>`.
fn decode(key: &str, stored: &str) -> Result<StoredRehearsal> {
    let malformed = || BackendError::unexpected("rehearsal", Some(stored));
    let (version, json) = stored.split_once(' ').ok_or_else(malformed)?;
    let version = version
        .parse()
        .map_err(|e| BackendError::malformed(key.to_owned(), "rehearsal version", e))?;
    let rehearsal = serde_json::from_str(json)
        .map_err(|e| BackendError::malformed(key.to_owned(), "rehearsal", e))?;
    Ok(StoredRehearsal { rehearsal, version })
}

#[async_trait]
impl Rehearsals for RedisStore {
    async fn rehearsal(&self, exam: &ExamId) -> Result<Option<StoredRehearsal>> {
        let key = self.keys.rehearsals();
        let stored: Option<String> = redis::cmd("HGET")
            .arg(&key)
            .arg(exam.as_str())
            .query_async(&mut self.conn())
            .await
            .map_err(BackendError::from)?;
        stored.map(|s| decode(&key, &s)).transpose()
    }

    async fn rehearsals(&self) -> Result<Vec<StoredRehearsal>> {
        let key = self.keys.rehearsals();
        let stored: Vec<String> = redis::cmd("HVALS")
            .arg(&key)
            .query_async(&mut self.conn())
            .await
            .map_err(BackendError::from)?;
        let mut all = stored
            .iter()
            .map(|s| decode(&key, s))
            .collect::<Result<Vec<_>>>()?;
        all.sort_by(|a, b| a.rehearsal.exam_id.cmp(&b.rehearsal.exam_id));
        Ok(all)
    }

    async fn put_rehearsal(
        &self,
        rehearsal: &Rehearsal,
        expected: u64,
        entries: &[OutboxEntry],
    ) -> Result<bool> {
        let key = self.keys.rehearsals();
        let json = serde_json::to_string(rehearsal)
            .map_err(|e| BackendError::malformed(key.clone(), "rehearsal", e))?;
        let mut invocation = SCRIPTS.rehearsal_put.prepare_invoke();
        invocation
            .key(key)
            .arg(rehearsal.exam_id.as_str())
            .arg(expected)
            .arg(json);
        if !entries.is_empty() {
            self.outbox_keys(&mut invocation);
            self.outbox_entries(&mut invocation, entries)?;
        }
        let written: i64 = invocation
            .invoke_async(&mut self.conn())
            .await
            .map_err(BackendError::from)?;
        Ok(written == 1)
    }

    async fn remove_rehearsal(&self, exam: &ExamId, expected: u64) -> Result<bool> {
        let removed: i64 = SCRIPTS
            .rehearsal_remove
            .key(self.keys.rehearsals())
            .arg(exam.as_str())
            .arg(expected)
            .invoke_async(&mut self.conn())
            .await
            .map_err(BackendError::from)?;
        Ok(removed == 1)
    }
}
