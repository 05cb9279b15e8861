//! The core conformance suite against a real Redis (`REDIS_URL`, default
//! `redis://127.0.0.1:6379`), each case under its own random prefix.

mod common;

use std::sync::Arc;

use async_trait::async_trait;
use vdi_cluster_core::testkit::backend_unreachable;
use vdi_cluster_core::testkit::conformance::StoreFactory;
use vdi_cluster_core::{Store, WorkerId};
use vdi_cluster_redis::RedisStore;
use vdi_cluster_redis::redis;

/// One prefix on the Redis under test.
struct RedisFactory {
    url: String,
    prefix: String,
    admin: redis::aio::MultiplexedConnection,
}

#[async_trait]
impl StoreFactory for RedisFactory {
    async fn replica(&self) -> Arc<dyn Store> {
        let store = RedisStore::builder(&self.url)
            .prefix(&self.prefix)
            .connect()
            .await
            .expect("a replica connects");
        Arc::new(store)
    }

    async fn corrupt_dispatched(&self, worker: &WorkerId, delta: i64) -> bool {
        let mut conn = self.admin.clone();
        common::corrupt_dispatched(&mut conn, &self.prefix, worker.as_str(), delta).await;
        true
    }

    async fn cleanup(&self) {
        common::delete_prefix(&self.url, &self.prefix).await;
    }
}

async fn factory() -> Option<RedisFactory> {
    let url = common::redis_url();
    let client = match redis::Client::open(url.as_str()) {
        Ok(client) => client,
        Err(e) => return backend_unreachable("Redis", &url, &e),
    };
    match client.get_multiplexed_async_connection().await {
        Ok(admin) => Some(RedisFactory {
            url,
            prefix: common::test_prefix(),
            admin,
        }),
        Err(e) => backend_unreachable("Redis", &url, &e),
    }
}

vdi_cluster_core::conformance_tests!(factory());
