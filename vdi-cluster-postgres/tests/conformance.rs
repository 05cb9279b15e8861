//! The core conformance suite on PostgreSQL: every case runs in a fresh
//! database, each replica is a store with its own pool on it. The pools
//! are small: cases run two at a time, some with many replicas, and the
//! server's connection limit (100 by default) is shared by them all.

mod common;

use std::sync::Arc;

use async_trait::async_trait;
use vdi_cluster_core::testkit::conformance::StoreFactory;
use vdi_cluster_core::{Store, WorkerId};

use common::TestDb;

/// Connections per replica: enough for concurrency within a replica,
/// small enough that the busiest pair of cases stays well under the
/// server's limit.
const REPLICA_POOL: u32 = 3;

/// One fresh, migrated database per case.
struct Postgres(TestDb);

#[async_trait]
impl StoreFactory for Postgres {
    async fn replica(&self) -> Arc<dyn Store> {
        Arc::new(
            self.0
                .store_with(common::test_config().max_connections(REPLICA_POOL)),
        )
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
