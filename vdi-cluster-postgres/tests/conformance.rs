//! The core conformance suite on PostgreSQL: every case runs in a fresh
//! database, each replica is a store with its own pool on it.

mod common;

use std::sync::Arc;

use async_trait::async_trait;
use vdi_cluster_core::testkit::conformance::StoreFactory;
use vdi_cluster_core::{Store, WorkerId};

use common::TestDb;

/// One fresh, migrated database per case.
struct Postgres(TestDb);

#[async_trait]
impl StoreFactory for Postgres {
    async fn replica(&self) -> Arc<dyn Store> {
        Arc::new(self.0.store())
    }

    async fn corrupt_dispatched(&self, worker: &WorkerId, delta: i64) -> bool {
        self.0.corrupt_dispatched(worker, delta).await
    }

    async fn cleanup(&self) {
        self.0.cleanup().await;
    }
}

async fn factory() -> Option<Postgres> {
    Some(Postgres(TestDb::migrated().await?))
}

vdi_cluster_core::conformance_tests!(factory());
