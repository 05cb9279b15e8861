//! [`ScheduledActions`] on Redis: the actions in one hash of
//! `<version> <json>` and the open ones in a sorted set by due time; each
//! compare-and-set is one Lua script that checks the version, writes and
//! keeps the index (whether an action may move is decided in core).

use async_trait::async_trait;
use vdi_cluster_core::Result;
use vdi_cluster_core::scheduled::{ScheduledAction, ScheduledActions, ScheduledSnapshot};
use vdi_cluster_core::store::CasOutcome;
use vdi_cluster_core::time::Timestamp;

use crate::codec::{cas_outcome, expected_arg};
use crate::error::BackendError;
use crate::scripts::SCRIPTS;
use crate::store::RedisStore;

/// A stored action, `<version> <json>`.
fn decode(key: &str, stored: &str) -> Result<ScheduledSnapshot> {
    let malformed = || BackendError::unexpected("scheduled", Some(stored));
    let (version, json) = stored.split_once(' ').ok_or_else(malformed)?;
    let version = version
        .parse()
        .map_err(|e| BackendError::malformed(key.to_owned(), "scheduled action version", e))?;
    let action = serde_json::from_str(json)
        .map_err(|e| BackendError::malformed(key.to_owned(), "scheduled action", e))?;
    Ok(ScheduledSnapshot { action, version })
}

#[async_trait]
impl ScheduledActions for RedisStore {
    async fn put_scheduled(
        &self,
        action: &ScheduledAction,
        expected: Option<u64>,
    ) -> Result<CasOutcome> {
        let key = self.keys.scheduled();
        let json = serde_json::to_string(action)
            .map_err(|e| BackendError::malformed(key.clone(), "scheduled action", e))?;
        let (written, version): (i64, i64) = SCRIPTS
            .scheduled_put
            .key(&key)
            .key(self.keys.scheduled_open())
            .arg(&action.id)
            .arg(expected_arg(expected))
            .arg(json)
            .arg(if action.state.is_open() { "1" } else { "0" })
            .arg(action.at.as_millis())
            .invoke_async(&mut self.conn())
            .await
            .map_err(BackendError::from)?;
        Ok(cas_outcome(written, version))
    }

    async fn scheduled(&self, id: &str) -> Result<Option<ScheduledSnapshot>> {
        let key = self.keys.scheduled();
        let stored: Option<String> = redis::cmd("HGET")
            .arg(&key)
            .arg(id)
            .query_async(&mut self.conn())
            .await
            .map_err(BackendError::from)?;
        stored.map(|s| decode(&key, &s)).transpose()
    }

    async fn open_scheduled(
        &self,
        due_by: Option<Timestamp>,
        limit: usize,
    ) -> Result<Vec<ScheduledSnapshot>> {
        let key = self.keys.scheduled();
        let due_by = due_by.map_or_else(|| "+inf".to_owned(), |t| t.as_millis().to_string());
        let stored: Vec<String> = SCRIPTS
            .scheduled_open
            .key(&key)
            .key(self.keys.scheduled_open())
            .arg(due_by)
            .arg(limit)
            .invoke_async(&mut self.conn())
            .await
            .map_err(BackendError::from)?;
        stored.iter().map(|s| decode(&key, s)).collect()
    }
}
