//! [`CapacityRequests`] on Redis: the requests in one hash of JSON and
//! their versions in another, each write one Lua script that checks and
//! writes (which request, and which step, is decided in core).

use async_trait::async_trait;
use redis::ScriptInvocation;
use vdi_cluster_core::Result;
use vdi_cluster_core::outbox::OutboxEntry;
use vdi_cluster_core::scale::{CapacityRequest, CapacityRequests, StoredCapacityRequest};

use crate::error::BackendError;
use crate::scripts::SCRIPTS;
use crate::store::RedisStore;

impl RedisStore {
    /// Runs a capacity write prepared with its own keys and arguments,
    /// the outbox's appended when there are entries.
    async fn capacity_write(
        &self,
        mut invocation: ScriptInvocation<'_>,
        entries: &[OutboxEntry],
    ) -> Result<bool> {
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

    fn capacity_json(&self, request: &CapacityRequest) -> Result<String> {
        serde_json::to_string(request).map_err(|e| {
            BackendError::malformed(self.keys.capacity_requests(), "capacity request", e).into()
        })
    }
}

#[async_trait]
impl CapacityRequests for RedisStore {
    async fn capacity_requests(&self) -> Result<Vec<StoredCapacityRequest>> {
        let key = self.keys.capacity_requests();
        let reply: Vec<(u64, String)> = SCRIPTS
            .capacity_read
            .key(&key)
            .key(self.keys.capacity_versions())
            .invoke_async(&mut self.conn())
            .await
            .map_err(BackendError::from)?;
        let mut stored = reply
            .into_iter()
            .map(|(version, json)| {
                let request = serde_json::from_str(&json)
                    .map_err(|e| BackendError::malformed(key.clone(), "capacity request", e))?;
                Ok(StoredCapacityRequest { request, version })
            })
            .collect::<Result<Vec<_>>>()?;
        stored.sort_by(|a, b| a.request.id.cmp(&b.request.id));
        Ok(stored)
    }

    async fn insert_capacity_request(
        &self,
        request: &CapacityRequest,
        entries: &[OutboxEntry],
    ) -> Result<bool> {
        let json = self.capacity_json(request)?;
        let mut invocation = SCRIPTS.capacity_insert.prepare_invoke();
        invocation
            .key(self.keys.capacity_requests())
            .key(self.keys.capacity_versions())
            .arg(&request.id)
            .arg(json);
        self.capacity_write(invocation, entries).await
    }

    async fn update_capacity_request(
        &self,
        request: &CapacityRequest,
        expected: u64,
        entries: &[OutboxEntry],
    ) -> Result<bool> {
        let json = self.capacity_json(request)?;
        let mut invocation = SCRIPTS.capacity_update.prepare_invoke();
        invocation
            .key(self.keys.capacity_requests())
            .key(self.keys.capacity_versions())
            .arg(&request.id)
            .arg(expected)
            .arg(json);
        self.capacity_write(invocation, entries).await
    }
}
