//! [`CapacityRequests`] on the in-memory backend: requests by id with their
//! versions, under the store's one mutex.

use async_trait::async_trait;

use super::MemoryStore;
use crate::error::Result;
use crate::outbox::OutboxEntry;
use crate::scale::{CapacityRequest, CapacityRequests, StoredCapacityRequest};

#[async_trait]
impl CapacityRequests for MemoryStore {
    async fn capacity_requests(&self) -> Result<Vec<StoredCapacityRequest>> {
        let s = self.lock()?;
        Ok(s.capacity_requests.values().cloned().collect())
    }

    async fn insert_capacity_request(
        &self,
        request: &CapacityRequest,
        entries: &[OutboxEntry],
    ) -> Result<bool> {
        let mut s = self.lock()?;
        if s.capacity_requests.contains_key(&request.id) {
            return Ok(false);
        }
        s.capacity_requests.insert(
            request.id.clone(),
            StoredCapacityRequest {
                request: request.clone(),
                version: 1,
            },
        );
        s.outbox.enqueue(entries);
        Ok(true)
    }

    async fn update_capacity_request(
        &self,
        request: &CapacityRequest,
        expected: u64,
        entries: &[OutboxEntry],
    ) -> Result<bool> {
        let mut s = self.lock()?;
        let Some(stored) = s.capacity_requests.get_mut(&request.id) else {
            return Ok(false);
        };
        if stored.version != expected {
            return Ok(false);
        }
        *stored = StoredCapacityRequest {
            request: request.clone(),
            version: expected + 1,
        };
        s.outbox.enqueue(entries);
        Ok(true)
    }
}
