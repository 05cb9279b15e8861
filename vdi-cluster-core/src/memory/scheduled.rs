//! [`ScheduledActions`] in memory: the actions by id with their versions,
//! under the store's one mutex.

use std::collections::BTreeMap;

use async_trait::async_trait;

use super::MemoryStore;
use crate::error::Result;
use crate::scheduled::{ScheduledAction, ScheduledActions, ScheduledSnapshot};
use crate::store::CasOutcome;
use crate::time::Timestamp;

/// The scheduled actions' part of the state.
pub(super) type ScheduledState = BTreeMap<String, ScheduledSnapshot>;

#[async_trait]
impl ScheduledActions for MemoryStore {
    async fn put_scheduled(
        &self,
        action: &ScheduledAction,
        expected: Option<u64>,
    ) -> Result<CasOutcome> {
        let mut s = self.lock()?;
        let current = s.scheduled.get(&action.id).map(|a| a.version);
        if current != expected {
            return Ok(CasOutcome::Conflict { current });
        }
        let version = expected.map_or(1, |v| v + 1);
        s.scheduled.insert(
            action.id.clone(),
            ScheduledSnapshot {
                action: action.clone(),
                version,
            },
        );
        Ok(CasOutcome::Written { version })
    }

    async fn scheduled(&self, id: &str) -> Result<Option<ScheduledSnapshot>> {
        Ok(self.lock()?.scheduled.get(id).cloned())
    }

    async fn open_scheduled(
        &self,
        due_by: Option<Timestamp>,
        limit: usize,
    ) -> Result<Vec<ScheduledSnapshot>> {
        let s = self.lock()?;
        let mut open: Vec<ScheduledSnapshot> = s
            .scheduled
            .values()
            .filter(|a| a.action.state.is_open() && due_by.is_none_or(|t| a.action.at <= t))
            .cloned()
            .collect();
        open.sort_by(|a, b| (a.action.at, &a.action.id).cmp(&(b.action.at, &b.action.id)));
        open.truncate(limit);
        Ok(open)
    }
}
