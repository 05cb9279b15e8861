//! The conformance suite on the in-memory backend.

use std::sync::Arc;

use async_trait::async_trait;
use vdi_cluster_core::testkit::conformance::StoreFactory;
use vdi_cluster_core::{MemoryStore, Store, WorkerId};

/// Replicas are clones of one store: independent handles, shared state.
struct Memory(MemoryStore);

#[async_trait]
impl StoreFactory for Memory {
    async fn replica(&self) -> Arc<dyn Store> {
        Arc::new(self.0.clone())
    }

    async fn corrupt_dispatched(&self, worker: &WorkerId, delta: i64) -> bool {
        self.0.corrupt_dispatched(worker, delta);
        true
    }
}

async fn factory() -> Option<Memory> {
    Some(Memory(MemoryStore::new()))
}

vdi_cluster_core::conformance_tests!(factory());
